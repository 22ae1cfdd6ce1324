//! Walking a guest's stage-1 translation (VMSAv8-64) in software, for the console's
//! `vtop` and `mem` and, later, the GDB stub: a guest virtual address is translated
//! through the vCPU's *current* SCTLR_EL1/TCR_EL1/TTBRn_EL1 (taken through the one
//! pause path, so never stale), reading the guest's tables by IPA through stage 2.
//!
//! Covered: MMU off (flat), TTBR0 and TTBR1 regions, 4K, 16K and 64K granules,
//! every start level the granule and TnSZ imply, table, block and page descriptors,
//! EPDn, top-byte-ignore, 48-bit output addresses. Not yet: 52-bit output
//! (FEAT_LPA/LPA2), AArch32 short and long descriptors (an AArch32 guest is
//! refused with a clear fault).
#![forbid(unsafe_code)]

use core::fmt;

/// Reads guest memory by IPA.
pub trait GuestMemory {
    fn read_u64(&self, ipa: u64) -> Option<u64>;
}

/// The translation controls of a vCPU.
#[derive(Clone, Copy, Debug)]
pub struct Regs {
    pub sctlr: u64,
    pub tcr: u64,
    pub ttbr0: u64,
    pub ttbr1: u64,
}

/// One step of a walk: the table read and what it held.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Step {
    pub level: u8,
    /// IPA of the table.
    pub table: u64,
    pub index: u64,
    pub descriptor: u64,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Fault {
    /// The address is outside both translated regions (TnSZ).
    OutOfRange,
    /// Walks for this region are disabled (TCR_EL1.EPDn).
    WalkDisabled,
    /// An invalid descriptor at this level.
    Translation { level: u8 },
    /// A table of the walk is not in the guest's RAM.
    TableNotInRam { level: u8, ipa: u64 },
    /// A granule encoding that is reserved or a TnSZ this walker does not handle.
    Unsupported(&'static str),
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::OutOfRange => write!(
                f,
                "address outside both translated regions (TCR_EL1.T0SZ/T1SZ)"
            ),
            Self::WalkDisabled => write!(
                f,
                "translation table walks disabled for this region (TCR_EL1.EPDn)"
            ),
            Self::Translation { level } => write!(f, "translation fault at level {level}"),
            Self::TableNotInRam { level, ipa } => write!(
                f,
                "level {level} table at IPA {ipa:#x} is not in the guest's RAM"
            ),
            Self::Unsupported(what) => write!(f, "not supported: {what}"),
        }
    }
}

fn bits(v: u64, hi: u32, lo: u32) -> u64 {
    (v >> lo) & ((1u64 << (hi - lo + 1)) - 1)
}

const OA_MASK: u64 = 0x0000_ffff_ffff_f000;

/// Translates `va` to an IPA; `step` sees every table read.
pub fn translate(
    regs: &Regs,
    mem: &impl GuestMemory,
    va: u64,
    step: &mut impl FnMut(Step),
) -> Result<u64, Fault> {
    if regs.sctlr & 1 == 0 {
        return Ok(va); // MMU off: flat
    }
    let tcr = regs.tcr;
    let upper = va >> 55 & 1 == 1;
    let (tsz, tg, epd, tbi, ttbr) = if upper {
        let tg = match bits(tcr, 31, 30) {
            0b01 => 14,
            0b10 => 12,
            0b11 => 16,
            _ => return Err(Fault::Unsupported("reserved TCR_EL1.TG1")),
        };
        (
            bits(tcr, 21, 16),
            tg,
            tcr >> 23 & 1,
            tcr >> 38 & 1,
            regs.ttbr1,
        )
    } else {
        let tg = match bits(tcr, 15, 14) {
            0b00 => 12,
            0b01 => 16,
            0b10 => 14,
            _ => return Err(Fault::Unsupported("reserved TCR_EL1.TG0")),
        };
        (bits(tcr, 5, 0), tg, tcr >> 7 & 1, tcr >> 37 & 1, regs.ttbr0)
    };
    let input_bits = 64 - tsz as u32;
    if !(25..=48).contains(&input_bits) {
        return Err(Fault::Unsupported("TnSZ outside 16..=39"));
    }
    // The top byte is ignored with TBI; the rest above the region must be all ones
    // (TTBR1) or all zeros (TTBR0).
    let top = if tbi == 1 { 56 } else { 64 };
    let high_mask = if top == 64 {
        !0u64 << input_bits
    } else {
        ((1u64 << top) - 1) & (!0u64 << input_bits)
    };
    let expected = if upper { high_mask } else { 0 };
    if va & high_mask != expected {
        return Err(Fault::OutOfRange);
    }
    if epd == 1 {
        return Err(Fault::WalkDisabled);
    }
    let grain = tg as u32;
    let stride = grain - 3;
    let levels = (input_bits - grain).div_ceil(stride);
    let mut level = 4 - levels;
    // TTBRn_EL1.BADDR (bits 47:1; bit 0 is CnP). A root table smaller than a
    // granule is aligned to its own size (at least 64 bytes).
    let root_bits = input_bits - (grain + stride * (3 - level));
    let mut table = ttbr & 0x0000_ffff_ffff_fffe & !((1u64 << (root_bits + 3).max(6)) - 1);
    loop {
        let shift = grain + stride * (3 - level);
        let width = if level == 4 - levels {
            input_bits - shift
        } else {
            stride
        };
        let index = (va >> shift) & ((1u64 << width) - 1);
        let addr = table + index * 8;
        let desc = mem.read_u64(addr).ok_or(Fault::TableNotInRam {
            level: level as u8,
            ipa: table,
        })?;
        step(Step {
            level: level as u8,
            table,
            index,
            descriptor: desc,
        });
        if desc & 1 == 0 {
            return Err(Fault::Translation { level: level as u8 });
        }
        let is_table = desc & 2 != 0;
        if level == 3 {
            if !is_table {
                return Err(Fault::Translation { level: 3 }); // reserved at level 3
            }
            let oa = desc & OA_MASK & !((1u64 << grain) - 1);
            return Ok(oa | (va & ((1u64 << grain) - 1)));
        }
        if is_table {
            table = desc & OA_MASK & !((1u64 << grain) - 1);
            level += 1;
            continue;
        }
        // A block: allowed at level 1 (4K) and level 2 (all granules).
        let block_ok = level == 2 || (level == 1 && grain == 12);
        if !block_ok {
            return Err(Fault::Translation { level: level as u8 });
        }
        let oa = desc & OA_MASK & !((1u64 << shift) - 1);
        return Ok(oa | (va & ((1u64 << shift) - 1)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[derive(Default)]
    struct Mem(HashMap<u64, u64>);
    impl GuestMemory for Mem {
        fn read_u64(&self, ipa: u64) -> Option<u64> {
            if ipa < 0x4000_0000 {
                return None; // not RAM
            }
            Some(self.0.get(&ipa).copied().unwrap_or(0))
        }
    }
    impl Mem {
        fn set(&mut self, table: u64, index: u64, desc: u64) {
            self.0.insert(table + index * 8, desc);
        }
    }

    const TABLE: u64 = 0b11;
    const PAGE: u64 = 0b11 | 1 << 10;
    const BLOCK: u64 = 0b01 | 1 << 10;

    fn regs(tcr: u64, ttbr0: u64, ttbr1: u64) -> Regs {
        Regs {
            sctlr: 1,
            tcr,
            ttbr0,
            ttbr1,
        }
    }

    fn walk(r: &Regs, m: &Mem, va: u64) -> (Result<u64, Fault>, Vec<Step>) {
        let mut steps = Vec::new();
        let res = translate(r, m, va, &mut |s| steps.push(s));
        (res, steps)
    }

    /// 4K granule, 48-bit: TG0 = 0, T0SZ = 16, TG1 = 0b10, T1SZ = 16.
    const TCR_4K: u64 = 16 | (16 << 16) | (0b10 << 30);

    #[test]
    fn mmu_off_is_flat() {
        let r = Regs {
            sctlr: 0,
            tcr: 0,
            ttbr0: 0,
            ttbr1: 0,
        };
        assert_eq!(walk(&r, &Mem::default(), 0x4008_0000).0, Ok(0x4008_0000));
    }

    #[test]
    fn a_4k_page_through_four_levels() {
        let mut m = Mem::default();
        let (l0, l1, l2, l3) = (0x4100_0000, 0x4100_1000, 0x4100_2000, 0x4100_3000);
        let va = 0x0000_1234_5678_9abc_u64;
        m.set(l0, (va >> 39) & 511, l1 | TABLE);
        m.set(l1, (va >> 30) & 511, l2 | TABLE);
        m.set(l2, (va >> 21) & 511, l3 | TABLE);
        m.set(l3, (va >> 12) & 511, 0x4567_8000 | PAGE);
        let (res, steps) = walk(&regs(TCR_4K, l0, 0), &m, va);
        assert_eq!(res, Ok(0x4567_8abc));
        assert_eq!(
            steps.iter().map(|s| s.level).collect::<Vec<_>>(),
            [0, 1, 2, 3]
        );
        assert_eq!(steps[2].table, l2);
    }

    #[test]
    fn kernel_high_addresses_go_through_ttbr1_with_blocks() {
        let mut m = Mem::default();
        let (l0, l1, l2) = (0x4200_0000, 0x4200_1000, 0x4200_2000);
        let va = 0xffff_8000_0020_1234_u64;
        m.set(l0, (va >> 39) & 511, l1 | TABLE);
        m.set(l1, (va >> 30) & 511, l2 | TABLE);
        m.set(l2, (va >> 21) & 511, 0x4060_0000 | BLOCK); // 2 MiB block
        assert_eq!(walk(&regs(TCR_4K, 0, l0), &m, va).0, Ok(0x4060_1234));
        // A 1 GiB block at level 1.
        let va = 0xffff_8000_4000_0010_u64;
        m.set(l1, (va >> 30) & 511, 0x8000_0000 | BLOCK);
        assert_eq!(walk(&regs(TCR_4K, 0, l0), &m, va).0, Ok(0x8000_0010));
    }

    #[test]
    fn faults_name_their_level() {
        let mut m = Mem::default();
        let (l0, l1) = (0x4300_0000, 0x4300_1000);
        let va = 0x0000_0080_0000_0000_u64; // L0 index 1
        assert_eq!(
            walk(&regs(TCR_4K, l0, 0), &m, va).0,
            Err(Fault::Translation { level: 0 })
        );
        m.set(l0, 1, l1 | TABLE);
        assert_eq!(
            walk(&regs(TCR_4K, l0, 0), &m, va).0,
            Err(Fault::Translation { level: 1 })
        );
        m.set(l1, 0, 0x1000 | TABLE); // a table outside RAM
        assert_eq!(
            walk(&regs(TCR_4K, l0, 0), &m, va).0,
            Err(Fault::TableNotInRam {
                level: 2,
                ipa: 0x1000
            })
        );
        // A block at level 0 is not allowed with 4K pages.
        m.set(l0, 1, 0x4000_0000 | BLOCK);
        assert_eq!(
            walk(&regs(TCR_4K, l0, 0), &m, va).0,
            Err(Fault::Translation { level: 0 })
        );
    }

    #[test]
    fn range_epd_and_tbi() {
        let m = Mem::default();
        // 39-bit TTBR0 region: bit 40 set is out of range.
        let tcr = 25 | (25 << 16) | (0b10 << 30);
        assert_eq!(
            walk(&regs(tcr, 0x4000_0000, 0), &m, 1 << 40).0,
            Err(Fault::OutOfRange)
        );
        // EPD0.
        assert_eq!(
            walk(&regs(TCR_4K | 1 << 7, 0x4000_0000, 0), &m, 0x1000).0,
            Err(Fault::WalkDisabled)
        );
        // TBI0: a tag in the top byte is ignored.
        let mut m = Mem::default();
        let (l0, l1, l2) = (0x4400_0000, 0x4400_1000, 0x4400_2000);
        m.set(l0, 0, l1 | TABLE);
        m.set(l1, 1, l2 | TABLE);
        m.set(l2, 0, 0x4800_0000 | BLOCK);
        let tcr = TCR_4K | 1 << 37;
        assert_eq!(
            walk(&regs(tcr, l0, 0), &m, 0x5a00_0000_4000_0008).0,
            Ok(0x4800_0008)
        );
        assert_eq!(
            walk(&regs(TCR_4K, l0, 0), &m, 0x5a00_0000_4000_0008).0,
            Err(Fault::OutOfRange)
        );
    }

    #[test]
    fn a_16k_granule_walk_with_a_small_root_table() {
        // TG0 = 0b10 (16K), T0SZ = 24 (40 bits): level 1 has 4 bits (a 128-byte root
        // table, aligned to its size only), levels 2 and 3 have 11.
        let tcr = 24 | (0b10 << 14);
        let mut m = Mem::default();
        let (l1, l2, l3) = (0x4500_0080, 0x4500_4000, 0x4500_8000);
        let va = 0x0000_0023_4567_89ab_u64;
        m.set(l1, (va >> 36) & 0xf, l2 | TABLE);
        m.set(l2, (va >> 25) & 0x7ff, l3 | TABLE);
        m.set(l3, (va >> 14) & 0x7ff, 0x4abc_c000 | PAGE);
        let (res, steps) = walk(&regs(tcr, l1, 0), &m, va);
        assert_eq!(res, Ok(0x4abc_c000 | (va & 0x3fff)));
        assert_eq!(steps.len(), 3);
        assert_eq!((steps[0].level, steps[0].table, steps[0].index), (1, l1, 2));
    }

    #[test]
    fn a_64k_granule_walk_with_a_block() {
        // TG0 = 0b01 (64K), T0SZ = 22 (42 bits): levels 2 (13 bits) and 3 (13 bits).
        let tcr = 22 | (0b01 << 14);
        let mut m = Mem::default();
        let (l2, l3) = (0x4600_0000, 0x4601_0000);
        let va = 0x0000_0123_4567_89ab_u64;
        m.set(l2, (va >> 29) & 0x1fff, l3 | TABLE);
        m.set(l3, (va >> 16) & 0x1fff, 0x4abc_0000 | PAGE);
        assert_eq!(
            walk(&regs(tcr, l2, 0), &m, va).0,
            Ok(0x4abc_0000 | (va & 0xffff))
        );
        // A 512 MiB block at level 2.
        m.set(l2, (va >> 29) & 0x1fff, 0x6000_0000 | BLOCK);
        assert_eq!(
            walk(&regs(tcr, l2, 0), &m, va).0,
            Ok(0x6000_0000 | (va & 0x1fff_ffff))
        );
    }
}
