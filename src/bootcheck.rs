//! Checking where the boot inputs lie before anything reads or copies them.
//!
//! The boot loader decides where guest kernels, ramdisks and the initrd go, and
//! nothing stops it from putting one over the device tree, over the hypervisor
//! itself, over reserved memory or over another module: QEMU's `guest-loader`
//! writes a module wherever `addr=` says (its ROM overlap check misses the DTB,
//! which it writes later, over the module). A guest started from such a module
//! runs garbage, and a module outside RAM cannot even be read (it is not in the
//! hypervisor's map). So every input is checked first:
//!
//! * it is not empty and lies inside one RAM bank;
//! * it overlaps none of what the hypervisor keeps (its image, stacks and
//!   heap, the host DTB, reserved memory: the *fixed* regions);
//! * it overlaps no other input (both are refused: which one the loader wrote
//!   last is unknowable). The files of a bundle lie inside the boot loader's
//!   initrd by construction, so the initrd itself is checked on its own, against
//!   the fixed regions, before it is parsed; then each bundle file is checked
//!   against the modules, and a module against the initrd.
//!
//! A problem refuses the VM the input belongs to, with a message that names the
//! input, what it overlaps (both with addresses and sizes) and what to do; the
//! other VMs start. Portable and host-tested: the runtime only gathers the
//! regions.
#![forbid(unsafe_code)]

use crate::addr::{PhysAddr, Range};
use crate::dt::{ModuleKind, ReservedKind};
use alloc::vec::Vec;
use core::fmt;

/// A byte count for people: bytes, KiB or MiB (rounded up, so never "0 MiB").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Size(pub u64);

impl fmt::Display for Size {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.0;
        if n == 1 {
            write!(f, "1 byte")
        } else if n < 1 << 10 {
            write!(f, "{n} bytes")
        } else if n < 1 << 20 {
            write!(f, "{} KiB", n.div_ceil(1 << 10))
        } else {
            write!(f, "{} MiB", n.div_ceil(1 << 20))
        }
    }
}

/// What occupies a region of memory at boot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum What<'a> {
    /// The hypervisor's code, data and .bss.
    HvImage,
    /// The hypervisor's per-CPU stacks.
    HvStacks,
    /// The hypervisor's heap.
    HvHeap,
    /// The device tree the boot loader passed.
    HostDtb,
    /// Reserved memory, by where the DTB declares it.
    Reserved(ReservedKind),
    /// The initrd the boot loader passed (`linux,initrd-start/-end`).
    Initrd,
    /// A `/chosen` or dom0less module.
    Module(ModuleKind),
    /// A file of a guest bundle (inside the initrd).
    BundleFile {
        /// N of `vmN/`.
        vm: u32,
        /// `kernel` or `initrd`.
        file: &'a str,
    },
}

impl What<'_> {
    /// What the hypervisor keeps for itself or the firmware keeps: never an input.
    pub fn is_fixed(&self) -> bool {
        matches!(
            self,
            Self::HvImage | Self::HvStacks | Self::HvHeap | Self::HostDtb | Self::Reserved(_)
        )
    }
}

impl fmt::Display for What<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::HvImage => write!(f, "the hypervisor's image"),
            Self::HvStacks => write!(f, "the hypervisor's stacks"),
            Self::HvHeap => write!(f, "the hypervisor's heap"),
            Self::HostDtb => write!(f, "the host device tree"),
            Self::Reserved(ReservedKind::MemReserve) => {
                write!(f, "reserved memory (a /memreserve/ entry)")
            }
            Self::Reserved(ReservedKind::Node { .. }) => {
                write!(f, "reserved memory (a /reserved-memory node)")
            }
            Self::Reserved(ReservedKind::SpinTable) => {
                write!(f, "a CPU's spin-table release address")
            }
            Self::Initrd => write!(f, "the boot loader's initrd"),
            Self::Module(ModuleKind::Kernel) => write!(f, "the kernel module"),
            Self::Module(ModuleKind::Ramdisk) => write!(f, "the ramdisk module"),
            Self::Module(ModuleKind::DeviceTree) => write!(f, "the device-tree module"),
            Self::Module(ModuleKind::Unknown) => write!(f, "the module"),
            Self::BundleFile { vm, file } => write!(f, "bundle file vm{vm}/{file}"),
        }
    }
}

/// A region of physical memory and what occupies it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Region<'a> {
    /// Where.
    pub range: Range<PhysAddr>,
    /// What.
    pub what: What<'a>,
}

impl<'a> Region<'a> {
    /// `what` at `[start, start + size)`.
    pub fn new(what: What<'a>, start: u64, size: u64) -> Self {
        Self {
            range: Range::new(PhysAddr(start), size),
            what,
        }
    }

    /// The last byte's address (the start for an empty region); saturates, so a
    /// range that wraps (never accepted, but printed) prints.
    fn last(&self) -> u64 {
        self.range
            .start
            .0
            .saturating_add(self.range.size.saturating_sub(1))
    }

    /// Whether the two share a byte (computed without overflow).
    pub fn overlaps(&self, other: &Region<'_>) -> bool {
        self.range.size > 0
            && other.range.size > 0
            && self.range.start.0 <= other.last()
            && other.range.start.0 <= self.last()
    }
}

impl fmt::Display for Region<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} at {:#x}-{:#x} ({})",
            self.what,
            self.range.start.0,
            self.last(),
            Size(self.range.size)
        )
    }
}

/// What is wrong with where an input lies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Problem<'a> {
    /// It has no bytes.
    Empty,
    /// It is not inside one RAM bank (or runs past the end of the address space).
    NotInRam,
    /// It shares memory with this region.
    Overlaps(Region<'a>),
}

/// An input refused, and why: prints as a whole sentence for the console.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refusal<'a> {
    /// The input.
    pub input: Region<'a>,
    /// Its problem.
    pub problem: Problem<'a>,
}

impl fmt::Display for Refusal<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let input = &self.input;
        match &self.problem {
            Problem::Empty => write!(f, "{} at {:#x} is empty", input.what, input.range.start.0),
            Problem::NotInRam => write!(
                f,
                "{input} is not inside RAM: load it into one of the RAM banks the hv: memory lines list"
            ),
            Problem::Overlaps(other) if other.what.is_fixed() => write!(
                f,
                "{input} overlaps {other}: load it at a free address in RAM"
            ),
            Problem::Overlaps(other) => write!(
                f,
                "{input} overlaps {other}: load one of them at a free address in RAM"
            ),
        }
    }
}

/// Whether `reserved` is the boot loader reserving its own `initrd` for the
/// kernel it starts, not memory the initrd overlaps. U-Boot's `booti` adds a
/// `/memreserve/` entry for exactly the initrd it passes (so that Linux does not
/// take it as free memory); another loader may round it out to whole 4 KiB
/// pages. Such an entry covers the initrd and nothing beyond the pages the initrd
/// touches. Anything else (a larger entry, a `/reserved-memory` node, a partial
/// overlap) stays a region the initrd must not overlap.
pub fn reserves_initrd(reserved: &Region<'_>, initrd: Range<PhysAddr>) -> bool {
    const PAGE: u64 = 0x1000;
    let (Some(end), Some(r_end)) = (
        initrd.start.0.checked_add(initrd.size),
        reserved.range.start.0.checked_add(reserved.range.size),
    ) else {
        return false;
    };
    let Some(page_end) = end.checked_next_multiple_of(PAGE) else {
        return false;
    };
    let r_start = reserved.range.start.0;
    reserved.what == What::Reserved(ReservedKind::MemReserve)
        && initrd.size > 0
        && r_start <= initrd.start.0
        && r_start >= initrd.start.0 & !(PAGE - 1)
        && r_end >= end
        && r_end <= page_end
}

/// Checks one input against RAM and the regions it must not overlap (the
/// first problem found).
pub fn check<'a, 'r>(
    input: &Region<'a>,
    ram: &[Range<PhysAddr>],
    occupied: impl IntoIterator<Item = &'r Region<'a>>,
) -> Result<(), Refusal<'a>>
where
    'a: 'r,
{
    let refuse = |problem| {
        Err(Refusal {
            input: *input,
            problem,
        })
    };
    if input.range.size == 0 {
        return refuse(Problem::Empty);
    }
    let in_ram = ram.iter().any(|bank| {
        input.range.start >= bank.start
            && input
                .range
                .start
                .0
                .checked_add(input.range.size)
                .zip(bank.start.0.checked_add(bank.size))
                .is_some_and(|(end, bank_end)| end <= bank_end)
    });
    if !in_ram {
        return refuse(Problem::NotInRam);
    }
    match occupied.into_iter().find(|o| input.overlaps(o)) {
        Some(o) => refuse(Problem::Overlaps(*o)),
        None => Ok(()),
    }
}

/// Checks every input (modules and bundle files) against RAM, the `fixed`
/// regions, the boot loader's `initrd` (not for bundle files, which lie inside
/// it) and every other input. One result per input, in order.
pub fn check_inputs<'a>(
    ram: &[Range<PhysAddr>],
    fixed: &[Region<'a>],
    initrd: Option<&Region<'a>>,
    inputs: &[Region<'a>],
) -> Vec<Result<(), Refusal<'a>>> {
    inputs
        .iter()
        .enumerate()
        .map(|(i, input)| {
            let in_bundle = matches!(input.what, What::BundleFile { .. });
            let initrd = initrd.filter(|_| !in_bundle);
            let others = inputs
                .iter()
                .enumerate()
                .filter(|&(j, _)| j != i)
                .map(|(_, r)| r);
            check(input, ram, fixed.iter().chain(initrd).chain(others))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1 << 20;
    const RAM: [Range<PhysAddr>; 1] = [Range::new(PhysAddr(0x4000_0000), 1024 * MIB)];

    /// The fixed regions of QEMU virt with -m 1G and no -initrd: the hypervisor
    /// at 0x40200000 (its stacks and heap inside), the DTB at 0x48000000.
    fn fixed() -> Vec<Region<'static>> {
        vec![
            Region::new(What::HvImage, 0x4020_0000, 0x6_0000),
            Region::new(What::HvStacks, 0x4026_0000, 0x8_0000),
            Region::new(What::HvHeap, 0x402e_0000, 0x80_0000),
            Region::new(What::HostDtb, 0x4800_0000, 0x2000),
            Region::new(
                What::Reserved(ReservedKind::Node { no_map: true }),
                0x7000_0000,
                MIB,
            ),
            Region::new(
                What::Reserved(ReservedKind::MemReserve),
                0x7100_0000,
                0x1000,
            ),
        ]
    }

    fn kernel(at: u64, size: u64) -> Region<'static> {
        Region::new(What::Module(ModuleKind::Kernel), at, size)
    }

    fn message(r: Result<(), Refusal<'_>>) -> String {
        r.unwrap_err().to_string()
    }

    #[test]
    fn sizes_are_printed_for_people() {
        assert_eq!(Size(1).to_string(), "1 byte");
        assert_eq!(Size(6).to_string(), "6 bytes");
        assert_eq!(Size(100_000).to_string(), "98 KiB");
        assert_eq!(Size(MIB).to_string(), "1 MiB");
        assert_eq!(Size(MIB + 1).to_string(), "2 MiB");
    }

    #[test]
    fn each_fixed_region_is_named_in_the_message() {
        let f = fixed();
        let cases = [
            (
                kernel(0x4800_0000, 100_000),
                "the kernel module at 0x48000000-0x4801869f (98 KiB) overlaps the host device tree at 0x48000000-0x48001fff (8 KiB): load it at a free address in RAM",
            ),
            (
                kernel(0x4000_0000, 0x30_0000),
                "the kernel module at 0x40000000-0x402fffff (3 MiB) overlaps the hypervisor's image at 0x40200000-0x4025ffff (384 KiB): load it at a free address in RAM",
            ),
            (
                kernel(0x4027_0000, 0x10),
                "the kernel module at 0x40270000-0x4027000f (16 bytes) overlaps the hypervisor's stacks at 0x40260000-0x402dffff (512 KiB): load it at a free address in RAM",
            ),
            (
                kernel(0x4030_0000, 0x10),
                "the kernel module at 0x40300000-0x4030000f (16 bytes) overlaps the hypervisor's heap at 0x402e0000-0x40adffff (8 MiB): load it at a free address in RAM",
            ),
            (
                kernel(0x6ff0_0000, 2 * MIB),
                "the kernel module at 0x6ff00000-0x700fffff (2 MiB) overlaps reserved memory (a /reserved-memory node) at 0x70000000-0x700fffff (1 MiB): load it at a free address in RAM",
            ),
            (
                kernel(0x7100_0fff, 1),
                "the kernel module at 0x71000fff-0x71000fff (1 byte) overlaps reserved memory (a /memreserve/ entry) at 0x71000000-0x71000fff (4 KiB): load it at a free address in RAM",
            ),
        ];
        for (input, want) in cases {
            assert_eq!(message(check(&input, &RAM, &f)), want);
        }
        // Touching is not overlapping.
        assert!(check(&kernel(0x4800_2000, MIB), &RAM, &f).is_ok());
        assert!(check(&kernel(0x47ff_f000, 0x1000), &RAM, &f).is_ok());
    }

    #[test]
    fn inputs_must_be_in_ram_and_not_empty() {
        let f = fixed();
        assert_eq!(
            message(check(&kernel(0x1000_0000, 0x1000), &RAM, &f)),
            "the kernel module at 0x10000000-0x10000fff (4 KiB) is not inside RAM: load it into one of the RAM banks the hv: memory lines list"
        );
        // Past the top of RAM, and past the top of the address space.
        assert!(check(&kernel(0x7fff_f000, 0x2000), &RAM, &f).is_err());
        let wraps = kernel(u64::MAX - 0xfff, 0x2000);
        assert_eq!(
            check(&wraps, &RAM, &f).unwrap_err().problem,
            Problem::NotInRam
        );
        assert!(message(check(&wraps, &RAM, &f)).contains("0xfffffffffffff000-0xffffffffffffffff"));
        assert_eq!(
            message(check(&kernel(0x5000_0000, 0), &RAM, &f)),
            "the kernel module at 0x50000000 is empty"
        );
        // Several banks: inside one is fine, straddling two is not.
        let banks = [
            Range::new(PhysAddr(0), 64 * MIB),
            Range::new(PhysAddr(64 * MIB), 64 * MIB),
        ];
        assert!(check(&kernel(65 * MIB, MIB), &banks, &[]).is_ok());
        assert!(check(&kernel(63 * MIB, 2 * MIB), &banks, &[]).is_err());
    }

    #[test]
    fn the_boot_loaders_reservation_of_its_initrd_is_the_initrds_own() {
        // As U-Boot's booti passes it: the initrd at 0x7dda6000 (45 KiB), and a
        // /memreserve/ entry for exactly those bytes.
        let initrd = Range::new(PhysAddr(0x7dda_6000), 0xb400);
        let memreserve =
            |start, size| Region::new(What::Reserved(ReservedKind::MemReserve), start, size);
        assert!(reserves_initrd(&memreserve(0x7dda_6000, 0xb400), initrd));
        // Rounded out to whole pages.
        assert!(reserves_initrd(&memreserve(0x7dda_6000, 0xc000), initrd));
        // Anything more, less, or of another kind is memory the initrd overlaps.
        for r in [
            memreserve(0x7dda_6000, 0xd000),
            memreserve(0x7dda_5000, 0xc400),
            memreserve(0x7dda_6000, 0xb3ff),
            memreserve(0x7dda_7000, 0x1000),
            Region::new(
                What::Reserved(ReservedKind::Node { no_map: false }),
                0x7dda_6000,
                0xb400,
            ),
            Region::new(What::HostDtb, 0x7dda_6000, 0xb400),
        ] {
            assert!(!reserves_initrd(&r, initrd), "{r}");
            let input = Region {
                range: initrd,
                what: What::Initrd,
            };
            assert!(check(&input, &RAM, &[r]).is_err(), "{r}");
        }
        // An empty initrd, or one at the top of the address space, reserves nothing.
        assert!(!reserves_initrd(
            &memreserve(0x7dda_6000, 0x1000),
            Range::new(PhysAddr(0x7dda_6000), 0)
        ));
        let top = Range::new(PhysAddr(u64::MAX - 0xfff), 0x1000);
        assert!(!reserves_initrd(&memreserve(u64::MAX - 0xfff, 0x1000), top));
    }

    #[test]
    fn overlapping_modules_are_both_refused_and_name_each_other() {
        let f = fixed();
        let inputs = [
            kernel(0x5000_0000, 3 * MIB),
            Region::new(What::Module(ModuleKind::Ramdisk), 0x5020_0000, MIB),
            kernel(0x6000_0000, MIB),
        ];
        let r = check_inputs(&RAM, &f, None, &inputs);
        assert_eq!(
            message(r[0]),
            "the kernel module at 0x50000000-0x502fffff (3 MiB) overlaps the ramdisk module at 0x50200000-0x502fffff (1 MiB): load one of them at a free address in RAM"
        );
        assert_eq!(
            message(r[1]),
            "the ramdisk module at 0x50200000-0x502fffff (1 MiB) overlaps the kernel module at 0x50000000-0x502fffff (3 MiB): load one of them at a free address in RAM"
        );
        assert!(r[2].is_ok());
    }

    #[test]
    fn bundle_files_live_inside_the_initrd_and_modules_must_not() {
        let f = fixed();
        let initrd = Region::new(What::Initrd, 0x4800_0000, 16 * MIB);
        // The DTB is after the initrd when there is one; say so here.
        let f: Vec<Region> = f
            .into_iter()
            .map(|r| match r.what {
                What::HostDtb => Region::new(What::HostDtb, 0x4a00_0000, 0x2000),
                _ => r,
            })
            .collect();
        assert!(check(&initrd, &RAM, &f).is_ok());
        let inputs = [
            Region::new(
                What::BundleFile {
                    vm: 0,
                    file: "kernel",
                },
                0x4800_0200,
                3 * MIB,
            ),
            Region::new(
                What::BundleFile {
                    vm: 1,
                    file: "kernel",
                },
                0x4840_0200,
                MIB,
            ),
            // A guest-loader module over vm1/kernel.
            kernel(0x4840_0000, 0x1000),
        ];
        let r = check_inputs(&RAM, &f, Some(&initrd), &inputs);
        assert!(r[0].is_ok(), "{}", message(r[0]));
        assert_eq!(
            message(r[1]),
            "bundle file vm1/kernel at 0x48400200-0x485001ff (1 MiB) overlaps the kernel module at 0x48400000-0x48400fff (4 KiB): load one of them at a free address in RAM"
        );
        assert_eq!(
            message(r[2]),
            "the kernel module at 0x48400000-0x48400fff (4 KiB) overlaps the boot loader's initrd at 0x48000000-0x48ffffff (16 MiB): load one of them at a free address in RAM"
        );
        // An initrd over the hypervisor is refused as a whole, before parsing.
        let bad = Region::new(What::Initrd, 0x4000_0000, 16 * MIB);
        assert_eq!(
            message(check(&bad, &RAM, &f)),
            "the boot loader's initrd at 0x40000000-0x40ffffff (16 MiB) overlaps the hypervisor's image at 0x40200000-0x4025ffff (384 KiB): load it at a free address in RAM"
        );
    }
}
