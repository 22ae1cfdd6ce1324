//! Device assignment at run time: carries out the plan [`crate::passthrough`]
//! makes from the host device tree and the boot options.
//!
//! * **Boot** ([`prepare`], then per VM [`map_into`] and [`guest_dtb`], then
//!   [`start`]): the plan is made once, its refusals and notes printed; VMs
//!   whose devices may DMA get 1:1 RAM ([`direct_map`]); each VM's stage 2 maps
//!   its device pages as device memory (nGnRE, never executable) and, for a
//!   1:1 VM, its further RAM ranges; its device tree gets the devices. A VM
//!   with a refused request is built but never started ([`refused`]).
//! * **Interrupts**: each assigned SPI is configured on the host GIC (trigger,
//!   priority, disabled until the guest enables it), marked forwarded (so
//!   `gic::end` only drops its priority) and hardware-linked in the VM's vGIC.
//!   [`physical_irq`] hands a taken SPI to its VM: one exit per interrupt, and
//!   the guest's own EOI deactivates it. [`dist_written`] mirrors the guest's
//!   distributor on the physical SPI after every GICD write: masked while the
//!   virtual one is masked, routed to the physical CPU of the vCPU it targets.
//! * **Accounting**: interrupts forwarded per VM, and EL2 exits per CPU, for the
//!   console and the benchmark.

use super::vm::{self, Vm};
use super::{gic, sched, vgic};
use crate::addr::{Ipa, PhysAddr, Range};
use crate::dt::{DtError, MachineInfo};
use crate::memplan::GuestRam;
use crate::passthrough::{self as pt, Device, Plan, Spi};
use crate::stage2::{self, Stage2Tables};
use crate::{arch, println};
use alloc::string::String;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use spin::{Mutex, Once};

/// What boot prepared, until [`start`].
struct Boot {
    plan: Plan,
    tree: Option<pt::HostTree<'static>>,
    host: &'static [u8],
    partials: Vec<Option<&'static [u8]>>,
}

// SAFETY: `Boot` holds plain data and `&'static` slices of the host DTB and of
// boot modules, which nothing writes after boot; it is moved between CPUs only
// through the mutex below.
unsafe impl Send for Boot {}

static BOOT: Mutex<Option<Boot>> = Mutex::new(None);

/// A VM's devices once it runs.
struct VmState {
    devices: Vec<Device>,
    spis: Vec<Spi>,
    /// What was last applied to each physical SPI: (enabled, target vCPU).
    applied: Mutex<Vec<(bool, Option<usize>)>>,
    forwarded: AtomicU64,
}

static STATE: Once<Vec<VmState>> = Once::new();
/// The VM (plus one; 0: none) each INTID is forwarded to.
static OWNER: [AtomicU8; 1024] = [const { AtomicU8::new(0) }; 1024];
/// EL2 exits (exceptions taken from a guest), per physical CPU and class
/// (synchronous, IRQ, FIQ, SError).
static EXITS: [[AtomicU64; 4]; sched::MAX_CPUS] =
    [const { [const { AtomicU64::new(0) }; 4] }; sched::MAX_CPUS];

/// Makes the plan for `vms` VMs: the hypervisor's `hv.passthrough=` options,
/// each VM's `passthrough=` configuration value (`configs[vm]`, a bundle's) and
/// dom0less partial device tree (`partials[vm]`). Prints every refusal and note.
pub fn prepare(
    info: &MachineInfo<'_>,
    host: &'static [u8],
    vms: usize,
    configs: &[Option<&'static str>],
    partials: &[Option<&'static [u8]>],
    console_path: &str,
    debug_path: Option<&str>,
) {
    let mut requests = Vec::new();
    let (cmdline, errors) = pt::parse_cmdline(info.bootargs.unwrap_or(""));
    for e in errors {
        println!("hv: ignoring an option: {e}");
    }
    requests.extend(cmdline);
    let dma_trusted = match pt::dma_option(info.bootargs.unwrap_or("")) {
        Ok(t) => t,
        Err(e) => {
            println!("hv: ignoring an option: {e}");
            false
        }
    };
    if dma_trusted {
        println!(
            "hv: hv.passthrough_dma=trusted: DMA masters behind an SMMU may be given to VMs; \
             their DMA is not confined"
        );
    }
    let mut early: Vec<(usize, String)> = Vec::new();
    for (vm, c) in configs.iter().enumerate().take(vms) {
        match c.map(|c| pt::parse_config(vm, c)) {
            Some(Ok(r)) => requests.extend(r),
            Some(Err(e)) => early.push((vm, alloc::format!("vm{vm}: passthrough {e}"))),
            None => {}
        }
    }
    let mut partial_devices: Vec<Vec<pt::PartialDevice<'static>>> = Vec::new();
    for (vm, p) in partials.iter().enumerate().take(vms) {
        match p.map(pt::partial_devices) {
            Some(Ok(d)) => partial_devices.push(d),
            Some(Err(e)) => {
                early.push((vm, alloc::format!("vm{vm}: its device-tree module: {e}")));
                partial_devices.push(Vec::new());
            }
            None => partial_devices.push(Vec::new()),
        }
    }
    let anything =
        !requests.is_empty() || partials.iter().any(Option::is_some) || !early.is_empty();
    let mut tree = None;
    let mut plan = Plan {
        vms: alloc::vec![pt::VmDevices::default(); vms],
        messages: Vec::new(),
    };
    if anything {
        match pt::HostTree::new(host, info) {
            Ok(t) => {
                let ram: Vec<Range<PhysAddr>> = info
                    .memory
                    .iter()
                    .copied()
                    .chain(info.reserved.iter().map(|r| r.range))
                    .collect();
                let machine = pt::Machine {
                    tree: &t,
                    ram: &ram,
                    keep: pt::Keep {
                        debug_uart: debug_path,
                        console_uart: Some(console_path),
                        gic: info.gic.as_ref().map(|g| g.path.as_str()),
                    },
                    limits: pt::Limits {
                        intid_end: 32 + vgic::GUEST_SPIS as u32,
                        ipa_bits: stage2::IPA_BITS,
                    },
                    dma_trusted,
                };
                plan = pt::resolve(&machine, vms, &requests, &partial_devices);
                tree = Some(t);
            }
            Err(e) => {
                for vm in 0..vms {
                    early.push((vm, alloc::format!("vm{vm}: no device assignment: the host device tree is unreadable ({e})")));
                }
            }
        }
    }
    for (vm, text) in early {
        if let Some(v) = plan.vms.get_mut(vm) {
            v.refused = true;
            v.devices.clear();
            v.maps.clear();
        }
        plan.messages.push(pt::Message {
            vm: Some(vm),
            refusal: true,
            text,
        });
    }
    for m in &plan.messages {
        match m.vm {
            Some(_) => println!("{}", m.text),
            None => println!("hv: {}", m.text),
        }
    }
    for (id, v) in plan.vms.iter().enumerate() {
        if v.refused || v.devices.is_empty() {
            continue;
        }
        let spis = v.spis().count();
        println!(
            "vm{id}: passthrough: {} device(s), {} MMIO mapping(s), {spis} SPI(s){}",
            v.devices.len(),
            v.maps.len(),
            if v.needs_direct_map() {
                ", RAM mapped 1:1 for DMA"
            } else {
                ""
            }
        );
    }
    *BOOT.lock() = Some(Boot {
        plan,
        tree,
        host,
        partials: partials.to_vec(),
    });
}

/// Per VM: whether its RAM must be mapped 1:1 (a device may DMA).
pub fn direct_map(vms: usize) -> Vec<bool> {
    let boot = BOOT.lock();
    (0..vms)
        .map(|id| {
            boot.as_ref()
                .and_then(|b| b.plan.vms.get(id))
                .is_some_and(|v| !v.refused && v.needs_direct_map())
        })
        .collect()
}

/// Whether a device given to VM `id` may DMA into its RAM (behind the CPU's
/// back: its RAM cannot be tracked as untouched, [`super::guest_mem`]).
pub fn may_dma(id: usize) -> bool {
    BOOT.lock()
        .as_ref()
        .and_then(|b| b.plan.vms.get(id))
        .is_some_and(|v| v.needs_direct_map())
}

/// Whether VM `id` had a request refused: it is built, but must not start.
pub fn refused(id: usize) -> bool {
    BOOT.lock()
        .as_ref()
        .and_then(|b| b.plan.vms.get(id))
        .is_some_and(|v| v.refused)
}

/// Refuses VM `id` late (its mappings did not fit): it must not start.
fn refuse(id: usize, why: &str) {
    println!("vm{id}: passthrough refused: {why}");
    if let Some(v) = BOOT.lock().as_mut().and_then(|b| b.plan.vms.get_mut(id)) {
        v.refused = true;
        v.devices.clear();
        v.maps.clear();
    }
}

/// Maps VM `id`'s device pages into its stage 2 (and, for a 1:1 VM, its RAM
/// beyond the kernel's range). A device mapping that would cover the VM's RAM
/// or what the hypervisor emulates for it (its UART at `uart_ipa`, the GIC)
/// refuses the VM (see [`refused`]).
pub fn map_into(
    id: usize,
    s2: &mut Stage2Tables,
    ram: &GuestRam,
    info: &MachineInfo,
    uart_ipa: u64,
) {
    if ram.is_direct() && !ram.extra.is_empty() {
        let mut text = alloc::format!("vm{id}: RAM 1:1 at");
        for r in ram.ranges() {
            text.push_str(&alloc::format!(
                " {:#x}-{:#x}",
                r.start.0,
                r.start.0 + r.size - 1
            ));
        }
        println!("{text}");
    }
    for r in &ram.extra {
        if s2
            .map(Ipa(r.start.0), r.start, r.size, stage2::RAM)
            .is_err()
        {
            refuse(id, "its RAM could not be mapped 1:1");
            return;
        }
    }
    let maps = match BOOT.lock().as_ref().and_then(|b| b.plan.vms.get(id)) {
        Some(v) if !v.refused => v.maps.clone(),
        _ => return,
    };
    let mut clash: Vec<(Range<Ipa>, &str)> =
        ram.ranges().into_iter().map(|r| (r, "its RAM")).collect();
    clash.push((
        Range::new(Ipa(uart_ipa), crate::vuart::SIZE),
        "the emulated UART",
    ));
    if let Some(g) = &info.gic {
        clash.push((
            Range::new(Ipa(g.distributor.start.0), g.distributor.size),
            "the GIC",
        ));
        for r in g.redistributors.iter().chain(&g.cpu_interface) {
            clash.push((Range::new(Ipa(r.start.0), r.size), "the GIC"));
        }
    }
    if let Some(why) = pt::ipa_clash(&maps, &clash) {
        refuse(id, &why);
        return;
    }
    for m in &maps {
        if s2.map(m.ipa, m.pa, m.size, stage2::DEVICE).is_err() {
            refuse(
                id,
                &alloc::format!("the stage-2 mapping of {:#x} failed", m.ipa.0),
            );
            return;
        }
    }
}

/// VM `id`'s device tree with its devices (and its RAM ranges, when there are
/// several). Notes (stubbed providers) are printed.
pub fn guest_dtb(id: usize, base: Vec<u8>, ram: &GuestRam) -> Result<Vec<u8>, DtError> {
    let boot = BOOT.lock();
    let Some(b) = boot.as_ref() else {
        return Ok(base);
    };
    let empty = pt::VmDevices::default();
    let devices = match b.plan.vms.get(id) {
        Some(v) if !v.refused => v,
        _ => &empty,
    };
    let partial = b
        .partials
        .get(id)
        .copied()
        .flatten()
        .filter(|_| !devices.devices.is_empty());
    if devices.devices.is_empty() && ram.extra.is_empty() {
        return Ok(base);
    }
    let Some(tree) = b.tree.as_ref() else {
        return Ok(base);
    };
    let memory = if ram.extra.is_empty() {
        Vec::new()
    } else {
        ram.ranges()
    };
    let (dtb, notes) = pt::add_devices(
        &base,
        b.host,
        tree,
        &pt::Additions {
            devices,
            partial,
            memory: &memory,
        },
    )?;
    for n in notes {
        println!("vm{id}: device tree: {n}");
    }
    Ok(dtb)
}

/// The VMs were numbered as they started: VM `id` is the plan's VM `slots[id]`
/// (a VM refused after the plan was made shifts the ones after it). Boot only,
/// after every VM is built and before [`start`].
pub fn renumber(slots: &[usize]) {
    let mut boot = BOOT.lock();
    let Some(b) = boot.as_mut() else { return };
    let mut old: Vec<Option<pt::VmDevices>> = core::mem::take(&mut b.plan.vms)
        .into_iter()
        .map(Some)
        .collect();
    b.plan.vms = slots
        .iter()
        .map(|&s| old.get_mut(s).and_then(Option::take).unwrap_or_default())
        .collect();
    b.partials = slots
        .iter()
        .map(|&s| b.partials.get(s).copied().flatten())
        .collect();
}

/// After the VMs and their vGICs exist: links every assigned SPI, configures it
/// on the host GIC and starts forwarding.
pub fn start() {
    let Some(boot) = BOOT.lock().take() else {
        return;
    };
    let mut states = Vec::new();
    for (id, v) in boot.plan.vms.into_iter().enumerate() {
        let spis: Vec<Spi> = if v.refused {
            Vec::new()
        } else {
            v.spis().collect()
        };
        if let Some(vm) = vm::get(id) {
            let first_pcpu = vm.vcpus.first().map_or(0, |c| c.pcpu);
            vgic::with_model(vm, |g| {
                for s in &spis {
                    g.set_hw(s.intid, true);
                }
            });
            for s in &spis {
                gic::configure_spi(s.intid, s.level);
                gic::route_spi(s.intid, sched::mpidr_of(first_pcpu));
                gic::set_forwarded(s.intid);
                OWNER[s.intid as usize].store(id as u8 + 1, Ordering::Release);
            }
        }
        states.push(VmState {
            devices: if v.refused { Vec::new() } else { v.devices },
            applied: Mutex::new(alloc::vec![(false, None); spis.len()]),
            spis,
            forwarded: AtomicU64::new(0),
        });
    }
    STATE.call_once(|| states);
}

fn state(vm: &Vm) -> Option<&'static VmState> {
    STATE.get()?.get(vm.id)
}

/// A physical interrupt was acknowledged at EL2 (before its priority drop):
/// true if it is a forwarded SPI, now pending in its VM.
pub fn physical_irq(intid: u32) -> bool {
    let Some(owner) = OWNER.get(intid as usize) else {
        return false;
    };
    let owner = owner.load(Ordering::Acquire);
    if owner == 0 {
        return false;
    }
    let vm = vm::get(owner as usize - 1);
    match vm.filter(|vm| vm.is_running()) {
        Some(vm) => {
            if let Some(s) = state(vm) {
                s.forwarded.fetch_add(1, Ordering::Relaxed);
            }
            vgic::inject_hw(vm, intid);
            preempt_for(vm, intid);
        }
        None => {
            // Its VM is gone: silence the device's interrupt for good.
            gic::set_spi_enabled(intid, false);
            gic::deactivate_spi(intid);
        }
    }
    true
}

/// The interrupt's vCPU is placed on this CPU but another vCPU is running
/// here: end the slice now (the EL2 timer fires at once), so the scheduler
/// runs it without waiting for the slice to end. (Blocked or on another CPU,
/// the vGIC's kick already wakes it.)
fn preempt_for(vm: &Vm, intid: u32) {
    let Some(Some((_, Some(target)))) = vgic::with_model(vm, |g| g.hw_config(intid)) else {
        return;
    };
    let Some(v) = vm.vcpus.get(target) else {
        return;
    };
    let me = arch::cpu_index();
    let current = sched::current().map(|(cvm, cv)| (cvm.id, cv.index));
    if v.pcpu == me && current.is_some() && current != Some((vm.id, target)) {
        arch::timer::arm(1);
    }
}

/// The guest wrote its distributor: mirror its masks and targets on the
/// physical SPIs, and deactivate those it dropped without an EOI.
pub fn dist_written(vm: &Vm) {
    let Some(s) = state(vm).filter(|s| !s.spis.is_empty()) else {
        return;
    };
    let Some((configs, orphans)) = vgic::with_model(vm, |g| {
        let c: Vec<(bool, Option<usize>)> = s
            .spis
            .iter()
            .map(|spi| g.hw_config(spi.intid).unwrap_or((false, None)))
            .collect();
        (c, g.hw_orphans())
    }) else {
        return;
    };
    let mut applied = s.applied.lock();
    for ((spi, now), was) in s.spis.iter().zip(configs).zip(applied.iter_mut()) {
        if now == *was {
            continue;
        }
        if now.1 != was.1 {
            if let Some(v) = now.1.and_then(|t| vm.vcpus.get(t)) {
                gic::route_spi(spi.intid, sched::mpidr_of(v.pcpu));
            }
            // Moved while active on the old CPU: end it there now (see
            // `Vgic::hw_release`).
            if vgic::with_model(vm, |g| g.hw_release(spi.intid)) == Some(true) {
                gic::deactivate_spi(spi.intid);
            }
        }
        if now.0 != was.0 {
            gic::set_spi_enabled(spi.intid, now.0);
        }
        *was = now;
    }
    for o in orphans {
        gic::deactivate_spi(o);
    }
}

/// One exception of `class` (0 synchronous, 1 IRQ, 2 FIQ, 3 SError) taken
/// from a guest on this CPU.
pub fn count_exit(class: u64) {
    EXITS[arch::cpu_index() % sched::MAX_CPUS][class as usize & 3].fetch_add(1, Ordering::Relaxed);
}

/// EL2 exits on every CPU since boot, by class: (synchronous, IRQ, other).
pub fn exits_by_class() -> (u64, u64, u64) {
    let sum = |c: usize| {
        EXITS
            .iter()
            .map(|e| e[c].load(Ordering::Relaxed))
            .sum::<u64>()
    };
    // The trap fast path counts per vCPU (synchronous exits only).
    let fast: u64 = vm::all()
        .iter()
        .flat_map(|vm| vm.vcpus.iter())
        .map(|v| v.fast_exits.load(Ordering::Relaxed))
        .sum();
    (sum(0) + fast, sum(1), sum(2) + sum(3))
}

/// EL2 exits on every CPU since boot.
pub fn exits() -> u64 {
    let (s, i, o) = exits_by_class();
    s + i + o
}

/// VM `vm`'s devices (empty without any).
pub fn devices(vm: &Vm) -> &'static [Device] {
    state(vm).map_or(&[], |s| s.devices.as_slice())
}

/// Interrupts forwarded to `vm` so far.
pub fn forwarded(vm: &Vm) -> u64 {
    state(vm).map_or(0, |s| s.forwarded.load(Ordering::Relaxed))
}

/// `vm` stopped: its devices' interrupts are disabled (nobody would end them),
/// and what was forwarded is reported.
pub fn on_power_off(vm: &Vm) {
    let Some(s) = state(vm).filter(|s| !s.devices.is_empty()) else {
        return;
    };
    for spi in &s.spis {
        gic::set_spi_enabled(spi.intid, false);
    }
    let n = s.forwarded.load(Ordering::Relaxed);
    let (sync, irq, _) = exits_by_class();
    let exits = exits();
    let per = exits.checked_div(n).map_or(String::from("-"), |whole| {
        alloc::format!("{whole}.{:02}", exits % n * 100 / n)
    });
    println!(
        "vm{}: passthrough: {n} interrupts forwarded; {exits} EL2 exits on all CPUs since boot ({per} per interrupt; {irq} for interrupts, {sync} synchronous)",
        vm.id
    );
}
