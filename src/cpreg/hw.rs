//! Access to the real system registers, behind a trait so the emulation and the
//! world switch run unchanged under host tests.
//!
//! * [`SysRegHw`]: read or write the hardware register of a table entry.
//! * [`FakeHw`]: keeps values in memory (arm-gic's `sysreg/fake.rs` idea), and
//!   asserts that only hardware-backed entries are touched and that read-only ones
//!   are never written: a broken internal invariant, not a guest error.
//! * The real registers: `crate::arch::sysreg::Hw` (bare-metal AArch64 only),
//!   generated from the same rows, so this module keeps the portable side free of
//!   `unsafe`.

#![forbid(unsafe_code)]

use super::counters::{TrapCounters, TRAP_COUNTERS};
use super::entry::{Flags, State};
use super::table::{Reg, COUNT};

/// The hardware side of the system registers.
pub trait SysRegHw {
    /// This, as a trait object (for the table's `Func` entries, which are plain
    /// function pointers and so cannot be generic).
    fn dynamic(&mut self) -> &mut dyn SysRegHw;
    /// Read the hardware register of a `hw` or `ro` entry.
    fn read(&mut self, reg: Reg) -> u64;
    /// Write the hardware register of a `hw` entry.
    fn write(&mut self, reg: Reg, value: u64);
    /// [`SysRegHw::read`] by entry number (`Reg as usize`; 0 for none).
    fn read_index(&mut self, i: usize) -> u64 {
        Reg::ALL.get(i).map_or(0, |&r| self.read(r))
    }
    /// [`SysRegHw::write`] by entry number (`Reg as usize`; none: nothing).
    fn write_index(&mut self, i: usize, value: u64) {
        if let Some(&r) = Reg::ALL.get(i) {
            self.write(r, value)
        }
    }
    /// Context synchronisation (`isb`) after writes whose effect later reads depend
    /// on (e.g. `CSSELR_EL1` before `CCSIDR_EL1`).
    fn sync(&mut self) {}
    /// The host's `CCSIDR_EL1` for cache selection `csselr` (used once, to build the
    /// guest's ID values). `CSSELR_EL1` is restored afterwards.
    fn ccsidr(&mut self, csselr: u64) -> u64 {
        let _ = csselr;
        0
    }
    /// Where the emulation counts the accesses it performs: the hypervisor's
    /// [`TRAP_COUNTERS`] (what the console's `traps` shows) unless overridden.
    fn counters(&self) -> &TrapCounters {
        &TRAP_COUNTERS
    }
}

/// An in-memory stand-in for the hardware registers.
pub struct FakeHw {
    pub values: [u64; COUNT],
    pub reads: usize,
    pub writes: usize,
    /// This fake's own trap counters (never the hypervisor's global ones).
    pub counters: TrapCounters,
}

impl Default for FakeHw {
    fn default() -> Self {
        Self::new()
    }
}

impl FakeHw {
    pub const fn new() -> Self {
        FakeHw {
            values: [0; COUNT],
            reads: 0,
            writes: 0,
            counters: TrapCounters::new(),
        }
    }
}

impl SysRegHw for FakeHw {
    fn dynamic(&mut self) -> &mut dyn SysRegHw {
        self
    }

    fn read(&mut self, reg: Reg) -> u64 {
        assert!(
            reg.entry().is(Flags::HW),
            "{}: not hardware-backed",
            reg.name()
        );
        self.reads += 1;
        self.values[reg as usize]
    }

    fn write(&mut self, reg: Reg, value: u64) {
        let e = reg.entry();
        assert!(e.is(Flags::HW), "{}: not hardware-backed", e.name);
        assert!(
            matches!(e.state, State::Own) && !e.is(Flags::CONST),
            "{}: read-only hardware register written",
            e.name
        );
        self.writes += 1;
        self.values[reg as usize] = value;
    }

    fn counters(&self) -> &TrapCounters {
        &self.counters
    }
}
