//! The real system registers of the cpreg table: `mrs`/`msr` for every `hw` row and
//! `mrs` for every `ro` row, generated from `cpreg/rows.rs` with the assembler's
//! generic `S<op0>_<op1>_C<n>_C<m>_<op2>` names, so no list of register names is
//! kept by hand.
//!
//! Each access is a `match` on the entry (a jump table) with the instruction inline,
//! not a call through a table of function pointers: the trap fast path reads and
//! writes registers without making a call, so it needs no stack frame. The
//! hypervisor runs at EL2 without VHE, so the `_EL1` encodings reach the EL1
//! registers (never the `_EL12` ones).

use crate::cpreg::switch::{switched, Switched};
use crate::cpreg::table::SLOT_SPACE;
use crate::cpreg::{Reg, SysRegHw};

macro_rules! read_row {
    (- [$($x:tt)*]) => {
        0
    };
    ($hw:tt [$op0:literal, $op1:literal, $crn:literal, $crm:literal, $op2:literal]) => {{
        let v: u64;
        // SAFETY: reading a system register the table marks as present at EL2
        // (`hw` or `ro`) has no effect on memory or on the hypervisor's own state.
        unsafe {
            core::arch::asm!(
                concat!("mrs {}, s", $op0, "_", $op1, "_c", $crn, "_c", $crm, "_", $op2),
                out(reg) v,
                options(nomem, nostack, preserves_flags)
            )
        };
        v
    }};
}

macro_rules! write_row {
    (hw [$op0:literal, $op1:literal, $crn:literal, $crm:literal, $op2:literal], $v:expr) => {
        // SAFETY: `hw` rows are EL1/EL0 (or AArch32 EL1) state of the guest.
        // Without VHE, EL2 runs in its own translation regime with its own
        // controls, so writing them changes only what the guest sees when it next
        // runs.
        unsafe {
            core::arch::asm!(
                concat!("msr s", $op0, "_", $op1, "_c", $crn, "_c", $crm, "_", $op2, ", {}"),
                in(reg) $v,
                options(nostack, preserves_flags)
            )
        }
    };
    // `ro` and emulated rows: the emulation never writes them (the fake asserts
    // it); if it ever did, ignoring the write is what a read-only register does.
    ($hw:tt [$($x:tt)*], $v:expr) => {{
        let _ = $v;
    }};
}

macro_rules! define_hw {
    ($( $name:ident : [$($a64:tt)*] [$($a32:tt)*] $hw:tt => $def:expr ; )*) => {
        /// Each entry's number (`Reg as usize`), for matching on a number.
        #[allow(non_upper_case_globals)]
        mod index {
            use crate::cpreg::Reg;
            $( pub const $name: usize = Reg::$name as usize; )*
        }

        #[inline(always)]
        fn read(reg: Reg) -> u64 {
            read_index(reg as usize)
        }

        #[inline(always)]
        fn write(reg: Reg, value: u64) {
            write_index(reg as usize, value)
        }

        #[inline(always)]
        fn read_index(i: usize) -> u64 {
            match i {
                $( index::$name => read_row!($hw [$($a64)*]), )*
                _ => 0,
            }
        }

        #[inline(always)]
        fn write_index(i: usize, value: u64) {
            match i {
                $( index::$name => write_row!($hw [$($a64)*], value), )*
                _ => {}
            }
        }
    };
}

crate::cpreg::with_cpreg_rows!(define_hw);

/// The slot of a switched row (a compile-time constant; 0 for rows without one,
/// which are never switched).
const fn slot(reg: Reg) -> usize {
    match reg.slot() {
        Some(s) => s,
        None => 0,
    }
}

/// The event counter a PMU row belongs to (`Some(n)`), or `None` (for the rows
/// of the PMU group, `Some(u8::MAX)`: always moved with the group).
const fn pmu_counter(reg: Reg) -> Option<u8> {
    match switched(reg) {
        Switched::Pmu => Some(u8::MAX),
        Switched::PmuCounter(n) => Some(n),
        _ => None,
    }
}

/// The breakpoint (`b`) or watchpoint pair a debug row belongs to, or `None`.
const fn pair(reg: Reg) -> Option<(bool, u8)> {
    match switched(reg) {
        Switched::DebugBrp(n) => Some((true, n)),
        Switched::DebugWrp(n) => Some((false, n)),
        _ => None,
    }
}

// The world switch's register moves, generated from the rows: for each row, a
// compile-time test of how it is switched (`cpreg::switch::switched`) around one
// `mrs` + store or load + `msr`. Rows not in the group compile to nothing, so each
// function is straight-line code in row order (each timer's CVAL before its CTL),
// with no per-register call, lookup or flag test.
macro_rules! define_switch {
    ($( $name:ident : [$($a64:tt)*] [$($a32:tt)*] $hw:tt => $def:expr ; )*) => {
        /// Saves the registers switched on every world switch (and, for a VM whose
        /// EL1 is AArch32, its AArch32 EL1 state) into `slots`.
        pub fn save_el1(slots: &mut [u64; SLOT_SPACE], aarch32: bool) {
            $( if const { matches!(switched(Reg::$name), Switched::Eager) } {
                slots[const { slot(Reg::$name) }] = read_row!($hw [$($a64)*]);
            } )*
            if aarch32 {
                $( if const { matches!(switched(Reg::$name), Switched::EagerAarch32) } {
                    slots[const { slot(Reg::$name) }] = read_row!($hw [$($a64)*]);
                } )*
            }
        }

        /// Loads what [`save_el1`] saves.
        pub fn restore_el1(slots: &[u64; SLOT_SPACE], aarch32: bool) {
            $( if const { matches!(switched(Reg::$name), Switched::Eager) } {
                write_row!($hw [$($a64)*], slots[const { slot(Reg::$name) }]);
            } )*
            if aarch32 {
                $( if const { matches!(switched(Reg::$name), Switched::EagerAarch32) } {
                    write_row!($hw [$($a64)*], slots[const { slot(Reg::$name) }]);
                } )*
            }
        }

        /// Saves the debug group: MDSCR_EL1, MDCCINT_EL1 and the first `brps`
        /// breakpoint and `wrps` watchpoint pairs.
        pub fn save_debug(slots: &mut [u64; SLOT_SPACE], brps: u8, wrps: u8) {
            $( if const { matches!(switched(Reg::$name), Switched::Debug) } {
                slots[const { slot(Reg::$name) }] = read_row!($hw [$($a64)*]);
            } else if let Some((b, n)) = const { pair(Reg::$name) } {
                if n < if b { brps } else { wrps } {
                    slots[const { slot(Reg::$name) }] = read_row!($hw [$($a64)*]);
                }
            } )*
        }

        /// Loads what [`save_debug`] saves.
        pub fn restore_debug(slots: &[u64; SLOT_SPACE], brps: u8, wrps: u8) {
            $( if const { matches!(switched(Reg::$name), Switched::Debug) } {
                write_row!($hw [$($a64)*], slots[const { slot(Reg::$name) }]);
            } else if let Some((b, n)) = const { pair(Reg::$name) } {
                if n < if b { brps } else { wrps } {
                    write_row!($hw [$($a64)*], slots[const { slot(Reg::$name) }]);
                }
            } )*
        }

        /// Saves the PMU group of a VM with a PMU: its first `counters` event
        /// counters, the cycle counter and the controls.
        pub fn save_pmu(slots: &mut [u64; SLOT_SPACE], counters: u8) {
            $( if let Some(n) = const { pmu_counter(Reg::$name) } {
                if n == u8::MAX || n < counters {
                    slots[const { slot(Reg::$name) }] = read_row!($hw [$($a64)*]);
                }
            } )*
        }

        /// Loads what [`save_pmu`] saves (in row order: the enables last).
        pub fn restore_pmu(slots: &[u64; SLOT_SPACE], counters: u8) {
            $( if let Some(n) = const { pmu_counter(Reg::$name) } {
                if n == u8::MAX || n < counters {
                    write_row!($hw [$($a64)*], slots[const { slot(Reg::$name) }]);
                }
            } )*
        }

        /// Saves the memory-tagging registers of a VM offered MTE.
        pub fn save_mte(slots: &mut [u64; SLOT_SPACE]) {
            $( if const { matches!(switched(Reg::$name), Switched::Mte) } {
                slots[const { slot(Reg::$name) }] = read_row!($hw [$($a64)*]);
            } )*
        }

        /// Loads what [`save_mte`] saves.
        pub fn restore_mte(slots: &[u64; SLOT_SPACE]) {
            $( if const { matches!(switched(Reg::$name), Switched::Mte) } {
                write_row!($hw [$($a64)*], slots[const { slot(Reg::$name) }]);
            } )*
        }

        /// Saves the registers switched with the FP/SIMD state of an AArch32 VM.
        pub fn save_fp_aarch32(slots: &mut [u64; SLOT_SPACE]) {
            $( if const { matches!(switched(Reg::$name), Switched::FpAarch32) } {
                slots[const { slot(Reg::$name) }] = read_row!($hw [$($a64)*]);
            } )*
        }

        /// Loads what [`save_fp_aarch32`] saves.
        pub fn restore_fp_aarch32(slots: &[u64; SLOT_SPACE]) {
            $( if const { matches!(switched(Reg::$name), Switched::FpAarch32) } {
                write_row!($hw [$($a64)*], slots[const { slot(Reg::$name) }]);
            } )*
        }
    };
}

crate::cpreg::with_cpreg_rows!(define_switch);

/// The real system registers of the current CPU.
pub struct Hw;

impl SysRegHw for Hw {
    fn dynamic(&mut self) -> &mut dyn SysRegHw {
        self
    }

    // One out-of-line copy each of the `match` over every row (about 1.3 KiB for a
    // read, 0.85 KiB for a write) for the emulation, the debugger and snapshots;
    // only the trap fast path inlines its own (`read_index`/`write_index`).
    #[inline(never)]
    fn read(&mut self, reg: Reg) -> u64 {
        read(reg)
    }

    #[inline(never)]
    fn write(&mut self, reg: Reg, value: u64) {
        write(reg, value)
    }

    #[inline(always)]
    fn read_index(&mut self, i: usize) -> u64 {
        read_index(i)
    }

    #[inline(always)]
    fn write_index(&mut self, i: usize, value: u64) {
        write_index(i, value)
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
