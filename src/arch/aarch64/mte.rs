//! Memory tagging (FEAT_MTE2) at EL2: whether the CPU has tag storage, EL2's own
//! access to allocation tags, and reading and writing the tags of a page of
//! guest RAM (snapshots).
//!
//! EL2 reaches tags through its identity map: when the CPU has FEAT_MTE2, the
//! map's Normal attribute is Tagged (`mmu`, MAIR 0xf0) and SCTLR_EL2.ATA is set,
//! while SCTLR_EL2.TCF stays 0, so the hypervisor's own accesses are never tag
//! checked. `LDGM`/`STGM` move the tags of one block (GMID_EL1.BS) at a time;
//! they are written as `.inst` words (x0 the tags, x1 the address), so the
//! assembler needs no `memtag` extension.

use core::arch::asm;
use core::sync::atomic::{AtomicU64, Ordering};

/// Bytes of tags in a 4 KiB page: a 4-bit tag per 16-byte granule.
pub const PAGE_TAG_BYTES: usize = 128;
const PAGE: usize = 4096;
/// Bytes whose tags one 64-bit LDGM/STGM value holds (16 granules).
const WINDOW: usize = 256;

/// ID_AA64PFR1_EL1.MTE >= 2: FEAT_MTE2, tag storage (not FEAT_MTE's instructions
/// alone).
pub fn present() -> bool {
    let pfr1: u64;
    // SAFETY: reading an ID register has no side effects.
    unsafe { asm!("mrs {}, id_aa64pfr1_el1", out(reg) pfr1, options(nomem, nostack)) };
    (pfr1 >> 8) & 0xf >= 2
}

/// The bytes of memory whose tags one LDGM/STGM moves (`4 << GMID_EL1.BS`),
/// read once; only with [`present`].
fn block() -> usize {
    static BLOCK: AtomicU64 = AtomicU64::new(0);
    let b = BLOCK.load(Ordering::Relaxed);
    if b != 0 {
        return b as usize;
    }
    let gmid: u64;
    // SAFETY: GMID_EL1 is an ID register of FEAT_MTE2 (the caller checked it).
    unsafe { asm!("mrs {}, s3_1_c0_c0_4", out(reg) gmid, options(nomem, nostack)) };
    // BS is 2..=6 (16 to 256 bytes); anything else would be a broken CPU.
    let b = 4u64 << (gmid & 0xf).clamp(2, 6);
    BLOCK.store(b, Ordering::Relaxed);
    b as usize
}

fn ldgm(addr: usize) -> u64 {
    let v: u64;
    // SAFETY: LDGM x0, [x1] reads allocation tags of `addr`'s block, memory the
    // caller holds (identity-mapped RAM); it changes nothing.
    unsafe {
        asm!(".inst 0xd9e00020", out("x0") v, in("x1") addr, options(readonly, nostack, preserves_flags))
    };
    v
}

fn stgm(addr: usize, tags: u64) {
    // SAFETY: STGM x0, [x1] writes allocation tags of `addr`'s block, RAM of a
    // paused VM the caller restores; data is unchanged.
    unsafe {
        asm!(".inst 0xd9a00020", in("x0") tags, in("x1") addr, options(nostack, preserves_flags))
    };
}

/// The tags of the 4 KiB page at physical address `pa` (identity-mapped RAM),
/// 4 bits per 16-byte granule, the lower granule in the low nibble. Only with
/// [`present`].
pub fn read_page(pa: usize, out: &mut [u8; PAGE_TAG_BYTES]) {
    let b = block();
    for (w, dst) in out.chunks_exact_mut(8).enumerate() {
        let base = pa + w * WINDOW;
        let v = (0..WINDOW / b).fold(0, |v, i| v | ldgm(base + i * b));
        dst.copy_from_slice(&v.to_le_bytes());
    }
}

/// Sets the tags of the page at `pa` from `tags` (as [`read_page`] gives them).
pub fn write_page(pa: usize, tags: &[u8; PAGE_TAG_BYTES]) {
    let b = block();
    for (w, src) in tags.chunks_exact(8).enumerate() {
        let base = pa + w * WINDOW;
        let v = u64::from_le_bytes(src.try_into().unwrap_or([0; 8]));
        for i in 0..WINDOW / b {
            stgm(base + i * b, v);
        }
    }
    // SAFETY: orders the tag writes before whatever runs the guest next.
    unsafe { asm!("dsb ish", options(nostack, preserves_flags)) };
}

/// Sets every tag of the page at `pa` to 0.
pub fn clear_page(pa: usize) {
    write_page(pa, &[0; PAGE_TAG_BYTES]);
}

/// Whether any tag of the page at `pa` is non-zero.
pub fn page_tagged(pa: usize) -> bool {
    let b = block();
    (0..PAGE / b).any(|i| ldgm(pa + i * b) != 0)
}

/// SCTLR_EL2.ATA: EL2 may access allocation tags (its TCF stays 0: no checks).
pub const SCTLR_EL2_ATA: u64 = 1 << 43;
