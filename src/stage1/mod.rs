//! Walking a guest's stage-1 translation in software, for the console's `vtop` and
//! `mem` and the GDB stub: a guest virtual address is translated through the vCPU's
//! *current* SCTLR_EL1/TCR_EL1/TTBRn_EL1 (taken through the one pause path, so never
//! stale), reading the guest's tables by IPA through stage 2. The walk reports every
//! table read ([`Step`], whose [`Step::kind`] names the descriptor) and ends in an
//! IPA or in the [`Fault`] the hardware would take, with the lookup level numbered as
//! the Arm ARM numbers it.
//!
//! Covered:
//!
//! * **MMU off** (SCTLR.M = 0): flat, IPA = VA.
//! * **VMSAv8-64** (an AArch64 EL1, `long.rs`): TTBR0 and TTBR1 regions, 4K, 16K and
//!   64K granules, every start level the granule and TnSZ imply (TnSZ 16..=48, 47 for
//!   64K, so FEAT_TTST's small regions too), table, block and page descriptors and
//!   the levels each granule allows blocks at, EPDn, top-byte-ignore (TBIn).
//!   * Output size from TCR_EL1.IPS (32 to 52 bits; 52 only with the 64K granule or
//!     DS = 1, otherwise 48 as the architecture says).
//!   * **FEAT_LPA** (64K granule): OA[51:48] in descriptor bits [15:12], TTBR BADDR
//!     [51:48] in bits [5:2] when IPS selects 52 bits, 4 TiB blocks at level 1; with
//!     FEAT_LVA, 52-bit VAs (TnSZ down to 12).
//!   * **FEAT_LPA2** (TCR_EL1.DS = 1, 4K and 16K granules): TnSZ down to 12, level -1
//!     (4K with more than 48 VA bits), OA[49:48] in bits [49:48] and OA[51:50] in
//!     bits [9:8] (the shareability field moves to TCR, which a walker for addresses
//!     does not need), TTBR BADDR[51:48] in bits [5:2], blocks at level 0 (4K) and
//!     level 1 (16K).
//!   * **Address size faults**: a TTBR base (level 0, as the architecture reports it),
//!     next-level table or output address wider than the output size.
//! * **AArch32 EL1** (`Regs::aarch32`): the AArch32 views of the same registers (SCTLR
//!   and TTBCR are the low words of SCTLR_EL1 and TCR_EL1; TTBR0/1 are TTBRn_EL1, the
//!   low words when TTBCR.EAE = 0). VAs are 32-bit: a wider one is [`Fault::VaTooWide`].
//!   * **Short descriptors** (TTBCR.EAE = 0, `short.rs`): the TTBCR.N split between
//!     TTBR0 and TTBR1, PD0/PD1, first-level sections, supersections (PA[39:32] from
//!     bits [8:5] and [23:20]) and page tables, second-level large (64 KiB) and small
//!     (4 KiB) pages. Levels 1 and 2.
//!   * **Long descriptors** (TTBCR.EAE = 1, LPAE): T0SZ/T1SZ (regions, the gap
//!     between them, and TTBR1 taking everything above TTBR0's region when T1SZ = 0),
//!     a first- or second-level start, EPD0/1, 40-bit output (descriptor or TTBR bits
//!     [47:40] set is an address size fault). Levels 1 to 3.
//! * Tables are read in the endianness SCTLR.EE selects.
//!
//! Not covered, and why:
//!
//! * **Permissions, access flag, domains** (short-descriptor DACR): they decide
//!   whether an access is allowed, not where it goes; `vtop`/`mem` are debugger reads.
//! * **The CPU's implemented sizes**: the walker sees the guest's controls, not the
//!   CPU, so it takes the features those controls use as present (FEAT_LPA/LVA/LPA2/
//!   TTST) and does not cap IPS by ID_AA64MMFR0_EL1.PARange. A guest only programs
//!   what its ID registers offer, and DS reads as 0 where LPA2 is absent. An IPA past
//!   the VM's stage 2 simply is not RAM.
//! * **TnSZ outside the architected range**: the Arm ARM leaves it IMPLEMENTATION
//!   DEFINED (clamp or fault); the walker says [`Fault::Unsupported`].
//! * **TBID, E0PDn, hierarchical attributes, contiguous hints, FEAT_D128 (VMSAv9-128)
//!   and FEAT_THE**: nothing of where an address goes, or 128-bit descriptors no
//!   guest of this hypervisor is offered.
//!
//! The code never panics on any register or descriptor value: every shift amount is
//! bounded or goes through `mask`, and a walk reads at most five descriptors.
#![forbid(unsafe_code)]

use core::fmt;

mod long;
mod short;
#[cfg(test)]
mod tests;

/// Reads guest memory by IPA.
pub trait GuestMemory {
    /// The 8 bytes at `ipa` (a multiple of 8) as a little-endian value.
    fn read_u64(&self, ipa: u64) -> Option<u64>;
}

/// The translation controls of a vCPU.
#[derive(Clone, Copy, Debug)]
pub struct Regs {
    /// SCTLR_EL1 (for AArch32, SCTLR is bits [31:0]).
    pub sctlr: u64,
    /// TCR_EL1 (for AArch32, TTBCR is bits [31:0]).
    pub tcr: u64,
    /// TTBR0_EL1 (for AArch32, the 64-bit TTBR0; the 32-bit one is bits [31:0]).
    pub ttbr0: u64,
    /// TTBR1_EL1, as `ttbr0`.
    pub ttbr1: u64,
    /// EL1 is AArch32: the registers are read through their AArch32 views.
    pub aarch32: bool,
}

impl Regs {
    /// The MMU is on: addresses are translated.
    pub fn mmu_on(&self) -> bool {
        self.sctlr & 1 == 1
    }

    /// Tables are in the AArch32 short-descriptor format (TTBCR.EAE = 0).
    pub fn short_descriptors(&self) -> bool {
        self.aarch32 && self.tcr >> 31 & 1 == 0
    }

    /// Table walks read big-endian descriptors (SCTLR.EE).
    fn big_endian(&self) -> bool {
        self.sctlr >> 25 & 1 == 1
    }
}

/// One step of a walk: the table read and what it held.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Step {
    /// The lookup level as the Arm ARM numbers it: -1 (FEAT_LPA2 only) to 3 for
    /// VMSAv8-64, 1 to 3 for AArch32 long descriptors, 1 and 2 for short descriptors.
    pub level: i8,
    /// IPA of the table.
    pub table: u64,
    /// The entry read (its IPA is `table` plus `index` times the descriptor size).
    pub index: u64,
    /// The descriptor as read (a short descriptor is 32-bit, zero-extended).
    pub descriptor: u64,
}

impl Step {
    /// What the descriptor is, in the format `regs` select: "invalid", "table",
    /// "block", "page", "reserved" (long descriptors); "invalid", "page table",
    /// "section", "supersection", "large page", "small page" (short descriptors).
    /// A block at a level its granule does not allow still reads "block" here; the
    /// walk reports it as a translation fault.
    pub fn kind(&self, regs: &Regs) -> &'static str {
        let d = self.descriptor;
        if regs.short_descriptors() {
            return match (self.level, d & 3) {
                (_, 0) => "invalid",
                (1, 1) => "page table",
                (1, _) if d >> 18 & 1 == 1 => "supersection",
                (1, _) => "section",
                (_, 1) => "large page",
                _ => "small page",
            };
        }
        match (d & 1, d & 2 != 0, self.level) {
            (0, _, _) => "invalid",
            (_, true, 3) => "page",
            (_, false, 3) => "reserved",
            (_, true, _) => "table",
            (_, false, _) => "block",
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Fault {
    /// The address is outside both translated regions (TnSZ).
    OutOfRange,
    /// Walks for this region are disabled (TCR_EL1.EPDn, TTBCR.EPDn or TTBCR.PDn).
    WalkDisabled,
    /// An invalid descriptor at this level.
    Translation { level: i8 },
    /// An output address (TTBR base, next-level table, block or page) wider than the
    /// output size (TCR_EL1.IPS; 40 bits for AArch32 long descriptors). A TTBR base
    /// is reported at level 0, as the architecture does.
    AddressSize { level: i8 },
    /// A table of the walk is not in the guest's RAM.
    TableNotInRam { level: i8, ipa: u64 },
    /// A VA wider than 32 bits for an AArch32 guest.
    VaTooWide,
    /// A granule encoding that is reserved or a TnSZ the architecture leaves
    /// IMPLEMENTATION DEFINED.
    Unsupported(&'static str),
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::OutOfRange => write!(
                f,
                "address outside both translated regions (T0SZ/T1SZ of TCR_EL1 or TTBCR)"
            ),
            Self::WalkDisabled => write!(
                f,
                "translation table walks disabled for this region (TCR_EL1.EPDn, TTBCR.EPDn or TTBCR.PDn)"
            ),
            Self::Translation { level } => write!(f, "translation fault at level {level}"),
            Self::AddressSize { level } => write!(f, "address size fault at level {level}"),
            Self::TableNotInRam { level, ipa } => write!(
                f,
                "level {level} table at IPA {ipa:#x} is not in the guest's RAM"
            ),
            Self::VaTooWide => write!(
                f,
                "not a 32-bit address: the guest's EL1 is AArch32, its VAs end at 0xffffffff"
            ),
            Self::Unsupported(what) => write!(f, "not supported: {what}"),
        }
    }
}

/// The low `bits` bits set (all 64 from 64 up): never an overflowing shift.
fn mask(bits: u32) -> u64 {
    1u64.checked_shl(bits).map_or(u64::MAX, |b| b - 1)
}

/// Bits `hi..=lo` of `v` (constant arguments, `hi >= lo`, `hi < 64`).
fn field(v: u64, hi: u32, lo: u32) -> u64 {
    (v >> lo) & mask(hi - lo + 1)
}

/// A 64-bit descriptor at `ipa` (8-byte aligned).
fn read64(mem: &dyn GuestMemory, ipa: u64, big_endian: bool) -> Option<u64> {
    let v = mem.read_u64(ipa & !7)?;
    Some(if big_endian { v.swap_bytes() } else { v })
}

/// A 32-bit descriptor at `ipa` (4-byte aligned), read as half of its 8-byte word.
fn read32(mem: &dyn GuestMemory, ipa: u64, big_endian: bool) -> Option<u32> {
    let v = mem.read_u64(ipa & !7)?;
    let half = (v >> ((ipa & 4) * 8)) as u32;
    Some(if big_endian { half.swap_bytes() } else { half })
}

/// Translates `va` to an IPA; `step` sees every table read.
pub fn translate(
    regs: &Regs,
    mem: &impl GuestMemory,
    va: u64,
    step: &mut impl FnMut(Step),
) -> Result<u64, Fault> {
    if regs.aarch32 && va > u64::from(u32::MAX) {
        return Err(Fault::VaTooWide);
    }
    if !regs.mmu_on() {
        return Ok(va); // MMU off: flat
    }
    if !regs.aarch32 {
        long::aarch64(regs, mem, va, step)
    } else if regs.short_descriptors() {
        short::walk(regs, mem, va as u32, step)
    } else {
        long::aarch32(regs, mem, va as u32, step)
    }
}
