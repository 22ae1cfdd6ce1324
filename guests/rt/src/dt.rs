//! What the guests read from their device tree, on top of the `fdt` crate.
//!
//! Everything about the machine comes from the DTB (DESIGN.md section 4): the same
//! Image runs bare under QEMU and under the hypervisor, which gives each VM its own
//! memory, CPUs, bootargs and initrd. These helpers avoid the `fdt` conveniences
//! that panic on a missing node (`memory()`, `cpus()`, `chosen()`): a guest DTB is
//! input, and a missing node is reported, not a crash.

#![forbid(unsafe_code)]

use fdt::Fdt;
use fdt::node::FdtNode;

use crate::psci::Conduit;

/// A range of physical (intermediate physical, under the hypervisor) addresses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Region {
    /// First address.
    pub base: u64,
    /// Length in bytes.
    pub size: u64,
}

impl Region {
    /// One past the last address (saturating).
    pub fn end(&self) -> u64 {
        self.base.saturating_add(self.size)
    }

    /// Whether `self` and `other` share an address.
    pub fn overlaps(&self, other: &Region) -> bool {
        self.size != 0 && other.size != 0 && self.base < other.end() && other.base < self.end()
    }

    /// Whether `addr` lies in the region.
    pub fn contains(&self, addr: u64) -> bool {
        self.base <= addr && addr < self.end()
    }
}

fn property_str<'a>(node: FdtNode<'_, 'a>, name: &str) -> Option<&'a str> {
    node.property(name)?.as_str()
}

/// A node's `reg` ranges (guests look devices up by `compatible` with it).
pub fn regs<'a>(node: FdtNode<'_, 'a>) -> impl Iterator<Item = Region> + 'a {
    node.reg().into_iter().flatten().map(|r| Region {
        base: r.starting_address as u64,
        size: r.size.unwrap_or(0) as u64,
    })
}

/// The RAM regions: `reg` of every top-level node with `device_type = "memory"`.
pub fn memory<'b>(fdt: &'b Fdt<'_>) -> impl Iterator<Item = Region> + 'b {
    fdt.find_node("/")
        .into_iter()
        .flat_map(|root| root.children())
        .filter(|n| property_str(*n, "device_type") == Some("memory"))
        .flat_map(regs)
        .filter(|r| r.size != 0)
}

/// Total RAM in bytes.
pub fn memory_size(fdt: &Fdt<'_>) -> u64 {
    memory(fdt).map(|r| r.size).sum()
}

/// The MPIDR affinity of each CPU, in DTB order (`/cpus/cpu@*` `reg`).
pub fn cpus<'b>(fdt: &'b Fdt<'_>) -> impl Iterator<Item = u64> + 'b {
    fdt.find_node("/cpus")
        .into_iter()
        .flat_map(|cpus| cpus.children())
        .filter(|n| match property_str(*n, "device_type") {
            Some(t) => t == "cpu",
            None => n.name.split('@').next() == Some("cpu"),
        })
        .filter_map(|n| n.reg()?.next().map(|r| r.starting_address as u64))
}

fn chosen<'b, 'a>(fdt: &'b Fdt<'a>) -> Option<FdtNode<'b, 'a>> {
    fdt.find_node("/chosen")
}

/// `/chosen/bootargs`, if present.
pub fn bootargs<'a>(fdt: &Fdt<'a>) -> Option<&'a str> {
    property_str(chosen(fdt)?, "bootargs")
}

/// The initrd from `/chosen/linux,initrd-start` and `linux,initrd-end` (either
/// 32 or 64 bits wide, as the writer chose).
pub fn initrd(fdt: &Fdt<'_>) -> Option<Region> {
    let chosen = chosen(fdt)?;
    let start = chosen.property("linux,initrd-start")?.as_usize()? as u64;
    let end = chosen.property("linux,initrd-end")?.as_usize()? as u64;
    (end >= start).then(|| Region {
        base: start,
        size: end - start,
    })
}

fn is_pl011(node: FdtNode<'_, '_>) -> bool {
    node.compatible()
        .is_some_and(|c| c.all().any(|s| s == "arm,pl011"))
}

/// The console UART's base address: the `arm,pl011` that `/chosen/stdout-path`
/// names (a path or an alias, options after `:` ignored), else alias `serial0`,
/// else the first `arm,pl011` in the tree.
pub fn console_uart(fdt: &Fdt<'_>) -> Option<u64> {
    let stdout = chosen(fdt)
        .and_then(|c| property_str(c, "stdout-path"))
        .and_then(|path| path.split(':').next())
        .and_then(|path| {
            fdt.find_node(path)
                .or_else(|| fdt.aliases()?.resolve_node(path))
        });
    let serial0 = || fdt.aliases()?.resolve_node("serial0");
    [stdout, serial0(), fdt.find_compatible(&["arm,pl011"])]
        .into_iter()
        .flatten()
        .find(|n| is_pl011(*n))
        .and_then(|n| regs(n).next())
        .map(|r| r.base)
}

/// The PSCI conduit: `method` of the `arm,psci*` node (or `/psci`).
pub fn psci_conduit(fdt: &Fdt<'_>) -> Option<Conduit> {
    let node = fdt
        .find_compatible(&["arm,psci-1.0", "arm,psci-0.2", "arm,psci"])
        .or_else(|| fdt.find_node("/psci"))?;
    match property_str(node, "method")? {
        "hvc" => Some(Conduit::Hvc),
        "smc" => Some(Conduit::Smc),
        _ => None,
    }
}

/// Calls `f` with every address range the DTB claims for something: each node's
/// `reg` and the parent side of each `ranges` window (a bus's address space).
/// An address outside all of them is not RAM and not a device the DTB describes.
pub fn claimed(fdt: &Fdt<'_>, mut f: impl FnMut(Region)) {
    if let Some(root) = fdt.find_node("/") {
        walk(root, 2, &mut f);
    }
}

fn walk(node: FdtNode<'_, '_>, parent_address_cells: usize, f: &mut dyn FnMut(Region)) {
    regs(node).filter(|r| r.size != 0).for_each(&mut *f);
    let own = node.cell_sizes();
    if let Some(ranges) = node.property("ranges") {
        let entry = own.address_cells + parent_address_cells + own.size_cells;
        if entry > 0 {
            for chunk in ranges.value.chunks_exact(entry * 4) {
                let (_, rest) = chunk.split_at(own.address_cells * 4);
                let (parent, size) = rest.split_at(parent_address_cells * 4);
                f(Region {
                    base: cells(parent),
                    size: cells(size),
                });
            }
        }
    }
    for child in node.children() {
        walk(child, own.address_cells, f);
    }
}

/// A big-endian number of 32-bit cells (the low 64 bits of it).
fn cells(bytes: &[u8]) -> u64 {
    bytes.chunks_exact(4).fold(0u64, |acc, c| {
        (acc << 32) | u64::from(u32::from_be_bytes([c[0], c[1], c[2], c[3]]))
    })
}

/// The lowest `granule`-aligned address below `limit` whose whole granule no
/// [`claimed`] range touches: the first granule after the end of some claimed
/// range. Reading it must abort (nothing is there), which is what `abort` checks.
pub fn unclaimed_hole(fdt: &Fdt<'_>, limit: u64, granule: u64) -> Option<u64> {
    let mut best: Option<u64> = None;
    claimed(fdt, |r| {
        let candidate = r.end().next_multiple_of(granule);
        if candidate == 0 || candidate.saturating_add(granule) > limit {
            return;
        }
        if best.is_some_and(|b| b <= candidate) {
            return;
        }
        let window = Region {
            base: candidate,
            size: granule,
        };
        let mut taken = false;
        claimed(fdt, |other| taken |= other.overlaps(&window));
        if !taken {
            best = Some(candidate);
        }
    });
    best
}
