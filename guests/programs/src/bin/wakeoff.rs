//! `wakeoff`: a VM that powers itself off while one of its vCPUs has just been
//! woken and waits for its physical CPU (GICv3).
//!
//! After `after_ms=M` milliseconds (default 0), vCPU 1 starts; it announces that
//! it is about to wait, then waits in WFI (interrupts
//! masked at PSTATE, nothing pending: the hypervisor blocks it and runs another
//! vCPU of that physical CPU). The boot vCPU, on another physical CPU, sees the
//! announcement, lets the hypervisor switch (`delay_us=D`, default 20), sends
//! vCPU 1 an SGI and powers the VM off (SYSTEM_OFF) at once. The SGI wakes vCPU
//! 1; the hypervisor lets the vCPU that just took its CPU run its minimum
//! (100 us) before vCPU 1 preempts it, so the power-off comes while vCPU 1 is
//! woken and waiting. A test puts another VM's vCPU on vCPU 1's physical CPU and
//! checks that it runs on at full speed once this VM is gone.
//!
//! Lines: `wakeoff: vCPU 1 starts and waits; the VM powers off just after waking
//! it`, then the VM powers off without a PASS line (the power-off must follow the
//! SGI at once); or FAIL.

#![no_std]
#![no_main]
#![deny(unsafe_op_in_unsafe_fn)]
#![deny(clippy::undocumented_unsafe_blocks)]

use core::arch::asm;
use core::sync::atomic::{AtomicU64, Ordering};
use rt::{Boot, Fail, fail, gic, say, smp, sysreg};

rt::guest!("wakeoff", main);

/// Set by vCPU 1 right before its WFI.
static WAITING: AtomicU64 = AtomicU64::new(0);
fn number(boot: &Boot, key: &str, default: u64) -> Result<u64, Fail> {
    match boot.bootarg(key) {
        None => Ok(default),
        Some(text) => text.parse().map_err(|_| fail!("bad {key}={text}")),
    }
}

/// Busy-waits `us` microseconds of the virtual counter.
fn wait_us(us: u64) {
    let (hz, start) = (sysreg::counter_frequency(), sysreg::counter());
    while sysreg::counter().wrapping_sub(start) < hz * us / 1_000_000 {
        core::hint::spin_loop();
    }
}

/// vCPU 1: say it waits, and wait (for good: the VM powers off meanwhile).
fn waiter(_index: usize) {
    WAITING.store(1, Ordering::SeqCst);
    loop {
        // SAFETY: waits for an interrupt; IRQs stay masked at PSTATE.
        unsafe { asm!("msr daifset, #2", "dsb sy", "wfi", options(nomem, nostack)) };
    }
}

fn main(boot: &Boot) -> Result<(), Fail> {
    let after_ms = number(boot, "after_ms", 0)?;
    let delay_us = number(boot, "delay_us", 20)?;
    let off_us = number(boot, "off_us", 40)?;
    let Some(mpidr) = boot.cpus().nth(1) else {
        return Err(fail!("needs 2 vCPUs"));
    };
    // SGI 0 enabled for vCPU 1: the hypervisor wakes a vCPU for an interrupt it
    // could take.
    gic::enable_private_of(boot, 1, 1)?;
    smp::delay_ms(after_ms);
    // Said now: printing takes longer than the moment lasts.
    say!("vCPU 1 starts and waits; the VM powers off just after waking it");
    smp::start(1, mpidr, waiter).map_err(|e| fail!("starting vCPU 1: {e}"))?;
    while WAITING.load(Ordering::SeqCst) == 0 {
        core::hint::spin_loop();
    }
    // Time for its WFI to reach the hypervisor and for the switch to the other vCPU.
    wait_us(delay_us);
    // ICC_SGI1R_EL1: SGI 0 to Aff0 = 1 (vCPU 1; Aff3-1 are 0 in a VM's MPIDRs).
    let target = 1u64 << (mpidr & 0xf);
    // SAFETY: sends an SGI to this VM's own vCPU 1.
    unsafe { asm!("msr S3_0_C12_C11_5, {}", "isb", in(reg) target, options(nomem, nostack)) };
    // Time for vCPU 1's CPU to take the wake-up, less than the minimum it lets
    // the running vCPU have.
    wait_us(off_us);
    rt::psci::system_off()
}
