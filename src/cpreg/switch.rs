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
use super::hw::SysRegHw;
use super::table::{EL1_SET, FP_SET};

/// Save the guest's EL1/EL0 registers from the CPU into its context.
pub fn save_el1_with(ctx: &mut SysRegFile, hw: &mut impl SysRegHw) {
    ctx.save_from(hw, &EL1_SET);
}

/// Load the guest's EL1/EL0 registers from its context into the CPU.
pub fn restore_el1_with(ctx: &SysRegFile, hw: &mut impl SysRegHw) {
    ctx.restore_to(hw, &EL1_SET);
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

/// Save the guest's EL1/EL0 registers from this CPU.
#[cfg(all(target_arch = "aarch64", target_os = "none"))]
pub fn save_el1(ctx: &mut SysRegFile) {
    save_el1_with(ctx, &mut crate::arch::sysreg::Hw);
}

/// Load the guest's EL1/EL0 registers into this CPU.
#[cfg(all(target_arch = "aarch64", target_os = "none"))]
pub fn restore_el1(ctx: &SysRegFile) {
    restore_el1_with(ctx, &mut crate::arch::sysreg::Hw);
}
