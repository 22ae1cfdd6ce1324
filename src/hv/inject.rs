//! Injecting synchronous exceptions into an AArch64 guest at EL1, exactly as the
//! hardware would take them (Arm ARM D1.10 "Exception entry"): ESR_EL1, FAR_EL1,
//! ELR_EL1 and SPSR_EL1 are written, and the guest resumes at the right vector of
//! VBAR_EL1 in EL1h with D, A, I and F masked. Only called while the vCPU is loaded,
//! so its EL1 registers are the hardware's.

use crate::arch::trap_frame::TrapFrame;
use crate::esr::{Esr, ExceptionClass};
use core::arch::asm;

/// Vector offset for a synchronous exception taken to EL1 from the mode in `spsr`.
fn vector_offset(spsr: u64) -> u64 {
    let from_aarch32 = spsr & (1 << 4) != 0;
    match (from_aarch32, spsr & 0xf) {
        (true, _) => 0x600,
        (false, 0b0000) => 0x400, // EL0t
        (false, 0b0100) => 0x000, // EL1t
        _ => 0x200,               // EL1h
    }
}

fn enter_el1(frame: &mut TrapFrame, esr: Esr, far: Option<u64>) {
    let vbar: u64;
    // SAFETY: the vCPU is loaded, so these are its EL1 registers; writing them is what
    // taking the exception in hardware would do.
    unsafe {
        asm!("mrs {}, vbar_el1", out(reg) vbar, options(nomem, nostack));
        asm!("msr esr_el1, {}", in(reg) esr.0, options(nomem, nostack));
        asm!("msr elr_el1, {}", in(reg) frame.elr, options(nomem, nostack));
        asm!("msr spsr_el1, {}", in(reg) frame.spsr, options(nomem, nostack));
        if let Some(far) = far {
            asm!("msr far_el1, {}", in(reg) far, options(nomem, nostack));
        }
    }
    frame.elr = vbar + vector_offset(frame.spsr);
    frame.spsr = super::vcpu::SPSR_EL1H;
}

/// UNDEFINED instruction: EC 0, IL as the trapped instruction's.
pub fn undef(frame: &mut TrapFrame, trapped: Esr) {
    enter_el1(
        frame,
        Esr::new(ExceptionClass::Unknown, trapped.instruction_len() == 4, 0),
        None,
    );
}

/// Synchronous external abort on a data access at `far` (DFSC 0b010000).
pub fn data_abort(frame: &mut TrapFrame, trapped: Esr, far: u64) {
    let from_el0 = frame.spsr & 0x1f == 0;
    let ec = if from_el0 {
        ExceptionClass::DataAbortLower
    } else {
        ExceptionClass::DataAbortSame
    };
    let wnr = trapped.data_abort().is_write() as u64;
    enter_el1(frame, Esr::new(ec, true, (wnr << 6) | 0b010000), Some(far));
}

/// Synchronous external abort on an instruction fetch at `far`.
pub fn instruction_abort(frame: &mut TrapFrame, far: u64) {
    let from_el0 = frame.spsr & 0x1f == 0;
    let ec = if from_el0 {
        ExceptionClass::InstrAbortLower
    } else {
        ExceptionClass::InstrAbortSame
    };
    enter_el1(frame, Esr::new(ec, true, 0b010000), Some(far));
}
