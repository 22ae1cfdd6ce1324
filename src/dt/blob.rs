//! Structural validation of a flattened device tree before `fdt` sees it.
//!
//! `fdt` 0.1.5 is a zero-copy reader that trusts its input: an out-of-range
//! offset, an unterminated name, a property running past the structure block,
//! an unbalanced `FDT_END_NODE` or a property after a child node makes it index
//! out of bounds, `expect` or `assert` — a panic, which at EL2 stops the CPU.
//! The DTB comes from firmware or a boot loader, so it is input, not an
//! invariant. Instead of patching the crate we walk the token stream once here,
//! the way libfdt's `fdt_check_full` does, and hand `fdt` only blobs on which
//! none of its panicking paths can trigger:
//!
//! * header fields in bounds (`totalsize` within the buffer, both blocks and
//!   the memory-reservation map inside `totalsize`, version >= 17 because `fdt`
//!   reads `size_dt_struct` unconditionally);
//! * one root node, balanced nesting up to [`MAX_DEPTH`] (bounds our recursion
//!   too), then `FDT_END`;
//! * every node name and property name NUL-terminated and UTF-8, every property
//!   value inside the structure block, properties before child nodes;
//! * `#address-cells`/`#size-cells`/`#interrupt-cells`/`phandle` exactly one
//!   cell (`fdt` `expect`s that).
//!
//! (`fdt` 0.1.5 also has `FDT_END` as 5 where the spec says 9; its walks still
//! stop at the end because 9 is not a token they continue on.)
//!
//! `FDT_NOP` tokens are rejected here: `fdt` 0.1.5 skips them in some places
//! but not others (`skip_current_node` asserts on a NOP between properties).
//! dtc and QEMU's own `virt` tree have none, but QEMU's board models edit the
//! DTB given with `-dtb` with libfdt's `fdt_nop_*` (the old memory nodes, the
//! devices they lack: 326 NOPs in `raspi4b`'s, 36 in `xlnx-zcu102`'s), and
//! firmware may do the same. So the boot code first removes them in place with
//! [`strip_nops`], which compacts the structure block, and checks after that.
#![forbid(unsafe_code)]

use super::DtError;

const FDT_MAGIC: u32 = 0xd00d_feed;
const FDT_BEGIN_NODE: u32 = 1;
const FDT_END_NODE: u32 = 2;
const FDT_PROP: u32 = 3;
const FDT_NOP: u32 = 4;
const FDT_END: u32 = 9;
const HEADER_LEN: usize = 40;

/// Deepest node nesting accepted (the root is depth 1). Real trees stay under 8.
pub const MAX_DEPTH: usize = 16;

fn be32(b: &[u8], off: usize) -> Option<u32> {
    let s = b.get(off..off.checked_add(4)?)?;
    Some(u32::from_be_bytes([s[0], s[1], s[2], s[3]]))
}

fn align4(n: usize) -> Option<usize> {
    n.checked_add(3).map(|v| v & !3)
}

/// A NUL-terminated UTF-8 string starting at `off` in `block`; returns its length.
fn cstr_len(block: &[u8], off: usize) -> Option<usize> {
    let rest = block.get(off..)?;
    let len = rest.iter().position(|&b| b == 0)?;
    core::str::from_utf8(&rest[..len]).ok()?;
    Some(len)
}

/// Checks `dtb` as described in the module docs and returns it cut to the
/// header's `totalsize`.
pub fn check(dtb: &[u8]) -> Result<&[u8], DtError> {
    if dtb.len() < HEADER_LEN {
        return Err(DtError::Truncated);
    }
    let h = |i: usize| be32(dtb, i * 4).unwrap_or(0) as usize;
    if h(0) as u32 != FDT_MAGIC {
        return Err(DtError::BadMagic);
    }
    let (total, off_struct, off_strings, off_rsv) = (h(1), h(2), h(3), h(4));
    let (version, size_strings, size_struct) = (h(5) as u32, h(8), h(9));
    if total > dtb.len() {
        return Err(DtError::Truncated);
    }
    if version < 17 {
        return Err(DtError::BadVersion(version));
    }
    let dtb = &dtb[..total];
    let within = |off: usize, len: usize| {
        off >= HEADER_LEN && off.checked_add(len).is_some_and(|e| e <= total)
    };
    if !within(off_struct, size_struct)
        || !within(off_strings, size_strings)
        || !within(off_rsv, 16)
    {
        return Err(DtError::BadHeader);
    }
    // Memory reservation map: 16-byte entries up to an all-zero terminator.
    let mut rsv = off_rsv;
    loop {
        let entry = dtb.get(rsv..rsv + 16).ok_or(DtError::BadHeader)?;
        if entry.iter().all(|&b| b == 0) {
            break;
        }
        rsv += 16;
    }
    let structs = &dtb[off_struct..off_struct + size_struct];
    let strings = &dtb[off_strings..off_strings + size_strings];
    check_structure(structs, strings, off_struct)?;
    Ok(dtb)
}

/// Removes every `FDT_NOP` token from the structure block of `dtb`, in place:
/// the other tokens move down, `size_dt_struct` shrinks, nothing else moves
/// (the strings block and the reservation map are found by their offsets).
/// Returns how many NOPs it removed. Touches nothing unless the header is
/// sound; a malformed structure is left for [`check`] to report.
pub fn strip_nops(dtb: &mut [u8]) -> Result<usize, DtError> {
    if dtb.len() < HEADER_LEN {
        return Err(DtError::Truncated);
    }
    let h = |dtb: &[u8], i: usize| be32(dtb, i * 4).unwrap_or(0) as usize;
    if h(dtb, 0) as u32 != FDT_MAGIC {
        return Err(DtError::BadMagic);
    }
    let (total, off_struct, size_struct) = (h(dtb, 1), h(dtb, 2), h(dtb, 9));
    if total > dtb.len() {
        return Err(DtError::Truncated);
    }
    let end = off_struct
        .checked_add(size_struct)
        .filter(|&e| off_struct >= HEADER_LEN && e <= total)
        .ok_or(DtError::BadHeader)?;
    let s = &mut dtb[off_struct..end];
    let (mut read, mut write, mut removed) = (0usize, 0usize, 0usize);
    while read < s.len() {
        let Some(token) = be32(s, read) else { break };
        let len = match token {
            FDT_NOP => {
                removed += 1;
                read += 4;
                continue;
            }
            FDT_BEGIN_NODE => match cstr_len(s, read + 4).and_then(|n| align4(4 + n + 1)) {
                Some(n) => n,
                None => break,
            },
            FDT_PROP => match be32(s, read + 4).and_then(|n| align4(12 + n as usize)) {
                Some(n) => n,
                None => break,
            },
            FDT_END_NODE => 4,
            _ => break, // FDT_END or garbage: stop, keep the rest as it is.
        };
        let len = len.min(s.len() - read);
        s.copy_within(read..read + len, write);
        read += len;
        write += len;
    }
    // The tail (FDT_END, or whatever stopped the walk) moves down whole.
    let tail = s.len() - read;
    s.copy_within(read.., write);
    let new_size = write + tail;
    dtb[36..40].copy_from_slice(&(new_size as u32).to_be_bytes());
    Ok(removed)
}

fn check_structure(s: &[u8], strings: &[u8], base: usize) -> Result<(), DtError> {
    let bad = |off: usize| DtError::BadStructure { offset: base + off };
    let mut off = 0usize;
    let mut depth = 0usize;
    // Whether the current node has had a child yet (then no more properties).
    let mut had_child = [false; MAX_DEPTH + 1];
    loop {
        let token = be32(s, off).ok_or(bad(off))?;
        let at = off;
        off += 4;
        match token {
            FDT_BEGIN_NODE => {
                let len = cstr_len(s, off).ok_or(bad(at))?;
                if depth == 0 && (at != 0 || len != 0) {
                    // Exactly one root, named "", and it comes first.
                    return Err(bad(at));
                }
                if depth > 0 {
                    had_child[depth] = true;
                }
                depth += 1;
                if depth > MAX_DEPTH {
                    return Err(DtError::TooDeep);
                }
                had_child[depth] = false;
                off = align4(off + len + 1).ok_or(bad(at))?;
            }
            FDT_PROP => {
                if depth == 0 || had_child[depth] {
                    return Err(bad(at));
                }
                let len = be32(s, off).ok_or(bad(at))? as usize;
                let nameoff = be32(s, off + 4).ok_or(bad(at))? as usize;
                off += 8;
                let value = s
                    .get(off..off.checked_add(len).ok_or(bad(at))?)
                    .ok_or(bad(at))?;
                let name_len = cstr_len(strings, nameoff).ok_or(bad(at))?;
                let name = &strings[nameoff..nameoff + name_len];
                if matches!(
                    name,
                    b"#address-cells" | b"#size-cells" | b"#interrupt-cells" | b"phandle"
                ) && value.len() != 4
                {
                    return Err(bad(at));
                }
                off = align4(off + len).ok_or(bad(at))?;
            }
            FDT_END_NODE => {
                if depth == 0 {
                    return Err(bad(at));
                }
                depth -= 1;
                if depth == 0 {
                    return match be32(s, off) {
                        Some(FDT_END) => Ok(()),
                        _ => Err(bad(off)),
                    };
                }
            }
            FDT_NOP => return Err(DtError::UnsupportedNop { offset: base + at }),
            _ => return Err(bad(at)),
        }
    }
}
