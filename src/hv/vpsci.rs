//! PSCI for guests (through HVC, and SMC which HCR_EL2.TSC traps): carried out on the
//! calling VM's own vCPUs. Decoding is portable (`crate::psci`).

use super::vcpu::{RunState, Vcpu};
use super::vm::Vm;
use crate::arch::trap_frame::TrapFrame;
use crate::psci::{self, ret, Request};

/// What the trap handler does after the call.
pub enum After {
    /// Return to the caller with x0 set.
    Return,
    /// The caller is gone (CPU_OFF, SYSTEM_OFF): pick something else to run.
    Reschedule,
}

fn by_mpidr(vm: &'static Vm, mpidr: u64) -> Option<&'static Vcpu> {
    vm.vcpus.iter().find(|v| v.mpidr == mpidr & 0xff_00ff_ffff)
}

/// The calls that only answer (version, features, migration, affinity, unknown
/// functions): x0 set and true, for the trap fast path. False for anything that
/// changes vCPU or VM state, with the frame untouched.
#[inline(always)]
pub fn answer(vm: usize, frame: &mut TrapFrame) -> bool {
    let args = [frame.x[0], frame.x[1], frame.x[2], frame.x[3]];
    let result = match psci::decode(&args) {
        Request::Version => psci::VERSION as i64,
        Request::Features(f) => psci::features(f),
        Request::MigrateInfoType => ret::TOS_NOT_PRESENT_MP,
        Request::AffinityInfo {
            target,
            lowest_level,
        } => match super::vm::get(vm) {
            Some(vm) => affinity_info(vm, target, lowest_level),
            None => return false,
        },
        Request::Unknown(_) => ret::NOT_SUPPORTED,
        _ => return false,
    };
    frame.x[0] = result as u64;
    true
}

fn affinity_info(vm: &Vm, target: u64, lowest_level: u64) -> i64 {
    let v = vm.vcpus.iter().find(|v| v.mpidr == target & 0xff_00ff_ffff);
    match (lowest_level, v) {
        (0, Some(v)) => match v.state() {
            RunState::Off => ret::AFFINITY_OFF,
            _ => ret::AFFINITY_ON,
        },
        _ => ret::INVALID_PARAMETERS,
    }
}

/// Handles an SMCCC call (function id in x0) from `caller` of `vm`.
pub fn call(vm: &'static Vm, caller: &Vcpu, frame: &mut TrapFrame) -> After {
    let args = [frame.x[0], frame.x[1], frame.x[2], frame.x[3]];
    let (result, after) = match psci::decode(&args) {
        Request::Version => (psci::VERSION as i64, After::Return),
        Request::Features(f) => (psci::features(f), After::Return),
        Request::MigrateInfoType => (ret::TOS_NOT_PRESENT_MP, After::Return),
        Request::CpuOn {
            target,
            entry,
            context,
        } => (cpu_on(vm, target, entry, context), After::Return),
        Request::CpuOff => {
            caller.set_state(RunState::Off);
            if vm.vcpus.iter().all(|v| v.state() == RunState::Off) {
                vm.power_off("all vCPUs off");
            }
            (ret::SUCCESS, After::Reschedule)
        }
        Request::AffinityInfo {
            target,
            lowest_level,
        } => (affinity_info(vm, target, lowest_level), After::Return),
        Request::SystemOff => {
            vm.power_off("system-off");
            (ret::SUCCESS, After::Reschedule)
        }
        // The VM restarts (CPU 0 does it, `reset`): the caller stops here.
        Request::SystemReset => {
            super::reset::request(vm, super::reset::Why::SystemReset);
            (ret::SUCCESS, After::Reschedule)
        }
        // Only the architectural warm reset (type 0); vendor and reserved
        // types are invalid here (DEN 0022 5.19).
        Request::SystemReset2 { reset_type: 0, .. } => {
            super::reset::request(vm, super::reset::Why::SystemReset2);
            (ret::SUCCESS, After::Reschedule)
        }
        Request::SystemReset2 { .. } => (ret::INVALID_PARAMETERS, After::Return),
        // A suspend may return at once (DEN 0022 5.4.2): treat it as a WFI.
        Request::CpuSuspend { .. } => (ret::SUCCESS, After::Return),
        Request::Unknown(_) => (ret::NOT_SUPPORTED, After::Return),
    };
    frame.x[0] = result as u64;
    after
}

fn cpu_on(vm: &'static Vm, target: u64, entry: u64, context: u64) -> i64 {
    if !vm.is_running() {
        // A vCPU of a VM being stopped, before it noticed: nothing starts again.
        return ret::DENIED;
    }
    let Some(v) = by_mpidr(vm, target) else {
        return ret::INVALID_PARAMETERS;
    };
    if !vm.ram.ipa.contains(crate::addr::Ipa(entry)) {
        return ret::INVALID_ADDRESS;
    }
    if v.state() != RunState::Off {
        return ret::ALREADY_ON;
    }
    v.reset(entry, [context, 0, 0], vm.aarch32);
    if !v.try_power_on() {
        return ret::ALREADY_ON;
    }
    // Its CPU may be idle in WFE.
    crate::arch::send_event();
    ret::SUCCESS
}
