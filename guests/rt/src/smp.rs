//! Starting and stopping secondary CPUs with PSCI.
//!
//! A CPU is named by its index in the DTB's CPU list; it runs on stack slot
//! `index + 1` (slot 0 is the boot CPU's) and enters the function given to
//! [`start`], which the start code finds through a per-slot table filled in
//! before `CPU_ON`. When that function returns, the CPU calls `CPU_OFF`.

use core::sync::atomic::{AtomicUsize, Ordering};

use crate::psci::{self, PsciError};
use crate::start::STACK_SLOTS;
use crate::sysreg;

pub use smccc::psci::AffinityState;

/// The most CPUs (by DTB index) that can be started: one stack slot each.
pub const MAX_SECONDARY_INDEX: usize = STACK_SLOTS - 2;

/// What a secondary runs: called with its DTB index.
pub type SecondaryMain = fn(usize);

/// Per stack slot, the `SecondaryMain` to enter, as an address (0 = none).
static ENTRIES: [AtomicUsize; STACK_SLOTS] = [const { AtomicUsize::new(0) }; STACK_SLOTS];

unsafe extern "C" {
    /// The secondary entry point in `start.rs` (x0 = stack slot).
    fn rt_secondary_entry();
}

/// Why a CPU could not be started or did not stop.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SmpError {
    /// The DTB index has no stack slot.
    TooManyCpus,
    /// A PSCI call failed.
    Psci(PsciError),
    /// The CPU did not reach OFF before the deadline.
    Timeout,
}

impl core::fmt::Display for SmpError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            SmpError::TooManyCpus => write!(f, "CPU index above {MAX_SECONDARY_INDEX}"),
            SmpError::Psci(e) => write!(f, "{e}"),
            SmpError::Timeout => f.write_str("timed out"),
        }
    }
}

/// Starts the CPU with DTB index `index` and affinity `mpidr` in `main`.
pub fn start(index: usize, mpidr: u64, main: SecondaryMain) -> Result<(), SmpError> {
    if index > MAX_SECONDARY_INDEX {
        return Err(SmpError::TooManyCpus);
    }
    let slot = index + 1;
    ENTRIES[slot].store(main as usize, Ordering::SeqCst);
    let entry = rt_secondary_entry as *const () as usize as u64;
    psci::cpu_on(mpidr, entry, slot as u64).map_err(SmpError::Psci)
}

/// Milliseconds between two AFFINITY_INFO polls. Like Linux's `psci_cpu_kill`
/// (which sleeps 10 ms between polls), this leaves the CPU alone for a while: a
/// hypervisor that shares physical CPUs between vCPUs gets a whole time slice to
/// run the CPU we wait for, instead of an exit to EL2 every few microseconds.
const POLL_INTERVAL_MS: u64 = 20;

/// Polls AFFINITY_INFO until `mpidr` is OFF, for at most `timeout_ms` milliseconds
/// of the virtual counter.
pub fn wait_off(mpidr: u64, timeout_ms: u64) -> Result<(), SmpError> {
    let start = sysreg::counter();
    let ticks = ms_to_ticks(timeout_ms);
    loop {
        match psci::affinity_info(mpidr) {
            Ok(AffinityState::Off) => return Ok(()),
            Ok(_) => {}
            Err(e) => return Err(SmpError::Psci(e)),
        }
        if sysreg::counter().wrapping_sub(start) > ticks {
            return Err(SmpError::Timeout);
        }
        delay_ms(POLL_INTERVAL_MS);
    }
}

fn ms_to_ticks(ms: u64) -> u64 {
    sysreg::counter_frequency().saturating_mul(ms) / 1000
}

/// Busy-waits `ms` milliseconds of the virtual counter (no trap, no interrupt:
/// a WFI with interrupts masked and no timer wired up might never wake).
pub fn delay_ms(ms: u64) {
    let start = sysreg::counter();
    let ticks = ms_to_ticks(ms);
    while sysreg::counter().wrapping_sub(start) < ticks {
        core::hint::spin_loop();
    }
}

/// Called by the start code on a secondary CPU, on its own stack.
pub(crate) extern "C" fn rt_secondary(slot: usize) -> ! {
    let entry = ENTRIES.get(slot).map_or(0, |e| e.load(Ordering::SeqCst));
    if entry != 0 {
        // SAFETY: `start` stored this value from a `SecondaryMain` (a `fn(usize)`)
        // and nothing else writes ENTRIES.
        let main: SecondaryMain = unsafe { core::mem::transmute::<usize, SecondaryMain>(entry) };
        main(slot - 1);
    }
    let _ = psci::cpu_off();
    psci::halt()
}
