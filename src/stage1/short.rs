//! The AArch32 short-descriptor walk (TTBCR.EAE = 0): a first-level table of 4096
//! (or, for TTBR0 with TTBCR.N > 0, 4096 >> N) 32-bit entries, each a 1 MiB section,
//! part of a 16 MiB supersection or a second-level table of 256 entries, each a
//! 4 KiB small page or part of a 64 KiB large page.

use super::{field, read32, Fault, GuestMemory, Regs, Step};

pub(super) fn walk(
    regs: &Regs,
    mem: &dyn GuestMemory,
    va: u32,
    step: &mut dyn FnMut(Step),
) -> Result<u64, Fault> {
    let ttbcr = regs.tcr;
    let n = field(ttbcr, 2, 0) as u32;
    let big_endian = regs.big_endian();
    // With N > 0, TTBR0 translates the VAs whose top N bits are zero, TTBR1 the rest.
    let use_ttbr1 = n > 0 && va >> (32 - n) != 0;
    let (table, index) = if use_ttbr1 {
        if ttbcr >> 5 & 1 == 1 {
            return Err(Fault::WalkDisabled); // PD1
        }
        // A full 16 KiB table, indexed by VA[31:20].
        (regs.ttbr1 & 0xffff_c000, va >> 20)
    } else {
        if ttbcr >> 4 & 1 == 1 {
            return Err(Fault::WalkDisabled); // PD0
        }
        // 16 KiB >> N, indexed by VA[31-N:20]; TTBR0 bits [31:14-N].
        (
            regs.ttbr0 & 0xffff_ffff & !(0x3fff >> n),
            (va >> 20) & (0xfff >> n),
        )
    };
    let index = u64::from(index);
    let desc = read32(mem, table + index * 4, big_endian).ok_or(Fault::TableNotInRam {
        level: 1,
        ipa: table,
    })?;
    step(Step {
        level: 1,
        table,
        index,
        descriptor: u64::from(desc),
    });
    let va64 = u64::from(va);
    let d = u64::from(desc);
    match desc & 3 {
        0 => Err(Fault::Translation { level: 1 }),
        1 => {
            // A second-level table: bits [31:10], indexed by VA[19:12].
            let table = d & 0xffff_fc00;
            let index = u64::from(va >> 12 & 0xff);
            let desc = read32(mem, table + index * 4, big_endian).ok_or(Fault::TableNotInRam {
                level: 2,
                ipa: table,
            })?;
            step(Step {
                level: 2,
                table,
                index,
                descriptor: u64::from(desc),
            });
            let d = u64::from(desc);
            match desc & 3 {
                0 => Err(Fault::Translation { level: 2 }),
                1 => Ok((d & 0xffff_0000) | (va64 & 0xffff)), // large page
                _ => Ok((d & 0xffff_f000) | (va64 & 0xfff)),  // small page (bit 0 is XN)
            }
        }
        // Bit 0 is PXN; bit 18 tells a supersection from a section.
        _ if desc >> 18 & 1 == 1 => {
            // PA[31:24] in bits [31:24], PA[35:32] in [23:20], PA[39:36] in [8:5].
            let high = field(d, 23, 20) << 32 | field(d, 8, 5) << 36;
            Ok(high | (d & 0xff00_0000) | (va64 & 0x00ff_ffff))
        }
        _ => Ok((d & 0xfff0_0000) | (va64 & 0x000f_ffff)),
    }
}
