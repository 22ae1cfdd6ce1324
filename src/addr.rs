//! Address kinds as types, so physical, intermediate-physical (guest-physical) and
//! virtual addresses cannot be mixed up (Hafnium `inc/hf/addr.h`).
#![forbid(unsafe_code)]

use core::fmt;

macro_rules! address_type {
    ($(#[$doc:meta])* $name:ident, $prefix:literal) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
        #[repr(transparent)]
        pub struct $name(pub u64);

        impl $name {
            pub const fn add(self, offset: u64) -> Self {
                Self(self.0 + offset)
            }
            pub const fn checked_add(self, offset: u64) -> Option<Self> {
                match self.0.checked_add(offset) {
                    Some(v) => Some(Self(v)),
                    None => None,
                }
            }
            pub const fn align_down(self, align: u64) -> Self {
                Self(self.0 & !(align - 1))
            }
            pub const fn align_up(self, align: u64) -> Self {
                Self((self.0 + align - 1) & !(align - 1))
            }
            pub const fn is_aligned(self, align: u64) -> bool {
                self.0 & (align - 1) == 0
            }
        }

        impl Address for $name {
            fn raw(self) -> u64 {
                self.0
            }
            fn from_raw(raw: u64) -> Self {
                Self(raw)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!($prefix, "{:#x}"), self.0)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{:#x}", self.0)
            }
        }
    };
}

address_type!(
    /// A host physical address.
    PhysAddr, "PA:"
);
address_type!(
    /// An intermediate physical address: what a guest believes is physical.
    Ipa, "IPA:"
);
address_type!(
    /// A guest virtual address, translated by the guest's stage 1.
    VirtAddr, "VA:"
);

/// A half-open range `[start, start + size)` of some address kind.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Range<A> {
    pub start: A,
    pub size: u64,
}

/// What every address kind shares, so [`Range`] is written once.
pub trait Address: Copy {
    fn raw(self) -> u64;
    fn from_raw(raw: u64) -> Self;
}

impl<A: Address> Range<A> {
    pub const fn new(start: A, size: u64) -> Self {
        Self { start, size }
    }
    pub fn end(&self) -> A {
        A::from_raw(self.start.raw() + self.size)
    }
    pub fn contains(&self, a: A) -> bool {
        a.raw() >= self.start.raw() && a.raw() - self.start.raw() < self.size
    }
    /// The whole of `[a, a + len)` lies inside.
    pub fn contains_range(&self, a: A, len: u64) -> bool {
        self.contains(a) && len <= self.size - (a.raw() - self.start.raw())
    }
    pub fn overlaps(&self, other: &Self) -> bool {
        self.start.raw() < other.start.raw() + other.size
            && other.start.raw() < self.start.raw() + self.size
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_contain_and_overlap() {
        let r = Range::new(PhysAddr(0x1000), 0x1000);
        assert!(r.contains(PhysAddr(0x1000)));
        assert!(r.contains(PhysAddr(0x1fff)));
        assert!(!r.contains(PhysAddr(0x2000)));
        assert!(!r.contains(PhysAddr(0xfff)));
        assert!(r.contains_range(PhysAddr(0x1800), 0x800));
        assert!(!r.contains_range(PhysAddr(0x1800), 0x801));
        assert!(r.overlaps(&Range::new(PhysAddr(0x1fff), 1)));
        assert!(!r.overlaps(&Range::new(PhysAddr(0x2000), 1)));
    }

    #[test]
    fn alignment() {
        assert_eq!(Ipa(0x20_1234).align_down(0x20_0000), Ipa(0x20_0000));
        assert_eq!(Ipa(0x20_1234).align_up(0x20_0000), Ipa(0x40_0000));
        assert!(Ipa(0x40_0000).is_aligned(0x20_0000));
    }
}
