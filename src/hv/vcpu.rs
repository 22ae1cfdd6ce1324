//! A virtual CPU: its saved context and its run state.
//!
//! A vCPU is pinned to one physical CPU (its `pcpu`), which alone loads and saves its
//! context; other CPUs only change its run state (PSCI CPU_ON, a VM stopping) and wake
//! the owner. While a vCPU runs, its registers live in the hardware and its saved
//! context is stale.

use super::el1::El1State;
use crate::arch::fpsimd::FpState;
use crate::arch::trap_frame::TrapFrame;
use core::sync::atomic::{AtomicU8, Ordering};
use spin::Mutex;

/// PSTATE for a vCPU entering at EL1h, AArch64, with D, A, I and F masked.
pub const SPSR_EL1H: u64 = 0x3c5;
/// PSTATE for an AArch32 vCPU entering in Supervisor mode, A32, A, I and F masked.
pub const SPSR_SVC32: u64 = 0x1d3;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[repr(u8)]
pub enum RunState {
    /// Powered off (never started, CPU_OFF, or its VM stopped).
    Off = 0,
    /// Ready to run; waiting for its physical CPU.
    Runnable = 1,
    /// Loaded on its physical CPU.
    Running = 2,
}

impl RunState {
    fn from_u8(v: u8) -> Self {
        match v {
            1 => Self::Runnable,
            2 => Self::Running,
            _ => Self::Off,
        }
    }
}

#[derive(Clone, Copy, Default, Debug)]
pub struct VcpuContext {
    pub frame: TrapFrame,
    pub el1: El1State,
    pub fp: FpState,
}

pub struct Vcpu {
    pub vm: usize,
    pub index: usize,
    /// The physical CPU (logical index) this vCPU runs on.
    pub pcpu: usize,
    /// The MPIDR the guest sees (VMPIDR_EL2): Aff0 = index.
    pub mpidr: u64,
    state: AtomicU8,
    pub ctx: Mutex<VcpuContext>,
}

impl Vcpu {
    pub fn new(vm: usize, index: usize, pcpu: usize) -> Self {
        Self {
            vm,
            index,
            pcpu,
            mpidr: index as u64 & 0xff,
            state: AtomicU8::new(RunState::Off as u8),
            ctx: Mutex::new(VcpuContext {
                el1: El1State::reset(),
                ..Default::default()
            }),
        }
    }

    pub fn state(&self) -> RunState {
        RunState::from_u8(self.state.load(Ordering::Acquire))
    }

    pub fn set_state(&self, s: RunState) {
        self.state.store(s as u8, Ordering::Release);
    }

    /// Off -> Runnable, atomically: false if the vCPU was not off.
    pub fn try_power_on(&self) -> bool {
        self.state
            .compare_exchange(
                RunState::Off as u8,
                RunState::Runnable as u8,
                Ordering::AcqRel,
                Ordering::Acquire,
            )
            .is_ok()
    }

    /// Resets the saved context for an entry at `entry` with `args` in x0-x2 (r0-r2),
    /// MMU off, in EL1h (AArch64) or Supervisor mode (AArch32, Thumb if bit 0 of
    /// `entry` is set, as an interworking branch would): boot and PSCI CPU_ON.
    pub fn reset(&self, entry: u64, args: [u64; 3], aarch32: bool) {
        let mut ctx = self.ctx.lock();
        *ctx = VcpuContext {
            el1: El1State::reset(),
            ..Default::default()
        };
        if aarch32 {
            let thumb = entry & 1;
            ctx.frame.elr = entry & !1;
            ctx.frame.spsr = SPSR_SVC32 | (thumb << 5);
        } else {
            ctx.frame.elr = entry;
            ctx.frame.spsr = SPSR_EL1H;
        }
        ctx.frame.x[..3].copy_from_slice(&args);
    }
}
