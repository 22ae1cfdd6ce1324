//! Property decoding and the tree walk shared by the parser and the guest-DTB
//! writer.
//!
//! We use `fdt` 0.1.5 to find nodes and iterate their properties, but decode
//! every value ourselves from the raw bytes:
//!
//! * `fdt`'s `reg()`/`raw_reg()` take the cell counts from the immediate parent
//!   only and fall back to 2/1 when the parent has none. QEMU's `guest-loader`
//!   writes `/chosen/module@*` `reg` with the *root's* cell counts (2/2) and
//!   `/chosen` has no `#address-cells`: `fdt` would read the size from the
//!   wrong cell. We follow Linux and Xen (`of_n_addr_cells`,
//!   `dt_n_addr_cells`): a node without `#address-cells`/`#size-cells`
//!   inherits its parent's, and the root defaults to 2/1.
//! * `reg` addresses are bus addresses; we translate them through every
//!   ancestor's `ranges` (the Raspberry Pi 4 puts its UARTs and the GIC under
//!   `/soc`, whose `ranges` move 0x7e000000 to 0xfe000000).
//! * Helpers like `Chosen::bootargs` or `Root::model` slice or `unwrap` on
//!   empty or missing values; our [`str_prop`] does not.
#![forbid(unsafe_code)]

use super::{blob::MAX_DEPTH, DtError};
use fdt::node::{FdtNode, NodeProperty};

/// The longest node path kept in [`super::MachineInfo`] (QEMU's are under 30
/// bytes, the Raspberry Pi's under 40).
pub const MAX_PATH: usize = 64;

/// A node path such as `/pl011@9040000`.
pub type NodePath = heapless::String<MAX_PATH>;

/// The path buffer of the walk: longer than [`NodePath`] so that a long path
/// elsewhere in the tree does not fail the parse; only stored paths must fit.
type WalkPath = heapless::String<256>;

/// A device-tree string list (`compatible`), borrowed from the blob.
#[derive(Clone, Copy, PartialEq, Eq, Default)]
pub struct StringList<'a>(&'a [u8]);

impl<'a> StringList<'a> {
    /// Wraps a raw property value (NUL-separated strings).
    pub fn new(raw: &'a [u8]) -> Self {
        Self(raw)
    }
    /// The strings, in order; non-UTF-8 entries are skipped.
    pub fn iter(&self) -> impl Iterator<Item = &'a str> + 'a {
        self.0
            .split(|&b| b == 0)
            .filter(|s| !s.is_empty())
            .filter_map(|s| core::str::from_utf8(s).ok())
    }
    /// The first string, the most specific one.
    pub fn first(&self) -> Option<&'a str> {
        self.iter().next()
    }
    /// Whether `s` is one of the strings.
    pub fn contains(&self, s: &str) -> bool {
        self.iter().any(|c| c == s)
    }
    /// The raw bytes, NUL separators included.
    pub fn raw(&self) -> &'a [u8] {
        self.0
    }
}

impl core::fmt::Debug for StringList<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

/// A string property without its trailing NUL; `None` if empty or not UTF-8.
pub fn str_prop(value: &[u8]) -> Option<&str> {
    let end = value.iter().position(|&b| b == 0).unwrap_or(value.len());
    let s = core::str::from_utf8(&value[..end]).ok()?;
    (!s.is_empty()).then_some(s)
}

/// The `i`-th big-endian cell of `value`.
pub fn cell(value: &[u8], i: usize) -> Option<u32> {
    let b = value.get(i * 4..i * 4 + 4)?;
    Some(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
}

/// A one-cell property.
pub fn u32_prop(value: &[u8]) -> Option<u32> {
    (value.len() == 4).then(|| cell(value, 0)).flatten()
}

/// A number of `n` cells (0, 1 or 2) starting at cell `i`.
pub fn cells_u64(value: &[u8], i: usize, n: u32) -> Option<u64> {
    match n {
        0 => Some(0),
        1 => cell(value, i).map(u64::from),
        2 => Some((u64::from(cell(value, i)?) << 32) | u64::from(cell(value, i + 1)?)),
        _ => None,
    }
}

/// A one- or two-cell number property (`memory` in KiB, `cpu-release-addr`).
pub fn u64_prop(value: &[u8]) -> Option<u64> {
    match value.len() {
        4 => cells_u64(value, 0, 1),
        8 => cells_u64(value, 0, 2),
        _ => None,
    }
}

/// The `(address, size)` pairs of a `reg` value with the given cell counts.
/// `Err` unless the value is a whole number of entries with counts of at most 2.
pub fn reg_entries(
    value: &[u8],
    ac: u32,
    sc: u32,
) -> Result<impl Iterator<Item = (u64, u64)> + '_, DtError> {
    let stride = (ac + sc) as usize;
    if ac == 0 || ac > 2 || sc > 2 || !value.len().is_multiple_of(stride * 4) {
        return Err(DtError::BadProperty("reg"));
    }
    Ok((0..value.len() / (stride * 4)).filter_map(move |e| {
        let i = e * stride;
        Some((
            cells_u64(value, i, ac)?,
            cells_u64(value, i + ac as usize, sc)?,
        ))
    }))
}

/// How a node's `ranges` maps its children's addresses into its own parent's.
#[derive(Clone, Copy, Debug)]
pub enum Ranges<'a> {
    /// No `ranges`: children are not memory-mapped (`/cpus`, `/chosen`).
    Absent,
    /// Empty `ranges`: identity.
    Identity,
    /// `<child-addr parent-addr size>` triples.
    Map(&'a [u8]),
}

/// What a node tells its children, computed once per level of the walk.
#[derive(Clone, Copy, Debug)]
pub struct Level<'a> {
    /// `#address-cells` for the children (own or inherited).
    pub addr_cells: u32,
    /// `#size-cells` for the children (own or inherited).
    pub size_cells: u32,
    /// The node's own `ranges`.
    pub ranges: Ranges<'a>,
    /// The `interrupt-parent` phandle in force for the children.
    pub interrupt_parent: Option<u32>,
}

/// One visited node with everything the walk knows about its position.
pub struct Visit<'v, 'b, 'a> {
    /// The node.
    pub node: FdtNode<'b, 'a>,
    /// Its full path (`/` for the root).
    pub path: &'v str,
    /// Levels from the root down to this node's parent (empty for the root).
    pub parents: &'v [Level<'a>],
}

impl<'a> Visit<'_, '_, 'a> {
    /// The property `name`'s raw value.
    pub fn prop(&self, name: &str) -> Option<&'a [u8]> {
        self.node
            .properties()
            .find(|p| p.name == name)
            .map(|p| p.value)
    }
    /// The node's `compatible` list (empty if none).
    pub fn compatible(&self) -> StringList<'a> {
        StringList::new(self.prop("compatible").unwrap_or(&[]))
    }
    /// Whether `status` is absent, `okay` or `ok`.
    pub fn enabled(&self) -> bool {
        self.prop("status")
            .and_then(str_prop)
            .is_none_or(|s| s == "okay" || s == "ok")
    }
    /// The cell counts of this node's `reg`.
    pub fn reg_cells(&self) -> (u32, u32) {
        self.parents
            .last()
            .map_or((2, 1), |l| (l.addr_cells, l.size_cells))
    }
    /// `reg` entries as written (bus addresses, not translated).
    pub fn raw_reg(&self) -> Result<impl Iterator<Item = (u64, u64)> + 'a, DtError> {
        let (ac, sc) = self.reg_cells();
        reg_entries(self.prop("reg").unwrap_or(&[]), ac, sc)
    }
    /// `reg` entries translated to CPU physical addresses through every
    /// ancestor's `ranges`; `Err` if a bus on the way cannot translate them.
    pub fn reg(&self) -> Result<heapless::Vec<(u64, u64), 8>, DtError> {
        let mut out = heapless::Vec::new();
        for (addr, size) in self.raw_reg()? {
            let pa = translate(self.parents, addr).ok_or(DtError::BadProperty("ranges"))?;
            out.push((pa, size))
                .map_err(|_| DtError::TooMany("reg entries"))?;
        }
        Ok(out)
    }
    /// The `interrupt-parent` in force for this node.
    pub fn interrupt_parent(&self) -> Option<u32> {
        self.prop("interrupt-parent")
            .and_then(u32_prop)
            .or_else(|| self.parents.last().and_then(|l| l.interrupt_parent))
    }
}

/// Translates a bus address of a node whose ancestors are `parents` (root
/// first) into a CPU physical address.
pub fn translate(parents: &[Level<'_>], mut addr: u64) -> Option<u64> {
    // parents[j] is the bus; parents[j - 1] gives the cells of its parent space.
    for j in (1..parents.len()).rev() {
        let bus = &parents[j];
        match bus.ranges {
            Ranges::Absent => return None,
            Ranges::Identity => {}
            Ranges::Map(raw) => {
                let (cac, pac, sc) = (bus.addr_cells, parents[j - 1].addr_cells, bus.size_cells);
                let stride = (cac + pac + sc) as usize;
                if stride == 0 || !raw.len().is_multiple_of(stride * 4) {
                    return None;
                }
                addr = (0..raw.len() / (stride * 4)).find_map(|e| {
                    let i = e * stride;
                    let child = cells_u64(raw, i, cac)?;
                    let parent = cells_u64(raw, i + cac as usize, pac)?;
                    let size = cells_u64(raw, i + (cac + pac) as usize, sc)?;
                    let off = addr.checked_sub(child)?;
                    (off < size).then(|| parent.checked_add(off)).flatten()
                })?;
            }
        }
    }
    Some(addr)
}

fn level_of<'a>(node: &FdtNode<'_, 'a>, parent: Option<&Level<'a>>) -> Level<'a> {
    let mut level = Level {
        addr_cells: parent.map_or(2, |p| p.addr_cells),
        size_cells: parent.map_or(1, |p| p.size_cells),
        ranges: Ranges::Absent,
        interrupt_parent: parent.and_then(|p| p.interrupt_parent),
    };
    for p in node.properties() {
        let NodeProperty { name, value } = p;
        match name {
            // Validated to be one cell by `blob::check`.
            "#address-cells" => level.addr_cells = cell(value, 0).unwrap_or(2),
            "#size-cells" => level.size_cells = cell(value, 0).unwrap_or(1),
            "ranges" if value.is_empty() => level.ranges = Ranges::Identity,
            "ranges" => level.ranges = Ranges::Map(value),
            "interrupt-parent" => level.interrupt_parent = u32_prop(value),
            _ => {}
        }
    }
    level
}

/// The node at exactly `path` (every component with its unit address, as
/// written).
///
/// `fdt`'s `find_node` is not used past the root: when a path is missing it
/// retries it as an alias name, and an alias whose value names itself makes it
/// recurse until the stack overflows.
pub fn find_path<'b, 'a>(fdt: &'b fdt::Fdt<'a>, path: &str) -> Option<FdtNode<'b, 'a>> {
    let mut node = fdt.find_node("/")?;
    for part in path.strip_prefix('/')?.split('/').filter(|p| !p.is_empty()) {
        node = node.children().find(|c| c.name == part)?;
    }
    Some(node)
}

/// Visits every node depth-first, parents before children. `f` returns whether
/// to descend into the node's children.
pub fn walk<'a, F>(fdt: &fdt::Fdt<'a>, f: &mut F) -> Result<(), DtError>
where
    F: FnMut(&Visit<'_, '_, 'a>) -> Result<bool, DtError>,
{
    // The root always exists in a checked blob, so no alias fallback happens.
    let root = fdt.find_node("/").ok_or(DtError::Missing("/"))?;
    let mut levels: heapless::Vec<Level<'a>, MAX_DEPTH> = heapless::Vec::new();
    let mut path = WalkPath::new();
    walk_node(root, &mut path, &mut levels, f)
}

fn walk_node<'b, 'a, F>(
    node: FdtNode<'b, 'a>,
    path: &mut WalkPath,
    levels: &mut heapless::Vec<Level<'a>, MAX_DEPTH>,
    f: &mut F,
) -> Result<(), DtError>
where
    F: FnMut(&Visit<'_, '_, 'a>) -> Result<bool, DtError>,
{
    let descend = f(&Visit {
        node,
        path: if path.is_empty() { "/" } else { path },
        parents: levels,
    })?;
    if !descend {
        return Ok(());
    }
    let level = level_of(&node, levels.last());
    levels.push(level).map_err(|_| DtError::TooDeep)?;
    let mark = path.len();
    for child in node.children() {
        path.push('/').map_err(|_| DtError::PathTooLong)?;
        path.push_str(child.name)
            .map_err(|_| DtError::PathTooLong)?;
        walk_node(child, path, levels, f)?;
        path.truncate(mark);
    }
    levels.pop();
    Ok(())
}
