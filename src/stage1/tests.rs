use super::*;
use std::collections::HashMap;
use std::vec::Vec;

#[derive(Default)]
struct Mem(HashMap<u64, u64>);
impl GuestMemory for Mem {
    fn read_u64(&self, ipa: u64) -> Option<u64> {
        assert_eq!(ipa % 8, 0, "unaligned read at {ipa:#x}");
        if ipa < 0x4000_0000 {
            return None; // not RAM
        }
        Some(self.0.get(&ipa).copied().unwrap_or(0))
    }
}
impl Mem {
    /// A 64-bit descriptor.
    fn set(&mut self, table: u64, index: u64, desc: u64) {
        self.0.insert(table + index * 8, desc);
    }
    /// A 32-bit (short) descriptor, in its half of the 8-byte word.
    fn set32(&mut self, table: u64, index: u64, desc: u32) {
        let ipa = table + index * 4;
        let shift = (ipa & 4) * 8;
        let word = self.0.entry(ipa & !7).or_default();
        *word = (*word & !(0xffff_ffff << shift)) | u64::from(desc) << shift;
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
        aarch32: false,
    }
}

/// An AArch32 EL1: `ttbcr` is TCR_EL1[31:0].
fn regs32(ttbcr: u64, ttbr0: u64, ttbr1: u64) -> Regs {
    Regs {
        aarch32: true,
        ..regs(ttbcr, ttbr0, ttbr1)
    }
}

fn walk(r: &Regs, m: &Mem, va: u64) -> (Result<u64, Fault>, Vec<Step>) {
    let mut steps = Vec::new();
    let res = translate(r, m, va, &mut |s| steps.push(s));
    (res, steps)
}

fn st(level: i8, table: u64, index: u64, descriptor: u64) -> Step {
    Step {
        level,
        table,
        index,
        descriptor,
    }
}

/// 4K granule, 48-bit: TG0 = 0, T0SZ = 16, TG1 = 0b10, T1SZ = 16, IPS = 48 bits.
const TCR_4K: u64 = 16 | (16 << 16) | (0b10 << 30) | (0b101 << 32);
const IPS_40: u64 = 0b010 << 32;
const IPS_48: u64 = 0b101 << 32;
const IPS_52: u64 = 0b110 << 32;
const DS: u64 = 1 << 59;
/// TTBCR.EAE: AArch32 long descriptors.
const EAE: u64 = 1 << 31;

// ---- VMSAv8-64, 48-bit ----

#[test]
fn mmu_off_is_flat() {
    let r = Regs {
        sctlr: 0,
        ..regs(0, 0, 0)
    };
    let (res, steps) = walk(&r, &Mem::default(), 0x4008_0000);
    assert_eq!(res, Ok(0x4008_0000));
    assert!(steps.is_empty());
}

#[test]
fn a_4k_page_through_four_levels() {
    let mut m = Mem::default();
    let (l0, l1, l2, l3) = (0x4100_0000, 0x4100_1000, 0x4100_2000, 0x4100_3000);
    let va = 0x0000_1234_5678_9abc_u64;
    m.set(l0, 0x24, l1 | TABLE);
    m.set(l1, 0xd1, l2 | TABLE);
    m.set(l2, 0xb3, l3 | TABLE);
    m.set(l3, 0x189, 0x4567_8000 | PAGE);
    let (res, steps) = walk(&regs(TCR_4K, l0, 0), &m, va);
    assert_eq!(res, Ok(0x4567_8abc));
    assert_eq!(
        steps,
        [
            st(0, l0, 0x24, l1 | TABLE),
            st(1, l1, 0xd1, l2 | TABLE),
            st(2, l2, 0xb3, l3 | TABLE),
            st(3, l3, 0x189, 0x4567_8000 | PAGE),
        ]
    );
}

#[test]
fn kernel_high_addresses_go_through_ttbr1_with_blocks() {
    let mut m = Mem::default();
    let (l0, l1, l2) = (0x4200_0000, 0x4200_1000, 0x4200_2000);
    let va = 0xffff_8000_0020_1234_u64;
    m.set(l0, 256, l1 | TABLE);
    m.set(l1, 0, l2 | TABLE);
    m.set(l2, 1, 0x4060_0000 | BLOCK); // 2 MiB block
    let (res, steps) = walk(&regs(TCR_4K, 0, l0), &m, va);
    assert_eq!(res, Ok(0x4060_1234));
    assert_eq!(
        steps,
        [
            st(0, l0, 256, l1 | TABLE),
            st(1, l1, 0, l2 | TABLE),
            st(2, l2, 1, 0x4060_0000 | BLOCK),
        ]
    );
    // A 1 GiB block at level 1.
    let va = 0xffff_8000_4000_0010_u64;
    m.set(l1, 1, 0x8000_0000 | BLOCK);
    let (res, steps) = walk(&regs(TCR_4K, 0, l0), &m, va);
    assert_eq!(res, Ok(0x8000_0010));
    assert_eq!(
        steps,
        [
            st(0, l0, 256, l1 | TABLE),
            st(1, l1, 1, 0x8000_0000 | BLOCK)
        ]
    );
}

#[test]
fn faults_name_their_level() {
    let mut m = Mem::default();
    let (l0, l1) = (0x4300_0000, 0x4300_1000);
    let va = 0x0000_0080_0000_0000_u64; // L0 index 1
    let r = regs(TCR_4K, l0, 0);
    assert_eq!(
        walk(&r, &m, va),
        (Err(Fault::Translation { level: 0 }), vec![st(0, l0, 1, 0)])
    );
    m.set(l0, 1, l1 | TABLE);
    assert_eq!(
        walk(&r, &m, va),
        (
            Err(Fault::Translation { level: 1 }),
            vec![st(0, l0, 1, l1 | TABLE), st(1, l1, 0, 0)]
        )
    );
    m.set(l1, 0, 0x1000 | TABLE); // a table outside RAM
    assert_eq!(
        walk(&r, &m, va),
        (
            Err(Fault::TableNotInRam {
                level: 2,
                ipa: 0x1000
            }),
            vec![st(0, l0, 1, l1 | TABLE), st(1, l1, 0, 0x1000 | TABLE)]
        )
    );
    // A block at level 0 is not allowed with 4K pages (without DS).
    m.set(l0, 1, 0x4000_0000 | BLOCK);
    assert_eq!(
        walk(&r, &m, va),
        (
            Err(Fault::Translation { level: 0 }),
            vec![st(0, l0, 1, 0x4000_0000 | BLOCK)]
        )
    );
    // 0b01 at level 3 is reserved.
    let (l0, l1, l2, l3) = (0x4310_0000, 0x4310_1000, 0x4310_2000, 0x4310_3000);
    m.set(l0, 0, l1 | TABLE);
    m.set(l1, 0, l2 | TABLE);
    m.set(l2, 0, l3 | TABLE);
    m.set(l3, 5, 0x4400_0000 | BLOCK);
    let (res, steps) = walk(&regs(TCR_4K, l0, 0), &m, 0x5000);
    assert_eq!(res, Err(Fault::Translation { level: 3 }));
    assert_eq!(steps[3], st(3, l3, 5, 0x4400_0000 | BLOCK));
}

#[test]
fn range_epd_and_tbi() {
    let m = Mem::default();
    // 39-bit TTBR0 region: bit 40 set is out of range.
    let tcr = 25 | (25 << 16) | (0b10 << 30);
    assert_eq!(
        walk(&regs(tcr, 0x4000_0000, 0), &m, 1 << 40),
        (Err(Fault::OutOfRange), vec![])
    );
    // EPD0.
    assert_eq!(
        walk(&regs(TCR_4K | 1 << 7, 0x4000_0000, 0), &m, 0x1000),
        (Err(Fault::WalkDisabled), vec![])
    );
    // TBI0: a tag in the top byte is ignored.
    let mut m = Mem::default();
    let (l0, l1, l2) = (0x4400_0000, 0x4400_1000, 0x4400_2000);
    m.set(l0, 0, l1 | TABLE);
    m.set(l1, 1, l2 | TABLE);
    m.set(l2, 0, 0x4800_0000 | BLOCK);
    let tcr = TCR_4K | 1 << 37;
    let (res, steps) = walk(&regs(tcr, l0, 0), &m, 0x5a00_0000_4000_0008);
    assert_eq!(res, Ok(0x4800_0008));
    assert_eq!(
        steps,
        [
            st(0, l0, 0, l1 | TABLE),
            st(1, l1, 1, l2 | TABLE),
            st(2, l2, 0, 0x4800_0000 | BLOCK)
        ]
    );
    assert_eq!(
        walk(&regs(TCR_4K, l0, 0), &m, 0x5a00_0000_4000_0008),
        (Err(Fault::OutOfRange), vec![])
    );
}

#[test]
fn a_16k_granule_walk_with_a_small_root_table() {
    // TG0 = 0b10 (16K), T0SZ = 24 (40 bits): level 1 has 4 bits (a 128-byte root
    // table, aligned to its size only), levels 2 and 3 have 11.
    let tcr = 24 | (0b10 << 14) | IPS_48;
    let mut m = Mem::default();
    let (l1, l2, l3) = (0x4500_0080, 0x4500_4000, 0x4500_8000);
    let va = 0x0000_0023_4567_89ab_u64;
    m.set(l1, 2, l2 | TABLE);
    m.set(l2, 0x1a2, l3 | TABLE);
    m.set(l3, 0x59e, 0x4abc_c000 | PAGE);
    let (res, steps) = walk(&regs(tcr, l1, 0), &m, va);
    assert_eq!(res, Ok(0x4abc_c000 | 0x09ab));
    assert_eq!(
        steps,
        [
            st(1, l1, 2, l2 | TABLE),
            st(2, l2, 0x1a2, l3 | TABLE),
            st(3, l3, 0x59e, 0x4abc_c000 | PAGE)
        ]
    );
}

#[test]
fn a_64k_granule_walk_with_a_block() {
    // TG0 = 0b01 (64K), T0SZ = 22 (42 bits): levels 2 (13 bits) and 3 (13 bits).
    let tcr = 22 | (0b01 << 14) | IPS_48;
    let mut m = Mem::default();
    let (l2, l3) = (0x4600_0000, 0x4601_0000);
    let va = 0x0000_0123_4567_89ab_u64;
    m.set(l2, 0x91a, l3 | TABLE);
    m.set(l3, 0x567, 0x4abc_0000 | PAGE);
    let (res, steps) = walk(&regs(tcr, l2, 0), &m, va);
    assert_eq!(res, Ok(0x4abc_89ab));
    assert_eq!(
        steps,
        [
            st(2, l2, 0x91a, l3 | TABLE),
            st(3, l3, 0x567, 0x4abc_0000 | PAGE)
        ]
    );
    // A 512 MiB block at level 2.
    m.set(l2, 0x91a, 0x6000_0000 | BLOCK);
    let (res, steps) = walk(&regs(tcr, l2, 0), &m, va);
    assert_eq!(res, Ok(0x6000_0000 | 0x0567_89ab));
    assert_eq!(steps, [st(2, l2, 0x91a, 0x6000_0000 | BLOCK)]);
}

#[test]
fn big_endian_tables_with_sctlr_ee() {
    let mut m = Mem::default();
    let (l1, l2) = (0x4700_0000, 0x4700_1000);
    // 39-bit VA: levels 1 to 3; a 2 MiB block at level 2. Descriptors byte-swapped.
    let tcr = 25 | IPS_48;
    m.set(l1, 0, (l2 | TABLE).swap_bytes());
    m.set(l2, 3, (0x4820_0000 | BLOCK).swap_bytes());
    let r = Regs {
        sctlr: 1 | 1 << 25,
        ..regs(tcr, l1, 0)
    };
    let (res, steps) = walk(&r, &m, 0x0060_0042);
    assert_eq!(res, Ok(0x4820_0042));
    assert_eq!(
        steps,
        [st(1, l1, 0, l2 | TABLE), st(2, l2, 3, 0x4820_0000 | BLOCK)]
    );
}

#[test]
fn tnsz_and_granule_limits() {
    let m = Mem::default();
    // T0SZ 12 needs DS (4K/16K) or the 64K granule; T0SZ 49 is too small a region.
    for tcr in [
        12 | IPS_48,
        49 | IPS_48,
        11 | (0b01 << 14) | DS,
        48 | (0b01 << 14),
    ] {
        let (res, steps) = walk(&regs(tcr, 0x4000_0000, 0), &m, 0);
        assert!(
            matches!(res, Err(Fault::Unsupported(_))),
            "{tcr:#x}: {res:?}"
        );
        assert!(steps.is_empty());
    }
    // TG0 = 0b11 is reserved.
    assert_eq!(
        walk(&regs(16 | (0b11 << 14), 0x4000_0000, 0), &m, 0).0,
        Err(Fault::Unsupported("reserved TCR_EL1.TG0"))
    );
    // FEAT_TTST: T0SZ 48 with 4K is a 64 KiB region with one level-3 table of 16.
    let mut m = Mem::default();
    m.set(0x4000_0080, 0xf, 0x4123_4000 | PAGE);
    let (res, steps) = walk(&regs(48 | IPS_48, 0x4000_0080, 0), &m, 0xf123);
    assert_eq!(res, Ok(0x4123_4123));
    assert_eq!(steps, [st(3, 0x4000_0080, 0xf, 0x4123_4000 | PAGE)]);
}

// ---- 52-bit output: FEAT_LPA (64K) and FEAT_LPA2 (DS) ----

#[test]
fn lpa_64k_52_bit_output_and_va() {
    // TG0 = 64K, T0SZ = 12 (52-bit VA, FEAT_LVA), IPS = 52 bits: levels 1 (10 bits,
    // an 8 KiB table), 2 and 3 (13 bits each).
    let tcr = 12 | (0b01 << 14) | IPS_52;
    let l1 = 0x000f_0000_4100_0000_u64;
    let l2 = 0x0003_0000_4201_0000_u64;
    let l3 = 0x0000_0000_4202_0000_u64;
    // TTBR0: BADDR[47:6] in place, BADDR[51:48] in bits [5:2], an ASID on top.
    let ttbr0 = 0x00ab_0000_4100_0000 | 0xf << 2;
    let mut m = Mem::default();
    let va = 0x000a_bcde_f123_4567_u64;
    let d1 = 0x4201_0000 | 0x3 << 12 | TABLE; // NLTA[51:48] in bits [15:12]
    let d2 = l3 | TABLE;
    let d3 = 0x1234_5678_0000 | 0xa << 12 | PAGE; // OA[51:48] in bits [15:12]
    m.set(l1, 0x2af, d1);
    m.set(l2, 0x6f7, d2);
    m.set(l3, 0x1123, d3);
    let (res, steps) = walk(&regs(tcr, ttbr0, 0), &m, va);
    assert_eq!(res, Ok(0x000a_1234_5678_4567));
    assert_eq!(
        steps,
        [
            st(1, l1, 0x2af, d1),
            st(2, l2, 0x6f7, d2),
            st(3, l3, 0x1123, d3)
        ]
    );
    // A 4 TiB block at level 1 (allowed with FEAT_LPA), OA 0x5_0400_0000_0000.
    let va = 0x0001_0123_4567_89ab_u64;
    let d = 0x0400_0000_0000 | 0x5 << 12 | BLOCK;
    m.set(l1, 0x40, d);
    let (res, steps) = walk(&regs(tcr, ttbr0, 0), &m, va);
    assert_eq!(res, Ok(0x0005_0523_4567_89ab));
    assert_eq!(steps, [st(1, l1, 0x40, d)]);
    // With a 48-bit IPS, TTBR bits [5:2] are not address bits (the root is then
    // 0x4100_0000, an empty table) and the same VA faults at level 1.
    let tcr48 = 12 | (0b01 << 14) | IPS_48;
    assert_eq!(
        walk(&regs(tcr48, ttbr0, 0), &m, va),
        (
            Err(Fault::Translation { level: 1 }),
            vec![st(1, 0x4100_0000, 0x40, 0)]
        )
    );
}

#[test]
fn lpa2_4k_walk_from_level_minus_1() {
    // TG0 = 4K, T0SZ = 12 (52-bit VA), DS = 1, IPS = 52 bits: five levels, -1 to 3.
    // Level -1 resolves VA[51:48]: 16 entries, a 128-byte table.
    let tcr = 12 | IPS_52 | DS;
    let root = 0x0002_0000_4100_0080_u64;
    let ttbr0 = 0x4100_0080 | 0x2 << 2;
    let l0 = 0x000c_0000_4200_0000_u64; // NLTA[51:50] in bits [9:8]
    let l1 = 0x0003_0000_4300_0000_u64; // NLTA[49:48] in place
    let (l2, l3) = (0x4400_0000, 0x4500_0000);
    let dm1 = 0x4200_0000 | 0b11 << 8 | TABLE;
    let d0 = l1 | TABLE;
    let (d1, d2) = (l2 | TABLE, l3 | TABLE);
    // OA 0xf_1234_5678_9000: OA[51:50] in bits [9:8] (where SH was), OA[49:12] in place.
    let d3 = 0x0003_1234_5678_9000 | 0b11 << 8 | PAGE;
    let mut m = Mem::default();
    m.set(root, 0xd, dm1);
    m.set(l0, 0x46, d0);
    m.set(l1, 0x115, d1);
    m.set(l2, 0x13c, d2);
    m.set(l3, 0x9a, d3);
    let r = regs(tcr, ttbr0, 0);
    let (res, steps) = walk(&r, &m, 0x000d_2345_6789_abcd);
    assert_eq!(res, Ok(0x000f_1234_5678_9bcd));
    assert_eq!(
        steps,
        [
            st(-1, root, 0xd, dm1),
            st(0, l0, 0x46, d0),
            st(1, l1, 0x115, d1),
            st(2, l2, 0x13c, d2),
            st(3, l3, 0x9a, d3),
        ]
    );
    // DS allows a 512 GiB block at level 0: OA 0x8_0000_0000_0000.
    let d = 0b10 << 8 | BLOCK;
    m.set(l0, 1, d);
    let (res, steps) = walk(&r, &m, 0x000d_0080_1234_5678);
    assert_eq!(res, Ok(0x0008_0000_1234_5678));
    assert_eq!(steps, [st(-1, root, 0xd, dm1), st(0, l0, 1, d)]);
    // ... but no block at level -1.
    m.set(root, 0xe, 0x4000_0000 | BLOCK);
    assert_eq!(
        walk(&r, &m, 0x000e_0000_0000_0000),
        (
            Err(Fault::Translation { level: -1 }),
            vec![st(-1, root, 0xe, 0x4000_0000 | BLOCK)]
        )
    );
    // An invalid level -1 entry is a level -1 translation fault.
    assert_eq!(
        walk(&r, &m, 0x0003_0000_0000_0000),
        (
            Err(Fault::Translation { level: -1 }),
            vec![st(-1, root, 3, 0)]
        )
    );
}

#[test]
fn lpa2_16k_starts_at_level_0_with_a_level_1_block() {
    // TG1 = 16K, T1SZ = 12, DS: level 0 resolves VA[51:47] (32 entries, 256 bytes).
    let tcr = (12 << 16) | (0b01 << 30) | IPS_52 | DS;
    let (l0, l1) = (0x4100_0100_u64, 0x4100_4000_u64);
    let va = 0xfff8_0012_3456_789a_u64; // VA[51:47] = 0x10, VA[46:36] = 0x001
    let mut m = Mem::default();
    m.set(l0, 0x10, l1 | TABLE);
    // A 64 GiB level-1 block at OA 0x4_0010_0000_0000: OA[51:50] = 0b01 in bits [9:8].
    let d = 0x0010_0000_0000 | 0b01 << 8 | BLOCK;
    m.set(l1, 0x001, d);
    let (res, steps) = walk(&regs(tcr, 0, l0), &m, va);
    assert_eq!(res, Ok(0x0004_0012_3456_789a));
    assert_eq!(steps, [st(0, l0, 0x10, l1 | TABLE), st(1, l1, 0x001, d)]);
}

// ---- address size faults ----

#[test]
fn address_size_fault_at_a_table() {
    let (l0, l1) = (0x4100_0000, 0x4100_1000);
    let va = 0x0000_0000_4000_1000_u64; // L0 index 0, L1 index 1
    let mut m = Mem::default();
    m.set(l0, 0, l1 | TABLE);
    let far_table = 0x100_4000_0000_u64; // bit 40
    m.set(l1, 1, far_table | TABLE);
    let tcr40 = TCR_4K & !(0b111 << 32) | IPS_40;
    assert_eq!(
        walk(&regs(tcr40, l0, 0), &m, va),
        (
            Err(Fault::AddressSize { level: 1 }),
            vec![st(0, l0, 0, l1 | TABLE), st(1, l1, 1, far_table | TABLE)]
        )
    );
    // With 48 bits the table is in range (and empty: a level 2 translation fault).
    assert_eq!(
        walk(&regs(TCR_4K, l0, 0), &m, va),
        (
            Err(Fault::Translation { level: 2 }),
            vec![
                st(0, l0, 0, l1 | TABLE),
                st(1, l1, 1, far_table | TABLE),
                st(2, far_table, 0, 0)
            ]
        )
    );
    // A TTBR base beyond the output size: level 0, before any read.
    assert_eq!(
        walk(&regs(tcr40, far_table, 0), &m, va),
        (Err(Fault::AddressSize { level: 0 }), vec![])
    );
    // IPS = 52 bits means 48 with 4K and DS = 0: TTBR bits [5:2] stay misalignment.
    let tcr52 = TCR_4K & !(0b111 << 32) | IPS_52;
    assert_eq!(
        walk(&regs(tcr52, l0 | 0x3c, 0), &m, va).1[0],
        st(0, l0, 0, l1 | TABLE)
    );
}

#[test]
fn address_size_fault_at_the_output() {
    let tcr40 = TCR_4K & !(0b111 << 32) | IPS_40;
    let (l0, l1, l2, l3) = (0x4100_0000, 0x4100_1000, 0x4100_2000, 0x4100_3000);
    let mut m = Mem::default();
    m.set(l0, 0, l1 | TABLE);
    m.set(l1, 0, l2 | TABLE);
    m.set(l2, 0, l3 | TABLE);
    let far_page = 0x100_0000_0000 | PAGE; // OA bit 40
    m.set(l3, 2, far_page);
    let (res, steps) = walk(&regs(tcr40, l0, 0), &m, 0x2345);
    assert_eq!(res, Err(Fault::AddressSize { level: 3 }));
    assert_eq!(
        steps,
        [
            st(0, l0, 0, l1 | TABLE),
            st(1, l1, 0, l2 | TABLE),
            st(2, l2, 0, l3 | TABLE),
            st(3, l3, 2, far_page)
        ]
    );
    assert_eq!(
        walk(&regs(TCR_4K, l0, 0), &m, 0x2345).0,
        Ok(0x100_0000_0345)
    );
    // A 2 MiB block with OA bit 41.
    let far_block = 0x200_0000_0000 | BLOCK;
    m.set(l2, 1, far_block);
    assert_eq!(
        walk(&regs(tcr40, l0, 0), &m, 0x20_0000),
        (
            Err(Fault::AddressSize { level: 2 }),
            vec![
                st(0, l0, 0, l1 | TABLE),
                st(1, l1, 0, l2 | TABLE),
                st(2, l2, 1, far_block)
            ]
        )
    );
    // 64K with a 48-bit IPS: OA[51:48] in bits [15:12] set is out of range, and in
    // range with 52 bits.
    let tcr = 16 | (0b01 << 14) | IPS_48; // levels 1 (6 bits), 2, 3
    let (k1, k2, k3) = (0x4200_0000, 0x4201_0000, 0x4202_0000);
    let va = 0x0000_1234_5678_9abc_u64;
    let page = 0x4567_0000 | 0x1 << 12 | PAGE;
    m.set(k1, 0x4, k2 | TABLE);
    m.set(k2, 0x11a2, k3 | TABLE);
    m.set(k3, 0x1678, page);
    let expected = vec![
        st(1, k1, 0x4, k2 | TABLE),
        st(2, k2, 0x11a2, k3 | TABLE),
        st(3, k3, 0x1678, page),
    ];
    assert_eq!(
        walk(&regs(tcr, k1, 0), &m, va),
        (Err(Fault::AddressSize { level: 3 }), expected.clone())
    );
    let tcr52 = 16 | (0b01 << 14) | IPS_52;
    assert_eq!(
        walk(&regs(tcr52, k1, 0), &m, va),
        (Ok(0x0001_0000_4567_9abc), expected)
    );
}

// ---- AArch32, short descriptors (TTBCR.EAE = 0) ----

#[test]
fn short_descriptor_section() {
    let l1 = 0x4100_0000_u64;
    // TTBR0's low word holds the base and walk attributes; the high word is ignored.
    let ttbr0 = 0xdead_0000_0000_0000 | l1 | 0x59;
    let mut m = Mem::default();
    m.set32(l1, 0x801, 0x4561_0c0e); // section, bit 18 clear
    m.set32(l1, 0x802, 0x4570_0c0f); // section with PXN (0b11)
    let r = regs32(0, ttbr0, 0);
    let (res, steps) = walk(&r, &m, 0x8012_3456);
    assert_eq!(res, Ok(0x4562_3456));
    assert_eq!(steps, [st(1, l1, 0x801, 0x4561_0c0e)]);
    assert_eq!(steps[0].kind(&r), "section");
    let (res, steps) = walk(&r, &m, 0x802f_fff0);
    assert_eq!(res, Ok(0x457f_fff0));
    assert_eq!(steps, [st(1, l1, 0x802, 0x4570_0c0f)]);
}

#[test]
fn short_descriptor_supersection() {
    let l1 = 0x4100_0000_u64;
    // PA[31:24] = 0x47, PA[35:32] = 0x5 in bits [23:20], PA[39:36] = 0xa in [8:5].
    let d = 0x4700_0000 | 0x5 << 20 | 1 << 18 | 0xa << 5 | 0b10;
    let mut m = Mem::default();
    m.set32(l1, 0x9ab, d);
    let r = regs32(0, l1, 0);
    let (res, steps) = walk(&r, &m, 0x9abc_def0);
    assert_eq!(res, Ok(0xa5_47bc_def0));
    assert_eq!(steps, [st(1, l1, 0x9ab, u64::from(d))]);
    assert_eq!(steps[0].kind(&r), "supersection");
}

#[test]
fn short_descriptor_small_and_large_pages() {
    let l1 = 0x4100_0000_u64;
    let l2 = 0x4110_0400_u64; // a 1 KiB second-level table
    let pt = 0x4110_05e1_u32; // page table, domain 15
    let mut m = Mem::default();
    m.set32(l1, 0x012, pt);
    m.set32(l2, 0x34, 0x4abc_d032); // small page
    m.set32(l2, 0x35, 0x4abc_e033); // small page, XN
    m.set32(l2, 0x56, 0x4ab0_0031); // large page (repeated 16 times in a real table)
    let r = regs32(0, l1, 0);
    let (res, steps) = walk(&r, &m, 0x0123_4567);
    assert_eq!(res, Ok(0x4abc_d567));
    assert_eq!(
        steps,
        [st(1, l1, 0x012, pt.into()), st(2, l2, 0x34, 0x4abc_d032)]
    );
    assert_eq!(
        (steps[0].kind(&r), steps[1].kind(&r)),
        ("page table", "small page")
    );
    assert_eq!(walk(&r, &m, 0x0123_5fff).0, Ok(0x4abc_efff));
    let (res, steps) = walk(&r, &m, 0x0125_6789);
    assert_eq!(res, Ok(0x4ab0_6789));
    assert_eq!(
        steps,
        [st(1, l1, 0x012, pt.into()), st(2, l2, 0x56, 0x4ab0_0031)]
    );
    assert_eq!(steps[1].kind(&r), "large page");
}

#[test]
fn short_descriptor_translation_faults_at_levels_1_and_2() {
    let l1 = 0x4100_0000_u64;
    let l2 = 0x4110_0000_u64;
    let mut m = Mem::default();
    m.set32(l1, 0x100, 0x4110_0001);
    let r = regs32(0, l1, 0);
    assert_eq!(
        walk(&r, &m, 0x2000_0000),
        (
            Err(Fault::Translation { level: 1 }),
            vec![st(1, l1, 0x200, 0)]
        )
    );
    assert_eq!(
        walk(&r, &m, 0x1007_8000),
        (
            Err(Fault::Translation { level: 2 }),
            vec![st(1, l1, 0x100, 0x4110_0001), st(2, l2, 0x78, 0)]
        )
    );
    // A second-level table outside RAM.
    m.set32(l1, 0x101, 0x0000_2001);
    assert_eq!(
        walk(&r, &m, 0x1010_0000),
        (
            Err(Fault::TableNotInRam {
                level: 2,
                ipa: 0x2000
            }),
            vec![st(1, l1, 0x101, 0x2001)]
        )
    );
}

#[test]
fn short_descriptor_pd0_and_pd1_disable_walks() {
    let l1 = 0x4100_0000_u64;
    let mut m = Mem::default();
    m.set32(l1, 0, 0x4800_0002);
    // PD0 with N = 0: every VA is TTBR0's, and none is walked.
    assert_eq!(
        walk(&regs32(1 << 4, l1, 0), &m, 0x1000),
        (Err(Fault::WalkDisabled), vec![])
    );
    // N = 1 and PD1: TTBR1's half is disabled, TTBR0's half still walks.
    let r = regs32(1 | 1 << 5, l1, 0x4200_0000);
    assert_eq!(
        walk(&r, &m, 0x8000_0000),
        (Err(Fault::WalkDisabled), vec![])
    );
    assert_eq!(
        walk(&r, &m, 0x1000),
        (Ok(0x4800_1000), vec![st(1, l1, 0, 0x4800_0002)])
    );
}

#[test]
fn short_descriptor_ttbcr_n_split_chooses_ttbr1() {
    // N = 2: TTBR0 translates VA[31:30] = 0 with a 4 KiB table (aligned to 4 KiB
    // only), TTBR1 the rest with a full 16 KiB table indexed by VA[31:20].
    let (t0, t1) = (0x4120_3000_u64, 0x4124_0000_u64);
    let mut m = Mem::default();
    m.set32(t0, 0x300, 0x4800_0002);
    m.set32(t1, 0xc00, 0x4900_0002);
    m.set32(t1, 0x400, 0x4a00_0002);
    let r = regs32(2, t0, t1);
    assert_eq!(
        walk(&r, &m, 0x3000_0010),
        (Ok(0x4800_0010), vec![st(1, t0, 0x300, 0x4800_0002)])
    );
    assert_eq!(
        walk(&r, &m, 0xc000_1000),
        (Ok(0x4900_1000), vec![st(1, t1, 0xc00, 0x4900_0002)])
    );
    assert_eq!(
        walk(&r, &m, 0x4000_0020),
        (Ok(0x4a00_0020), vec![st(1, t1, 0x400, 0x4a00_0002)])
    );
    // With N = 0 the same VA is TTBR0's (whose table is then 16 KiB, at 0x4120_0000).
    assert_eq!(
        walk(&regs32(0, t0, t1), &m, 0xc000_1000),
        (
            Err(Fault::Translation { level: 1 }),
            vec![st(1, 0x4120_0000, 0xc00, 0)]
        )
    );
}

#[test]
fn aarch32_vas_are_32_bit() {
    let r = regs32(0, 0x4100_0000, 0);
    let m = Mem::default();
    assert_eq!(walk(&r, &m, 0x1_0000_0000), (Err(Fault::VaTooWide), vec![]));
    let off = Regs { sctlr: 0, ..r };
    assert_eq!(
        walk(&off, &m, 0x1_0000_0000),
        (Err(Fault::VaTooWide), vec![])
    );
    assert_eq!(walk(&off, &m, 0xffff_fffc), (Ok(0xffff_fffc), vec![]));
}

// ---- AArch32, long descriptors (TTBCR.EAE = 1) ----

#[test]
fn lpae_ttbr0_from_level_1() {
    // T0SZ = T1SZ = 0: TTBR0 translates everything, from level 1 (4 entries, a
    // 32-byte table aligned to 32 bytes).
    let (l1, l2, l3) = (0x4100_0020_u64, 0x4100_1000_u64, 0x4100_2000_u64);
    let ttbr0 = 0x0042_0000_0000_0000 | l1; // ASID 0x42
    let mut m = Mem::default();
    m.set(l1, 2, l2 | TABLE);
    m.set(l2, 1, l3 | TABLE);
    let page = 0xab_cdef_0000 | PAGE; // a 40-bit output
    m.set(l3, 1, page);
    let r = regs32(EAE, ttbr0, 0);
    let (res, steps) = walk(&r, &m, 0x8020_1234);
    assert_eq!(res, Ok(0xab_cdef_0234));
    assert_eq!(
        steps,
        [
            st(1, l1, 2, l2 | TABLE),
            st(2, l2, 1, l3 | TABLE),
            st(3, l3, 1, page)
        ]
    );
    assert_eq!(
        steps.iter().map(|s| s.kind(&r)).collect::<Vec<_>>(),
        ["table", "table", "page"]
    );
    // A 1 GiB block at level 1 and a 2 MiB block at level 2.
    m.set(l1, 3, 0x80_4000_0000 | BLOCK);
    assert_eq!(
        walk(&r, &m, 0xc000_0010),
        (
            Ok(0x80_4000_0010),
            vec![st(1, l1, 3, 0x80_4000_0000 | BLOCK)]
        )
    );
    m.set(l2, 5, 0x4860_0000 | BLOCK);
    assert_eq!(
        walk(&r, &m, 0x80a1_2345),
        (
            Ok(0x4861_2345),
            vec![st(1, l1, 2, l2 | TABLE), st(2, l2, 5, 0x4860_0000 | BLOCK)]
        )
    );
}

#[test]
fn lpae_ttbr1_regions() {
    // T0SZ = T1SZ = 2: TTBR0 below 1 GiB, TTBR1 from 3 GiB, a gap between; each walk
    // starts at level 2 with a full 4 KiB table.
    let (t0, t1) = (0x4100_0000_u64, 0x4100_1000_u64);
    let mut m = Mem::default();
    m.set(t0, 0, 0x4800_0000 | BLOCK);
    m.set(t1, 3, 0x4860_0000 | BLOCK);
    let r = regs32(EAE | 2 | 2 << 16, t0, t1);
    assert_eq!(
        walk(&r, &m, 0xc060_1234),
        (Ok(0x4860_1234), vec![st(2, t1, 3, 0x4860_0000 | BLOCK)])
    );
    assert_eq!(
        walk(&r, &m, 0x0000_1000),
        (Ok(0x4800_1000), vec![st(2, t0, 0, 0x4800_0000 | BLOCK)])
    );
    assert_eq!(walk(&r, &m, 0x8000_0000), (Err(Fault::OutOfRange), vec![]));
    // EPD1 disables TTBR1's walks only.
    let r = regs32(EAE | 2 | 2 << 16 | 1 << 23, t0, t1);
    assert_eq!(
        walk(&r, &m, 0xc060_1234),
        (Err(Fault::WalkDisabled), vec![])
    );
    assert_eq!(walk(&r, &m, 0x0000_1000).0, Ok(0x4800_1000));
    // T0SZ = 1, T1SZ = 0: TTBR0 below 2 GiB, TTBR1 everything above, as a 32-bit
    // region from level 1 (VA[31:30] indexes it).
    let t1 = 0x4100_2040_u64;
    m.set(t1, 2, 0x4000_0000 | BLOCK);
    let r = regs32(EAE | 1, t0, t1);
    assert_eq!(
        walk(&r, &m, 0x8000_0100),
        (Ok(0x4000_0100), vec![st(1, t1, 2, 0x4000_0000 | BLOCK)])
    );
}

#[test]
fn lpae_faults_at_each_level() {
    let (l1, l2, l3) = (0x4100_0000_u64, 0x4100_1000_u64, 0x4100_2000_u64);
    let mut m = Mem::default();
    let r = regs32(EAE, l1, 0);
    let va = 0x0000_3000; // indices 0, 0, 3
    assert_eq!(
        walk(&r, &m, va),
        (Err(Fault::Translation { level: 1 }), vec![st(1, l1, 0, 0)])
    );
    m.set(l1, 0, l2 | TABLE);
    assert_eq!(
        walk(&r, &m, va),
        (
            Err(Fault::Translation { level: 2 }),
            vec![st(1, l1, 0, l2 | TABLE), st(2, l2, 0, 0)]
        )
    );
    m.set(l2, 0, l3 | TABLE);
    assert_eq!(
        walk(&r, &m, va),
        (
            Err(Fault::Translation { level: 3 }),
            vec![
                st(1, l1, 0, l2 | TABLE),
                st(2, l2, 0, l3 | TABLE),
                st(3, l3, 3, 0)
            ]
        )
    );
    // Reserved 0b01 at level 3.
    m.set(l3, 3, 0x4800_0000 | BLOCK);
    assert_eq!(walk(&r, &m, va).0, Err(Fault::Translation { level: 3 }));
    // Descriptor bits [47:40] set: address size faults (the output is 40 bits).
    let far = 0x100_0000_0000_u64;
    m.set(l3, 3, far | 0x4800_0000 | PAGE);
    assert_eq!(walk(&r, &m, va).0, Err(Fault::AddressSize { level: 3 }));
    m.set(l2, 0, far | l3 | TABLE);
    assert_eq!(
        walk(&r, &m, va),
        (
            Err(Fault::AddressSize { level: 2 }),
            vec![st(1, l1, 0, l2 | TABLE), st(2, l2, 0, far | l3 | TABLE)]
        )
    );
    // TTBR0 bits [47:40]: level 0, nothing read.
    assert_eq!(
        walk(&regs32(EAE, far | l1, 0), &m, va),
        (Err(Fault::AddressSize { level: 0 }), vec![])
    );
}

// ---- the rest ----

#[test]
fn step_kinds_of_long_descriptors() {
    let r = regs(TCR_4K, 0, 0);
    let kinds: Vec<_> = [
        st(0, 0, 0, 0x1000 | TABLE),
        st(1, 0, 0, 0x4000_0000 | BLOCK),
        st(3, 0, 0, 0x1000 | PAGE),
        st(3, 0, 0, 0x1000 | BLOCK),
        st(2, 0, 0, 0x1000 | 0b10),
    ]
    .iter()
    .map(|s| s.kind(&r))
    .collect();
    assert_eq!(kinds, ["table", "block", "page", "reserved", "invalid"]);
}

#[test]
fn faults_display() {
    assert_eq!(
        Fault::AddressSize { level: 2 }.to_string(),
        "address size fault at level 2"
    );
    assert_eq!(
        Fault::Translation { level: -1 }.to_string(),
        "translation fault at level -1"
    );
}

/// Memory whose every word is noise (now and then not RAM), for the no-panic test:
/// mostly valid descriptors, often with addresses small enough to keep walking.
struct Noise(u64);
impl GuestMemory for Noise {
    fn read_u64(&self, ipa: u64) -> Option<u64> {
        let h = mix(ipa ^ self.0);
        match h & 0xf {
            0 => None,
            1 | 2 => Some(h >> 4), // often invalid
            3..=5 => Some(mix(h) | 1),
            _ => Some(mix(h) & (0xfff0_0000_0000_0fff | mask(40)) | 1),
        }
    }
}

fn mix(mut x: u64) -> u64 {
    // splitmix64's finaliser
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

#[test]
fn any_register_and_descriptor_values_only_return() {
    let mut seed = 0x0123_4567_89ab_cdef_u64;
    let mut next = || {
        seed = mix(seed);
        seed
    };
    for i in 0..300_000u32 {
        let aarch32 = i % 3 == 0;
        let tcr = match i % 4 {
            // Often TnSZ in 12..=48, valid granules and no EPDn, so that walks go deep.
            0..=2 => {
                let sizes = (12 + next() % 37) | (12 + next() % 37) << 16;
                let granules =
                    [0, 1, 2][(next() % 3) as usize] << 14 | [1, 2, 3][(next() % 3) as usize] << 30;
                let keep = !(0x3f | 0x3f << 16 | 1 << 7 | 1 << 23 | 3 << 14 | 3 << 30);
                (next() & keep) | sizes | granules
            }
            _ => next(),
        };
        let r = Regs {
            sctlr: next() | u64::from(i % 8 != 0),
            tcr,
            ttbr0: next() >> (i % 32),
            ttbr1: next() >> (i % 32),
            aarch32,
        };
        // Mostly addresses inside a region: 32-bit ones for AArch32, sign-extended
        // from a random width for AArch64; now and then anything.
        let bits = 12 + (next() % 41) as u32;
        let va = match (i % 5, aarch32) {
            (0, _) => next(),
            (_, true) => next() & 0xffff_ffff,
            _ if next() & 1 == 1 => next() | !mask(bits),
            _ => next() & mask(bits),
        };
        let mem = Noise(next());
        let mut levels = Vec::new();
        let res = translate(&r, &mem, va, &mut |s| levels.push(s.level));
        assert!(levels.len() <= 5);
        assert!(levels.windows(2).all(|w| w[1] == w[0] + 1));
        assert!(levels.iter().all(|l| (-1..=3).contains(l)));
        if let Ok(ipa) = res {
            if !r.mmu_on() {
                assert_eq!(ipa, va);
            } else if r.aarch32 {
                assert!(ipa < 1 << 40, "{r:x?} {va:#x} -> {ipa:#x}");
            } else {
                assert!(ipa < 1 << 52, "{r:x?} {va:#x} -> {ipa:#x}");
            }
        }
    }
}
