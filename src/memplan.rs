//! Carving guest RAM out of host RAM (DESIGN.md section 4, "Sizing").
//!
//! Free memory is the DTB's RAM banks minus everything that is taken: the
//! hypervisor's image, the host DTB, the guest-loader modules, `/memreserve/` and
//! `/reserved-memory`. Each VM gets an explicit size (Xen dom0less `memory`) or an
//! equal share of what is left, in 2 MiB-aligned chunks: its IPA space is contiguous
//! from the host's RAM base (so programs linked for the board's RAM run unchanged),
//! and stage 2 maps each chunk wherever it physically lies.
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
}

impl GuestRam {
    /// The physical address behind `ipa`, and how many bytes are contiguous from it.
    pub fn translate(&self, ipa: Ipa) -> Option<(PhysAddr, u64)> {
        if !self.ipa.contains(ipa) {
            return None;
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
        });
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
}
