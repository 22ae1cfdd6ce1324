//! [`MachineInfo`]: everything the hypervisor learns from the host DTB.
//!
//! Parsing allocates nothing: lists have fixed capacities (the `MAX_*`
//! constants), strings are borrowed from the blob (which the hypervisor keeps
//! anyway, to derive guest DTBs from it), and paths are short inline strings.
//! A list that overflows is an error ([`DtError::TooMany`]), never a silent cut.
//!
//! The parse is two walks over the tree: the first finds the GIC (its phandle
//! and `#interrupt-cells` are needed to decode every other node's
//! `interrupts`), the second everything else. Optional things (timer, GIC,
//! PSCI, UARTs) are `Option`/empty when absent; judging whether the machine is
//! usable is the caller's business, with the facts in hand.
#![forbid(unsafe_code)]

use super::props::{self, str_prop, u32_prop, u64_prop, NodePath, StringList, Visit};
use super::{blob, DtError};
use crate::addr::{PhysAddr, Range};

/// Capacity of [`MachineInfo::memory`].
pub const MAX_MEMORY_BANKS: usize = 8;
/// Capacity of [`MachineInfo::reserved`].
pub const MAX_RESERVED: usize = 16;
/// Capacity of [`MachineInfo::cpus`].
pub const MAX_CPUS: usize = 16;
/// Capacity of [`MachineInfo::uarts`].
pub const MAX_UARTS: usize = 16;
/// Capacity of [`MachineInfo::modules`].
pub const MAX_MODULES: usize = 16;
/// Capacity of [`Domain::modules`]: a kernel, a ramdisk, a device tree, and one spare.
pub const MAX_DOMAIN_MODULES: usize = 4;
/// Capacity of [`MachineInfo::domains`].
pub const MAX_DOMAINS: usize = 8;
/// Capacity of [`GicInfo::redistributors`].
pub const MAX_GICR_REGIONS: usize = 4;
/// Capacity of [`UartInfo::aliases`].
pub const MAX_ALIASES: usize = 4;

/// Everything the hypervisor needs to know about the machine, from its DTB.
#[derive(Debug, Clone, Default)]
pub struct MachineInfo<'a> {
    /// Root `model`.
    pub model: Option<&'a str>,
    /// Root `compatible`.
    pub compatible: StringList<'a>,
    /// Root `#address-cells` and `#size-cells`.
    pub root_cells: (u32, u32),
    /// RAM banks (`device_type = "memory"` nodes, every `reg` entry), in DT order.
    pub memory: heapless::Vec<Range<PhysAddr>, MAX_MEMORY_BANKS>,
    /// `/memreserve/` entries, `/reserved-memory` children with a `reg`, and
    /// the pages of spin-table release addresses.
    pub reserved: heapless::Vec<Reserved, MAX_RESERVED>,
    /// CPUs from `/cpus/cpu@*`, in DT order.
    pub cpus: heapless::Vec<CpuInfo<'a>, MAX_CPUS>,
    /// The GIC, if one with a known `compatible` exists.
    pub gic: Option<GicInfo>,
    /// The architected timer.
    pub timer: Option<TimerInfo>,
    /// The PMU's overflow interrupt (`arm,armv8-pmuv3` and the like: a PPI).
    pub pmu_irq: Option<Irq>,
    /// UARTs a driver knows (PL011, BCM2835 mini-UART, Cadence, i.MX),
    /// enabled or not, in DT order.
    pub uarts: heapless::Vec<UartInfo<'a>, MAX_UARTS>,
    /// `/chosen/stdout-path` as written (a path or an alias, maybe `:options`).
    pub stdout_path: Option<&'a str>,
    /// `/chosen/bootargs` (the hypervisor's own command line).
    pub bootargs: Option<&'a str>,
    /// The `/psci` node.
    pub psci: Option<PsciInfo>,
    /// `/chosen/module@*` nodes (QEMU `guest-loader`, Xen multiboot), in DT order.
    pub modules: heapless::Vec<Module<'a>, MAX_MODULES>,
    /// Xen dom0less domains (`/chosen/*` with `compatible = "xen,domain"`).
    pub domains: heapless::Vec<Domain<'a>, MAX_DOMAINS>,
}

/// Where a reserved region comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReservedKind {
    /// The header's memory-reservation block (`/memreserve/`).
    MemReserve,
    /// A `/reserved-memory` child; `no_map` if it has `no-map`.
    Node {
        /// The OS must not map it at all.
        no_map: bool,
    },
    /// The 4 KiB page of a CPU's spin-table `cpu-release-addr`: the boot
    /// firmware's stub polls it (on the Raspberry Pi the stub lives there too),
    /// so it is never given to a guest.
    SpinTable,
}

/// A region of RAM the firmware says is not free.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reserved {
    /// The region.
    pub range: Range<PhysAddr>,
    /// Where it was declared.
    pub kind: ReservedKind,
}

/// How a secondary CPU is started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EnableMethod<'a> {
    /// PSCI `CPU_ON`.
    Psci,
    /// Spin table: write the entry point to `cpu-release-addr` and `sev`.
    SpinTable {
        /// `cpu-release-addr`.
        release_addr: Option<PhysAddr>,
    },
    /// Something else, as written.
    Other(&'a str),
}

/// One `/cpus/cpu@*` node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CpuInfo<'a> {
    /// The MPIDR affinity value from `reg`.
    pub mpidr: u64,
    /// `enable-method`, if any (the boot CPU may have none).
    pub enable_method: Option<EnableMethod<'a>>,
    /// `compatible`'s first string.
    pub compatible: Option<&'a str>,
    /// `phandle`.
    pub phandle: Option<u32>,
}

/// GIC architecture version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GicVersion {
    /// GICv2 (`arm,cortex-a15-gic`, `arm,gic-400`, `arm,cortex-a7-gic`).
    V2,
    /// GICv3 (`arm,gic-v3`).
    V3,
}

/// The interrupt controller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GicInfo {
    /// Version from `compatible`.
    pub version: GicVersion,
    /// Node path.
    pub path: NodePath,
    /// `phandle` (what `interrupt-parent` names).
    pub phandle: Option<u32>,
    /// `#interrupt-cells` (3 on both QEMU and the Pi; 4 with GICv3 PPI partitions).
    pub interrupt_cells: u32,
    /// Distributor (GICD).
    pub distributor: Range<PhysAddr>,
    /// GICv3 redistributor regions (GICR), `#redistributor-regions` of them.
    pub redistributors: heapless::Vec<Range<PhysAddr>, MAX_GICR_REGIONS>,
    /// GICv3 `redistributor-stride`, if given.
    pub redistributor_stride: Option<u64>,
    /// CPU interface (GICC); GICv2 always, GICv3 only with legacy support.
    pub cpu_interface: Option<Range<PhysAddr>>,
    /// Virtual interface control (GICH).
    pub hyp_interface: Option<Range<PhysAddr>>,
    /// Virtual CPU interface (GICV).
    pub vcpu_interface: Option<Range<PhysAddr>>,
    /// The virtual-interface maintenance interrupt.
    pub maintenance_irq: Option<Irq>,
}

/// A decoded GIC interrupt specifier.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Irq {
    /// The GIC INTID (PPI n = 16 + n, SPI n = 32 + n).
    pub intid: u32,
    /// The specifier's flags cell: trigger type in bits 0-3, GICv2 PPI CPU mask in 8-15.
    pub flags: u32,
}

impl Irq {
    /// Level-sensitive (flags 4 or 8) rather than edge-triggered.
    pub fn is_level(&self) -> bool {
        self.flags & 0xc != 0
    }

    /// Decodes one `<type number flags>` specifier of the GIC binding.
    pub fn from_gic_cells(kind: u32, number: u32, flags: u32) -> Option<Self> {
        let intid = match kind {
            0 if number < 988 => 32 + number,    // SPI
            1 if number < 16 => 16 + number,     // PPI
            2 if number < 1024 => 4096 + number, // extended SPI (GICv3.1)
            3 if number < 64 => 1056 + number,   // extended PPI (GICv3.1)
            _ => return None,
        };
        Some(Self { intid, flags })
    }
}

/// The architected generic timer's PPIs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimerInfo {
    /// Secure EL1 physical timer.
    pub secure_phys: Irq,
    /// Non-secure EL1 physical timer (CNTP).
    pub phys: Irq,
    /// Virtual timer (CNTV): what guests use.
    pub virt: Irq,
    /// EL2 physical timer (CNTHP): the hypervisor's.
    pub hyp_phys: Irq,
    /// EL2 virtual timer (CNTHV, with VHE), if listed.
    pub hyp_virt: Option<Irq>,
    /// `clock-frequency`, if the firmware did not program CNTFRQ.
    pub clock_frequency: Option<u32>,
    /// `always-on`.
    pub always_on: bool,
}

/// The UART models the hypervisor has drivers for, chosen by `compatible`
/// through [`crate::drivers::uart::DRIVERS`].
pub use crate::drivers::uart::Model as UartModel;

/// A UART.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UartInfo<'a> {
    /// Model, from `compatible` (the driver that runs it).
    pub kind: UartModel,
    /// Node path.
    pub path: NodePath,
    /// Registers, as a CPU physical address.
    pub base: PhysAddr,
    /// Size of the register block.
    pub size: u64,
    /// Its interrupt, if its interrupt parent is the GIC.
    pub irq: Option<Irq>,
    /// `/aliases` that name it (`serial0`, ...).
    pub aliases: heapless::Vec<&'a str, MAX_ALIASES>,
    /// Reference clock in Hz: the first `clocks` entry if it is a
    /// `fixed-clock`, else the node's `clock-frequency`.
    pub clock_hz: Option<u32>,
    /// `status` is absent or `okay`.
    pub enabled: bool,
    /// `phandle`.
    pub phandle: Option<u32>,
}

/// How PSCI is called.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PsciMethod {
    /// `hvc`.
    Hvc,
    /// `smc` (QEMU `virt,virtualization=on`: the hypervisor's calls go to EL3).
    Smc,
}

/// The `/psci` node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PsciInfo {
    /// Conduit.
    pub method: PsciMethod,
    /// Highest version in `compatible`: (0, 1) for `arm,psci`, (0, 2), (1, 0).
    pub version: (u16, u16),
    /// `cpu_suspend` function id (PSCI 0.1 style), if given.
    pub cpu_suspend: Option<u32>,
    /// `cpu_off` function id, if given.
    pub cpu_off: Option<u32>,
    /// `cpu_on` function id, if given.
    pub cpu_on: Option<u32>,
    /// `migrate` function id, if given.
    pub migrate: Option<u32>,
}

/// What a multiboot module holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModuleKind {
    /// `multiboot,kernel`: a guest kernel; starts a VM.
    Kernel,
    /// `multiboot,ramdisk`: an initrd.
    Ramdisk,
    /// `multiboot,device-tree`: a device tree (Xen: a partial DT for passthrough).
    DeviceTree,
    /// Only `multiboot,module`: kind not stated.
    Unknown,
}

/// A `/chosen` (or domain) `module@*` node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Module<'a> {
    /// Kind from `compatible`.
    pub kind: ModuleKind,
    /// Where it was loaded (from `reg`, in `/chosen`'s or the domain's cells).
    pub range: Range<PhysAddr>,
    /// `bootargs`, for a kernel.
    pub bootargs: Option<&'a str>,
}

/// A Xen dom0less domain (`/chosen/domU* { compatible = "xen,domain"; }`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Domain<'a> {
    /// Node name (`domU1`).
    pub name: &'a str,
    /// `cpus`.
    pub vcpus: Option<u32>,
    /// `memory`, converted from KiB to bytes.
    pub memory: Option<u64>,
    /// `bootargs` on the domain node itself (a kernel module's take precedence).
    pub bootargs: Option<&'a str>,
    /// Its `module@*` children, in DT order.
    pub modules: heapless::Vec<Module<'a>, MAX_DOMAIN_MODULES>,
}

impl GicInfo {
    /// Where to drive the GICv2 CPU interface from: its base, or, when the device
    /// tree gives it 128 KiB (a GIC-400 whose 4 KiB pages are each aliased over
    /// 64 KiB, as on the ZynqMP), 60 KiB further, where its two pages are adjacent,
    /// so GICC_DIR is at its usual offset 0x1000 (what Linux's `gic_check_eoimode`
    /// does).
    pub fn cpu_interface_base(&self) -> Option<PhysAddr> {
        let c = self.cpu_interface?;
        Some(if c.size == 0x2_0000 {
            PhysAddr(c.start.0 + 0xf000)
        } else {
            c.start
        })
    }
}

impl<'a> MachineInfo<'a> {
    /// The UART that `/aliases/<alias>` names (`serial1` on QEMU `virt` is the
    /// hypervisor's debug UART).
    pub fn resolve_alias(&self, alias: &str) -> Option<&UartInfo<'a>> {
        self.uarts.iter().find(|u| u.aliases.contains(&alias))
    }

    /// The UART at `path`.
    pub fn uart_by_path(&self, path: &str) -> Option<&UartInfo<'a>> {
        self.uarts.iter().find(|u| u.path == path)
    }

    /// The UART `stdout-path` points at (path or alias; `:options` ignored).
    pub fn stdout_uart(&self) -> Option<&UartInfo<'a>> {
        let target = self.stdout_path?.split(':').next()?;
        if target.starts_with('/') {
            self.uart_by_path(target)
        } else {
            self.resolve_alias(target)
        }
    }

    /// Total RAM in bytes over all banks.
    pub fn memory_size(&self) -> u64 {
        self.memory.iter().map(|r| r.size).sum()
    }
}

fn range(addr: u64, size: u64) -> Result<Range<PhysAddr>, DtError> {
    addr.checked_add(size).ok_or(DtError::BadProperty("reg"))?;
    Ok(Range::new(PhysAddr(addr), size))
}

fn push<T, const N: usize>(
    v: &mut heapless::Vec<T, N>,
    item: T,
    what: &'static str,
) -> Result<(), DtError> {
    v.push(item).map_err(|_| DtError::TooMany(what))
}

fn node_path(path: &str) -> Result<NodePath, DtError> {
    let mut p = NodePath::new();
    p.push_str(path).map_err(|_| DtError::PathTooLong)?;
    Ok(p)
}

const GIC_V2_COMPATIBLE: [&str; 3] = ["arm,cortex-a15-gic", "arm,gic-400", "arm,cortex-a7-gic"];
const GIC_V3_COMPATIBLE: [&str; 1] = ["arm,gic-v3"];
const TIMER_COMPATIBLE: [&str; 2] = ["arm,armv8-timer", "arm,armv7-timer"];

/// Decodes the `index`-th specifier of an `interrupts` value whose parent is
/// the GIC.
fn gic_irq(value: &[u8], cells: u32, index: usize) -> Option<Irq> {
    let base = index * cells as usize;
    Irq::from_gic_cells(
        props::cell(value, base)?,
        props::cell(value, base + 1)?,
        props::cell(value, base + 2)?,
    )
}

/// Parses a host DTB. Never panics: a malformed blob is an `Err`.
pub fn parse(dtb: &[u8]) -> Result<MachineInfo<'_>, DtError> {
    let dtb = blob::check(dtb)?;
    let fdt = fdt::Fdt::new(dtb).map_err(|_| DtError::BadHeader)?;
    let mut info = MachineInfo::default();

    for r in fdt.memory_reservations() {
        let reserved = Reserved {
            range: range(r.address() as u64, r.size() as u64)?,
            kind: ReservedKind::MemReserve,
        };
        push(&mut info.reserved, reserved, "reserved regions")?;
    }

    // Pass 1: the GIC, needed to decode everybody's interrupts.
    props::walk(&fdt, &mut |v| {
        if info.gic.is_none() {
            info.gic = parse_gic(v)?;
        }
        Ok(true)
    })?;

    // Pass 2: everything else.
    let gic = info.gic.clone();
    let irq_of = |v: &Visit<'_, '_, '_>, index: usize| -> Option<Irq> {
        let gic = gic.as_ref()?;
        let parent = v.interrupt_parent();
        if parent.is_some() && parent != gic.phandle {
            return None;
        }
        gic_irq(v.prop("interrupts")?, gic.interrupt_cells, index)
    };
    let mut clock_refs: heapless::Vec<(usize, u32), MAX_UARTS> = heapless::Vec::new();
    props::walk(&fdt, &mut |v| {
        let depth = v.parents.len();
        let name = v.node.name;
        let base = name.split('@').next().unwrap_or(name);
        if depth == 0 {
            info.model = v.prop("model").and_then(str_prop);
            info.compatible = v.compatible();
            let (ac, sc) = (v.prop("#address-cells"), v.prop("#size-cells"));
            info.root_cells = (
                ac.and_then(u32_prop).unwrap_or(2),
                sc.and_then(u32_prop).unwrap_or(1),
            );
            return Ok(true);
        }
        let compatible = v.compatible();
        if depth == 1 && v.prop("device_type").and_then(str_prop) == Some("memory") && v.enabled() {
            for (addr, size) in v.reg()? {
                if size != 0 {
                    push(&mut info.memory, range(addr, size)?, "memory banks")?;
                }
            }
        } else if depth == 1 && base == "cpus" {
            return Ok(true);
        } else if depth == 2 && v.path.starts_with("/cpus/") {
            if base == "cpu" || v.prop("device_type").and_then(str_prop) == Some("cpu") {
                push(&mut info.cpus, parse_cpu(v)?, "cpus")?;
            }
            return Ok(false);
        } else if depth == 1 && base == "reserved-memory" {
            return Ok(true);
        } else if depth == 2 && v.path.starts_with("/reserved-memory/") {
            let no_map = v.prop("no-map").is_some();
            if v.prop("reg").is_some() && v.enabled() {
                // Untranslated: the binding puts them in the root's address space.
                for (addr, size) in v.raw_reg()? {
                    let r = Reserved {
                        range: range(addr, size)?,
                        kind: ReservedKind::Node { no_map },
                    };
                    push(&mut info.reserved, r, "reserved regions")?;
                }
            }
            return Ok(false);
        } else if depth == 1 && base == "chosen" {
            info.stdout_path = v.prop("stdout-path").and_then(str_prop);
            info.bootargs = v.prop("bootargs").and_then(str_prop);
            return Ok(true);
        } else if depth == 2 && v.path.starts_with("/chosen/") {
            if compatible.contains("xen,domain") {
                push(&mut info.domains, parse_domain(v)?, "domains")?;
                return Ok(true);
            }
            if let Some(m) = parse_module(v)? {
                push(&mut info.modules, m, "modules")?;
            }
            return Ok(false);
        } else if depth == 3 && v.path.starts_with("/chosen/") {
            if let Some(m) = parse_module(v)? {
                let domain = info.domains.last_mut().ok_or(DtError::Missing("domain"))?;
                push(&mut domain.modules, m, "modules of one domain")?;
            }
            return Ok(false);
        } else if depth == 1 && compatible.iter().any(|c| c.starts_with("arm,psci")) {
            info.psci = Some(parse_psci(v)?);
        } else if TIMER_COMPATIBLE.iter().any(|c| compatible.contains(c)) && info.timer.is_none() {
            let irq = |i| irq_of(v, i).ok_or(DtError::BadProperty("interrupts"));
            info.timer = Some(TimerInfo {
                secure_phys: irq(0)?,
                phys: irq(1)?,
                virt: irq(2)?,
                hyp_phys: irq(3)?,
                hyp_virt: irq_of(v, 4),
                clock_frequency: v.prop("clock-frequency").and_then(u32_prop),
                always_on: v.prop("always-on").is_some(),
            });
        } else if compatible
            .iter()
            .any(|c| c.starts_with("arm,") && c.ends_with("pmuv3"))
            && info.pmu_irq.is_none()
        {
            info.pmu_irq = irq_of(v, 0);
        } else if let Some(kind) = crate::drivers::uart::lookup(compatible.iter()) {
            // A UART we cannot locate is left out, not fatal: the machine may
            // still boot with the others.
            let Some(&(base, size)) = v.reg().ok().as_ref().and_then(|r| r.first()) else {
                return Ok(true);
            };
            let clock = v.prop("clocks").and_then(|c| props::cell(c, 0));
            if let Some(phandle) = clock {
                push(&mut clock_refs, (info.uarts.len(), phandle), "uarts")?;
            }
            let uart = UartInfo {
                kind,
                path: node_path(v.path)?,
                base: PhysAddr(base),
                size,
                irq: irq_of(v, 0),
                aliases: heapless::Vec::new(),
                clock_hz: v.prop("clock-frequency").and_then(u32_prop),
                enabled: v.enabled(),
                phandle: v.prop("phandle").and_then(u32_prop),
            };
            push(&mut info.uarts, uart, "uarts")?;
        }
        Ok(true)
    })?;

    // UART clocks: a `fixed-clock` provider's frequency wins over the node's own.
    for (index, phandle) in clock_refs {
        let Some(clk) = fdt.find_phandle(phandle) else {
            continue;
        };
        let is_fixed = clk
            .property("compatible")
            .is_some_and(|c| StringList::new(c.value).contains("fixed-clock"));
        if let Some(hz) = clk
            .property("clock-frequency")
            .and_then(|p| u32_prop(p.value))
        {
            if is_fixed {
                info.uarts[index].clock_hz = Some(hz);
            }
        }
    }

    // Spin-table release addresses: their pages stay the firmware's.
    for cpu in info.cpus.clone().iter() {
        if let Some(EnableMethod::SpinTable {
            release_addr: Some(a),
        }) = cpu.enable_method
        {
            let page = range(a.0 & !0xfff, 0x1000)?;
            if !info
                .reserved
                .iter()
                .any(|r| r.range.contains_range(page.start, page.size))
            {
                let r = Reserved {
                    range: page,
                    kind: ReservedKind::SpinTable,
                };
                push(&mut info.reserved, r, "reserved regions")?;
            }
        }
    }

    // Aliases: record each alias on the UART it names.
    if let Some(aliases) = props::find_path(&fdt, "/aliases") {
        for p in aliases.properties() {
            let Some(target) = str_prop(p.value) else {
                continue;
            };
            if let Some(uart) = info.uarts.iter_mut().find(|u| u.path == target) {
                push(&mut uart.aliases, p.name, "aliases of one UART")?;
            }
        }
    }
    Ok(info)
}

fn parse_gic(v: &Visit<'_, '_, '_>) -> Result<Option<GicInfo>, DtError> {
    let compatible = v.compatible();
    let version = if GIC_V3_COMPATIBLE.iter().any(|c| compatible.contains(c)) {
        GicVersion::V3
    } else if GIC_V2_COMPATIBLE.iter().any(|c| compatible.contains(c)) {
        GicVersion::V2
    } else {
        return Ok(None);
    };
    let regs = v.reg()?;
    let region = |i: usize| regs.get(i).map(|&(a, s)| range(a, s)).transpose();
    let interrupt_cells = v.prop("#interrupt-cells").and_then(u32_prop).unwrap_or(3);
    if interrupt_cells < 3 {
        return Err(DtError::BadProperty("#interrupt-cells"));
    }
    let mut gic = GicInfo {
        version,
        path: node_path(v.path)?,
        phandle: v.prop("phandle").and_then(u32_prop),
        interrupt_cells,
        distributor: region(0)?.ok_or(DtError::BadProperty("reg"))?,
        redistributors: heapless::Vec::new(),
        redistributor_stride: v.prop("redistributor-stride").and_then(u64_prop),
        cpu_interface: None,
        hyp_interface: None,
        vcpu_interface: None,
        maintenance_irq: v
            .prop("interrupts")
            .and_then(|i| gic_irq(i, interrupt_cells, 0)),
    };
    // GICv2: GICD, GICC, GICH, GICV. GICv3: GICD, GICR x n, then GICC, GICH, GICV.
    let mut next = 1;
    if version == GicVersion::V3 {
        let n = v
            .prop("#redistributor-regions")
            .and_then(u32_prop)
            .unwrap_or(1) as usize;
        for i in 1..=n {
            let r = region(i)?.ok_or(DtError::BadProperty("reg"))?;
            push(&mut gic.redistributors, r, "GIC redistributor regions")?;
        }
        next = n + 1;
    }
    gic.cpu_interface = region(next)?;
    gic.hyp_interface = region(next + 1)?;
    gic.vcpu_interface = region(next + 2)?;
    Ok(Some(gic))
}

fn parse_cpu<'a>(v: &Visit<'_, '_, 'a>) -> Result<CpuInfo<'a>, DtError> {
    let (ac, _) = v.reg_cells();
    let reg = v.prop("reg").ok_or(DtError::BadProperty("reg"))?;
    if reg.len() < ac as usize * 4 {
        return Err(DtError::BadProperty("reg"));
    }
    let mpidr = props::cells_u64(reg, 0, ac).ok_or(DtError::BadProperty("reg"))?;
    let enable_method = v.prop("enable-method").and_then(str_prop).map(|m| match m {
        "psci" => EnableMethod::Psci,
        "spin-table" => EnableMethod::SpinTable {
            release_addr: v.prop("cpu-release-addr").and_then(u64_prop).map(PhysAddr),
        },
        other => EnableMethod::Other(other),
    });
    Ok(CpuInfo {
        mpidr,
        enable_method,
        compatible: v.compatible().first(),
        phandle: v.prop("phandle").and_then(u32_prop),
    })
}

fn parse_psci(v: &Visit<'_, '_, '_>) -> Result<PsciInfo, DtError> {
    let method = match v.prop("method").and_then(str_prop) {
        Some("hvc") => PsciMethod::Hvc,
        Some("smc") => PsciMethod::Smc,
        _ => return Err(DtError::BadProperty("method")),
    };
    let compatible = v.compatible();
    let version = [
        ("arm,psci-1.0", (1, 0)),
        ("arm,psci-0.2", (0, 2)),
        ("arm,psci", (0, 1)),
    ]
    .into_iter()
    .find(|(c, _)| compatible.contains(c))
    .map_or((0, 1), |(_, ver)| ver);
    let id = |name| v.prop(name).and_then(u32_prop);
    Ok(PsciInfo {
        method,
        version,
        cpu_suspend: id("cpu_suspend"),
        cpu_off: id("cpu_off"),
        cpu_on: id("cpu_on"),
        migrate: id("migrate"),
    })
}

fn parse_domain<'a>(v: &Visit<'_, '_, 'a>) -> Result<Domain<'a>, DtError> {
    let memory = match v.prop("memory") {
        None => None,
        Some(m) => {
            let kib = u64_prop(m).ok_or(DtError::BadProperty("memory"))?;
            Some(
                kib.checked_mul(1024)
                    .ok_or(DtError::BadProperty("memory"))?,
            )
        }
    };
    let vcpus = match v.prop("cpus") {
        None => None,
        Some(c) => Some(u32_prop(c).ok_or(DtError::BadProperty("cpus"))?),
    };
    Ok(Domain {
        name: v.node.name,
        vcpus,
        memory,
        bootargs: v.prop("bootargs").and_then(str_prop),
        modules: heapless::Vec::new(),
    })
}

/// A multiboot module node, or `None` if `v` is not one.
fn parse_module<'a>(v: &Visit<'_, '_, 'a>) -> Result<Option<Module<'a>>, DtError> {
    let compatible = v.compatible();
    let kind = if compatible.contains("multiboot,kernel") {
        ModuleKind::Kernel
    } else if compatible.contains("multiboot,ramdisk") {
        ModuleKind::Ramdisk
    } else if compatible.contains("multiboot,device-tree") {
        ModuleKind::DeviceTree
    } else if compatible.contains("multiboot,module") {
        ModuleKind::Unknown
    } else {
        return Ok(None);
    };
    // Not translated: /chosen is not a bus; the values are physical addresses.
    let (addr, size) = v.raw_reg()?.next().ok_or(DtError::BadProperty("reg"))?;
    Ok(Some(Module {
        kind,
        range: range(addr, size)?,
        bootargs: v.prop("bootargs").and_then(str_prop),
    }))
}
