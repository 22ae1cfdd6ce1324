//! From requests to devices: which host nodes each VM gets, with their MMIO
//! pages and SPIs, under the assignment rules.
//!
//! The rules, in the order they are applied:
//!
//! 1. **Explicit requests** (`vmN:PATH`, a bundle's list, a dom0less
//!    `xen,path`) must name an existing, enabled node with MMIO that the
//!    hypervisor does not keep ([`kept`]), whose interrupts all go to the GIC
//!    as SPIs. Anything else refuses the request, and a VM with a refused
//!    request is not started: it would run with devices other than the ones
//!    it was given.
//! 2. A node (or a node above or below it) **given to two VMs** refuses both.
//! 3. **`all`** (one VM at most) then takes every enabled node with MMIO,
//!    at the top level or under plain buses (`simple-bus`), that is not kept
//!    and no other VM was given. What `all` cannot take (interrupts that do
//!    not go to the GIC, a page shared with someone else) is skipped with a
//!    note, not refused. Nodes without resources that only consume an
//!    assigned node (QEMU's `gpio-keys` on the PL061) come along.
//! 4. **Pages.** MMIO is mapped by whole 4 KiB pages: a range that does not
//!    fill its pages exposes the rest of them, so such a page may be shared
//!    only with devices of the same VM or of nobody (a note names the
//!    latter). A page that holds RAM, a device the hypervisor keeps, or a
//!    device of another VM is refused, never widened over.
//! 5. **Interrupts**: an SPI goes to one VM; the vGIC describes INTIDs below
//!    a limit; SPIs of kept devices are never given away.
//!
//! Everything is decided here, on the host tree alone, so it is tested on the
//! host; the runtime (`hv::passthrough`) only carries the plan out.
#![forbid(unsafe_code)]

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt::Write;

use super::dom0less::PartialDevice;
use super::request::{Request, Target};
use super::tree::{HostTree, UNTRANSLATED};
use crate::addr::{Ipa, PhysAddr, Range};

/// Stage-2 page size.
pub const PAGE: u64 = 4096;

/// What the hypervisor keeps, beyond what [`kept`] recognises by itself.
#[derive(Clone, Copy, Debug, Default)]
pub struct Keep<'k> {
    /// The debug UART's path.
    pub debug_uart: Option<&'k str>,
    /// The UART emulated as every guest's console.
    pub console_uart: Option<&'k str>,
    /// The GIC's path.
    pub gic: Option<&'k str>,
}

/// SMMUs: the hypervisor's, never a guest's (a guest programming one could
/// point any DMA master anywhere).
const SMMU_COMPATIBLE: &[&str] = &[
    "arm,smmu-v3",
    "arm,mmu-500",
    "arm,smmu-v2",
    "arm,smmu-v1",
    "arm,mmu-400",
    "arm,mmu-401",
];

/// Devices that never master the bus: a VM given only these needs no 1:1 RAM.
/// Everything else is assumed to be able to DMA.
pub const NO_DMA_COMPATIBLE: &[&str] = &[
    "arm,pl031",
    "arm,pl061",
    "arm,pl011",
    "arm,sbsa-uart",
    "arm,sp805",
    "arm,sp804",
    "cfi-flash",
    "gpio-keys",
    "brcm,bcm2835-aux-uart",
];

/// Why the hypervisor keeps node `i` (or a node above it), if it does.
pub fn kept(tree: &HostTree<'_>, i: usize, keep: &Keep<'_>) -> Option<&'static str> {
    let mut n = Some(i);
    while let Some(j) = n {
        if let Some(why) = kept_here(tree, j, keep, j == i) {
            return Some(why);
        }
        n = tree.nodes[j].parent;
    }
    None
}

fn kept_here(tree: &HostTree<'_>, i: usize, keep: &Keep<'_>, itself: bool) -> Option<&'static str> {
    let node = &tree.nodes[i];
    let path = node.path.as_str();
    let c = &node.compatible;
    if Some(path) == keep.debug_uart {
        return Some("the hypervisor's debug console");
    }
    if Some(path) == keep.console_uart {
        return Some("the guest console UART, which the hypervisor emulates for every VM");
    }
    if Some(path) == keep.gic {
        return Some("the interrupt controller (every VM gets a virtual one)");
    }
    if c.iter()
        .any(|s| s == "arm,armv8-timer" || s == "arm,armv7-timer")
    {
        return Some("the architected timer (per CPU)");
    }
    if c.iter()
        .any(|s| s.starts_with("arm,") && s.ends_with("pmu") || s.ends_with("pmuv3"))
    {
        return Some("the performance monitors (per CPU)");
    }
    if c.iter().any(|s| s.starts_with("arm,psci")) {
        return Some("PSCI, which the hypervisor provides to every VM");
    }
    if c.iter().any(|s| SMMU_COMPATIBLE.contains(&s)) {
        return Some("an SMMU, which only the hypervisor may program");
    }
    if node.device_type == Some("memory") {
        return Some("RAM");
    }
    if path == "/" && itself {
        return Some("the root, not a device");
    }
    if ["/cpus", "/chosen", "/aliases", "/reserved-memory"].contains(&path) {
        return Some("not a device");
    }
    None
}

/// One MMIO range of an assigned device.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Mmio {
    /// Host physical address.
    pub pa: PhysAddr,
    /// Where the guest sees it (the same, unless a dom0less `xen,reg` moves it).
    pub ipa: Ipa,
    /// Bytes.
    pub size: u64,
}

/// An assigned interrupt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Spi {
    /// The INTID, the same for the host and the guest.
    pub intid: u32,
    /// Level-sensitive (else rising edge).
    pub level: bool,
}

/// An assigned device.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Device {
    /// The host node's path, or for a dom0less device without `xen,path` its
    /// path in the partial tree.
    pub path: String,
    /// The host node (`None`: a dom0less device described only by its partial tree).
    pub node: Option<usize>,
    /// Described by the VM's dom0less partial tree (copied from there into the
    /// guest's tree, not from the host's).
    pub from_partial: bool,
    /// Its MMIO (and its children's).
    pub mmio: Vec<Mmio>,
    /// Its SPIs (and its children's).
    pub spis: Vec<Spi>,
    /// May master the bus (see [`NO_DMA_COMPATIBLE`]).
    pub dma: bool,
}

/// A stage-2 mapping of whole pages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Mapping {
    /// Host physical address (page aligned).
    pub pa: PhysAddr,
    /// Guest address (page aligned).
    pub ipa: Ipa,
    /// Bytes (whole pages).
    pub size: u64,
}

/// What one VM is given.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct VmDevices {
    /// A request of this VM was refused: it must not start.
    pub refused: bool,
    /// Its devices, in DT order.
    pub devices: Vec<Device>,
    /// Its stage-2 device mappings, sorted and merged.
    pub maps: Vec<Mapping>,
}

impl VmDevices {
    /// Some device may DMA: the VM's RAM must be mapped 1:1.
    pub fn needs_direct_map(&self) -> bool {
        self.devices.iter().any(|d| d.dma)
    }

    /// Every SPI of every device.
    pub fn spis(&self) -> impl Iterator<Item = Spi> + '_ {
        self.devices.iter().flat_map(|d| d.spis.iter().copied())
    }
}

/// A line for the console.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    /// The VM it is about (`None`: the option itself).
    pub vm: Option<usize>,
    /// A refusal (the VM does not start) rather than a note.
    pub refusal: bool,
    /// The text, naming the node.
    pub text: String,
}

/// The assignment of every VM.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Plan {
    /// Per VM, by number.
    pub vms: Vec<VmDevices>,
    /// Refusals and notes, in the order they arose.
    pub messages: Vec<Message>,
}

/// Limits of the machine the plan must respect.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// SPIs at or above this INTID cannot be given (the vGIC's lines).
    pub intid_end: u32,
    /// Guest addresses must lie below `1 << ipa_bits`.
    pub ipa_bits: u32,
}

/// Everything [`resolve`] needs to know about the machine.
pub struct Machine<'t, 'a> {
    /// The host tree.
    pub tree: &'t HostTree<'a>,
    /// RAM banks and reserved memory: never device MMIO.
    pub ram: &'t [Range<PhysAddr>],
    /// What the hypervisor keeps.
    pub keep: Keep<'t>,
    /// Limits.
    pub limits: Limits,
    /// `hv.passthrough_dma=trusted`: a DMA master behind an SMMU may be given
    /// although the hypervisor does not program the SMMU (its DMA then reaches
    /// all memory). Otherwise such a device is refused.
    pub dma_trusted: bool,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum How {
    Explicit,
    All,
}

#[derive(Clone, Debug)]
struct Claim {
    vm: usize,
    how: How,
    device: Device,
}

fn page_range(addr: u64, size: u64) -> Option<(u64, u64)> {
    let end = addr.checked_add(size)?;
    let end = end.checked_add(PAGE - 1)? & !(PAGE - 1);
    Some((addr & !(PAGE - 1), end))
}

fn overlaps(a: (u64, u64), b: (u64, u64)) -> bool {
    a.0 < b.1 && b.0 < a.1
}

impl Machine<'_, '_> {
    fn path(&self, i: usize) -> &str {
        &self.tree.nodes[i].path
    }

    /// A host node as a device: its MMIO and SPIs and those of its enabled
    /// descendants. `Err` says why it cannot be assigned.
    fn device(&self, i: usize) -> Result<Device, String> {
        let tree = self.tree;
        let node = &tree.nodes[i];
        if let Some(why) = kept(tree, i, &self.keep) {
            return Err(alloc::format!("it is {why}"));
        }
        if !node.enabled {
            return Err("it is disabled in the device tree (status)".into());
        }
        if !node.has_reg && node.windows.is_empty() {
            return Err("it has no reg: there is nothing to map".into());
        }
        let mut mmio: Vec<Mmio> = Vec::new();
        let mut spis: Vec<Spi> = Vec::new();
        let mut dma = false;
        for j in tree.subtree(i) {
            let n = &tree.nodes[j];
            if j != i && !n.enabled {
                continue;
            }
            if j != i {
                if let Some(why) = kept(tree, j, &self.keep) {
                    return Err(alloc::format!("{} below it is {why}", n.path));
                }
            }
            // Below the device but not memory-mapped (an MDIO or I2C address):
            // nothing to map, its interrupts still count.
            let empty = Vec::new();
            let regs = match &n.reg {
                Err(UNTRANSLATED) if j != i => Ok(&empty),
                r => r.as_ref(),
            };
            let regs = regs.map_err(|why| {
                if j == i {
                    String::from(*why)
                } else {
                    alloc::format!("{}: {why}", n.path)
                }
            })?;
            for r in regs.iter().chain(&n.windows).filter(|r| r.size != 0) {
                if r.addr.checked_add(r.size).is_none() {
                    return Err(alloc::format!("{}: a reg entry wraps around", n.path));
                }
                mmio.push(Mmio {
                    pa: PhysAddr(r.addr),
                    ipa: Ipa(r.addr),
                    size: r.size,
                });
            }
            let irqs = n.irqs.as_ref().map_err(|why| {
                if j == i {
                    why.clone()
                } else {
                    alloc::format!("{}: {why}", n.path)
                }
            })?;
            for irq in irqs {
                if irq.intid < 32 {
                    return Err(alloc::format!(
                        "{} uses the per-CPU interrupt (PPI) {}, which no single VM can be given",
                        n.path,
                        irq.intid - 16
                    ));
                }
                let spi = Spi {
                    intid: irq.intid,
                    level: irq.is_level(),
                };
                if !spis.iter().any(|s| s.intid == spi.intid) {
                    spis.push(spi);
                }
            }
            // A master behind an SMMU: the hypervisor does not program SMMUs
            // yet, so its DMA would not be confined to the VM's memory, and
            // where an SMMU exists the promise is that it is.
            let smmu = n.iommu.and_then(|ph| tree.by_phandle(ph)).filter(|&s| {
                tree.nodes[s]
                    .compatible
                    .iter()
                    .any(|c| SMMU_COMPATIBLE.contains(&c))
            });
            if let Some(smmu) = smmu {
                if !self.dma_trusted {
                    return Err(alloc::format!(
                        "{} masters DMA through the SMMU {}, which the hypervisor does not \
                         program, so its DMA could reach the hypervisor and other VMs; \
                         give it with hv.passthrough_dma=trusted if you trust the VM as \
                         much as the hypervisor",
                        n.path,
                        tree.nodes[smmu].path
                    ));
                }
            }
            let no_dma = n.compatible.iter().any(|c| NO_DMA_COMPATIBLE.contains(&c));
            let describes_a_device = n.has_reg || !n.windows.is_empty() || n.has_irqs;
            if describes_a_device && !no_dma {
                dma = true;
            }
        }
        Ok(Device {
            path: node.path.clone(),
            node: Some(i),
            from_partial: false,
            mmio,
            spis,
            dma,
        })
    }

    /// Host MMIO pages that belong to the hypervisor: every range of every
    /// node it keeps (the GIC with its ITS, its UARTs, an SMMU).
    fn kept_ranges(&self) -> Vec<((u64, u64), String)> {
        let mut out = Vec::new();
        for (i, n) in self.tree.nodes.iter().enumerate() {
            if kept(self.tree, i, &self.keep).is_none() {
                continue;
            }
            if let Ok(regs) = &n.reg {
                for r in regs.iter().filter(|r| r.size != 0) {
                    if let Some(p) = page_range(r.addr, r.size) {
                        out.push((p, n.path.clone()));
                    }
                }
            }
        }
        out
    }

    /// SPIs of devices the hypervisor keeps (its UARTs): never forwarded.
    fn kept_spis(&self) -> Vec<u32> {
        let mut out = Vec::new();
        for (i, n) in self.tree.nodes.iter().enumerate() {
            if kept(self.tree, i, &self.keep).is_some() {
                if let Ok(irqs) = &n.irqs {
                    out.extend(irqs.iter().filter(|q| q.intid >= 32).map(|q| q.intid));
                }
            }
        }
        out
    }

    /// Whether node `i` is where `all` looks for devices: at the top level or
    /// under plain buses.
    fn top_level(&self, i: usize) -> bool {
        let mut n = self.tree.nodes[i].parent;
        while let Some(p) = n {
            let node = &self.tree.nodes[p];
            if node.depth == 0 {
                return true;
            }
            if !node.simple_bus || !node.enabled {
                return false;
            }
            n = node.parent;
        }
        false
    }
}

/// The assignment for `vms` VMs: `requests` from the command line and VM
/// configurations, `partials[vm]` the devices of VM `vm`'s dom0less partial
/// tree (empty without one).
pub fn resolve(
    m: &Machine<'_, '_>,
    vms: usize,
    requests: &[Request<'_>],
    partials: &[Vec<PartialDevice<'_>>],
) -> Plan {
    let mut plan = Plan {
        vms: alloc::vec![VmDevices::default(); vms],
        messages: Vec::new(),
    };
    let mut claims: Vec<Claim> = Vec::new();
    let mut all_vm: Option<usize> = None;

    let refuse = |plan: &mut Plan, vm: usize, text: String| {
        if let Some(v) = plan.vms.get_mut(vm) {
            v.refused = true;
        }
        plan.messages.push(Message {
            vm: Some(vm),
            refusal: true,
            text,
        });
    };

    // 1. Explicit requests, and `all`.
    for r in requests {
        if r.vm >= vms {
            let what = match r.target {
                Target::All => String::from("all"),
                Target::Node(n) => String::from(n),
            };
            plan.messages.push(Message {
                vm: None,
                refusal: true,
                text: alloc::format!(
                    "passthrough of {what} to vm{}: there is no vm{} ({vms} VM(s))",
                    r.vm,
                    r.vm
                ),
            });
            continue;
        }
        match r.target {
            Target::All => match all_vm {
                None => all_vm = Some(r.vm),
                Some(v) if v == r.vm => {}
                Some(v) => refuse(
                    &mut plan,
                    r.vm,
                    alloc::format!(
                        "vm{}: passthrough of all refused: vm{v} already gets all",
                        r.vm
                    ),
                ),
            },
            Target::Node(name) => {
                let Some(i) = m.tree.lookup(name) else {
                    let kind = if name.starts_with('/') {
                        "no such node in the device tree"
                    } else {
                        "no such alias in /aliases"
                    };
                    refuse(
                        &mut plan,
                        r.vm,
                        alloc::format!("vm{}: passthrough of {name} refused: {kind}", r.vm),
                    );
                    continue;
                };
                match m.device(i) {
                    Ok(device) => claims.push(Claim {
                        vm: r.vm,
                        how: How::Explicit,
                        device,
                    }),
                    Err(why) => refuse(
                        &mut plan,
                        r.vm,
                        alloc::format!("vm{}: passthrough of {} refused: {why}", r.vm, m.path(i)),
                    ),
                }
            }
        }
    }
    for (vm, devices) in partials.iter().enumerate().take(vms) {
        for d in devices {
            match partial_device(m, d) {
                Ok(device) => claims.push(Claim {
                    vm,
                    how: How::Explicit,
                    device,
                }),
                Err(why) => refuse(
                    &mut plan,
                    vm,
                    alloc::format!(
                        "vm{vm}: dom0less device {} refused: {why}",
                        d.host_path.unwrap_or(&d.path)
                    ),
                ),
            }
        }
    }

    // 2. One node, one VM. The same node twice for one VM counts once; a node
    //    inside another one of the same VM comes with it.
    let mut keep_claim = alloc::vec![true; claims.len()];
    for a in 0..claims.len() {
        for b in a + 1..claims.len() {
            let (ca, cb) = (&claims[a], &claims[b]);
            let (Some(na), Some(nb)) = (ca.device.node, cb.device.node) else {
                continue;
            };
            let a_in_b = m.tree.is_within(na, nb);
            let b_in_a = m.tree.is_within(nb, na);
            if !a_in_b && !b_in_a {
                continue;
            }
            if ca.vm == cb.vm {
                keep_claim[if a_in_b { a } else { b }] = false;
                continue;
            }
            let (va, vb) = (ca.vm, cb.vm);
            let text = if na == nb {
                alloc::format!(
                    "passthrough of {} refused: it is given to both vm{va} and vm{vb}",
                    m.path(na)
                )
            } else {
                let (outer, inner) = if b_in_a { (na, nb) } else { (nb, na) };
                alloc::format!(
                    "passthrough refused: {} (vm{}) contains {} (vm{})",
                    m.path(outer),
                    if outer == na { va } else { vb },
                    m.path(inner),
                    if inner == na { va } else { vb },
                )
            };
            refuse(&mut plan, va, alloc::format!("vm{va}: {text}"));
            refuse(&mut plan, vb, alloc::format!("vm{vb}: {text}"));
        }
    }
    let mut claims: Vec<Claim> = claims
        .into_iter()
        .zip(keep_claim)
        .filter_map(|(c, k)| k.then_some(c))
        .collect();

    // 3. `all`: what is left.
    if let Some(vm) = all_vm {
        let taken = |i: usize, claims: &[Claim]| {
            claims.iter().any(|c| {
                c.device
                    .node
                    .is_some_and(|n| m.tree.is_within(i, n) || m.tree.is_within(n, i))
            })
        };
        let mut added: Vec<usize> = Vec::new();
        let mut i = 1;
        while i < m.tree.nodes.len() {
            let node = &m.tree.nodes[i];
            let skip_subtree = |i: usize| m.tree.subtree(i).last().unwrap_or(i) + 1;
            if !m.top_level(i)
                || !node.enabled
                || kept(m.tree, i, &m.keep).is_some()
                || node.simple_bus
                || (!node.has_reg && node.windows.is_empty())
            {
                i += 1;
                continue;
            }
            if taken(i, &claims) {
                i = skip_subtree(i);
                continue;
            }
            match m.device(i) {
                Ok(device) => {
                    added.push(i);
                    claims.push(Claim {
                        vm,
                        how: How::All,
                        device,
                    });
                }
                Err(why) => plan.messages.push(Message {
                    vm: Some(vm),
                    refusal: false,
                    text: alloc::format!("vm{vm}: all: {} left out: {why}", node.path),
                }),
            }
            i = skip_subtree(i);
        }
        // Resource-free consumers of what `all` took (gpio-keys on a GPIO
        // controller): nodes with neither MMIO nor interrupts that reference
        // only this VM's devices.
        for i in 1..m.tree.nodes.len() {
            let node = &m.tree.nodes[i];
            if !m.top_level(i)
                || !node.enabled
                || node.has_reg
                || node.has_irqs
                || node.provider
                || node.simple_bus
                || node.compatible.first().is_none()
                || kept(m.tree, i, &m.keep).is_some()
                || taken(i, &claims)
            {
                continue;
            }
            let refs: Vec<u32> = m
                .tree
                .subtree(i)
                .flat_map(|j| m.tree.nodes[j].refs.iter())
                .filter(|(p, _)| *p != "interrupt-parent")
                .map(|&(_, ph)| ph)
                .collect();
            let ours = |ph: u32| {
                m.tree
                    .by_phandle(ph)
                    .is_some_and(|t| added.iter().any(|&a| m.tree.is_within(t, a)))
            };
            if !refs.is_empty() && refs.iter().all(|&ph| ours(ph)) {
                claims.push(Claim {
                    vm,
                    how: How::All,
                    device: Device {
                        path: node.path.clone(),
                        node: Some(i),
                        from_partial: false,
                        mmio: Vec::new(),
                        spis: Vec::new(),
                        dma: false,
                    },
                });
            }
        }
    }

    // 4 and 5: pages and interrupts. Explicit claims first: `all` yields.
    crate::sort::sort_by_key(&mut claims, |c| c.how != How::Explicit);
    let kept_pages = m.kept_ranges();
    let kept_spis = m.kept_spis();
    let ram: Vec<(u64, u64)> = m
        .ram
        .iter()
        .filter_map(|r| page_range(r.start.0, r.size))
        .collect();
    let ipa_end = 1u64 << m.limits.ipa_bits;
    // Accepted so far: (vm, host pages, device path).
    let mut pages: Vec<(usize, (u64, u64), String)> = Vec::new();
    let mut spis: Vec<(usize, u32, String)> = Vec::new();
    let mut accepted: Vec<Claim> = Vec::new();
    'claims: for c in claims {
        let vm = c.vm;
        let mut problem: Option<String> = None;
        let mut my_pages: Vec<(u64, u64)> = Vec::new();
        for r in &c.device.mmio {
            let (Some(p), Some(ip)) = (page_range(r.pa.0, r.size), page_range(r.ipa.0, r.size))
            else {
                problem = Some("a range wraps around".into());
                break;
            };
            if r.pa.0 % PAGE != r.ipa.0 % PAGE {
                problem = Some(alloc::format!(
                    "host {:#x} and guest {:#x} lie at different offsets in their pages",
                    r.pa.0,
                    r.ipa.0
                ));
                break;
            }
            if ip.1 > ipa_end {
                problem = Some(alloc::format!(
                    "{:#x}-{:#x} lies beyond the guests' {}-bit address space",
                    r.ipa.0,
                    r.ipa.0 + r.size - 1,
                    m.limits.ipa_bits
                ));
                break;
            }
            if ram.iter().any(|&x| overlaps(x, p)) {
                problem = Some(alloc::format!(
                    "{:#x}-{:#x} is RAM, not a device",
                    r.pa.0,
                    r.pa.0 + r.size - 1
                ));
                break;
            }
            if let Some((_, owner)) = kept_pages.iter().find(|(k, _)| overlaps(*k, p)) {
                problem = Some(alloc::format!(
                    "{:#x}-{:#x} shares a page with {owner}, which the hypervisor keeps",
                    r.pa.0,
                    r.pa.0 + r.size - 1
                ));
                break;
            }
            if let Some((other, _, owner)) =
                pages.iter().find(|(v, q, _)| *v != vm && overlaps(*q, p))
            {
                problem = Some(alloc::format!(
                    "{:#x}-{:#x} shares a page with {owner}, given to vm{other}",
                    r.pa.0,
                    r.pa.0 + r.size - 1
                ));
                if c.how == How::Explicit {
                    // Both were asked for explicitly (explicit claims come
                    // first): both VMs are refused.
                    let text = alloc::format!(
                        "vm{other}: passthrough refused: {owner} shares a page with {}, given to vm{vm}",
                        c.device.path
                    );
                    let other = *other;
                    refuse(&mut plan, other, text);
                }
                break;
            }
            my_pages.push(p);
        }
        if problem.is_none() {
            for s in &c.device.spis {
                if s.intid >= m.limits.intid_end {
                    problem = Some(alloc::format!(
                        "its interrupt {} is beyond the virtual GIC's (INTIDs below {})",
                        s.intid,
                        m.limits.intid_end
                    ));
                } else if kept_spis.contains(&s.intid) {
                    problem = Some(alloc::format!(
                        "its interrupt {} is also a device's the hypervisor keeps",
                        s.intid
                    ));
                } else if let Some((other, _, owner)) =
                    spis.iter().find(|(v, i, _)| *v != vm && *i == s.intid)
                {
                    problem = Some(alloc::format!(
                        "its interrupt {} is also {owner}'s, given to vm{other}",
                        s.intid
                    ));
                }
                if problem.is_some() {
                    break;
                }
            }
        }
        if let Some(why) = problem {
            match c.how {
                How::Explicit => refuse(
                    &mut plan,
                    vm,
                    alloc::format!("vm{vm}: passthrough of {} refused: {why}", c.device.path),
                ),
                How::All => plan.messages.push(Message {
                    vm: Some(vm),
                    refusal: false,
                    text: alloc::format!("vm{vm}: all: {} left out: {why}", c.device.path),
                }),
            }
            continue 'claims;
        }
        for p in my_pages {
            pages.push((vm, p, c.device.path.clone()));
        }
        for s in &c.device.spis {
            spis.push((vm, s.intid, c.device.path.clone()));
        }
        accepted.push(c);
    }

    // Notes on pages shared with devices of nobody.
    for c in &accepted {
        let mut shared: Vec<&str> = Vec::new();
        for r in &c.device.mmio {
            let Some(p) = page_range(r.pa.0, r.size) else {
                continue;
            };
            for (j, n) in m.tree.nodes.iter().enumerate() {
                if c.device.node.is_some_and(|d| m.tree.is_within(j, d)) || !n.has_reg {
                    continue;
                }
                let Ok(regs) = &n.reg else { continue };
                let hit = regs
                    .iter()
                    .filter_map(|q| page_range(q.addr, q.size))
                    .any(|q| overlaps(q, p));
                let owned = accepted.iter().any(|a| {
                    a.device
                        .node
                        .is_some_and(|d| m.tree.is_within(j, d) || m.tree.is_within(d, j))
                });
                if hit && !owned && !shared.contains(&n.path.as_str()) {
                    shared.push(&n.path);
                }
            }
        }
        if !shared.is_empty() {
            let mut text = alloc::format!(
                "vm{}: {} is mapped by whole pages, which also hold ",
                c.vm,
                c.device.path
            );
            for (k, s) in shared.iter().enumerate() {
                let _ = write!(text, "{}{s}", if k == 0 { "" } else { ", " });
            }
            text.push_str(" (given to no VM)");
            plan.messages.push(Message {
                vm: Some(c.vm),
                refusal: false,
                text,
            });
        }
    }

    // The VMs' devices (DT order) and merged mappings.
    for c in accepted {
        let v = &mut plan.vms[c.vm];
        v.devices.push(c.device);
    }
    for v in &mut plan.vms {
        if v.refused {
            v.devices.clear();
            continue;
        }
        crate::sort::sort_by_key(&mut v.devices, |d| d.node.unwrap_or(usize::MAX));
        v.maps = merge(v.devices.iter().flat_map(|d| d.mmio.iter()));
    }
    plan
}

/// A dom0less device: `xen,reg` ranges, its interrupts, and the host node
/// `xen,path` names (which must be assignable).
fn partial_device(m: &Machine<'_, '_>, d: &PartialDevice<'_>) -> Result<Device, String> {
    let mut node = None;
    let mut path = d.path.clone();
    if let Some(hp) = d.host_path {
        let i = m
            .tree
            .lookup(hp)
            .ok_or_else(|| alloc::format!("xen,path {hp} is not in the host device tree"))?;
        if let Some(why) = kept(m.tree, i, &m.keep) {
            return Err(alloc::format!("xen,path {hp} is {why}"));
        }
        node = Some(i);
        path = m.tree.nodes[i].path.clone();
    }
    let mut spis = Vec::new();
    for irq in &d.irqs {
        if irq.intid < 32 {
            return Err(alloc::format!(
                "its interrupt {} is a per-CPU one (PPI), which no single VM can be given",
                irq.intid
            ));
        }
        spis.push(Spi {
            intid: irq.intid,
            level: irq.is_level(),
        });
    }
    Ok(Device {
        path,
        node,
        from_partial: true,
        mmio: d
            .regs
            .iter()
            .filter(|r| r.1 != 0)
            .map(|&(pa, size, ipa)| Mmio {
                pa: PhysAddr(pa),
                ipa: Ipa(ipa),
                size,
            })
            .collect(),
        spis,
        dma: !d.compatible.is_some_and(|c| NO_DMA_COMPATIBLE.contains(&c)),
    })
}

/// Page-granular mappings of `mmio`, sorted by guest address and merged where
/// both sides are contiguous.
fn merge<'m>(mmio: impl Iterator<Item = &'m Mmio>) -> Vec<Mapping> {
    let mut pages: Vec<Mapping> = mmio
        .filter_map(|r| {
            let (s, e) = page_range(r.pa.0, r.size)?;
            let ipa = r.ipa.0 & !(PAGE - 1);
            Some(Mapping {
                pa: PhysAddr(s),
                ipa: Ipa(ipa),
                size: e - s,
            })
        })
        .collect();
    crate::sort::sort_by_key(&mut pages, |p| (p.ipa, p.pa));
    let mut out: Vec<Mapping> = Vec::new();
    for p in pages {
        if let Some(last) = out.last_mut() {
            let l_ipa_end = last.ipa.0 + last.size;
            let same_shift = p.ipa.0.wrapping_sub(p.pa.0) == last.ipa.0.wrapping_sub(last.pa.0);
            if same_shift && p.ipa.0 <= l_ipa_end {
                let end = (p.ipa.0 + p.size).max(l_ipa_end);
                last.size = end - last.ipa.0;
                continue;
            }
        }
        out.push(p);
    }
    out
}

/// Whether a guest's device mapping would cover its RAM or the addresses the
/// hypervisor emulates there (given as ranges): `Some(text)` says which.
pub fn ipa_clash(maps: &[Mapping], reserved: &[(Range<Ipa>, &str)]) -> Option<String> {
    for m in maps {
        for (r, what) in reserved {
            if overlaps((m.ipa.0, m.ipa.0 + m.size), (r.start.0, r.start.0 + r.size)) {
                return Some(alloc::format!(
                    "its MMIO at {:#x}-{:#x} would cover {what}",
                    m.ipa.0,
                    m.ipa.0 + m.size - 1
                ));
            }
        }
    }
    None
}
