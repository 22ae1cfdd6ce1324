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
use crate::arch::{self, fpsimd, sysreg, timer, trap_frame::TrapFrame};
use crate::cpreg;
use core::arch::asm;
use core::sync::atomic::{AtomicBool, AtomicPtr, AtomicUsize, Ordering};
use spin::{Mutex, Once};

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
/// table relies on (TID1-3, TIDCP, TACR, TSW; TVM only while set/way emulation
/// needs it or the VM is traced: see `cpreg::traps`). APK and API stay clear:
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
    /// The same vCPUs once the VMs are installed (`publish`): what the scheduler
    /// reads, without a lock.
    list: Once<heapless::Vec<&'static Vcpu, 32>>,
    /// Position in `list` of the loaded vCPU, or NONE, stored inverted (`!pos`:
    /// NONE is 0) so that every field starts at zero and `CPUS` lives in .bss
    /// instead of taking 6.5 KiB of the Image. Read and written through
    /// [`PerCpu::current`] and [`PerCpu::set_current`].
    current: AtomicUsize,
    online: AtomicBool,
    mpidr: core::sync::atomic::AtomicU64,
}

impl PerCpu {
    const fn new() -> Self {
        Self {
            vcpus: Mutex::new(heapless::Vec::new()),
            list: Once::new(),
            current: AtomicUsize::new(!NONE),
            online: AtomicBool::new(false),
            mpidr: core::sync::atomic::AtomicU64::new(0),
        }
    }
}

impl PerCpu {
    /// Position in `list` of the loaded vCPU, or NONE.
    #[inline(always)]
    fn current(&self) -> usize {
        !self.current.load(Ordering::Relaxed)
    }

    #[inline(always)]
    fn set_current(&self, pos: usize) {
        self.current.store(!pos, Ordering::Relaxed)
    }
}

static CPUS: [PerCpu; MAX_CPUS] = [const { PerCpu::new() }; MAX_CPUS];

/// The vCPU loaded on each CPU, for the trap path: one load, no lock. Null when
/// none is loaded. Written only by the CPU itself (`load`, `idle_until_runnable`).
static CURRENT: [AtomicPtr<Vcpu>; MAX_CPUS] =
    [const { AtomicPtr::new(core::ptr::null_mut()) }; MAX_CPUS];
static POWERING_OFF: AtomicBool = AtomicBool::new(false);
/// World switches (one vCPU saved, another loaded on the same CPU) and their total
/// cost in counter ticks.
static SWITCH_COUNT: core::sync::atomic::AtomicU64 = core::sync::atomic::AtomicU64::new(0);
static SWITCH_TICKS: core::sync::atomic::AtomicU64 = core::sync::atomic::AtomicU64::new(0);

/// Set by `schedule` when this exit switched from one vCPU to another.
static SWITCHED: [AtomicBool; MAX_CPUS] = [const { AtomicBool::new(false) }; MAX_CPUS];

/// At the end of an exit that began at counter value `start`: if it was a world
/// switch, its whole cost (exit to re-entry, vGIC included) is counted, in counter
/// ticks (instructions under QEMU -icount shift=0).
#[inline]
pub fn account_switch(start: u64) {
    if SWITCHED[arch::cpu_index() % MAX_CPUS].swap(false, Ordering::Relaxed) {
        SWITCH_TICKS.fetch_add(timer::now() - start, Ordering::Relaxed);
        SWITCH_COUNT.fetch_add(1, Ordering::Relaxed);
    }
}

/// (world switches, average counter ticks each, system registers switched).
pub fn switch_stats() -> (u64, u64, usize) {
    let n = SWITCH_COUNT.load(Ordering::Relaxed);
    let t = SWITCH_TICKS.load(Ordering::Relaxed);
    (
        n,
        if n == 0 { 0 } else { t / n },
        cpreg::table::EL1_SET.len() + cpreg::table::DEBUG_SET.len() + cpreg::table::FP_SET.len(),
    )
}
/// `hv.stay=1`: when no VM is left, keep the machine up for the debug console.
static STAY: AtomicBool = AtomicBool::new(false);

pub fn set_stay(stay: bool) {
    STAY.store(stay, Ordering::Relaxed);
}

/// Places a vCPU on a physical CPU. Boot time only.
pub fn assign(vm: usize, vcpu: usize, pcpu: usize) {
    let Some(cpu) = CPUS.get(pcpu) else {
        crate::println!("vm{vm}.{vcpu}: no CPU {pcpu}: this vCPU will not run");
        return;
    };
    if cpu.vcpus.lock().push((vm, vcpu)).is_err() {
        crate::println!("vm{vm}.{vcpu}: CPU {pcpu} already has 32 vCPUs: this vCPU will not run");
    }
}

/// Publishes each CPU's vCPUs once the VMs are installed, so the scheduler reads
/// them without a lock. Boot CPU, before any guest runs.
pub fn publish(vms: &'static [Vm]) {
    for cpu in CPUS.iter() {
        let placed = cpu.vcpus.lock().clone();
        cpu.list.call_once(|| {
            placed
                .iter()
                .filter_map(|&(vm, idx)| vms.get(vm)?.vcpus.get(idx))
                .collect()
        });
    }
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
    let v = *CPUS.get(me)?.list.get()?.get(pos)?;
    Some((vm::get(v.vm)?, v))
}

/// The vCPU loaded on this CPU, if any: one load, no lock (the trap fast path).
#[inline(always)]
pub fn current_vcpu() -> Option<&'static Vcpu> {
    let p = CURRENT[arch::cpu_index() % MAX_CPUS].load(Ordering::Relaxed);
    // SAFETY: `CURRENT` holds null or a pointer taken from a `&'static Vcpu` in
    // `load`: vCPUs live in the VM list, installed once and never freed or moved.
    unsafe { p.as_ref() }
}

/// The vCPU loaded on this CPU, if any, and its VM.
#[inline]
pub fn current() -> Option<(&'static Vm, &'static Vcpu)> {
    let v = current_vcpu()?;
    Some((vm::get(v.vm)?, v))
}

/// The next runnable, unpaused vCPU here after position `after` (round-robin), not
/// `after` itself.
fn pick(me: usize, after: usize) -> Option<usize> {
    let n = CPUS[me].list.get().map_or(0, |l| l.len());
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
    let cur = CPUS[me].current();
    let current = current();
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
    let mut saved = false;
    if let Some((vm, v)) = current {
        // Yielding or paused: keep its state. Its VM stopped: keep its last state
        // for the console (much of it is only in the hardware, untrapped). Off by
        // CPU_OFF: its state no longer matters, and a CPU_ON from another CPU may
        // be resetting it right now.
        if v.state() == RunState::Running {
            save(v, frame);
            v.set_state(RunState::Runnable);
            saved = true;
        } else if !vm.is_running() {
            save(v, frame);
        }
    }
    match next {
        Some(next) => {
            load(me, next, frame);
            if saved {
                // A world switch proper, from one vCPU to another: the exit that
                // made it measures its cost (`account_switch`).
                SWITCHED[me].store(true, Ordering::Relaxed);
            }
        }
        None => idle_until_runnable(frame),
    }
}

/// Loads the current vCPU's saved context into `frame` and the hardware again: after
/// its state was replaced (a snapshot restored) while this CPU was in one of its exits.
pub fn reload_current(frame: &mut TrapFrame) {
    let me = arch::cpu_index();
    let cur = CPUS[me].current();
    if let Some((vm, v)) = (cur != NONE).then(|| vcpu_at(me, cur)).flatten() {
        let ctx = v.ctx.lock();
        frame.copy_from(&ctx.frame);
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
    CPUS[me].set_current(NONE);
    CURRENT[me].store(core::ptr::null_mut(), Ordering::Relaxed);
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
    let aarch32 = vm.is_some_and(|vm| vm.aarch32);
    let mut ctx = v.ctx.lock();
    let ctx = &mut *ctx;
    ctx.frame.copy_from(frame);
    let own_mdscr = ctx.sysregs.slots()[MDSCR_SLOT];
    sysreg::save_el1(ctx.sysregs.slots_mut(), aarch32);
    // PMU: a VM given one has the hardware's while it runs; stop it counting and
    // interrupting for whoever runs next, and trap it again.
    if let Some(vm) = vm.filter(|vm| vm.pmu != 0) {
        sysreg::save_pmu(ctx.sysregs.slots_mut(), vm.pmu);
        arch::pmu::quiesce();
        arch::pmu::set_mdcr(super::boot::mdcr().default);
    }
    // Debug: only if this run loaded the vCPU's own debug registers. With the
    // debugger's values in the hardware (`debug_override`), the context already
    // holds the guest's own (its trapped accesses keep it up to date).
    if v.debug_loaded.swap(false, Ordering::Relaxed) && !v.debug_override.load(Ordering::Relaxed) {
        let f = *ctx.sysregs.features();
        sysreg::save_debug(ctx.sysregs.slots_mut(), f.brps, f.wrps);
    }
    if let Some(vm) = vm {
        super::debug::after_save(vm, v, &mut ctx.sysregs, &mut ctx.frame, own_mdscr);
    }
    // FP/SIMD: only if this run used it; then trap again, so a vCPU that goes on
    // running (`sync_current`) reloads what was just saved.
    if v.fp_loaded.swap(false, Ordering::Relaxed) {
        if aarch32 {
            sysreg::save_fp_aarch32(ctx.sysregs.slots_mut());
        }
        ctx.fp.save();
        fpsimd::trap(true);
    }
}

fn load(me: usize, pos: usize, frame: &mut TrapFrame) {
    let (vm, v) = vcpu_at(me, pos).expect("picked vCPU exists");
    v.set_state(RunState::Running);
    vm.switches.fetch_add(1, Ordering::Relaxed);
    CPUS[me].set_current(pos);
    CURRENT[me].store(v as *const Vcpu as *mut Vcpu, Ordering::Relaxed);
    let ctx = v.ctx.lock();
    frame.copy_from(&ctx.frame);
    load_hw(vm, v, &ctx);
    super::debug::on_enter(vm, v, frame, &ctx.sysregs);
    arm_slice();
}

fn load_hw(vm: &Vm, v: &Vcpu, ctx: &VcpuContext) {
    sysreg::restore_el1(ctx.sysregs.slots(), vm.aarch32);
    // PMU: only a VM given one (its counters enabled last, by the row order).
    if vm.pmu != 0 {
        arch::pmu::set_mdcr(super::boot::mdcr().pmu);
        sysreg::restore_pmu(ctx.sysregs.slots(), vm.pmu);
    }
    // Debug: only a vCPU with debug enabled in its MDSCR_EL1 (breakpoints,
    // watchpoints or stepping must fire) gets its debug registers now; any other
    // gets them at its first (trapped) access, `ensure_debug_loaded`.
    let mdscr = ctx.sysregs.slots()[MDSCR_SLOT];
    let debug = mdscr & super::debug::MDSCR_ACTIVE != 0;
    if debug {
        let f = ctx.sysregs.features();
        sysreg::restore_debug(ctx.sysregs.slots(), f.brps, f.wrps);
    }
    v.debug_loaded.store(debug, Ordering::Relaxed);
    // FP/SIMD: loaded at the vCPU's first use (`fp_first_use`).
    v.fp_loaded.store(false, Ordering::Relaxed);
    fpsimd::trap(true);
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
            hcr = in(reg) v.hcr(vm),
            vmpidr = in(reg) vmpidr,
            options(nostack),
        )
    };
}

/// MDSCR_EL1's slot in a vCPU context.
const MDSCR_SLOT: usize = match cpreg::Reg::MDSCR_EL1.slot() {
    Some(s) => s,
    None => panic!("MDSCR_EL1 has state"),
};

/// The loaded vCPU's first FP/SIMD instruction since it was loaded (or since its
/// FP state was last saved) trapped (CPTR_EL2.TFP): its FP/SIMD state goes into the
/// hardware and the instruction runs again. For the trap fast path.
#[inline(never)]
pub fn fp_first_use(v: &Vcpu) {
    fpsimd::trap(false);
    let ctx = v.ctx.lock();
    if vm::get(v.vm).is_some_and(|vm| vm.aarch32) {
        sysreg::restore_fp_aarch32(ctx.sysregs.slots());
    }
    ctx.fp.restore();
    v.fp_loaded.store(true, Ordering::Relaxed);
}

/// Before a trapped access to a debug register of the loaded vCPU: its own debug
/// registers go into the hardware if this run has not loaded them yet.
pub fn ensure_debug_loaded(v: &Vcpu) {
    if v.debug_loaded.load(Ordering::Relaxed) || v.debug_override.load(Ordering::Relaxed) {
        return;
    }
    let ctx = v.ctx.lock();
    let f = ctx.sysregs.features();
    sysreg::restore_debug(ctx.sysregs.slots(), f.brps, f.wrps);
    v.debug_loaded.store(true, Ordering::Relaxed);
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
