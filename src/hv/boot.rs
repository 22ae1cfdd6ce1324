//! Bringing the machine up: from the boot assembly to every CPU running guests.
//!
//! Order matters. The device tree says where the debug UART is, so it is parsed
//! first (no allocation, MMU off); then the EL check (a wrong EL is reported on that
//! UART); then the heap and the identity map, and the MMU goes on before any lock.
//! The secondaries start next, so the VMs can be sized by the CPUs that really came
//! up; they wait until the VMs are published.

use super::vcpu::{RunState, Vcpu};
use super::{console, gic, heap, sched, vm};
use crate::addr::{Ipa, PhysAddr, Range};
use crate::arch::{self, cache, mmu, smc};
use crate::board::{self, Board};
use crate::bringup::{self, Start};
use crate::dt::{self, GicVersion, MachineInfo};
use crate::{cpreg, guest_image, memplan, println, stage2};
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};
use spin::Once;

pub const VERSION: &str = env!("CARGO_PKG_VERSION");

static MACHINE: Once<MachineInfo<'static>> = Once::new();
static BOARD: Once<&'static Board> = Once::new();
/// Every guest's emulated PL011: where, and its SPI (`board::emulated_uart`).
static EMULATED_UART: Once<Option<dt::EmulatedUart>> = Once::new();
static GUEST_IDS: Once<cpreg::GuestIds> = Once::new();
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

/// The INTID of every guest's emulated PL011, if it has one (the vGIC raises it).
pub fn emulated_uart_intid() -> Option<u32> {
    EMULATED_UART.get().copied().flatten().and_then(|u| u.intid)
}

/// The INTID of the EL2 physical timer (the scheduling tick).
pub fn hyp_timer_intid() -> u32 {
    HYP_TIMER.load(Ordering::Relaxed)
}

/// Bytes typed for guests go to their VM's UART (run on the tick of CPU 0): with
/// two UARTs, the guest console's to VM 0; with one cable, to the VM input was
/// switched to (`console::guest_input`).
pub fn poll_input() {
    if arch::cpu_index() != 0 {
        return;
    }
    while let Some((id, b)) = console::guest_input() {
        let Some(vm) = vm::get(id) else { continue };
        vm.uart.lock().receive(b);
        super::vgic::uart_changed(vm); // vGIC: the receive interrupt.
    }
}

fn stop(msg: core::fmt::Arguments) -> ! {
    println!("hv: {}", msg);
    println!("hv: stopped");
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
    println!("hv: scheduling slice {} us", sched::slice_us());
    if hv_option(info, "hv.stay") == Some(1) {
        sched::set_stay(true);
    }
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
    let Some((guest_base, guest_kind, guest_path)) = guest_uart else {
        stop(format_args!(
            "no console: the device tree names no UART this hypervisor has a driver for"
        ))
    };
    console::set_guest_uart(guest_base.0 as usize, guest_kind);
    match build_vms(
        info,
        dtb,
        dtb_pa,
        cpus,
        emulated.map_or(guest_base.0, |u| u.ipa),
        guest_path.as_str(),
        debug_path.as_ref().map(|p| p.as_str()),
    ) {
        Ok(vms) => {
            let vms = vm::install(vms);
            super::vgic::create(); // vGIC: one per VM (GICv2: GICV mapped at GICC).
            console::set_vms(vms.len());
            let (used, free) = heap::usage();
            println!(
                "hv: {} VM(s) ready; heap {} KiB used, {} KiB free",
                vms.len(),
                used / 1024,
                free / 1024
            );
            println!("hv: debug console: type 'help' for commands");
        }
        Err(e) => {
            println!("hv: cannot start guests: {e}");
            vm::install(Vec::new());
        }
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
            "hv: gic: {:?} distributor at {:#x}",
            g.version, g.distributor.start.0
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

/// Everything that can stop guests from starting, said plainly.
#[derive(Debug)]
enum BootError {
    Modules(dt::DtError),
    NoGuests,
    Memory(memplan::PlanError),
    Kernel(usize, guest_image::LayoutError),
    GuestDtb(usize, dt::DtError),
    Stage2(usize),
}

impl core::fmt::Display for BootError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Modules(e) => write!(f, "the /chosen modules are invalid: {e:?}"),
            Self::NoGuests => write!(
                f,
                "no guest kernel in /chosen (QEMU: -device guest-loader,kernel=...)"
            ),
            Self::Memory(e) => write!(f, "guest memory: {e:?}"),
            Self::Kernel(vm, e) => write!(f, "vm{vm}: kernel: {e:?}"),
            Self::GuestDtb(vm, e) => write!(f, "vm{vm}: device tree: {e:?}"),
            Self::Stage2(vm) => write!(f, "vm{vm}: stage-2 mapping failed"),
        }
    }
}

fn phys_slice(r: Range<PhysAddr>) -> &'static [u8] {
    // SAFETY: module ranges come from the DTB, lie in RAM (identity-mapped), and are
    // excluded from every VM's memory, so nothing writes them while we read.
    unsafe { core::slice::from_raw_parts(r.start.0 as *const u8, r.size as usize) }
}

/// Copies `data` into guest RAM at `ipa` and cleans it to the point of coherency (the
/// guest starts with its MMU and caches off).
fn copy_to_guest(ram: &memplan::GuestRam, ipa: Ipa, data: &[u8]) -> bool {
    let mut done = 0;
    while done < data.len() {
        let Some((pa, contiguous)) = ram.translate(ipa.add(done as u64)) else {
            return false;
        };
        let n = (data.len() - done).min(contiguous as usize);
        // SAFETY: [pa, pa + n) is this VM's RAM, identity-mapped, not yet running.
        unsafe { core::ptr::copy_nonoverlapping(data[done..].as_ptr(), pa.0 as *mut u8, n) };
        cache::clean_inval_dcache(pa.0 as usize, n);
        done += n;
    }
    true
}

#[allow(clippy::too_many_arguments)]
fn build_vms(
    info: &MachineInfo<'static>,
    dtb: &'static [u8],
    dtb_pa: usize,
    cpus: usize,
    uart_ipa: u64,
    console_path: &str,
    debug_path: Option<&str>,
) -> Result<Vec<vm::Vm>, BootError> {
    let specs = dt::guests(info).map_err(BootError::Modules)?;
    if specs.is_empty() {
        return Err(BootError::NoGuests);
    }
    let (img_start, img_end) = arch::image_range();
    let mut taken: Vec<Range<PhysAddr>> = Vec::new();
    taken.push(Range::new(
        PhysAddr(img_start as u64),
        (img_end - img_start) as u64,
    ));
    taken.push(Range::new(PhysAddr(dtb_pa as u64), dtb.len() as u64));
    for m in &info.modules {
        taken.push(m.range);
    }
    for d in &info.domains {
        for m in &d.modules {
            taken.push(m.range);
        }
    }
    for r in &info.reserved {
        taken.push(r.range);
    }
    let requests: Vec<Option<u64>> = specs.iter().map(|s| s.memory).collect();
    // What guests may see of this CPU: the host's ID registers, sanitised once.
    let host_ids = cpreg::HostIds::read(&mut cpreg::Hw);
    let policy = cpreg::IdPolicy {
        aarch32_el1: true,
        ipa_bits: stage2::IPA_BITS as u8,
    };
    let ids = GUEST_IDS.call_once(|| cpreg::GuestIds::sanitise(&host_ids, &policy));
    let plans = memplan::plan(&info.memory, &taken, &requests).map_err(BootError::Memory)?;

    let mut vms = Vec::new();
    for (id, (spec, ram)) in specs.iter().zip(plans).enumerate() {
        let nvcpus = spec.vcpus.unwrap_or(cpus).clamp(1, dt::MAX_VCPUS);
        let mut s2 = stage2::Stage2Tables::new();
        let mut ipa = ram.ipa.start;
        for c in &ram.chunks {
            s2.map(ipa, c.start, c.size, stage2::RAM)
                .map_err(|_| BootError::Stage2(id))?;
            ipa = ipa.add(c.size);
        }
        let kernel = phys_slice(spec.kernel);
        let placement = guest_image::place(kernel).map_err(|e| BootError::Kernel(id, e))?;
        let initrd = spec.ramdisk.map(phys_slice);
        let layout = guest_image::layout(&placement, initrd.map(|i| i.len() as u64), ram.ipa.size)
            .map_err(|e| BootError::Kernel(id, e))?;
        let base = ram.ipa.start;
        let entry = base.add(layout.kernel);
        let dtb_ipa = base.add(layout.dtb);
        let initrd_range = initrd
            .zip(layout.initrd)
            .map(|(i, off)| Range::new(base.add(off), i.len() as u64));
        let hidden: heapless::Vec<&str, 1> = debug_path.into_iter().collect();
        if spec.dtb.is_some() {
            // In Xen dom0less a device-tree module is a partial tree for device
            // passthrough, not the guest's whole tree: nothing is passed through yet.
            println!("vm{id}: ignoring its device-tree module (partial device trees for passthrough are not supported)");
        }
        let guest_dtb = dt::guest_dtb(
            dtb,
            info,
            &dt::GuestDtbParams {
                vcpus: nvcpus,
                ram: ram.ipa,
                bootargs: spec.bootargs,
                initrd: initrd_range,
                console_path,
                hidden_paths: &hidden,
                uart: EMULATED_UART.get().copied().flatten(),
            },
        )
        .map_err(|e| BootError::GuestDtb(id, e))?;
        if !(copy_to_guest(&ram, entry, kernel)
            && initrd
                .zip(initrd_range)
                .is_none_or(|(i, r)| copy_to_guest(&ram, r.start, i))
            && copy_to_guest(&ram, dtb_ipa, &guest_dtb))
        {
            return Err(BootError::Kernel(
                id,
                guest_image::LayoutError::TooLarge {
                    needed: 0,
                    ram: ram.ipa.size,
                },
            ));
        }
        let vttbr = s2.vttbr((id + 1) as u8);
        let vcpus: Vec<Vcpu> = (0..nvcpus)
            .map(|j| Vcpu::new(id, j, (j + id) % cpus, ids))
            .collect();
        for v in &vcpus {
            sched::assign(id, v.index, v.pcpu);
        }
        let aarch32 = placement.kind == guest_image::Kind::ZImage;
        // arm64: x0 = DTB. 32-bit ARM Linux: r0 = 0, r1 = ~0 (no machine number), r2 = DTB.
        let args = if aarch32 {
            [0, 0xffff_ffff, dtb_ipa.0]
        } else {
            [dtb_ipa.0, 0, 0]
        };
        vcpus[0].reset(entry.0, args, aarch32);
        vcpus[0].set_state(RunState::Runnable);
        println!(
            "vm{id}: {nvcpus} vCPU(s), {} MiB RAM at IPA {:#x} in {} chunk(s), kernel {:?} at {:#x} ({} KiB), dtb at {:#x}{}",
            ram.ipa.size >> 20,
            ram.ipa.start.0,
            ram.chunks.len(),
            placement.kind,
            entry.0,
            kernel.len() / 1024,
            dtb_ipa.0,
            match initrd_range {
                Some(r) => alloc::format!(", initrd at {:#x} ({} KiB)", r.start.0, r.size / 1024),
                None => alloc::string::String::new(),
            }
        );
        if let Some(args) = spec.bootargs {
            println!("vm{id}: bootargs \"{args}\"");
        }
        vms.push(vm::Vm::new(id, aarch32, ram, s2, vttbr, vcpus, uart_ipa));
    }
    cache::invalidate_icache_all();
    // SAFETY: invalidates all stage-1 and stage-2 TLB entries of every VMID before
    // any guest runs.
    unsafe { core::arch::asm!("tlbi alle1is", "dsb ish", "isb") };
    Ok(vms)
}
