//! The cpreg table: one static table of every system register a guest can reach,
//! and everything generated from it (DESIGN.md section 5).
//!
//! Module map:
//! * `rows`: the table's rows (data only);
//! * [`entry`]: what a row holds (state, flags, rights, presence);
//! * [`encoding`]: AArch64/AArch32 encodings, lookup keys, KVM indexes;
//! * [`table`]: the generated `Reg` enum, entry array, slots, sorted lookups and the
//!   compile-time checks;
//! * `packed`: the entries as stored in the Image (22 bytes each), unpacked on use;
//! * [`context`]: the vCPU's `SysRegFile` and its guest and raw accessors;
//! * [`funcs`]: registers computed on access;
//! * [`hw`]: the `SysRegHw` trait and the in-memory fake (the real `mrs`/`msr` are
//!   generated from the rows in `arch::sysreg`);
//! * [`emulate`](mod@emulate): trapped `MRS`/`MSR`/`SYS` and `MCR`/`MRC`/`MCRR`/`MRRC`;
//! * [`quick`]: the trap fast path's subset of the emulation (plain state at EL1);
//! * [`counters`]: per-register trap counts;
//! * [`switch`]: world-switch save/restore sets;
//! * [`idregs`]: sanitised ID registers;
//! * [`traps`]: the HCR_EL2/MDCR_EL2 bits the table relies on.

#[macro_use]
mod rows;

pub mod context;
pub mod counters;
pub mod emulate;
pub mod encoding;
pub mod entry;
pub mod funcs;
pub mod hw;
pub mod idregs;
mod packed;
pub mod quick;
pub mod switch;
pub mod table;
pub mod traps;

#[cfg(test)]
mod tests;

pub use context::{debugger_view, saved_list, ImportError, RawError, SysRegFile};
pub use counters::{trap_count, trap_counts, TrapCount, TrapCounters, TRAP_COUNTERS};
pub use emulate::{
    condition_holds, condition_passed, emulate, emulate_cp, emulate_msr_mrs, emulate_vmrs,
    Emulation, Operation, Undef, UndefReason, EC_CP10_ID,
};
pub use encoding::{Cp, Encoding, Sys64};
pub use entry::{Access, Entry, Features, Flags, Group, OpKind, Presence, State};
pub use hw::{FakeHw, SysRegHw};
pub use idregs::{mpidr_for_vcpu, GuestIds, HostIds, IdPolicy};
pub use quick::emulate_quick;
pub use switch::{
    restore_debug_with, restore_el1_with, restore_fp_with, restore_mte_with, restore_pmu_with,
    save_debug_with, save_el1_with, save_fp_with, save_mte_with, save_pmu_with,
};
pub use table::{entries, lookup_a32, lookup_a64, lookup_kvm, Reg, NUM_SLOTS};
pub use traps::{HCR_EL2_TRACE_VM_REGS, HCR_EL2_TRAPS, MDCR_EL2_TRAPS};

#[cfg(all(target_arch = "aarch64", target_os = "none"))]
pub use crate::arch::sysreg::Hw;
#[cfg(all(target_arch = "aarch64", target_os = "none"))]
pub(crate) use rows::with_cpreg_rows;
