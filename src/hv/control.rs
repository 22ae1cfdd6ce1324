//! Bringing vCPUs to a stop so their state can be read or replaced: the one path
//! every reader takes (the console, the GDB stub, snapshots).
//!
//! While a vCPU runs, its registers live in the hardware of its CPU and its saved
//! context is stale. `pause_vm` marks every vCPU of a VM paused and kicks each CPU
//! that runs one (an SGI makes it exit at once; its scheduler then saves the vCPU and
//! will not run it); a vCPU loaded on the caller's own CPU is saved in place. When it
//! returns, every context of the VM holds the live values, and stays so until
//! `resume_vm`.

use super::{gic, sched, vcpu::RunState, vm::Vm};
use crate::arch::{self, timer, trap_frame::TrapFrame};

/// The SGI that makes another CPU exit from its guest.
pub const KICK_SGI: u32 = 0;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum ControlError {
    /// A vCPU's CPU did not stop it within the deadline (that CPU is stuck).
    Stuck { vm: usize, vcpu: usize },
}

impl core::fmt::Display for ControlError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Stuck { vm, vcpu } => write!(f, "vm{vm}.{vcpu} did not stop within 1 s"),
        }
    }
}

/// Asks every vCPU of `vm` to stop, without waiting: each CPU running one exits
/// at once (a kick) and saves it. For callers that cannot wait, such as a CPU in
/// the middle of one of the VM's own exits (a debug exception).
pub fn request_pause(vm: &Vm) {
    let me = arch::cpu_index();
    mark_paused(vm);
    for v in vm.vcpus.iter().filter(|v| v.state() == RunState::Running) {
        if v.pcpu != me {
            gic::send_sgi(KICK_SGI, sched::mpidr_of(v.pcpu));
        }
    }
}

/// Marks every vCPU of `vm` paused, then a full barrier before the caller looks for
/// running ones: the other half of `sched::claim`, so a CPU about to load one of
/// them either sees the flag or is seen running.
fn mark_paused(vm: &Vm) {
    for v in &vm.vcpus {
        v.set_paused(true);
    }
    core::sync::atomic::fence(core::sync::atomic::Ordering::SeqCst);
}

/// Lets only `vcpu` of a paused VM run (a single step); the others stay paused.
pub fn resume_vcpu(vm: &Vm, vcpu: usize) {
    if super::reset::is_pending(vm) {
        // A restart is pending: CPU 0 lets the VM run once it is done.
        return;
    }
    if let Some(v) = vm.vcpus.get(vcpu) {
        v.set_paused(false);
    }
    arch::send_event();
}

/// Stops every vCPU of `vm` with its state saved. `frame` is the caller's trap frame
/// when it runs in an exit from a guest on this CPU (so the vCPU it interrupted can
/// be saved in place), `None` from the idle loop.
pub fn pause_vm(vm: &Vm, frame: Option<&TrapFrame>) -> Result<(), ControlError> {
    let me = arch::cpu_index();
    mark_paused(vm);
    if let (Some(frame), Some((cur_vm, _))) = (frame, sched::current()) {
        if cur_vm.id == vm.id {
            sched::sync_current(frame);
        }
    }
    let own = sched::current().map(|(cvm, v)| (cvm.id, v.index));
    let others = |v: &&super::vcpu::Vcpu| own != Some((vm.id, v.index));
    for v in vm
        .vcpus
        .iter()
        .filter(others)
        .filter(|v| v.state() == RunState::Running)
    {
        if v.pcpu != me {
            gic::send_sgi(KICK_SGI, sched::mpidr_of(v.pcpu));
        }
    }
    let deadline = timer::now() + timer::frequency();
    loop {
        let running = vm
            .vcpus
            .iter()
            .filter(others)
            .find(|v| v.state() == RunState::Running);
        match running {
            None => return Ok(()),
            Some(v) if timer::now() > deadline => {
                return Err(ControlError::Stuck {
                    vm: vm.id,
                    vcpu: v.index,
                });
            }
            Some(_) => core::hint::spin_loop(),
        }
    }
}

/// Lets the VM's vCPUs run again.
pub fn resume_vm(vm: &Vm) {
    if super::reset::is_pending(vm) {
        // A restart is pending: CPU 0 lets the VM run once it is done.
        return;
    }
    for v in &vm.vcpus {
        v.set_paused(false);
    }
    arch::send_event();
}

/// Whether every vCPU of the VM is paused.
pub fn is_paused(vm: &Vm) -> bool {
    vm.vcpus.iter().all(|v| v.is_paused())
}
