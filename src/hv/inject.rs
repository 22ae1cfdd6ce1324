//! Injecting synchronous exceptions into a guest at EL1, exactly as the hardware
//! would take them, for both execution states:
//!
//! * AArch64 (Arm ARM D1.10 "Exception entry"): ESR_EL1, FAR_EL1, ELR_EL1 and
//!   SPSR_EL1 are written; the guest resumes at the right vector of VBAR_EL1 in EL1h
//!   with D, A, I and F masked.
//! * AArch32 (G1.12, `AArch32.EnterMode`): the banked LR and SPSR of the target mode
//!   (Undefined or Abort) are written, DFSR/DFAR or IFSR/IFAR hold the fault, and the
//!   guest resumes at the vector (VBAR, or the high vectors if SCTLR.V) in that mode.
//!
//! Only called while the vCPU is loaded, so its EL1 registers are the hardware's.

use crate::arch::trap_frame::TrapFrame;
use crate::esr::{Esr, ExceptionClass};
use core::arch::asm;

/// The guest was executing in AArch32 (SPSR_EL2.M[4]).
fn from_aarch32(spsr: u64) -> bool {
    spsr & (1 << 4) != 0
}

/// Vector offset for a synchronous exception taken to AArch64 EL1 from the mode in
/// `spsr`.
fn vector_offset(spsr: u64) -> u64 {
    match (from_aarch32(spsr), spsr & 0xf) {
        (true, _) => 0x600,
        (false, 0b0000) => 0x400, // EL0t
        (false, 0b0100) => 0x000, // EL1t
        _ => 0x200,               // EL1h
    }
}

macro_rules! read_sysreg {
    ($reg:literal) => {{
        let v: u64;
        // SAFETY: reading a guest EL1 register from EL2 has no side effects.
        unsafe { asm!(concat!("mrs {}, ", $reg), out(reg) v, options(nomem, nostack)) };
        v
    }};
}

macro_rules! write_sysreg {
    ($reg:literal, $v:expr) => {{
        let v: u64 = $v;
        // SAFETY: the vCPU is loaded, so this is its register; writing it is what
        // taking the exception in hardware would do.
        unsafe { asm!(concat!("msr ", $reg, ", {}"), in(reg) v, options(nomem, nostack)) };
    }};
}

fn enter_el1_aarch64(frame: &mut TrapFrame, esr: Esr, far: Option<u64>) {
    let vbar = read_sysreg!("vbar_el1");
    write_sysreg!("esr_el1", esr.0);
    write_sysreg!("elr_el1", frame.elr);
    write_sysreg!("spsr_el1", frame.spsr);
    if let Some(far) = far {
        write_sysreg!("far_el1", far);
    }
    frame.elr = vbar + vector_offset(frame.spsr);
    frame.spsr = super::vcpu::SPSR_EL1H;
}

/// AArch32 modes and vector offsets.
const MODE_ABT: u64 = 0b10111;
const MODE_UND: u64 = 0b11011;

/// `AArch32.EnterMode` for Undefined and Abort: the banked LR (X22 is LR_und, X20 is
/// LR_abt in the AArch64 view), the banked SPSR, then the new CPSR and PC.
fn enter_el1_aarch32(frame: &mut TrapFrame, mode: u64, vector: u64, lr_offset: u64) {
    let thumb = frame.spsr & (1 << 5) != 0;
    let sctlr = read_sysreg!("sctlr_el1");
    // LR = preferred return address + the architected offset (Thumb: the same
    // offsets less 2 for Undefined; aborts keep theirs).
    let lr = frame.elr
        + if mode == MODE_UND && thumb {
            lr_offset - 2
        } else {
            lr_offset
        };
    match mode {
        MODE_UND => {
            frame.x[22] = lr & 0xffff_ffff;
            write_sysreg!("spsr_und", frame.spsr);
        }
        _ => {
            frame.x[20] = lr & 0xffff_ffff;
            write_sysreg!("spsr_abt", frame.spsr);
        }
    }
    // New CPSR: the mode, IRQs masked, asynchronous aborts masked for aborts, IT and
    // J cleared, T from SCTLR.TE (bit 30), E from SCTLR.EE (bit 25), PAN from
    // SCTLR.SPAN (bit 23, inverted).
    let mut cpsr = (frame.spsr & ((1 << 6) | (1 << 8) | (0xf << 28) | (1 << 22))) | mode | (1 << 7);
    if mode == MODE_ABT {
        cpsr |= 1 << 8;
    }
    if sctlr & (1 << 30) != 0 {
        cpsr |= 1 << 5;
    }
    if sctlr & (1 << 25) != 0 {
        cpsr |= 1 << 9;
    }
    if sctlr & (1 << 23) == 0 {
        cpsr |= 1 << 22;
    }
    let base = if sctlr & (1 << 13) != 0 {
        0xffff_0000
    } else {
        read_sysreg!("vbar_el1") & 0xffff_ffe0
    };
    frame.spsr = cpsr;
    frame.elr = base + vector;
}

/// UNDEFINED instruction: EC 0, IL as the trapped instruction's.
pub fn undef(frame: &mut TrapFrame, trapped: Esr) {
    if from_aarch32(frame.spsr) {
        enter_el1_aarch32(frame, MODE_UND, 0x04, 4);
    } else {
        let esr = Esr::new(ExceptionClass::Unknown, trapped.instruction_len() == 4, 0);
        enter_el1_aarch64(frame, esr, None);
    }
}

/// A `BRK` the guest executes for itself, delivered to its EL1 exactly as taken
/// without EL2 (same syndrome; the return address is the `BRK`).
pub fn software_breakpoint(frame: &mut TrapFrame, esr: Esr) {
    enter_el1_aarch64(frame, esr, None);
}

/// The AArch32 fault status for a synchronous external abort, in the format the
/// guest's translation regime uses: long descriptors (TTBCR.EAE) or short.
fn aarch32_external_abort_fsr(write: bool) -> u64 {
    let ttbcr = read_sysreg!("tcr_el1") & 0xffff_ffff;
    let wnr = (write as u64) << 11;
    if ttbcr & (1 << 31) != 0 {
        wnr | (1 << 9) | 0b010000 // LPAE format, STATUS = synchronous external abort
    } else {
        wnr | 0b01000 // short format, FS = synchronous external abort
    }
}

/// Synchronous external abort on a data access at `far` (DFSC 0b010000).
pub fn data_abort(frame: &mut TrapFrame, trapped: Esr, far: u64) {
    let write = trapped.data_abort().is_write();
    if from_aarch32(frame.spsr) {
        // DFSR is ESR_EL1[31:0], DFAR is FAR_EL1[31:0].
        write_sysreg!("esr_el1", aarch32_external_abort_fsr(write));
        let far_el1 = read_sysreg!("far_el1");
        write_sysreg!("far_el1", (far_el1 & !0xffff_ffff) | (far & 0xffff_ffff));
        enter_el1_aarch32(frame, MODE_ABT, 0x10, 8);
        return;
    }
    let from_el0 = frame.spsr & 0x1f == 0;
    let ec = if from_el0 {
        ExceptionClass::DataAbortLower
    } else {
        ExceptionClass::DataAbortSame
    };
    enter_el1_aarch64(
        frame,
        Esr::new(ec, true, ((write as u64) << 6) | 0b010000),
        Some(far),
    );
}

/// Synchronous external abort on an instruction fetch at `far`.
pub fn instruction_abort(frame: &mut TrapFrame, far: u64) {
    if from_aarch32(frame.spsr) {
        // IFSR is IFSR32_EL2, IFAR is FAR_EL1[63:32].
        write_sysreg!("ifsr32_el2", aarch32_external_abort_fsr(false));
        let far_el1 = read_sysreg!("far_el1");
        write_sysreg!("far_el1", (far_el1 & 0xffff_ffff) | (far << 32));
        enter_el1_aarch32(frame, MODE_ABT, 0x0c, 4);
        return;
    }
    let from_el0 = frame.spsr & 0x1f == 0;
    let ec = if from_el0 {
        ExceptionClass::InstrAbortLower
    } else {
        ExceptionClass::InstrAbortSame
    };
    enter_el1_aarch64(frame, Esr::new(ec, true, 0b010000), Some(far));
}
