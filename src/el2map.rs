//! What the hypervisor's own identity map (EL2 stage 1, `arch::mmu`) maps as
//! normal memory: every RAM bank of the device tree, wherever it lies (above
//! 4 GiB, several banks), and also the hypervisor's image and the DTB when no
//! bank covers them. A boot loader may put the DTB anywhere (the protocol only
//! asks for 8-byte alignment), a firmware's memory node may leave out the
//! region it loaded things into, and Debian's raw Raspberry Pi DTB even has a
//! zero-sized memory node: the hypervisor must still read its DTB and run its
//! own code once the MMU is on.
#![forbid(unsafe_code)]

use crate::addr::{PhysAddr, Range};

/// Page granule of the map.
const PAGE: u64 = 0x1000;

/// The `(start, size)` ranges to map as normal memory, in a stable order:
/// the banks as they are, then each of `extra` (the image, the DTB) rounded
/// out to pages if no bank contains it whole.
pub fn normal_ranges(
    banks: &[Range<PhysAddr>],
    extra: &[Range<PhysAddr>],
) -> heapless::Vec<(u64, u64), 16> {
    let mut out: heapless::Vec<(u64, u64), 16> = heapless::Vec::new();
    for b in banks.iter().filter(|b| b.size > 0) {
        let _ = out.push((b.start.0, b.size));
    }
    for e in extra.iter().filter(|e| e.size > 0) {
        let covered = banks.iter().any(|b| b.contains_range(e.start, e.size));
        if covered {
            continue;
        }
        let start = e.start.0 & !(PAGE - 1);
        let Some(end) = e.end().0.checked_add(PAGE - 1).map(|x| x & !(PAGE - 1)) else {
            continue;
        };
        let _ = out.push((start, end - start));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(a: u64, s: u64) -> Range<PhysAddr> {
        Range::new(PhysAddr(a), s)
    }

    #[test]
    fn banks_above_4_gib_and_several_banks_are_mapped_as_they_are() {
        // A Raspberry Pi 4 with 8 GiB: three banks.
        let banks = [
            r(0, 0x3b40_0000),
            r(0x4000_0000, 0xbc00_0000),
            r(0x1_0000_0000, 0x1_0000_0000),
        ];
        let m = normal_ranges(&banks, &[r(0x20_0000, 0x80_0000), r(0x2eff_2b00, 0xc000)]);
        assert_eq!(
            m.as_slice(),
            &[
                (0, 0x3b40_0000),
                (0x4000_0000, 0xbc00_0000),
                (0x1_0000_0000, 0x1_0000_0000)
            ]
        );
    }

    #[test]
    fn a_dtb_outside_every_bank_is_mapped_by_itself() {
        let banks = [r(0x4000_0000, 0x4000_0000)];
        let m = normal_ranges(
            &banks,
            &[r(0x4020_0000, 0x100_0000), r(0x3ff0_0abc, 0x2000)],
        );
        assert_eq!(
            m.as_slice(),
            &[(0x4000_0000, 0x4000_0000), (0x3ff0_0000, 0x3000)]
        );
    }

    #[test]
    fn with_no_bank_the_image_and_dtb_are_still_mapped() {
        let m = normal_ranges(
            &[r(0, 0)],
            &[r(0x20_0000, 0xa0_0000), r(0x800_0000, 0x6b20)],
        );
        assert_eq!(
            m.as_slice(),
            &[(0x20_0000, 0xa0_0000), (0x800_0000, 0x7000)]
        );
    }

    #[test]
    fn a_range_running_off_the_address_space_is_skipped() {
        let m = normal_ranges(&[], &[r(u64::MAX - 0x10, 0x10)]);
        assert!(m.is_empty());
    }
}
