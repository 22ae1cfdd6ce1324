//! Sorting the hypervisor's short lists: guest modules and memory ranges at boot,
//! passthrough claims, devices and MMIO pages, the vGIC's list-register candidates.
//!
//! `core`'s `sort*` methods are built for any length: each call site instantiates
//! driftsort or ipnsort (quicksort, heapsort, sorting networks, merges) for its
//! element type, 1 to 8 KiB of code each, about 25 KiB over the hypervisor's call
//! sites: a tenth of the Image's 256 KiB budget, to sort lists of a few dozen
//! elements at most. Insertion sort is as fast as anything at those lengths and
//! takes about a hundred bytes per instantiation. It is stable, so it stands in for
//! both `sort_by_key` and `sort_unstable*`.
#![forbid(unsafe_code)]

use core::cmp::Ordering;

/// Sorts `v` by `compare`, stably (equal elements keep their order). Quadratic:
/// for short lists only.
pub fn sort_by<T>(v: &mut [T], mut compare: impl FnMut(&T, &T) -> Ordering) {
    for i in 1..v.len() {
        let mut j = i;
        while j > 0 && compare(&v[j - 1], &v[j]) == Ordering::Greater {
            v.swap(j - 1, j);
            j -= 1;
        }
    }
}

/// Sorts `v` by `key`, stably.
pub fn sort_by_key<T, K: Ord>(v: &mut [T], mut key: impl FnMut(&T) -> K) {
    sort_by(v, |a, b| key(a).cmp(&key(b)))
}

/// Sorts `v` ascending, stably.
pub fn sort<T: Ord>(v: &mut [T]) {
    sort_by(v, T::cmp)
}

#[cfg(test)]
mod tests {
    extern crate std;
    use std::vec::Vec;

    /// The same order as `core`'s stable sort, for every permutation-like input
    /// of lengths 0 to 40 (pseudo-random keys with many repeats, so stability
    /// shows: the second field records the original position).
    #[test]
    fn agrees_with_the_stable_sort_of_core() {
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        for len in 0..=40 {
            for _ in 0..20 {
                let v: Vec<(u8, usize)> = (0..len)
                    .map(|i| {
                        x ^= x << 13;
                        x ^= x >> 7;
                        x ^= x << 17;
                        ((x % 7) as u8, i)
                    })
                    .collect();
                let mut want = v.clone();
                want.sort_by_key(|e| e.0);
                let mut got = v.clone();
                super::sort_by_key(&mut got, |e| e.0);
                assert_eq!(got, want, "by key, {v:?}");
                let mut want = v.clone();
                want.sort();
                let mut got = v;
                super::sort(&mut got);
                assert_eq!(got, want);
            }
        }
    }

    #[test]
    fn sorts_descending_and_sorted_input() {
        let mut v: Vec<u32> = (0..50).rev().collect();
        super::sort(&mut v);
        assert_eq!(v, (0..50).collect::<Vec<_>>());
        super::sort_by(&mut v, |a, b| b.cmp(a));
        assert_eq!(v, (0..50).rev().collect::<Vec<_>>());
    }
}
