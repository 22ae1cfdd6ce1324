//! The performance monitors at EL2: whether the CPU has PMUv3, quiescing it
//! between the VMs that own it, the overflow line the vGIC forwards, and MDCR_EL2.
//!
//! A VM given a PMU runs on the hardware PMU (its registers are switched with its
//! vCPU through the cpreg table, `sysreg::save_pmu`); between such runs nothing
//! may count or interrupt, so another VM's time never lands in its counters.

use core::arch::asm;

/// ID_AA64DFR0_EL1.PMUVer says PMUv3 (not 0, not IMPLEMENTATION DEFINED 0xf).
pub fn present() -> bool {
    let dfr0: u64;
    // SAFETY: reading an ID register has no side effects.
    unsafe { asm!("mrs {}, id_aa64dfr0_el1", out(reg) dfr0, options(nomem, nostack)) };
    let v = (dfr0 >> 8) & 0xf;
    v != 0 && v != 0xf
}

/// Stops every counter, its overflow flag and its interrupt (PMCNTENCLR,
/// PMOVSCLR, PMINTENCLR all ones). Only with a PMU ([`present`]).
pub fn quiesce() {
    // SAFETY: the PMU belongs to the VM just saved (or to nobody); its state was
    // saved before, so clearing the enables and flags loses nothing.
    unsafe {
        asm!(
            "msr S3_3_C9_C12_2, {all}", // PMCNTENCLR_EL0
            "msr S3_0_C9_C14_2, {all}", // PMINTENCLR_EL1
            "msr S3_3_C9_C12_3, {all}", // PMOVSCLR_EL0
            "isb",
            all = in(reg) u64::MAX,
            options(nomem, nostack)
        )
    };
}

/// The PMU's overflow interrupt line as the hardware drives it: PMCR_EL0.E and an
/// overflowed counter whose interrupt is enabled. Only while a VM with a PMU is
/// loaded.
pub fn overflow_line() -> bool {
    let (pmcr, ovs, inten): (u64, u64, u64);
    // SAFETY: reading PMU registers at EL2 has no side effects.
    unsafe {
        asm!(
            "mrs {pmcr}, S3_3_C9_C12_0", // PMCR_EL0
            "mrs {ovs}, S3_3_C9_C14_3",  // PMOVSSET_EL0
            "mrs {inten}, S3_0_C9_C14_1", // PMINTENSET_EL1
            pmcr = out(reg) pmcr, ovs = out(reg) ovs, inten = out(reg) inten,
            options(nomem, nostack)
        )
    };
    pmcr & 1 != 0 && ovs & inten != 0
}

/// Sets MDCR_EL2 (the PMU traps and partition of the VM about to run).
pub fn set_mdcr(v: u64) {
    // SAFETY: MDCR_EL2 configures only what EL1/EL0 may reach of the PMU and debug
    // state; the hypervisor's own execution is unaffected.
    unsafe { asm!("msr mdcr_el2, {}", "isb", in(reg) v, options(nomem, nostack)) };
}
