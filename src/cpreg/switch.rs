//! The world-switch sets, generated from the table: every `hw` row with a group.
//!
//! `table.rs` rejects at compile time a `hw` row without a group (it would leak
//! between vCPUs) and a group on anything but stored, writable, hardware-backed
//! state, so these lists are exactly "hardware-backed, neither ALIAS nor NO_RAW nor
//! CONST". Registers that exist only on some CPUs (the AArch32 state, breakpoints
//! beyond ID_AA64DFR0.BRPs, ...) are skipped by their presence predicate against the
//! vCPU's features, at run time, because touching a missing one UNDEFs at EL2.
//!
//! Registers are moved in row order; `rows.rs` puts each timer's CVAL before its
//! CTL so a restored timer is enabled only with its own compare value.
#![forbid(unsafe_code)]

use super::context::SysRegFile;
use super::entry::{Group, Presence};
use super::hw::SysRegHw;
use super::table::{Reg, DEBUG_SET, EL1_SET, FP_SET, MTE_SET, PMU_SET, TABLE_CONST};

/// How the world switch moves an entry, from its group and presence: decided at
/// compile time, so the generated switch (`arch::sysreg`) is straight-line code
/// with one test per group instead of one per register.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Switched {
    /// Not switched.
    No,
    /// Every switch.
    Eager,
    /// Every switch of a VM whose EL1 is AArch32.
    EagerAarch32,
    /// With the debug group, always present.
    Debug,
    /// With the debug group, breakpoint pair `n`.
    DebugBrp(u8),
    /// With the debug group, watchpoint pair `n`.
    DebugWrp(u8),
    /// With the FP/SIMD state, on an AArch32 VM.
    FpAarch32,
    /// With the PMU group (VMs with a PMU), always present there.
    Pmu,
    /// With the PMU group, event counter `n`'s registers.
    PmuCounter(u8),
    /// With the MTE group (VMs offered MTE).
    Mte,
}

/// How `reg` is switched. A row whose group and presence do not fit one of the
/// classes stops the build (nothing is silently left out of the switch).
pub const fn switched(reg: Reg) -> Switched {
    let e = &TABLE_CONST[reg as usize];
    match (e.group, e.presence) {
        (Group::None, _) => Switched::No,
        (Group::El1, Presence::Always) => Switched::Eager,
        (Group::El1, Presence::Aarch32El1) => Switched::EagerAarch32,
        (Group::Debug, Presence::Always) => Switched::Debug,
        (Group::Debug, Presence::Brp(n)) => Switched::DebugBrp(n),
        (Group::Debug, Presence::Wrp(n)) => Switched::DebugWrp(n),
        (Group::Fp, Presence::Aarch32El1) => Switched::FpAarch32,
        (Group::Pmu, Presence::Pmu) => Switched::Pmu,
        (Group::Pmu, Presence::PmuCounter(n)) => Switched::PmuCounter(n),
        (Group::Mte, Presence::Mte) => Switched::Mte,
        _ => panic!("a switched register with a presence the switch does not handle"),
    }
}

const _: () = {
    let mut i = 0;
    while i < super::table::COUNT {
        let _ = switched(Reg::ALL[i]);
        i += 1;
    }
};

/// Save the guest's EL1/EL0 registers from the CPU into its context.
pub fn save_el1_with(ctx: &mut SysRegFile, hw: &mut impl SysRegHw) {
    ctx.save_from(hw, &EL1_SET);
}

/// Load the guest's EL1/EL0 registers from its context into the CPU.
pub fn restore_el1_with(ctx: &SysRegFile, hw: &mut impl SysRegHw) {
    ctx.restore_to(hw, &EL1_SET);
}

/// Save the guest's debug registers (the lazily switched group) into its context.
pub fn save_debug_with(ctx: &mut SysRegFile, hw: &mut impl SysRegHw) {
    ctx.save_from(hw, &DEBUG_SET);
}

/// Load the guest's debug registers into the CPU.
pub fn restore_debug_with(ctx: &SysRegFile, hw: &mut impl SysRegHw) {
    ctx.restore_to(hw, &DEBUG_SET);
}

/// Save the registers switched with the FP/SIMD state (`FPEXC32_EL2`); call only
/// with FP access enabled at EL2 (`CPTR_EL2.TFP` clear).
pub fn save_fp_with(ctx: &mut SysRegFile, hw: &mut impl SysRegHw) {
    ctx.save_from(hw, &FP_SET);
}

/// Restore the registers switched with the FP/SIMD state.
pub fn restore_fp_with(ctx: &SysRegFile, hw: &mut impl SysRegHw) {
    ctx.restore_to(hw, &FP_SET);
}

/// Save the PMU registers of a VM with a PMU.
pub fn save_pmu_with(ctx: &mut SysRegFile, hw: &mut impl SysRegHw) {
    ctx.save_from(hw, &PMU_SET);
}

/// Restore the PMU registers of a VM with a PMU.
pub fn restore_pmu_with(ctx: &SysRegFile, hw: &mut impl SysRegHw) {
    ctx.restore_to(hw, &PMU_SET);
}

/// Save the memory-tagging registers of a VM offered MTE.
pub fn save_mte_with(ctx: &mut SysRegFile, hw: &mut impl SysRegHw) {
    ctx.save_from(hw, &MTE_SET);
}

/// Restore the memory-tagging registers of a VM offered MTE.
pub fn restore_mte_with(ctx: &SysRegFile, hw: &mut impl SysRegHw) {
    ctx.restore_to(hw, &MTE_SET);
}
