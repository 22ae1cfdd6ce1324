//! The EL2 trap controls this table relies on, for the runtime to set.
//!
//! Everything the guest can reach without a trap is either switched by the world
//! switch (`save_el1`/`restore_el1`) or never differs from the hardware. These bits
//! route the rest through [`emulate_msr_mrs`](super::emulate_msr_mrs) and
//! [`emulate_cp`](super::emulate_cp).
#![forbid(unsafe_code)]

/// HCR_EL2 bits (Arm ARM D24.2.48).
pub mod hcr {
    /// Trap ID group 1: REVIDR, AIDR (AArch32 TCMTR, TLBTR): sanitised values.
    pub const TID1: u64 = 1 << 16;
    /// Trap ID group 2: CTR, CCSIDR, CLIDR, CSSELR: CCSIDR must follow the
    /// guest's own CSSELR selection and the sanitised geometry.
    pub const TID2: u64 = 1 << 17;
    /// Trap ID group 3: the ID_* space and MVFRx: the sanitised values.
    pub const TID3: u64 = 1 << 18;
    /// Trap implementation-defined registers (op0=3, CRn=11/15): UNDEF.
    pub const TIDCP: u64 = 1 << 20;
    /// Trap ACTLR_EL1 (and AArch32 ACTLR/ACTLR2): reads 0, writes ignored.
    pub const TACR: u64 = 1 << 21;
    /// Trap data-cache maintenance by set/way: performed safely by the runtime.
    pub const TSW: u64 = 1 << 22;
    /// Trap writes of the virtual-memory controls (SCTLR, TTBR0/1, TCR, ESR, FAR,
    /// AFSR0/1, MAIR, AMAIR, CONTEXTIDR and their AArch32 views). Not set by
    /// default: these registers are switched with the vCPU and need no emulation.
    /// Set while set/way emulation waits for the guest to turn its caches on (as
    /// KVM does), and for a VM whose memory-control registers are traced.
    pub const TVM: u64 = 1 << 26;
    /// Trap reads of the same registers (only for a traced VM).
    pub const TRVM: u64 = 1 << 30;
    /// Allocation tag access at EL1/EL0 (FEAT_MTE2): set only for a VM offered MTE.
    /// Clear, GCR_EL1, RGSR_EL1, TFSR_EL1 and TFSRE0_EL1 trap (and UNDEF: they are
    /// absent from such a VM's table) and the tag instructions see no tags.
    pub const ATA: u64 = 1 << 56;
}

/// The HCR_EL2 trap bits every VM runs with: what emulation needs (sanitised ID
/// registers, IMPLEMENTATION DEFINED registers, ACTLR, set/way maintenance).
pub const HCR_EL2_TRAPS: u64 =
    hcr::TID1 | hcr::TID2 | hcr::TID3 | hcr::TIDCP | hcr::TACR | hcr::TSW;

/// The HCR_EL2 bits added for a VM whose memory-control registers are traced
/// (`hv.trace_vm_regs`): every access to them reaches the cpreg table and is
/// counted (the console's `traps` view).
pub const HCR_EL2_TRACE_VM_REGS: u64 = hcr::TVM | hcr::TRVM;

/// MDCR_EL2 bits (Arm ARM D24.2.82).
pub mod mdcr {
    /// Trap PMCR_EL0 / PMCR.
    pub const TPMCR: u64 = 1 << 5;
    /// Trap every PMU register: for a VM without a PMU (see `idregs`), so these
    /// UNDEF. Clear for a VM given one: it uses the hardware PMU.
    pub const TPM: u64 = 1 << 6;
    /// Trap debug registers other than the OS lock and power-down group.
    pub const TDA: u64 = 1 << 9;
    /// Trap the OS lock and power-down registers (OSLAR, OSLSR, OSDLR, DBGPRCR):
    /// the OS lock is emulated.
    pub const TDOSA: u64 = 1 << 10;
    /// Trap the debug ROM address registers (MDRAR, DBGDRAR, DBGDSAR): read 0.
    pub const TDRA: u64 = 1 << 11;
    /// Counters below HPMN do not count at EL2 (PMUv3p1): a VM with a PMU counts
    /// only its own time, never the hypervisor's.
    pub const HPMD: u64 = 1 << 17;
}

/// The MDCR_EL2 trap bits to OR into the VM's MDCR_EL2 (HPMN is the runtime's).
pub const MDCR_EL2_TRAPS: u64 = mdcr::TPMCR | mdcr::TPM | mdcr::TDA | mdcr::TDOSA | mdcr::TDRA;
