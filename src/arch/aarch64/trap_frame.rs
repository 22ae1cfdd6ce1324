//! The register frame every exception pushes, shared with `vectors.S`.
//!
//! The assembly takes its offsets from this struct (`offset_of!` as `const` operands),
//! so the two cannot drift (Hafnium `hypervisor/offsets.c`, done by the compiler).

use core::mem::{offset_of, size_of};

/// General registers and the return state of the interrupted context.
#[repr(C)]
#[derive(Clone, Copy, Default, Debug)]
pub struct TrapFrame {
    pub x: [u64; 31],
    pub elr: u64,
    pub spsr: u64,
    _pad: u64,
}

const _: () = assert!(
    size_of::<TrapFrame>() % 16 == 0,
    "the EL2 stack stays 16-byte aligned"
);
const _: () = assert!(offset_of!(TrapFrame, elr) == offset_of!(TrapFrame, x) + 31 * 8);

core::arch::global_asm!(
    include_str!("vectors.S"),
    FRAME_SIZE = const size_of::<TrapFrame>(),
    X30 = const offset_of!(TrapFrame, x) + 30 * 8,
    SPSR = const offset_of!(TrapFrame, spsr),
);

/// The vector kinds `vectors.S` passes to `hv_exception`.
pub mod kind {
    pub const CURRENT_SP0_SYNC: u64 = 0;
    pub const CURRENT_SPX_SYNC: u64 = 4;
    pub const CURRENT_SPX_IRQ: u64 = 5;
    pub const LOWER_A64_SYNC: u64 = 8;
    pub const LOWER_A64_IRQ: u64 = 9;
    pub const LOWER_A64_FIQ: u64 = 10;
    pub const LOWER_A64_SERROR: u64 = 11;
    pub const LOWER_A32_SYNC: u64 = 12;
    pub const LOWER_A32_IRQ: u64 = 13;
    pub const LOWER_A32_FIQ: u64 = 14;
    pub const LOWER_A32_SERROR: u64 = 15;

    /// The exception came from a guest (EL1 or EL0), not from the hypervisor.
    pub const fn from_lower_el(kind: u64) -> bool {
        kind >= 8
    }

    /// The offset within a group: 0 sync, 1 IRQ, 2 FIQ, 3 SError.
    pub const fn class(kind: u64) -> u64 {
        kind & 3
    }

    pub const NAMES: [&str; 16] = [
        "EL2t sync",
        "EL2t IRQ",
        "EL2t FIQ",
        "EL2t SError",
        "EL2h sync",
        "EL2h IRQ",
        "EL2h FIQ",
        "EL2h SError",
        "EL1/0 AArch64 sync",
        "EL1/0 AArch64 IRQ",
        "EL1/0 AArch64 FIQ",
        "EL1/0 AArch64 SError",
        "EL1/0 AArch32 sync",
        "EL1/0 AArch32 IRQ",
        "EL1/0 AArch32 FIQ",
        "EL1/0 AArch32 SError",
    ];
}

extern "C" {
    /// Loads `frame` into the registers and ERETs to it. The caller's stack below the
    /// current SP becomes the EL2 stack for the exceptions that follow.
    pub fn enter_guest(frame: *const TrapFrame) -> !;
}

impl TrapFrame {
    /// `*self = *src`, as 17 load/store pairs (a plain assignment of this 272-byte
    /// struct becomes a call to `memcpy`, which copies it in about four times as
    /// many instructions: the world switch copies two frames).
    #[inline(always)]
    pub fn copy_from(&mut self, src: &TrapFrame) {
        // SAFETY: both are valid, 8-byte-aligned frames of `size_of::<TrapFrame>()`
        // bytes, a multiple of 16 (asserted above), in normal memory; `&mut` and `&`
        // guarantee they do not overlap.
        unsafe {
            core::arch::asm!(
                ".rept {pairs}",
                "ldp {a}, {b}, [{s}], #16",
                "stp {a}, {b}, [{d}], #16",
                ".endr",
                pairs = const size_of::<TrapFrame>() / 16,
                s = inout(reg) src as *const TrapFrame => _,
                d = inout(reg) self as *mut TrapFrame => _,
                a = out(reg) _,
                b = out(reg) _,
                options(nostack, preserves_flags),
            )
        }
    }
}
