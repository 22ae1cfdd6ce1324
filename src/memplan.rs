//! Carving guest RAM out of host RAM (DESIGN.md section 4, "Sizing").
//!
//! Free memory is the DTB's RAM banks minus everything that is taken: the
//! hypervisor's image, the host DTB, the guest-loader modules, `/memreserve/` and
//! `/reserved-memory`. Each VM gets an explicit size (Xen dom0less `memory`) or an
//! equal share of what is left, in 2 MiB-aligned chunks: its IPA space is contiguous
//! from the host's RAM base (so programs linked for the board's RAM run unchanged),
//! and stage 2 maps each chunk wherever it physically lies.
//!
//! A VM with a device that can DMA (passthrough, DESIGN.md section 9) must see
//! its RAM where it physically is, because the device is programmed with guest
//! addresses and sees physical ones: [`plan_direct`] maps such a VM's RAM 1:1
//! (IPA = PA, Xen's `direct-map`). Its RAM is then as fragmented as the free
//! memory: the largest range is the one its kernel is loaded into
//! ([`GuestRam::ipa`]), the others are [`GuestRam::extra`].
#![forbid(unsafe_code)]

use crate::addr::{Ipa, PhysAddr, Range};
use alloc::vec::Vec;

/// Granularity of guest RAM: a stage-2 level-2 block.
pub const CHUNK: u64 = 2 << 20;

/// A VM's RAM: a contiguous IPA range backed by physical chunks in IPA order.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct GuestRam {
    pub ipa: Range<Ipa>,
    pub chunks: Vec<Range<PhysAddr>>,
    /// Further RAM of a direct-mapped VM, each range at IPA = PA, in address
    /// order (empty for every other VM).
    pub extra: Vec<Range<PhysAddr>>,
}

impl GuestRam {
    /// The physical address behind `ipa`, and how many bytes are contiguous from it.
    pub fn translate(&self, ipa: Ipa) -> Option<(PhysAddr, u64)> {
        if !self.ipa.contains(ipa) {
            let r = self.extra.iter().find(|r| r.contains(PhysAddr(ipa.0)))?;
            return Some((PhysAddr(ipa.0), r.end().0 - ipa.0));
        }
        let mut offset = ipa.0 - self.ipa.start.0;
        for c in &self.chunks {
            if offset < c.size {
                return Some((c.start.add(offset), c.size - offset));
            }
            offset -= c.size;
        }
        None
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum PlanError {
    NoRam,
    NoVms,
    /// The VMs asked for more than there is (`needed` and `free` in bytes).
    OutOfMemory {
        needed: u64,
        free: u64,
    },
    /// An explicit size is zero or not a multiple of 2 MiB.
    BadSize {
        vm: usize,
        size: u64,
    },
}

/// Free 2 MiB-aligned ranges of `banks` once `taken` is removed, in address order.
pub fn free_ranges(banks: &[Range<PhysAddr>], taken: &[Range<PhysAddr>]) -> Vec<Range<PhysAddr>> {
    let mut free: Vec<(u64, u64)> = banks
        .iter()
        .map(|b| (b.start.align_up(CHUNK).0, b.end().align_down(CHUNK).0))
        .filter(|(s, e)| s < e)
        .collect();
    for t in taken {
        let (ts, te) = (t.start.align_down(CHUNK).0, t.end().align_up(CHUNK).0);
        let mut next = Vec::new();
        for (s, e) in free {
            if te <= s || ts >= e {
                next.push((s, e));
                continue;
            }
            if s < ts {
                next.push((s, ts));
            }
            if te < e {
                next.push((te, e));
            }
        }
        free = next;
    }
    free.sort_unstable();
    free.into_iter()
        .map(|(s, e)| Range::new(PhysAddr(s), e - s))
        .collect()
}

/// Gives each VM its RAM. `requests[i]` is VM i's explicit size, or `None` for an
/// equal share of what the explicit ones leave.
pub fn plan(
    banks: &[Range<PhysAddr>],
    taken: &[Range<PhysAddr>],
    requests: &[Option<u64>],
) -> Result<Vec<GuestRam>, PlanError> {
    let first = banks
        .iter()
        .map(|b| b.start)
        .min()
        .ok_or(PlanError::NoRam)?;
    if requests.is_empty() {
        return Err(PlanError::NoVms);
    }
    for (vm, r) in requests.iter().enumerate() {
        if let Some(size) = *r {
            if size == 0 || size % CHUNK != 0 {
                return Err(PlanError::BadSize { vm, size });
            }
        }
    }
    let mut free = free_ranges(banks, taken);
    let total: u64 = free.iter().map(|r| r.size).sum();
    let explicit: u64 = requests.iter().flatten().sum();
    let implicit = requests.iter().filter(|r| r.is_none()).count() as u64;
    if explicit > total {
        return Err(PlanError::OutOfMemory {
            needed: explicit,
            free: total,
        });
    }
    let share = if implicit == 0 {
        0
    } else {
        (total - explicit) / implicit / CHUNK * CHUNK
    };
    if implicit > 0 && share == 0 {
        return Err(PlanError::OutOfMemory {
            needed: explicit + implicit * CHUNK,
            free: total,
        });
    }
    let ipa_base = Ipa(first.align_down(CHUNK).0);
    let mut out = Vec::new();
    for r in requests {
        let size = r.unwrap_or(share);
        let mut left = size;
        let mut chunks = Vec::new();
        while left > 0 {
            // Address order: the first VM gets the lowest memory.
            let f = free
                .first_mut()
                .expect("sizes were checked against the total");
            let take = left.min(f.size);
            chunks.push(Range::new(f.start, take));
            f.start = f.start.add(take);
            f.size -= take;
            if f.size == 0 {
                free.remove(0);
            }
            left -= take;
        }
        out.push(GuestRam {
            ipa: Range::new(ipa_base, size),
            chunks,
            extra: Vec::new(),
        });
    }
    Ok(out)
}

impl GuestRam {
    /// Every RAM range as the guest sees it, in address order.
    pub fn ranges(&self) -> Vec<Range<Ipa>> {
        let mut v: Vec<Range<Ipa>> = self
            .extra
            .iter()
            .map(|r| Range::new(Ipa(r.start.0), r.size))
            .collect();
        v.push(self.ipa);
        v.sort_unstable_by_key(|r| r.start);
        v
    }

    /// Total RAM in bytes.
    pub fn size(&self) -> u64 {
        self.ipa.size + self.extra.iter().map(|r| r.size).sum::<u64>()
    }

    /// Whether the RAM is mapped 1:1 (IPA = PA).
    pub fn is_direct(&self) -> bool {
        self.chunks.len() == 1 && self.chunks[0].start.0 == self.ipa.start.0
    }
}

/// [`plan`], except that every VM with `direct[i]` gets its RAM mapped 1:1:
/// the same share, taken in address order like everyone's, but each range
/// at IPA = PA. The largest range (the lowest of equals) is the one the
/// kernel goes into; the rest are [`GuestRam::extra`].
pub fn plan_direct(
    banks: &[Range<PhysAddr>],
    taken: &[Range<PhysAddr>],
    requests: &[Option<u64>],
    direct: &[bool],
) -> Result<Vec<GuestRam>, PlanError> {
    let mut out = plan(banks, taken, requests)?;
    for (ram, _) in out.iter_mut().zip(direct).filter(|(_, &d)| d) {
        let mut ranges: Vec<Range<PhysAddr>> = Vec::new();
        for c in &ram.chunks {
            match ranges.last_mut() {
                Some(last) if last.end() == c.start => last.size += c.size,
                _ => ranges.push(*c),
            }
        }
        ranges.sort_unstable_by_key(|r| r.start);
        let Some(main) = ranges
            .iter()
            .enumerate()
            .max_by_key(|(i, r)| (r.size, core::cmp::Reverse(*i)))
            .map(|(i, _)| i)
        else {
            continue;
        };
        let main = ranges.remove(main);
        *ram = GuestRam {
            ipa: Range::new(Ipa(main.start.0), main.size),
            chunks: alloc::vec![main],
            extra: ranges,
        };
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1 << 20;

    fn r(start: u64, size: u64) -> Range<PhysAddr> {
        Range::new(PhysAddr(start), size)
    }

    #[test]
    fn one_vm_gets_all_free_memory_around_the_hypervisor_and_modules() {
        // QEMU virt, 1 GiB: hypervisor at 0x4020_0000 (10 MiB), DTB at 0x4000_0000,
        // a kernel module at 0x5000_0000.
        let banks = [r(0x4000_0000, 1024 * MIB)];
        let taken = [
            r(0x4020_0000, 10 * MIB),
            r(0x4000_0000, 0x10_0000),
            r(0x5000_0000, 3 * MIB),
        ];
        let p = plan(&banks, &taken, &[None]).unwrap();
        assert_eq!(p.len(), 1);
        let vm = &p[0];
        assert_eq!(vm.ipa.start, Ipa(0x4000_0000));
        // 1024 - 2 (DTB's chunk) - 10 (hypervisor) - 4 (module, rounded up)
        assert_eq!(vm.ipa.size, (1024 - 2 - 10 - 4) * MIB);
        assert_eq!(vm.chunks.iter().map(|c| c.size).sum::<u64>(), vm.ipa.size);
        for c in &vm.chunks {
            for t in &taken {
                assert!(!c.overlaps(t), "{c:?} overlaps {t:?}");
            }
            assert!(c.start.is_aligned(CHUNK));
        }
    }

    #[test]
    fn two_vms_share_equally_and_never_overlap() {
        let banks = [r(0x4000_0000, 1024 * MIB)];
        let p = plan(&banks, &[r(0x4000_0000, 16 * MIB)], &[None, None]).unwrap();
        assert_eq!(p[0].ipa.size, p[1].ipa.size);
        assert_eq!(p[0].ipa.size, 504 * MIB);
        for a in &p[0].chunks {
            for b in &p[1].chunks {
                assert!(!a.overlaps(b));
            }
        }
    }

    #[test]
    fn explicit_sizes_come_first_and_the_rest_is_shared() {
        let banks = [r(0, 512 * MIB)];
        let p = plan(&banks, &[], &[Some(64 * MIB), None, None]).unwrap();
        assert_eq!(p[0].ipa.size, 64 * MIB);
        assert_eq!(p[1].ipa.size, 224 * MIB);
        assert_eq!(p[2].ipa.size, 224 * MIB);
    }

    #[test]
    fn refuses_impossible_plans() {
        let banks = [r(0, 64 * MIB)];
        assert_eq!(
            plan(&banks, &[], &[Some(128 * MIB)]),
            Err(PlanError::OutOfMemory {
                needed: 128 * MIB,
                free: 64 * MIB
            })
        );
        assert_eq!(
            plan(&banks, &[], &[Some(MIB)]),
            Err(PlanError::BadSize { vm: 0, size: MIB })
        );
        assert_eq!(plan(&[], &[], &[None]), Err(PlanError::NoRam));
        assert_eq!(plan(&banks, &[], &[]), Err(PlanError::NoVms));
        assert!(matches!(
            plan(&banks, &[r(0, 64 * MIB)], &[None]),
            Err(PlanError::OutOfMemory { .. })
        ));
    }

    #[test]
    fn translate_walks_the_chunks_in_ipa_order() {
        let vm = GuestRam {
            ipa: Range::new(Ipa(0x4000_0000), 4 * MIB),
            chunks: vec![r(0x4800_0000, 2 * MIB), r(0x4400_0000, 2 * MIB)],
            extra: Vec::new(),
        };
        assert_eq!(
            vm.translate(Ipa(0x4000_1000)),
            Some((PhysAddr(0x4800_1000), 2 * MIB - 0x1000))
        );
        assert_eq!(
            vm.translate(Ipa(0x4020_0010)),
            Some((PhysAddr(0x4400_0010), 2 * MIB - 0x10))
        );
        assert_eq!(vm.translate(Ipa(0x4040_0000)), None);
        assert_eq!(vm.translate(Ipa(0x3fff_ffff)), None);
    }

    #[test]
    fn direct_mapped_vms_see_their_ram_where_it_is() {
        // QEMU virt, 1 GiB: the hypervisor at 0x4020_0000, the host DTB at
        // 0x4800_0000, modules at 0x5000_0000: free RAM is four ranges.
        let banks = [r(0x4000_0000, 1024 * MIB)];
        let taken = [
            r(0x4020_0000, 10 * MIB),
            r(0x4800_0000, 0x10_0000),
            r(0x5000_0000, 30 * MIB),
        ];
        let p = plan_direct(&banks, &taken, &[None], &[true]).unwrap();
        let vm = &p[0];
        assert!(vm.is_direct());
        // The largest range holds the kernel; IPA = PA everywhere.
        assert_eq!(
            vm.ipa,
            Range::new(Ipa(0x51e0_0000), 0x8000_0000 - 0x51e0_0000)
        );
        assert_eq!(
            vm.extra,
            [
                r(0x4000_0000, 2 * MIB),
                r(0x40c0_0000, 0x4800_0000 - 0x40c0_0000),
                r(0x4820_0000, 0x5000_0000 - 0x4820_0000),
            ]
        );
        let all = plan(&banks, &taken, &[None]).unwrap();
        assert_eq!(vm.size(), all[0].ipa.size, "the same share as without 1:1");
        let ranges = vm.ranges();
        assert_eq!(ranges.len(), 4);
        assert!(ranges.windows(2).all(|w| w[0].start < w[1].start));
        for x in &ranges {
            assert_eq!(vm.translate(x.start), Some((PhysAddr(x.start.0), x.size)));
            for t in &taken {
                assert!(!Range::new(PhysAddr(x.start.0), x.size).overlaps(t));
            }
        }
        assert_eq!(
            vm.translate(Ipa(0x4820_0010)).unwrap().0,
            PhysAddr(0x4820_0010)
        );
        assert_eq!(
            vm.translate(Ipa(0x4800_0000)),
            None,
            "the host DTB is not its"
        );

        // Two VMs, one 1:1: the other keeps the usual layout, and they never meet.
        let p = plan_direct(&banks, &taken, &[None, None], &[false, true]).unwrap();
        assert!(!p[0].is_direct() && p[1].is_direct());
        assert_eq!(p[0].ipa.start, Ipa(0x4000_0000));
        assert!(p[0].extra.is_empty());
        for a in &p[0].chunks {
            for b in p[1].chunks.iter().chain(&p[1].extra) {
                assert!(!a.overlaps(b));
            }
        }
    }
}
