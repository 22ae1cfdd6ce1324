//! Guest-visible ID registers, sanitised from the host's.
//!
//! A guest decides what to use from its ID registers, so they must describe exactly
//! what the hypervisor virtualises, no more. The rule here is an **allowlist per
//! register**: only fields listed below pass through from the host; every other
//! field (including fields a future architecture version defines in today's RES0
//! bits) reads as 0, which for ID fields means "not implemented" (the few fields
//! where 0 means "implemented" are noted). Decisions, per register:
//!
//! | register | kept | hidden, and why |
//! |---|---|---|
//! | ID_AA64PFR0 | EL0, EL1, FP, AdvSIMD, GIC, DIT, CSV2 (at most 1: SCXTNUM is not switched), CSV3 | EL2, EL3 (0 = not implemented: no nested virtualisation, no firmware calls beyond PSCI through the hypervisor), RAS (error records not virtualised), SVE (state not switched), SEL2, MPAM, AMU (not switched), RME |
//! | ID_AA64PFR1 | BT, SSBS, CSV2_frac; MTE (at least FEAT_MTE2, at most FEAT_MTE3) and MTE_frac only for a VM offered MTE (`IdPolicy::mte`) | MTE otherwise (and a host with FEAT_MTE alone: no tag storage), MTEX (FEAT_MTE4's controls are not in the table), RAS_frac, MPAM_frac, SME, NMI (GIC NMI not virtualised), GCS, THE, everything newer |
//! | ID_AA64DFR0 | DebugVer, BRPs, WRPs, CTX_CMPs, DoubleLock; PMUVer (at most PMUv3p1) only for a VM given a PMU (`IdPolicy::pmu_counters`) | PMUVer otherwise, TraceVer, PMSVer (SPE), TraceFilt, TraceBuffer, BRBE, MTPMU (trace and profiling are not switched) |
//! | ID_AA64ISAR0 | all instruction fields | TME |
//! | ID_AA64ISAR1 | DPB, JSCVT, FCMA, LRCPC, FRINTTS, SB, SPECRES, BF16, DGH, I8MM | APA, API, GPA, GPI (pointer-authentication keys not switched), XS (no nXS TLBI entries), LS64 (needs HCRX) |
//! | ID_AA64ISAR2 | RPRES, BC, CLRBHB | WFxT (WFET/WFIT traps not handled), MOPS (needs HCRX), PAuth fields, the rest |
//! | ID_AA64MMFR0 | PARange (capped to the stage-2 IPA size), ASIDBits, BigEnd, SNSMem, BigEndEL0, TGran4/16/64, ExS | TGranX_2 (stage-2 sizes, an EL2 matter), FGT, ECV (EL2 features; ECV also adds counter views the table lacks) |
//! | ID_AA64MMFR1 | HAFDBS, HPDS, PAN, SpecSEI, ETS, AFP, nTLBPA, ECBHB | VMIDBits, VH, XNX, HCX, TWED (EL2), LO (LOR registers not in the table), TIDCP1, CMOW |
//! | ID_AA64MMFR2 | CnP, UAO, LSM, IESB, VARange, CCIDX, ST, AT, IDS, TTL, BBM, E0PD | NV (no nested virtualisation), FWB, EVT (EL2) |
//! | ID_AA64MMFR3/4, ISAR3, PFR2, ZFR0, SMFR0, FPFR0, DFR1/2, AFR0/1 | - | all (features whose registers are not in the table) |
//! | ID_PFR0 | State0-3, CSV2, DIT | AMU, RAS |
//! | ID_PFR1 | ProgMod, MProgMod, GenTimer, GIC | Security, Virtualization (EL3/EL2), their _frac fields |
//! | ID_PFR2 | CSV3, SSBS | RAS_frac |
//! | ID_DFR0 | CopDbg, MMapDbg, MProfDbg; PerfMon (at most PMUv3p1) with a PMU | CopSDbg (Secure debug), CopTrc, MMapTrc, PerfMon otherwise, TraceFilt |
//! | ID_DFR1, ID_AFR0 | - | all |
//! | ID_MMFR0-5, ID_ISAR0-6, MVFR0-2 | all | - |
//! | MIDR, REVIDR, AIDR, CTR, CLIDR, DCZID, CNTFRQ | all (as KVM) | - |
//!
//! When the guest may not run AArch32 at EL1 (the host cannot, or the policy says
//! no), ID_AA64PFR0.EL1 reads 1 and every AArch32 ID register reads 0.
//!
//! MPIDR is per vCPU ([`mpidr_for_vcpu`]), set when the context is created; the
//! runtime must also load it into `VMPIDR_EL2` (and MIDR into `VPIDR_EL2`), since
//! guest reads of MIDR/MPIDR do not trap.
#![forbid(unsafe_code)]

use super::entry::Features;
use super::hw::SysRegHw;
use super::table::{Reg, ID_REGS, NUM_IDS};

/// The host's ID register values (as read at EL2).
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct HostIds {
    pub values: [u64; NUM_IDS],
    /// CCSIDR per CSSELR value (Level and InD).
    pub ccsidr: [u64; 16],
}

/// What the VM is offered beyond the host's features.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct IdPolicy {
    /// Offer AArch32 at EL1 when the host has it.
    pub aarch32_el1: bool,
    /// The stage-2 input-address size in bits (32, 36, 40, 42, 44, 48, 52):
    /// ID_AA64MMFR0.PARange is capped to it.
    pub ipa_bits: u8,
    /// A virtual PMU with this many event counters (0: no PMU, the default; at
    /// most 8, and only when the host has PMUv3).
    pub pmu_counters: u8,
    /// Offer memory tagging when the host has FEAT_MTE2 (`hv.mte`, on by default
    /// at boot; off here, so a policy names it).
    pub mte: bool,
}

impl Default for IdPolicy {
    fn default() -> Self {
        IdPolicy {
            aarch32_el1: true,
            ipa_bits: 40,
            pmu_counters: 0,
            mte: false,
        }
    }
}

/// The guest-visible ID values of a VM.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct GuestIds {
    pub values: [u64; NUM_IDS],
    pub ccsidr: [u64; 16],
    /// Event counters of the virtual PMU (0: none).
    pub pmu_counters: u8,
}

fn position(reg: Reg) -> Option<usize> {
    ID_REGS.iter().position(|&r| r == reg)
}

const fn field(v: u64, lsb: u32) -> u64 {
    (v >> lsb) & 0xf
}

/// A mask of 4-bit fields given by their low bits.
const fn fields(lsbs: &[u32]) -> u64 {
    let mut m = 0;
    let mut i = 0;
    while i < lsbs.len() {
        m |= 0xf << lsbs[i];
        i += 1;
    }
    m
}

/// The allowlist: register, mask of the fields passed through.
const KEEP: &[(Reg, u64)] = &[
    (
        Reg::ID_AA64PFR0_EL1,
        fields(&[0, 4, 16, 20, 24, 48, 56, 60]),
    ),
    (Reg::ID_AA64PFR1_EL1, fields(&[0, 4, 32])),
    (Reg::ID_AA64PFR2_EL1, 0),
    (Reg::ID_AA64ZFR0_EL1, 0),
    (Reg::ID_AA64SMFR0_EL1, 0),
    (Reg::ID_AA64FPFR0_EL1, 0),
    (Reg::ID_AA64DFR0_EL1, fields(&[0, 12, 20, 28, 36])),
    (Reg::ID_AA64DFR1_EL1, 0),
    (Reg::ID_AA64DFR2_EL1, 0),
    (Reg::ID_AA64AFR0_EL1, 0),
    (Reg::ID_AA64AFR1_EL1, 0),
    (Reg::ID_AA64ISAR0_EL1, !fields(&[0, 24])),
    (
        Reg::ID_AA64ISAR1_EL1,
        fields(&[0, 12, 16, 20, 32, 36, 40, 44, 48, 52]),
    ),
    (Reg::ID_AA64ISAR2_EL1, fields(&[4, 20, 28])),
    (Reg::ID_AA64ISAR3_EL1, 0),
    (
        Reg::ID_AA64MMFR0_EL1,
        fields(&[0, 4, 8, 12, 16, 20, 24, 28, 44]),
    ),
    (
        Reg::ID_AA64MMFR1_EL1,
        fields(&[0, 12, 20, 24, 36, 44, 48, 60]),
    ),
    (
        Reg::ID_AA64MMFR2_EL1,
        fields(&[0, 4, 8, 12, 16, 20, 28, 32, 36, 48, 52, 60]),
    ),
    (Reg::ID_AA64MMFR3_EL1, 0),
    (Reg::ID_AA64MMFR4_EL1, 0),
    (Reg::ID_PFR0_EL1, fields(&[0, 4, 8, 12, 16, 24])),
    (Reg::ID_PFR1_EL1, fields(&[0, 8, 16, 28])),
    (Reg::ID_PFR2_EL1, fields(&[0, 4])),
    (Reg::ID_DFR0_EL1, fields(&[0, 8, 20])),
    (Reg::ID_DFR1_EL1, 0),
    (Reg::ID_AFR0_EL1, 0),
];

/// AArch32 ID registers (zero when the guest has no AArch32 EL1).
const AARCH32_IDS: &[Reg] = &[
    Reg::ID_PFR0_EL1,
    Reg::ID_PFR1_EL1,
    Reg::ID_PFR2_EL1,
    Reg::ID_DFR0_EL1,
    Reg::ID_DFR1_EL1,
    Reg::ID_AFR0_EL1,
    Reg::ID_MMFR0_EL1,
    Reg::ID_MMFR1_EL1,
    Reg::ID_MMFR2_EL1,
    Reg::ID_MMFR3_EL1,
    Reg::ID_MMFR4_EL1,
    Reg::ID_MMFR5_EL1,
    Reg::ID_ISAR0_EL1,
    Reg::ID_ISAR1_EL1,
    Reg::ID_ISAR2_EL1,
    Reg::ID_ISAR3_EL1,
    Reg::ID_ISAR4_EL1,
    Reg::ID_ISAR5_EL1,
    Reg::ID_ISAR6_EL1,
    Reg::MVFR0_EL1,
    Reg::MVFR1_EL1,
    Reg::MVFR2_EL1,
];

/// ID_AA64MMFR0.PARange encoding for an address size in bits.
const fn parange_for_bits(bits: u8) -> u64 {
    match bits {
        0..=32 => 0,
        33..=36 => 1,
        37..=40 => 2,
        41..=42 => 3,
        43..=44 => 4,
        45..=48 => 5,
        _ => 6,
    }
}

impl HostIds {
    /// All zero (tests, or a start for values from elsewhere).
    pub const fn zeroed() -> Self {
        HostIds {
            values: [0; NUM_IDS],
            ccsidr: [0; 16],
        }
    }

    /// Read the ID registers of the CPU this runs on, and CCSIDR for every cache
    /// CLIDR_EL1 reports (Ctype1..7, data/unified and instruction).
    pub fn read(hw: &mut impl SysRegHw) -> Self {
        let mut h = Self::zeroed();
        for (i, &r) in ID_REGS.iter().enumerate() {
            h.values[i] = hw.read(r);
        }
        let clidr = h.get(Reg::CLIDR_EL1);
        for level in 0..7u64 {
            let ctype = (clidr >> (3 * level)) & 7;
            if ctype == 0 {
                break;
            }
            // Ctype 1 = instruction only, 2 = data only, 3 = separate, 4 = unified.
            if ctype != 1 {
                h.ccsidr[(level << 1) as usize] = hw.ccsidr(level << 1);
            }
            if ctype == 1 || ctype == 3 {
                h.ccsidr[((level << 1) | 1) as usize] = hw.ccsidr((level << 1) | 1);
            }
        }
        h
    }

    pub fn get(&self, reg: Reg) -> u64 {
        position(reg).map_or(0, |i| self.values[i])
    }

    pub fn set(&mut self, reg: Reg, v: u64) {
        if let Some(i) = position(reg) {
            self.values[i] = v;
        }
    }
}

impl GuestIds {
    /// The guest-visible values for `host` under `policy` (see the module table).
    pub fn sanitise(host: &HostIds, policy: &IdPolicy) -> Self {
        let mut g = GuestIds {
            values: host.values,
            ccsidr: host.ccsidr,
            pmu_counters: 0,
        };
        for &(reg, keep) in KEEP {
            g.set(reg, host.get(reg) & keep);
        }
        // CSV2 at most 1: CSV2 >= 2 promises SCXTNUM_ELx, which are not switched (and
        // UNDEF with HCR_EL2.EnSCXT clear). KVM caps it the same way.
        let pfr0 = g.get(Reg::ID_AA64PFR0_EL1);
        let csv2 = field(pfr0, 56).min(1);
        g.set(Reg::ID_AA64PFR0_EL1, (pfr0 & !(0xf << 56)) | (csv2 << 56));
        // PARange: no more than the stage 2 can map.
        let mmfr0 = g.get(Reg::ID_AA64MMFR0_EL1);
        let pa = field(mmfr0, 0).min(parange_for_bits(policy.ipa_bits));
        g.set(Reg::ID_AA64MMFR0_EL1, (mmfr0 & !0xf) | pa);
        // AArch32 at EL1: ID_AA64PFR0.EL1 = 2 means AArch64 and AArch32.
        let pfr0 = g.get(Reg::ID_AA64PFR0_EL1);
        if field(pfr0, 4) >= 2 && !policy.aarch32_el1 {
            g.set(Reg::ID_AA64PFR0_EL1, (pfr0 & !0xf0) | (1 << 4));
        }
        // A virtual PMU: the host's PMUv3, offered as at most PMUv3p1 (the table has
        // PMUv3p1's registers; HPMD keeps EL2 out of the counts), with the AArch32
        // PerfMon field to match.
        let pmuver = field(host.get(Reg::ID_AA64DFR0_EL1), 8);
        if policy.pmu_counters > 0 && pmuver != 0 && pmuver != 0xf {
            let v = pmuver.min(4);
            let dfr0 = g.get(Reg::ID_AA64DFR0_EL1);
            g.set(Reg::ID_AA64DFR0_EL1, dfr0 | (v << 8));
            let perfmon = field(host.get(Reg::ID_DFR0_EL1), 24).min(4);
            let d = g.get(Reg::ID_DFR0_EL1);
            g.set(Reg::ID_DFR0_EL1, d | (perfmon << 24));
            g.pmu_counters = policy.pmu_counters.min(8);
        } else {
            g.set(Reg::PMCEID0_EL0, 0);
            g.set(Reg::PMCEID1_EL0, 0);
        }
        // Memory tagging: FEAT_MTE2 or FEAT_MTE3 as the host has it (their state is
        // GCR/RGSR/TFSR/TFSRE0, switched for such a VM, and the tags in its RAM),
        // with MTE_frac (whether asynchronous faults are reported). FEAT_MTE alone
        // (instructions without tag storage, QEMU `max` without `mte=on`) is not
        // offered: there are no tags to give.
        let mte = field(host.get(Reg::ID_AA64PFR1_EL1), 8);
        if policy.mte && mte >= 2 {
            let pfr1 = g.get(Reg::ID_AA64PFR1_EL1);
            let frac = host.get(Reg::ID_AA64PFR1_EL1) & (0xf << 40);
            g.set(Reg::ID_AA64PFR1_EL1, pfr1 | (mte.min(3) << 8) | frac);
        }
        if field(g.get(Reg::ID_AA64PFR0_EL1), 4) < 2 {
            for &r in AARCH32_IDS {
                g.set(r, 0);
            }
        }
        g
    }

    pub fn get(&self, reg: Reg) -> u64 {
        position(reg).map_or(0, |i| self.values[i])
    }

    pub fn set(&mut self, reg: Reg, v: u64) {
        if let Some(i) = position(reg) {
            self.values[i] = v;
        }
    }

    /// The optional parts of the architecture these values describe.
    pub fn features(&self) -> Features {
        let pfr0 = self.get(Reg::ID_AA64PFR0_EL1);
        let dfr0 = self.get(Reg::ID_AA64DFR0_EL1);
        let isar0 = self.get(Reg::ID_AA64ISAR0_EL1);
        let isar1 = self.get(Reg::ID_AA64ISAR1_EL1);
        let mmfr1 = self.get(Reg::ID_AA64MMFR1_EL1);
        let mmfr2 = self.get(Reg::ID_AA64MMFR2_EL1);
        let pmuver = field(dfr0, 8);
        Features {
            aarch32_el1: field(pfr0, 4) >= 2,
            pmu: pmuver != 0 && pmuver != 0xf && self.pmu_counters > 0,
            pmu_counters: if pmuver != 0 && pmuver != 0xf {
                self.pmu_counters
            } else {
                0
            },
            brps: field(dfr0, 12) as u8 + 1,
            wrps: field(dfr0, 20) as u8 + 1,
            tlbi_os: field(isar0, 56) >= 1,
            tlbi_range: field(isar0, 56) >= 2,
            pan2: field(mmfr1, 20) >= 2,
            dpb: field(isar1, 0) >= 1,
            dpb2: field(isar1, 0) >= 2,
            ccidx: field(mmfr2, 20) != 0,
            gicv3: field(pfr0, 24) != 0,
            mte: field(self.get(Reg::ID_AA64PFR1_EL1), 8) >= 2,
        }
    }
}

/// MPIDR_EL1 of vCPU `index`: `Aff0 = index[7:0]`, `Aff1 = index[15:8]`,
/// `Aff2 = index[23:16]`; bit 31 RES1, U = 0 (multiprocessor), MT = 0. The guest's
/// device tree must use the same values (`reg` of each `/cpus/cpu` node).
///
/// Note for GICv3 guests: SGIs target Aff0 values 0..15 without RSS, so more than
/// 16 vCPUs would need Aff0 = index % 16 (KVM's layout); not needed at our sizes.
pub const fn mpidr_for_vcpu(index: usize) -> u64 {
    (1 << 31) | (index as u64 & 0xff_ffff)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A host like QEMU `-cpu max`: EL2, EL3, SVE, AMU, RAS, MTE, SME, PAuth, a PMU,
    /// 6 breakpoints, 4 watchpoints, 48-bit PA, AArch32 at EL1.
    fn host_max() -> HostIds {
        let mut h = HostIds::zeroed();
        h.set(Reg::ID_AA64PFR0_EL1, 0x1201_1111_1111_2222 | (1 << 44));
        h.set(Reg::ID_AA64PFR1_EL1, 0x0000_0001_0101_0221);
        h.set(Reg::ID_AA64DFR0_EL1, 0x0000_1101_1030_5619);
        h.set(Reg::ID_AA64ISAR0_EL1, 0x0221_1111_1112_1120);
        h.set(
            Reg::ID_AA64ISAR1_EL1,
            0x0111_1111_0101_1112 | (0x1 << 4) | (0x1 << 8),
        );
        h.set(Reg::ID_AA64MMFR0_EL1, 0x1111_0000_0010_1125 | (1 << 56));
        h.set(Reg::ID_AA64MMFR1_EL1, 0x0000_0000_1021_1122);
        h.set(Reg::ID_AA64ZFR0_EL1, 0x0110_0110_0000_0011);
        h.set(Reg::ID_PFR0_EL1, 0x1011_0131);
        h.set(Reg::ID_PFR1_EL1, 0x1001_1011);
        h.set(Reg::ID_DFR0_EL1, 0x1001_0088 | (6 << 24));
        h.set(Reg::ID_ISAR0_EL1, 0x0210_1110);
        h.set(Reg::MIDR_EL1, 0x000f_0510);
        h.set(Reg::CTR_EL0, 0x8444_c004);
        h
    }

    #[test]
    fn hides_el2_el3_sve_amu_ras_mpam() {
        let g = GuestIds::sanitise(&host_max(), &IdPolicy::default());
        let pfr0 = g.get(Reg::ID_AA64PFR0_EL1);
        for (lsb, what) in [
            (8, "EL2"),
            (12, "EL3"),
            (28, "RAS"),
            (32, "SVE"),
            (40, "MPAM"),
            (44, "AMU"),
        ] {
            assert_eq!(field(pfr0, lsb), 0, "{what} visible");
        }
        assert_eq!(field(pfr0, 0), 2, "EL0 AArch32 kept");
        assert_eq!(field(pfr0, 4), 2, "EL1 AArch32 kept");
        assert_eq!(field(pfr0, 16), 1, "FP kept");
        assert_eq!(field(pfr0, 56), 1, "CSV2 capped");
        assert_eq!(field(pfr0, 60), 1, "CSV3 kept");
        assert_eq!(g.get(Reg::ID_AA64ZFR0_EL1), 0);
    }

    #[test]
    fn hides_pmu_mte_sme_pauth_and_keeps_debug_counts() {
        let g = GuestIds::sanitise(&host_max(), &IdPolicy::default());
        let dfr0 = g.get(Reg::ID_AA64DFR0_EL1);
        assert_eq!(field(dfr0, 8), 0, "PMUVer");
        assert_eq!(field(dfr0, 12), 5, "BRPs");
        assert_eq!(field(dfr0, 20), 3, "WRPs");
        assert_eq!(
            field(dfr0, 4) | field(dfr0, 32) | field(dfr0, 40),
            0,
            "trace, SPE"
        );
        assert_eq!(field(dfr0, 0), 9, "DebugVer");
        let pfr1 = g.get(Reg::ID_AA64PFR1_EL1);
        assert_eq!(field(pfr1, 8), 0, "MTE");
        assert_eq!(field(pfr1, 24), 0, "SME");
        assert_eq!(field(pfr1, 0), 1, "BT");
        let isar1 = g.get(Reg::ID_AA64ISAR1_EL1);
        assert_eq!(field(isar1, 4) | field(isar1, 8), 0, "PAuth");
        assert_eq!(field(isar1, 0), 2, "DPB");
        let f = g.features();
        assert!(!f.pmu);
        assert_eq!((f.brps, f.wrps), (6, 4));
        assert!(f.aarch32_el1 && f.tlbi_os && f.tlbi_range && f.dpb2);
        // AArch32 view: PerfMon hidden too.
        assert_eq!(field(g.get(Reg::ID_DFR0_EL1), 24), 0);
        // Security and Virtualization hidden.
        let pfr1_32 = g.get(Reg::ID_PFR1_EL1);
        assert_eq!(field(pfr1_32, 4) | field(pfr1_32, 12), 0);
    }

    #[test]
    fn caps_parange_and_hides_el2_memory_features() {
        let g = GuestIds::sanitise(&host_max(), &IdPolicy::default());
        let mmfr0 = g.get(Reg::ID_AA64MMFR0_EL1);
        assert_eq!(field(mmfr0, 0), 2, "40-bit IPA");
        assert_eq!(field(mmfr0, 56) | field(mmfr0, 60), 0, "FGT, ECV");
        assert_eq!(field(g.get(Reg::ID_AA64MMFR1_EL1), 8), 0, "VH");
        let g = GuestIds::sanitise(
            &host_max(),
            &IdPolicy {
                ipa_bits: 52,
                ..IdPolicy::default()
            },
        );
        assert_eq!(field(g.get(Reg::ID_AA64MMFR0_EL1), 0), 5, "host's 48 bits");
    }

    /// A VM given a PMU (issue 13) sees PMUv3p1 at most, with as many counters as
    /// the policy gives it; without a PMU on the host it gets none whatever it asks.
    #[test]
    fn a_vm_given_a_pmu_sees_pmuv3p1_and_its_counters() {
        let with = GuestIds::sanitise(
            &host_max(),
            &IdPolicy {
                pmu_counters: 6,
                ..IdPolicy::default()
            },
        );
        assert_eq!(field(with.get(Reg::ID_AA64DFR0_EL1), 8), 4, "PMUVer");
        let f = with.features();
        assert!(f.pmu);
        assert_eq!(f.pmu_counters, 6);
        let mut no_pmu_host = host_max();
        let dfr0 = no_pmu_host.get(Reg::ID_AA64DFR0_EL1) & !(0xf << 8);
        no_pmu_host.set(Reg::ID_AA64DFR0_EL1, dfr0);
        let without = GuestIds::sanitise(
            &no_pmu_host,
            &IdPolicy {
                pmu_counters: 6,
                ..IdPolicy::default()
            },
        );
        assert_eq!(field(without.get(Reg::ID_AA64DFR0_EL1), 8), 0);
        assert!(!without.features().pmu);
        assert_eq!(without.features().pmu_counters, 0);
    }

    /// `host_max` with `mte=on`: QEMU `max` then reports FEAT_MTE3 (MTE 3), and
    /// MTEX set to see that FEAT_MTE4's field stays hidden.
    fn host_max_mte() -> HostIds {
        let mut h = host_max();
        let pfr1 = h.get(Reg::ID_AA64PFR1_EL1) & !(0xf << 8);
        h.set(Reg::ID_AA64PFR1_EL1, pfr1 | (3 << 8) | (1 << 52));
        h
    }

    /// Issue 13 item 3: a VM offered MTE on a host with FEAT_MTE2/3 sees the host's
    /// MTE level (and has the MTE registers, `features().mte`); a VM not offered it,
    /// or any VM on a host with FEAT_MTE alone (no tag storage) or none, sees 0.
    #[test]
    fn mte_is_offered_only_with_tag_storage_and_only_when_asked() {
        let offer = IdPolicy {
            mte: true,
            ..IdPolicy::default()
        };
        let with = GuestIds::sanitise(&host_max_mte(), &offer);
        let pfr1 = with.get(Reg::ID_AA64PFR1_EL1);
        assert_eq!(field(pfr1, 8), 3, "MTE");
        assert_eq!(field(pfr1, 52), 0, "MTEX");
        assert_eq!(field(pfr1, 0), 1, "BT kept");
        assert!(with.features().mte);
        // Capped at FEAT_MTE3 (a later value promises state the table lacks).
        let mut later = host_max_mte();
        let p = later.get(Reg::ID_AA64PFR1_EL1) & !(0xf << 8);
        later.set(Reg::ID_AA64PFR1_EL1, p | (5 << 8));
        let g = GuestIds::sanitise(&later, &offer);
        assert_eq!(field(g.get(Reg::ID_AA64PFR1_EL1), 8), 3);

        let not_asked = GuestIds::sanitise(&host_max_mte(), &IdPolicy::default());
        assert_eq!(field(not_asked.get(Reg::ID_AA64PFR1_EL1), 8), 0);
        assert!(!not_asked.features().mte);
        // QEMU `max` without `mte=on`: MTE 1, instructions only (no tag storage).
        let mut no_storage = host_max();
        let p = no_storage.get(Reg::ID_AA64PFR1_EL1) & !(0xf << 8);
        no_storage.set(Reg::ID_AA64PFR1_EL1, p | (1 << 8));
        let insns_only = GuestIds::sanitise(&no_storage, &offer);
        assert_eq!(field(insns_only.get(Reg::ID_AA64PFR1_EL1), 8), 0);
        assert!(!insns_only.features().mte);
        let none = GuestIds::sanitise(&HostIds::zeroed(), &offer);
        assert!(!none.features().mte);
    }

    #[test]
    fn no_aarch32_zeroes_aarch32_ids() {
        let g = GuestIds::sanitise(
            &host_max(),
            &IdPolicy {
                aarch32_el1: false,
                ..IdPolicy::default()
            },
        );
        assert_eq!(field(g.get(Reg::ID_AA64PFR0_EL1), 4), 1);
        assert_eq!(g.get(Reg::ID_ISAR0_EL1), 0);
        assert_eq!(g.get(Reg::ID_PFR0_EL1), 0);
        assert!(!g.features().aarch32_el1);
        // Identification passes through.
        assert_eq!(g.get(Reg::MIDR_EL1), 0x000f_0510);
        assert_eq!(g.get(Reg::CTR_EL0), 0x8444_c004);
    }

    #[test]
    fn every_id_register_has_a_decision_or_passes_through() {
        // Fields the allowlist does not name are zero: a host with every bit set
        // shows exactly the kept mask.
        let mut h = HostIds::zeroed();
        h.values = [u64::MAX; NUM_IDS];
        let g = GuestIds::sanitise(
            &h,
            &IdPolicy {
                aarch32_el1: true,
                ipa_bits: 52,
                pmu_counters: 0,
                mte: false,
            },
        );
        for &(reg, keep) in KEEP {
            let expect = match reg {
                Reg::ID_AA64MMFR0_EL1 => (keep & !0xf) | 6,
                Reg::ID_AA64PFR0_EL1 => (keep & !(0xf << 56)) | (1 << 56),
                _ => keep,
            };
            assert_eq!(g.get(reg), expect, "{}", reg.name());
        }
    }

    #[test]
    fn mpidr_per_vcpu() {
        assert_eq!(mpidr_for_vcpu(0), 0x8000_0000);
        assert_eq!(mpidr_for_vcpu(3), 0x8000_0003);
        assert_eq!(mpidr_for_vcpu(0x102), 0x8000_0102);
    }
}
