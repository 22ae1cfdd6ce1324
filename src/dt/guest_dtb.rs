//! A guest's device tree, derived from the host's.
//!
//! The guest sees the host's machine minus everything it is not given: the
//! host tree is walked with `fdt` and re-emitted with `vm-fdt`, node by node,
//! under [`KEEP_RULES`]: a table read top to bottom, first match wins, each
//! row saying why. Nodes whose content is the VM's own (`/chosen`, `/aliases`,
//! `/cpus`, memory, `/psci`) are generated from [`GuestDtbParams`] rather
//! than edited, so nothing of the host's (module nodes, dom0less domains,
//! `cpu-map`, idle states, the host's RAM, `kaslr-seed`) can leak through.
//! Copied nodes keep their properties byte for byte, `phandle` included, so
//! references between kept nodes (`interrupt-parent`, `clocks`) stay valid.
//!
//! The GIC node passes through with its regions unchanged for now (the vGIC
//! work will rewrite them) but without its children: the ITS / GICv2m MSI
//! frames serve only PCIe, which the guest does not get.
#![forbid(unsafe_code)]

use alloc::string::String;
use alloc::vec::Vec;

use super::machine::MachineInfo;
use super::props::{find_path, str_prop, u32_prop, StringList};
use super::{blob, DtError};
use crate::addr::{Ipa, Range};
use fdt::node::FdtNode;

/// The emulated PL011 a guest gets as its console (`crate::vuart`), written as
/// a node of its own (`/pl011@<ipa>`, with the `apb_pclk` fixed clock Linux's
/// `amba-pl011` driver needs) instead of a copy of a host UART: every guest sees
/// the same PL011 whatever the board's UART is. Where it sits is the board
/// layer's rule (`crate::board::emulated_uart`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EmulatedUart {
    /// Its IPA (4 KiB window).
    pub ipa: u64,
    /// Its interrupt (an SPI's INTID), if it has one.
    pub intid: Option<u32>,
}

/// Path of the emulated PL011's node in a guest tree.
pub fn emulated_uart_path(u: &EmulatedUart) -> String {
    alloc::format!("/pl011@{:x}", u.ipa)
}

/// The emulated PL011's reference clock (any fixed rate serves: the model
/// ignores baud settings; QEMU `virt` says 24 MHz).
const APB_PCLK_HZ: u32 = 24_000_000;

/// What the VM is given.
#[derive(Debug, Clone, Copy)]
pub struct GuestDtbParams<'p> {
    /// Number of vCPUs; their MPIDRs are Aff0 = 0..vcpus-1.
    pub vcpus: usize,
    /// The VM's RAM as the guest sees it.
    pub ram: Range<Ipa>,
    /// `/chosen/bootargs`.
    pub bootargs: Option<&'p str>,
    /// Where the initrd sits in guest memory (`linux,initrd-start/-end`).
    pub initrd: Option<Range<Ipa>>,
    /// Host path of the UART emulated as the guest console (QEMU `virt`: the
    /// `serial0` PL011, `/pl011@9000000`). Becomes `serial0` and `stdout-path`.
    pub console_path: &'p str,
    /// Host paths the guest must not see (the hypervisor's debug UART).
    pub hidden_paths: &'p [&'p str],
    /// The emulated PL011, written as its own node; then the host node at
    /// `console_path` is not copied (it names the physical UART behind it).
    /// `None`: the host's `console_path` node is copied as it is.
    pub uart: Option<EmulatedUart>,
    /// The VM has a virtual PMU: the host's PMU node (`arm,armv8-pmuv3`, its
    /// overflow PPI) is copied.
    pub pmu: bool,
}

/// What happens to a host node in a guest's tree.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Keep {
    /// The node and its whole subtree, as they are.
    Copy,
    /// The node's properties, none of its children.
    Shallow,
    /// The node's properties and those children that are kept themselves;
    /// dropped if none is.
    Bus,
    /// Not copied: written from the VM's parameters instead.
    Generated,
    /// Left out.
    Drop,
}

/// Which host nodes a rule applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Match {
    /// Listed in [`GuestDtbParams::hidden_paths`].
    Hidden,
    /// This exact path.
    Path(&'static str),
    /// `device_type` is this.
    DeviceType(&'static str),
    /// `compatible` has a string starting with this.
    CompatiblePrefix(&'static str),
    /// The GIC found by [`super::parse`].
    Gic,
    /// [`GuestDtbParams::console_path`].
    Console,
    /// A clock provider the console references (transitively).
    ConsoleClock,
    /// The PMU node (`compatible` `arm,*pmuv3`), when the VM has a PMU.
    Pmu,
    /// Any node with children.
    HasChildren,
    /// Any node.
    Any,
}

/// One row of [`KEEP_RULES`].
#[derive(Debug, Clone, Copy)]
pub struct KeepRule {
    /// Which nodes.
    pub matches: Match,
    /// What happens to them.
    pub keep: Keep,
    /// Why.
    pub why: &'static str,
}

const fn rule(matches: Match, keep: Keep, why: &'static str) -> KeepRule {
    KeepRule { matches, keep, why }
}

/// The guest-DTB keep table: first match wins.
pub const KEEP_RULES: &[KeepRule] = &[
    rule(
        Match::Hidden,
        Keep::Drop,
        "the hypervisor's own devices (its debug UART)",
    ),
    rule(
        Match::Path("/chosen"),
        Keep::Generated,
        "the VM's bootargs, initrd and console; no modules or domains",
    ),
    rule(
        Match::Path("/aliases"),
        Keep::Generated,
        "only serial0, the guest console",
    ),
    rule(
        Match::Path("/cpus"),
        Keep::Generated,
        "exactly the VM's vCPUs, PSCI-enabled; no cpu-map or idle states",
    ),
    rule(
        Match::DeviceType("memory"),
        Keep::Generated,
        "one memory node with the VM's RAM",
    ),
    rule(
        Match::Path("/psci"),
        Keep::Generated,
        "PSCI through the hypervisor: method hvc",
    ),
    rule(
        Match::CompatiblePrefix("arm,psci"),
        Keep::Generated,
        "PSCI through the hypervisor: method hvc",
    ),
    rule(
        Match::Path("/reserved-memory"),
        Keep::Drop,
        "host reservations; the VM's RAM is its own",
    ),
    rule(
        Match::Gic,
        Keep::Shallow,
        "regions unchanged for now; MSI frames (ITS, v2m) serve only PCIe",
    ),
    rule(
        Match::CompatiblePrefix("arm,armv8-timer"),
        Keep::Copy,
        "the architected timer's PPIs",
    ),
    rule(
        Match::CompatiblePrefix("arm,armv7-timer"),
        Keep::Copy,
        "the architected timer's PPIs",
    ),
    rule(
        Match::Pmu,
        Keep::Copy,
        "the PMU's overflow PPI, for a VM given a virtual PMU",
    ),
    rule(
        Match::Console,
        Keep::Copy,
        "the UART the hypervisor emulates as the guest console",
    ),
    rule(
        Match::ConsoleClock,
        Keep::Copy,
        "clocks the console references (QEMU: apb-pclk)",
    ),
    rule(
        Match::HasChildren,
        Keep::Bus,
        "buses stay when something under them does (the Pi's /soc)",
    ),
    rule(
        Match::Any,
        Keep::Drop,
        "the rest: virtio-mmio, PCIe, fw-cfg, flash, GPIO, RTC, platform bus",
    ),
];

/// Root properties the guest keeps.
const ROOT_PROPS: &[&str] = &[
    "compatible",
    "model",
    "#address-cells",
    "#size-cells",
    "interrupt-parent",
];

/// Which properties a [`PropRule`] drops.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PropMatch {
    /// Names starting with this.
    Prefix(&'static str),
    /// Exactly this name.
    Name(&'static str),
    /// Names longer than this many bytes.
    LongerThan(usize),
}

/// One row of [`DROPPED_PROPS`].
#[derive(Debug, Clone, Copy)]
pub struct PropRule {
    /// Which properties.
    pub matches: PropMatch,
    /// Why they are left out.
    pub why: &'static str,
}

/// Properties of copied nodes that the guest does not get; all others are
/// copied byte for byte.
pub const DROPPED_PROPS: &[PropRule] = &[
    PropRule {
        matches: PropMatch::Prefix("pinctrl-"),
        why: "names host pin-mux nodes, which are all dropped",
    },
    PropRule {
        matches: PropMatch::Name("arm,cpu-registers-not-fw-configured"),
        why:
            "the Pi's timer flag: Linux would use the secure physical timer; a guest has CNTV/CNTP",
    },
    PropRule {
        matches: PropMatch::LongerThan(31),
        why: "vm-fdt enforces the spec's 31-byte limit on names",
    },
];

fn copied_prop(name: &str) -> bool {
    !DROPPED_PROPS.iter().any(|r| match r.matches {
        PropMatch::Prefix(p) => name.starts_with(p),
        PropMatch::Name(n) => name == n,
        PropMatch::LongerThan(n) => name.len() > n,
    })
}

/// The most vCPUs a guest DTB describes (Aff0 is 8 bits).
pub const MAX_VCPUS: usize = 256;

struct Ctx<'p> {
    params: &'p GuestDtbParams<'p>,
    gic_path: Option<&'p str>,
    clocks: Vec<u32>,
}

fn prop<'a>(node: &FdtNode<'_, 'a>, name: &str) -> Option<&'a [u8]> {
    node.properties().find(|p| p.name == name).map(|p| p.value)
}

fn join(parent: &str, name: &str) -> String {
    let mut p = String::from(if parent == "/" { "" } else { parent });
    p.push('/');
    p.push_str(name);
    p
}

impl Ctx<'_> {
    fn matches(&self, m: Match, node: &FdtNode<'_, '_>, path: &str) -> bool {
        let compatible = || StringList::new(prop(node, "compatible").unwrap_or(&[]));
        match m {
            Match::Hidden => self.params.hidden_paths.contains(&path),
            Match::Path(p) => p == path,
            Match::DeviceType(t) => prop(node, "device_type").and_then(str_prop) == Some(t),
            Match::CompatiblePrefix(c) => compatible().iter().any(|s| s.starts_with(c)),
            Match::Gic => self.gic_path == Some(path),
            Match::Console => self.params.uart.is_none() && self.params.console_path == path,
            Match::ConsoleClock => prop(node, "phandle")
                .and_then(u32_prop)
                .is_some_and(|ph| self.clocks.contains(&ph)),
            Match::Pmu => {
                self.params.pmu
                    && compatible()
                        .iter()
                        .any(|s| s.starts_with("arm,") && s.ends_with("pmuv3"))
            }
            Match::HasChildren => node.children().next().is_some(),
            Match::Any => true,
        }
    }

    fn keep(&self, node: &FdtNode<'_, '_>, path: &str) -> Keep {
        KEEP_RULES
            .iter()
            .find(|r| self.matches(r.matches, node, path))
            .map_or(Keep::Drop, |r| r.keep)
    }

    /// Whether anything of `node` ends up in the guest tree.
    fn kept(&self, node: &FdtNode<'_, '_>, path: &str) -> bool {
        match self.keep(node, path) {
            Keep::Copy | Keep::Shallow => true,
            Keep::Bus => node.children().any(|c| self.kept(&c, &join(path, c.name))),
            Keep::Generated | Keep::Drop => false,
        }
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

/// Writes `value` in `cells` cells (1 or 2).
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

/// Builds the DTB of one guest from the host's `host` blob (parsed as `info`).
pub fn guest_dtb(
    host: &[u8],
    info: &MachineInfo<'_>,
    params: &GuestDtbParams<'_>,
) -> Result<Vec<u8>, DtError> {
    if params.vcpus == 0 || params.vcpus > MAX_VCPUS {
        return Err(DtError::InvalidParams("vCPU count out of range"));
    }
    if params.ram.size == 0 || params.ram.start.0.checked_add(params.ram.size).is_none() {
        return Err(DtError::InvalidParams("empty or wrapping RAM"));
    }
    if let Some(initrd) = params.initrd {
        if !params.ram.contains_range(initrd.start, initrd.size) {
            return Err(DtError::InvalidParams("initrd outside the VM's RAM"));
        }
    }
    let host = blob::check(host)?;
    let fdt = fdt::Fdt::new(host).map_err(|_| DtError::BadHeader)?;
    let root = find_path(&fdt, "/").ok_or(DtError::Missing("/"))?;
    let clocks = match params.uart {
        Some(_) => Vec::new(),
        None => {
            let console = find_path(&fdt, params.console_path)
                .ok_or(DtError::Missing("guest console node"))?;
            clock_providers(&fdt, &console)
        }
    };
    let console_path = match &params.uart {
        Some(u) => emulated_uart_path(u),
        None => String::from(params.console_path),
    };

    let ctx = Ctx {
        params,
        gic_path: info.gic.as_ref().map(|g| g.path.as_str()),
        clocks,
    };

    let mut w = vm_fdt::FdtWriter::new().map_err(werr)?;
    let top = w.begin_node("").map_err(werr)?;
    for p in root.properties().filter(|p| ROOT_PROPS.contains(&p.name)) {
        w.property(p.name, p.value).map_err(werr)?;
    }
    write_chosen(&mut w, params, &console_path)?;
    write_aliases(&mut w, &console_path)?;
    write_cpus(&mut w, &fdt, info, params)?;
    write_memory(&mut w, info, params)?;
    write_psci(&mut w)?;
    if let Some(u) = &params.uart {
        write_emulated_uart(&mut w, &fdt, info, u)?;
    }
    for child in root.children() {
        let path = join("/", child.name);
        write_node(&mut w, &ctx, &child, &path)?;
    }
    w.end_node(top).map_err(werr)?;
    w.finish().map_err(werr)
}

/// Phandles of the clock providers `console` references, and theirs in turn.
fn clock_providers(fdt: &fdt::Fdt<'_>, console: &FdtNode<'_, '_>) -> Vec<u32> {
    let mut found: Vec<u32> = Vec::new();
    let mut pending: Vec<&[u8]> = Vec::new();
    pending.extend(prop(console, "clocks"));
    // Bounded: each provider is visited once, and there are finitely many phandles.
    while let Some(list) = pending.pop() {
        let mut i = 0;
        while let Some(ph) = super::props::cell(list, i) {
            let provider = fdt.find_phandle(ph);
            let args = provider
                .and_then(|p| prop(&p, "#clock-cells"))
                .and_then(u32_prop)
                .unwrap_or(0);
            if !found.contains(&ph) {
                found.push(ph);
                pending.extend(provider.and_then(|p| prop(&p, "clocks")));
            }
            i += 1 + args as usize;
        }
    }
    found
}

fn write_node(
    w: &mut vm_fdt::FdtWriter,
    ctx: &Ctx<'_>,
    node: &FdtNode<'_, '_>,
    path: &str,
) -> Result<(), DtError> {
    let keep = ctx.keep(node, path);
    let children = match keep {
        Keep::Generated | Keep::Drop => return Ok(()),
        Keep::Bus if !ctx.kept(node, path) => return Ok(()),
        Keep::Copy | Keep::Bus => true,
        Keep::Shallow => false,
    };
    let handle = w.begin_node(node.name).map_err(werr)?;
    for p in node.properties().filter(|p| copied_prop(p.name)) {
        w.property(p.name, p.value).map_err(werr)?;
    }
    if children {
        for child in node.children() {
            let child_path = join(path, child.name);
            if keep == Keep::Copy {
                copy_subtree(w, &child)?;
            } else {
                write_node(w, ctx, &child, &child_path)?;
            }
        }
    }
    w.end_node(handle).map_err(werr)
}

fn copy_subtree(w: &mut vm_fdt::FdtWriter, node: &FdtNode<'_, '_>) -> Result<(), DtError> {
    let handle = w.begin_node(node.name).map_err(werr)?;
    for p in node.properties().filter(|p| copied_prop(p.name)) {
        w.property(p.name, p.value).map_err(werr)?;
    }
    for child in node.children() {
        copy_subtree(w, &child)?;
    }
    w.end_node(handle).map_err(werr)
}

fn write_chosen(
    w: &mut vm_fdt::FdtWriter,
    params: &GuestDtbParams<'_>,
    console_path: &str,
) -> Result<(), DtError> {
    let chosen = w.begin_node("chosen").map_err(werr)?;
    if let Some(args) = params.bootargs {
        w.property_string("bootargs", args).map_err(werr)?;
    }
    if let Some(initrd) = params.initrd {
        w.property_u64("linux,initrd-start", initrd.start.0)
            .map_err(werr)?;
        w.property_u64("linux,initrd-end", initrd.start.0 + initrd.size)
            .map_err(werr)?;
    }
    w.property_string("stdout-path", console_path)
        .map_err(werr)?;
    w.end_node(chosen).map_err(werr)
}

fn write_aliases(w: &mut vm_fdt::FdtWriter, console_path: &str) -> Result<(), DtError> {
    let aliases = w.begin_node("aliases").map_err(werr)?;
    w.property_string("serial0", console_path).map_err(werr)?;
    w.end_node(aliases).map_err(werr)
}

/// The largest phandle of the host tree (new nodes take the ones above it).
fn max_phandle(fdt: &fdt::Fdt<'_>) -> u32 {
    fdt.all_nodes()
        .filter_map(|n| prop(&n, "phandle").and_then(u32_prop))
        .max()
        .unwrap_or(0)
}

/// The emulated PL011 and its clock: `hv-uart-clk` (a fixed clock with a phandle
/// above the host's; named apart from any host node, so a passed-through
/// device's own `apb-pclk` can still be copied in beside it) and `pl011@<ipa>` in the root's address space, its
/// interrupt an SPI of the GIC.
/// The node name of the emulated PL011's clock.
pub const EMULATED_UART_CLOCK: &str = "hv-uart-clk";

fn write_emulated_uart(
    w: &mut vm_fdt::FdtWriter,
    fdt: &fdt::Fdt<'_>,
    info: &MachineInfo<'_>,
    u: &EmulatedUart,
) -> Result<(), DtError> {
    let clock = max_phandle(fdt)
        .checked_add(1)
        .ok_or(DtError::TooMany("phandles"))?;
    let node = w.begin_node(EMULATED_UART_CLOCK).map_err(werr)?;
    w.property_string("compatible", "fixed-clock")
        .map_err(werr)?;
    w.property_u32("#clock-cells", 0).map_err(werr)?;
    w.property_u32("clock-frequency", APB_PCLK_HZ)
        .map_err(werr)?;
    // Its own clock name too: Linux refuses a second clock named like the
    // host's `apb-pclk` (clk24mhz), which passed-through devices may bring.
    w.property_string("clock-output-names", EMULATED_UART_CLOCK)
        .map_err(werr)?;
    w.property_phandle(clock).map_err(werr)?;
    w.end_node(node).map_err(werr)?;

    let (ac, sc) = info.root_cells;
    let mut reg = Vec::new();
    push_cells(&mut reg, u.ipa, ac)?;
    push_cells(&mut reg, crate::vuart::SIZE, sc)?;
    let node = w
        .begin_node(&alloc::format!("pl011@{:x}", u.ipa))
        .map_err(werr)?;
    w.property("compatible", b"arm,pl011\0arm,primecell\0")
        .map_err(werr)?;
    w.property("reg", &reg).map_err(werr)?;
    let gic = info.gic.as_ref();
    if let (Some(intid), Some(gic)) = (u.intid.filter(|&i| (32..1020).contains(&i)), gic) {
        if let Some(ph) = gic.phandle {
            w.property_u32("interrupt-parent", ph).map_err(werr)?;
        }
        // <SPI number level-high>, padded with zero cells for wider specifiers.
        let mut cells = [0u32; 4];
        cells[1] = intid - 32;
        cells[2] = 4;
        let n = (gic.interrupt_cells as usize).clamp(3, 4);
        w.property_array_u32("interrupts", &cells[..n])
            .map_err(werr)?;
    }
    w.property_array_u32("clocks", &[clock, clock])
        .map_err(werr)?;
    w.property("clock-names", b"uartclk\0apb_pclk\0")
        .map_err(werr)?;
    w.end_node(node).map_err(werr)
}

fn write_cpus(
    w: &mut vm_fdt::FdtWriter,
    fdt: &fdt::Fdt<'_>,
    info: &MachineInfo<'_>,
    params: &GuestDtbParams<'_>,
) -> Result<(), DtError> {
    // The host's first CPU's compatible: the guest runs on those cores.
    let host_cpu = find_path(fdt, "/cpus").and_then(|cpus| {
        cpus.children()
            .find(|c| c.name.split('@').next() == Some("cpu"))
    });
    let compatible = host_cpu
        .as_ref()
        .and_then(|c| prop(c, "compatible"))
        .unwrap_or(b"arm,armv8\0");
    let cpus = w.begin_node("cpus").map_err(werr)?;
    w.property_u32("#address-cells", 1).map_err(werr)?;
    w.property_u32("#size-cells", 0).map_err(werr)?;
    for i in 0..params.vcpus {
        let cpu = w.begin_node(&alloc::format!("cpu@{i:x}")).map_err(werr)?;
        w.property_string("device_type", "cpu").map_err(werr)?;
        w.property("compatible", compatible).map_err(werr)?;
        w.property_u32("reg", i as u32).map_err(werr)?;
        w.property_string("enable-method", "psci").map_err(werr)?;
        // Keep the host CPU's phandle so references to CPU i stay valid.
        if let Some(ph) = info.cpus.get(i).and_then(|c| c.phandle) {
            w.property_phandle(ph).map_err(werr)?;
        }
        w.end_node(cpu).map_err(werr)?;
    }
    w.end_node(cpus).map_err(werr)
}

fn write_memory(
    w: &mut vm_fdt::FdtWriter,
    info: &MachineInfo<'_>,
    params: &GuestDtbParams<'_>,
) -> Result<(), DtError> {
    let (ac, sc) = info.root_cells;
    let mut reg = Vec::new();
    push_cells(&mut reg, params.ram.start.0, ac)?;
    push_cells(&mut reg, params.ram.size, sc)?;
    let mem = w
        .begin_node(&alloc::format!("memory@{:x}", params.ram.start.0))
        .map_err(werr)?;
    w.property_string("device_type", "memory").map_err(werr)?;
    w.property("reg", &reg).map_err(werr)?;
    w.end_node(mem).map_err(werr)
}

fn write_psci(w: &mut vm_fdt::FdtWriter) -> Result<(), DtError> {
    let psci = w.begin_node("psci").map_err(werr)?;
    w.property("compatible", b"arm,psci-1.0\0arm,psci-0.2\0")
        .map_err(werr)?;
    w.property_string("method", "hvc").map_err(werr)?;
    w.end_node(psci).map_err(werr)
}
