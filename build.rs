//! Selects the board (`HV_BOARD`, default `qemu-virt`) and passes what only the board
//! file knows (DESIGN.md section 1: everything else comes from the DTB) to the crate as
//! compile-time environment; links the bare-metal binary with the Image linker script.

use std::{env, fs, path::PathBuf};

fn main() {
    let root = PathBuf::from(env::var("CARGO_MANIFEST_DIR").unwrap());
    let board = env::var("HV_BOARD").unwrap_or_else(|_| "qemu-virt".into());
    let file = root.join("boards").join(&board).join("board.toml");
    println!("cargo:rerun-if-env-changed=HV_BOARD");
    println!("cargo:rerun-if-changed={}", file.display());
    println!("cargo:rerun-if-changed=linker/image.ld");
    let text = fs::read_to_string(&file)
        .unwrap_or_else(|e| panic!("board `{board}`: cannot read {}: {e}", file.display()));
    let table: toml::Table = text
        .parse()
        .unwrap_or_else(|e| panic!("board `{board}`: {}: {e}", file.display()));
    let debug_uart = table
        .get("debug_uart")
        .and_then(|v| v.as_str())
        .unwrap_or_else(|| panic!("board `{board}`: `debug_uart` (a DT alias) is missing"));
    println!("cargo:rustc-env=HV_BOARD_NAME={board}");
    println!("cargo:rustc-env=HV_BOARD_DEBUG_UART={debug_uart}");

    let target_os = env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    if target_os == "none" {
        let script = root.join("linker").join("image.ld");
        println!("cargo:rustc-link-arg-bins=-T{}", script.display());
        println!("cargo:rustc-link-arg-bins=--pie");
        println!("cargo:rustc-link-arg-bins=-znotext");
        println!("cargo:rustc-link-arg-bins=--no-dynamic-linker");
        println!("cargo:rustc-link-arg-bins=-zseparate-loadable-segments");
        // Relative relocations as RELR (.relr.dyn), which boot.S decodes.
        println!("cargo:rustc-link-arg-bins=-zpack-relative-relocs");
        // No unwind tables (linker/image.ld discards them): no index for them either.
        println!("cargo:rustc-link-arg-bins=--no-eh-frame-hdr");
    }
}
