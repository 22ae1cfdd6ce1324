//! Bringing the machine up: from the boot assembly to every CPU running guests.
//!
//! Order matters. The device tree says where the debug UART is, so it is parsed
//! first (no allocation, MMU off); then the EL check (a wrong EL is reported on that
//! UART); then the heap and the identity map, and the MMU goes on before any lock.
//! The secondaries start next, so the VMs can be sized by the CPUs that really came
//! up; they wait until the VMs are published.

use super::{console, gic, heap, sched, vm};
use crate::addr::{PhysAddr, Range};
use crate::arch::{self, cache, mmu, smc};
use crate::board::{self, Board};
use crate::bringup::{self, Start};
use crate::dt::{self, GicVersion, MachineInfo};
use crate::{cpreg, println, stage2};
use core::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};
use spin::Once;

pub const VERSION: &str = env!("CARGO_PKG_VERSION");

static MACHINE: Once<MachineInfo<'static>> = Once::new();
static BOARD: Once<&'static Board> = Once::new();
/// Every guest's emulated PL011: where, and its SPI (`board::emulated_uart`).
static EMULATED_UART: Once<Option<dt::EmulatedUart>> = Once::new();
static HOST_DTB: Once<&'static [u8]> = Once::new();
static HYP_TIMER: AtomicU32 = AtomicU32::new(26);
static VMS_READY: AtomicBool = AtomicBool::new(false);
static CPUS_ONLINE: AtomicUsize = AtomicUsize::new(1);

/// The parsed host device tree.
pub fn machine() -> Option<&'static MachineInfo<'static>> {
    MACHINE.get()
}

/// The board this Image recognised at boot (`generic` if none).
pub fn board_name() -> &'static str {
    BOARD.get().map_or("generic", |b| b.name)
}

/// Whether the board's GIC cannot raise virtual interrupts itself
/// ([`crate::board::Board::virq_by_hcr`]).
pub fn virq_by_hcr() -> bool {
    BOARD.get().is_some_and(|b| b.virq_by_hcr)
}

/// Every guest's emulated PL011 (where its node goes, and its SPI), once the
/// board's consoles are known.
pub fn emulated_uart() -> Option<dt::EmulatedUart> {
    EMULATED_UART.get().copied().flatten()
}

/// The INTID of every guest's emulated PL011, if it has one (the vGIC raises it).
pub fn emulated_uart_intid() -> Option<u32> {
    EMULATED_UART.get().copied().flatten().and_then(|u| u.intid)
}

/// The INTID of the EL2 physical timer (the scheduling tick).
pub fn hyp_timer_intid() -> u32 {
    HYP_TIMER.load(Ordering::Relaxed)
}

/// Bytes typed for guests go to their VM's UART (run on the tick of CPU 0, after a
/// console UART's interrupt, and in its idle loop): with two UARTs, the guest
/// console's to VM 0; with one cable, to the VM input was switched to
/// (`console::guest_input`). Returns at once when no input can wait
/// (`console::guest_input_waiting`: interrupt-driven and the rings empty).
pub fn poll_input() {
    if arch::cpu_index() != 0 || !console::guest_input_waiting() {
        return;
    }
    while let Some((id, b)) = console::guest_input() {
        let Some(vm) = vm::get(id) else { continue };
        vm.uart.lock().receive(b);
        super::vgic::uart_changed(vm); // vGIC: the receive interrupt.
    }
}

/// A UART's interrupt for the console's rings.
fn uart_irq(irq: dt::Irq) -> console::UartIrq {
    console::UartIrq {
        intid: irq.intid,
        level: irq.is_level(),
    }
}

fn stop(msg: core::fmt::Arguments) -> ! {
    println!("hv: {}", msg);
    println!("hv: stopped");
    console::flush();
    arch::halt()
}

/// The device tree the boot loader passed, as a slice (its header gives the size),
/// with any `FDT_NOP` tokens removed in place (QEMU's board models leave many:
/// `dt::blob::strip_nops`).
fn dtb_slice(dtb: usize) -> Option<&'static [u8]> {
    if dtb == 0 || dtb % 8 != 0 {
        return None;
    }
    // SAFETY: the boot protocol puts a DTB at x0; its 8-byte header is readable.
    let header = unsafe { core::slice::from_raw_parts(dtb as *const u8, 8) };
    if header[0..4] != [0xd0, 0x0d, 0xfe, 0xed] {
        return None;
    }
    let size = u32::from_be_bytes(header[4..8].try_into().ok()?) as usize;
    if !(40..=(16 << 20)).contains(&size) {
        return None;
    }
    // SAFETY: the header says the blob is `size` bytes; it stays in place for ever
    // (its memory is never given to a guest); nothing else uses it yet, so this
    // one mutable borrow, for the compaction, is the only reference.
    let blob = unsafe { core::slice::from_raw_parts_mut(dtb as *mut u8, size) };
    dt::blob::strip_nops(blob).ok()?;
    // Written with the MMU (so the caches) off: the loader's clean copies of the old
    // bytes may still sit in the caches, which are read once the MMU is on.
    cache::invalidate_dcache(dtb, size);
    Some(blob)
}

#[no_mangle]
extern "C" fn hv_primary_main(dtb_pa: usize, load_addr: usize, el: u64) -> ! {
    let Some(dtb) = dtb_slice(dtb_pa) else {
        // Nowhere to print: no device tree, no UART.
        arch::halt()
    };
    let info = match dt::parse(dtb) {
        Ok(info) => info,
        Err(_) => arch::halt(),
    };
    // Nothing here takes a lock or another atomic read-modify-write: the MMU is
    // off (DESIGN.md section 8).
    let (board, matched) = board::select(info.compatible.iter());
    let consoles = board::consoles(board, &info);
    let debug = consoles.debug;
    if let Some(u) = debug {
        console::set_debug_uart(u.base.0 as usize, u.kind);
    }
    if el != 2 {
        stop(format_args!(
            "entered at EL{el}: this hypervisor must be started at EL2 (QEMU: -M virt,virtualization=on; \
             Raspberry Pi: the firmware's default armstub)"
        ));
    }
    arch::set_cpu_index(0);
    println!();
    println!(
        "hv: hypervisor v{VERSION} (board {}) at EL2, image at {load_addr:#x}, DTB at {dtb_pa:#x}",
        board.name
    );
    let ((image, image_end), (stacks, stacks_end), (heap, heap_end)) = (
        arch::image_range(),
        arch::stacks_range(),
        arch::heap_range(),
    );
    println!(
        "hv: image {image:#x}-{:#x}: stacks {stacks:#x}-{:#x}, heap {heap:#x}-{:#x}",
        image_end - 1,
        stacks_end - 1,
        heap_end - 1
    );
    print_board(board, matched, &info, &consoles);

    // The image was loaded with the caches off: discard any stale lines over it before
    // they could be written back over our data.
    let (img_start, img_end) = arch::image_range();
    cache::invalidate_dcache(img_start, img_end - img_start);
    heap::init();
    let mut map = mmu::build(
        &ram_ranges(&info, dtb_pa, dtb.len()),
        &device_ranges(&info, [consoles.debug, consoles.guest]),
    );
    mmu::enable(&mut map);
    core::mem::forget(map);
    let guest_uart = consoles.guest.map(|u| (u.base, u.kind, u.path.clone()));
    let (debug_irq, guest_irq) = (
        debug.and_then(|u| u.irq),
        consoles.guest.and_then(|u| u.irq),
    );
    let emulated = board::emulated_uart(&consoles);
    let debug_path = debug.map(|u| u.path.clone());
    let info = MACHINE.call_once(|| info);
    HOST_DTB.call_once(|| dtb);
    BOARD.call_once(|| board);
    EMULATED_UART.call_once(|| emulated);
    arch::smc::set_psci(bringup::firmware_psci(info).is_ok());

    print_machine(info);
    match bringup::counter_frequency(arch::timer::firmware_frequency(), info) {
        Some(hz) if arch::timer::firmware_frequency() == 0 => {
            arch::timer::set_frequency(hz);
            println!("hv: timer: CNTFRQ_EL0 is 0: counting at the device tree's {hz} Hz");
        }
        Some(_) => {}
        None => println!(
            "hv: timer: CNTFRQ_EL0 is 0 and the device tree gives no clock-frequency: timing is wrong"
        ),
    }
    if let Some(us) = hv_option(info, "hv.slice_us") {
        sched::set_slice_us(us);
    }
    if let Some(us) = hv_option(info, "hv.min_run_us") {
        sched::set_min_run_us(us);
    }
    println!(
        "hv: scheduling slice {} us; a woken vCPU preempts after {} us",
        sched::slice_us(),
        sched::min_run_us()
    );
    if hv_option(info, "hv.stay") == Some(1) {
        sched::set_stay(true);
    }
    check_vm_list_option(
        info,
        "hv.trace_vm_regs",
        "tracing the memory-control registers of",
    );
    check_vm_list_option(info, "hv.pmu", "a virtual PMU for");
    if vm_list_option(info, "hv.mte") == Some("none") {
        println!("hv: memory tagging offered to no VM");
    } else {
        check_vm_list_option(info, "hv.mte", "memory tagging (when the CPU has it) for");
    }
    let Some(gic) = info.gic.as_ref() else {
        stop(format_args!("no GIC in the device tree"))
    };
    let gic_config = match gic.version {
        GicVersion::V2 => gic::GicConfig::V2 {
            gicd: gic.distributor.start.0 as usize,
            gicc: gic.cpu_interface_base().map_or(0, |a| a.0 as usize),
        },
        _ => gic::GicConfig::V3 {
            gicd: gic.distributor.start.0 as usize,
            gicr: gic.redistributors.first().map_or(0, |r| r.start.0 as usize),
        },
    };
    if let Some(t) = info.timer.as_ref() {
        HYP_TIMER.store(t.hyp_phys.intid, Ordering::Relaxed);
    }
    el2_guest_defaults();
    gic::init(gic_config, info.cpus.len());
    gic::enable_private(hyp_timer_intid(), 0);
    gic::enable_private(super::control::KICK_SGI, 0);
    super::vgic::init(info); // vGIC: virtual interface facts, then this CPU's part.
    super::vgic::init_cpu(0);
    sched::set_online(0, arch::mpidr());

    start_secondaries(info);
    let cpus = CPUS_ONLINE.load(Ordering::SeqCst);
    let Some((guest_base, guest_kind, guest_path)) = guest_uart else {
        stop(format_args!(
            "no console: the device tree names no UART this hypervisor has a driver for"
        ))
    };
    console::set_guest_uart(guest_base.0 as usize, guest_kind);
    console::start_rings(
        debug_irq.map(uart_irq),
        guest_irq.map(uart_irq),
        hv_option(info, "hv.uart_irq") != Some(0),
    );
    let vms = super::vmbuild::build_vms(
        info,
        dtb,
        dtb_pa,
        cpus,
        emulated.map_or(guest_base.0, |u| u.ipa),
        guest_path.as_str(),
        debug_path.as_ref().map(|p| p.as_str()),
    );
    let vms = vm::install(vms);
    console::set_vms(vms.len());
    if !vms.is_empty() {
        super::vgic::create(); // vGIC: one per VM (GICv2: GICV mapped at GICC).
        super::passthrough::start(); // Passthrough: forward the assigned SPIs.
        let (used, free) = heap::usage();
        println!(
            "hv: {} VM(s) ready; heap {} KiB used, {} KiB free",
            vms.len(),
            used / 1024,
            free / 1024
        );
        println!("hv: debug console: type 'help' for commands");
    }
    VMS_READY.store(true, Ordering::SeqCst);
    arch::send_event();
    sched::run()
}

#[no_mangle]
extern "C" fn hv_secondary_main(index: usize) -> ! {
    arch::set_cpu_index(index);
    mmu::enable_secondary();
    el2_guest_defaults();
    gic::init_secondary(index);
    gic::enable_private(hyp_timer_intid(), index);
    gic::enable_private(super::control::KICK_SGI, index);
    super::vgic::init_cpu(index); // vGIC
    sched::set_online(index, arch::mpidr());
    CPUS_ONLINE.fetch_add(1, Ordering::SeqCst);
    while !VMS_READY.load(Ordering::SeqCst) {
        arch::wait_for_event();
    }
    sched::run()
}

/// The EL2 registers every CPU needs the same for all guests (they are per CPU, so
/// each CPU sets its own): the stage-2 layout, EL1 access to the physical counter and
/// timer, no virtual counter offset, and the guest's MIDR (the host's).
fn el2_guest_defaults() {
    use aarch64_cpu::registers::{Readable, ID_AA64MMFR0_EL1, MIDR_EL1};
    let pa_range = ID_AA64MMFR0_EL1.read(ID_AA64MMFR0_EL1::PARange);
    stage2::configure(pa_range);
    let vtcr = stage2::vtcr(pa_range);
    // EL1PCTEN | EL1PCEN: the guest reads the physical counter and owns the EL1
    // physical timer (CNTP_*), switched with its vCPU like the virtual one.
    let cnthctl: u64 = 0b11;
    let mdcr: u64;
    // SAFETY: reading MDCR_EL2 has no side effects.
    unsafe { core::arch::asm!("mrs {}, mdcr_el2", out(reg) mdcr) };
    // Keep HPMN (the counters the firmware gave EL1), add the cpreg table's traps.
    let hpmn = mdcr & 0x1f;
    let mdcr = hpmn | cpreg::MDCR_EL2_TRAPS;
    // A VM given a PMU: its registers are not trapped, EL1 gets at most 8 event
    // counters (HPMN), and EL2 is never counted (HPMD).
    let pmu_counters = if arch::pmu::present() { hpmn.min(8) } else { 0 };
    let _ = MDCR.call_once(|| Mdcr {
        default: mdcr,
        pmu: (mdcr & !(cpreg::traps::mdcr::TPM | cpreg::traps::mdcr::TPMCR | 0x1f))
            | cpreg::traps::mdcr::HPMD
            | pmu_counters,
        pmu_counters: pmu_counters as u8,
    });
    if arch::pmu::present() {
        // Nothing counts or interrupts until a VM with a PMU loads its own state.
        arch::pmu::quiesce();
    }
    // SAFETY: these registers only configure how guests run; none is running here.
    unsafe {
        core::arch::asm!(
            "msr vtcr_el2, {vtcr}",
            "msr cnthctl_el2, {cnthctl}",
            "msr cntvoff_el2, xzr",
            "msr vpidr_el2, {midr}",
            "msr mdcr_el2, {mdcr}",
            // The guest's OS lock is emulated (cpreg table); the hardware's must be
            // clear, or debug exceptions for the GDB stub are disabled.
            "msr oslar_el1, xzr",
            "isb",
            vtcr = in(reg) vtcr,
            cnthctl = in(reg) cnthctl,
            midr = in(reg) MIDR_EL1.get(),
            mdcr = in(reg) mdcr,
        )
    };
}

/// MDCR_EL2 for guests: the same on every CPU (the boot CPU's decides).
pub struct Mdcr {
    /// For VMs without a PMU: every PMU register traps (and UNDEFs).
    pub default: u64,
    /// For VMs with a PMU: no PMU traps, HPMN event counters, HPMD.
    pub pmu: u64,
    /// The event counters a VM with a PMU gets (0: the host has no PMU).
    pub pmu_counters: u8,
}

static MDCR: Once<Mdcr> = Once::new();

/// The MDCR_EL2 values for guests (after the boot CPU's `el2_guest_defaults`).
pub fn mdcr() -> &'static Mdcr {
    MDCR.get().unwrap_or(&Mdcr {
        default: cpreg::MDCR_EL2_TRAPS,
        pmu: cpreg::MDCR_EL2_TRAPS,
        pmu_counters: 0,
    })
}

/// A numeric `key=value` from the hypervisor's own command line (`/chosen/bootargs`
/// of the host DTB; QEMU `-append`).
fn hv_option(info: &MachineInfo, key: &str) -> Option<u64> {
    let value = info
        .bootargs?
        .split_ascii_whitespace()
        .find_map(|a| a.strip_prefix(key)?.strip_prefix('='))?;
    match value.parse() {
        Ok(v) => Some(v),
        Err(_) => {
            println!("hv: ignoring {key}={value}: not a number");
            None
        }
    }
}

/// Says which entries of a `key=vmN[,vmM...]|all` option mean nothing (they are
/// ignored), and what the option applies to.
fn check_vm_list_option(info: &MachineInfo, key: &str, what: &str) {
    let Some(list) = vm_list_option(info, key) else {
        return;
    };
    for v in list.split(',') {
        let ok = v == "all"
            || v.strip_prefix("vm")
                .is_some_and(|n| n.parse::<usize>().is_ok());
        if !ok {
            println!("hv: ignoring {key} entry '{v}': use vmN (e.g. vm0) or all");
        }
    }
    println!("hv: {what} {list}");
}

fn vm_list_option<'a>(info: &MachineInfo<'a>, key: &str) -> Option<&'a str> {
    info.bootargs?
        .split_ascii_whitespace()
        .find_map(|w| w.strip_prefix(key)?.strip_prefix('='))
}

/// Whether a `key=vmN[,vmM...]|all` option names VM `vm`.
fn vm_listed(info: &MachineInfo, key: &str, vm: usize) -> bool {
    vm_list_option(info, key).is_some_and(|list| {
        list.split(',').any(|v| {
            v == "all"
                || v.strip_prefix("vm")
                    .and_then(|n| n.parse::<usize>().ok())
                    .is_some_and(|n| n == vm)
        })
    })
}

/// `hv.trace_vm_regs=vmN[,vmM...]` or `=all`: the VMs whose memory-control
/// registers are trapped on every access (TVM/TRVM) and counted in `traps`.
pub fn traces_vm_regs(info: &MachineInfo, vm: usize) -> bool {
    vm_listed(info, "hv.trace_vm_regs", vm)
}

/// `hv.pmu=vmN[,vmM...]` or `=all`: the VMs given a virtual PMU (when the host has
/// one). The others get none: their PMU registers UNDEF.
pub fn gives_pmu(info: &MachineInfo, vm: usize) -> bool {
    vm_listed(info, "hv.pmu", vm)
}

/// `hv.mte=vmN[,vmM...]`, `=all` (the default) or `=none`: the VMs offered memory
/// tagging when the CPU has FEAT_MTE2. Returns (offered, named by the option).
pub fn gives_mte(info: &MachineInfo, vm: usize) -> (bool, bool) {
    match vm_list_option(info, "hv.mte") {
        None => (true, false),
        Some(_) => {
            let named = vm_listed(info, "hv.mte", vm);
            (named, named)
        }
    }
}

/// Normal memory for the identity map: the RAM banks, and the image and the DTB
/// wherever they lie (`crate::el2map`).
fn ram_ranges(
    info: &MachineInfo,
    dtb_pa: usize,
    dtb_len: usize,
) -> heapless::Vec<(usize, usize), 16> {
    let (img_start, img_end) = arch::image_range();
    let extra = [
        Range::new(PhysAddr(img_start as u64), (img_end - img_start) as u64),
        Range::new(PhysAddr(dtb_pa as u64), dtb_len as u64),
    ];
    crate::el2map::normal_ranges(&info.memory, &extra)
        .iter()
        .map(|&(a, s)| (a as usize, s as usize))
        .collect()
}

/// The devices the hypervisor drives itself, for its identity map: its UARTs (each
/// model's register window) and the GIC.
fn device_ranges(
    info: &MachineInfo,
    uarts: [Option<&dt::UartInfo>; 2],
) -> heapless::Vec<(usize, usize), 16> {
    let mut v = heapless::Vec::new();
    let page = |a: u64, s: u64| {
        let start = a & !0xfff;
        let end = (a + s.max(1) + 0xfff) & !0xfff;
        (start as usize, (end - start) as usize)
    };
    for u in uarts.into_iter().flatten() {
        let _ = v.push(page(u.base.0, u.kind.window() as u64));
    }
    if let Some(g) = &info.gic {
        let _ = v.push(page(g.distributor.start.0, g.distributor.size));
        for r in &g.redistributors {
            let _ = v.push(page(r.start.0, r.size));
        }
        if let Some(c) = g.cpu_interface {
            let _ = v.push(page(c.start.0, c.size));
        }
        if let Some(h) = g.hyp_interface {
            let _ = v.push(page(h.start.0, h.size));
        }
    }
    v
}

/// Says which board this is and which drivers run its consoles.
fn print_board(
    board: &Board,
    matched: Option<&str>,
    info: &MachineInfo,
    consoles: &board::Consoles,
) {
    // No allocation: the heap is not up yet.
    struct Why<'a>(Option<&'a str>, Option<&'a str>);
    impl core::fmt::Display for Why<'_> {
        fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
            match self {
                Why(Some(c), _) => write!(f, "({c})"),
                Why(None, Some(root)) => write!(
                    f,
                    "(no board file knows the root compatible \"{root}\": the console is stdout-path's UART)"
                ),
                Why(None, None) => write!(
                    f,
                    "(the device tree has no root compatible: the console is stdout-path's UART)"
                ),
            }
        }
    }
    let why = Why(matched, info.compatible.first());
    match consoles.debug {
        Some(u) => println!(
            "hv: board {} {why}; debug console: {} at {:#x} ({})",
            board.name, u.kind, u.base.0, u.path
        ),
        None => println!("hv: board {} {why}; no debug console", board.name),
    }
    match consoles.guest {
        Some(_) if consoles.single_cable() => {
            println!(
                "hv: guest consoles: on the debug console's line (one serial cable); Ctrl-] three times switches typed input between the hypervisor and each VM"
            )
        }
        Some(u) => println!(
            "hv: guest consoles: {} at {:#x} ({})",
            u.kind, u.base.0, u.path
        ),
        None => {}
    }
}

/// The GIC's version as the boot log and the console print it.
pub fn gic_version(v: GicVersion) -> &'static str {
    match v {
        GicVersion::V2 => "V2",
        GicVersion::V3 => "V3",
    }
}

fn print_machine(info: &MachineInfo) {
    let mib = info.memory_size() >> 20;
    println!("hv: machine: {}", info.model.unwrap_or("(no model)"));
    for r in &info.memory {
        println!(
            "hv: memory: {:#x}-{:#x} ({} MiB)",
            r.start.0,
            r.end().0 - 1,
            r.size >> 20
        );
    }
    println!("hv: memory total: {mib} MiB");
    println!("hv: cpus: {}", info.cpus.len());
    if let Some(g) = &info.gic {
        println!(
            "hv: gic: {} distributor at {:#x}",
            gic_version(g.version),
            g.distributor.start.0
        );
    }
    if let Some(t) = &info.timer {
        println!(
            "hv: timer: virtual PPI INTID {}, EL2 physical PPI INTID {}",
            t.virt.intid, t.hyp_phys.intid
        );
    }
}

/// Starts every other CPU the device tree lists, by PSCI or spin table
/// (`crate::bringup` decides which), one at a time so logical indexes stay dense.
fn start_secondaries(info: &MachineInfo) {
    let me = arch::mpidr();
    arch::set_cpu_mpidr(0, me);
    let mut index = 1;
    let mut spin_table = false;
    for cpu in bringup::secondaries(info, me) {
        if index >= sched::MAX_CPUS {
            println!(
                "hv: cpu {:#x}: not used (at most {} CPUs)",
                cpu.mpidr,
                sched::MAX_CPUS
            );
            continue;
        }
        match cpu.start {
            Start::Psci => {
                let entry = arch::secondary_entry as *const () as usize;
                if let Err(e) = smc::cpu_on(cpu.mpidr, entry, index) {
                    println!("hv: cpu {:#x}: PSCI CPU_ON failed: {e}", cpu.mpidr);
                    continue;
                }
            }
            Start::SpinTable(release) => {
                spin_table = true;
                arch::set_cpu_mpidr(index, cpu.mpidr);
                let entry = arch::spin_table_entry as *const () as usize;
                // SAFETY: the release address comes from this CPU's DT node; its page
                // is RAM kept out of every guest (dt::ReservedKind::SpinTable).
                unsafe { arch::release_spin_table(release.0 as usize, entry) };
            }
            Start::Unusable(why) => {
                println!("hv: cpu {:#x}: not started: {why}", cpu.mpidr);
                continue;
            }
        }
        // Wait (bounded) until it is up, so indexes stay dense.
        let deadline = arch::timer::now() + arch::timer::frequency();
        while !sched::is_online(index) && arch::timer::now() < deadline {
            core::hint::spin_loop();
        }
        if sched::is_online(index) {
            index += 1;
        } else {
            println!("hv: cpu {:#x}: did not come up within 1 s", cpu.mpidr);
            // A spin-table CPU may still come later: it must not take this index.
            arch::set_cpu_mpidr(index, u64::MAX);
        }
    }
    let how = if spin_table { "spin table" } else { "PSCI" };
    println!(
        "hv: {} CPU(s) online (secondaries started by {how})",
        CPUS_ONLINE.load(Ordering::SeqCst)
    );
}
