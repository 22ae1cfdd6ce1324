//! The virtual GIC's runtime glue: the portable model ([`crate::vgic`]) wired to
//! stage-2 data aborts, the hardware virtual CPU interface, the EL1 timers, the
//! emulated UART's interrupt and the scheduler.
//!
//! * **Distributor / redistributors**: guest accesses to the host GIC's GICD (and,
//!   GICv3, GICR) addresses fault at stage 2 and come here from `trap::data_abort`.
//! * **CPU interface**: the hardware's virtual one. GICv3 guests use the `ICC_*`
//!   system registers, which with ICH_HCR_EL2.En and HCR_EL2.IMO/FMO reach the
//!   virtual interface (`ICV_*`); ICC_SRE_EL2.Enable lets them keep SRE set. GICv2
//!   guests get the host's GICV frame mapped by stage 2 at their GICC address.
//! * **List registers**: folded into the model on every exit ([`on_exit`]) and
//!   rebuilt on every entry ([`on_entry`]), so the model is the truth whenever the
//!   hypervisor runs and nothing but ICH_VMCR and the active-priority registers needs
//!   switching with a vCPU ([`save`]/[`restore`]).
//! * **EL1 timers**: the guest's virtual (CNTV) and physical (CNTP) timer state is
//!   switched with the vCPU (cpreg table): while a vCPU runs, the hardware timers
//!   are its own (CNTHCTL_EL2.EL1PCEN lets it program CNTP; the hypervisor keeps the
//!   EL2 timer, CNTHP, for its slices; CNTV counts the VM's virtual count, the
//!   machine's less the VM's offset, [`crate::vcounter`]). Each timer's PPI (the host DT's, which the
//!   guest's DT repeats: 27 and 30 on QEMU) is taken at EL2; the line the model sees
//!   is resampled from CNTx_CTL_EL0.ISTATUS on every entry. A timer's physical PPI
//!   stays disabled on this CPU while the loaded vCPU's interrupt for it is pending
//!   or active (so it cannot storm), and the list register asks for an EOI
//!   maintenance interrupt, so the guest's deactivation brings us back to re-enable
//!   it.
//! * **WFI**: a vCPU with nothing to take blocks ([`wfi`]); the scheduler runs it
//!   again when [`runnable`] sees an interrupt pending for it or its saved timer
//!   expired. An idle CPU waits in [`idle_wait`]: WFI until the earliest such
//!   timer, a kick SGI from whoever made an interrupt pending, or 1 ms.

use super::vcpu::{RunState, Vcpu};
use super::vm::{self, Vm};
use super::{control, gic, sched};
use crate::addr::{Ipa, PhysAddr};
use crate::arch::{self, trap_frame::TrapFrame};
use crate::dt::{GicVersion, MachineInfo};
use crate::esr::Esr;
use crate::vcounter;
use crate::vgic::{Kicks, Lr, Version, Vgic, GICD_SIZE_V2, GICD_SIZE_V3, MAX_LRS};
use alloc::vec::Vec;
use core::arch::asm;
use core::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, AtomicUsize, Ordering};
use spin::{Mutex, Once};

/// SPIs every guest distributor describes (INTIDs 32-159): more than QEMU `virt`'s
/// devices use, and the GICv2 LR's 10-bit INTID is never a limit.
pub(super) const GUEST_SPIS: usize = 128;

struct Config {
    version: Version,
    /// Guest IPA (= host PA) of the distributor and (v3) the redistributor region.
    gicd: u64,
    gicr: u64,
    gicr_size: u64,
    /// GICv2: the virtual interface control frame (GICH), identity-mapped.
    gich: usize,
    /// GICv2: where the guest's GICC is, and the host GICV frame behind it.
    gicc_ipa: u64,
    gicv_pa: u64,
    gicv_size: u64,
    gicc_size: u64,
    /// The EL1 timers' PPIs (INTIDs), in [`TIMERS`] order: virtual, physical; then
    /// the PMU's overflow PPI (0: none). Level lines resampled on every entry.
    timers: [u32; 3],
    /// The bits of [`TIMER_PPI_ON`] with a PPI: both timers, and the PMU's if any.
    all_lines: u8,
    maintenance: Option<u32>,
    uart_spi: Option<u32>,
    nr_lrs: usize,
    /// GICv3: active-priority registers per group (1, 2 or 4).
    nr_apr: usize,
    /// GICv3: 8 minus the bits of group priority (ICH_VTR_EL2.PREbits + 1).
    pri_shift: u32,
    /// GICv3 whose virtual IRQ/FIQ outputs reach no CPU (the board's
    /// `virq_by_hcr`): [`on_entry`] raises HCR_EL2.VI/VF itself.
    virq_by_hcr: bool,
}

struct VmGic {
    gic: Mutex<Vgic>,
    /// vCPU blocked in WFI (indexed by vCPU).
    blocked: Vec<AtomicBool>,
    /// Bumped under the lock by every change made outside a vCPU's own exit (MMIO,
    /// SGIs, device lines), so an entry can tell that nothing changed.
    epoch: AtomicU64,
    /// Per vCPU: the epoch of its last flush if that flush left the list registers
    /// empty and its timer (and PMU) lines low in the model (nothing to fold on the
    /// next exit, nothing new to flush while the epoch holds), else `BUSY`.
    flushed: Vec<AtomicU64>,
}

const BUSY: u64 = u64::MAX;

static CFG: Once<Config> = Once::new();
static VGICS: Once<Vec<VmGic>> = Once::new();
/// Whether each EL1 timer's (and the PMU's) physical PPI is enabled, per physical
/// CPU (bit n: `Config::timers[n]`).
static TIMER_PPI_ON: [AtomicU8; sched::MAX_CPUS] = [const { AtomicU8::new(0) }; sched::MAX_CPUS];

fn all_lines(c: &Config) -> u8 {
    c.all_lines
}

/// The vCPU each physical CPU last entered (`vm << 16 | vcpu`, plus one; 0: none
/// yet): the entry fast path needs a CPU where some vCPU has entered (`on_entry`'s
/// slow path has set ICH_HCR_EL2.En, which `init_cpu` leaves clear).
static LAST_ENTERED: [AtomicUsize; sched::MAX_CPUS] =
    [const { AtomicUsize::new(0) }; sched::MAX_CPUS];

fn cfg() -> Option<&'static Config> {
    CFG.get()
}

#[inline(always)]
fn vgic_of(vm: &Vm) -> Option<&'static VmGic> {
    VGICS.get()?.get(vm.id)
}

// ---------------------------------------------------------------------------------
// Hardware access: GICv3 ICH_* system registers, GICv2 GICH MMIO.

macro_rules! mrs {
    ($r:literal) => {{
        let v: u64;
        // SAFETY: reading a GIC virtualisation register at EL2 has no side effects.
        unsafe { asm!(concat!("mrs {}, ", $r), out(reg) v, options(nomem, nostack)) };
        v
    }};
}

macro_rules! msr {
    ($r:literal, $v:expr) => {{
        let v: u64 = $v;
        // SAFETY: the virtual CPU interface belongs to the loaded vCPU (or none);
        // writing it only changes what that guest sees.
        unsafe { asm!(concat!("msr ", $r, ", {}"), in(reg) v, options(nomem, nostack)) };
    }};
}

macro_rules! lr_switch {
    ($n:expr, $op:ident $(, $v:expr)?) => {
        match $n {
            0 => $op!("ich_lr0_el2" $(, $v)?),
            1 => $op!("ich_lr1_el2" $(, $v)?),
            2 => $op!("ich_lr2_el2" $(, $v)?),
            3 => $op!("ich_lr3_el2" $(, $v)?),
            4 => $op!("ich_lr4_el2" $(, $v)?),
            5 => $op!("ich_lr5_el2" $(, $v)?),
            6 => $op!("ich_lr6_el2" $(, $v)?),
            7 => $op!("ich_lr7_el2" $(, $v)?),
            8 => $op!("ich_lr8_el2" $(, $v)?),
            9 => $op!("ich_lr9_el2" $(, $v)?),
            10 => $op!("ich_lr10_el2" $(, $v)?),
            11 => $op!("ich_lr11_el2" $(, $v)?),
            12 => $op!("ich_lr12_el2" $(, $v)?),
            13 => $op!("ich_lr13_el2" $(, $v)?),
            14 => $op!("ich_lr14_el2" $(, $v)?),
            _ => $op!("ich_lr15_el2" $(, $v)?),
        }
    };
}

fn v3_read_lr(n: usize) -> u64 {
    lr_switch!(n, mrs)
}

fn v3_write_lr(n: usize, v: u64) {
    lr_switch!(n, msr, v)
}

/// The EL1 timers a guest owns: virtual, physical.
#[derive(Clone, Copy)]
enum Timer {
    Virt,
    Phys,
}
const TIMERS: [Timer; 2] = [Timer::Virt, Timer::Phys];

impl Timer {
    /// The live CNTx_CTL_EL0 (the loaded vCPU's).
    fn ctl(self) -> u64 {
        match self {
            Timer::Virt => mrs!("cntv_ctl_el0"),
            Timer::Phys => mrs!("cntp_ctl_el0"),
        }
    }
    /// The saved control and compare value of a vCPU not loaded: straight from
    /// their context slots (the scheduler's wake path asks for them on every pick,
    /// so no table look-up per register).
    fn saved(self, s: &crate::cpreg::SysRegFile) -> (u64, u64) {
        let (ctl, cval) = match self {
            Timer::Virt => CNTV_SLOTS,
            Timer::Phys => CNTP_SLOTS,
        };
        (s.slots()[ctl], s.slots()[cval])
    }
    /// How far the count this timer compares with is behind the machine's counter:
    /// the VM's offset for the virtual timer, none for the physical one.
    fn offset(self, vm: &Vm) -> u64 {
        match self {
            Timer::Virt => vm.cntvoff.load(Ordering::Relaxed),
            Timer::Phys => 0,
        }
    }
}

/// A timer register's slot in a vCPU context (CTL, CVAL).
const fn timer_slot(reg: crate::cpreg::Reg) -> usize {
    match reg.slot() {
        Some(s) => s,
        None => panic!("EL1 timer registers have state"),
    }
}
const CNTV_SLOTS: (usize, usize) = (
    timer_slot(crate::cpreg::Reg::CNTV_CTL_EL0),
    timer_slot(crate::cpreg::Reg::CNTV_CVAL_EL0),
);
const CNTP_SLOTS: (usize, usize) = (
    timer_slot(crate::cpreg::Reg::CNTP_CTL_EL0),
    timer_slot(crate::cpreg::Reg::CNTP_CVAL_EL0),
);

/// A timer's output line from its CTL: ENABLE, not IMASK, ISTATUS.
fn timer_line(ctl: u64) -> bool {
    ctl & 0b111 == 0b101
}

/// GICH register offsets (IHI 0048B 5.3).
mod gich {
    pub const HCR: usize = 0x000;
    pub const VTR: usize = 0x004;
    pub const VMCR: usize = 0x008;
    pub const APR: usize = 0x0f0;
    pub const LR0: usize = 0x100;
}

fn gich_read(off: usize) -> u32 {
    let base = cfg().map_or(0, |c| c.gich);
    // SAFETY: GICH is the banked virtual interface control frame of this CPU from
    // the DTB, identity-mapped as device memory; `off` is a register within it.
    unsafe { core::ptr::read_volatile((base + off) as *const u32) }
}

fn gich_write(off: usize, v: u32) {
    let base = cfg().map_or(0, |c| c.gich);
    // SAFETY: as in `gich_read`; the frame only controls this CPU's virtual interface.
    unsafe { core::ptr::write_volatile((base + off) as *mut u32, v) }
}

/// ICH_HCR_EL2 / GICH_HCR: En, plus UIE (underflow maintenance) when asked.
fn write_hcr(v3: bool, underflow: bool) {
    write_hcr_np(v3, underflow, false);
}

/// [`write_hcr`], plus (GICv3) NPIE: a maintenance interrupt once no list
/// register is pending (the guest acknowledged what HCR_EL2.VI signalled).
fn write_hcr_np(v3: bool, underflow: bool, no_pending: bool) {
    let hcr = 1 | ((underflow as u64) << 1) | ((no_pending as u64) << 3);
    if v3 {
        msr!("ich_hcr_el2", hcr);
    } else {
        gich_write(gich::HCR, hcr as u32);
    }
}

// ---------------------------------------------------------------------------------
// Boot.

/// Reads the host GIC's virtualisation facts from the DTB and this CPU. Boot CPU,
/// after the host GIC is up, before [`create`].
pub fn init(info: &MachineInfo) {
    let Some(g) = info.gic.as_ref() else { return };
    let version = match g.version {
        GicVersion::V2 => Version::V2,
        _ => Version::V3,
    };
    let v3 = version == Version::V3;
    let (nr_lrs, nr_apr, pri_shift) = if v3 {
        let vtr = mrs!("ich_vtr_el2");
        let pre = ((vtr >> 26) & 7) + 1;
        (
            (vtr & 0x1f) as usize + 1,
            1usize << (pre.saturating_sub(5).min(2)),
            8u32.saturating_sub(pre as u32),
        )
    } else {
        let gich = g.hyp_interface.map_or(0, |r| r.start.0 as usize);
        if gich == 0 {
            crate::println!("hv: vgic: no GICH frame in the device tree: guests get no GIC");
            return;
        }
        // SAFETY: GICH_VTR of this CPU's virtual interface control frame (DTB,
        // identity-mapped device memory).
        let vtr = unsafe { core::ptr::read_volatile((gich + gich::VTR) as *const u32) };
        ((vtr & 0x3f) as usize + 1, 1, 3)
    };
    // The emulated PL011's SPI (`board::emulated_uart`: the guest console UART's).
    let uart_spi = super::boot::emulated_uart_intid();
    let gicr = g.redistributors.first();
    let pmu_ppi = info
        .pmu_irq
        .filter(|i| (16..32).contains(&i.intid))
        .map_or(0, |i| i.intid);
    CFG.call_once(|| Config {
        version,
        gicd: g.distributor.start.0,
        gicr: gicr.map_or(0, |r| r.start.0),
        gicr_size: gicr.map_or(0, |r| r.size),
        gich: g.hyp_interface.map_or(0, |r| r.start.0 as usize),
        gicc_ipa: g.cpu_interface.map_or(0, |r| r.start.0),
        gicv_pa: g.vcpu_interface.map_or(0, |r| r.start.0),
        gicv_size: g.vcpu_interface.map_or(0, |r| r.size),
        gicc_size: g.cpu_interface.map_or(0, |r| r.size),
        timers: [
            info.timer.as_ref().map_or(27, |t| t.virt.intid),
            info.timer.as_ref().map_or(30, |t| t.phys.intid),
            pmu_ppi,
        ],
        all_lines: 0b011 | ((pmu_ppi != 0) as u8) << 2,
        maintenance: g.maintenance_irq.map(|i| i.intid),
        uart_spi,
        nr_lrs: nr_lrs.min(MAX_LRS),
        nr_apr,
        pri_shift,
        virq_by_hcr: v3 && super::boot::virq_by_hcr(),
    });
    let mut irqs = heapless::String::<64>::new();
    let _ = match cfg().and_then(|c| c.maintenance) {
        Some(i) => core::fmt::write(&mut irqs, format_args!("maintenance INTID {i}")),
        None => core::fmt::write(&mut irqs, format_args!("no maintenance interrupt")),
    };
    let _ = match uart_spi {
        Some(i) => core::fmt::write(&mut irqs, format_args!(", console INTID {i}")),
        None => core::fmt::write(&mut irqs, format_args!(", console without interrupt")),
    };
    if cfg().is_some_and(|c| c.virq_by_hcr) {
        crate::println!(
            "hv: vgic: the GIC raises no virtual interrupts on this board: HCR_EL2.VI/VF do"
        );
    }
    crate::println!(
        "hv: vgic: {} guests, {} list registers, timer INTIDs {} (virtual) {} (physical), {}",
        match version {
            Version::V2 => "GICv2",
            Version::V3 => "GICv3",
        },
        nr_lrs.min(MAX_LRS),
        cfg().map_or(0, |c| c.timers[0]),
        cfg().map_or(0, |c| c.timers[1]),
        irqs
    );
}

/// Per-CPU setup, on every CPU after its host GIC interface: the PPIs the vGIC takes
/// at EL2 and the guest's system-register interface.
pub fn init_cpu(cpu: usize) {
    let Some(c) = cfg() else { return };
    if let Some(m) = c.maintenance {
        gic::enable_private(m, cpu);
    }
    for intid in c.timers.into_iter().filter(|&i| i != 0) {
        gic::enable_private(intid, cpu);
    }
    TIMER_PPI_ON[cpu].store(all_lines(c), Ordering::Relaxed);
    if c.version == Version::V3 {
        // The EL1 view: system registers (SRE), as every GICv3 guest expects.
        msr!("icc_sre_el1", 0x7);
        msr!("ich_hcr_el2", 0);
    } else {
        gich_write(gich::HCR, 0);
    }
}

/// Creates each VM's virtual GIC; GICv2 VMs get the GICV frame mapped at their GICC
/// address. Boot CPU, after the VMs are installed, before any guest runs.
pub fn create() {
    let Some(c) = cfg() else { return };
    let vms = vm::all();
    let gics = vms
        .iter()
        .map(|vm| {
            let mpidrs: Vec<u64> = vm.vcpus.iter().map(|v| v.mpidr).collect();
            if c.version == Version::V2 {
                if vm.vcpus.len() > crate::vgic::V2_MAX_CPUS {
                    crate::println!("vm{}: GICv2 serves only 8 vCPUs", vm.id);
                }
                // The smaller of the two frames, at least GICC_DIR's page.
                let size = c.gicv_size.min(c.gicc_size).max(0x2000);
                let mapped = vm.stage2.lock().0.map(
                    Ipa(c.gicc_ipa),
                    PhysAddr(c.gicv_pa),
                    size,
                    crate::stage2::DEVICE,
                );
                if mapped.is_err() || c.gicv_pa == 0 {
                    crate::println!("vm{}: cannot map the GICv2 virtual CPU interface", vm.id);
                }
            }
            VmGic {
                gic: Mutex::new(Vgic::new(c.version, &mpidrs, GUEST_SPIS)),
                blocked: vm.vcpus.iter().map(|_| AtomicBool::new(false)).collect(),
                epoch: AtomicU64::new(0),
                flushed: vm.vcpus.iter().map(|_| AtomicU64::new(BUSY)).collect(),
            }
        })
        .collect();
    VGICS.call_once(|| gics);
    // SAFETY: drops stale stage-2 walks of every VMID before any guest runs.
    unsafe {
        asm!(
            "dsb ishst",
            "tlbi alle1is",
            "dsb ish",
            "isb",
            options(nostack)
        )
    };
}

// ---------------------------------------------------------------------------------
// Exits and entries.

/// Right after a guest exit: fold the list registers into the model.
pub fn on_exit() {
    let (Some(c), Some((vm, v))) = (cfg(), sched::current()) else {
        return;
    };
    let Some(g) = vgic_of(vm) else { return };
    if g.flushed[v.index].load(Ordering::Relaxed) != BUSY {
        // Fast path: the list registers were left empty and UIE clear.
        return;
    }
    let mut gic = g.gic.lock();
    let v3 = c.version == Version::V3;
    // Each used list register is read back into the model and emptied.
    gic.fold_with(v.index, |n| {
        if v3 {
            let lr = Lr::from_v3(v3_read_lr(n));
            v3_write_lr(n, 0);
            lr
        } else {
            let lr = Lr::from_v2(gich_read(gich::LR0 + 4 * n));
            gich_write(gich::LR0 + 4 * n, 0);
            lr
        }
    });
    // Emptied list registers raise no maintenance condition; clear UIE too.
    write_hcr(v3, false);
}

/// Right before entering the guest: resample the EL1 timers, fill the list
/// registers, and keep a timer's physical PPI masked while its virtual one is in
/// flight.
pub fn on_entry() {
    let (Some(c), Some((vm, v))) = (cfg(), sched::current()) else {
        return;
    };
    let Some(g) = vgic_of(vm) else { return };
    // Bit n: the level of `Config::timers[n]` (the PMU's only for a VM with one).
    let lines = timer_line(Timer::Virt.ctl()) as u8
        | (timer_line(Timer::Phys.ctl()) as u8) << 1
        | ((vm.pmu != 0 && arch::pmu::overflow_line()) as u8) << 2;
    let all = all_lines(c);
    let v3 = c.version == Version::V3;
    let me = arch::cpu_index();
    let who = (vm.id << 16 | v.index) + 1;
    let entered_here = LAST_ENTERED[me].swap(who, Ordering::Relaxed) != 0;
    // Fast path: its last flush was empty, nothing changed since, and its timers
    // are quiet with their physical PPIs armed (so a firing timer still exits): the
    // list registers stay empty. It holds for a vCPU just switched in too: every
    // exit's `on_exit` leaves the list registers empty and UIE clear whichever vCPU
    // ran, the model is per VM (a change from outside bumps its epoch), and the
    // PPIs are per CPU (`TIMER_PPI_ON`, checked here).
    if entered_here
        && lines == 0
        && TIMER_PPI_ON[me].load(Ordering::Relaxed) == all
        && g.flushed[v.index].load(Ordering::Relaxed) == g.epoch.load(Ordering::Acquire)
    {
        return;
    }
    // What went into the list registers, for HCR_EL2.VI/VF (`virq_by_hcr` only).
    let mut lrs = [Lr::INVALID; MAX_LRS];
    let written: &mut [Lr] = if c.virq_by_hcr { &mut lrs } else { &mut [] };
    let (flush, busy) = {
        let mut gic = g.gic.lock();
        // The PMU's line only for a VM with a PMU (no other VM can raise it).
        let sources = &c.timers[..if vm.pmu != 0 { 3 } else { 2 }];
        for (t, intid) in sources.iter().enumerate() {
            // While the guest handles it (active), a level line still high is not
            // made pending again: the guest may lower it (disable the timer, clear
            // the overflow) before its EOI, which the list register could not see,
            // and it would take the interrupt twice. Its deactivation exits (EOI
            // maintenance) and the next entry samples it again. A line that did not
            // change is left alone (driving it marks the interrupt for the flush).
            let Some((now, active)) = gic
                .irq(v.index, *intid)
                .filter(|_| *intid != 0)
                .map(|i| (i.line_level, i.active))
            else {
                continue;
            };
            let level = lines & (1 << t) != 0 && !active;
            if level != now {
                gic.set_line(v.index, *intid, level);
            }
        }
        // Straight into the list registers (the ones left unused are empty: the
        // last exit emptied them).
        let f = gic.flush_with(v.index, c.nr_lrs, |n, lr| {
            if let Some(w) = written.get_mut(n) {
                *w = lr;
            }
            if v3 {
                v3_write_lr(n, lr.to_v3());
            } else {
                gich_write(gich::LR0 + 4 * n, lr.to_v2());
            }
        });
        let mut busy = 0u8;
        for (t, intid) in sources.iter().enumerate() {
            if *intid != 0 {
                busy |= (gic.is_pending_or_active(v.index, *intid) as u8) << t;
            }
        }
        // The fast path also needs the model's timer lines low: one left high
        // (its interrupt not deliverable) is resampled on the next entry, as it
        // was when a busy line's masked PPI alone kept that entry slow.
        let empty = f.count == 0 && !f.overflow && busy == 0;
        let epoch = g.epoch.load(Ordering::Relaxed);
        g.flushed[v.index].store(if empty { epoch } else { BUSY }, Ordering::Relaxed);
        (f, busy)
    };
    if c.virq_by_hcr {
        drive_virtual_lines(c, &lrs[..flush.count], flush.overflow);
    } else {
        write_hcr(v3, flush.overflow);
    }
    let on = TIMER_PPI_ON[me].load(Ordering::Relaxed);
    let want = all & !busy;
    if on != want {
        for (t, intid) in c.timers.iter().enumerate() {
            if (on ^ want) & (1 << t) != 0 {
                gic::set_private_enabled(*intid, me, want & (1 << t) != 0);
            }
        }
        TIMER_PPI_ON[me].store(want, Ordering::Relaxed);
    }
}

/// HCR_EL2.VI and VF (bits 7 and 6).
const HCR_VI: u64 = 1 << 7;
const HCR_VF: u64 = 1 << 6;

/// For a GICv3 whose virtual IRQ/FIQ outputs reach no CPU (QEMU's `imx8mp-evk`
/// wires only the physical ones): raise HCR_EL2.VI/VF when the virtual CPU
/// interface would signal one of the list registers `lrs` just written, and ask
/// for a maintenance interrupt (NPIE) once none is pending, so the exit after the
/// guest's acknowledge drops the line again. Pending entries that cannot be
/// signalled yet (priority mask, running priority, group disabled) are looked at
/// again on the next entry: the guest's WFI and its timer both exit.
fn drive_virtual_lines(c: &Config, lrs: &[Lr], overflow: bool) {
    let vmcr = mrs!("ich_vmcr_el2");
    let mut active = (mrs!("ich_ap0r0_el2") | mrs!("ich_ap1r0_el2")) as u32 as u128;
    if c.nr_apr > 1 {
        active |= ((mrs!("ich_ap0r1_el2") | mrs!("ich_ap1r1_el2")) as u32 as u128) << 32;
    }
    if c.nr_apr > 2 {
        active |= ((mrs!("ich_ap0r2_el2") | mrs!("ich_ap1r2_el2")) as u32 as u128) << 64;
        active |= ((mrs!("ich_ap0r3_el2") | mrs!("ich_ap1r3_el2")) as u32 as u128) << 96;
    }
    let lines = crate::vgic::virt_lines(lrs, vmcr, active, c.pri_shift);
    write_hcr_np(true, overflow, lines.irq || lines.fiq);
    let hcr = mrs!("hcr_el2");
    let want = (hcr & !(HCR_VI | HCR_VF))
        | if lines.irq { HCR_VI } else { 0 }
        | if lines.fiq { HCR_VF } else { 0 };
    if want != hcr {
        // SAFETY: only the loaded vCPU's virtual IRQ/FIQ lines change (the rest of
        // HCR_EL2 is written back as read); the ERET into the guest synchronises it.
        unsafe { asm!("msr hcr_el2, {}", in(reg) want, options(nomem, nostack)) };
    }
}

/// A physical interrupt the vGIC owns was acknowledged at EL2 (before its EOI).
/// An EL1 timer: keep it quiet until `on_entry` has injected it. The maintenance
/// interrupt: nothing (the exit itself was the point).
pub fn physical_irq(intid: u32) {
    // Passthrough: a forwarded SPI goes to its VM as a hardware-linked interrupt.
    if super::passthrough::physical_irq(intid) {
        return;
    }
    let Some(c) = cfg() else { return };
    if let Some(t) = c.timers.iter().position(|&i| i == intid && i != 0) {
        let me = arch::cpu_index();
        let bit = 1u8 << t;
        if TIMER_PPI_ON[me].fetch_and(!bit, Ordering::Relaxed) & bit != 0 {
            gic::set_private_enabled(intid, me, false);
        }
    }
}

/// Saves the vCPU's virtual CPU interface (not the list registers: see `on_exit`)
/// when it leaves its CPU.
pub fn save(vm: &Vm, v: &Vcpu) {
    let (Some(c), Some(g)) = (cfg(), vgic_of(vm)) else {
        return;
    };
    let mut gic = g.gic.lock();
    let Some(s) = gic.iface_mut(v.index) else {
        return;
    };
    if c.version == Version::V3 {
        s.vmcr = mrs!("ich_vmcr_el2");
        s.ap0r[0] = mrs!("ich_ap0r0_el2") as u32;
        s.ap1r[0] = mrs!("ich_ap1r0_el2") as u32;
        if c.nr_apr > 1 {
            s.ap0r[1] = mrs!("ich_ap0r1_el2") as u32;
            s.ap1r[1] = mrs!("ich_ap1r1_el2") as u32;
        }
        if c.nr_apr > 2 {
            s.ap0r[2] = mrs!("ich_ap0r2_el2") as u32;
            s.ap1r[2] = mrs!("ich_ap1r2_el2") as u32;
            s.ap0r[3] = mrs!("ich_ap0r3_el2") as u32;
            s.ap1r[3] = mrs!("ich_ap1r3_el2") as u32;
        }
    } else {
        s.vmcr = gich_read(gich::VMCR) as u64;
        s.ap1r[0] = gich_read(gich::APR);
    }
}

/// Restores what [`save`] saved, when the vCPU is loaded.
pub fn restore(vm: &Vm, v: &Vcpu) {
    let (Some(c), Some(g)) = (cfg(), vgic_of(vm)) else {
        return;
    };
    let mut gic = g.gic.lock();
    let Some(s) = gic.iface_mut(v.index).copied() else {
        return;
    };
    if c.version == Version::V3 {
        msr!("ich_vmcr_el2", s.vmcr);
        msr!("ich_ap0r0_el2", s.ap0r[0] as u64);
        msr!("ich_ap1r0_el2", s.ap1r[0] as u64);
        if c.nr_apr > 1 {
            msr!("ich_ap0r1_el2", s.ap0r[1] as u64);
            msr!("ich_ap1r1_el2", s.ap1r[1] as u64);
        }
        if c.nr_apr > 2 {
            msr!("ich_ap0r2_el2", s.ap0r[2] as u64);
            msr!("ich_ap1r2_el2", s.ap1r[2] as u64);
            msr!("ich_ap0r3_el2", s.ap0r[3] as u64);
            msr!("ich_ap1r3_el2", s.ap1r[3] as u64);
        }
    } else {
        gich_write(gich::VMCR, s.vmcr as u32);
        gich_write(gich::APR, s.ap1r[0]);
    }
}

// ---------------------------------------------------------------------------------
// Guest accesses.

/// A stage-2 data abort: emulated here if it hits the guest's GICD or GICR. False if
/// the address is not the vGIC's.
pub fn mmio(vm: &Vm, vcpu: &Vcpu, frame: &mut TrapFrame, esr: Esr, ipa: u64) -> bool {
    let (Some(c), Some(g)) = (cfg(), vgic_of(vm)) else {
        return false;
    };
    let dsize = if c.version == Version::V3 {
        GICD_SIZE_V3
    } else {
        GICD_SIZE_V2
    };
    let in_gicd = ipa >= c.gicd && ipa < c.gicd + dsize;
    let in_gicr = c.version == Version::V3 && ipa >= c.gicr && ipa < c.gicr + c.gicr_size;
    if !in_gicd && !in_gicr {
        return false;
    }
    let da = esr.data_abort();
    if !da.isv() {
        // Not a single load or store (LDP, writeback): cannot be emulated.
        return false;
    }
    let size = da.access_size() as u8;
    let rt = da.srt();
    if da.is_write() {
        let mut value = if rt == 31 { 0 } else { frame.x[rt] };
        if size < 8 {
            value &= (1u64 << (8 * size as u32)) - 1;
        }
        let kicks = {
            let mut gic = g.gic.lock();
            g.epoch.fetch_add(1, Ordering::Release);
            if in_gicd {
                gic.dist_write(vcpu.index, ipa - c.gicd, size, value)
            } else {
                gic.redist_write(ipa - c.gicr, size, value)
            }
        };
        kick(vm, kicks);
        if in_gicd {
            // Passthrough: the physical SPIs follow the guest's masks and targets.
            super::passthrough::dist_written(vm);
        }
    } else {
        let value = {
            let gic = g.gic.lock();
            if in_gicd {
                gic.dist_read(vcpu.index, ipa - c.gicd, size)
            } else {
                gic.redist_read(ipa - c.gicr, size)
            }
        };
        if rt != 31 {
            frame.x[rt] = value;
        }
    }
    frame.elr += esr.instruction_len();
    true
}

/// A GICv3 SGI generation register written by the guest (ICC_SGI1R_EL1 and
/// ICC_ASGI1R_EL1: `group1`; ICC_SGI0R_EL1: not). False without a GICv3 vGIC.
pub fn sgi(vm: &Vm, vcpu: &Vcpu, value: u64, group1: bool) -> bool {
    let (Some(c), Some(g)) = (cfg(), vgic_of(vm)) else {
        return false;
    };
    if c.version != Version::V3 {
        return false;
    }
    let kicks = {
        let mut gic = g.gic.lock();
        g.epoch.fetch_add(1, Ordering::Release);
        gic.sgi_v3(vcpu.index, value, group1)
    };
    kick(vm, kicks);
    true
}

/// The emulated UART's interrupt line may have changed (after a guest access or
/// console input).
pub fn uart_changed(vm: &Vm) {
    let (Some(c), Some(g)) = (cfg(), vgic_of(vm)) else {
        return;
    };
    let Some(spi) = c.uart_spi else { return };
    let level = vm.uart.lock().irq_pending();
    let kicks = {
        let mut gic = g.gic.lock();
        g.epoch.fetch_add(1, Ordering::Release);
        gic.set_line(0, spi, level)
    };
    kick(vm, kicks);
}

/// Passthrough: the physical SPI `intid` of a device assigned to `vm` was taken
/// (and left active): it becomes pending for the guest, hardware-linked.
pub fn inject_hw(vm: &Vm, intid: u32) {
    let Some(g) = vgic_of(vm) else { return };
    let kicks = {
        let mut gic = g.gic.lock();
        g.epoch.fetch_add(1, Ordering::Release);
        gic.inject_hw(intid)
    };
    kick(vm, kicks);
}

/// Runs `f` on `vm`'s vGIC model, under its lock (passthrough: linking SPIs,
/// reading the guest's masks and targets). `None` without a vGIC.
pub fn with_model<R>(vm: &Vm, f: impl FnOnce(&mut Vgic) -> R) -> Option<R> {
    let g = vgic_of(vm)?;
    let r = f(&mut g.gic.lock());
    g.epoch.fetch_add(1, Ordering::Release);
    Some(r)
}

/// Makes the vCPUs in `kicks` notice new interrupts: one running on another CPU
/// exits (the kick SGI); one that is not running (blocked in WFI, or waiting for
/// its turn) is woken (`sched::wake`: its CPU picks it next, kicked if it is
/// another CPU); an event too, for a CPU still waiting in `wfe`. The current vCPU
/// needs nothing: `on_entry` runs before it resumes.
fn kick(vm: &Vm, kicks: Kicks) {
    if kicks.is_empty() {
        return;
    }
    let me = arch::cpu_index();
    let mut woke = false;
    for t in kicks.iter() {
        let Some(v) = vm.vcpus.get(t) else { continue };
        match v.state() {
            RunState::Running => {
                if v.pcpu != me {
                    gic::send_sgi(control::KICK_SGI, sched::mpidr_of(v.pcpu));
                }
            }
            RunState::Runnable => {
                sched::wake(v);
                woke = true;
            }
            RunState::Off => {}
        }
    }
    if woke {
        arch::send_event();
    }
}

// ---------------------------------------------------------------------------------
// Scheduling.

/// The guest executed WFI: block it unless an interrupt is already there for it or
/// one of its timers has fired (the hardware is the vCPU's: it is loaded).
pub fn wfi(vm: &Vm, v: &Vcpu) {
    let Some(g) = vgic_of(vm) else {
        return;
    };
    if TIMERS.iter().any(|t| timer_line(t.ctl())) || (vm.pmu != 0 && arch::pmu::overflow_line()) {
        return;
    }
    let gic = g.gic.lock();
    if !gic.has_pending(v.index) {
        set_blocked(g, v, true);
    }
}

/// vCPUs blocked in WFI per physical CPU, so the scheduler skips looking for their
/// deadlines when there are none.
static BLOCKED_HERE: [AtomicUsize; sched::MAX_CPUS] =
    [const { AtomicUsize::new(0) }; sched::MAX_CPUS];

/// Blocks or unblocks `v`, keeping its CPU's count.
fn set_blocked(g: &VmGic, v: &Vcpu, on: bool) {
    let Some(flag) = g.blocked.get(v.index) else {
        return;
    };
    if flag.swap(on, Ordering::AcqRel) != on {
        if let Some(n) = BLOCKED_HERE.get(v.pcpu) {
            if on {
                n.fetch_add(1, Ordering::AcqRel);
            } else {
                n.fetch_sub(1, Ordering::AcqRel);
            }
        }
    }
}

/// The earliest saved EL1 timer deadline (machine counter value; one that has
/// passed may lie in the past) among the vCPUs of CPU `me` that are blocked in WFI
/// and could run (not paused): when one of them must be woken. The scheduler ends a slice there, and
/// an idle CPU sleeps until then. A virtual timer's compare value is on its VM's
/// count, which its offset puts behind the machine's ([`crate::vcounter`]).
pub fn blocked_deadline(me: usize) -> Option<u64> {
    if BLOCKED_HERE
        .get(me)
        .is_none_or(|n| n.load(Ordering::Acquire) == 0)
    {
        return None;
    }
    let mut deadline = None::<u64>;
    // A stopped VM's vCPUs are never woken: their deadlines would only fire the
    // timer at every entry once they have passed.
    for vm in vm::all().iter().filter(|vm| vm.is_running()) {
        let Some(g) = vgic_of(vm) else { continue };
        for v in vm.vcpus.iter().filter(|v| v.pcpu == me) {
            if !g.blocked[v.index].load(Ordering::Relaxed)
                || v.is_paused()
                || v.state() != RunState::Runnable
            {
                continue;
            }
            let Some(ctx) = v.ctx.try_lock() else {
                continue;
            };
            for t in TIMERS {
                let (ctl, cval) = t.saved(&ctx.sysregs);
                if ctl & 0b11 == 0b01 {
                    // Offset 0 (a VM never restored): the compare value itself,
                    // without reading the counter.
                    let at = match t.offset(vm) {
                        0 => cval,
                        off => vcounter::physical_deadline(cval, off, arch::timer::now()),
                    };
                    deadline = Some(deadline.map_or(at, |d| d.min(at)));
                }
            }
        }
    }
    deadline
}

/// The idle loop's wait on CPU `me`: WFI (which QEMU turns into a halted host
/// thread, where `wfe` would spin) until the EL2 timer fires at the earliest saved
/// virtual-timer deadline of a vCPU blocked here, or in 1 ms at the latest (console
/// input, and wake-ups that only send an event), or an SGI kicks it. What woke it
/// is acknowledged here, so the next wait sleeps again. `sleep` false: no WFI,
/// only what is pending is taken (CPU 0 polling the debug line for GDB).
pub fn idle_wait(me: usize, sleep: bool) {
    use crate::arch::timer;
    let now = timer::now();
    let deadline = blocked_deadline(me)
        .into_iter()
        .chain(sched::wake_at_deadline(me))
        .min()
        .map_or(u64::MAX, |d| d.max(now));
    let deadline = deadline.min(now + timer::frequency() / 1000);
    if sleep && deadline > now {
        timer::arm(deadline - now);
        // SAFETY: WFI only waits; interrupts stay masked at EL2 (a pending one, even
        // masked, ends the wait) and are acknowledged below.
        unsafe { asm!("dsb sy", "wfi", options(nostack)) };
    }
    timer::disarm();
    for _ in 0..16 {
        let Some(a) = gic::acknowledge() else { break };
        // A console UART's interrupt (CPU 0): serviced into its rings, read by the
        // idle loop's next look. The EL1 timers of the last vCPU here: masked
        // until it runs again.
        if !super::console::interrupt(a.id.raw_value()) {
            physical_irq(a.id.raw_value());
        }
        gic::end(a);
    }
}

/// Whether a vCPU placed on CPU `me` is blocked in WFI.
#[inline(always)]
pub fn any_blocked(me: usize) -> bool {
    BLOCKED_HERE
        .get(me)
        .is_some_and(|n| n.load(Ordering::Acquire) != 0)
}

/// Whether `v` is blocked in WFI, could run (not paused, its VM running), and its
/// saved virtual timer is due (the scheduler wakes it).
pub fn timer_due(vm: &Vm, v: &Vcpu) -> bool {
    vgic_of(vm).is_some_and(|g| g.blocked[v.index].load(Ordering::Relaxed))
        && !v.is_paused()
        && vm.is_running()
        && v.state() == RunState::Runnable
        && saved_timer_fired(vm, v)
}

/// Ends `v`'s wait in WFI (the scheduler woke it: a WFI may complete without an
/// interrupt).
pub fn unblock(vm: &Vm, v: &Vcpu) {
    if let Some(g) = vgic_of(vm) {
        set_blocked(g, v, false);
    }
}

/// Whether a vCPU is blocked in WFI (its CPU should not keep running it).
pub fn is_blocked(vm: &Vm, v: &Vcpu) -> bool {
    vgic_of(vm).is_some_and(|g| g.blocked[v.index].load(Ordering::Relaxed))
}

/// For the scheduler's pick: false while the vCPU waits in WFI with nothing to
/// wake it. Wakes it (clears the block) when an interrupt is pending for it or the
/// timers it left behind has expired. Not for the loaded vCPU.
pub fn runnable(vm: &Vm, v: &Vcpu) -> bool {
    let Some(g) = vgic_of(vm) else { return true };
    if !g.blocked[v.index].load(Ordering::Relaxed) {
        return true;
    }
    let wake = g.gic.lock().has_pending(v.index) || saved_timer_fired(vm, v);
    if wake {
        set_blocked(g, v, false);
    }
    wake
}

/// The vCPU's saved EL1 timer conditions: the virtual timer against its VM's
/// count (the machine's less the VM's offset), the physical one against the
/// machine's counter.
fn saved_timer_fired(vm: &Vm, v: &Vcpu) -> bool {
    let Some(ctx) = v.ctx.try_lock() else {
        return true;
    };
    let now = arch::timer::now();
    TIMERS.iter().any(|&t| {
        let (ctl, cval) = t.saved(&ctx.sysregs);
        ctl & 0b11 == 0b01 && vcounter::fired(cval, vcounter::virtual_count(now, t.offset(vm)))
    })
}

// ---------------------------------------------------------------------------------
// Snapshots.

/// The VM's vGIC state as bytes ([`crate::vgic::Vgic::export`]): take it with every
/// vCPU paused (`control::pause_vm`), when the list registers are all folded.
pub fn export(vm: &Vm) -> Option<Vec<u8>> {
    Some(vgic_of(vm)?.gic.lock().export())
}

/// A fresh virtual GIC for a restarting VM (paused), hardware links kept
/// ([`crate::vgic::Vgic::reset`]). Returns the linked SPIs whose physical
/// interrupt was left active, for the caller to deactivate.
pub fn reset(vm: &Vm) -> Vec<u32> {
    let Some(g) = vgic_of(vm) else {
        return Vec::new();
    };
    let mut gic = g.gic.lock();
    let active = gic.reset();
    g.epoch.fetch_add(1, Ordering::Release);
    for f in &g.flushed {
        f.store(BUSY, Ordering::Relaxed);
    }
    for v in &vm.vcpus {
        set_blocked(g, v, false);
    }
    active
}

/// Whether `bytes` would import into the VM's vGIC: checked on a copy, nothing
/// changes (a streamed restore checks it before it writes any RAM).
pub fn check_import(vm: &Vm, bytes: &[u8]) -> Result<(), crate::vgic::StateError> {
    let Some(g) = vgic_of(vm) else {
        return Err(crate::vgic::StateError::Mismatch);
    };
    let mut copy = g.gic.lock().clone();
    copy.import(bytes)
}

/// Replaces the VM's vGIC state (paused VM); nothing changes on error.
pub fn import(vm: &Vm, bytes: &[u8]) -> Result<(), crate::vgic::StateError> {
    let Some(g) = vgic_of(vm) else {
        return Err(crate::vgic::StateError::Mismatch);
    };
    let mut gic = g.gic.lock();
    gic.import(bytes)?;
    g.epoch.fetch_add(1, Ordering::Release);
    for f in &g.flushed {
        f.store(BUSY, Ordering::Relaxed);
    }
    for v in &vm.vcpus {
        set_blocked(g, v, false);
    }
    Ok(())
}
