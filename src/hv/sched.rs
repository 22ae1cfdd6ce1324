//! Per-CPU scheduling of pinned vCPUs, round-robin on the EL2 timer, with prompt
//! wake-ups.
//!
//! Each physical CPU owns a list of vCPUs. The running one keeps its CPU until it
//! yields (WFI), goes off (CPU_OFF, its VM stops), its slice ends (the EL2
//! physical timer, armed when a slice starts and left alone by other exits, so a
//! guest that spins at EL1, or traps all the time, cannot starve the others; every
//! CPU also exits to EL2 at least once a slice), or a vCPU of its CPU is woken.
//!
//! **Wake-ups** ([`wake`], [`wake_at`]). An interrupt for a vCPU that is not
//! running (blocked in WFI, or runnable and waiting for its turn) marks it *woken*
//! on its CPU and, from another CPU, kicks that CPU (an SGI). The woken vCPU is
//! picked before the round-robin order, and preempts the running one as soon as
//! that one has run its minimum ([`min_run_us`], 100 us unless `hv.min_run_us`
//! says otherwise) (at once if it has; otherwise the EL2 timer is
//! armed for that moment): two vCPUs that keep waking each other cannot turn the
//! CPU into a ping-pong of world switches. A vCPU that preempted another runs on a
//! short slice ([`SHORT_SLICE_US`]), so being woken often does not let it keep the
//! CPU. Deadlines work the same way: the EL2 timer is armed for the earliest of the
//! slice's end, the virtual-timer deadline of a vCPU blocked here (read from its
//! saved context), and any [`wake_at`] deadline, and a vCPU whose deadline passed
//! is woken. So an interrupt waits for at most the minimum run, never for a slice.
//! An idle CPU waits in WFI (`vgic::idle_wait`) until a kick or its next deadline.

use super::vcpu::{RunState, Vcpu, VcpuContext};
use super::vm::{self, Vm};
use crate::arch::{self, fpsimd, sysreg, timer, trap_frame::TrapFrame};
use crate::cpreg;
use core::arch::asm;
use core::sync::atomic::{AtomicBool, AtomicPtr, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use spin::{Mutex, Once};

pub const MAX_CPUS: usize = 8;
const NONE: usize = usize::MAX;
/// The least a running vCPU runs before a woken vCPU of its CPU preempts it: 100
/// us unless the hypervisor's command line says `hv.min_run_us=N`.
static MIN_RUN_US: AtomicU64 = AtomicU64::new(100);
/// The slice of a vCPU that preempted another because it was woken.
pub const SHORT_SLICE_US: u64 = 1000;
/// `PerCpu::woken`: the EL2 timer must be armed again (a deadline was added, or
/// the timer fired before the slice's end).
const REARM: u64 = 1 << 63;
/// `PerCpu::woken`: the bits that name vCPUs (by position in the CPU's list).
const POSITIONS: u64 = 0xffff_ffff;
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

/// The minimum run, from the hypervisor's command line (10 us to 1 s; at most
/// the slice in effect).
pub fn set_min_run_us(us: u64) {
    MIN_RUN_US.store(us.clamp(10, 1_000_000), Ordering::Relaxed);
}

/// The least a running vCPU runs before a woken one preempts it: an interrupt's
/// longest wait for a vCPU that is not running.
pub fn min_run_us() -> u64 {
    MIN_RUN_US.load(Ordering::Relaxed).min(slice_us())
}

/// The slice, the minimum run and the short slice in counter ticks: computed once
/// the counter frequency and the slice are known (`publish`).
static SLICE_TICKS: AtomicU64 = AtomicU64::new(0);
static MIN_RUN_TICKS: AtomicU64 = AtomicU64::new(0);
static SHORT_TICKS: AtomicU64 = AtomicU64::new(0);

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
    /// vCPUs woken here (bit = position in `list`) and [`REARM`]: set by any CPU
    /// ([`wake`], [`wake_at`]), cleared by this CPU when it picks them.
    woken: AtomicU64,
    /// This CPU only: when the current vCPU was loaded, when its slice ends, and
    /// when it is to be preempted for a woken vCPU (0: not asked).
    loaded_at: AtomicU64,
    slice_end: AtomicU64,
    preempt_at: AtomicU64,
    /// [`wake_at`] deadlines by position, valid where `has_deadline` has the bit.
    deadlines: [AtomicU64; 32],
    has_deadline: AtomicU32,
}

impl PerCpu {
    const fn new() -> Self {
        Self {
            vcpus: Mutex::new(heapless::Vec::new()),
            list: Once::new(),
            current: AtomicUsize::new(!NONE),
            online: AtomicBool::new(false),
            mpidr: core::sync::atomic::AtomicU64::new(0),
            woken: AtomicU64::new(0),
            loaded_at: AtomicU64::new(0),
            slice_end: AtomicU64::new(0),
            preempt_at: AtomicU64::new(0),
            deadlines: [const { AtomicU64::new(0) }; 32],
            has_deadline: AtomicU32::new(0),
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
    let ticks = |us: u64| (timer::frequency() * us / 1_000_000).max(1);
    let slice = ticks(slice_us());
    SLICE_TICKS.store(slice, Ordering::Relaxed);
    MIN_RUN_TICKS.store(ticks(min_run_us()).min(slice), Ordering::Relaxed);
    SHORT_TICKS.store(ticks(SHORT_SLICE_US).min(slice), Ordering::Relaxed);
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

#[inline(always)]
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
#[inline(always)]
pub fn current() -> Option<(&'static Vm, &'static Vcpu)> {
    let v = current_vcpu()?;
    Some((vm::get(v.vm)?, v))
}

/// The next runnable, unpaused vCPU of a running VM here after position `after`
/// (round-robin), not `after` itself.
fn pick(me: usize, after: usize) -> Option<usize> {
    let n = CPUS[me].list.get().map_or(0, |l| l.len());
    let start = if after == NONE { 0 } else { after + 1 };
    (0..n)
        .map(|i| (start + i) % n)
        .filter(|&p| p != after)
        .find(|&p| {
            // vGIC: a vCPU blocked in WFI runs again once an interrupt is pending for it.
            vcpu_at(me, p).is_some_and(|(vm, v)| {
                v.state() == RunState::Runnable
                    && !v.is_paused()
                    && vm.is_running()
                    && super::vgic::runnable(vm, v)
            })
        })
}

/// The next woken vCPU here that can run, after position `after` (round-robin among
/// the woken), not `after` itself. A woken vCPU blocked in WFI is unblocked (a WFI
/// may end without an interrupt). Wake-ups of vCPUs that cannot run (paused, off,
/// the current one) are dropped: they only ever ask for an earlier turn.
#[inline(always)]
fn pick_woken(me: usize, after: usize) -> Option<usize> {
    let w = CPUS[me].woken.load(Ordering::Acquire) & POSITIONS;
    if w == 0 {
        return None;
    }
    pick_woken_from(me, after, w)
}

#[inline(never)]
fn pick_woken_from(me: usize, after: usize, w: u64) -> Option<usize> {
    let pc = &CPUS[me];
    let start = if after == NONE { 0 } else { after + 1 };
    // Rotate so that the search starts after `after`.
    let rot = (start % 32) as u32;
    let mut r = (w as u32).rotate_right(rot);
    while r != 0 {
        let p = ((r.trailing_zeros() + rot) % 32) as usize;
        r &= r - 1;
        let ok = p != after
            && vcpu_at(me, p).is_some_and(|(vm, v)| {
                v.state() == RunState::Runnable && !v.is_paused() && vm.is_running()
            });
        if ok {
            if let Some((vm, v)) = vcpu_at(me, p) {
                super::vgic::unblock(vm, v);
            }
            return Some(p);
        }
        pc.woken.fetch_and(!(1 << p), Ordering::AcqRel);
    }
    None
}

/// The position of `v` in its CPU's list.
fn position(v: &Vcpu) -> Option<usize> {
    CPUS.get(v.pcpu)?
        .list
        .get()?
        .iter()
        .position(|x| core::ptr::eq(*x, v))
        .filter(|&p| p < 32)
}

/// An interrupt was made pending for `v`, which is not running (blocked in WFI, or
/// runnable and waiting for its CPU): its CPU picks it next, preempting the vCPU it
/// runs once that one has run [`min_run_us`]. From another CPU, that CPU is kicked
/// (an SGI); on `v`'s own CPU, the `schedule` that ends this exit decides. A vCPU
/// that is off is left alone; one that is running needs no wake-up (the caller
/// kicks its CPU so it exits and takes the interrupt).
pub fn wake(v: &Vcpu) {
    if v.state() == RunState::Off {
        return;
    }
    let Some(pos) = position(v) else { return };
    CPUS[v.pcpu].woken.fetch_or(1 << pos, Ordering::AcqRel);
    if v.pcpu != arch::cpu_index() {
        super::gic::send_sgi(super::control::KICK_SGI, mpidr_of(v.pcpu));
    }
}

/// Wakes `v` (as [`wake`]) when the counter reaches `deadline`, unless that is
/// cancelled ([`cancel_wake_at`]) or replaced by another `wake_at` first: for a
/// timer the hardware does not watch while `v` is not loaded (an emulated timer
/// of the guest's). Its CPU arms its EL2 timer for the earliest such deadline (an
/// idle CPU sleeps until then), so `v` is woken at the deadline and not at the end
/// of another vCPU's slice. One deadline per vCPU; it is dropped once it fired.
/// While `v` is loaded the deadline still ends the running vCPU's wait at EL2 but
/// wakes nobody: a timer of the loaded vCPU must bring it to EL2 itself (its
/// hardware timer, or a check on every entry).
pub fn wake_at(v: &Vcpu, deadline: u64) {
    let Some(pos) = position(v) else { return };
    let pc = &CPUS[v.pcpu];
    pc.deadlines[pos].store(deadline, Ordering::Relaxed);
    pc.has_deadline.fetch_or(1 << pos, Ordering::Release);
    pc.woken.fetch_or(REARM, Ordering::AcqRel);
    if v.pcpu != arch::cpu_index() {
        super::gic::send_sgi(super::control::KICK_SGI, mpidr_of(v.pcpu));
    }
}

/// Cancels `v`'s [`wake_at`] deadline, if it has one.
pub fn cancel_wake_at(v: &Vcpu) {
    if let Some(pos) = position(v) {
        CPUS[v.pcpu]
            .has_deadline
            .fetch_and(!(1 << pos), Ordering::AcqRel);
    }
}

/// The earliest [`wake_at`] deadline of CPU `me`'s vCPUs.
pub fn wake_at_deadline(me: usize) -> Option<u64> {
    let pc = CPUS.get(me)?;
    let mut mask = pc.has_deadline.load(Ordering::Acquire);
    let mut d = None::<u64>;
    while mask != 0 {
        let p = mask.trailing_zeros() as usize;
        mask &= mask - 1;
        let t = pc.deadlines[p].load(Ordering::Relaxed);
        d = Some(d.map_or(t, |d| d.min(t)));
    }
    d
}

/// Marks woken every vCPU of CPU `me` whose [`wake_at`] deadline passed, or that is
/// blocked in WFI with its saved virtual timer due.
#[inline(always)]
fn wake_due(me: usize, now: u64) {
    if CPUS[me].has_deadline.load(Ordering::Relaxed) != 0 || super::vgic::any_blocked(me) {
        wake_due_slow(me, now);
    }
}

#[inline(never)]
fn wake_due_slow(me: usize, now: u64) {
    let pc = &CPUS[me];
    let mut mask = pc.has_deadline.load(Ordering::Acquire);
    while mask != 0 {
        let p = mask.trailing_zeros() as usize;
        mask &= mask - 1;
        if pc.deadlines[p].load(Ordering::Relaxed) <= now {
            pc.has_deadline.fetch_and(!(1 << p), Ordering::AcqRel);
            pc.woken.fetch_or(1 << p, Ordering::AcqRel);
        }
    }
    if super::vgic::any_blocked(me) {
        let n = pc.list.get().map_or(0, |l| l.len()).min(32);
        for p in 0..n {
            if vcpu_at(me, p).is_some_and(|(vm, v)| super::vgic::timer_due(vm, v)) {
                pc.woken.fetch_or(1 << p, Ordering::AcqRel);
            }
        }
    }
}

/// The EL2 timer fired on this CPU (at the end of the slice, or at a deadline):
/// wakes the vCPUs whose deadline passed, then schedules, ending the slice if it is
/// over.
pub fn timer_fired(frame: &mut TrapFrame) {
    let me = arch::cpu_index();
    let pc = &CPUS[me];
    let now = timer::now();
    wake_due(me, now);
    let over = now >= pc.slice_end.load(Ordering::Relaxed);
    if !over {
        // The slice goes on: the timer is armed again for what is left of it.
        pc.woken.fetch_or(REARM, Ordering::AcqRel);
    }
    schedule(frame, over);
}

/// Decides what runs next on this CPU, at the end of every exit from a guest.
/// `yield_cpu`: the current vCPU offers its CPU (WFI, end of slice).
///
/// The current vCPU keeps the CPU unless it yields, went off, was asked to pause
/// (see `control`), or a woken vCPU preempts it: then its registers are saved into
/// its context, so whoever paused it reads live state.
pub fn schedule(frame: &mut TrapFrame, yield_cpu: bool) {
    let me = arch::cpu_index();
    let pc = &CPUS[me];
    let cur = pc.current();
    let current = current();
    // vGIC: a vCPU blocked in WFI gives its CPU up.
    let keep = current.is_some_and(|(vm, v)| {
        v.state() == RunState::Running
            && vm.is_running()
            && !v.is_paused()
            && !super::vgic::is_blocked(vm, v)
    });
    let mut woken = None;
    if keep && !yield_cpu {
        // The slice goes on: re-arming here would restart it, and a vCPU that exits
        // often (MMIO, HVC polling) would never be preempted. Unless a vCPU was
        // woken here: it preempts the current one once that one has run its
        // minimum.
        let w = pc.woken.load(Ordering::Acquire);
        if w == 0 {
            return;
        }
        let now = timer::now();
        let loaded_at = pc.loaded_at.load(Ordering::Relaxed);
        woken = pick_woken(me, cur);
        let min_run = MIN_RUN_TICKS.load(Ordering::Relaxed);
        if woken.is_none() || now.wrapping_sub(loaded_at) < min_run {
            // The woken vCPU preempts once the current one has run its minimum. If
            // none is left that can run (paused, or its VM stopped, since it was
            // woken), there is nobody to preempt for: a preemption moment kept from
            // before would lie in the past and fire the EL2 timer at every entry,
            // and the current vCPU would make no progress.
            let preempt_at = if woken.is_some() {
                loaded_at + min_run
            } else {
                0
            };
            pc.preempt_at.store(preempt_at, Ordering::Relaxed);
            if woken.is_some() || w & REARM != 0 {
                pc.woken.fetch_and(!REARM, Ordering::AcqRel);
                arm_next(me, now);
            }
            return;
        }
    }
    let (next, short) = match woken {
        Some(p) => (Some(p), true),
        None => match pick_woken(me, cur) {
            Some(p) => (Some(p), keep),
            None => (pick(me, cur), false),
        },
    };
    if keep && next.is_none() {
        // Alone here: a new slice, and nobody to preempt it for.
        let now = timer::now();
        pc.preempt_at.store(0, Ordering::Relaxed);
        pc.woken.fetch_and(!REARM, Ordering::AcqRel);
        pc.slice_end
            .store(now + SLICE_TICKS.load(Ordering::Relaxed), Ordering::Relaxed);
        arm_next(me, now);
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
            // Not if its VM was powered off meanwhile (from another CPU): Off stays.
            v.transition(RunState::Running, RunState::Runnable);
            saved = true;
        } else {
            if !vm.is_running() {
                save(v, frame);
            }
            if v.state() == RunState::Off {
                // It will not run again (until a CPU_ON resets it): a WFI it
                // blocked in after `Vm::power_off` looked no longer counts
                // (`vgic::any_blocked`).
                super::vgic::unblock(vm, v);
            }
        }
    }
    match next {
        Some(next) if load(me, next, frame, short) => {
            if saved {
                // A world switch proper, from one vCPU to another: the exit that
                // made it measures its cost (`account_switch`).
                SWITCHED[me].store(true, Ordering::Relaxed);
            }
        }
        // Nothing to run, or the pick was paused (or its VM powered off) before it
        // could be loaded.
        _ => idle_until_runnable(frame),
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
        wake_due(me, timer::now());
        if let Some(next) = pick_woken(me, NONE).or_else(|| pick(me, NONE)) {
            if load(me, next, frame, false) {
                return;
            }
            // Paused, or its VM powered off, between the pick and the load: look
            // again.
            continue;
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
        // While GDB owns the debug line, CPU 0 (which serves it) has nothing else
        // to run here: it polls the line tightly instead of sleeping up to 1 ms
        // per look (a UART FIFO's worth of a packet per look), still taking the
        // interrupts that wake or belong to vCPUs.
        super::vgic::idle_wait(me, me != 0 || !super::gdb::is_active());
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

/// Arms the EL2 timer for the earliest of: the slice's end, the moment the current
/// vCPU is to be preempted for a woken one, the virtual-timer deadline of a vCPU
/// blocked here (vGIC), and the [`wake_at`] deadlines.
#[inline(always)]
fn arm_next(me: usize, now: u64) {
    let pc = &CPUS[me];
    let mut d = pc.slice_end.load(Ordering::Relaxed);
    if pc.preempt_at.load(Ordering::Relaxed) != 0
        || pc.has_deadline.load(Ordering::Relaxed) != 0
        || super::vgic::any_blocked(me)
    {
        d = earliest_deadline(me, d);
    }
    timer::arm_at(d.max(now + 1));
}

/// The earliest of `d` and the deadlines [`arm_next`] arms the timer for.
#[inline(never)]
fn earliest_deadline(me: usize, mut d: u64) -> u64 {
    let pc = &CPUS[me];
    let p = pc.preempt_at.load(Ordering::Relaxed);
    if p != 0 {
        d = d.min(p);
    }
    if let Some(b) = super::vgic::blocked_deadline(me) {
        d = d.min(b);
    }
    if let Some(w) = wake_at_deadline(me) {
        d = d.min(w);
    }
    d
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
    // MTE: only a VM offered it can reach (or change) its registers.
    if vm.is_some_and(|vm| vm.mte) {
        sysreg::save_mte(ctx.sysregs.slots_mut());
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

/// Claims a picked vCPU for this CPU: Runnable -> Running, unless a pause came
/// between the pick and here. `control::pause_vm` marks vCPUs paused, then looks
/// for Running ones; this marks the vCPU Running, then looks at its pause flag.
/// With a full barrier on both sides at least one of them sees the other, so a
/// pause never returns while a vCPU it did not see is about to run (the VM would
/// be saved or restored under a running vCPU).
///
/// The back-out is a compare-and-swap, as the save in `schedule` is: an Off stored
/// meanwhile by `Vm::power_off` (another CPU) stays. A vCPU whose VM was powered
/// off between the pick and here runs until its next exit at most, and is never
/// picked again (`pick` and `pick_woken` skip stopped VMs).
fn claim(v: &Vcpu) -> bool {
    v.set_state(RunState::Running);
    core::sync::atomic::fence(Ordering::SeqCst);
    if v.is_paused() {
        v.transition(RunState::Running, RunState::Runnable);
        return false;
    }
    true
}

/// Loads the vCPU at `pos` for a slice (`short`: the short slice of a vCPU that
/// preempted another because it was woken). False, with nothing loaded, if it was
/// paused since it was picked ([`claim`]).
fn load(me: usize, pos: usize, frame: &mut TrapFrame, short: bool) -> bool {
    let Some((vm, v)) = vcpu_at(me, pos) else {
        return false;
    };
    if !claim(v) {
        return false;
    }
    // Its wake-up, if it was woken, stays set: the next exit that looks drops it
    // (`pick_woken` never picks the current vCPU), which keeps this path short.
    let pc = &CPUS[me];
    vm.switches.fetch_add(1, Ordering::Relaxed);
    CPUS[me].set_current(pos);
    CURRENT[me].store(v as *const Vcpu as *mut Vcpu, Ordering::Relaxed);
    let ctx = v.ctx.lock();
    frame.copy_from(&ctx.frame);
    load_hw(vm, v, &ctx);
    super::debug::on_enter(vm, v, frame, &ctx.sysregs);
    let now = timer::now();
    pc.loaded_at.store(now, Ordering::Relaxed);
    pc.preempt_at.store(0, Ordering::Relaxed);
    let slice = if short { &SHORT_TICKS } else { &SLICE_TICKS };
    let mut end = now + slice.load(Ordering::Relaxed);
    pc.slice_end.store(end, Ordering::Relaxed);
    // `arm_next`, knowing that nothing is to be preempted and the slice's end is
    // ahead.
    if pc.has_deadline.load(Ordering::Relaxed) != 0 || super::vgic::any_blocked(me) {
        end = earliest_deadline(me, end).max(now + 1);
    }
    timer::arm_at(end);
    true
}

fn load_hw(vm: &Vm, v: &Vcpu, ctx: &VcpuContext) {
    // The VM's virtual counter offset first, so its timers' compare values (just
    // below) are never seen against another VM's count.
    // SAFETY: CNTVOFF_EL2 only sets the virtual count EL1 and EL0 read (and the
    // virtual timer compares with) while this VM runs; the `isb` below orders it.
    unsafe {
        asm!(
            "msr cntvoff_el2, {}",
            in(reg) vm.cntvoff.load(Ordering::Relaxed),
            options(nostack)
        )
    };
    sysreg::restore_el1(ctx.sysregs.slots(), vm.aarch32);
    // PMU: only a VM given one (its counters enabled last, by the row order).
    if vm.pmu != 0 {
        arch::pmu::set_mdcr(super::boot::mdcr().pmu);
        sysreg::restore_pmu(ctx.sysregs.slots(), vm.pmu);
    }
    if vm.mte {
        sysreg::restore_mte(ctx.sysregs.slots());
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
            // The log's last lines leave the UART before the power goes.
            super::console::flush();
            let _ = crate::arch::smc::system_off();
            crate::println!("hv: the firmware refused SYSTEM_OFF; every CPU stops here");
        } else {
            // Each CPU reaches this when it finds no VM left, and halts below.
            crate::println!(
                "hv: no VM is left; this machine has no PSCI to power it off: every CPU stops here (it is safe to switch the power off)"
            );
            super::console::flush();
        }
    }
    arch::halt()
}
