//! The EL1 system-register state of a vCPU, switched on every world switch.
//!
//! TRANSITIONAL: this list becomes the cpreg table's generated switch set (issue 3/4:
//! exactly the table entries that are neither ALIAS nor NO_RAW). Until that lands it is
//! one macro invocation, so the struct, the save and the restore cannot drift.

macro_rules! el1_state {
    ($($field:ident => $reg:literal),* $(,)?) => {
        /// Saved EL1 registers, named as in the Arm ARM.
        #[derive(Clone, Copy, Default, Debug)]
        #[allow(non_snake_case)]
        pub struct El1State { $(pub $field: u64),* }

        impl El1State {
            /// Reads the live registers into `self`.
            pub fn save(&mut self) {
                $(
                    // SAFETY: reading an EL1 register from EL2 has no side effects.
                    unsafe { core::arch::asm!(concat!("mrs {}, ", $reg), out(reg) self.$field, options(nomem, nostack)) };
                )*
            }

            /// Loads `self` into the registers. The caller is about to run this vCPU.
            pub fn restore(&self) {
                $(
                    // SAFETY: EL1 registers do not affect EL2 execution (no VHE).
                    unsafe { core::arch::asm!(concat!("msr ", $reg, ", {}"), in(reg) self.$field, options(nomem, nostack)) };
                )*
            }

            /// (name, value) pairs, for the console.
            pub fn named(&self) -> impl Iterator<Item = (&'static str, u64)> + '_ {
                [$((stringify!($field), self.$field)),*].into_iter()
            }
        }
    };
}

el1_state! {
    SCTLR_EL1 => "sctlr_el1",
    ACTLR_EL1 => "actlr_el1",
    CPACR_EL1 => "cpacr_el1",
    TTBR0_EL1 => "ttbr0_el1",
    TTBR1_EL1 => "ttbr1_el1",
    TCR_EL1 => "tcr_el1",
    MAIR_EL1 => "mair_el1",
    AMAIR_EL1 => "amair_el1",
    ESR_EL1 => "esr_el1",
    FAR_EL1 => "far_el1",
    AFSR0_EL1 => "afsr0_el1",
    AFSR1_EL1 => "afsr1_el1",
    VBAR_EL1 => "vbar_el1",
    CONTEXTIDR_EL1 => "contextidr_el1",
    TPIDR_EL0 => "tpidr_el0",
    TPIDRRO_EL0 => "tpidrro_el0",
    TPIDR_EL1 => "tpidr_el1",
    SP_EL0 => "sp_el0",
    SP_EL1 => "sp_el1",
    ELR_EL1 => "elr_el1",
    SPSR_EL1 => "spsr_el1",
    PAR_EL1 => "par_el1",
    CNTKCTL_EL1 => "cntkctl_el1",
    CSSELR_EL1 => "csselr_el1",
    MDSCR_EL1 => "mdscr_el1",
    CNTV_CTL_EL0 => "cntv_ctl_el0",
    CNTV_CVAL_EL0 => "cntv_cval_el0",
}

impl El1State {
    /// Architectural reset for a vCPU entering at EL1 with the MMU off.
    pub fn reset() -> Self {
        Self {
            SCTLR_EL1: 0x30d0_0800,
            ..Default::default()
        }
    }
}
