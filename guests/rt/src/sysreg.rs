//! The few system registers the guests read, through `aarch64-cpu`.
//!
//! Plain functions returning raw values: the guests print them and compare a few
//! fields, so a typed view would only get in the way.

#![forbid(unsafe_code)]

use aarch64_cpu::registers::{
    CNTFRQ_EL0, CNTVCT_EL0, CurrentEL, ESR_EL1, FAR_EL1, ID_AA64PFR0_EL1, MIDR_EL1, MPIDR_EL1,
    Readable, SCTLR_EL1,
};

/// The affinity fields of MPIDR_EL1 (Aff3, Aff2, Aff1, Aff0): what PSCI and the
/// DTB's `/cpus/cpu@*/reg` use to name a CPU.
pub const MPIDR_AFFINITY_MASK: u64 = 0xff_00ff_ffff;

/// The exception level we run at (0-3).
pub fn current_el() -> u64 {
    CurrentEL.read(CurrentEL::EL)
}

/// MIDR_EL1: implementer, variant, part number, revision.
pub fn midr() -> u64 {
    MIDR_EL1.get()
}

/// MPIDR_EL1, whole.
pub fn mpidr() -> u64 {
    MPIDR_EL1.get()
}

/// This CPU's affinity (MPIDR_EL1 masked with [`MPIDR_AFFINITY_MASK`]).
pub fn affinity() -> u64 {
    mpidr() & MPIDR_AFFINITY_MASK
}

/// SCTLR_EL1.
pub fn sctlr() -> u64 {
    SCTLR_EL1.get()
}

/// ID_AA64PFR0_EL1.
pub fn id_aa64pfr0() -> u64 {
    ID_AA64PFR0_EL1.get()
}

/// ESR_EL1.
pub fn esr() -> u64 {
    ESR_EL1.get()
}

/// FAR_EL1.
pub fn far() -> u64 {
    FAR_EL1.get()
}

/// The virtual counter, CNTVCT_EL0.
pub fn counter() -> u64 {
    CNTVCT_EL0.get()
}

/// The counter frequency in Hz, CNTFRQ_EL0.
pub fn counter_frequency() -> u64 {
    CNTFRQ_EL0.get()
}
