//! The in-memory snapshot pool's bookkeeping: its size from the boot arguments
//! (`hv.snapshot_pool=SIZE`) and where in it each named slot lies.
//!
//! The pool is RAM reserved at boot and never given to a guest (`hv::snapshot`
//! owns the memory; this is the arithmetic). A slot is one contiguous extent, since
//! a snapshot is written as it is encoded and its size is known only at the end: a
//! save writes into the largest free gap and keeps what it used.
#![forbid(unsafe_code)]

use crate::addr::{PhysAddr, Range};
use crate::memplan::CHUNK;
use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

/// Reads a size: bytes, or a number with `K`, `M` or `G` (binary units).
pub fn parse_size(s: &str) -> Option<u64> {
    let (digits, shift) = match s.as_bytes().last()? {
        b'K' | b'k' => (&s[..s.len() - 1], 10),
        b'M' | b'm' => (&s[..s.len() - 1], 20),
        b'G' | b'g' => (&s[..s.len() - 1], 30),
        _ => (s, 0),
    };
    let n: u64 = digits.parse().ok()?;
    n.checked_mul(1 << shift)
}

/// Where a pool of `size` bytes goes in free RAM (`free`: 2 MiB-aligned ranges in
/// address order): the top of the highest range it fits, so guests keep the low
/// RAM their kernels are linked for. The size is rounded up to 2 MiB.
pub fn place(free: &[Range<PhysAddr>], size: u64) -> Option<Range<PhysAddr>> {
    let size = size.checked_next_multiple_of(CHUNK)?;
    let r = free.iter().rev().find(|r| r.size >= size)?;
    Some(Range::new(PhysAddr(r.end().0 - size), size))
}

/// One slot: which VM it holds and where it is (offset into the pool, bytes).
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Slot {
    pub vm: usize,
    pub offset: u64,
    pub len: u64,
}

/// The slots of a pool of `size` bytes.
#[derive(Default)]
pub struct Slots {
    pub size: u64,
    slots: BTreeMap<String, Slot>,
}

/// The pool cannot hold a snapshot.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct PoolFull {
    /// The pool's size, the bytes slots use, and how many slots there are.
    pub size: u64,
    pub used: u64,
    pub slots: usize,
    /// The bytes that were needed (at least), if known.
    pub needed: Option<u64>,
}

impl fmt::Display for PoolFull {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const MIB: u64 = 1 << 20;
        if self.size == 0 {
            return write!(
                f,
                "the snapshot does not fit the hypervisor's heap: boot with hv.snapshot_pool=SIZE (e.g. hv.snapshot_pool=1G) to keep large snapshots in memory, or save it to a host file (cargo xtask snapshot save)"
            );
        }
        write!(
            f,
            "the snapshot pool is full: {} of its {} MiB are used by {} slot(s)",
            self.used.div_ceil(MIB),
            self.size / MIB,
            self.slots
        )?;
        if let Some(n) = self.needed {
            write!(f, " and the snapshot needs more than {} MiB", n / MIB)?;
        }
        write!(
            f,
            "; free one with 'snapshot delete SLOT', or boot with a larger hv.snapshot_pool"
        )
    }
}

impl Slots {
    pub const fn new() -> Self {
        Self {
            size: 0,
            slots: BTreeMap::new(),
        }
    }

    /// Bytes used by slots.
    pub fn used(&self) -> u64 {
        self.slots.values().map(|s| s.len).sum()
    }

    /// The largest free extent: (offset, bytes).
    pub fn largest_gap(&self) -> (u64, u64) {
        let mut taken: Vec<(u64, u64)> = self.slots.values().map(|s| (s.offset, s.len)).collect();
        taken.sort_unstable();
        let mut best = (0, 0);
        let mut at = 0;
        for (off, len) in taken.into_iter().chain([(self.size, 0)]) {
            if off.saturating_sub(at) > best.1 {
                best = (at, off - at);
            }
            at = at.max(off + len);
        }
        best
    }

    /// The error for a snapshot that did not fit (`needed`: at least this much).
    pub fn full(&self, needed: Option<u64>) -> PoolFull {
        PoolFull {
            size: self.size,
            used: self.used(),
            slots: self.slots.len(),
            needed,
        }
    }

    pub fn get(&self, name: &str) -> Option<&Slot> {
        self.slots.get(name)
    }

    /// Records a slot (replacing one of that name); the caller wrote it inside
    /// a gap [`largest_gap`](Self::largest_gap) gave.
    pub fn insert(&mut self, name: &str, slot: Slot) {
        self.slots.insert(name.into(), slot);
    }

    pub fn remove(&mut self, name: &str) -> Option<Slot> {
        self.slots.remove(name)
    }

    /// (name, slot) in name order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Slot)> {
        self.slots.iter().map(|(k, v)| (k.as_str(), v))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_with_units() {
        assert_eq!(parse_size("0"), Some(0));
        assert_eq!(parse_size("4096"), Some(4096));
        assert_eq!(parse_size("64M"), Some(64 << 20));
        assert_eq!(parse_size("1G"), Some(1 << 30));
        assert_eq!(parse_size("512k"), Some(512 << 10));
        assert_eq!(parse_size("M"), None);
        assert_eq!(parse_size("12X"), None);
        assert_eq!(parse_size("99999999999999999G"), None);
    }

    #[test]
    fn the_pool_goes_at_the_top_of_free_ram() {
        let free = [
            Range::new(PhysAddr(0x4000_0000), 0x1000_0000),
            Range::new(PhysAddr(0x8000_0000), 0x0400_0000),
        ];
        assert_eq!(
            place(&free, 1 << 20),
            Some(Range::new(PhysAddr(0x83e0_0000), 2 << 20))
        );
        assert_eq!(
            place(&free, 128 << 20),
            Some(Range::new(PhysAddr(0x4800_0000), 128 << 20))
        );
        assert_eq!(place(&free, 512 << 20), None);
        assert_eq!(place(&free, u64::MAX), None);
    }

    #[test]
    fn slots_fill_gaps_and_a_full_pool_says_so() {
        let mut s = Slots::new();
        s.size = 100;
        assert_eq!(s.largest_gap(), (0, 100));
        s.insert(
            "a",
            Slot {
                vm: 0,
                offset: 0,
                len: 30,
            },
        );
        s.insert(
            "b",
            Slot {
                vm: 0,
                offset: 30,
                len: 50,
            },
        );
        assert_eq!(s.largest_gap(), (80, 20));
        s.remove("a");
        assert_eq!(s.largest_gap(), (0, 30));
        s.insert(
            "c",
            Slot {
                vm: 1,
                offset: 80,
                len: 20,
            },
        );
        assert_eq!(s.largest_gap(), (0, 30));
        s.size = 64 << 20;
        s.insert(
            "b",
            Slot {
                vm: 0,
                offset: 0,
                len: 64 << 20,
            },
        );
        s.remove("c");
        assert_eq!(s.largest_gap().1, 0);
        let msg = s.full(Some(3 << 20)).to_string();
        assert_eq!(
            msg,
            "the snapshot pool is full: 64 of its 64 MiB are used by 1 slot(s) and the snapshot \
             needs more than 3 MiB; free one with 'snapshot delete SLOT', or boot with a larger \
             hv.snapshot_pool"
        );
        let none = Slots::new().full(None).to_string();
        assert!(none.contains("hv.snapshot_pool=SIZE"), "{none}");
    }
}
