//! The guest device tree pass: a guest's DTB as [`crate::dt::guest_dtb`]
//! wrote it, plus the VM's assigned devices.
//!
//! The guest's tree is re-emitted node by node; where the host tree has an
//! assigned node under the same parent, it is added there with its whole
//! subtree (its properties byte for byte, `phandle` included, so
//! `interrupt-parent` still names the GIC the guest tree keeps). A node
//! below a bus the guest tree lacks brings the bus along as a shell (its own
//! properties, only the children that are wanted).
//!
//! **Closure.** Every phandle an added node references ([`super::phandles`])
//! must resolve in the guest: a provider with neither MMIO nor interrupts (a
//! `fixed-clock`, a fixed regulator) is copied; a provider that is a real
//! device of someone else (a clock controller the VM was not given) is
//! stubbed: its name, phandle and `#...-cells` with `status = "disabled"`,
//! so the tree stays well-formed and the consumer's driver reports the
//! missing provider itself. References to the hypervisor's own devices
//! (`iommus`, `msi-parent`/`msi-map` to the ITS) are dropped.
//!
//! **Memory.** When the VM's RAM is several ranges (a 1:1 VM whose free RAM
//! is not contiguous), the memory node lists them all.
//!
//! **dom0less.** A partial tree's `/passthrough` node is added as it is,
//! minus `xen,*` properties, its phandles renumbered above every phandle of
//! the guest tree, and `interrupt-parent`s that point outside it (Xen's
//! `GUEST_PHANDLE_GIC`, the partial's own GIC stub) pointed at the guest's GIC.
#![forbid(unsafe_code)]

use alloc::string::String;
use alloc::vec::Vec;
use fdt::node::FdtNode;

use super::phandles;
use super::resolve::VmDevices;
use super::tree::HostTree;
use crate::addr::{Ipa, Range};
use crate::dt::props::{self, u32_prop};
use crate::dt::{blob, DtError, PropMatch, DROPPED_PROPS};

/// Properties of added nodes that point at what only the hypervisor has.
const DROPPED: &[&str] = &[
    "iommus",
    "iommu-map",
    "iommu-map-mask",
    "msi-parent",
    "msi-map",
    "msi-map-mask",
];

fn copied(name: &str) -> bool {
    !DROPPED.contains(&name)
        && !DROPPED_PROPS.iter().any(|r| match r.matches {
            PropMatch::Prefix(p) => name.starts_with(p),
            PropMatch::Name(n) => name == n,
            PropMatch::LongerThan(n) => name.len() > n,
        })
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    /// The node and its whole subtree.
    Full,
    /// Its properties and the wanted children.
    Shell,
    /// Name, phandle and cell counts, disabled.
    Stub,
}

/// Host node index -> how it is added, in index order: the subset of a
/// `BTreeMap<usize, Mode>` this file uses, over a vector indexed by node (a
/// `BTreeMap` of its own cost the Image about 4 KiB of code).
struct Modes(Vec<Option<Mode>>);

impl Modes {
    fn new(nodes: usize) -> Self {
        Self(alloc::vec![None; nodes])
    }
    /// `i` is an index into the same host tree; one outside it is ignored.
    fn insert(&mut self, i: usize, mode: Mode) {
        if let Some(m) = self.0.get_mut(i) {
            *m = Some(mode);
        }
    }
    fn get(&self, i: usize) -> Option<Mode> {
        self.0.get(i).copied().flatten()
    }
    fn or_insert(&mut self, i: usize, mode: Mode) {
        if let Some(m) = self.0.get_mut(i) {
            m.get_or_insert(mode);
        }
    }
    fn remove(&mut self, i: usize) {
        if let Some(m) = self.0.get_mut(i) {
            *m = None;
        }
    }
    fn iter(&self) -> impl Iterator<Item = (usize, Mode)> + '_ {
        self.0
            .iter()
            .enumerate()
            .filter_map(|(i, m)| Some((i, (*m)?)))
    }
    fn keys(&self) -> impl Iterator<Item = usize> + '_ {
        self.iter().map(|(i, _)| i)
    }
}

fn werr(e: vm_fdt::Error) -> DtError {
    use vm_fdt::Error as E;
    DtError::Write(match e {
        E::InvalidNodeName => "invalid node name",
        E::InvalidPropertyName => "invalid property name",
        E::InvalidString => "string with a NUL",
        E::DuplicatePhandle => "duplicate phandle",
        E::TotalSizeTooLarge | E::PropertyValueTooLarge => "too large",
        _ => "internal writer error",
    })
}

/// What the pass adds.
pub struct Additions<'d> {
    /// The VM's devices.
    pub devices: &'d VmDevices,
    /// Its dom0less partial tree, if it has one.
    pub partial: Option<&'d [u8]>,
    /// Its RAM, when the memory node must list several ranges (empty: keep
    /// the guest tree's).
    pub memory: &'d [Range<Ipa>],
}

/// The guest DTB `guest` with `add`'s devices, and notes for the console
/// (stubbed providers, dropped references).
pub fn add_devices(
    guest: &[u8],
    host: &[u8],
    tree: &HostTree<'_>,
    add: &Additions<'_>,
) -> Result<(Vec<u8>, Vec<String>), DtError> {
    let guest = blob::check(guest)?;
    let gfdt = fdt::Fdt::new(guest).map_err(|_| DtError::BadHeader)?;
    let host = blob::check(host)?;
    let hfdt = fdt::Fdt::new(host).map_err(|_| DtError::BadHeader)?;
    let mut notes = Vec::new();

    // Phandles the guest tree already defines.
    let mut defined: Vec<u32> = Vec::new();
    for n in gfdt.all_nodes() {
        if let Some(ph) = prop(&n, "phandle").and_then(u32_prop) {
            defined.push(ph);
        }
    }

    // Host nodes to add, and how.
    let mut modes = Modes::new(tree.nodes.len());
    let mut queue: Vec<usize> = Vec::new();
    for d in add.devices.devices.iter().filter(|d| !d.from_partial) {
        if let Some(i) = d.node {
            modes.insert(i, Mode::Full);
            queue.push(i);
        }
    }
    let full = |modes: &Modes, j: usize| {
        modes
            .iter()
            .any(|(k, m)| m == Mode::Full && tree.is_within(j, k))
    };
    while let Some(i) = queue.pop() {
        for j in tree.subtree(i) {
            for &(pname, ph) in &tree.nodes[j].refs {
                if defined.contains(&ph) || !copied(pname) {
                    continue;
                }
                let Some(t) = tree.by_phandle(ph) else {
                    notes.push(alloc::format!(
                        "{}: {pname} names phandle {ph:#x}, which the host tree lacks",
                        tree.nodes[j].path
                    ));
                    continue;
                };
                if full(&modes, t) || modes.get(t) == Some(Mode::Stub) {
                    continue;
                }
                let n = &tree.nodes[t];
                if !n.has_reg && !n.has_irqs && n.windows.is_empty() {
                    modes.insert(t, Mode::Full);
                    queue.push(t);
                } else {
                    modes.insert(t, Mode::Stub);
                    notes.push(alloc::format!(
                        "{} is stubbed (disabled) in the guest's tree: {} references it, but the VM was not given it",
                        n.path, tree.nodes[j].path
                    ));
                }
            }
        }
    }
    let wanted: Vec<usize> = modes.keys().collect();
    for i in wanted {
        let mut p = tree.nodes[i].parent;
        while let Some(j) = p {
            if tree.nodes[j].depth == 0 {
                break;
            }
            modes.or_insert(j, Mode::Shell);
            p = tree.nodes[j].parent;
        }
    }
    // A node inside a Full one needs no entry of its own: it is copied with it.
    let entries: Vec<usize> = modes.keys().collect();
    for i in entries {
        if tree.nodes[i].parent.is_some_and(|p| full(&modes, p)) {
            modes.remove(i);
        }
    }

    let root_cells = root_cells(&gfdt);
    let ctx = Ctx {
        tree,
        hfdt: &hfdt,
        modes: &modes,
        memory: add.memory,
        root_cells,
    };
    let mut w = vm_fdt::FdtWriter::new().map_err(werr)?;
    let groot = props::find_path(&gfdt, "/").ok_or(DtError::Missing("/"))?;
    let top = w.begin_node("").map_err(werr)?;
    ctx.write_guest(&mut w, &groot, "/", true)?;
    if let Some(partial) = add.partial {
        let gic = prop(&groot, "interrupt-parent").and_then(u32_prop);
        let max = max_phandle(&gfdt).max(max_phandle(&hfdt));
        write_partial(&mut w, partial, max, gic, &mut notes)?;
    }
    w.end_node(top).map_err(werr)?;
    Ok((w.finish().map_err(werr)?, notes))
}

fn prop<'a>(node: &FdtNode<'_, 'a>, name: &str) -> Option<&'a [u8]> {
    node.properties().find(|p| p.name == name).map(|p| p.value)
}

fn root_cells(fdt: &fdt::Fdt<'_>) -> (u32, u32) {
    let root = props::find_path(fdt, "/");
    let get = |n: &str, d| {
        root.as_ref()
            .and_then(|r| prop(r, n))
            .and_then(u32_prop)
            .unwrap_or(d)
    };
    (get("#address-cells", 2), get("#size-cells", 1))
}

fn max_phandle(fdt: &fdt::Fdt<'_>) -> u32 {
    fdt.all_nodes()
        .filter_map(|n| prop(&n, "phandle").and_then(u32_prop))
        .max()
        .unwrap_or(0)
}

fn join(parent: &str, name: &str) -> String {
    let mut p = String::from(if parent == "/" { "" } else { parent });
    p.push('/');
    p.push_str(name);
    p
}

struct Ctx<'c, 'a> {
    tree: &'c HostTree<'a>,
    hfdt: &'c fdt::Fdt<'a>,
    modes: &'c Modes,
    memory: &'c [Range<Ipa>],
    root_cells: (u32, u32),
}

impl Ctx<'_, '_> {
    /// Re-emits a guest node (its properties, its children) and adds the host
    /// nodes wanted below it.
    fn write_guest(
        &self,
        w: &mut vm_fdt::FdtWriter,
        node: &FdtNode<'_, '_>,
        path: &str,
        is_root: bool,
    ) -> Result<(), DtError> {
        let memory = !is_root && prop(node, "device_type") == Some(b"memory\0".as_slice());
        for p in node.properties() {
            if memory && p.name == "reg" && !self.memory.is_empty() {
                w.property("reg", &self.memory_reg()?).map_err(werr)?;
            } else {
                w.property(p.name, p.value).map_err(werr)?;
            }
        }
        let mut names: Vec<&str> = Vec::new();
        for child in node.children() {
            names.push(child.name);
            let h = w.begin_node(child.name).map_err(werr)?;
            self.write_guest(w, &child, &join(path, child.name), false)?;
            w.end_node(h).map_err(werr)?;
        }
        let Some(me) = self.tree.find(path) else {
            return Ok(());
        };
        self.add_host_children(w, me, &names)
    }

    fn add_host_children(
        &self,
        w: &mut vm_fdt::FdtWriter,
        parent: usize,
        present: &[&str],
    ) -> Result<(), DtError> {
        for (i, mode) in self.modes.iter() {
            if self.tree.nodes[i].parent != Some(parent) {
                continue;
            }
            let path = &self.tree.nodes[i].path;
            let Some(node) = props::find_path(self.hfdt, path) else {
                continue;
            };
            if present.contains(&node.name) {
                if mode == Mode::Shell {
                    // The guest tree has this bus already: its children were
                    // added while re-emitting it.
                    continue;
                }
                // An assigned node the guest tree already has (cannot
                // happen for nodes the guest tree keeps: those are kept
                // by the hypervisor and never assigned).
                continue;
            }
            let h = w.begin_node(node.name).map_err(werr)?;
            match mode {
                Mode::Full => self.copy(w, &node)?,
                Mode::Shell => {
                    self.props(w, &node)?;
                    self.add_host_children(w, i, &[])?;
                }
                Mode::Stub => {
                    for p in node.properties() {
                        let keep = p.name == "phandle"
                            || (p.name.starts_with('#') && p.name.ends_with("-cells"));
                        if keep {
                            w.property(p.name, p.value).map_err(werr)?;
                        }
                    }
                    w.property_string("status", "disabled").map_err(werr)?;
                }
            }
            w.end_node(h).map_err(werr)?;
        }
        Ok(())
    }

    fn props(&self, w: &mut vm_fdt::FdtWriter, node: &FdtNode<'_, '_>) -> Result<(), DtError> {
        for p in node.properties().filter(|p| copied(p.name)) {
            w.property(p.name, p.value).map_err(werr)?;
        }
        Ok(())
    }

    fn copy(&self, w: &mut vm_fdt::FdtWriter, node: &FdtNode<'_, '_>) -> Result<(), DtError> {
        self.props(w, node)?;
        for child in node.children() {
            let h = w.begin_node(child.name).map_err(werr)?;
            self.copy(w, &child)?;
            w.end_node(h).map_err(werr)?;
        }
        Ok(())
    }

    fn memory_reg(&self) -> Result<Vec<u8>, DtError> {
        let (ac, sc) = self.root_cells;
        let mut reg = Vec::new();
        for r in self.memory {
            push_cells(&mut reg, r.start.0, ac)?;
            push_cells(&mut reg, r.size, sc)?;
        }
        Ok(reg)
    }
}

fn push_cells(out: &mut Vec<u8>, value: u64, cells: u32) -> Result<(), DtError> {
    match cells {
        1 if value <= u64::from(u32::MAX) => out.extend_from_slice(&(value as u32).to_be_bytes()),
        2 => out.extend_from_slice(&value.to_be_bytes()),
        _ => {
            return Err(DtError::InvalidParams(
                "RAM does not fit the root's cell sizes",
            ))
        }
    }
    Ok(())
}

/// Copies the partial tree's `/passthrough` node into the guest root.
fn write_partial(
    w: &mut vm_fdt::FdtWriter,
    partial: &[u8],
    base: u32,
    gic: Option<u32>,
    notes: &mut Vec<String>,
) -> Result<(), DtError> {
    let partial = blob::check(partial)?;
    let pfdt = fdt::Fdt::new(partial).map_err(|_| DtError::BadHeader)?;
    let Some(pt) = props::find_path(&pfdt, "/passthrough") else {
        return Ok(());
    };
    // Phandles defined inside /passthrough are renumbered; others are not ours.
    let mut inside: Vec<u32> = Vec::new();
    collect_phandles(&pt, &mut inside);
    let h = w.begin_node("passthrough").map_err(werr)?;
    copy_partial(w, &pfdt, &pt, "/passthrough", &inside, base, gic, notes)?;
    w.end_node(h).map_err(werr)
}

fn collect_phandles(node: &FdtNode<'_, '_>, out: &mut Vec<u32>) {
    if let Some(ph) = prop(node, "phandle").and_then(u32_prop) {
        out.push(ph);
    }
    for c in node.children() {
        collect_phandles(&c, out);
    }
}

#[allow(clippy::too_many_arguments)]
fn copy_partial(
    w: &mut vm_fdt::FdtWriter,
    pfdt: &fdt::Fdt<'_>,
    node: &FdtNode<'_, '_>,
    path: &str,
    inside: &[u32],
    base: u32,
    gic: Option<u32>,
    notes: &mut Vec<String>,
) -> Result<(), DtError> {
    let renumber = |ph: u32| ph.checked_add(base).filter(|&v| v != u32::MAX);
    for p in node.properties() {
        if p.name.starts_with("xen,") {
            continue;
        }
        if p.name == "phandle" || p.name == "linux,phandle" {
            let Some(ph) = u32_prop(p.value).and_then(renumber) else {
                return Err(DtError::BadProperty("phandle"));
            };
            w.property(p.name, &ph.to_be_bytes()).map_err(werr)?;
            continue;
        }
        if !phandles::is_reference(p.name) {
            w.property(p.name, p.value).map_err(werr)?;
            continue;
        }
        let mut cells_of = |ph: u32, cells: &str| -> Option<u32> {
            let n = pfdt.find_phandle(ph)?;
            Some(prop(&n, cells).and_then(u32_prop).unwrap_or(0))
        };
        let refs = phandles::references(p.name, p.value, &mut cells_of);
        let mut value = p.value.to_vec();
        let mut dangling = false;
        for (at, ph) in refs {
            let new = if inside.contains(&ph) {
                renumber(ph)
            } else if p.name == "interrupt-parent" {
                gic
            } else {
                None
            };
            match new {
                Some(v) => value[at * 4..at * 4 + 4].copy_from_slice(&v.to_be_bytes()),
                None => dangling = true,
            }
        }
        if dangling {
            notes.push(alloc::format!(
                "dom0less {path}: `{}` names a node outside /passthrough: left out",
                p.name
            ));
            continue;
        }
        w.property(p.name, &value).map_err(werr)?;
    }
    for child in node.children() {
        let h = w.begin_node(child.name).map_err(werr)?;
        let cpath = join(path, child.name);
        copy_partial(w, pfdt, &child, &cpath, inside, base, gic, notes)?;
        w.end_node(h).map_err(werr)?;
    }
    Ok(())
}
