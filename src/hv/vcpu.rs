//! A virtual CPU: its saved context and its run state.
//!
//! A vCPU is pinned to one physical CPU (its `pcpu`), which alone loads and saves its
//! context; other CPUs only change its run state (PSCI CPU_ON, a VM stopping) and wake
//! the owner. While a vCPU runs, its registers live in the hardware and its saved
//! context is stale.

use crate::arch::fpsimd::FpState;
use crate::arch::trap_frame::TrapFrame;
use crate::cpreg::{GuestIds, SysRegFile};
use core::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
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

/// Everything a vCPU's state consists of, besides what the VM holds (stage 2, timer
/// offset, GIC): general registers and PSTATE, the system registers of the cpreg
/// table, and FP/SIMD.
#[derive(Clone)]
pub struct VcpuContext {
    pub frame: TrapFrame,
    pub sysregs: SysRegFile,
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
    /// Exits the trap fast path finished (`trap::hv_fast_sync`): a plain counter,
    /// written only by its own CPU, so counting is a load, an add and a store.
    pub fast_exits: AtomicU64,
    /// Its FP/SIMD state is in the registers (loaded at its first FP/SIMD
    /// instruction of this run; saved when it leaves its CPU). Own CPU only.
    pub fp_loaded: AtomicBool,
    /// Its debug registers are in the hardware (loaded for this run because debug
    /// is enabled in its MDSCR_EL1, or at its first access). Own CPU only.
    pub debug_loaded: AtomicBool,
    /// Set/way emulation is waiting for the guest to turn its caches on: HCR_EL2.TVM
    /// is added so SCTLR writes trap (see `sysreg::set_way` and
    /// `sysreg::sctlr_written`, as KVM's `kvm_set_way_flush`/`kvm_toggle_cache`).
    pub sw_tvm: AtomicBool,
    /// The guest's MMU and data cache were both on at the last SCTLR write seen.
    pub caches_on: AtomicBool,
    /// Asked to stop (monitor, debugger, snapshot): its CPU saves it and does not run
    /// it until the flag clears.
    paused: AtomicBool,
    /// The debugger's MDSCR_EL1/breakpoint values are in the hardware instead of
    /// this vCPU's own (see `debug`); only its own CPU touches this.
    pub debug_override: AtomicBool,
}

impl Vcpu {
    /// A powered-off vCPU of a VM whose guest-visible ID registers are `ids`.
    pub fn new(vm: usize, index: usize, pcpu: usize, ids: &GuestIds) -> Self {
        Self {
            vm,
            index,
            pcpu,
            mpidr: crate::cpreg::mpidr_for_vcpu(index) & 0xff_00ff_ffff,
            state: AtomicU8::new(RunState::Off as u8),
            fast_exits: AtomicU64::new(0),
            fp_loaded: AtomicBool::new(false),
            debug_loaded: AtomicBool::new(false),
            sw_tvm: AtomicBool::new(false),
            caches_on: AtomicBool::new(false),
            paused: AtomicBool::new(false),
            debug_override: AtomicBool::new(false),
            ctx: Mutex::new(VcpuContext {
                frame: TrapFrame::default(),
                sysregs: SysRegFile::new(ids, index),
                fp: FpState::default(),
            }),
        }
    }

    /// HCR_EL2 while this vCPU runs: its VM's, plus TVM while set/way emulation
    /// waits for the caches to come on.
    pub fn hcr(&self, vm: &super::vm::Vm) -> u64 {
        if self.sw_tvm.load(Ordering::Relaxed) {
            vm.hcr | crate::cpreg::traps::hcr::TVM
        } else {
            vm.hcr
        }
    }

    pub fn is_paused(&self) -> bool {
        self.paused.load(Ordering::Acquire)
    }

    pub fn set_paused(&self, paused: bool) {
        self.paused.store(paused, Ordering::Release);
    }

    pub fn state(&self) -> RunState {
        RunState::from_u8(self.state.load(Ordering::Acquire))
    }

    pub fn set_state(&self, s: RunState) {
        self.state.store(s as u8, Ordering::Release);
    }

    /// `from` -> `to`, atomically: false, with nothing changed, if the vCPU was not
    /// in `from`. The scheduler puts a saved vCPU back to Runnable this way, so an
    /// Off stored meanwhile by another CPU (its VM powered off) is not overwritten.
    pub fn transition(&self, from: RunState, to: RunState) -> bool {
        self.state
            .compare_exchange(from as u8, to as u8, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }

    /// Off -> Runnable, atomically: false if the vCPU was not off.
    pub fn try_power_on(&self) -> bool {
        self.transition(RunState::Off, RunState::Runnable)
    }

    /// Resets the saved context for an entry at `entry` with `args` in x0-x2 (r0-r2),
    /// MMU off, in EL1h (AArch64) or Supervisor mode (AArch32, Thumb if bit 0 of
    /// `entry` is set, as an interworking branch would): boot and PSCI CPU_ON.
    pub fn reset(&self, entry: u64, args: [u64; 3], aarch32: bool) {
        let mut ctx = self.ctx.lock();
        ctx.frame = TrapFrame::default();
        ctx.sysregs.reset();
        ctx.fp = FpState::default();
        if aarch32 {
            // An AArch32 EL1 comes out of reset with the table's AArch32 SCTLR value.
            let _ = ctx.sysregs.raw_write(
                crate::cpreg::Reg::SCTLR_EL1,
                crate::cpreg::table::SCTLR_EL1_AARCH32_RESET,
            );
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
