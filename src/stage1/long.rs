//! The long-descriptor walk: VMSAv8-64 for an AArch64 EL1 (48-bit, FEAT_LPA and
//! FEAT_LPA2 layouts) and the AArch32 long-descriptor (LPAE) format, which is the
//! 4K-granule walk with a 32-bit input and a 40-bit output.

use super::{field, mask, read64, Fault, GuestMemory, Regs, Step};

/// Where a descriptor (or the TTBR) keeps the high bits of an output address.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Layout {
    /// OA[47:n] in bits [47:n]: VMSAv8-64 with 48-bit descriptors, and AArch32 LPAE
    /// (whose bits [47:40] must be zero: the 40-bit output size checks that).
    Bits48,
    /// 64K granule with FEAT_LPA: OA[51:48] in bits [15:12].
    Lpa,
    /// FEAT_LPA2 (TCR_EL1.DS = 1): OA[49:n] in bits [49:n], OA[51:50] in bits [9:8].
    Lpa2,
}

/// Everything a walk needs, decoded from the registers.
struct Walk {
    /// log2 of the granule: 12, 14 or 16.
    grain: u32,
    /// Bits of VA the walk translates (64 - TnSZ, or 32 - TnSZ for AArch32).
    input_bits: u32,
    start_level: i8,
    /// IPA of the first table.
    root: u64,
    /// Output address size in bits.
    oa_bits: u32,
    layout: Layout,
    /// TCR_EL1.DS, effective (4K and 16K only).
    ds: bool,
    big_endian: bool,
}

/// The address a descriptor holds, aligned to `2^align` bytes (the next table's or
/// the block's/page's size), with the high bits its layout keeps elsewhere.
fn output_address(desc: u64, layout: Layout, align: u32) -> u64 {
    let (top, high) = match layout {
        Layout::Bits48 => (48, 0),
        Layout::Lpa => (48, field(desc, 15, 12) << 48),
        Layout::Lpa2 => (50, field(desc, 9, 8) << 50),
    };
    (desc & mask(top) & !mask(align)) | high
}

/// Block descriptors are allowed at this level (AArch64.BlockDescSupported).
fn block_allowed(grain: u32, level: i8, ds: bool) -> bool {
    match grain {
        12 => level == 1 || level == 2 || (level == 0 && ds),
        14 => level == 2 || (level == 1 && ds),
        // 4 TiB level-1 blocks need FEAT_LPA, which the walker takes as present.
        _ => level == 1 || level == 2,
    }
}

/// The number of the first lookup level and the size of its table (log2 of bytes),
/// for `input_bits` between `grain + 1` and `grain + 4 * (grain - 3) + 4`.
fn start_level(grain: u32, input_bits: u32) -> (i8, u32) {
    let stride = grain - 3;
    let levels = (input_bits - grain).div_ceil(stride); // 1..=5
    let start = 4 - levels as i8;
    // The first table resolves what the levels below it leave.
    let table_bits = input_bits - grain - stride * (levels - 1) + 3;
    (start, table_bits)
}

fn walk(
    w: &Walk,
    mem: &dyn GuestMemory,
    va: u64,
    step: &mut dyn FnMut(Step),
) -> Result<u64, Fault> {
    let stride = w.grain - 3;
    let mut level = w.start_level;
    let mut table = w.root;
    // At most five levels (-1..=3): the loop ends by `level` reaching 3 at the latest.
    loop {
        // The VA bits below this level's index: 3 - level is 0..=4.
        let shift = w.grain + stride * (3 - level) as u32;
        let width = if level == w.start_level {
            w.input_bits.saturating_sub(shift)
        } else {
            stride
        };
        let index = (va >> shift) & mask(width);
        let desc = read64(mem, table + index * 8, w.big_endian)
            .ok_or(Fault::TableNotInRam { level, ipa: table })?;
        step(Step {
            level,
            table,
            index,
            descriptor: desc,
        });
        if desc & 1 == 0 {
            return Err(Fault::Translation { level });
        }
        let table_or_page = desc & 2 != 0;
        if level < 3 && table_or_page {
            let next = output_address(desc, w.layout, w.grain);
            if next >> w.oa_bits != 0 {
                return Err(Fault::AddressSize { level });
            }
            table = next;
            level += 1;
            continue;
        }
        // A page (level 3) or a block; 0b01 at level 3 is reserved.
        let leaf_ok = if level == 3 {
            table_or_page
        } else {
            block_allowed(w.grain, level, w.ds)
        };
        if !leaf_ok {
            return Err(Fault::Translation { level });
        }
        let oa = output_address(desc, w.layout, shift);
        if oa >> w.oa_bits != 0 {
            return Err(Fault::AddressSize { level });
        }
        return Ok(oa | (va & mask(shift)));
    }
}

/// The output size TCR_EL1.IPS selects (0b111 is reserved; it is taken as the
/// largest). 52 bits need the 64K granule or DS = 1; otherwise 52 means 48.
fn output_bits(ips: u64, grain: u32, ds: bool) -> u32 {
    let bits = match ips {
        0 => 32,
        1 => 36,
        2 => 40,
        3 => 42,
        4 => 44,
        5 => 48,
        _ => 52,
    };
    if bits == 52 && grain != 16 && !ds {
        48
    } else {
        bits
    }
}

/// VMSAv8-64 stage 1 of the EL1&0 regime.
pub(super) fn aarch64(
    regs: &Regs,
    mem: &dyn GuestMemory,
    va: u64,
    step: &mut dyn FnMut(Step),
) -> Result<u64, Fault> {
    let tcr = regs.tcr;
    let upper = va >> 55 & 1 == 1;
    let (tsz, grain, epd, tbi, ttbr) = if upper {
        let grain = match field(tcr, 31, 30) {
            0b01 => 14,
            0b10 => 12,
            0b11 => 16,
            _ => return Err(Fault::Unsupported("reserved TCR_EL1.TG1")),
        };
        let (epd, tbi) = (tcr >> 23 & 1 == 1, tcr >> 38 & 1 == 1);
        (field(tcr, 21, 16) as u32, grain, epd, tbi, regs.ttbr1)
    } else {
        let grain = match field(tcr, 15, 14) {
            0b00 => 12,
            0b01 => 16,
            0b10 => 14,
            _ => return Err(Fault::Unsupported("reserved TCR_EL1.TG0")),
        };
        let (epd, tbi) = (tcr >> 7 & 1 == 1, tcr >> 37 & 1 == 1);
        (field(tcr, 5, 0) as u32, grain, epd, tbi, regs.ttbr0)
    };
    // DS changes the 4K and 16K formats only.
    let ds = grain != 16 && tcr >> 59 & 1 == 1;
    // TnSZ: down to 12 with FEAT_LVA (64K) or DS; up to 48 (47 for 64K) with FEAT_TTST.
    let (min, max) = if grain == 16 {
        (12, 47)
    } else if ds {
        (12, 48)
    } else {
        (16, 48)
    };
    if !(min..=max).contains(&tsz) {
        return Err(Fault::Unsupported(if grain == 16 {
            "TnSZ outside 12..=47 with the 64K granule"
        } else if ds {
            "TnSZ outside 12..=48 with TCR_EL1.DS = 1"
        } else {
            "TnSZ outside 16..=48 (12 needs TCR_EL1.DS = 1)"
        }));
    }
    let input_bits = 64 - tsz;
    // The top byte is ignored with TBI; the rest above the region must be all ones
    // (TTBR1) or all zeros (TTBR0).
    let checked = if tbi { mask(56) } else { u64::MAX };
    let high = checked & !mask(input_bits);
    let expected = if upper { high } else { 0 };
    if va & high != expected {
        return Err(Fault::OutOfRange);
    }
    if epd {
        return Err(Fault::WalkDisabled);
    }
    let (start_level, table_bits) = start_level(grain, input_bits);
    let oa_bits = output_bits(field(tcr, 34, 32), grain, ds);
    let layout = if ds {
        Layout::Lpa2
    } else if grain == 16 {
        Layout::Lpa
    } else {
        Layout::Bits48
    };
    // TTBRn_EL1.BADDR is bits [47:1] (bit 0 is CnP, [63:48] the ASID), aligned to the
    // first table's size. With DS, or 64K and a 52-bit output, bits [5:2] hold
    // BADDR[51:48] and the table is at least 64-byte aligned.
    let root = if ds || (grain == 16 && oa_bits == 52) {
        (ttbr & mask(48) & !mask(table_bits.max(6))) | (field(ttbr, 5, 2) << 48)
    } else {
        ttbr & mask(48) & !mask(table_bits)
    };
    if root >> oa_bits != 0 {
        return Err(Fault::AddressSize { level: 0 });
    }
    let w = Walk {
        grain,
        input_bits,
        start_level,
        root,
        oa_bits,
        layout,
        ds,
        big_endian: regs.big_endian(),
    };
    walk(&w, mem, va, step)
}

/// AArch32 long descriptors (TTBCR.EAE = 1): 4K granule, 32-bit input, 40-bit output.
pub(super) fn aarch32(
    regs: &Regs,
    mem: &dyn GuestMemory,
    va: u32,
    step: &mut dyn FnMut(Step),
) -> Result<u64, Fault> {
    let ttbcr = regs.tcr & mask(32);
    let t0sz = field(ttbcr, 2, 0) as u32;
    let t1sz = field(ttbcr, 18, 16) as u32;
    // TTBR1 holds the top 2^(32 - T1SZ) bytes, or with T1SZ = 0 everything above
    // TTBR0's region; between two sized regions is a gap.
    let upper = if t1sz == 0 {
        va > u32::MAX >> t0sz
    } else {
        va >= !(u32::MAX >> t1sz)
    };
    let (tsz, epd, ttbr) = if upper {
        (t1sz, ttbcr >> 23 & 1 == 1, regs.ttbr1)
    } else {
        (t0sz, ttbcr >> 7 & 1 == 1, regs.ttbr0)
    };
    let input_bits = 32 - tsz; // 25..=32
    let va = u64::from(va);
    let top = va >> input_bits;
    if top != if upper { mask(32 - input_bits) } else { 0 } {
        return Err(Fault::OutOfRange);
    }
    if epd {
        return Err(Fault::WalkDisabled);
    }
    let (start_level, table_bits) = start_level(12, input_bits); // level 1 or 2
                                                                 // TTBR BADDR is bits [47:x] (x = the first table's size), [55:48] the ASID.
    let root = ttbr & mask(48) & !mask(table_bits);
    if root >> 40 != 0 {
        return Err(Fault::AddressSize { level: 0 });
    }
    let w = Walk {
        grain: 12,
        input_bits,
        start_level,
        root,
        oa_bits: 40,
        layout: Layout::Bits48,
        ds: false,
        big_endian: regs.big_endian(),
    };
    walk(&w, mem, va, step)
}
