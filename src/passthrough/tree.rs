//! The host device tree as assignment sees it: every node with its path, its
//! MMIO (translated to CPU physical addresses), its GIC interrupts and the
//! phandles it references, gathered in one walk.
//!
//! Unlike [`crate::dt::parse`], this allocates (it runs once the heap is up)
//! and keeps every node, because any node may be asked for by path.
//! Nothing here judges: a node whose `reg` cannot be translated or whose
//! interrupts do not go to the GIC records why, and [`super::resolve`]
//! decides what that means for the request.
#![forbid(unsafe_code)]

use alloc::string::{String, ToString};
use alloc::vec::Vec;

use super::phandles;
use crate::dt::props::{self, str_prop, u32_prop, StringList, Visit};
use crate::dt::{DtError, Irq, MachineInfo};

/// Why a `reg` has no CPU address: a bus on the way has no (matching)
/// `ranges`. For a device's children this means the `reg` is not MMIO at all
/// (a PHY's MDIO address, an I2C address).
pub const UNTRANSLATED: &str = "its reg cannot be translated through its buses' ranges";

/// A memory-mapped range of a node, at its CPU physical address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Reg {
    /// CPU physical address.
    pub addr: u64,
    /// Size in bytes.
    pub size: u64,
}

/// One node of the host tree.
#[derive(Clone, Debug)]
pub struct Node<'a> {
    /// Full path (`/` for the root).
    pub path: String,
    /// Index of the parent in [`HostTree::nodes`].
    pub parent: Option<usize>,
    /// Depth (the root is 0).
    pub depth: usize,
    /// `phandle`.
    pub phandle: Option<u32>,
    /// `compatible`.
    pub compatible: StringList<'a>,
    /// `status` absent, `okay` or `ok`.
    pub enabled: bool,
    /// `device_type`.
    pub device_type: Option<&'a str>,
    /// The node has a `reg` property.
    pub has_reg: bool,
    /// `reg`, translated; `Err` says why it could not be.
    pub reg: Result<Vec<Reg>, &'static str>,
    /// PCI host bridges: the CPU-side windows of `ranges` (memory and I/O
    /// space), which are MMIO of the bridge as much as its `reg`.
    pub windows: Vec<Reg>,
    /// Interrupts (`interrupts`, `interrupts-extended`, a PCI bridge's
    /// `interrupt-map`) decoded for the GIC; `Err` says why they cannot be.
    pub irqs: Result<Vec<Irq>, String>,
    /// The node has `interrupts`, `interrupts-extended` or `interrupt-map`.
    pub has_irqs: bool,
    /// A provider: it has some `#...-cells` (clocks, GPIOs, resets...) or is
    /// an interrupt or GPIO controller.
    pub provider: bool,
    /// A plain bus whose children are devices (`simple-bus`, no `reg`).
    pub simple_bus: bool,
    /// Phandles its properties reference (property name, phandle).
    pub refs: Vec<(&'a str, u32)>,
    /// The IOMMU its DMA goes through: the first phandle of `iommus`.
    pub iommu: Option<u32>,
}

/// The host tree's nodes in DT order (parents before children).
pub struct HostTree<'a> {
    /// Every node.
    pub nodes: Vec<Node<'a>>,
    /// The GIC's phandle.
    pub gic_phandle: Option<u32>,
    /// `/aliases`: (name, path).
    pub aliases: Vec<(&'a str, &'a str)>,
}

impl<'a> HostTree<'a> {
    /// Reads `dtb` (already parsed as `info`, which names the GIC).
    pub fn new(dtb: &'a [u8], info: &MachineInfo<'_>) -> Result<Self, DtError> {
        let dtb = crate::dt::blob::check(dtb)?;
        let fdt = fdt::Fdt::new(dtb).map_err(|_| DtError::BadHeader)?;
        let gic_phandle = info.gic.as_ref().and_then(|g| g.phandle);
        let gic_cells = info.gic.as_ref().map_or(3, |g| g.interrupt_cells);
        let gic_addr_cells = info
            .gic
            .as_ref()
            .and_then(|g| props::find_path(&fdt, &g.path))
            .and_then(|n| n.properties().find(|p| p.name == "#address-cells"))
            .and_then(|p| u32_prop(p.value))
            .unwrap_or(0);
        let gic = GicSpec {
            phandle: gic_phandle,
            cells: gic_cells,
            addr_cells: gic_addr_cells,
        };
        let mut nodes: Vec<Node<'a>> = Vec::new();
        let mut stack: Vec<usize> = Vec::new();
        props::walk(&fdt, &mut |v| {
            let depth = v.parents.len();
            stack.truncate(depth);
            let node = read_node(&fdt, v, &gic, stack.last().copied());
            stack.push(nodes.len());
            nodes.push(node);
            Ok(true)
        })?;
        let mut aliases = Vec::new();
        if let Some(a) = props::find_path(&fdt, "/aliases") {
            for p in a.properties() {
                if let Some(target) = str_prop(p.value) {
                    aliases.push((p.name, target));
                }
            }
        }
        Ok(Self {
            nodes,
            gic_phandle,
            aliases,
        })
    }

    /// The node at `path` exactly.
    pub fn find(&self, path: &str) -> Option<usize> {
        self.nodes.iter().position(|n| n.path == path)
    }

    /// A path or an alias, to a node.
    pub fn lookup(&self, name: &str) -> Option<usize> {
        if name.starts_with('/') {
            return self.find(name);
        }
        let (_, target) = self.aliases.iter().find(|(a, _)| *a == name)?;
        self.find(target)
    }

    /// The node with `phandle`.
    pub fn by_phandle(&self, phandle: u32) -> Option<usize> {
        self.nodes.iter().position(|n| n.phandle == Some(phandle))
    }

    /// Whether `node` is `ancestor` or lies below it.
    pub fn is_within(&self, node: usize, ancestor: usize) -> bool {
        let mut n = Some(node);
        while let Some(i) = n {
            if i == ancestor {
                return true;
            }
            n = self.nodes[i].parent;
        }
        false
    }

    /// `node` and every node below it, in DT order.
    pub fn subtree(&self, node: usize) -> impl Iterator<Item = usize> + '_ {
        (node..self.nodes.len()).take_while(move |&i| i == node || self.is_within(i, node))
    }
}

struct GicSpec {
    phandle: Option<u32>,
    cells: u32,
    addr_cells: u32,
}

fn read_node<'a>(
    fdt: &fdt::Fdt<'a>,
    v: &Visit<'_, '_, 'a>,
    gic: &GicSpec,
    parent: Option<usize>,
) -> Node<'a> {
    let has_reg = v.prop("reg").is_some();
    let reg = if has_reg {
        match v.reg() {
            Ok(r) => Ok(r.iter().map(|&(addr, size)| Reg { addr, size }).collect()),
            Err(DtError::BadProperty("ranges")) => Err(UNTRANSLATED),
            Err(DtError::TooMany(_)) => Err("its reg has more entries than supported (8)"),
            Err(_) => Err("its reg is malformed"),
        }
    } else {
        Ok(Vec::new())
    };
    let device_type = v.prop("device_type").and_then(str_prop);
    let windows = if device_type == Some("pci") {
        pci_windows(v)
    } else {
        Vec::new()
    };
    let has_irqs = ["interrupts", "interrupts-extended", "interrupt-map"]
        .iter()
        .any(|p| v.prop(p).is_some());
    let provider = v.node.properties().any(|p| {
        (p.name.starts_with('#')
            && p.name.ends_with("-cells")
            && p.name != "#address-cells"
            && p.name != "#size-cells")
            || p.name == "interrupt-controller"
            || p.name == "gpio-controller"
    });
    let compatible = v.compatible();
    Node {
        path: v.path.to_string(),
        parent,
        depth: v.parents.len(),
        phandle: v.prop("phandle").and_then(u32_prop),
        compatible,
        enabled: v.enabled(),
        device_type,
        has_reg,
        reg,
        windows,
        irqs: irqs_of(fdt, v, gic),
        has_irqs,
        provider,
        simple_bus: !has_reg && compatible.contains("simple-bus"),
        refs: phandles::node_references(fdt, &v.node),
        iommu: v
            .prop("iommus")
            .and_then(|p| p.get(..4))
            .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]])),
    }
}

/// The CPU-side windows of a PCI host bridge's `ranges`: `<pci-addr(3)
/// cpu-addr(parent's cells) size(2)>` entries.
fn pci_windows(v: &Visit<'_, '_, '_>) -> Vec<Reg> {
    let mut out = Vec::new();
    let Some(raw) = v.prop("ranges") else {
        return out;
    };
    let (pac, _) = v.reg_cells();
    let cac = v.prop("#address-cells").and_then(u32_prop).unwrap_or(3);
    let sc = v.prop("#size-cells").and_then(u32_prop).unwrap_or(2);
    let stride = (cac + pac + sc) as usize;
    if stride == 0 || !raw.len().is_multiple_of(stride * 4) {
        return out;
    }
    for e in 0..raw.len() / (stride * 4) {
        let i = e * stride;
        let cpu = props::cells_u64(raw, i + cac as usize, pac);
        let size = props::cells_u64(raw, i + (cac + pac) as usize, sc);
        if let (Some(cpu), Some(size)) = (cpu, size) {
            if let Some(addr) = props::translate(v.parents, cpu) {
                out.push(Reg { addr, size });
            }
        }
    }
    out
}

fn gic_irq(spec: &[u8], cells: u32) -> Option<Irq> {
    if cells < 3 {
        return None;
    }
    Irq::from_gic_cells(cell(spec, 0)?, cell(spec, 1)?, cell(spec, 2)?)
}

fn cell(v: &[u8], i: usize) -> Option<u32> {
    props::cell(v, i)
}

fn irqs_of(fdt: &fdt::Fdt<'_>, v: &Visit<'_, '_, '_>, gic: &GicSpec) -> Result<Vec<Irq>, String> {
    let mut out = Vec::new();
    let path_of = |ph: u32| -> String {
        fdt.find_phandle(ph)
            .map(|n| String::from(n.name))
            .unwrap_or_else(|| alloc::format!("phandle {ph:#x}"))
    };
    if let Some(ext) = v.prop("interrupts-extended") {
        let mut i = 0;
        while let Some(ph) = cell(ext, i) {
            if Some(ph) != gic.phandle {
                return Err(alloc::format!(
                    "its interrupts go to {}, not the GIC",
                    path_of(ph)
                ));
            }
            let spec = ext.get((i + 1) * 4..).unwrap_or(&[]);
            out.push(gic_irq(spec, gic.cells).ok_or("its interrupts-extended is malformed")?);
            i += 1 + gic.cells as usize;
        }
    } else if let Some(ints) = v.prop("interrupts") {
        let parent = v.interrupt_parent();
        if parent.is_some() && parent != gic.phandle {
            return Err(alloc::format!(
                "its interrupts go to {}, not the GIC",
                path_of(parent.unwrap_or(0))
            ));
        }
        let stride = gic.cells as usize * 4;
        if stride == 0 || ints.is_empty() || !ints.len().is_multiple_of(stride) {
            return Err("its interrupts property is malformed".into());
        }
        for spec in ints.chunks(stride) {
            out.push(gic_irq(spec, gic.cells).ok_or("its interrupts property is malformed")?);
        }
    }
    if let Some(map) = v.prop("interrupt-map") {
        // <child-unit-address child-spec parent parent-unit-address parent-spec>
        let cac = v.prop("#address-cells").and_then(u32_prop).unwrap_or(0) as usize;
        let cic = v.prop("#interrupt-cells").and_then(u32_prop).unwrap_or(1) as usize;
        let mut i = cac + cic;
        while let Some(ph) = cell(map, i) {
            if Some(ph) != gic.phandle {
                return Err(alloc::format!(
                    "its interrupt-map goes to {}, not the GIC",
                    path_of(ph)
                ));
            }
            let spec_at = i + 1 + gic.addr_cells as usize;
            let spec = map.get(spec_at * 4..).unwrap_or(&[]);
            let irq = gic_irq(spec, gic.cells).ok_or("its interrupt-map is malformed")?;
            if !out.contains(&irq) {
                out.push(irq);
            }
            i = spec_at + gic.cells as usize + cac + cic;
        }
    }
    Ok(out)
}
