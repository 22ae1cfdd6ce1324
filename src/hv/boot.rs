//! Bringing the machine up: from the boot assembly to every CPU running guests.
//!
//! Order matters. The device tree says where the debug UART is, so it is parsed
//! first (no allocation, MMU off); then the EL check (a wrong EL is reported on that
//! UART); then the heap and the identity map, and the MMU goes on before any lock.
//! The secondaries start next, so the VMs can be sized by the CPUs that really came
//! up; they wait until the VMs are published.

use super::{console, gic, heap, sched, vm};
use crate::arch::{self, cache, mmu, smc};
use crate::dt::{self, GicVersion, MachineInfo};
use crate::{cpreg, println, stage2};
use core::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};
use spin::Once;

pub const VERSION: &str = env!("CARGO_PKG_VERSION");
pub const BOARD: &str = env!("HV_BOARD_NAME");
const DEBUG_UART_ALIAS: &str = env!("HV_BOARD_DEBUG_UART");

static MACHINE: Once<MachineInfo<'static>> = Once::new();
static HOST_DTB: Once<&'static [u8]> = Once::new();
static HYP_TIMER: AtomicU32 = AtomicU32::new(26);
static VMS_READY: AtomicBool = AtomicBool::new(false);
static CPUS_ONLINE: AtomicUsize = AtomicUsize::new(1);

/// The parsed host device tree.
pub fn machine() -> Option<&'static MachineInfo<'static>> {
    MACHINE.get()
}

/// The INTID of the EL2 physical timer (the scheduling tick).
pub fn hyp_timer_intid() -> u32 {
    HYP_TIMER.load(Ordering::Relaxed)
}

/// Bytes typed on the guest console go to VM 0's UART (run on the tick of CPU 0).
pub fn poll_input() {
    if arch::cpu_index() != 0 {
        return;
    }
    let Some(vm) = vm::get(0) else { return };
    let mut got = false;
    while let Some(b) = console::guest_read() {
        vm.uart.lock().receive(b);
        got = true;
    }
    if got {
        super::vgic::uart_changed(vm); // vGIC: the receive interrupt.
    }
}

fn stop(msg: core::fmt::Arguments) -> ! {
    println!("hv: {}", msg);
    println!("hv: stopped");
    arch::halt()
}

/// The device tree the boot loader passed, as a slice (its header gives the size).
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
    // (its memory is never given to a guest).
    Some(unsafe { core::slice::from_raw_parts(dtb as *const u8, size) })
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
    let info = MACHINE.call_once(|| info);
    HOST_DTB.call_once(|| dtb);
    let debug = info
        .resolve_alias(DEBUG_UART_ALIAS)
        .or_else(|| info.stdout_uart());
    if let Some(u) = debug {
        console::set_debug_uart(u.base.0 as usize);
    }
    if el != 2 {
        stop(format_args!(
            "entered at EL{el}: this hypervisor must be started at EL2 (QEMU: -M virt,virtualization=on; \
             Raspberry Pi: the firmware's default armstub)"
        ));
    }
    arch::set_cpu_index(0);
    println!();
    println!("hv: hypervisor v{VERSION} (board {BOARD}) at EL2, image at {load_addr:#x}, DTB at {dtb_pa:#x}");
    let guest_uart = info
        .resolve_alias("serial0")
        .filter(|g| Some(g.base) != debug.map(|d| d.base));
    match debug {
        Some(u) => println!(
            "hv: debug console: {} ({} at {:#x})",
            DEBUG_UART_ALIAS, u.path, u.base.0
        ),
        None => {}
    }

    // The image was loaded with the caches off: discard any stale lines over it before
    // they could be written back over our data.
    let (img_start, img_end) = arch::image_range();
    cache::invalidate_dcache(img_start, img_end - img_start);
    heap::init();
    let mut map = mmu::build(
        &ram_ranges(info),
        &device_ranges(info, debug.map(|u| u.base.0)),
    );
    mmu::enable(&mut map);
    core::mem::forget(map);

    print_machine(info);
    if let Some(us) = hv_option(info, "hv.slice_us") {
        sched::set_slice_us(us);
    }
    println!("hv: scheduling slice {} us", sched::slice_us());
    if hv_option(info, "hv.stay") == Some(1) {
        sched::set_stay(true);
    }
    check_trace_option(info);
    let Some(gic) = info.gic.as_ref() else {
        stop(format_args!("no GIC in the device tree"))
    };
    let gic_config = match gic.version {
        GicVersion::V2 => gic::GicConfig::V2 {
            gicd: gic.distributor.start.0 as usize,
            gicc: gic.cpu_interface.map_or(0, |r| r.start.0 as usize),
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
    let Some(guest_uart) = guest_uart else {
        stop(format_args!(
            "no guest console: the device tree has no `serial0` PL011 apart from the debug UART"
        ))
    };
    let vms = super::vmbuild::build_vms(
        info,
        dtb,
        dtb_pa,
        cpus,
        guest_uart.base.0,
        guest_uart.path.as_str(),
        debug.map(|u| u.path.as_str()),
    );
    let vms = vm::install(vms);
    if !vms.is_empty() {
        super::vgic::create(); // vGIC: one per VM (GICv2: GICV mapped at GICC).
        super::passthrough::start(); // Passthrough: forward the assigned SPIs.
        console::set_guest_uart(guest_uart.base.0 as usize);
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
    let vtcr = stage2::vtcr(ID_AA64MMFR0_EL1.read(ID_AA64MMFR0_EL1::PARange));
    // EL1PCTEN | EL1PCEN: the guest reads the physical counter and uses its timer.
    let cnthctl: u64 = 0b11;
    let mdcr: u64;
    // SAFETY: reading MDCR_EL2 has no side effects.
    unsafe { core::arch::asm!("mrs {}, mdcr_el2", out(reg) mdcr) };
    // Keep HPMN (the counters the firmware gave EL1), add the cpreg table's traps.
    let mdcr = (mdcr & 0x1f) | cpreg::MDCR_EL2_TRAPS;
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

/// Says which `hv.trace_vm_regs` entries mean nothing (they are ignored).
fn check_trace_option(info: &MachineInfo) {
    let Some(list) = info.bootargs.and_then(|a| {
        a.split_ascii_whitespace()
            .find_map(|w| w.strip_prefix("hv.trace_vm_regs="))
    }) else {
        return;
    };
    for v in list.split(',') {
        let ok = v == "all"
            || v.strip_prefix("vm")
                .is_some_and(|n| n.parse::<usize>().is_ok());
        if !ok {
            println!("hv: ignoring hv.trace_vm_regs entry '{v}': use vmN (e.g. vm0) or all");
        }
    }
    println!("hv: tracing the memory-control registers of {list}");
}

/// `hv.trace_vm_regs=vmN[,vmM...]` or `=all`: the VMs whose memory-control
/// registers are trapped on every access (TVM/TRVM) and counted in `traps`.
pub fn traces_vm_regs(info: &MachineInfo, vm: usize) -> bool {
    let Some(list) = info.bootargs.and_then(|a| {
        a.split_ascii_whitespace()
            .find_map(|w| w.strip_prefix("hv.trace_vm_regs="))
    }) else {
        return false;
    };
    list.split(',').any(|v| {
        v == "all"
            || v.strip_prefix("vm")
                .and_then(|n| n.parse::<usize>().ok())
                .is_some_and(|n| n == vm)
    })
}

fn ram_ranges(info: &MachineInfo) -> heapless::Vec<(usize, usize), 8> {
    info.memory
        .iter()
        .map(|r| (r.start.0 as usize, r.size as usize))
        .collect()
}

/// The devices the hypervisor drives itself, for its identity map.
fn device_ranges(info: &MachineInfo, debug: Option<u64>) -> heapless::Vec<(usize, usize), 16> {
    let mut v = heapless::Vec::new();
    let page = |a: u64, s: u64| ((a & !0xfff) as usize, ((s + 0xfff) & !0xfff) as usize);
    for u in info.uarts.iter().filter(|u| u.enabled) {
        if Some(u.base.0) == debug || u.aliases.contains(&"serial0") {
            let _ = v.push(page(u.base.0, u.size.max(0x1000)));
        }
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

fn start_secondaries(info: &MachineInfo) {
    let me = arch::mpidr();
    let entry = arch::secondary_entry as *const () as usize;
    let mut index = 1;
    for cpu in info.cpus.iter().filter(|c| c.mpidr != me) {
        if index >= sched::MAX_CPUS {
            println!(
                "hv: cpu {:#x}: not used (at most {} CPUs)",
                cpu.mpidr,
                sched::MAX_CPUS
            );
            continue;
        }
        if let Err(e) = smc::cpu_on(cpu.mpidr, entry, index) {
            println!("hv: cpu {:#x}: PSCI CPU_ON failed: {e}", cpu.mpidr);
            continue;
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
        }
    }
    println!("hv: {} CPU(s) online", CPUS_ONLINE.load(Ordering::SeqCst));
}
