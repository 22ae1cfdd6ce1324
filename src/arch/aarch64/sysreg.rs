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
        #[inline(always)]
        fn read(reg: Reg) -> u64 {
            match reg {
                $( Reg::$name => read_row!($hw [$($a64)*]), )*
            }
        }

        #[inline(always)]
        fn write(reg: Reg, value: u64) {
            match reg {
                $( Reg::$name => write_row!($hw [$($a64)*], value), )*
            }
        }
    };
}

crate::cpreg::with_cpreg_rows!(define_hw);

/// The real system registers of the current CPU.
pub struct Hw;

impl SysRegHw for Hw {
    fn dynamic(&mut self) -> &mut dyn SysRegHw {
        self
    }

    #[inline(always)]
    fn read(&mut self, reg: Reg) -> u64 {
        read(reg)
    }

    #[inline(always)]
    fn write(&mut self, reg: Reg, value: u64) {
        write(reg, value)
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
