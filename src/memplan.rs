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
//! A VM whose explicit size is wrong or does not fit is refused alone
//! ([`plan`] gives one result per VM): explicit sizes are served in VM order
//! while they fit, and whatever they leave is shared by the others.
#![forbid(unsafe_code)]

use crate::addr::{Ipa, PhysAddr, Range};
use alloc::vec::Vec;
use core::fmt;

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
    /// The device tree lists no RAM (no VM can start).
    NoRam,
    /// A VM asked for more than is left (`needed` and `free` in bytes).
    OutOfMemory { needed: u64, free: u64 },
    /// An explicit size is zero or not a multiple of 2 MiB.
    BadSize { size: u64 },
}

impl fmt::Display for PlanError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const MIB: u64 = 1 << 20;
        match *self {
            Self::NoRam => write!(f, "the device tree lists no RAM"),
            Self::OutOfMemory { needed, free } => write!(
                f,
                "it needs {} MiB of RAM and only {} MiB is left: ask for less (mem= in a bundle's config, memory in a dom0less node) or give the machine more",
                needed.div_ceil(MIB),
                free / MIB
            ),
            Self::BadSize { size } => write!(
                f,
                "it asks for {size} bytes of RAM: a VM's RAM must be a non-zero multiple of 2 MiB"
            ),
        }
    }
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

/// Gives each VM its RAM: one result per entry of `requests`, in order.
/// `requests[i]` is VM i's explicit size, or `None` for an equal share of what
/// the explicit ones leave. Only a machine without RAM fails as a whole.
pub fn plan(
    banks: &[Range<PhysAddr>],
    taken: &[Range<PhysAddr>],
    requests: &[Option<u64>],
) -> Result<Vec<Result<GuestRam, PlanError>>, PlanError> {
    let first = banks
        .iter()
        .map(|b| b.start)
        .min()
        .ok_or(PlanError::NoRam)?;
    let mut free = free_ranges(banks, taken);
    let mut left: u64 = free.iter().map(|r| r.size).sum();
    // Explicit sizes first, in VM order, while they fit.
    let mut sizes: Vec<Result<Option<u64>, PlanError>> = requests
        .iter()
        .map(|r| match *r {
            None => Ok(None),
            Some(size) if size == 0 || size % CHUNK != 0 => Err(PlanError::BadSize { size }),
            Some(size) if size > left => Err(PlanError::OutOfMemory {
                needed: size,
                free: left,
            }),
            Some(size) => {
                left -= size;
                Ok(Some(size))
            }
        })
        .collect();
    // The rest in equal shares.
    let implicit = sizes.iter().filter(|s| matches!(s, Ok(None))).count() as u64;
    let share = left.checked_div(implicit).unwrap_or(0) / CHUNK * CHUNK;
    for s in sizes.iter_mut().filter(|s| matches!(s, Ok(None))) {
        *s = if share == 0 {
            Err(PlanError::OutOfMemory {
                needed: CHUNK,
                free: left / implicit.max(1),
            })
        } else {
            Ok(Some(share))
        };
    }
    let ipa_base = Ipa(first.align_down(CHUNK).0);
    let out = sizes
        .into_iter()
        .map(|size| {
            let size = size?.unwrap_or(0);
            let mut left = size;
            let mut chunks = Vec::new();
            while left > 0 {
                // Address order: the first VM gets the lowest memory. The sizes
                // were checked against the total, so `free` cannot run out.
                let Some(f) = free.first_mut() else {
                    return Err(PlanError::OutOfMemory {
                        needed: size,
                        free: size - left,
                    });
                };
                let take = left.min(f.size);
                chunks.push(Range::new(f.start, take));
                f.start = f.start.add(take);
                f.size -= take;
                if f.size == 0 {
                    free.remove(0);
                }
                left -= take;
            }
            Ok(GuestRam {
                ipa: Range::new(ipa_base, size),
                chunks,
                extra: Vec::new(),
            })
        })
        .collect();
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
) -> Result<Vec<Result<GuestRam, PlanError>>, PlanError> {
    let mut out = plan(banks, taken, requests)?;
    for (ram, _) in out.iter_mut().zip(direct).filter(|(_, &d)| d) {
        let Ok(ram) = ram else { continue };
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
        let vm = p[0].as_ref().unwrap();
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
        let p: Vec<GuestRam> = plan(&banks, &[r(0x4000_0000, 16 * MIB)], &[None, None])
            .unwrap()
            .into_iter()
            .map(Result::unwrap)
            .collect();
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
        let size = |i: usize| p[i].as_ref().unwrap().ipa.size;
        assert_eq!(size(0), 64 * MIB);
        assert_eq!(size(1), 224 * MIB);
        assert_eq!(size(2), 224 * MIB);
    }

    #[test]
    fn a_vm_that_cannot_have_its_memory_is_refused_alone() {
        let banks = [r(0, 64 * MIB)];
        // Too much, then a fitting one: the first is refused, the second served.
        let p = plan(&banks, &[], &[Some(128 * MIB), Some(32 * MIB), None]).unwrap();
        assert_eq!(
            p[0],
            Err(PlanError::OutOfMemory {
                needed: 128 * MIB,
                free: 64 * MIB
            })
        );
        assert_eq!(
            p[0].as_ref().unwrap_err().to_string(),
            "it needs 128 MiB of RAM and only 64 MiB is left: ask for less (mem= in a bundle's config, memory in a dom0less node) or give the machine more"
        );
        assert_eq!(p[1].as_ref().unwrap().ipa.size, 32 * MIB);
        assert_eq!(p[2].as_ref().unwrap().ipa.size, 32 * MIB);
        // A bad size.
        let p = plan(&banks, &[], &[Some(MIB), None]).unwrap();
        assert_eq!(p[0], Err(PlanError::BadSize { size: MIB }));
        assert_eq!(
            p[0].as_ref().unwrap_err().to_string(),
            "it asks for 1048576 bytes of RAM: a VM's RAM must be a non-zero multiple of 2 MiB"
        );
        assert_eq!(p[1].as_ref().unwrap().ipa.size, 64 * MIB);
        // Explicit sizes take everything: the others get nothing and are refused.
        let p = plan(&banks, &[], &[Some(64 * MIB), None]).unwrap();
        assert!(p[0].is_ok());
        assert_eq!(
            p[1],
            Err(PlanError::OutOfMemory {
                needed: CHUNK,
                free: 0
            })
        );
        // No RAM at all fails the plan; no free RAM refuses every VM.
        assert_eq!(plan(&[], &[], &[None]), Err(PlanError::NoRam));
        assert!(plan(&banks, &[], &[]).unwrap().is_empty());
        let p = plan(&banks, &[r(0, 64 * MIB)], &[None]).unwrap();
        assert!(matches!(p[0], Err(PlanError::OutOfMemory { .. })));
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
        let vm = p[0].as_ref().unwrap();
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
        assert_eq!(
            vm.size(),
            all[0].as_ref().unwrap().ipa.size,
            "the same share as without 1:1"
        );
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
        let p: Vec<GuestRam> = plan_direct(&banks, &taken, &[None, None], &[false, true])
            .unwrap()
            .into_iter()
            .map(Result::unwrap)
            .collect();
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
