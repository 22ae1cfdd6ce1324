//! The EL2 physical timer (CNTHP), the hypervisor's scheduling tick, and the counter.

use aarch64_cpu::registers::{Readable, Writeable, CNTFRQ_EL0, CNTHP_CTL_EL2, CNTPCT_EL0};
use core::arch::asm;

pub fn frequency() -> u64 {
    CNTFRQ_EL0.get()
}

pub fn now() -> u64 {
    CNTPCT_EL0.get()
}

/// Arms the EL2 physical timer to fire `ticks` counter ticks from now.
pub fn arm(ticks: u64) {
    // SAFETY: CNTHP_TVAL_EL2 only sets the EL2 timer's compare value.
    unsafe { asm!("msr cnthp_tval_el2, {}", in(reg) ticks.min(u32::MAX as u64)) };
    CNTHP_CTL_EL2.write(CNTHP_CTL_EL2::ENABLE::SET + CNTHP_CTL_EL2::IMASK::CLEAR);
}

pub fn disarm() {
    CNTHP_CTL_EL2.write(CNTHP_CTL_EL2::ENABLE::CLEAR);
}
