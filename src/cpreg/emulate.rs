//! Emulation of trapped system-register accesses, for the runtime's trap handler.
//!
//! One path for both execution states: decode the syndrome into an encoding, find
//! the entry ([`lookup_a64`] / [`lookup_a32`], binary search), check presence and
//! rights, then read or write through the context's guest accessors. The result
//! tells the runtime what to do with the PC:
//!
//! * [`Emulation::Done`]: advance the PC past the instruction.
//! * [`Emulation::Skipped`]: an AArch32 instruction whose condition failed; advance
//!   the PC (and the IT state) without effect.
//! * [`Emulation::Undef`]: inject UNDEF at the instruction (ESR_EL1.EC = 0,
//!   same IL, ELR_EL1 = the instruction). The reason and encoding are there for a
//!   once-per-encoding log line.
//! * [`Emulation::Operation`]: a system instruction (TLBI, DC, IC, AT) that the
//!   runtime performs on behalf of the guest, then advances the PC.
//!
//! Nothing here panics on guest input: every encoding, Rt and direction is handled.
//!
//! `hw` must be the CPU that runs this vCPU, with the vCPU's EL1 state loaded (the
//! state a trap leaves in place): `hw` rows are read from and written to it, and
//! their slots follow. Registers with the `IO` flag (timers) are reported in
//! `Done` so the runtime can react.
#![forbid(unsafe_code)]

use crate::esr::{Conditional, Esr, ExceptionClass, SysRegIss};

use super::context::SysRegFile;
use super::encoding::{Cp, Encoding, Sys64};
use super::entry::{Flags, OpKind, State};
use super::hw::SysRegHw;
use super::table::{lookup_a32, lookup_a64, Reg};

/// Why an access UNDEFs.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum UndefReason {
    /// No entry has this encoding (implementation defined, EL2/EL3, unimplemented).
    Unknown,
    /// The entry exists but not on this vCPU (feature hidden, breakpoint number
    /// above the count).
    NotPresent,
    /// A write to a read-only register.
    ReadOnly,
    /// A read of a write-only register.
    WriteOnly,
    /// An access from EL0 to a register EL0 may not use.
    Privilege,
    /// The AArch64 encoding of an EL2 register.
    El2Register,
    /// A trapped class this table does not emulate (LDC/STC to cp14).
    Unsupported,
}

/// The reason in words (for the console's UNDEF lines).
impl core::fmt::Display for UndefReason {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            Self::Unknown => "no register has this encoding",
            Self::NotPresent => "not present on this vCPU",
            Self::ReadOnly => "read-only",
            Self::WriteOnly => "write-only",
            Self::Privilege => "not accessible from EL0",
            Self::El2Register => "an EL2 register",
            Self::Unsupported => "not emulated",
        })
    }
}

/// An UNDEF to inject.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Undef {
    pub reason: UndefReason,
    /// The trapped encoding (None for classes without one).
    pub encoding: Option<Encoding>,
    pub is_read: bool,
}

/// A system instruction the runtime performs for the guest.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Operation {
    pub reg: Reg,
    pub kind: OpKind,
    /// The register operand (Rt; 0 for XZR). AArch32: zero-extended 32 bits.
    pub operand: u64,
}

/// What the runtime does next.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Emulation {
    /// Performed; advance the PC. `IO` entries (`reg.entry().is(Flags::IO)`) may
    /// need the runtime's attention (timers).
    Done {
        reg: Reg,
        write: bool,
    },
    /// AArch32 condition failed; advance the PC without effect.
    Skipped,
    Undef(Undef),
    /// Perform, then advance the PC.
    Operation(Operation),
}

fn undef(reason: UndefReason, encoding: Encoding, is_read: bool) -> Emulation {
    Emulation::Undef(Undef {
        reason,
        encoding: Some(encoding),
        is_read,
    })
}

/// Presence and rights of a guest access to `reg`.
fn check(
    ctx: &SysRegFile,
    reg: Reg,
    enc: Encoding,
    is_read: bool,
    el0: bool,
) -> Result<(), Emulation> {
    let e = reg.entry();
    if !ctx.present(reg) {
        return Err(undef(UndefReason::NotPresent, enc, is_read));
    }
    if matches!(enc, Encoding::A64(_)) && e.is(Flags::EL2_VIEW) {
        return Err(undef(UndefReason::El2Register, enc, is_read));
    }
    let a = e.access;
    let ok = if is_read {
        a.can_read(el0)
    } else {
        a.can_write(el0)
    };
    if ok {
        return Ok(());
    }
    let allowed_at_el1 = if is_read {
        a.can_read(false)
    } else {
        a.can_write(false)
    };
    let reason = if el0 && allowed_at_el1 {
        UndefReason::Privilege
    } else if is_read {
        UndefReason::WriteOnly
    } else {
        UndefReason::ReadOnly
    };
    Err(undef(reason, enc, is_read))
}

/// Perform a checked write (an operation, or a store).
fn write<H: SysRegHw + ?Sized>(
    ctx: &mut SysRegFile,
    hw: &mut H,
    reg: Reg,
    value: u64,
) -> Emulation {
    hw.counters().count(reg, true);
    match reg.entry().state {
        State::Op(OpKind::Nop) => Emulation::Done { reg, write: true },
        State::Op(kind) => Emulation::Operation(Operation {
            reg,
            kind,
            operand: value,
        }),
        _ => {
            ctx.guest_store(hw, reg, value);
            Emulation::Done { reg, write: true }
        }
    }
}

/// Emulate a trapped AArch64 `MRS`, `MSR` or `SYS` (EC 0x18).
///
/// `gprs` are the guest's X0..X30 (Rt = 31 is XZR: reads are discarded, writes
/// write zero); `el0` is true when the access came from EL0.
pub fn emulate_msr_mrs(
    ctx: &mut SysRegFile,
    hw: &mut impl SysRegHw,
    iss: SysRegIss,
    gprs: &mut [u64; 31],
    el0: bool,
) -> Emulation {
    let enc64 = Sys64::from_iss(iss);
    let enc = Encoding::A64(enc64);
    let is_read = iss.is_read();
    let Some(reg) = lookup_a64(enc64) else {
        return undef(UndefReason::Unknown, enc, is_read);
    };
    if let Err(u) = check(ctx, reg, enc, is_read, el0) {
        return u;
    }
    let rt = iss.rt();
    if is_read {
        hw.counters().count(reg, false);
        let v = ctx.guest_value(hw, reg).unwrap_or(0);
        if let Some(x) = gprs.get_mut(rt) {
            *x = v;
        }
        Emulation::Done { reg, write: false }
    } else {
        let v = gprs.get(rt).copied().unwrap_or(0);
        write(ctx, hw, reg, v)
    }
}

/// The exception class of a trapped AArch32 `VMRS` of an ID register
/// (`HCR_EL2.TID3`, or `TID0` for FPSID). `esr::ExceptionClass` reports it as
/// `Other(0x08)`.
pub const EC_CP10_ID: u8 = 0x08;

/// Emulate a trapped AArch32 `VMRS` of MVFR0/1/2 (EC 0x08, trapped by
/// `HCR_EL2.TID3`). The syndrome has the `MCR`/`MRC` layout with the VFP register
/// number in the CRn field (MVFR0 = 7, MVFR1 = 6, MVFR2 = 5); the value is the
/// sanitised `MVFRn_EL1`, to which these registers are architecturally mapped.
/// Anything else (FPSID, a write) UNDEFs.
pub fn emulate_vmrs(
    ctx: &mut SysRegFile,
    hw: &mut impl SysRegHw,
    esr: Esr,
    gprs: &mut [u64; 31],
    spsr: u64,
) -> Emulation {
    let iss = esr.cp_rt();
    if !condition_passed(&iss, spsr) {
        return Emulation::Skipped;
    }
    let reg = match iss.crn() {
        7 => Some(Reg::MVFR0_EL1),
        6 => Some(Reg::MVFR1_EL1),
        5 => Some(Reg::MVFR2_EL1),
        _ => None,
    };
    let reg = match reg {
        Some(r) if iss.is_read() && esr.ec() == ExceptionClass::Other(EC_CP10_ID) => r,
        Some(_) if !iss.is_read() => {
            return Emulation::Undef(Undef {
                reason: UndefReason::ReadOnly,
                encoding: None,
                is_read: false,
            })
        }
        _ => {
            return Emulation::Undef(Undef {
                reason: UndefReason::Unknown,
                encoding: None,
                is_read: iss.is_read(),
            })
        }
    };
    hw.counters().count(reg, false);
    let v = ctx.guest_value(hw, reg).unwrap_or(0) & 0xffff_ffff;
    if let Some(x) = gprs.get_mut(iss.rt()) {
        *x = v;
    }
    Emulation::Done { reg, write: false }
}

/// Emulate any trapped system-register access: EC 0x18 (AArch64), the AArch32
/// coprocessor classes (0x03, 0x04, 0x05, 0x06, 0x0C) and `VMRS` of the ID
/// registers (0x08). Other classes UNDEF with [`UndefReason::Unsupported`]; the
/// runtime should not send them here.
pub fn emulate(
    ctx: &mut SysRegFile,
    hw: &mut impl SysRegHw,
    esr: Esr,
    gprs: &mut [u64; 31],
    spsr: u64,
    el0: bool,
) -> Emulation {
    match esr.ec() {
        ExceptionClass::SysReg => emulate_msr_mrs(ctx, hw, esr.sysreg(), gprs, el0),
        ExceptionClass::Other(EC_CP10_ID) => emulate_vmrs(ctx, hw, esr, gprs, spsr),
        _ => emulate_cp(ctx, hw, esr, gprs, spsr, el0),
    }
}

/// The AArch32 condition check (Arm ARM "ConditionHolds"): `cond` against the
/// NZCV flags in `spsr` bits 31:28. AL (0b1110) and 0b1111 always pass.
pub const fn condition_holds(cond: u8, spsr: u64) -> bool {
    let n = spsr & (1 << 31) != 0;
    let z = spsr & (1 << 30) != 0;
    let c = spsr & (1 << 29) != 0;
    let v = spsr & (1 << 28) != 0;
    let r = match cond >> 1 {
        0 => z,
        1 => c,
        2 => n,
        3 => v,
        4 => c && !z,
        5 => n == v,
        6 => n == v && !z,
        _ => return true,
    };
    if cond & 1 != 0 {
        !r
    } else {
        r
    }
}

/// Whether a trapped conditional AArch32 instruction executes. With CV set the
/// syndrome's COND decides; with CV clear (T32 in an IT block) the condition comes
/// from the IT state in `spsr` (`IT[7:4] = SPSR[15:12]`); outside an IT block it
/// executes.
pub fn condition_passed(esr_iss: &impl Conditional, spsr: u64) -> bool {
    if esr_iss.cond_valid() {
        return condition_holds(esr_iss.cond(), spsr);
    }
    let it = ((spsr >> 8) & 0xfc) | ((spsr >> 25) & 0x3);
    if it == 0 {
        return true;
    }
    condition_holds(((it >> 4) & 0xf) as u8, spsr)
}

/// The entry a trapped AArch32 access names, if it exists on this vCPU and the
/// guest may make the access; otherwise the UNDEF to inject.
fn resolve_a32(ctx: &SysRegFile, c: Cp, is_read: bool, el0: bool) -> Result<Reg, Emulation> {
    let enc = Encoding::A32(c);
    let reg = lookup_a32(c).ok_or_else(|| undef(UndefReason::Unknown, enc, is_read))?;
    check(ctx, reg, enc, is_read, el0)?;
    Ok(reg)
}

/// Emulate a trapped AArch32 `MCR`/`MRC` (EC 0x03 cp15, 0x05 cp14) or
/// `MCRR`/`MRRC` (EC 0x04 cp15, 0x0C cp14); LDC/STC to cp14 (EC 0x06) UNDEFs, as
/// in KVM. `spsr` is the guest's SPSR_EL2 (flags and IT state), `gprs` the
/// AArch64 view of its registers (the syndrome's Rt is already in that view).
pub fn emulate_cp(
    ctx: &mut SysRegFile,
    hw: &mut impl SysRegHw,
    esr: Esr,
    gprs: &mut [u64; 31],
    spsr: u64,
    el0: bool,
) -> Emulation {
    match esr.ec() {
        ExceptionClass::Cp15Rt | ExceptionClass::Cp14Rt => {
            let iss = esr.cp_rt();
            if !condition_passed(&iss, spsr) {
                return Emulation::Skipped;
            }
            let cp = if esr.ec() == ExceptionClass::Cp15Rt {
                15
            } else {
                14
            };
            let is_read = iss.is_read();
            let reg = match resolve_a32(ctx, Cp::from_rt_iss(cp, iss), is_read, el0) {
                Ok(reg) => reg,
                Err(e) => return e,
            };
            let rt = iss.rt();
            if is_read {
                hw.counters().count(reg, false);
                let v = ctx.guest_value(hw, reg).unwrap_or(0) & 0xffff_ffff;
                if let Some(x) = gprs.get_mut(rt) {
                    *x = v;
                }
                Emulation::Done { reg, write: false }
            } else {
                let v = gprs.get(rt).copied().unwrap_or(0) & 0xffff_ffff;
                write(ctx, hw, reg, v)
            }
        }
        ExceptionClass::Cp15RRt | ExceptionClass::Cp14RRt => {
            let iss = esr.cp_rrt();
            if !condition_passed(&iss, spsr) {
                return Emulation::Skipped;
            }
            let cp = if esr.ec() == ExceptionClass::Cp15RRt {
                15
            } else {
                14
            };
            let is_read = iss.is_read();
            let reg = match resolve_a32(ctx, Cp::from_rrt_iss(cp, iss), is_read, el0) {
                Ok(reg) => reg,
                Err(e) => return e,
            };
            let (rt, rt2) = (iss.rt(), iss.rt2());
            if is_read {
                hw.counters().count(reg, false);
                let v = ctx.guest_value(hw, reg).unwrap_or(0);
                if let Some(x) = gprs.get_mut(rt) {
                    *x = v & 0xffff_ffff;
                }
                if let Some(x) = gprs.get_mut(rt2) {
                    *x = v >> 32;
                }
                Emulation::Done { reg, write: false }
            } else {
                let lo = gprs.get(rt).copied().unwrap_or(0) & 0xffff_ffff;
                let hi = gprs.get(rt2).copied().unwrap_or(0) & 0xffff_ffff;
                write(ctx, hw, reg, (hi << 32) | lo)
            }
        }
        _ => Emulation::Undef(Undef {
            reason: UndefReason::Unsupported,
            encoding: None,
            is_read: false,
        }),
    }
}
