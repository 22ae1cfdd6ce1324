//! Access to the real system registers, behind a trait so the emulation and the
//! world switch run unchanged under host tests.
//!
//! * [`SysRegHw`]: read or write the hardware register of a table entry.
//! * [`FakeHw`]: keeps values in memory (arm-gic's `sysreg/fake.rs` idea), and
//!   asserts that only hardware-backed entries are touched and that read-only ones
//!   are never written: a broken internal invariant, not a guest error.
//! * `Hw` (bare-metal AArch64 only): one `mrs` and one `msr` function per `hw`
//!   row and one `mrs` per `ro` row, generated from `rows.rs` with the assembler's
//!   generic `S<op0>_<op1>_C<n>_C<m>_<op2>` names, so no list of register names is
//!   kept by hand. The hypervisor runs at EL2 without VHE, so the `_EL1` encodings
//!   reach the EL1 registers (never the `_EL12` ones).

use super::counters::{TrapCounters, TRAP_COUNTERS};
use super::entry::{Flags, State};
use super::table::{Reg, COUNT};

/// The hardware side of the system registers.
pub trait SysRegHw {
    /// Read the hardware register of a `hw` or `ro` entry.
    fn read(&mut self, reg: Reg) -> u64;
    /// Write the hardware register of a `hw` entry.
    fn write(&mut self, reg: Reg, value: u64);
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

#[cfg(all(target_arch = "aarch64", target_os = "none"))]
pub use real::Hw;

#[cfg(all(target_arch = "aarch64", target_os = "none"))]
mod real {
    use super::super::table::{Reg, COUNT};
    use super::SysRegHw;

    /// The accessors of one hardware-backed row.
    #[derive(Clone, Copy)]
    struct HwFns {
        read: fn() -> u64,
        write: fn(u64),
    }

    /// `ro` rows: the emulation never writes them (the fake asserts it); if it ever
    /// did, ignoring the write is what a read-only register does.
    fn no_write(_: u64) {}

    macro_rules! hw_accessor {
        (- [$($x:tt)*]) => {
            None
        };
        (ro [$op0:literal, $op1:literal, $crn:literal, $crm:literal, $op2:literal]) => {
            Some(HwFns {
                read: {
                    fn r() -> u64 {
                        let v: u64;
                        // SAFETY: reading a system register the table marks as
                        // present at EL2 has no effect on memory or on the
                        // hypervisor's own state.
                        unsafe {
                            core::arch::asm!(
                                concat!("mrs {}, s", $op0, "_", $op1, "_c", $crn, "_c", $crm, "_", $op2),
                                out(reg) v,
                                options(nomem, nostack, preserves_flags)
                            )
                        };
                        v
                    }
                    r
                },
                write: no_write,
            })
        };
        (hw [$op0:literal, $op1:literal, $crn:literal, $crm:literal, $op2:literal]) => {
            Some(HwFns {
                read: {
                    fn r() -> u64 {
                        let v: u64;
                        // SAFETY: reading a system register the table marks as
                        // present at EL2 has no effect on memory or on the
                        // hypervisor's own state.
                        unsafe {
                            core::arch::asm!(
                                concat!("mrs {}, s", $op0, "_", $op1, "_c", $crn, "_c", $crm, "_", $op2),
                                out(reg) v,
                                options(nomem, nostack, preserves_flags)
                            )
                        };
                        v
                    }
                    r
                },
                write: {
                    fn w(v: u64) {
                        // SAFETY: `hw` rows are EL1/EL0 (or AArch32 EL1) state of
                        // the guest. Without VHE, EL2 runs in its own translation
                        // regime with its own controls, so writing them changes
                        // only what the guest sees when it next runs.
                        unsafe {
                            core::arch::asm!(
                                concat!("msr s", $op0, "_", $op1, "_c", $crn, "_c", $crm, "_", $op2, ", {}"),
                                in(reg) v,
                                options(nostack, preserves_flags)
                            )
                        };
                    }
                    w
                },
            })
        };
    }

    macro_rules! define_hw {
        ($( $name:ident : [$($a64:tt)*] [$($a32:tt)*] $hw:tt => $def:expr ; )*) => {
            static HW_FNS: [Option<HwFns>; COUNT] = [$( hw_accessor!($hw [$($a64)*]) ),*];
        };
    }

    with_cpreg_rows!(define_hw);

    /// The real system registers of the current CPU.
    pub struct Hw;

    impl SysRegHw for Hw {
        #[inline]
        fn read(&mut self, reg: Reg) -> u64 {
            match HW_FNS[reg as usize] {
                Some(f) => (f.read)(),
                None => 0,
            }
        }

        #[inline]
        fn write(&mut self, reg: Reg, value: u64) {
            if let Some(f) = HW_FNS[reg as usize] {
                (f.write)(value)
            }
        }

        fn sync(&mut self) {
            // SAFETY: `isb` only synchronises the context; it touches no memory.
            unsafe { core::arch::asm!("isb", options(nomem, nostack, preserves_flags)) };
        }

        fn ccsidr(&mut self, csselr: u64) -> u64 {
            let saved = self.read(Reg::CSSELR_EL1);
            self.write(Reg::CSSELR_EL1, csselr);
            self.sync();
            let v: u64;
            // SAFETY: reading CCSIDR_EL1 has no side effects.
            unsafe {
                core::arch::asm!("mrs {}, ccsidr_el1", out(reg) v, options(nomem, nostack, preserves_flags))
            };
            self.write(Reg::CSSELR_EL1, saved);
            self.sync();
            v
        }
    }
}
