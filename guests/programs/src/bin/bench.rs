//! `bench`: what the operations the hypervisor emulates cost, in counter ticks.
//!
//! Under QEMU `-icount shift=0,sleep=off,align=off` with `-cpu max`, the virtual
//! counter runs at 1 GHz and advances one tick per executed instruction, so a tick
//! count is an instruction count and repeated runs give identical figures. Each
//! operation runs `N` times in a loop; the loop's own cost (measured with an empty
//! body) is subtracted. `cargo xtask bench` runs this guest bare and under the
//! hypervisor and prints both side by side.
//!
//! Lines: `bench: counter_hz=F`, then `bench: op=<name> ticks_per_op=<n>` per
//! operation, then PASS.

#![no_std]
#![no_main]
#![deny(unsafe_op_in_unsafe_fn)]
#![deny(clippy::undocumented_unsafe_blocks)]

use core::arch::asm;
use rt::{Boot, Fail, say};

rt::guest!("bench", main);

const N: u64 = 1000;

/// The counter, after every earlier instruction has completed.
fn now() -> u64 {
    let t: u64;
    // SAFETY: `isb` and a counter read have no side effects.
    unsafe { asm!("isb", "mrs {}, cntvct_el0", "isb", out(reg) t, options(nomem, nostack)) };
    t
}

fn ticks(mut op: impl FnMut(u64)) -> u64 {
    let start = now();
    for i in 0..N {
        op(core::hint::black_box(i));
    }
    now().wrapping_sub(start)
}

fn main(_boot: &Boot) -> Result<(), Fail> {
    say!("counter_hz={}", rt::sysreg::counter_frequency());
    let empty = ticks(|_| {});
    let per_op = |t: u64| t.saturating_sub(empty) / N;
    let saved_contextidr: u64;
    // SAFETY: reading CONTEXTIDR_EL1 has no side effects.
    unsafe { asm!("mrs {}, contextidr_el1", out(reg) saved_contextidr, options(nomem, nostack)) };

    let results = [
        // Trapped under the hypervisor only when the VM's memory controls are traced
        // (HCR_EL2.TVM: `hv.trace_vm_regs`).
        (
            "msr_contextidr_el1",
            per_op(ticks(|i| {
                // SAFETY: CONTEXTIDR_EL1 only tags the current context for debug and
                // trace; this program uses neither. It is restored below.
                unsafe { asm!("msr contextidr_el1, {}", in(reg) i, options(nomem, nostack)) }
            })),
        ),
        // Trapped by HCR_EL2.TACR (reads 0: the host's controls stay hidden).
        (
            "mrs_actlr_el1",
            per_op(ticks(|_| {
                let v: u64;
                // SAFETY: reading ACTLR_EL1 has no side effects.
                unsafe { asm!("mrs {}, actlr_el1", out(reg) v, options(nomem, nostack)) };
                core::hint::black_box(v);
            })),
        ),
        // Trapped by HCR_EL2.TID3 (an ID register, sanitised).
        (
            "mrs_id_aa64pfr0_el1",
            per_op(ticks(|_| {
                let v: u64;
                // SAFETY: reading an ID register has no side effects.
                unsafe { asm!("mrs {}, id_aa64pfr0_el1", out(reg) v, options(nomem, nostack)) };
                core::hint::black_box(v);
            })),
        ),
        // Never trapped: the baseline of a system-register write.
        (
            "msr_tpidr_el1",
            per_op(ticks(|i| {
                // SAFETY: TPIDR_EL1 is software scratch; this program does not use it.
                unsafe { asm!("msr tpidr_el1, {}", in(reg) i, options(nomem, nostack)) }
            })),
        ),
        // A hypercall round trip: PSCI_VERSION through the DTB's conduit.
        (
            "psci_version",
            per_op(ticks(|_| {
                core::hint::black_box(rt::psci::version().ok());
            })),
        ),
    ];
    // SAFETY: puts back the value read above.
    unsafe { asm!("msr contextidr_el1, {}", in(reg) saved_contextidr, options(nomem, nostack)) };
    for (name, t) in results {
        say!("op={name} ticks_per_op={t}");
    }
    Ok(())
}
