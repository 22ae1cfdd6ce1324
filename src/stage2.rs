//! Stage-2 translation tables of a VM, built with `aarch64-paging`'s stage-2 regime.
//!
//! Guest RAM is mapped normal write-back read/write; a passed-through device page is
//! mapped device-nGnRE; emulated devices are left unmapped so accesses fault to EL2.
//! The IPA space is 40 bits (T0SZ = 24, 1 TiB), walked from a level-0 root (VTCR.SL0
//! = 2; `aarch64-paging` builds no concatenated level-1 roots): 40 bits is the
//! smallest PARange value (ID_AA64MMFR0_EL1) a guest can be told, so every IPA a guest
//! may use can be mapped. The VMID is ours to put in VTTBR.
//!
//! Except on CPUs whose physical address range is under 44 bits (Cortex-A53:
//! 40 bits; the ZCU102 and the i.MX 8M Plus): with the 4K granule the architecture
//! reserves a level-0 stage-2 start for them (QEMU faults every access), and a
//! 40-bit IPA from level 1 needs two concatenated root tables. There the IPA space
//! is 39 bits (T0SZ = 25, 512 GiB) from one level-1 root ([`configure`]); RAM and
//! devices of such a machine lie below 512 GiB, and an access above is a stage-2
//! fault like any unmapped IPA.
#![forbid(unsafe_code)]

use crate::addr::{Ipa, PhysAddr};
use aarch64_paging::{
    descriptor::{PhysicalAddress, Stage2Attributes, VirtualAddress},
    idmap::IdTranslation,
    paging::{Constraints, MemoryRegion, Stage2},
    MapError, Mapping,
};

/// The IPA width stage 2 covers on CPUs with at least 44 physical address bits.
pub const IPA_BITS: u32 = 40;

/// The root level of new stage-2 tables: 0, or 1 on a CPU with fewer than 44
/// physical address bits ([`configure`]).
static ROOT_LEVEL: core::sync::atomic::AtomicUsize = core::sync::atomic::AtomicUsize::new(0);

/// Chooses the stage-2 geometry for a CPU whose ID_AA64MMFR0_EL1.PARange is
/// `pa_range`, before any table is made (every CPU passes the same value).
pub fn configure(pa_range: u64) {
    ROOT_LEVEL.store(root_level(pa_range), core::sync::atomic::Ordering::Relaxed);
}

/// Level 0 needs at least 44 physical address bits (PARange 0b0100) with 4K.
const fn root_level(pa_range: u64) -> usize {
    if pa_range >= 4 {
        0
    } else {
        1
    }
}

/// The IPA width of the configured geometry: 40 bits from level 0, 39 from level 1.
pub fn ipa_bits() -> u32 {
    match ROOT_LEVEL.load(core::sync::atomic::Ordering::Relaxed) {
        0 => IPA_BITS,
        _ => 39,
    }
}

pub const RAM: Stage2Attributes = Stage2Attributes::VALID
    .union(Stage2Attributes::MEMATTR_NORMAL_INNER_WB)
    .union(Stage2Attributes::MEMATTR_NORMAL_OUTER_WB)
    .union(Stage2Attributes::S2AP_ACCESS_RW)
    .union(Stage2Attributes::SH_INNER)
    .union(Stage2Attributes::ACCESS_FLAG);

/// Guest RAM no vCPU has touched yet ([`Stage2Tables::map_tracked`]): [`RAM`]
/// without the access flag, so the first access to each block faults to EL2,
/// which zeroes the block and sets the flag ([`Stage2Tables::touch`]). A clear
/// access flag therefore means "all zeros", and snapshots skip such blocks
/// without reading them.
pub const RAM_UNTOUCHED: Stage2Attributes = RAM.difference(Stage2Attributes::ACCESS_FLAG);

/// The largest block tracked RAM is mapped with: a first touch zeroes at most
/// this much, and a snapshot skips untouched RAM at this granularity.
pub const TRACK_BLOCK: u64 = 2 << 20;

/// One leaf (block or page) of the tables: the IPA range it maps, where to, and
/// whether its access flag is set.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Leaf {
    pub ipa: u64,
    pub size: u64,
    pub pa: PhysAddr,
    pub touched: bool,
}

pub const DEVICE: Stage2Attributes = Stage2Attributes::VALID
    .union(Stage2Attributes::MEMATTR_DEVICE_nGnRE)
    .union(Stage2Attributes::S2AP_ACCESS_RW)
    .union(Stage2Attributes::ACCESS_FLAG)
    .union(Stage2Attributes::XN);

/// A VM's stage-2 tables. The tables live in the hypervisor's identity-mapped heap,
/// so a table's address is its physical address (`IdTranslation`).
pub struct Stage2Tables {
    mapping: Mapping<IdTranslation<Stage2Attributes>, Stage2>,
}

impl Default for Stage2Tables {
    fn default() -> Self {
        Self::new()
    }
}

impl Stage2Tables {
    pub fn new() -> Self {
        Self {
            mapping: Mapping::new(
                IdTranslation::new(),
                ROOT_LEVEL.load(core::sync::atomic::Ordering::Relaxed),
                Stage2,
            ),
        }
    }

    /// Maps `[ipa, ipa + size)` to `[pa, pa + size)` with `attrs`.
    pub fn map(
        &mut self,
        ipa: Ipa,
        pa: PhysAddr,
        size: u64,
        attrs: Stage2Attributes,
    ) -> Result<(), MapError> {
        // The level-0 root could describe 48 bits; VTCR_EL2 only lets 40 (or 39) through.
        let end = ipa.0.checked_add(size).filter(|&e| e <= 1 << ipa_bits());
        let Some(end) = end else {
            return Err(MapError::AddressRange(VirtualAddress(ipa.0 as usize)));
        };
        let region = MemoryRegion::new(ipa.0 as usize, end as usize);
        self.mapping.map_range(
            &region,
            PhysicalAddress(pa.0 as usize),
            attrs,
            Constraints::empty(),
        )
    }

    /// Maps guest RAM `[ipa, ipa + size)` to `[pa, pa + size)` untouched
    /// ([`RAM_UNTOUCHED`]), in blocks of at most [`TRACK_BLOCK`].
    pub fn map_tracked(&mut self, ipa: Ipa, pa: PhysAddr, size: u64) -> Result<(), MapError> {
        let mut done = 0;
        while done < size {
            let at = ipa.0 + done;
            let n = (TRACK_BLOCK - at % TRACK_BLOCK).min(size - done);
            self.map(Ipa(at), pa.add(done), n, RAM_UNTOUCHED)?;
            done += n;
        }
        Ok(())
    }

    /// The valid leaf that maps `ipa`, if any.
    pub fn leaf(&self, ipa: Ipa) -> Option<Leaf> {
        self.leaf_and_attributes(ipa).map(|(leaf, _)| leaf)
    }

    /// The valid leaf that maps `ipa` and its attributes, by walking the tables.
    fn leaf_and_attributes(&self, ipa: Ipa) -> Option<(Leaf, Stage2Attributes)> {
        if ipa.0 >= 1 << ipa_bits() {
            return None;
        }
        let page = ipa.align_down(4096).0 as usize;
        let mut found = None;
        self.mapping
            .walk_range(
                &MemoryRegion::new(page, page + 4096),
                &mut |_region, desc, level| {
                    if desc.is_valid() && found.is_none() {
                        // A level-n block covers 2^(39 - 9n) bytes.
                        let size = 1u64 << (39 - 9 * level);
                        let flags = desc.flags();
                        let leaf = Leaf {
                            ipa: ipa.0 & !(size - 1),
                            size,
                            pa: PhysAddr(desc.output_address().0 as u64),
                            touched: flags.contains(Stage2Attributes::ACCESS_FLAG),
                        };
                        found = Some((leaf, flags));
                    }
                    Ok(())
                },
            )
            .ok()?;
        found
    }

    /// Sets the access flag of `leaf` (as [`Stage2Tables::leaf`] returned it): a
    /// vCPU may use it from now on without a fault. No TLB maintenance is needed:
    /// an entry whose access flag is clear is never held in a TLB.
    pub fn set_touched(&mut self, leaf: &Leaf) -> bool {
        let range = MemoryRegion::new(leaf.ipa as usize, (leaf.ipa + leaf.size) as usize);
        self.mapping
            .modify_range(&range, &|_, d| {
                if d.flags().contains(Stage2Attributes::VALID) {
                    d.modify_flags(Stage2Attributes::ACCESS_FLAG, Stage2Attributes::empty())
                } else {
                    Ok(())
                }
            })
            .is_ok()
    }

    /// The physical address an IPA maps to, and its attributes, by walking the tables.
    pub fn translate(&self, ipa: Ipa) -> Option<(PhysAddr, Stage2Attributes)> {
        let (leaf, flags) = self.leaf_and_attributes(ipa)?;
        // The leaf's output address is its first byte's: the offset is the IPA's
        // low bits.
        Some((leaf.pa.add(ipa.0 - leaf.ipa), flags))
    }

    /// The VTTBR_EL2 value for this VM: root table address and VMID.
    pub fn vttbr(&self, vmid: u8) -> u64 {
        self.mapping.root_address().0 as u64 | (vmid as u64) << 48
    }
}

/// VTCR_EL2 for these tables, given ID_AA64MMFR0_EL1.PARange.
pub const fn vtcr(pa_range: u64) -> u64 {
    let ps = if pa_range > 5 { 5 } else { pa_range };
    // RES1 bit 31; PS; TG0 4K; SH0 inner; ORGN0/IRGN0 write-back write-allocate;
    // SL0 = 2 (start at level 0), T0SZ = 64 - 40; or SL0 = 1 (level 1), T0SZ = 64 - 39.
    let (sl0, t0sz) = match root_level(pa_range) {
        0 => (2, 64 - IPA_BITS as u64),
        _ => (1, 64 - 39),
    };
    (1 << 31) | (ps << 16) | (3 << 12) | (1 << 10) | (1 << 8) | (sl0 << 6) | t0sz
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpus_under_44_pa_bits_start_stage_2_at_level_1_with_39_bits() {
        // Cortex-A53 (PARange 0b0010, 40 bits): SL0 = 1, T0SZ = 25.
        assert_eq!(vtcr(2) & 0xff, 1 << 6 | 25);
        assert_eq!((vtcr(2) >> 16) & 7, 2);
        // Cortex-A72 (0b0100, 44 bits) and up: SL0 = 2, T0SZ = 24.
        assert_eq!(vtcr(4) & 0xff, 2 << 6 | 24);
        assert_eq!(vtcr(6) & 0xff, 2 << 6 | 24);
        assert_eq!((vtcr(6) >> 16) & 7, 5);
        assert_eq!((root_level(2), root_level(3), root_level(4)), (1, 1, 0));
    }

    #[test]
    fn maps_ram_and_devices_and_leaves_the_rest_unmapped() {
        let mut s2 = Stage2Tables::new();
        s2.map(Ipa(0x4000_0000), PhysAddr(0x4800_0000), 0x40_0000, RAM)
            .unwrap();
        s2.map(Ipa(0x4040_0000), PhysAddr(0x4100_0000), 0x20_0000, RAM)
            .unwrap();
        s2.map(Ipa(0x0800_0000), PhysAddr(0x0804_0000), 0x1000, DEVICE)
            .unwrap();

        let (pa, attrs) = s2.translate(Ipa(0x4000_1234)).unwrap();
        assert_eq!(pa, PhysAddr(0x4800_1234));
        assert!(attrs.contains(Stage2Attributes::S2AP_ACCESS_RW));
        assert_eq!(
            s2.translate(Ipa(0x4040_0008)).unwrap().0,
            PhysAddr(0x4100_0008)
        );
        let (pa, attrs) = s2.translate(Ipa(0x0800_0010)).unwrap();
        assert_eq!(pa, PhysAddr(0x0804_0010));
        assert!(attrs.contains(Stage2Attributes::XN));
        assert_eq!(
            s2.translate(Ipa(0x0900_0000)),
            None,
            "emulated UART stays unmapped"
        );
        assert_eq!(s2.translate(Ipa(0x4060_0000)), None);
    }

    #[test]
    fn rejects_ipas_beyond_the_ipa_space() {
        let mut s2 = Stage2Tables::new();
        assert!(s2
            .map(Ipa(1 << IPA_BITS), PhysAddr(0), 0x1000, RAM)
            .is_err());
        assert!(s2
            .map(Ipa((1 << IPA_BITS) - 0x1000), PhysAddr(0), 0x2000, RAM)
            .is_err());
        assert!(s2
            .map(Ipa(u64::MAX - 0xfff), PhysAddr(0), 0x1000, RAM)
            .is_err());
        // The last page of the IPA space, and a 1 GiB block, map.
        s2.map(
            Ipa((1 << IPA_BITS) - 0x1000),
            PhysAddr(0x8000_0000),
            0x1000,
            RAM,
        )
        .unwrap();
        assert_eq!(
            s2.translate(Ipa((1 << IPA_BITS) - 8)).unwrap().0,
            PhysAddr(0x8000_0ff8)
        );
        s2.map(Ipa(0x80_0000_0000), PhysAddr(0x4000_0000), 1 << 30, RAM)
            .unwrap();
        assert_eq!(
            s2.translate(Ipa(0x80_1234_5678)).unwrap().0,
            PhysAddr(0x5234_5678)
        );
    }

    #[test]
    fn tracked_ram_is_mapped_untouched_in_blocks_of_at_most_2_mib() {
        let mut s2 = Stage2Tables::new();
        // 1 GiB + 8 KiB at a 1 GiB boundary: no 1 GiB block, pages at the end.
        s2.map_tracked(Ipa(0x4000_0000), PhysAddr(0x8000_0000), (1 << 30) + 0x2000)
            .unwrap();
        let block = s2.leaf(Ipa(0x4012_3456)).unwrap();
        assert_eq!(
            block,
            Leaf {
                ipa: 0x4000_0000,
                size: TRACK_BLOCK,
                pa: PhysAddr(0x8000_0000),
                touched: false
            }
        );
        let last = s2.leaf(Ipa(0x8000_1008)).unwrap();
        assert_eq!(
            (last.ipa, last.size, last.touched),
            (0x8000_1000, 0x1000, false)
        );
        assert_eq!(last.pa, PhysAddr(0xc000_1000));
        assert_eq!(s2.leaf(Ipa(0x8000_2000)), None);
        assert_eq!(s2.leaf(Ipa(1 << IPA_BITS)), None);

        // Touching one block sets its flag only; the translation is unchanged.
        let b = s2.leaf(Ipa(0x4020_0000)).unwrap();
        assert!(s2.set_touched(&b));
        assert!(s2.leaf(Ipa(0x403f_ffff)).unwrap().touched);
        assert!(!s2.leaf(Ipa(0x401f_ffff)).unwrap().touched);
        assert!(!s2.leaf(Ipa(0x4040_0000)).unwrap().touched);
        let (pa, attrs) = s2.translate(Ipa(0x4020_0010)).unwrap();
        assert_eq!(pa, PhysAddr(0x8020_0010));
        assert_eq!(attrs & !Stage2Attributes::TABLE_OR_PAGE, RAM);
        let (_, attrs) = s2.translate(Ipa(0x4040_0010)).unwrap();
        assert_eq!(attrs & !Stage2Attributes::TABLE_OR_PAGE, RAM_UNTOUCHED);
        // A page leaf too, and RAM mapped the usual way counts as touched.
        assert!(s2.set_touched(&last));
        assert!(s2.leaf(Ipa(0x8000_1000)).unwrap().touched);
        s2.map(Ipa(0x1_0000_0000), PhysAddr(0x1_0000_0000), 0x20_0000, RAM)
            .unwrap();
        assert!(s2.leaf(Ipa(0x1_0000_0000)).unwrap().touched);
    }

    #[test]
    fn vttbr_carries_the_vmid_and_vtcr_the_layout() {
        let s2 = Stage2Tables::new();
        let v = s2.vttbr(7);
        assert_eq!(v >> 48, 7);
        assert_eq!(v & 0xfff, 0, "root table is page aligned");
        // A 44-bit PA (PARange 0b0100): level-0 start, 40-bit IPA.
        let v = vtcr(4);
        assert_eq!(v & 0x3f, 24);
        assert_eq!((v >> 6) & 3, 2);
        assert_eq!((v >> 16) & 7, 4);
        assert_eq!(vtcr(9) >> 16 & 7, 5);
    }
}
