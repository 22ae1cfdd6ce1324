//! Per-CPU scheduling of pinned vCPUs, round-robin on the EL2 timer.
//!
//! Each physical CPU owns a list of vCPUs. The running one keeps its CPU until it
//! yields (WFI), goes off (CPU_OFF, its VM stops), or its slice ends (the EL2
//! physical timer, armed when a slice starts and left alone by other exits, so a
//! guest that spins at EL1, or traps all the time, cannot starve the others; every
//! CPU also exits to EL2 at least once a slice). An idle CPU waits in
//! WFE; whoever makes a vCPU runnable sends an event.

use super::vcpu::{RunState, Vcpu, VcpuContext};
use super::vm::{self, Vm};
use crate::arch::{self, timer, trap_frame::TrapFrame};
use crate::cpreg;
use core::arch::asm;
use core::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use spin::Mutex;

pub const MAX_CPUS: usize = 8;
const NONE: usize = usize::MAX;
/// The scheduling slice, in milliseconds.
/// The scheduling slice in microseconds: 10 ms unless the hypervisor's command line
/// (`/chosen/bootargs`) says `hv.slice_us=N`.
static SLICE_US: core::sync::atomic::AtomicU64 = core::sync::atomic::AtomicU64::new(10_000);

/// The slice, from the hypervisor's command line (100 us to 1 s).
pub fn set_slice_us(us: u64) {
    SLICE_US.store(us.clamp(100, 1_000_000), Ordering::Relaxed);
}

pub fn slice_us() -> u64 {
    SLICE_US.load(Ordering::Relaxed)
}

/// HCR_EL2 for an AArch64 VM: stage 2 on (VM), set/way invalidation upgraded to
/// clean (SWIO), physical IRQ/FIQ/SError to EL2 (IMO, FMO, AMO), broadcast TLB and
/// cache maintenance inner shareable (FB, BSU = IS), trap WFI (to yield) and SMC
/// (PSCI through SMC), EL1 is AArch64 (RW), and the system-register traps the cpreg
/// table relies on (TVM/TRVM, TID1-3, TIDCP, TACR, TSW). APK and API stay clear:
/// pointer authentication is hidden from guests (its keys are not switched), so a
/// guest that uses it anyway traps and gets UNDEF instead of another VM's keys.
pub const HCR_VM: u64 = (1 << 0)
    | (1 << 1)
    | (1 << 3)
    | (1 << 4)
    | (1 << 5)
    | (1 << 9)
    | (1 << 10)
    | (1 << 13)
    | (1 << 19)
    | (1 << 31)
    | cpreg::HCR_EL2_TRAPS;

/// HCR_EL2.RW: EL1 is AArch64.
pub const HCR_RW: u64 = 1 << 31;

struct PerCpu {
    /// (VM id, vCPU index) of every vCPU placed here.
    vcpus: Mutex<heapless::Vec<(usize, usize), 32>>,
    /// Position in `vcpus` of the loaded vCPU, or NONE.
    current: AtomicUsize,
    online: AtomicBool,
    mpidr: core::sync::atomic::AtomicU64,
}

impl PerCpu {
    const fn new() -> Self {
        Self {
            vcpus: Mutex::new(heapless::Vec::new()),
            current: AtomicUsize::new(NONE),
            online: AtomicBool::new(false),
            mpidr: core::sync::atomic::AtomicU64::new(0),
        }
    }
}

static CPUS: [PerCpu; MAX_CPUS] = [const { PerCpu::new() }; MAX_CPUS];
static POWERING_OFF: AtomicBool = AtomicBool::new(false);
/// World switches (one vCPU saved, another loaded on the same CPU) and their total
/// cost in counter ticks.
static SWITCH_COUNT: core::sync::atomic::AtomicU64 = core::sync::atomic::AtomicU64::new(0);
static SWITCH_TICKS: core::sync::atomic::AtomicU64 = core::sync::atomic::AtomicU64::new(0);

/// (world switches, average counter ticks each, system registers switched).
pub fn switch_stats() -> (u64, u64, usize) {
    let n = SWITCH_COUNT.load(Ordering::Relaxed);
    let t = SWITCH_TICKS.load(Ordering::Relaxed);
    (
        n,
        if n == 0 { 0 } else { t / n },
        cpreg::table::EL1_SET.len() + cpreg::table::FP_SET.len(),
    )
}
/// `hv.stay=1`: when no VM is left, keep the machine up for the debug console.
static STAY: AtomicBool = AtomicBool::new(false);

pub fn set_stay(stay: bool) {
    STAY.store(stay, Ordering::Relaxed);
}

/// Places a vCPU on a physical CPU. Boot time only.
pub fn assign(vm: usize, vcpu: usize, pcpu: usize) {
    CPUS[pcpu]
        .vcpus
        .lock()
        .push((vm, vcpu))
        .expect("at most 32 vCPUs per CPU");
}

pub fn set_online(pcpu: usize, mpidr: u64) {
    CPUS[pcpu].mpidr.store(mpidr, Ordering::Relaxed);
    CPUS[pcpu].online.store(true, Ordering::Release);
}

/// The MPIDR of physical CPU `pcpu` (once online).
pub fn mpidr_of(pcpu: usize) -> u64 {
    CPUS[pcpu].mpidr.load(Ordering::Relaxed)
}

pub fn is_online(pcpu: usize) -> bool {
    CPUS[pcpu].online.load(Ordering::Acquire)
}

fn vcpu_at(me: usize, pos: usize) -> Option<(&'static Vm, &'static Vcpu)> {
    let (vm, idx) = *CPUS[me].vcpus.lock().get(pos)?;
    let vm = vm::get(vm)?;
    Some((vm, vm.vcpus.get(idx)?))
}

/// The vCPU loaded on this CPU, if any.
pub fn current() -> Option<(&'static Vm, &'static Vcpu)> {
    let me = arch::cpu_index();
    match CPUS[me].current.load(Ordering::Relaxed) {
        NONE => None,
        pos => vcpu_at(me, pos),
    }
}

/// The next runnable, unpaused vCPU here after position `after` (round-robin), not
/// `after` itself.
fn pick(me: usize, after: usize) -> Option<usize> {
    let n = CPUS[me].vcpus.lock().len();
    let start = if after == NONE { 0 } else { after + 1 };
    (0..n)
        .map(|i| (start + i) % n)
        .filter(|&p| p != after)
        .find(|&p| {
            // vGIC: a vCPU blocked in WFI runs again once an interrupt is pending for it.
            vcpu_at(me, p).is_some_and(|(vm, v)| {
                v.state() == RunState::Runnable && !v.is_paused() && super::vgic::runnable(vm, v)
            })
        })
}

/// Decides what runs next on this CPU, at the end of every exit from a guest.
/// `yield_cpu`: the current vCPU offers its CPU (WFI, end of slice).
///
/// The current vCPU keeps the CPU unless it yields, went off, or was asked to pause
/// (see `control`): then its registers are saved into its context, so whoever
/// paused it reads live state.
pub fn schedule(frame: &mut TrapFrame, yield_cpu: bool) {
    let me = arch::cpu_index();
    let cur = CPUS[me].current.load(Ordering::Relaxed);
    let current = if cur == NONE { None } else { vcpu_at(me, cur) };
    // vGIC: a vCPU blocked in WFI gives its CPU up.
    let keep = current.is_some_and(|(vm, v)| {
        v.state() == RunState::Running
            && vm.is_running()
            && !v.is_paused()
            && !super::vgic::is_blocked(vm, v)
    });
    if keep && !yield_cpu {
        // The slice goes on: re-arming here would restart it, and a vCPU that exits
        // often (MMIO, HVC polling) would never be preempted.
        return;
    }
    let next = pick(me, cur);
    if keep && next.is_none() {
        arm_slice();
        return;
    }
    let start = timer::now();
    let mut saved = false;
    if let Some((_, v)) = current {
        // Yielding or paused: keep its state. Off (CPU_OFF, its VM stopped): its
        // state no longer matters.
        if v.state() == RunState::Running {
            save(v, frame);
            v.set_state(RunState::Runnable);
            saved = true;
        }
    }
    match next {
        Some(next) => {
            load(me, next, frame);
            if saved {
                // A world switch proper, from one vCPU to another: its cost in
                // counter ticks (instructions under QEMU -icount shift=0).
                SWITCH_TICKS.fetch_add(timer::now() - start, Ordering::Relaxed);
                SWITCH_COUNT.fetch_add(1, Ordering::Relaxed);
            }
        }
        None => idle_until_runnable(frame),
    }
}

/// Loads the current vCPU's saved context into `frame` and the hardware again: after
/// its state was replaced (a snapshot restored) while this CPU was in one of its exits.
pub fn reload_current(frame: &mut TrapFrame) {
    let me = arch::cpu_index();
    let cur = CPUS[me].current.load(Ordering::Relaxed);
    if let Some((vm, v)) = (cur != NONE).then(|| vcpu_at(me, cur)).flatten() {
        let ctx = v.ctx.lock();
        *frame = ctx.frame;
        load_hw(vm, v, &ctx);
        super::debug::on_enter(vm, v, frame, &ctx.sysregs);
    }
}

/// Saves the current vCPU's live registers into its context without descheduling
/// it: for a reader on this very CPU, which cannot wait for its own exit.
pub fn sync_current(frame: &TrapFrame) {
    if let Some((_, v)) = current() {
        if v.state() == RunState::Running {
            save(v, frame);
        }
    }
}

/// Waits until a vCPU placed here is runnable and loads it into `frame`. Powers the
/// machine off when no VM is left.
pub fn idle_until_runnable(frame: &mut TrapFrame) {
    let me = arch::cpu_index();
    CPUS[me].current.store(NONE, Ordering::Relaxed);
    timer::disarm();
    loop {
        if let Some(next) = pick(me, NONE) {
            load(me, next, frame);
            return;
        }
        if !vm::any_running() {
            if STAY.load(Ordering::Relaxed) {
                if !POWERING_OFF.swap(true, Ordering::SeqCst) {
                    crate::println!(
                        "hv: no VM is left; staying up for the debug console (hv.stay=1)"
                    );
                }
            } else {
                power_off_machine();
            }
        }
        // vGIC: with vCPUs blocked in WFI the tick is off, so console input (which
        // may wake one) is polled here; the wait is a WFI until the next blocked
        // vCPU's timer, a kick SGI, or 1 ms (so `send_event` wake-ups still work).
        super::boot::poll_input();
        super::monitor::poll(None);
        super::vgic::idle_wait(me);
    }
}

/// The first entry of a CPU into guests: never returns.
pub fn run() -> ! {
    let mut frame = TrapFrame::default();
    idle_until_runnable(&mut frame);
    super::vgic::on_entry();
    // SAFETY: `frame` holds a vCPU's registers with its EL1 state, stage 2 and HCR
    // loaded by `load`; this stack frame is never popped, so the frame stays valid.
    unsafe { arch::trap_frame::enter_guest(&frame) }
}

fn arm_slice() {
    let slice = timer::frequency() * slice_us() / 1_000_000;
    // vGIC: end the slice early when a vCPU blocked here has its timer due sooner,
    // so it is woken on time.
    let ticks = super::vgic::blocked_deadline(arch::cpu_index())
        .map_or(slice, |d| d.saturating_sub(timer::now()).clamp(1, slice));
    timer::arm(ticks);
}

fn save(v: &Vcpu, frame: &TrapFrame) {
    let vm = vm::get(v.vm);
    // vGIC: the virtual CPU interface (the list registers were folded on exit).
    if let Some(vm) = vm {
        super::vgic::save(vm, v);
    }
    let mut ctx = v.ctx.lock();
    ctx.frame = *frame;
    let kept = super::debug::before_save(v, &ctx.sysregs);
    cpreg::save_el1(&mut ctx.sysregs);
    if let Some(vm) = vm {
        let ctx = &mut *ctx;
        super::debug::after_save(vm, v, kept, &mut ctx.sysregs, &mut ctx.frame);
    }
    cpreg::save_fp_with(&mut ctx.sysregs, &mut cpreg::Hw);
    ctx.fp.save();
}

fn load(me: usize, pos: usize, frame: &mut TrapFrame) {
    let (vm, v) = vcpu_at(me, pos).expect("picked vCPU exists");
    v.set_state(RunState::Running);
    vm.switches.fetch_add(1, Ordering::Relaxed);
    CPUS[me].current.store(pos, Ordering::Relaxed);
    let ctx = v.ctx.lock();
    *frame = ctx.frame;
    load_hw(vm, v, &ctx);
    super::debug::on_enter(vm, v, frame, &ctx.sysregs);
    arm_slice();
}

fn load_hw(vm: &Vm, v: &Vcpu, ctx: &VcpuContext) {
    cpreg::restore_el1(&ctx.sysregs);
    cpreg::restore_fp_with(&ctx.sysregs, &mut cpreg::Hw);
    ctx.fp.restore();
    // vGIC: the virtual CPU interface (the list registers are filled on entry).
    super::vgic::restore(vm, v);
    let vmpidr = (1u64 << 31) | v.mpidr;
    // SAFETY: these EL2 registers configure the guest about to run: its stage 2 (the
    // VM's tables, which live as long as the VM), its traps and its view of MPIDR.
    unsafe {
        asm!(
            "msr vttbr_el2, {vttbr}",
            "msr hcr_el2, {hcr}",
            "msr vmpidr_el2, {vmpidr}",
            "isb",
            vttbr = in(reg) vm.vttbr,
            hcr = in(reg) vm.hcr,
            vmpidr = in(reg) vmpidr,
            options(nostack),
        )
    };
}

fn power_off_machine() -> ! {
    if !POWERING_OFF.swap(true, Ordering::SeqCst) {
        let (n, avg, regs) = switch_stats();
        crate::println!(
            "hv: {n} world switches, {avg} counter ticks each on average ({regs} system registers, 32 FP/SIMD registers and the vGIC interface switched)"
        );
        if crate::arch::smc::has_psci() {
            crate::println!("hv: no VM is left: powering off");
            let _ = crate::arch::smc::system_off();
            crate::println!("hv: the firmware refused SYSTEM_OFF; every CPU stops here");
        } else {
            // Each CPU reaches this when it finds no VM left, and halts below.
            crate::println!(
                "hv: no VM is left; this machine has no PSCI to power it off: every CPU stops here (it is safe to switch the power off)"
            );
        }
    }
    arch::halt()
}
