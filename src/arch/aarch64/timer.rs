//! The EL2 physical timer (CNTHP), the hypervisor's scheduling tick, and the counter.

use aarch64_cpu::registers::{Readable, Writeable, CNTFRQ_EL0, CNTHP_CTL_EL2, CNTPCT_EL0};
use core::arch::asm;

/// The counter's frequency in Hz: CNTFRQ_EL0, or the device tree's value when
/// the firmware left CNTFRQ_EL0 at 0 ([`set_frequency`]).
pub fn frequency() -> u64 {
    match FREQUENCY.load(core::sync::atomic::Ordering::Relaxed) {
        0 => CNTFRQ_EL0.get(),
        hz => hz,
    }
}

/// CNTFRQ_EL0 as the firmware left it.
pub fn firmware_frequency() -> u64 {
    CNTFRQ_EL0.get()
}

static FREQUENCY: core::sync::atomic::AtomicU64 = core::sync::atomic::AtomicU64::new(0);

/// Uses `hz` as the counter frequency (CNTFRQ_EL0 is writable only at the highest
/// exception level, so the value is kept here).
pub fn set_frequency(hz: u64) {
    FREQUENCY.store(hz, core::sync::atomic::Ordering::SeqCst);
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

/// Arms the EL2 physical timer to fire when the counter reaches `deadline` (at once
/// if it already has).
pub fn arm_at(deadline: u64) {
    // SAFETY: CNTHP_CVAL_EL2 only sets the EL2 timer's compare value.
    unsafe { asm!("msr cnthp_cval_el2, {}", in(reg) deadline) };
    CNTHP_CTL_EL2.write(CNTHP_CTL_EL2::ENABLE::SET + CNTHP_CTL_EL2::IMASK::CLEAR);
}
