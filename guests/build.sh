#!/usr/bin/env bash
# Builds every guest and writes guests/target/images/<name>.img (flat arm64 Images,
# and aarch32.img, an AArch32 zImage).
# The same steps `cargo xtask` performs; see README.md ("Build contract").
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
target=aarch64-unknown-none
# Always the guests' own target directory, whatever the caller exported.
export CARGO_TARGET_DIR="$here/target"

cargo build --release --target "$target" --manifest-path "$here/Cargo.toml"

host="$(rustc -vV | sed -n 's/^host: //p')"
objcopy="$(rustc --print sysroot)/lib/rustlib/$host/bin/llvm-objcopy"
if [ ! -x "$objcopy" ]; then
    echo "build.sh: $objcopy missing: run 'rustup component add llvm-tools'" >&2
    exit 1
fi

mkdir -p "$CARGO_TARGET_DIR/images"
for src in "$here"/programs/src/bin/*.rs; do
    name="$(basename "$src" .rs)"
    elf="$CARGO_TARGET_DIR/$target/release/$name"
    img="$CARGO_TARGET_DIR/images/$name.img"
    "$objcopy" -O binary "$elf" "$img"
    # Sanity: the arm64 Image magic "ARM\x64" at offset 56.
    if [ "$(dd if="$img" bs=1 skip=56 count=4 2>/dev/null | od -An -tx1 | tr -d ' \n')" != "41524d64" ]; then
        echo "build.sh: $img has no arm64 Image magic" >&2
        exit 1
    fi
    echo "$img"
done

# The AArch32 guest: A32 assembly, its own workspace and target (see README.md).
target32=armv7a-none-eabi
if ! rustc --print target-libdir --target "$target32" >/dev/null 2>&1 ||
    [ ! -d "$(rustc --print target-libdir --target "$target32")" ]; then
    rustup target add "$target32" >&2
fi
cargo build --release --target "$target32" --manifest-path "$here/aarch32/Cargo.toml"
img="$CARGO_TARGET_DIR/images/aarch32.img"
"$objcopy" -O binary "$CARGO_TARGET_DIR/$target32/release/aarch32" "$img"
# Sanity: the zImage magic 0x016f2818 (little-endian) at offset 0x24.
if [ "$(dd if="$img" bs=1 skip=36 count=4 2>/dev/null | od -An -tx1 | tr -d ' \n')" != "18286f01" ]; then
    echo "build.sh: $img has no zImage magic" >&2
    exit 1
fi
echo "$img"
