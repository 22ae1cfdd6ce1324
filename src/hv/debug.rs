//! Debugging a guest from EL2 (for the GDB stub): debug exceptions routed here,
//! software breakpoints, single step, and hardware breakpoints, done as KVM does
//! for `KVM_SET_GUEST_DEBUG`.
//!
//! * While a debugger is attached to a VM, its vCPUs run with MDCR_EL2.TDE, so
//!   `BRK`, breakpoint and software-step exceptions from EL1/EL0 come to EL2.
//! * A vCPU being stepped, or any vCPU of a VM with hardware breakpoints, runs with
//!   the debugger's MDSCR_EL1 (SS, MDE) and DBGBVR/DBGBCR values in the hardware
//!   instead of its own. Its own values stay in its context (they are what it reads
//!   and what a snapshot saves); a trapped access to them while the debugger's are
//!   loaded sees its own (`suspend`/`reapply` around the emulation).
//! * A debug exception marks every vCPU of the VM paused and records the stop;
//!   the GDB session on CPU 0 reports it.

use super::vcpu::Vcpu;
use super::vm::Vm;
use crate::arch::trap_frame::TrapFrame;
use crate::cpreg::{Reg, SysRegFile, SysRegHw};
use core::arch::asm;
use core::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use spin::Mutex;

/// SPSR_EL2.SS: PSTATE.SS of the guest, for a software step.
pub const SPSR_SS: u64 = 1 << 21;
const MDSCR_SS: u64 = 1 << 0;
const MDSCR_MDE: u64 = 1 << 15;
const MDCR_TDE: u64 = 1 << 8;
/// `BRK #0`, GDB's own AArch64 breakpoint instruction.
pub const BRK: u32 = 0xd420_0000;
/// DBGBCR: enabled, match at EL1 and EL0 (PMC 0b11), all four bytes (BAS 0b1111).
const BCR_EXEC: u64 = 0x1e7;
/// Architectural maximum of breakpoint register pairs.
pub const MAX_HW: usize = 16;

/// MDSCR_EL1.MDE: breakpoints and watchpoints enabled, so a vCPU with it set needs
/// its own breakpoint and watchpoint registers in the hardware while it runs.
pub const MDSCR_ACTIVE: u64 = MDSCR_MDE;

/// Breakpoint pair `n`'s value and control registers, found in the cpreg table
/// by their encodings (DBGBVR<n>_EL1 = S2_0_C0_C<n>_4, DBGBCR<n>_EL1 = ..._5).
fn pair(n: usize) -> Option<(Reg, Reg)> {
    let n = n as u8;
    Some((
        crate::cpreg::lookup_a64(crate::cpreg::Sys64::new(2, 0, 0, n, 4))?,
        crate::cpreg::lookup_a64(crate::cpreg::Sys64::new(2, 0, 0, n, 5))?,
    ))
}

/// How many hardware breakpoints the VM's vCPUs have: its sanitised
/// ID_AA64DFR0_EL1.BRPs + 1, as the table's presence rules see it.
pub fn hw_slots(regs: &SysRegFile) -> usize {
    (regs.features().brps as usize).min(MAX_HW)
}

/// A VM's debugger state, shared between the GDB session (CPU 0) and the CPUs
/// that run its vCPUs.
pub struct VmDebug {
    attached: AtomicBool,
    /// The vCPU being single-stepped, plus one (0: none).
    step: AtomicUsize,
    /// A stop not yet reported: (vCPU + 1) | signal << 32 (0: none).
    event: AtomicU64,
    hw: Mutex<heapless::Vec<u64, MAX_HW>>,
}

impl Default for VmDebug {
    fn default() -> Self {
        Self::new()
    }
}

impl VmDebug {
    pub const fn new() -> Self {
        Self {
            attached: AtomicBool::new(false),
            step: AtomicUsize::new(0),
            event: AtomicU64::new(0),
            hw: Mutex::new(heapless::Vec::new()),
        }
    }

    pub fn is_attached(&self) -> bool {
        self.attached.load(Ordering::Acquire)
    }

    /// Attaches or detaches; detaching forgets the step and hardware breakpoints.
    pub fn set_attached(&self, on: bool) {
        if !on {
            self.step.store(0, Ordering::Release);
            self.hw.lock().clear();
            self.event.store(0, Ordering::Release);
        }
        self.attached.store(on, Ordering::Release);
    }

    pub fn set_step(&self, vcpu: Option<usize>) {
        self.step
            .store(vcpu.map_or(0, |v| v + 1), Ordering::Release);
    }

    pub fn is_stepping(&self, vcpu: usize) -> bool {
        self.step.load(Ordering::Acquire) == vcpu + 1
    }

    /// The unreported stop, taken: (vCPU, signal).
    pub fn take_event(&self) -> Option<(usize, u8)> {
        match self.event.swap(0, Ordering::AcqRel) {
            0 => None,
            e => Some(((e & 0xffff_ffff) as usize - 1, (e >> 32) as u8)),
        }
    }

    /// Records a stop for GDB (a debug exception; a guest's own reset).
    pub fn record(&self, vcpu: usize, signal: u8) {
        let e = (vcpu as u64 + 1) | (signal as u64) << 32;
        // The first stop wins; later ones (another vCPU at the same moment) are
        // seen when GDB continues and they hit again.
        let _ = self
            .event
            .compare_exchange(0, e, Ordering::AcqRel, Ordering::Acquire);
    }

    /// Adds or removes a hardware breakpoint (the change reaches each vCPU the
    /// next time it is loaded; they are all paused while GDB changes them).
    /// `slots`: the VM's hardware breakpoints ([`hw_slots`]).
    pub fn hw_breakpoint(
        &self,
        addr: u64,
        insert: bool,
        slots: usize,
    ) -> Result<(), crate::gdb::stub::Error> {
        use crate::gdb::stub::Error;
        let mut hw = self.hw.lock();
        let at = hw.iter().position(|&a| a == addr);
        match (insert, at) {
            (true, Some(_)) => Ok(()),
            (true, None) if hw.len() < slots => hw.push(addr).map_err(|_| Error::NoSpace),
            (true, None) => Err(Error::NoSpace),
            (false, Some(i)) => {
                hw.swap_remove(i);
                Ok(())
            }
            (false, None) => Err(Error::Invalid),
        }
    }
}

/// Whether MDCR_EL2.TDE is set on each CPU, so the world switch need not read
/// MDCR_EL2 to find out (TDE changes only when a debugged VM comes or goes).
static TDE_ON: [AtomicBool; super::sched::MAX_CPUS] =
    [const { AtomicBool::new(false) }; super::sched::MAX_CPUS];

fn mdcr_tde(on: bool) {
    let Some(cached) = TDE_ON.get(crate::arch::cpu_index()) else {
        return;
    };
    if cached.load(Ordering::Relaxed) == on {
        return;
    }
    let mdcr: u64;
    // SAFETY: reading MDCR_EL2 has no side effects.
    unsafe { asm!("mrs {}, mdcr_el2", out(reg) mdcr, options(nomem, nostack)) };
    let want = if on {
        mdcr | MDCR_TDE
    } else {
        mdcr & !MDCR_TDE
    };
    // SAFETY: TDE only routes the guest's debug exceptions to EL2 (and implies the
    // debug register traps, which are set anyway).
    unsafe { asm!("msr mdcr_el2, {}", "isb", in(reg) want, options(nostack)) };
    cached.store(on, Ordering::Relaxed);
}

/// Loads the debugger's MDSCR_EL1 and breakpoint registers into the hardware if
/// this vCPU needs them; records whether it did.
fn apply(vm: &Vm, v: &Vcpu, regs: &SysRegFile) {
    let step = vm.debug.is_stepping(v.index);
    let hw = vm.debug.hw.lock().clone();
    if !step && hw.is_empty() {
        v.debug_override.store(false, Ordering::Relaxed);
        return;
    }
    let hwr = &mut crate::cpreg::Hw;
    let mut mdscr = regs.raw_read(Reg::MDSCR_EL1).unwrap_or(0) & !(MDSCR_SS | MDSCR_MDE);
    if step {
        mdscr |= MDSCR_SS;
    }
    if !hw.is_empty() {
        mdscr |= MDSCR_MDE;
        for i in 0..hw_slots(regs) {
            let (bvr, bcr) = hw.get(i).map_or((0, 0), |&a| (a, BCR_EXEC));
            if let Some((vr, cr)) = pair(i) {
                hwr.write(vr, bvr);
                hwr.write(cr, bcr);
            }
        }
    }
    hwr.write(Reg::MDSCR_EL1, mdscr);
    hwr.sync();
    v.debug_override.store(true, Ordering::Relaxed);
}

/// Puts the guest's own values (its context's) back into the hardware.
fn unapply(v: &Vcpu, regs: &SysRegFile) {
    if !v.debug_override.load(Ordering::Relaxed) {
        return;
    }
    let hwr = &mut crate::cpreg::Hw;
    for i in 0..hw_slots(regs) {
        if let Some((vr, cr)) = pair(i) {
            hwr.write(vr, regs.raw_read(vr).unwrap_or(0));
            hwr.write(cr, regs.raw_read(cr).unwrap_or(0));
        }
    }
    hwr.write(Reg::MDSCR_EL1, regs.raw_read(Reg::MDSCR_EL1).unwrap_or(0));
    hwr.sync();
}

/// After a vCPU's context was loaded into the hardware and `frame`: route debug
/// exceptions and load the debugger's registers as the VM's debug state asks.
pub fn on_enter(vm: &Vm, v: &Vcpu, frame: &mut TrapFrame, regs: &SysRegFile) {
    let attached = vm.debug.is_attached();
    mdcr_tde(attached);
    if !attached {
        v.debug_override.store(false, Ordering::Relaxed);
        return;
    }
    if vm.debug.is_stepping(v.index) {
        frame.spsr |= SPSR_SS;
    }
    apply(vm, v, regs);
}

/// After a vCPU was saved: with the debugger's values in the hardware, the
/// context kept the guest's own debug registers (the switch does not save over
/// them), but MDSCR_EL1 was saved with every switch and holds the debugger's bits:
/// put the guest's own back. And the debugger's step bit leaves its PSTATE.
pub fn after_save(vm: &Vm, v: &Vcpu, regs: &mut SysRegFile, frame: &mut TrapFrame, own_mdscr: u64) {
    if v.debug_override.load(Ordering::Relaxed) {
        let _ = regs.raw_write(Reg::MDSCR_EL1, own_mdscr);
    }
    if vm.debug.is_stepping(v.index) {
        frame.spsr &= !SPSR_SS;
    }
}

/// Around a trapped access to the guest's debug registers: the guest's own values
/// in the hardware while it is emulated, the debugger's again afterwards.
pub fn suspend(v: &Vcpu, regs: &SysRegFile) -> bool {
    let on = v.debug_override.load(Ordering::Relaxed);
    if on {
        unapply(v, regs);
    }
    on
}

pub fn reapply(vm: &Vm, v: &Vcpu, regs: &SysRegFile) {
    apply(vm, v, regs);
}

/// The guest's step must end after the instruction EL2 just emulated: with
/// PSTATE.SS clear, the step exception is taken right after the return (as KVM
/// does when it skips an instruction).
pub fn emulated_instruction(vm: &Vm, v: &Vcpu, frame: &mut TrapFrame) {
    if vm.debug.is_stepping(v.index) {
        frame.spsr &= !SPSR_SS;
    }
}

/// A debug exception from the guest (EC 0x3C BRK, 0x30 hardware breakpoint, 0x32
/// software step). With a debugger attached: the VM stops and the debugger is
/// told. Without one, TDE is clear when the vCPU runs, so none should come; if one
/// does, a `BRK` goes to the guest as it would have without EL2, and a stale step
/// or breakpoint is dropped.
pub fn exception(vm: &Vm, v: &Vcpu, frame: &mut TrapFrame, esr: crate::esr::Esr) {
    use crate::esr::ExceptionClass;
    if vm.debug.is_attached() {
        if esr.ec() == ExceptionClass::SoftwareStepLower {
            vm.debug.set_step(None);
            frame.spsr &= !SPSR_SS;
        }
        vm.debug.record(v.index, crate::gdb::stub::SIGTRAP);
        super::control::request_pause(vm);
        return;
    }
    match esr.ec() {
        ExceptionClass::Brk64 => super::inject::software_breakpoint(frame, esr),
        _ => frame.spsr &= !SPSR_SS,
    }
}
