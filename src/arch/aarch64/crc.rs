//! The CPU's CRC-32 instructions (FEAT_CRC32: `CRC32X`, `CRC32B`), which compute
//! the checksum of [`crate::crc32`] (the IEEE polynomial, reflected) eight bytes per
//! instruction instead of one table load per byte.
//!
//! Snapshots are checksummed frame by frame: an in-memory save hashes every data
//! page of the VM, and a restore hashes them again (decode, then write), so the
//! table's per-byte loop was most of a snapshot's cost (under QEMU's TCG, most of a
//! 40 MiB save and restore of a Linux guest). Every CPU the hypervisor supports has
//! the instructions (Cortex-A53, A72, QEMU's `max`); one without them, or one whose
//! result disagrees with the table on a known vector, keeps the table.

use core::sync::atomic::{AtomicU8, Ordering};

/// 0: not checked yet; 1: no usable CRC-32 instructions; 2: they work.
static STATE: AtomicU8 = AtomicU8::new(0);

/// `ID_AA64ISAR0_EL1.CRC32` (bits 19:16) is non-zero.
fn cpu_has_crc32() -> bool {
    let isar0: u64;
    // SAFETY: reading an ID register has no side effect.
    unsafe {
        core::arch::asm!("mrs {}, id_aa64isar0_el1", out(reg) isar0, options(nomem, nostack, preserves_flags))
    };
    (isar0 >> 16) & 0xf != 0
}

/// The CRC-32 state `crc` (already inverted) carried over `bytes`.
///
/// # Safety
/// The CPU implements FEAT_CRC32.
#[target_feature(enable = "crc")]
unsafe fn update(mut crc: u32, bytes: &[u8]) -> u32 {
    use core::arch::aarch64::{__crc32b, __crc32d};
    let words = bytes.chunks_exact(8);
    let tail = words.remainder();
    for w in words {
        crc = __crc32d(crc, u64::from_le_bytes(w.try_into().unwrap()));
    }
    for &b in tail {
        crc = __crc32b(crc, b);
    }
    crc
}

/// The CRC-32 of `bytes` by the CPU's instructions, or `None` when the CPU has no
/// usable ones (the caller then uses the table).
pub fn checksum(bytes: &[u8]) -> Option<u32> {
    let state = match STATE.load(Ordering::Relaxed) {
        0 => {
            // "123456789", the catalogue's check value.
            // SAFETY: the CPU says it has FEAT_CRC32.
            let works = cpu_has_crc32() && unsafe { update(!0, b"123456789") } == !0xcbf4_3926;
            let s = if works { 2 } else { 1 };
            STATE.store(s, Ordering::Relaxed);
            s
        }
        s => s,
    };
    // SAFETY: state 2 means the CPU has FEAT_CRC32 and it gave the check value.
    (state == 2).then(|| !unsafe { update(!0, bytes) })
}
