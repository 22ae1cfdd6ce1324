//! The table itself: one row per register a guest can reach.
//!
//! This file is data. Each row is
//!
//! ```text
//! NAME: [op0, op1, CRn, CRm, op2] [p15|p14, opc1, CRn, CRm, opc2 | p15_64|p14_64, opc1, CRm] hw|ro|- => definition;
//! ```
//!
//! * the AArch64 encoding (`[]` when there is none),
//! * the AArch32 encoding (`[]` when there is none; both only for AArch32-only state
//!   with an EL2 name, see `Flags::EL2_VIEW`),
//! * `hw` when a real register of that AArch64 encoding holds the value while the
//!   guest runs (`mrs`/`msr` accessors are generated from the row), `ro` when it is
//!   only read from hardware (ID registers, counters), `-` when it is emulated,
//! * the definition, built with the constructors of [`entry`](super::entry): state
//!   (`own`, `id`, `konst`, `alias`, `volatile`, `func`, `op`), rights, flags, group
//!   and presence.
//!
//! The rows are handed to a macro (the "X-macro" pattern): `table.rs` turns them into
//! the `Reg` enum, the entry array and the sorted lookups, `hw.rs` into the hardware
//! accessors. Adding a register is adding a row; the checks in `table.rs` (compile
//! time) and the tests (with names) reject a row that breaks an invariant.

macro_rules! with_cpreg_rows {
    ($m:ident) => {
        $m! {
        // EL1&0 translation regime and exception model (Arm ARM D24.2). TVM/TRVM trap the
        // virtual-memory controls; all of these are switched with the vCPU (group El1).
        // IO: turning the caches on or off ends set/way emulation (the runtime reacts).
        SCTLR_EL1:         [3, 0, 1, 0, 0]   []                    hw => own(SCTLR_EL1_RESET).el1_rw().io().el1();
        CPACR_EL1:         [3, 0, 1, 0, 2]   []                    hw => own(0).el1_rw().el1();
        TTBR0_EL1:         [3, 0, 2, 0, 0]   []                    hw => own(0).el1_rw().el1();
        TTBR1_EL1:         [3, 0, 2, 0, 1]   []                    hw => own(0).el1_rw().el1();
        TCR_EL1:           [3, 0, 2, 0, 2]   []                    hw => own(0).el1_rw().el1();
        SPSR_EL1:          [3, 0, 4, 0, 0]   []                    hw => own(0).el1_rw().el1();
        ELR_EL1:           [3, 0, 4, 0, 1]   []                    hw => own(0).el1_rw().el1();
        SP_EL0:            [3, 0, 4, 1, 0]   []                    hw => own(0).el1_rw().el1();
        AFSR0_EL1:         [3, 0, 5, 1, 0]   []                    hw => own(0).el1_rw().el1();
        AFSR1_EL1:         [3, 0, 5, 1, 1]   []                    hw => own(0).el1_rw().el1();
        ESR_EL1:           [3, 0, 5, 2, 0]   []                    hw => own(0).el1_rw().el1();
        FAR_EL1:           [3, 0, 6, 0, 0]   []                    hw => own(0).el1_rw().el1();
        PAR_EL1:           [3, 0, 7, 4, 0]   []                    hw => own(0).el1_rw().el1();
        MAIR_EL1:          [3, 0, 10, 2, 0]  []                    hw => own(0).el1_rw().el1();
        AMAIR_EL1:         [3, 0, 10, 3, 0]  []                    hw => own(0).el1_rw().el1();
        VBAR_EL1:          [3, 0, 12, 0, 0]  []                    hw => own(0).el1_rw().el1();
        CONTEXTIDR_EL1:    [3, 0, 13, 0, 1]  []                    hw => own(0).el1_rw().el1();
        TPIDR_EL1:         [3, 0, 13, 0, 4]  []                    hw => own(0).el1_rw().el1();
        CNTKCTL_EL1:       [3, 0, 14, 1, 0]  []                    hw => own(0).el1_rw().el1();
        CSSELR_EL1:        [3, 2, 0, 0, 0]   []                    hw => own(0).el1_rw().el1();
        TPIDR_EL0:         [3, 3, 13, 0, 2]  []                    hw => own(0).el0_rw().el1();
        TPIDRRO_EL0:       [3, 3, 13, 0, 3]  []                    hw => own(0).el0_r_el1_rw().el1();
        ISR_EL1:           [3, 0, 12, 1, 0]  []                    ro => volatile().el1_r();
        // IMPLEMENTATION DEFINED controls: trapped by HCR_EL2.TACR, reads 0, writes ignored
        // (as KVM: a guest must not tune the host CPU).
        ACTLR_EL1:         [3, 0, 1, 0, 1]   []                    -  => own(0).el1_rw().wi();
        // EL2 views of EL1 state and of the AArch32 EL1 state: saved and indexed through
        // these encodings, never reachable by a guest MRS/MSR.
        SP_EL1:            [3, 4, 4, 1, 0]   []                    hw => own(0).el2_view().el1();
        SPSR_irq:          [3, 4, 4, 3, 0]   []                    hw => own(0).el2_view().el1().presence(Presence::Aarch32El1);
        SPSR_abt:          [3, 4, 4, 3, 1]   []                    hw => own(0).el2_view().el1().presence(Presence::Aarch32El1);
        SPSR_und:          [3, 4, 4, 3, 2]   []                    hw => own(0).el2_view().el1().presence(Presence::Aarch32El1);
        SPSR_fiq:          [3, 4, 4, 3, 3]   []                    hw => own(0).el2_view().el1().presence(Presence::Aarch32El1);
        // AArch32-only state (own state, not aliases): the EL2 name indexes and saves it, the
        // cp15/cp14 encoding is how an AArch32 EL1 reaches it.
        DACR32_EL2:        [3, 4, 3, 0, 0]   [p15, 0, 3, 0, 0]     hw => own(0).el1_rw().el2_view().el1().presence(Presence::Aarch32El1);
        IFSR32_EL2:        [3, 4, 5, 0, 1]   [p15, 0, 5, 0, 1]     hw => own(0).el1_rw().el2_view().el1().presence(Presence::Aarch32El1);
        DBGVCR32_EL2:      [2, 4, 0, 7, 0]   [p14, 0, 0, 7, 0]     hw => own(0).el1_rw().el2_view().el1().presence(Presence::Aarch32El1);
        // FPEXC is reached with VMRS/VMSR (not cp15); switched with the FP state.
        FPEXC32_EL2:       [3, 4, 5, 3, 0]   []                    hw => own(0x700).el2_view().group(Group::Fp).presence(Presence::Aarch32El1);
        // Identification (HCR_EL2.TID1/TID2/TID3). Values are sanitised per VM (idregs.rs).
        MIDR_EL1:          [3, 0, 0, 0, 0]   []                    ro => id();
        MPIDR_EL1:         [3, 0, 0, 0, 5]   []                    ro => id();
        REVIDR_EL1:        [3, 0, 0, 0, 6]   []                    ro => id();
        CCSIDR_EL1:        [3, 1, 0, 0, 0]   []                    -  => func(&CCSIDR_FNS).el1_r();
        CCSIDR2_EL1:       [3, 1, 0, 0, 2]   []                    -  => func(&CCSIDR2_FNS).el1_r().presence(Presence::Ccidx);
        CLIDR_EL1:         [3, 1, 0, 0, 1]   []                    ro => id();
        AIDR_EL1:          [3, 1, 0, 0, 7]   []                    ro => id();
        CTR_EL0:           [3, 3, 0, 0, 1]   []                    ro => id().el0_r();
        DCZID_EL0:         [3, 3, 0, 0, 7]   []                    ro => id().el0_r();
        // The whole ID space op0=3, op1=0, CRn=0, CRm=1..7: reserved encodings read as zero.
        ID_PFR0_EL1:       [3, 0, 0, 1, 0]   []                    ro => id();
        ID_PFR1_EL1:       [3, 0, 0, 1, 1]   []                    ro => id();
        ID_DFR0_EL1:       [3, 0, 0, 1, 2]   []                    ro => id();
        ID_AFR0_EL1:       [3, 0, 0, 1, 3]   []                    ro => id();
        ID_MMFR0_EL1:      [3, 0, 0, 1, 4]   []                    ro => id();
        ID_MMFR1_EL1:      [3, 0, 0, 1, 5]   []                    ro => id();
        ID_MMFR2_EL1:      [3, 0, 0, 1, 6]   []                    ro => id();
        ID_MMFR3_EL1:      [3, 0, 0, 1, 7]   []                    ro => id();
        ID_ISAR0_EL1:      [3, 0, 0, 2, 0]   []                    ro => id();
        ID_ISAR1_EL1:      [3, 0, 0, 2, 1]   []                    ro => id();
        ID_ISAR2_EL1:      [3, 0, 0, 2, 2]   []                    ro => id();
        ID_ISAR3_EL1:      [3, 0, 0, 2, 3]   []                    ro => id();
        ID_ISAR4_EL1:      [3, 0, 0, 2, 4]   []                    ro => id();
        ID_ISAR5_EL1:      [3, 0, 0, 2, 5]   []                    ro => id();
        ID_MMFR4_EL1:      [3, 0, 0, 2, 6]   []                    ro => id();
        ID_ISAR6_EL1:      [3, 0, 0, 2, 7]   []                    ro => id();
        MVFR0_EL1:         [3, 0, 0, 3, 0]   []                    ro => id();
        MVFR1_EL1:         [3, 0, 0, 3, 1]   []                    ro => id();
        MVFR2_EL1:         [3, 0, 0, 3, 2]   []                    ro => id();
        S3_0_C0_C3_3:      [3, 0, 0, 3, 3]   []                    -  => konst(0).el1_r();
        ID_PFR2_EL1:       [3, 0, 0, 3, 4]   []                    ro => id();
        ID_DFR1_EL1:       [3, 0, 0, 3, 5]   []                    ro => id();
        ID_MMFR5_EL1:      [3, 0, 0, 3, 6]   []                    ro => id();
        S3_0_C0_C3_7:      [3, 0, 0, 3, 7]   []                    -  => konst(0).el1_r();
        ID_AA64PFR0_EL1:   [3, 0, 0, 4, 0]   []                    ro => id();
        ID_AA64PFR1_EL1:   [3, 0, 0, 4, 1]   []                    ro => id();
        ID_AA64PFR2_EL1:   [3, 0, 0, 4, 2]   []                    ro => id();
        S3_0_C0_C4_3:      [3, 0, 0, 4, 3]   []                    -  => konst(0).el1_r();
        ID_AA64ZFR0_EL1:   [3, 0, 0, 4, 4]   []                    ro => id();
        ID_AA64SMFR0_EL1:  [3, 0, 0, 4, 5]   []                    ro => id();
        S3_0_C0_C4_6:      [3, 0, 0, 4, 6]   []                    -  => konst(0).el1_r();
        ID_AA64FPFR0_EL1:  [3, 0, 0, 4, 7]   []                    ro => id();
        ID_AA64DFR0_EL1:   [3, 0, 0, 5, 0]   []                    ro => id();
        ID_AA64DFR1_EL1:   [3, 0, 0, 5, 1]   []                    ro => id();
        ID_AA64DFR2_EL1:   [3, 0, 0, 5, 2]   []                    ro => id();
        S3_0_C0_C5_3:      [3, 0, 0, 5, 3]   []                    -  => konst(0).el1_r();
        ID_AA64AFR0_EL1:   [3, 0, 0, 5, 4]   []                    ro => id();
        ID_AA64AFR1_EL1:   [3, 0, 0, 5, 5]   []                    ro => id();
        S3_0_C0_C5_6:      [3, 0, 0, 5, 6]   []                    -  => konst(0).el1_r();
        S3_0_C0_C5_7:      [3, 0, 0, 5, 7]   []                    -  => konst(0).el1_r();
        ID_AA64ISAR0_EL1:  [3, 0, 0, 6, 0]   []                    ro => id();
        ID_AA64ISAR1_EL1:  [3, 0, 0, 6, 1]   []                    ro => id();
        ID_AA64ISAR2_EL1:  [3, 0, 0, 6, 2]   []                    ro => id();
        ID_AA64ISAR3_EL1:  [3, 0, 0, 6, 3]   []                    ro => id();
        S3_0_C0_C6_4:      [3, 0, 0, 6, 4]   []                    -  => konst(0).el1_r();
        S3_0_C0_C6_5:      [3, 0, 0, 6, 5]   []                    -  => konst(0).el1_r();
        S3_0_C0_C6_6:      [3, 0, 0, 6, 6]   []                    -  => konst(0).el1_r();
        S3_0_C0_C6_7:      [3, 0, 0, 6, 7]   []                    -  => konst(0).el1_r();
        ID_AA64MMFR0_EL1:  [3, 0, 0, 7, 0]   []                    ro => id();
        ID_AA64MMFR1_EL1:  [3, 0, 0, 7, 1]   []                    ro => id();
        ID_AA64MMFR2_EL1:  [3, 0, 0, 7, 2]   []                    ro => id();
        ID_AA64MMFR3_EL1:  [3, 0, 0, 7, 3]   []                    ro => id();
        ID_AA64MMFR4_EL1:  [3, 0, 0, 7, 4]   []                    ro => id();
        S3_0_C0_C7_5:      [3, 0, 0, 7, 5]   []                    -  => konst(0).el1_r();
        S3_0_C0_C7_6:      [3, 0, 0, 7, 6]   []                    -  => konst(0).el1_r();
        S3_0_C0_C7_7:      [3, 0, 0, 7, 7]   []                    -  => konst(0).el1_r();
        // Generic timer (Arm ARM D12). The EL1 virtual and physical timers are switched with
        // the vCPU; TVAL views are computed from CVAL and the counter. CVAL precedes CTL:
        // rows are restored in order, so a timer is enabled only once its compare value
        // is the vCPU's own.
        CNTFRQ_EL0:        [3, 3, 14, 0, 0]  []                    ro => id().el0_r();
        CNTPCT_EL0:        [3, 3, 14, 0, 1]  []                    ro => volatile().el0_r();
        CNTVCT_EL0:        [3, 3, 14, 0, 2]  []                    ro => volatile().el0_r();
        CNTP_TVAL_EL0:     [3, 3, 14, 2, 0]  []                    -  => func(&CNTP_TVAL_FNS).el0_rw().io();
        CNTP_CVAL_EL0:     [3, 3, 14, 2, 2]  []                    hw => own(0).el0_rw().io().el1();
        CNTP_CTL_EL0:      [3, 3, 14, 2, 1]  []                    hw => own(0).el0_rw().io().wmask(CNT_CTL_WMASK).el1();
        CNTV_TVAL_EL0:     [3, 3, 14, 3, 0]  []                    -  => func(&CNTV_TVAL_FNS).el0_rw().io();
        CNTV_CVAL_EL0:     [3, 3, 14, 3, 2]  []                    hw => own(0).el0_rw().io().el1();
        CNTV_CTL_EL0:      [3, 3, 14, 3, 1]  []                    hw => own(0).el0_rw().io().wmask(CNT_CTL_WMASK).el1();
        // Debug (Arm ARM D24.3), trapped by MDCR_EL2.TDA/TDOSA/TDRA. The debug
        // communications channel is not offered: RAZ/WI as in KVM. MDSCR_EL1 is switched
        // with every switch (its MDE says whether the rest matter); the breakpoint and
        // watchpoint pairs and MDCCINT (group Debug) lazily, only while the vCPU uses them.
        OSDTRRX_EL1:       [2, 0, 0, 0, 2]   []                    -  => konst(0).el1_rw().wi();
        MDCCINT_EL1:       [2, 0, 0, 2, 0]   []                    hw => own(0).el1_rw().debug();
        MDSCR_EL1:         [2, 0, 0, 2, 2]   []                    hw => own(0).el1_rw().el1();
        OSDTRTX_EL1:       [2, 0, 0, 3, 2]   []                    -  => konst(0).el1_rw().wi();
        OSECCR_EL1:        [2, 0, 0, 6, 2]   []                    -  => konst(0).el1_rw().wi();
        DBGBVR0_EL1:       [2, 0, 0, 0, 4]   []                    hw => own(0).el1_rw().debug().presence(Presence::Brp(0));
        DBGBCR0_EL1:       [2, 0, 0, 0, 5]   []                    hw => own(0).el1_rw().debug().presence(Presence::Brp(0));
        DBGWVR0_EL1:       [2, 0, 0, 0, 6]   []                    hw => own(0).el1_rw().debug().presence(Presence::Wrp(0));
        DBGWCR0_EL1:       [2, 0, 0, 0, 7]   []                    hw => own(0).el1_rw().debug().presence(Presence::Wrp(0));
        DBGBVR1_EL1:       [2, 0, 0, 1, 4]   []                    hw => own(0).el1_rw().debug().presence(Presence::Brp(1));
        DBGBCR1_EL1:       [2, 0, 0, 1, 5]   []                    hw => own(0).el1_rw().debug().presence(Presence::Brp(1));
        DBGWVR1_EL1:       [2, 0, 0, 1, 6]   []                    hw => own(0).el1_rw().debug().presence(Presence::Wrp(1));
        DBGWCR1_EL1:       [2, 0, 0, 1, 7]   []                    hw => own(0).el1_rw().debug().presence(Presence::Wrp(1));
        DBGBVR2_EL1:       [2, 0, 0, 2, 4]   []                    hw => own(0).el1_rw().debug().presence(Presence::Brp(2));
        DBGBCR2_EL1:       [2, 0, 0, 2, 5]   []                    hw => own(0).el1_rw().debug().presence(Presence::Brp(2));
        DBGWVR2_EL1:       [2, 0, 0, 2, 6]   []                    hw => own(0).el1_rw().debug().presence(Presence::Wrp(2));
        DBGWCR2_EL1:       [2, 0, 0, 2, 7]   []                    hw => own(0).el1_rw().debug().presence(Presence::Wrp(2));
        DBGBVR3_EL1:       [2, 0, 0, 3, 4]   []                    hw => own(0).el1_rw().debug().presence(Presence::Brp(3));
        DBGBCR3_EL1:       [2, 0, 0, 3, 5]   []                    hw => own(0).el1_rw().debug().presence(Presence::Brp(3));
        DBGWVR3_EL1:       [2, 0, 0, 3, 6]   []                    hw => own(0).el1_rw().debug().presence(Presence::Wrp(3));
        DBGWCR3_EL1:       [2, 0, 0, 3, 7]   []                    hw => own(0).el1_rw().debug().presence(Presence::Wrp(3));
        DBGBVR4_EL1:       [2, 0, 0, 4, 4]   []                    hw => own(0).el1_rw().debug().presence(Presence::Brp(4));
        DBGBCR4_EL1:       [2, 0, 0, 4, 5]   []                    hw => own(0).el1_rw().debug().presence(Presence::Brp(4));
        DBGWVR4_EL1:       [2, 0, 0, 4, 6]   []                    hw => own(0).el1_rw().debug().presence(Presence::Wrp(4));
        DBGWCR4_EL1:       [2, 0, 0, 4, 7]   []                    hw => own(0).el1_rw().debug().presence(Presence::Wrp(4));
        DBGBVR5_EL1:       [2, 0, 0, 5, 4]   []                    hw => own(0).el1_rw().debug().presence(Presence::Brp(5));
        DBGBCR5_EL1:       [2, 0, 0, 5, 5]   []                    hw => own(0).el1_rw().debug().presence(Presence::Brp(5));
        DBGWVR5_EL1:       [2, 0, 0, 5, 6]   []                    hw => own(0).el1_rw().debug().presence(Presence::Wrp(5));
        DBGWCR5_EL1:       [2, 0, 0, 5, 7]   []                    hw => own(0).el1_rw().debug().presence(Presence::Wrp(5));
        DBGBVR6_EL1:       [2, 0, 0, 6, 4]   []                    hw => own(0).el1_rw().debug().presence(Presence::Brp(6));
        DBGBCR6_EL1:       [2, 0, 0, 6, 5]   []                    hw => own(0).el1_rw().debug().presence(Presence::Brp(6));
        DBGWVR6_EL1:       [2, 0, 0, 6, 6]   []                    hw => own(0).el1_rw().debug().presence(Presence::Wrp(6));
        DBGWCR6_EL1:       [2, 0, 0, 6, 7]   []                    hw => own(0).el1_rw().debug().presence(Presence::Wrp(6));
        DBGBVR7_EL1:       [2, 0, 0, 7, 4]   []                    hw => own(0).el1_rw().debug().presence(Presence::Brp(7));
        DBGBCR7_EL1:       [2, 0, 0, 7, 5]   []                    hw => own(0).el1_rw().debug().presence(Presence::Brp(7));
        DBGWVR7_EL1:       [2, 0, 0, 7, 6]   []                    hw => own(0).el1_rw().debug().presence(Presence::Wrp(7));
        DBGWCR7_EL1:       [2, 0, 0, 7, 7]   []                    hw => own(0).el1_rw().debug().presence(Presence::Wrp(7));
        DBGBVR8_EL1:       [2, 0, 0, 8, 4]   []                    hw => own(0).el1_rw().debug().presence(Presence::Brp(8));
        DBGBCR8_EL1:       [2, 0, 0, 8, 5]   []                    hw => own(0).el1_rw().debug().presence(Presence::Brp(8));
        DBGWVR8_EL1:       [2, 0, 0, 8, 6]   []                    hw => own(0).el1_rw().debug().presence(Presence::Wrp(8));
        DBGWCR8_EL1:       [2, 0, 0, 8, 7]   []                    hw => own(0).el1_rw().debug().presence(Presence::Wrp(8));
        DBGBVR9_EL1:       [2, 0, 0, 9, 4]   []                    hw => own(0).el1_rw().debug().presence(Presence::Brp(9));
        DBGBCR9_EL1:       [2, 0, 0, 9, 5]   []                    hw => own(0).el1_rw().debug().presence(Presence::Brp(9));
        DBGWVR9_EL1:       [2, 0, 0, 9, 6]   []                    hw => own(0).el1_rw().debug().presence(Presence::Wrp(9));
        DBGWCR9_EL1:       [2, 0, 0, 9, 7]   []                    hw => own(0).el1_rw().debug().presence(Presence::Wrp(9));
        DBGBVR10_EL1:      [2, 0, 0, 10, 4]  []                    hw => own(0).el1_rw().debug().presence(Presence::Brp(10));
        DBGBCR10_EL1:      [2, 0, 0, 10, 5]  []                    hw => own(0).el1_rw().debug().presence(Presence::Brp(10));
        DBGWVR10_EL1:      [2, 0, 0, 10, 6]  []                    hw => own(0).el1_rw().debug().presence(Presence::Wrp(10));
        DBGWCR10_EL1:      [2, 0, 0, 10, 7]  []                    hw => own(0).el1_rw().debug().presence(Presence::Wrp(10));
        DBGBVR11_EL1:      [2, 0, 0, 11, 4]  []                    hw => own(0).el1_rw().debug().presence(Presence::Brp(11));
        DBGBCR11_EL1:      [2, 0, 0, 11, 5]  []                    hw => own(0).el1_rw().debug().presence(Presence::Brp(11));
        DBGWVR11_EL1:      [2, 0, 0, 11, 6]  []                    hw => own(0).el1_rw().debug().presence(Presence::Wrp(11));
        DBGWCR11_EL1:      [2, 0, 0, 11, 7]  []                    hw => own(0).el1_rw().debug().presence(Presence::Wrp(11));
        DBGBVR12_EL1:      [2, 0, 0, 12, 4]  []                    hw => own(0).el1_rw().debug().presence(Presence::Brp(12));
        DBGBCR12_EL1:      [2, 0, 0, 12, 5]  []                    hw => own(0).el1_rw().debug().presence(Presence::Brp(12));
        DBGWVR12_EL1:      [2, 0, 0, 12, 6]  []                    hw => own(0).el1_rw().debug().presence(Presence::Wrp(12));
        DBGWCR12_EL1:      [2, 0, 0, 12, 7]  []                    hw => own(0).el1_rw().debug().presence(Presence::Wrp(12));
        DBGBVR13_EL1:      [2, 0, 0, 13, 4]  []                    hw => own(0).el1_rw().debug().presence(Presence::Brp(13));
        DBGBCR13_EL1:      [2, 0, 0, 13, 5]  []                    hw => own(0).el1_rw().debug().presence(Presence::Brp(13));
        DBGWVR13_EL1:      [2, 0, 0, 13, 6]  []                    hw => own(0).el1_rw().debug().presence(Presence::Wrp(13));
        DBGWCR13_EL1:      [2, 0, 0, 13, 7]  []                    hw => own(0).el1_rw().debug().presence(Presence::Wrp(13));
        DBGBVR14_EL1:      [2, 0, 0, 14, 4]  []                    hw => own(0).el1_rw().debug().presence(Presence::Brp(14));
        DBGBCR14_EL1:      [2, 0, 0, 14, 5]  []                    hw => own(0).el1_rw().debug().presence(Presence::Brp(14));
        DBGWVR14_EL1:      [2, 0, 0, 14, 6]  []                    hw => own(0).el1_rw().debug().presence(Presence::Wrp(14));
        DBGWCR14_EL1:      [2, 0, 0, 14, 7]  []                    hw => own(0).el1_rw().debug().presence(Presence::Wrp(14));
        DBGBVR15_EL1:      [2, 0, 0, 15, 4]  []                    hw => own(0).el1_rw().debug().presence(Presence::Brp(15));
        DBGBCR15_EL1:      [2, 0, 0, 15, 5]  []                    hw => own(0).el1_rw().debug().presence(Presence::Brp(15));
        DBGWVR15_EL1:      [2, 0, 0, 15, 6]  []                    hw => own(0).el1_rw().debug().presence(Presence::Wrp(15));
        DBGWCR15_EL1:      [2, 0, 0, 15, 7]  []                    hw => own(0).el1_rw().debug().presence(Presence::Wrp(15));
        MDRAR_EL1:         [2, 0, 1, 0, 0]   []                    -  => konst(0).el1_r();
        // The OS lock is emulated (as KVM): OSLAR_EL1.OSLK (bit 0) is OSLSR_EL1.OSLK (bit 1).
        OSLAR_EL1:         [2, 0, 1, 0, 4]   []                    -  => alias(Reg::OSLSR_EL1, 1, 1).el1_w();
        OSLSR_EL1:         [2, 0, 1, 1, 4]   []                    -  => own(OSLSR_EL1_RESET).el1_r();
        OSDLR_EL1:         [2, 0, 1, 3, 4]   []                    -  => own(0).el1_rw().wmask(1);
        DBGPRCR_EL1:       [2, 0, 1, 4, 4]   []                    -  => own(0).el1_rw().wmask(1);
        // Claim tags: DBGCLAIMCLR_EL1 reads the tags and owns them; DBGCLAIMSET_EL1 reads the
        // implemented-tags mask, so it is a function pair, not an alias.
        DBGCLAIMSET_EL1:   [2, 0, 7, 8, 6]   []                    -  => func(&DBGCLAIMSET_FNS).el1_rw();
        DBGCLAIMCLR_EL1:   [2, 0, 7, 9, 6]   []                    -  => own(0).el1_rw().wmask(CLAIM_TAGS).write_op(WriteOp::Clear);
        DBGAUTHSTATUS_EL1: [2, 0, 7, 14, 6]  []                    -  => konst(DBGAUTHSTATUS).el1_r();
        MDCCSR_EL0:        [2, 3, 0, 1, 0]   []                    -  => konst(0).el0_r();
        DBGDTR_EL0:        [2, 3, 0, 4, 0]   []                    -  => konst(0).el0_rw().wi();
        // DBGDTRRX_EL0 on read, DBGDTRTX_EL0 on write: one encoding.
        DBGDTRRX_EL0:      [2, 3, 0, 5, 0]   []                    -  => konst(0).el0_rw().wi();
        // Performance monitors (Arm ARM D13): present only for a VM given a PMU (a VM option;
        // without one MDCR_EL2.TPM traps them all and they UNDEF). Such a guest uses the hardware
        // PMU directly, its counters partitioned by MDCR_EL2.HPMN (at most 8 event counters) and
        // EL2 excluded (HPMD), and these rows are switched with its vCPU (group Pmu, only for
        // VMs with a PMU). Row order is restore order: counters and filters first, the enables
        // last, so nothing counts until its own count is back. SET/CLR pairs: the SET register
        // owns the state, CLR is an alias clearing bits; PMSWINC and PMCR's P/C bits are actions.
        PMEVCNTR0_EL0:      [3, 3, 14, 8, 0]  []                    hw => own(0).el0_rw().pmu().presence(Presence::PmuCounter(0));
        PMEVCNTR1_EL0:      [3, 3, 14, 8, 1]  []                    hw => own(0).el0_rw().pmu().presence(Presence::PmuCounter(1));
        PMEVCNTR2_EL0:      [3, 3, 14, 8, 2]  []                    hw => own(0).el0_rw().pmu().presence(Presence::PmuCounter(2));
        PMEVCNTR3_EL0:      [3, 3, 14, 8, 3]  []                    hw => own(0).el0_rw().pmu().presence(Presence::PmuCounter(3));
        PMEVCNTR4_EL0:      [3, 3, 14, 8, 4]  []                    hw => own(0).el0_rw().pmu().presence(Presence::PmuCounter(4));
        PMEVCNTR5_EL0:      [3, 3, 14, 8, 5]  []                    hw => own(0).el0_rw().pmu().presence(Presence::PmuCounter(5));
        PMEVCNTR6_EL0:      [3, 3, 14, 8, 6]  []                    hw => own(0).el0_rw().pmu().presence(Presence::PmuCounter(6));
        PMEVCNTR7_EL0:      [3, 3, 14, 8, 7]  []                    hw => own(0).el0_rw().pmu().presence(Presence::PmuCounter(7));
        PMEVTYPER0_EL0:     [3, 3, 14, 12, 0] []                    hw => own(0).el0_rw().pmu().presence(Presence::PmuCounter(0));
        PMEVTYPER1_EL0:     [3, 3, 14, 12, 1] []                    hw => own(0).el0_rw().pmu().presence(Presence::PmuCounter(1));
        PMEVTYPER2_EL0:     [3, 3, 14, 12, 2] []                    hw => own(0).el0_rw().pmu().presence(Presence::PmuCounter(2));
        PMEVTYPER3_EL0:     [3, 3, 14, 12, 3] []                    hw => own(0).el0_rw().pmu().presence(Presence::PmuCounter(3));
        PMEVTYPER4_EL0:     [3, 3, 14, 12, 4] []                    hw => own(0).el0_rw().pmu().presence(Presence::PmuCounter(4));
        PMEVTYPER5_EL0:     [3, 3, 14, 12, 5] []                    hw => own(0).el0_rw().pmu().presence(Presence::PmuCounter(5));
        PMEVTYPER6_EL0:     [3, 3, 14, 12, 6] []                    hw => own(0).el0_rw().pmu().presence(Presence::PmuCounter(6));
        PMEVTYPER7_EL0:     [3, 3, 14, 12, 7] []                    hw => own(0).el0_rw().pmu().presence(Presence::PmuCounter(7));
        PMCCNTR_EL0:       [3, 3, 9, 13, 0]  []                    hw => own(0).el0_rw().pmu().presence(Presence::Pmu);
        PMCCFILTR_EL0:     [3, 3, 14, 15, 7] []                    hw => own(0).el0_rw().pmu().presence(Presence::Pmu);
        PMSELR_EL0:        [3, 3, 9, 12, 5]  []                    hw => own(0).el0_rw().wmask(0x1f).pmu().presence(Presence::Pmu);
        PMUSERENR_EL0:     [3, 3, 9, 14, 0]  []                    hw => own(0).el0_r_el1_rw().wmask(0xf).pmu().presence(Presence::Pmu);
        PMCR_EL0:          [3, 3, 9, 12, 0]  []                    hw => own(0).el0_rw().wmask(PMCR_WMASK).pmu().presence(Presence::Pmu);
        PMOVSSET_EL0:      [3, 3, 9, 14, 3]  []                    hw => own(0).el0_rw().write_op(WriteOp::Set).pmu().presence(Presence::Pmu);
        PMOVSCLR_EL0:      [3, 3, 9, 12, 3]  []                    -  => alias(Reg::PMOVSSET_EL0, 0, 64).el0_rw().write_op(WriteOp::Clear).presence(Presence::Pmu);
        PMINTENSET_EL1:    [3, 0, 9, 14, 1]  []                    hw => own(0).el1_rw().write_op(WriteOp::Set).pmu().presence(Presence::Pmu);
        PMINTENCLR_EL1:    [3, 0, 9, 14, 2]  []                    -  => alias(Reg::PMINTENSET_EL1, 0, 64).el1_rw().write_op(WriteOp::Clear).presence(Presence::Pmu);
        PMCNTENSET_EL0:    [3, 3, 9, 12, 1]  []                    hw => own(0).el0_rw().write_op(WriteOp::Set).pmu().presence(Presence::Pmu);
        PMCNTENCLR_EL0:    [3, 3, 9, 12, 2]  []                    -  => alias(Reg::PMCNTENSET_EL0, 0, 64).el0_rw().write_op(WriteOp::Clear).presence(Presence::Pmu);
        PMSWINC_EL0:       [3, 3, 9, 12, 4]  []                    -  => op(OpKind::Nop).el0_w().presence(Presence::Pmu);
        // The common events the hardware counts, as the host reports them.
        PMCEID0_EL0:       [3, 3, 9, 12, 6]  []                    ro => id().el0_r().presence(Presence::Pmu);
        PMCEID1_EL0:       [3, 3, 9, 12, 7]  []                    ro => id().el0_r().presence(Presence::Pmu);
        // Memory tagging (FEAT_MTE2, Arm ARM D10): present only for a VM offered MTE (a VM option,
        // on by default when the CPU has it). Such a guest reaches them directly (HCR_EL2.ATA:
        // without it they trap and UNDEF), so they are switched with its vCPU (group Mte, only
        // for VMs offered MTE). SCTLR_EL1's ATA/ATA0/TCF/TCF0 and TCR_EL1's TBI/TCMA bits are
        // in their El1 rows. GMID_EL1 is an ID register the guest reads directly (TID5 clear).
        GCR_EL1:           [3, 0, 1, 0, 6]   []                    hw => own(0).el1_rw().wmask(0x1_ffff).mte();
        RGSR_EL1:          [3, 0, 1, 0, 5]   []                    hw => own(0).el1_rw().wmask(0xff_ff0f).mte();
        TFSR_EL1:          [3, 0, 5, 6, 0]   []                    hw => own(0).el1_rw().wmask(0b11).mte();
        TFSRE0_EL1:        [3, 0, 5, 6, 1]   []                    hw => own(0).el1_rw().wmask(0b1).mte();
        // PMSELR's window onto one counter: a view of the selected PMEVxxxn_EL0 / PMCCFILTR.
        PMXEVTYPER_EL0:    [3, 3, 9, 13, 1]  []                    -  => func(&PMXEVTYPER_FNS).el0_rw().presence(Presence::Pmu);
        PMXEVCNTR_EL0:     [3, 3, 9, 13, 2]  []                    -  => func(&PMXEVCNTR_FNS).el0_rw().presence(Presence::Pmu);
        // AArch64 system instructions (Arm ARM C5.3): NO_RAW operations.
        IC_IALLUIS:        [1, 0, 7, 1, 0]   []                    -  => op(OpKind::IcAll);
        IC_IALLU:          [1, 0, 7, 5, 0]   []                    -  => op(OpKind::IcAll);
        DC_IVAC:           [1, 0, 7, 6, 1]   []                    -  => op(OpKind::DcVa);
        DC_ISW:            [1, 0, 7, 6, 2]   []                    -  => op(OpKind::DcSetWay);
        AT_S1E1R:          [1, 0, 7, 8, 0]   []                    -  => op(OpKind::At);
        AT_S1E1W:          [1, 0, 7, 8, 1]   []                    -  => op(OpKind::At);
        AT_S1E0R:          [1, 0, 7, 8, 2]   []                    -  => op(OpKind::At);
        AT_S1E0W:          [1, 0, 7, 8, 3]   []                    -  => op(OpKind::At);
        AT_S1E1RP:         [1, 0, 7, 9, 0]   []                    -  => op(OpKind::At).presence(Presence::Pan2);
        AT_S1E1WP:         [1, 0, 7, 9, 1]   []                    -  => op(OpKind::At).presence(Presence::Pan2);
        DC_CSW:            [1, 0, 7, 10, 2]  []                    -  => op(OpKind::DcSetWay);
        DC_CISW:           [1, 0, 7, 14, 2]  []                    -  => op(OpKind::DcSetWay);
        TLBI_VMALLE1OS:    [1, 0, 8, 1, 0]   []                    -  => op(OpKind::Tlbi).presence(Presence::TlbiOs);
        TLBI_VAE1OS:       [1, 0, 8, 1, 1]   []                    -  => op(OpKind::Tlbi).presence(Presence::TlbiOs);
        TLBI_ASIDE1OS:     [1, 0, 8, 1, 2]   []                    -  => op(OpKind::Tlbi).presence(Presence::TlbiOs);
        TLBI_VAAE1OS:      [1, 0, 8, 1, 3]   []                    -  => op(OpKind::Tlbi).presence(Presence::TlbiOs);
        TLBI_VALE1OS:      [1, 0, 8, 1, 5]   []                    -  => op(OpKind::Tlbi).presence(Presence::TlbiOs);
        TLBI_VAALE1OS:     [1, 0, 8, 1, 7]   []                    -  => op(OpKind::Tlbi).presence(Presence::TlbiOs);
        TLBI_RVAE1IS:      [1, 0, 8, 2, 1]   []                    -  => op(OpKind::Tlbi).presence(Presence::TlbiRange);
        TLBI_RVAAE1IS:     [1, 0, 8, 2, 3]   []                    -  => op(OpKind::Tlbi).presence(Presence::TlbiRange);
        TLBI_RVALE1IS:     [1, 0, 8, 2, 5]   []                    -  => op(OpKind::Tlbi).presence(Presence::TlbiRange);
        TLBI_RVAALE1IS:    [1, 0, 8, 2, 7]   []                    -  => op(OpKind::Tlbi).presence(Presence::TlbiRange);
        TLBI_VMALLE1IS:    [1, 0, 8, 3, 0]   []                    -  => op(OpKind::Tlbi);
        TLBI_VAE1IS:       [1, 0, 8, 3, 1]   []                    -  => op(OpKind::Tlbi);
        TLBI_ASIDE1IS:     [1, 0, 8, 3, 2]   []                    -  => op(OpKind::Tlbi);
        TLBI_VAAE1IS:      [1, 0, 8, 3, 3]   []                    -  => op(OpKind::Tlbi);
        TLBI_VALE1IS:      [1, 0, 8, 3, 5]   []                    -  => op(OpKind::Tlbi);
        TLBI_VAALE1IS:     [1, 0, 8, 3, 7]   []                    -  => op(OpKind::Tlbi);
        TLBI_RVAE1OS:      [1, 0, 8, 5, 1]   []                    -  => op(OpKind::Tlbi).presence(Presence::TlbiRange);
        TLBI_RVAAE1OS:     [1, 0, 8, 5, 3]   []                    -  => op(OpKind::Tlbi).presence(Presence::TlbiRange);
        TLBI_RVALE1OS:     [1, 0, 8, 5, 5]   []                    -  => op(OpKind::Tlbi).presence(Presence::TlbiRange);
        TLBI_RVAALE1OS:    [1, 0, 8, 5, 7]   []                    -  => op(OpKind::Tlbi).presence(Presence::TlbiRange);
        TLBI_RVAE1:        [1, 0, 8, 6, 1]   []                    -  => op(OpKind::Tlbi).presence(Presence::TlbiRange);
        TLBI_RVAAE1:       [1, 0, 8, 6, 3]   []                    -  => op(OpKind::Tlbi).presence(Presence::TlbiRange);
        TLBI_RVALE1:       [1, 0, 8, 6, 5]   []                    -  => op(OpKind::Tlbi).presence(Presence::TlbiRange);
        TLBI_RVAALE1:      [1, 0, 8, 6, 7]   []                    -  => op(OpKind::Tlbi).presence(Presence::TlbiRange);
        TLBI_VMALLE1:      [1, 0, 8, 7, 0]   []                    -  => op(OpKind::Tlbi);
        TLBI_VAE1:         [1, 0, 8, 7, 1]   []                    -  => op(OpKind::Tlbi);
        TLBI_ASIDE1:       [1, 0, 8, 7, 2]   []                    -  => op(OpKind::Tlbi);
        TLBI_VAAE1:        [1, 0, 8, 7, 3]   []                    -  => op(OpKind::Tlbi);
        TLBI_VALE1:        [1, 0, 8, 7, 5]   []                    -  => op(OpKind::Tlbi);
        TLBI_VAALE1:       [1, 0, 8, 7, 7]   []                    -  => op(OpKind::Tlbi);
        DC_ZVA:            [1, 3, 7, 4, 1]   []                    -  => op(OpKind::DcZva).el0_w();
        IC_IVAU:           [1, 3, 7, 5, 1]   []                    -  => op(OpKind::IcVa).el0_w();
        DC_CVAC:           [1, 3, 7, 10, 1]  []                    -  => op(OpKind::DcVa).el0_w();
        DC_CVAU:           [1, 3, 7, 11, 1]  []                    -  => op(OpKind::DcVa).el0_w();
        DC_CVAP:           [1, 3, 7, 12, 1]  []                    -  => op(OpKind::DcVa).el0_w().presence(Presence::Dpb);
        DC_CVADP:          [1, 3, 7, 13, 1]  []                    -  => op(OpKind::DcVa).el0_w().presence(Presence::Dpb2);
        DC_CIVAC:          [1, 3, 7, 14, 1]  []                    -  => op(OpKind::DcVa).el0_w();
        // GICv3 SGI generation: trapped by HCR_EL2.IMO/FMO when interrupts are virtualised;
        // the runtime delivers the SGIs (operand: the register value, ICC_SGI1R_EL1 layout).
        ICC_SGI1R_EL1:     [3, 0, 12, 11, 5] []                    -  => op(OpKind::Sgi1).presence(Presence::GicV3);
        ICC_ASGI1R_EL1:    [3, 0, 12, 11, 6] []                    -  => op(OpKind::Asgi1).presence(Presence::GicV3);
        ICC_SGI0R_EL1:     [3, 0, 12, 11, 7] []                    -  => op(OpKind::Sgi0).presence(Presence::GicV3);
        ICC_SGI1R:         []                [p15_64, 0, 12]       -  => op(OpKind::Sgi1).presence(Presence::GicV3);
        ICC_ASGI1R:        []                [p15_64, 1, 12]       -  => op(OpKind::Asgi1).presence(Presence::GicV3);
        ICC_SGI0R:         []                [p15_64, 2, 12]       -  => op(OpKind::Sgi0).presence(Presence::GicV3);
        // AArch32 cp15 views of AArch64 state (Arm ARM G8.2): aliases naming the bits they map.
        SCTLR:             []                [p15, 0, 1, 0, 0]     -  => alias(Reg::SCTLR_EL1, 0, 32).el1_rw().io();
        ACTLR:             []                [p15, 0, 1, 0, 1]     -  => alias(Reg::ACTLR_EL1, 0, 32).el1_rw().wi();
        CPACR:             []                [p15, 0, 1, 0, 2]     -  => alias(Reg::CPACR_EL1, 0, 32).el1_rw();
        ACTLR2:            []                [p15, 0, 1, 0, 3]     -  => alias(Reg::ACTLR_EL1, 32, 32).el1_rw().wi();
        TTBR0:             []                [p15, 0, 2, 0, 0]     -  => alias(Reg::TTBR0_EL1, 0, 32).el1_rw();
        TTBR1:             []                [p15, 0, 2, 0, 1]     -  => alias(Reg::TTBR1_EL1, 0, 32).el1_rw();
        TTBCR:             []                [p15, 0, 2, 0, 2]     -  => alias(Reg::TCR_EL1, 0, 32).el1_rw();
        TTBCR2:            []                [p15, 0, 2, 0, 3]     -  => alias(Reg::TCR_EL1, 32, 32).el1_rw();
        TTBR0_64:          []                [p15_64, 0, 2]        -  => alias(Reg::TTBR0_EL1, 0, 64).el1_rw();
        TTBR1_64:          []                [p15_64, 1, 2]        -  => alias(Reg::TTBR1_EL1, 0, 64).el1_rw();
        DFSR:              []                [p15, 0, 5, 0, 0]     -  => alias(Reg::ESR_EL1, 0, 32).el1_rw();
        ADFSR:             []                [p15, 0, 5, 1, 0]     -  => alias(Reg::AFSR0_EL1, 0, 32).el1_rw();
        AIFSR:             []                [p15, 0, 5, 1, 1]     -  => alias(Reg::AFSR1_EL1, 0, 32).el1_rw();
        DFAR:              []                [p15, 0, 6, 0, 0]     -  => alias(Reg::FAR_EL1, 0, 32).el1_rw();
        IFAR:              []                [p15, 0, 6, 0, 2]     -  => alias(Reg::FAR_EL1, 32, 32).el1_rw();
        PAR:               []                [p15, 0, 7, 4, 0]     -  => alias(Reg::PAR_EL1, 0, 32).el1_rw();
        PAR_64:            []                [p15_64, 0, 7]        -  => alias(Reg::PAR_EL1, 0, 64).el1_rw();
        PRRR:              []                [p15, 0, 10, 2, 0]    -  => alias(Reg::MAIR_EL1, 0, 32).el1_rw();
        NMRR:              []                [p15, 0, 10, 2, 1]    -  => alias(Reg::MAIR_EL1, 32, 32).el1_rw();
        AMAIR0:            []                [p15, 0, 10, 3, 0]    -  => alias(Reg::AMAIR_EL1, 0, 32).el1_rw();
        AMAIR1:            []                [p15, 0, 10, 3, 1]    -  => alias(Reg::AMAIR_EL1, 32, 32).el1_rw();
        VBAR:              []                [p15, 0, 12, 0, 0]    -  => alias(Reg::VBAR_EL1, 0, 32).el1_rw();
        CONTEXTIDR:        []                [p15, 0, 13, 0, 1]    -  => alias(Reg::CONTEXTIDR_EL1, 0, 32).el1_rw();
        TPIDRURW:          []                [p15, 0, 13, 0, 2]    -  => alias(Reg::TPIDR_EL0, 0, 32).el0_rw();
        TPIDRURO:          []                [p15, 0, 13, 0, 3]    -  => alias(Reg::TPIDRRO_EL0, 0, 32).el0_r_el1_rw();
        TPIDRPRW:          []                [p15, 0, 13, 0, 4]    -  => alias(Reg::TPIDR_EL1, 0, 32).el1_rw();
        CNTFRQ:            []                [p15, 0, 14, 0, 0]    -  => alias(Reg::CNTFRQ_EL0, 0, 32).el0_r();
        CNTKCTL:           []                [p15, 0, 14, 1, 0]    -  => alias(Reg::CNTKCTL_EL1, 0, 32).el1_rw();
        CNTP_CTL:          []                [p15, 0, 14, 2, 1]    -  => alias(Reg::CNTP_CTL_EL0, 0, 32).el0_rw().io().wmask(CNT_CTL_WMASK);
        CNTV_CTL:          []                [p15, 0, 14, 3, 1]    -  => alias(Reg::CNTV_CTL_EL0, 0, 32).el0_rw().io().wmask(CNT_CTL_WMASK);
        CNTP_CVAL:         []                [p15_64, 2, 14]       -  => alias(Reg::CNTP_CVAL_EL0, 0, 64).el0_rw().io();
        CNTV_CVAL:         []                [p15_64, 3, 14]       -  => alias(Reg::CNTV_CVAL_EL0, 0, 64).el0_rw().io();
        CSSELR:            []                [p15, 2, 0, 0, 0]     -  => alias(Reg::CSSELR_EL1, 0, 32).el1_rw();
        FCSEIDR:           []                [p15, 0, 13, 0, 0]    -  => konst(0).el1_rw().wi();
        CNTP_TVAL:         []                [p15, 0, 14, 2, 0]    -  => func(&CNTP_TVAL_FNS).el0_rw().io();
        CNTV_TVAL:         []                [p15, 0, 14, 3, 0]    -  => func(&CNTV_TVAL_FNS).el0_rw().io();
        CNTPCT:            []                [p15_64, 0, 14]       -  => func(&CNTPCT_FNS).el0_r().io();
        CNTVCT:            []                [p15_64, 1, 14]       -  => func(&CNTVCT_FNS).el0_r().io();
        // AArch32 PMU views (cp15 c9 and c14, Arm ARM G8.4): aliases of the AArch64 state.
        PMCR:              []                [p15, 0, 9, 12, 0]    -  => alias(Reg::PMCR_EL0, 0, 32).el0_rw().wmask(PMCR_WMASK).presence(Presence::Pmu);
        PMCNTENSET:        []                [p15, 0, 9, 12, 1]    -  => alias(Reg::PMCNTENSET_EL0, 0, 32).el0_rw().write_op(WriteOp::Set).presence(Presence::Pmu);
        PMCNTENCLR:        []                [p15, 0, 9, 12, 2]    -  => alias(Reg::PMCNTENSET_EL0, 0, 32).el0_rw().write_op(WriteOp::Clear).presence(Presence::Pmu);
        PMOVSR:            []                [p15, 0, 9, 12, 3]    -  => alias(Reg::PMOVSSET_EL0, 0, 32).el0_rw().write_op(WriteOp::Clear).presence(Presence::Pmu);
        PMSWINC:           []                [p15, 0, 9, 12, 4]    -  => op(OpKind::Nop).el0_w().presence(Presence::Pmu);
        PMSELR:            []                [p15, 0, 9, 12, 5]    -  => alias(Reg::PMSELR_EL0, 0, 32).el0_rw().wmask(0x1f).presence(Presence::Pmu);
        PMCEID0:           []                [p15, 0, 9, 12, 6]    -  => alias(Reg::PMCEID0_EL0, 0, 32).el0_r().presence(Presence::Pmu);
        PMCEID1:           []                [p15, 0, 9, 12, 7]    -  => alias(Reg::PMCEID1_EL0, 0, 32).el0_r().presence(Presence::Pmu);
        PMCCNTR:           []                [p15, 0, 9, 13, 0]    -  => alias(Reg::PMCCNTR_EL0, 0, 32).el0_rw().presence(Presence::Pmu);
        PMXEVTYPER:        []                [p15, 0, 9, 13, 1]    -  => func(&PMXEVTYPER_FNS).el0_rw().presence(Presence::Pmu);
        PMXEVCNTR:         []                [p15, 0, 9, 13, 2]    -  => func(&PMXEVCNTR_FNS).el0_rw().presence(Presence::Pmu);
        PMUSERENR:         []                [p15, 0, 9, 14, 0]    -  => alias(Reg::PMUSERENR_EL0, 0, 32).el0_r_el1_rw().wmask(0xf).presence(Presence::Pmu);
        PMINTENSET:        []                [p15, 0, 9, 14, 1]    -  => alias(Reg::PMINTENSET_EL1, 0, 32).el1_rw().write_op(WriteOp::Set).presence(Presence::Pmu);
        PMINTENCLR:        []                [p15, 0, 9, 14, 2]    -  => alias(Reg::PMINTENSET_EL1, 0, 32).el1_rw().write_op(WriteOp::Clear).presence(Presence::Pmu);
        PMOVSSET:          []                [p15, 0, 9, 14, 3]    -  => alias(Reg::PMOVSSET_EL0, 0, 32).el0_rw().write_op(WriteOp::Set).presence(Presence::Pmu);
        PMCCNTR_64:        []                [p15_64, 0, 9]        -  => alias(Reg::PMCCNTR_EL0, 0, 64).el0_rw().presence(Presence::Pmu);
        PMEVCNTR0:         []                [p15, 0, 14, 8, 0]    -  => alias(Reg::PMEVCNTR0_EL0, 0, 32).el0_rw().presence(Presence::PmuCounter(0));
        PMEVCNTR1:         []                [p15, 0, 14, 8, 1]    -  => alias(Reg::PMEVCNTR1_EL0, 0, 32).el0_rw().presence(Presence::PmuCounter(1));
        PMEVCNTR2:         []                [p15, 0, 14, 8, 2]    -  => alias(Reg::PMEVCNTR2_EL0, 0, 32).el0_rw().presence(Presence::PmuCounter(2));
        PMEVCNTR3:         []                [p15, 0, 14, 8, 3]    -  => alias(Reg::PMEVCNTR3_EL0, 0, 32).el0_rw().presence(Presence::PmuCounter(3));
        PMEVCNTR4:         []                [p15, 0, 14, 8, 4]    -  => alias(Reg::PMEVCNTR4_EL0, 0, 32).el0_rw().presence(Presence::PmuCounter(4));
        PMEVCNTR5:         []                [p15, 0, 14, 8, 5]    -  => alias(Reg::PMEVCNTR5_EL0, 0, 32).el0_rw().presence(Presence::PmuCounter(5));
        PMEVCNTR6:         []                [p15, 0, 14, 8, 6]    -  => alias(Reg::PMEVCNTR6_EL0, 0, 32).el0_rw().presence(Presence::PmuCounter(6));
        PMEVCNTR7:         []                [p15, 0, 14, 8, 7]    -  => alias(Reg::PMEVCNTR7_EL0, 0, 32).el0_rw().presence(Presence::PmuCounter(7));
        PMEVTYPER0:        []                [p15, 0, 14, 12, 0]   -  => alias(Reg::PMEVTYPER0_EL0, 0, 32).el0_rw().presence(Presence::PmuCounter(0));
        PMEVTYPER1:        []                [p15, 0, 14, 12, 1]   -  => alias(Reg::PMEVTYPER1_EL0, 0, 32).el0_rw().presence(Presence::PmuCounter(1));
        PMEVTYPER2:        []                [p15, 0, 14, 12, 2]   -  => alias(Reg::PMEVTYPER2_EL0, 0, 32).el0_rw().presence(Presence::PmuCounter(2));
        PMEVTYPER3:        []                [p15, 0, 14, 12, 3]   -  => alias(Reg::PMEVTYPER3_EL0, 0, 32).el0_rw().presence(Presence::PmuCounter(3));
        PMEVTYPER4:        []                [p15, 0, 14, 12, 4]   -  => alias(Reg::PMEVTYPER4_EL0, 0, 32).el0_rw().presence(Presence::PmuCounter(4));
        PMEVTYPER5:        []                [p15, 0, 14, 12, 5]   -  => alias(Reg::PMEVTYPER5_EL0, 0, 32).el0_rw().presence(Presence::PmuCounter(5));
        PMEVTYPER6:        []                [p15, 0, 14, 12, 6]   -  => alias(Reg::PMEVTYPER6_EL0, 0, 32).el0_rw().presence(Presence::PmuCounter(6));
        PMEVTYPER7:        []                [p15, 0, 14, 12, 7]   -  => alias(Reg::PMEVTYPER7_EL0, 0, 32).el0_rw().presence(Presence::PmuCounter(7));
        PMCCFILTR:         []                [p15, 0, 14, 15, 7]   -  => alias(Reg::PMCCFILTR_EL0, 0, 32).el0_rw().presence(Presence::Pmu);
        // AArch32 identification views.
        MIDR:              []                [p15, 0, 0, 0, 0]     -  => alias(Reg::MIDR_EL1, 0, 32).el1_r();
        CTR:               []                [p15, 0, 0, 0, 1]     -  => alias(Reg::CTR_EL0, 0, 32).el1_r();
        TCMTR:             []                [p15, 0, 0, 0, 2]     -  => konst(0).el1_r();
        TLBTR:             []                [p15, 0, 0, 0, 3]     -  => konst(0).el1_r();
        MPIDR:             []                [p15, 0, 0, 0, 5]     -  => alias(Reg::MPIDR_EL1, 0, 32).el1_r();
        REVIDR:            []                [p15, 0, 0, 0, 6]     -  => alias(Reg::REVIDR_EL1, 0, 32).el1_r();
        ID_PFR0:           []                [p15, 0, 0, 1, 0]     -  => alias(Reg::ID_PFR0_EL1, 0, 32).el1_r();
        ID_PFR1:           []                [p15, 0, 0, 1, 1]     -  => alias(Reg::ID_PFR1_EL1, 0, 32).el1_r();
        ID_DFR0:           []                [p15, 0, 0, 1, 2]     -  => alias(Reg::ID_DFR0_EL1, 0, 32).el1_r();
        ID_AFR0:           []                [p15, 0, 0, 1, 3]     -  => alias(Reg::ID_AFR0_EL1, 0, 32).el1_r();
        ID_MMFR0:          []                [p15, 0, 0, 1, 4]     -  => alias(Reg::ID_MMFR0_EL1, 0, 32).el1_r();
        ID_MMFR1:          []                [p15, 0, 0, 1, 5]     -  => alias(Reg::ID_MMFR1_EL1, 0, 32).el1_r();
        ID_MMFR2:          []                [p15, 0, 0, 1, 6]     -  => alias(Reg::ID_MMFR2_EL1, 0, 32).el1_r();
        ID_MMFR3:          []                [p15, 0, 0, 1, 7]     -  => alias(Reg::ID_MMFR3_EL1, 0, 32).el1_r();
        ID_ISAR0:          []                [p15, 0, 0, 2, 0]     -  => alias(Reg::ID_ISAR0_EL1, 0, 32).el1_r();
        ID_ISAR1:          []                [p15, 0, 0, 2, 1]     -  => alias(Reg::ID_ISAR1_EL1, 0, 32).el1_r();
        ID_ISAR2:          []                [p15, 0, 0, 2, 2]     -  => alias(Reg::ID_ISAR2_EL1, 0, 32).el1_r();
        ID_ISAR3:          []                [p15, 0, 0, 2, 3]     -  => alias(Reg::ID_ISAR3_EL1, 0, 32).el1_r();
        ID_ISAR4:          []                [p15, 0, 0, 2, 4]     -  => alias(Reg::ID_ISAR4_EL1, 0, 32).el1_r();
        ID_ISAR5:          []                [p15, 0, 0, 2, 5]     -  => alias(Reg::ID_ISAR5_EL1, 0, 32).el1_r();
        ID_MMFR4:          []                [p15, 0, 0, 2, 6]     -  => alias(Reg::ID_MMFR4_EL1, 0, 32).el1_r();
        ID_ISAR6:          []                [p15, 0, 0, 2, 7]     -  => alias(Reg::ID_ISAR6_EL1, 0, 32).el1_r();
        ID_PFR2:           []                [p15, 0, 0, 3, 4]     -  => alias(Reg::ID_PFR2_EL1, 0, 32).el1_r();
        ID_DFR1:           []                [p15, 0, 0, 3, 5]     -  => alias(Reg::ID_DFR1_EL1, 0, 32).el1_r();
        ID_MMFR5:          []                [p15, 0, 0, 3, 6]     -  => alias(Reg::ID_MMFR5_EL1, 0, 32).el1_r();
        // The rest of the AArch32 ID space (opc1=0, CRn=c0, CRm=c3..c7) reads as zero.
        P15_0_C0_C3_0:     []                [p15, 0, 0, 3, 0]     -  => konst(0).el1_r();
        P15_0_C0_C3_1:     []                [p15, 0, 0, 3, 1]     -  => konst(0).el1_r();
        P15_0_C0_C3_2:     []                [p15, 0, 0, 3, 2]     -  => konst(0).el1_r();
        P15_0_C0_C3_3:     []                [p15, 0, 0, 3, 3]     -  => konst(0).el1_r();
        P15_0_C0_C3_7:     []                [p15, 0, 0, 3, 7]     -  => konst(0).el1_r();
        P15_0_C0_C4_0:     []                [p15, 0, 0, 4, 0]     -  => konst(0).el1_r();
        P15_0_C0_C4_1:     []                [p15, 0, 0, 4, 1]     -  => konst(0).el1_r();
        P15_0_C0_C4_2:     []                [p15, 0, 0, 4, 2]     -  => konst(0).el1_r();
        P15_0_C0_C4_3:     []                [p15, 0, 0, 4, 3]     -  => konst(0).el1_r();
        P15_0_C0_C4_4:     []                [p15, 0, 0, 4, 4]     -  => konst(0).el1_r();
        P15_0_C0_C4_5:     []                [p15, 0, 0, 4, 5]     -  => konst(0).el1_r();
        P15_0_C0_C4_6:     []                [p15, 0, 0, 4, 6]     -  => konst(0).el1_r();
        P15_0_C0_C4_7:     []                [p15, 0, 0, 4, 7]     -  => konst(0).el1_r();
        P15_0_C0_C5_0:     []                [p15, 0, 0, 5, 0]     -  => konst(0).el1_r();
        P15_0_C0_C5_1:     []                [p15, 0, 0, 5, 1]     -  => konst(0).el1_r();
        P15_0_C0_C5_2:     []                [p15, 0, 0, 5, 2]     -  => konst(0).el1_r();
        P15_0_C0_C5_3:     []                [p15, 0, 0, 5, 3]     -  => konst(0).el1_r();
        P15_0_C0_C5_4:     []                [p15, 0, 0, 5, 4]     -  => konst(0).el1_r();
        P15_0_C0_C5_5:     []                [p15, 0, 0, 5, 5]     -  => konst(0).el1_r();
        P15_0_C0_C5_6:     []                [p15, 0, 0, 5, 6]     -  => konst(0).el1_r();
        P15_0_C0_C5_7:     []                [p15, 0, 0, 5, 7]     -  => konst(0).el1_r();
        P15_0_C0_C6_0:     []                [p15, 0, 0, 6, 0]     -  => konst(0).el1_r();
        P15_0_C0_C6_1:     []                [p15, 0, 0, 6, 1]     -  => konst(0).el1_r();
        P15_0_C0_C6_2:     []                [p15, 0, 0, 6, 2]     -  => konst(0).el1_r();
        P15_0_C0_C6_3:     []                [p15, 0, 0, 6, 3]     -  => konst(0).el1_r();
        P15_0_C0_C6_4:     []                [p15, 0, 0, 6, 4]     -  => konst(0).el1_r();
        P15_0_C0_C6_5:     []                [p15, 0, 0, 6, 5]     -  => konst(0).el1_r();
        P15_0_C0_C6_6:     []                [p15, 0, 0, 6, 6]     -  => konst(0).el1_r();
        P15_0_C0_C6_7:     []                [p15, 0, 0, 6, 7]     -  => konst(0).el1_r();
        P15_0_C0_C7_0:     []                [p15, 0, 0, 7, 0]     -  => konst(0).el1_r();
        P15_0_C0_C7_1:     []                [p15, 0, 0, 7, 1]     -  => konst(0).el1_r();
        P15_0_C0_C7_2:     []                [p15, 0, 0, 7, 2]     -  => konst(0).el1_r();
        P15_0_C0_C7_3:     []                [p15, 0, 0, 7, 3]     -  => konst(0).el1_r();
        P15_0_C0_C7_4:     []                [p15, 0, 0, 7, 4]     -  => konst(0).el1_r();
        P15_0_C0_C7_5:     []                [p15, 0, 0, 7, 5]     -  => konst(0).el1_r();
        P15_0_C0_C7_6:     []                [p15, 0, 0, 7, 6]     -  => konst(0).el1_r();
        P15_0_C0_C7_7:     []                [p15, 0, 0, 7, 7]     -  => konst(0).el1_r();
        CCSIDR:            []                [p15, 1, 0, 0, 0]     -  => func(&CCSIDR_FNS).el1_r();
        CCSIDR2:           []                [p15, 1, 0, 0, 2]     -  => func(&CCSIDR2_FNS).el1_r().presence(Presence::Ccidx);
        CLIDR:             []                [p15, 1, 0, 0, 1]     -  => alias(Reg::CLIDR_EL1, 0, 32).el1_r();
        AIDR:              []                [p15, 1, 0, 0, 7]     -  => alias(Reg::AIDR_EL1, 0, 32).el1_r();
        // AArch32 cache, TLB and address-translation operations (cp15 c7, c8).
        ICIALLUIS:         []                [p15, 0, 7, 1, 0]     -  => op(OpKind::IcAll);
        BPIALLIS:          []                [p15, 0, 7, 1, 6]     -  => op(OpKind::Nop);
        ICIALLU:           []                [p15, 0, 7, 5, 0]     -  => op(OpKind::IcAll);
        ICIMVAU:           []                [p15, 0, 7, 5, 1]     -  => op(OpKind::IcVa).el0_w();
        CP15ISB:           []                [p15, 0, 7, 5, 4]     -  => op(OpKind::Nop).el0_w();
        BPIALL:            []                [p15, 0, 7, 5, 6]     -  => op(OpKind::Nop);
        BPIMVA:            []                [p15, 0, 7, 5, 7]     -  => op(OpKind::Nop);
        DCIMVAC:           []                [p15, 0, 7, 6, 1]     -  => op(OpKind::DcVa);
        DCISW:             []                [p15, 0, 7, 6, 2]     -  => op(OpKind::DcSetWay);
        ATS1CPR:           []                [p15, 0, 7, 8, 0]     -  => op(OpKind::At);
        ATS1CPW:           []                [p15, 0, 7, 8, 1]     -  => op(OpKind::At);
        ATS1CUR:           []                [p15, 0, 7, 8, 2]     -  => op(OpKind::At);
        ATS1CUW:           []                [p15, 0, 7, 8, 3]     -  => op(OpKind::At);
        DCCMVAC:           []                [p15, 0, 7, 10, 1]    -  => op(OpKind::DcVa).el0_w();
        DCCSW:             []                [p15, 0, 7, 10, 2]    -  => op(OpKind::DcSetWay);
        CP15DSB:           []                [p15, 0, 7, 10, 4]    -  => op(OpKind::Nop).el0_w();
        CP15DMB:           []                [p15, 0, 7, 10, 5]    -  => op(OpKind::Nop).el0_w();
        DCCMVAU:           []                [p15, 0, 7, 11, 1]    -  => op(OpKind::DcVa).el0_w();
        DCCIMVAC:          []                [p15, 0, 7, 14, 1]    -  => op(OpKind::DcVa).el0_w();
        DCCISW:            []                [p15, 0, 7, 14, 2]    -  => op(OpKind::DcSetWay);
        TLBIALLIS:         []                [p15, 0, 8, 3, 0]     -  => op(OpKind::Tlbi);
        TLBIMVAIS:         []                [p15, 0, 8, 3, 1]     -  => op(OpKind::Tlbi);
        TLBIASIDIS:        []                [p15, 0, 8, 3, 2]     -  => op(OpKind::Tlbi);
        TLBIMVAAIS:        []                [p15, 0, 8, 3, 3]     -  => op(OpKind::Tlbi);
        TLBIMVALIS:        []                [p15, 0, 8, 3, 5]     -  => op(OpKind::Tlbi);
        TLBIMVAALIS:       []                [p15, 0, 8, 3, 7]     -  => op(OpKind::Tlbi);
        ITLBIALL:          []                [p15, 0, 8, 5, 0]     -  => op(OpKind::Tlbi);
        ITLBIMVA:          []                [p15, 0, 8, 5, 1]     -  => op(OpKind::Tlbi);
        ITLBIASID:         []                [p15, 0, 8, 5, 2]     -  => op(OpKind::Tlbi);
        DTLBIALL:          []                [p15, 0, 8, 6, 0]     -  => op(OpKind::Tlbi);
        DTLBIMVA:          []                [p15, 0, 8, 6, 1]     -  => op(OpKind::Tlbi);
        DTLBIASID:         []                [p15, 0, 8, 6, 2]     -  => op(OpKind::Tlbi);
        TLBIALL:           []                [p15, 0, 8, 7, 0]     -  => op(OpKind::Tlbi);
        TLBIMVA:           []                [p15, 0, 8, 7, 1]     -  => op(OpKind::Tlbi);
        TLBIASID:          []                [p15, 0, 8, 7, 2]     -  => op(OpKind::Tlbi);
        TLBIMVAA:          []                [p15, 0, 8, 7, 3]     -  => op(OpKind::Tlbi);
        TLBIMVAL:          []                [p15, 0, 8, 7, 5]     -  => op(OpKind::Tlbi);
        TLBIMVAAL:         []                [p15, 0, 8, 7, 7]     -  => op(OpKind::Tlbi);
        // AArch32 cp14 debug views (Arm ARM G8.3).
        DBGDIDR:           []                [p14, 0, 0, 0, 0]     -  => func(&DBGDIDR_FNS).el1_r();
        DBGDSCRint:        []                [p14, 0, 0, 1, 0]     -  => alias(Reg::MDSCR_EL1, 0, 32).el1_r();
        DBGDTRRXext:       []                [p14, 0, 0, 0, 2]     -  => konst(0).el1_rw().wi();
        DBGDCCINT:         []                [p14, 0, 0, 2, 0]     -  => alias(Reg::MDCCINT_EL1, 0, 32).el1_rw();
        DBGDSCRext:        []                [p14, 0, 0, 2, 2]     -  => alias(Reg::MDSCR_EL1, 0, 32).el1_rw();
        DBGDTRTXext:       []                [p14, 0, 0, 3, 2]     -  => konst(0).el1_rw().wi();
        DBGDTRint:         []                [p14, 0, 0, 5, 0]     -  => konst(0).el0_rw().wi();
        DBGWFAR:           []                [p14, 0, 0, 6, 0]     -  => konst(0).el1_rw().wi();
        DBGBVR0:           []                [p14, 0, 0, 0, 4]     -  => alias(Reg::DBGBVR0_EL1, 0, 32).el1_rw().presence(Presence::Brp(0));
        DBGBCR0:           []                [p14, 0, 0, 0, 5]     -  => alias(Reg::DBGBCR0_EL1, 0, 32).el1_rw().presence(Presence::Brp(0));
        DBGWVR0:           []                [p14, 0, 0, 0, 6]     -  => alias(Reg::DBGWVR0_EL1, 0, 32).el1_rw().presence(Presence::Wrp(0));
        DBGWCR0:           []                [p14, 0, 0, 0, 7]     -  => alias(Reg::DBGWCR0_EL1, 0, 32).el1_rw().presence(Presence::Wrp(0));
        DBGBXVR0:          []                [p14, 0, 1, 0, 1]     -  => alias(Reg::DBGBVR0_EL1, 32, 32).el1_rw().presence(Presence::Brp(0));
        DBGBVR1:           []                [p14, 0, 0, 1, 4]     -  => alias(Reg::DBGBVR1_EL1, 0, 32).el1_rw().presence(Presence::Brp(1));
        DBGBCR1:           []                [p14, 0, 0, 1, 5]     -  => alias(Reg::DBGBCR1_EL1, 0, 32).el1_rw().presence(Presence::Brp(1));
        DBGWVR1:           []                [p14, 0, 0, 1, 6]     -  => alias(Reg::DBGWVR1_EL1, 0, 32).el1_rw().presence(Presence::Wrp(1));
        DBGWCR1:           []                [p14, 0, 0, 1, 7]     -  => alias(Reg::DBGWCR1_EL1, 0, 32).el1_rw().presence(Presence::Wrp(1));
        DBGBXVR1:          []                [p14, 0, 1, 1, 1]     -  => alias(Reg::DBGBVR1_EL1, 32, 32).el1_rw().presence(Presence::Brp(1));
        DBGBVR2:           []                [p14, 0, 0, 2, 4]     -  => alias(Reg::DBGBVR2_EL1, 0, 32).el1_rw().presence(Presence::Brp(2));
        DBGBCR2:           []                [p14, 0, 0, 2, 5]     -  => alias(Reg::DBGBCR2_EL1, 0, 32).el1_rw().presence(Presence::Brp(2));
        DBGWVR2:           []                [p14, 0, 0, 2, 6]     -  => alias(Reg::DBGWVR2_EL1, 0, 32).el1_rw().presence(Presence::Wrp(2));
        DBGWCR2:           []                [p14, 0, 0, 2, 7]     -  => alias(Reg::DBGWCR2_EL1, 0, 32).el1_rw().presence(Presence::Wrp(2));
        DBGBXVR2:          []                [p14, 0, 1, 2, 1]     -  => alias(Reg::DBGBVR2_EL1, 32, 32).el1_rw().presence(Presence::Brp(2));
        DBGBVR3:           []                [p14, 0, 0, 3, 4]     -  => alias(Reg::DBGBVR3_EL1, 0, 32).el1_rw().presence(Presence::Brp(3));
        DBGBCR3:           []                [p14, 0, 0, 3, 5]     -  => alias(Reg::DBGBCR3_EL1, 0, 32).el1_rw().presence(Presence::Brp(3));
        DBGWVR3:           []                [p14, 0, 0, 3, 6]     -  => alias(Reg::DBGWVR3_EL1, 0, 32).el1_rw().presence(Presence::Wrp(3));
        DBGWCR3:           []                [p14, 0, 0, 3, 7]     -  => alias(Reg::DBGWCR3_EL1, 0, 32).el1_rw().presence(Presence::Wrp(3));
        DBGBXVR3:          []                [p14, 0, 1, 3, 1]     -  => alias(Reg::DBGBVR3_EL1, 32, 32).el1_rw().presence(Presence::Brp(3));
        DBGBVR4:           []                [p14, 0, 0, 4, 4]     -  => alias(Reg::DBGBVR4_EL1, 0, 32).el1_rw().presence(Presence::Brp(4));
        DBGBCR4:           []                [p14, 0, 0, 4, 5]     -  => alias(Reg::DBGBCR4_EL1, 0, 32).el1_rw().presence(Presence::Brp(4));
        DBGWVR4:           []                [p14, 0, 0, 4, 6]     -  => alias(Reg::DBGWVR4_EL1, 0, 32).el1_rw().presence(Presence::Wrp(4));
        DBGWCR4:           []                [p14, 0, 0, 4, 7]     -  => alias(Reg::DBGWCR4_EL1, 0, 32).el1_rw().presence(Presence::Wrp(4));
        DBGBXVR4:          []                [p14, 0, 1, 4, 1]     -  => alias(Reg::DBGBVR4_EL1, 32, 32).el1_rw().presence(Presence::Brp(4));
        DBGBVR5:           []                [p14, 0, 0, 5, 4]     -  => alias(Reg::DBGBVR5_EL1, 0, 32).el1_rw().presence(Presence::Brp(5));
        DBGBCR5:           []                [p14, 0, 0, 5, 5]     -  => alias(Reg::DBGBCR5_EL1, 0, 32).el1_rw().presence(Presence::Brp(5));
        DBGWVR5:           []                [p14, 0, 0, 5, 6]     -  => alias(Reg::DBGWVR5_EL1, 0, 32).el1_rw().presence(Presence::Wrp(5));
        DBGWCR5:           []                [p14, 0, 0, 5, 7]     -  => alias(Reg::DBGWCR5_EL1, 0, 32).el1_rw().presence(Presence::Wrp(5));
        DBGBXVR5:          []                [p14, 0, 1, 5, 1]     -  => alias(Reg::DBGBVR5_EL1, 32, 32).el1_rw().presence(Presence::Brp(5));
        DBGBVR6:           []                [p14, 0, 0, 6, 4]     -  => alias(Reg::DBGBVR6_EL1, 0, 32).el1_rw().presence(Presence::Brp(6));
        DBGBCR6:           []                [p14, 0, 0, 6, 5]     -  => alias(Reg::DBGBCR6_EL1, 0, 32).el1_rw().presence(Presence::Brp(6));
        DBGWVR6:           []                [p14, 0, 0, 6, 6]     -  => alias(Reg::DBGWVR6_EL1, 0, 32).el1_rw().presence(Presence::Wrp(6));
        DBGWCR6:           []                [p14, 0, 0, 6, 7]     -  => alias(Reg::DBGWCR6_EL1, 0, 32).el1_rw().presence(Presence::Wrp(6));
        DBGBXVR6:          []                [p14, 0, 1, 6, 1]     -  => alias(Reg::DBGBVR6_EL1, 32, 32).el1_rw().presence(Presence::Brp(6));
        DBGBVR7:           []                [p14, 0, 0, 7, 4]     -  => alias(Reg::DBGBVR7_EL1, 0, 32).el1_rw().presence(Presence::Brp(7));
        DBGBCR7:           []                [p14, 0, 0, 7, 5]     -  => alias(Reg::DBGBCR7_EL1, 0, 32).el1_rw().presence(Presence::Brp(7));
        DBGWVR7:           []                [p14, 0, 0, 7, 6]     -  => alias(Reg::DBGWVR7_EL1, 0, 32).el1_rw().presence(Presence::Wrp(7));
        DBGWCR7:           []                [p14, 0, 0, 7, 7]     -  => alias(Reg::DBGWCR7_EL1, 0, 32).el1_rw().presence(Presence::Wrp(7));
        DBGBXVR7:          []                [p14, 0, 1, 7, 1]     -  => alias(Reg::DBGBVR7_EL1, 32, 32).el1_rw().presence(Presence::Brp(7));
        DBGBVR8:           []                [p14, 0, 0, 8, 4]     -  => alias(Reg::DBGBVR8_EL1, 0, 32).el1_rw().presence(Presence::Brp(8));
        DBGBCR8:           []                [p14, 0, 0, 8, 5]     -  => alias(Reg::DBGBCR8_EL1, 0, 32).el1_rw().presence(Presence::Brp(8));
        DBGWVR8:           []                [p14, 0, 0, 8, 6]     -  => alias(Reg::DBGWVR8_EL1, 0, 32).el1_rw().presence(Presence::Wrp(8));
        DBGWCR8:           []                [p14, 0, 0, 8, 7]     -  => alias(Reg::DBGWCR8_EL1, 0, 32).el1_rw().presence(Presence::Wrp(8));
        DBGBXVR8:          []                [p14, 0, 1, 8, 1]     -  => alias(Reg::DBGBVR8_EL1, 32, 32).el1_rw().presence(Presence::Brp(8));
        DBGBVR9:           []                [p14, 0, 0, 9, 4]     -  => alias(Reg::DBGBVR9_EL1, 0, 32).el1_rw().presence(Presence::Brp(9));
        DBGBCR9:           []                [p14, 0, 0, 9, 5]     -  => alias(Reg::DBGBCR9_EL1, 0, 32).el1_rw().presence(Presence::Brp(9));
        DBGWVR9:           []                [p14, 0, 0, 9, 6]     -  => alias(Reg::DBGWVR9_EL1, 0, 32).el1_rw().presence(Presence::Wrp(9));
        DBGWCR9:           []                [p14, 0, 0, 9, 7]     -  => alias(Reg::DBGWCR9_EL1, 0, 32).el1_rw().presence(Presence::Wrp(9));
        DBGBXVR9:          []                [p14, 0, 1, 9, 1]     -  => alias(Reg::DBGBVR9_EL1, 32, 32).el1_rw().presence(Presence::Brp(9));
        DBGBVR10:          []                [p14, 0, 0, 10, 4]    -  => alias(Reg::DBGBVR10_EL1, 0, 32).el1_rw().presence(Presence::Brp(10));
        DBGBCR10:          []                [p14, 0, 0, 10, 5]    -  => alias(Reg::DBGBCR10_EL1, 0, 32).el1_rw().presence(Presence::Brp(10));
        DBGWVR10:          []                [p14, 0, 0, 10, 6]    -  => alias(Reg::DBGWVR10_EL1, 0, 32).el1_rw().presence(Presence::Wrp(10));
        DBGWCR10:          []                [p14, 0, 0, 10, 7]    -  => alias(Reg::DBGWCR10_EL1, 0, 32).el1_rw().presence(Presence::Wrp(10));
        DBGBXVR10:         []                [p14, 0, 1, 10, 1]    -  => alias(Reg::DBGBVR10_EL1, 32, 32).el1_rw().presence(Presence::Brp(10));
        DBGBVR11:          []                [p14, 0, 0, 11, 4]    -  => alias(Reg::DBGBVR11_EL1, 0, 32).el1_rw().presence(Presence::Brp(11));
        DBGBCR11:          []                [p14, 0, 0, 11, 5]    -  => alias(Reg::DBGBCR11_EL1, 0, 32).el1_rw().presence(Presence::Brp(11));
        DBGWVR11:          []                [p14, 0, 0, 11, 6]    -  => alias(Reg::DBGWVR11_EL1, 0, 32).el1_rw().presence(Presence::Wrp(11));
        DBGWCR11:          []                [p14, 0, 0, 11, 7]    -  => alias(Reg::DBGWCR11_EL1, 0, 32).el1_rw().presence(Presence::Wrp(11));
        DBGBXVR11:         []                [p14, 0, 1, 11, 1]    -  => alias(Reg::DBGBVR11_EL1, 32, 32).el1_rw().presence(Presence::Brp(11));
        DBGBVR12:          []                [p14, 0, 0, 12, 4]    -  => alias(Reg::DBGBVR12_EL1, 0, 32).el1_rw().presence(Presence::Brp(12));
        DBGBCR12:          []                [p14, 0, 0, 12, 5]    -  => alias(Reg::DBGBCR12_EL1, 0, 32).el1_rw().presence(Presence::Brp(12));
        DBGWVR12:          []                [p14, 0, 0, 12, 6]    -  => alias(Reg::DBGWVR12_EL1, 0, 32).el1_rw().presence(Presence::Wrp(12));
        DBGWCR12:          []                [p14, 0, 0, 12, 7]    -  => alias(Reg::DBGWCR12_EL1, 0, 32).el1_rw().presence(Presence::Wrp(12));
        DBGBXVR12:         []                [p14, 0, 1, 12, 1]    -  => alias(Reg::DBGBVR12_EL1, 32, 32).el1_rw().presence(Presence::Brp(12));
        DBGBVR13:          []                [p14, 0, 0, 13, 4]    -  => alias(Reg::DBGBVR13_EL1, 0, 32).el1_rw().presence(Presence::Brp(13));
        DBGBCR13:          []                [p14, 0, 0, 13, 5]    -  => alias(Reg::DBGBCR13_EL1, 0, 32).el1_rw().presence(Presence::Brp(13));
        DBGWVR13:          []                [p14, 0, 0, 13, 6]    -  => alias(Reg::DBGWVR13_EL1, 0, 32).el1_rw().presence(Presence::Wrp(13));
        DBGWCR13:          []                [p14, 0, 0, 13, 7]    -  => alias(Reg::DBGWCR13_EL1, 0, 32).el1_rw().presence(Presence::Wrp(13));
        DBGBXVR13:         []                [p14, 0, 1, 13, 1]    -  => alias(Reg::DBGBVR13_EL1, 32, 32).el1_rw().presence(Presence::Brp(13));
        DBGBVR14:          []                [p14, 0, 0, 14, 4]    -  => alias(Reg::DBGBVR14_EL1, 0, 32).el1_rw().presence(Presence::Brp(14));
        DBGBCR14:          []                [p14, 0, 0, 14, 5]    -  => alias(Reg::DBGBCR14_EL1, 0, 32).el1_rw().presence(Presence::Brp(14));
        DBGWVR14:          []                [p14, 0, 0, 14, 6]    -  => alias(Reg::DBGWVR14_EL1, 0, 32).el1_rw().presence(Presence::Wrp(14));
        DBGWCR14:          []                [p14, 0, 0, 14, 7]    -  => alias(Reg::DBGWCR14_EL1, 0, 32).el1_rw().presence(Presence::Wrp(14));
        DBGBXVR14:         []                [p14, 0, 1, 14, 1]    -  => alias(Reg::DBGBVR14_EL1, 32, 32).el1_rw().presence(Presence::Brp(14));
        DBGBVR15:          []                [p14, 0, 0, 15, 4]    -  => alias(Reg::DBGBVR15_EL1, 0, 32).el1_rw().presence(Presence::Brp(15));
        DBGBCR15:          []                [p14, 0, 0, 15, 5]    -  => alias(Reg::DBGBCR15_EL1, 0, 32).el1_rw().presence(Presence::Brp(15));
        DBGWVR15:          []                [p14, 0, 0, 15, 6]    -  => alias(Reg::DBGWVR15_EL1, 0, 32).el1_rw().presence(Presence::Wrp(15));
        DBGWCR15:          []                [p14, 0, 0, 15, 7]    -  => alias(Reg::DBGWCR15_EL1, 0, 32).el1_rw().presence(Presence::Wrp(15));
        DBGBXVR15:         []                [p14, 0, 1, 15, 1]    -  => alias(Reg::DBGBVR15_EL1, 32, 32).el1_rw().presence(Presence::Brp(15));
        DBGDRAR:           []                [p14, 0, 1, 0, 0]     -  => konst(0).el1_r();
        DBGOSLAR:          []                [p14, 0, 1, 0, 4]     -  => alias(Reg::OSLSR_EL1, 1, 1).el1_w();
        DBGOSLSR:          []                [p14, 0, 1, 1, 4]     -  => alias(Reg::OSLSR_EL1, 0, 32).el1_r();
        DBGOSDLR:          []                [p14, 0, 1, 3, 4]     -  => alias(Reg::OSDLR_EL1, 0, 32).el1_rw().wmask(1);
        DBGPRCR:           []                [p14, 0, 1, 4, 4]     -  => alias(Reg::DBGPRCR_EL1, 0, 32).el1_rw().wmask(1);
        DBGDSAR:           []                [p14, 0, 2, 0, 0]     -  => konst(0).el1_r();
        DBGCLAIMSET:       []                [p14, 0, 7, 8, 6]     -  => func(&DBGCLAIMSET_FNS).el1_rw();
        DBGCLAIMCLR:       []                [p14, 0, 7, 9, 6]     -  => alias(Reg::DBGCLAIMCLR_EL1, 0, 32).el1_rw().wmask(CLAIM_TAGS).write_op(WriteOp::Clear);
        DBGAUTHSTATUS:     []                [p14, 0, 7, 14, 6]    -  => konst(DBGAUTHSTATUS).el1_r();
        DBGDRAR_64:        []                [p14_64, 0, 1]        -  => konst(0).el1_r();
        DBGDSAR_64:        []                [p14_64, 0, 2]        -  => konst(0).el1_r();

        }
    };
}

/// The rows, for the arch layer's generated accessors (`arch::sysreg`).
#[cfg(all(target_arch = "aarch64", target_os = "none"))]
pub(crate) use with_cpreg_rows;
