//! `wfi`: a vCPU blocked in WFI wakes when its virtual timer fires.
//!
//! Five times: arm the EL1 virtual timer 10 ms ahead (CNTV_CVAL_EL0, enabled and
//! unmasked), then wait in WFI with interrupts masked at PSTATE (so the wake-up is
//! tested, not the interrupt handler) until the timer's condition holds
//! (CNTV_CTL_EL0.ISTATUS). WFI may wake early (the architecture allows it), so the
//! guest counts its wake-ups; it must not wake late by more than a slice, and it
//! must not spin: at most a handful of wake-ups per wait.
//!
//! Lines: `wfi: wait N: woke after T us (W wake-ups)` x5, then PASS or FAIL.

#![no_std]
#![no_main]
#![deny(unsafe_op_in_unsafe_fn)]
#![deny(clippy::undocumented_unsafe_blocks)]

use core::arch::asm;
use rt::{Boot, Fail, fail, say, sysreg};

rt::guest!("wfi", main);

const WAIT_US: u64 = 10_000;

fn ctl() -> u64 {
    let v: u64;
    // SAFETY: reading the timer control has no side effects.
    unsafe { asm!("mrs {}, cntv_ctl_el0", out(reg) v, options(nomem, nostack)) };
    v
}

fn main(_boot: &Boot) -> Result<(), Fail> {
    let hz = sysreg::counter_frequency();
    let ticks = hz * WAIT_US / 1_000_000;
    for n in 1..=5 {
        let start = sysreg::counter();
        let mut wakeups = 0u64;
        // SAFETY: the virtual timer belongs to this guest; IRQs stay masked at PSTATE,
        // so its interrupt is never taken, only its wake-up seen.
        unsafe {
            asm!("msr daifset, #2", "msr cntv_cval_el0, {}", "msr cntv_ctl_el0, {}", "isb",
                 in(reg) start + ticks, in(reg) 1u64, options(nomem, nostack))
        };
        while ctl() & 0b100 == 0 {
            // SAFETY: waits for an event or interrupt; no memory effects.
            unsafe { asm!("dsb sy", "wfi", options(nomem, nostack)) };
            wakeups += 1;
            if wakeups > 100_000 {
                return Err(fail!("wait {n}: the timer never fired (ISTATUS clear)"));
            }
        }
        let waited = sysreg::counter().wrapping_sub(start);
        // SAFETY: disables the timer again.
        unsafe { asm!("msr cntv_ctl_el0, xzr", "isb", options(nomem, nostack)) };
        let us = waited * 1_000_000 / hz;
        say!("wait {n}: woke after {us} us ({wakeups} wake-ups)");
        if us < WAIT_US {
            return Err(fail!(
                "wait {n}: ISTATUS set after {us} us, before the {WAIT_US} us deadline"
            ));
        }
    }
    Ok(())
}
