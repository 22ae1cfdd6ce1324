//! `demo`: the bundled demo guest.
//!
//! Shows what a VM looks like from the inside (exception level, ID registers,
//! memory, CPUs and bootargs from its DTB, the PSCI version), then starts every
//! other CPU with PSCI `CPU_ON`; each prints one line and turns itself off with
//! `CPU_OFF`, and the boot CPU waits for `AFFINITY_INFO` to report it off.
//!
//! All secondaries are started at once, but they print one at a time: the boot CPU
//! hands out a turn (by DTB index) and waits for each to report its MPIDR, so the
//! output order is fixed and no console lock is needed.

#![no_std]
#![no_main]
#![deny(unsafe_op_in_unsafe_fn)]
#![deny(clippy::undocumented_unsafe_blocks)]

use core::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use rt::sysreg::{self, MPIDR_AFFINITY_MASK};
use rt::{Boot, Fail, fail, psci, say, smp};

rt::guest!("demo", main);

/// Milliseconds a secondary gets to come online, and then to go off.
const DEADLINE_MS: u64 = 10_000;
/// Nobody's turn.
const NO_TURN: usize = usize::MAX;
/// Most CPUs the demo handles (indexes beyond get no stack slot anyway).
const MAX_CPUS: usize = smp::MAX_SECONDARY_INDEX + 1;

/// The DTB index of the secondary allowed to print.
static TURN: AtomicUsize = AtomicUsize::new(NO_TURN);
/// Per DTB index: the MPIDR affinity the CPU found in its own MPIDR_EL1, plus one
/// (0 = not online yet).
static SEEN: [AtomicU64; MAX_CPUS] = [const { AtomicU64::new(0) }; MAX_CPUS];

fn main(boot: &Boot) -> Result<(), Fail> {
    say!("hello from EL1");
    say!(
        "image at 0x{:x}, dtb at 0x{:x}",
        rt::boot::image_base(),
        boot.dtb_address()
    );
    say!("CurrentEL=EL{}", sysreg::current_el());
    say!("MIDR_EL1=0x{:016x}", sysreg::midr());
    say!("MPIDR_EL1=0x{:016x}", sysreg::mpidr());
    say!("SCTLR_EL1=0x{:016x}", sysreg::sctlr());
    say!("ID_AA64PFR0_EL1=0x{:016x}", sysreg::id_aa64pfr0());
    for region in boot.memory() {
        say!("memory region 0x{:x}..0x{:x}", region.base, region.end());
    }
    let memory = boot.memory_size();
    say!("memory={} MiB (0x{:x} bytes)", memory >> 20, memory);
    let cpus = boot.cpus().count();
    say!("cpus={cpus}");
    say!("bootargs={}", boot.bootargs());
    let conduit = psci::conduit().ok_or_else(|| fail!("no PSCI method in the DTB"))?;
    let version = psci::version().map_err(|e| fail!("PSCI_VERSION: {e}"))?;
    say!("psci version={version} conduit={}", conduit.name());

    if memory == 0 {
        return Err(fail!("no memory in the DTB"));
    }
    if cpus > MAX_CPUS {
        return Err(fail!("{cpus} CPUs in the DTB, the demo handles {MAX_CPUS}"));
    }
    let me = sysreg::affinity();
    let boot_index = boot
        .cpus()
        .position(|mpidr| mpidr == me)
        .ok_or_else(|| fail!("boot CPU (mpidr 0x{me:x}) is not in the DTB"))?;
    say!("boot cpu {boot_index} (mpidr 0x{me:x})");

    let secondaries = || {
        boot.cpus()
            .enumerate()
            .filter(move |&(i, _)| i != boot_index)
    };
    for (index, mpidr) in secondaries() {
        smp::start(index, mpidr, secondary).map_err(|e| fail!("CPU_ON cpu {index}: {e}"))?;
    }
    for (index, mpidr) in secondaries() {
        wait_online(index, mpidr)?;
    }
    for (index, mpidr) in secondaries() {
        smp::wait_off(mpidr, DEADLINE_MS).map_err(|e| fail!("cpu {index} not off: {e}"))?;
    }
    say!("cpus online={cpus}/{cpus}");
    Ok(())
}

/// Gives `index` the turn and waits until it reports in with the right MPIDR.
fn wait_online(index: usize, mpidr: u64) -> Result<(), Fail> {
    TURN.store(index, Ordering::SeqCst);
    let start = sysreg::counter();
    let ticks = sysreg::counter_frequency().saturating_mul(DEADLINE_MS) / 1000;
    loop {
        let seen = SEEN[index].load(Ordering::SeqCst);
        if seen != 0 {
            TURN.store(NO_TURN, Ordering::SeqCst);
            let seen = seen - 1;
            return if seen == mpidr {
                Ok(())
            } else {
                Err(fail!(
                    "cpu {index}: MPIDR_EL1 says 0x{seen:x}, the DTB 0x{mpidr:x}"
                ))
            };
        }
        if sysreg::counter().wrapping_sub(start) > ticks {
            return Err(fail!("cpu {index} did not come online"));
        }
        core::hint::spin_loop();
    }
}

/// A secondary CPU: waits for its turn, prints, reports, and returns (CPU_OFF).
fn secondary(index: usize) {
    while TURN.load(Ordering::SeqCst) != index {
        core::hint::spin_loop();
    }
    let mpidr = sysreg::mpidr() & MPIDR_AFFINITY_MASK;
    say!("cpu {index} (mpidr 0x{mpidr:x}) online");
    SEEN[index].store(mpidr + 1, Ordering::SeqCst);
}
