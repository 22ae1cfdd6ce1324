//! Registers computed on access (`State::Func`): the value a guest reads is derived
//! from other state, so these entries are NO_RAW and the state they derive from is
//! what gets saved.
#![forbid(unsafe_code)]

use super::context::SysRegFile;
use super::entry::FnPair;
use super::hw::SysRegHw;
use super::table::{Reg, CLAIM_TAGS};

fn ignore(_: &mut SysRegFile, _: &mut dyn SysRegHw, _: u64) {}

/// `CCSIDR_EL1`: the geometry of the cache `CSSELR_EL1` selects (Level and InD,
/// bits 3:0), from the VM's sanitised values.
pub static CCSIDR_FNS: FnPair = FnPair {
    read: |ctx, hw| {
        let sel = ctx.guest_value(hw, Reg::CSSELR_EL1).unwrap_or(0);
        ctx.ccsidr(sel)
    },
    write: ignore,
};

/// `CCSIDR2_EL1` (FEAT_CCIDX): NumSets of the selected cache, which the 64-bit
/// CCSIDR format holds in bits 55:32.
pub static CCSIDR2_FNS: FnPair = FnPair {
    read: |ctx, hw| {
        let sel = ctx.guest_value(hw, Reg::CSSELR_EL1).unwrap_or(0);
        (ctx.ccsidr(sel) >> 32) & 0xff_ffff
    },
    write: ignore,
};

/// TVAL = (CVAL - count)[31:0] on read; CVAL = count + SignExtend(TVAL[31:0]) on
/// write (Arm ARM D12.7).
fn tval_read(ctx: &mut SysRegFile, hw: &mut dyn SysRegHw, cval: Reg, count: Reg) -> u64 {
    let c = ctx.guest_value(hw, cval).unwrap_or(0);
    let now = hw.read(count);
    c.wrapping_sub(now) & 0xffff_ffff
}

fn tval_write(ctx: &mut SysRegFile, hw: &mut dyn SysRegHw, cval: Reg, count: Reg, v: u64) {
    let now = hw.read(count);
    let new = now.wrapping_add(v as u32 as i32 as i64 as u64);
    ctx.guest_store(hw, cval, new);
}

pub static CNTV_TVAL_FNS: FnPair = FnPair {
    read: |ctx, hw| tval_read(ctx, hw, Reg::CNTV_CVAL_EL0, Reg::CNTVCT_EL0),
    write: |ctx, hw, v| tval_write(ctx, hw, Reg::CNTV_CVAL_EL0, Reg::CNTVCT_EL0, v),
};

pub static CNTP_TVAL_FNS: FnPair = FnPair {
    read: |ctx, hw| tval_read(ctx, hw, Reg::CNTP_CVAL_EL0, Reg::CNTPCT_EL0),
    write: |ctx, hw, v| tval_write(ctx, hw, Reg::CNTP_CVAL_EL0, Reg::CNTPCT_EL0, v),
};

/// AArch32 64-bit counter views (`MRRC p15, 0/1, c14`).
pub static CNTPCT_FNS: FnPair = FnPair {
    read: |_, hw| hw.read(Reg::CNTPCT_EL0),
    write: ignore,
};

pub static CNTVCT_FNS: FnPair = FnPair {
    read: |_, hw| hw.read(Reg::CNTVCT_EL0),
    write: ignore,
};

/// `DBGCLAIMSET`: reads the implemented tags, writes set tags in the state
/// `DBGCLAIMCLR_EL1` owns.
pub static DBGCLAIMSET_FNS: FnPair = FnPair {
    read: |_, _| CLAIM_TAGS,
    write: |ctx, hw, v| {
        let old = ctx.guest_value(hw, Reg::DBGCLAIMCLR_EL1).unwrap_or(0);
        ctx.guest_store_raw(hw, Reg::DBGCLAIMCLR_EL1, old | (v & CLAIM_TAGS));
    },
};

/// `DBGDIDR` (AArch32) synthesised from the guest's `ID_AA64DFR0_EL1` as KVM does:
/// WRPs, BRPs and CTX_CMPs copied, Version = Armv8 (6), nSUHD_imp set, no EL3.
pub static DBGDIDR_FNS: FnPair = FnPair {
    read: |ctx, hw| {
        let dfr = ctx.guest_value(hw, Reg::ID_AA64DFR0_EL1).unwrap_or(0);
        let f = |lsb: u32| (dfr >> lsb) & 0xf;
        (f(20) << 28) | (f(12) << 24) | (f(28) << 20) | (6 << 16) | (1 << 15)
    },
    write: ignore,
};

/// The counter `PMSELR_EL0.SEL` selects for `PMXEVTYPER`/`PMXEVCNTR`: event
/// counter n (`type_reg`: its PMEVTYPERn, else its PMEVCNTRn), or for 31 the cycle
/// counter's filter (PMXEVTYPER only). `None`: no such register (reads 0, writes
/// ignored, as for a counter beyond PMCR.N).
fn pmxev_target(ctx: &mut SysRegFile, hw: &mut dyn SysRegHw, type_reg: bool) -> Option<Reg> {
    const CNT: [Reg; 8] = [
        Reg::PMEVCNTR0_EL0,
        Reg::PMEVCNTR1_EL0,
        Reg::PMEVCNTR2_EL0,
        Reg::PMEVCNTR3_EL0,
        Reg::PMEVCNTR4_EL0,
        Reg::PMEVCNTR5_EL0,
        Reg::PMEVCNTR6_EL0,
        Reg::PMEVCNTR7_EL0,
    ];
    const TYP: [Reg; 8] = [
        Reg::PMEVTYPER0_EL0,
        Reg::PMEVTYPER1_EL0,
        Reg::PMEVTYPER2_EL0,
        Reg::PMEVTYPER3_EL0,
        Reg::PMEVTYPER4_EL0,
        Reg::PMEVTYPER5_EL0,
        Reg::PMEVTYPER6_EL0,
        Reg::PMEVTYPER7_EL0,
    ];
    let sel = ctx.guest_value(hw, Reg::PMSELR_EL0).unwrap_or(0) & 0x1f;
    match (sel, type_reg) {
        (31, true) => Some(Reg::PMCCFILTR_EL0),
        (n, true) => TYP.get(n as usize).copied(),
        (n, false) => CNT.get(n as usize).copied(),
    }
    .filter(|r| ctx.features().has(r.entry().presence))
}

pub static PMXEVTYPER_FNS: FnPair = FnPair {
    read: |ctx, hw| match pmxev_target(ctx, hw, true) {
        Some(r) => ctx.guest_value(hw, r).unwrap_or(0),
        None => 0,
    },
    write: |ctx, hw, v| {
        if let Some(r) = pmxev_target(ctx, hw, true) {
            ctx.guest_store(hw, r, v);
        }
    },
};

pub static PMXEVCNTR_FNS: FnPair = FnPair {
    read: |ctx, hw| match pmxev_target(ctx, hw, false) {
        Some(r) => ctx.guest_value(hw, r).unwrap_or(0),
        None => 0,
    },
    write: |ctx, hw, v| {
        if let Some(r) = pmxev_target(ctx, hw, false) {
            ctx.guest_store(hw, r, v);
        }
    },
};
