//! A virtual machine: its RAM, stage-2 tables, vCPUs, emulated console, and life cycle.

use super::console;
use super::vcpu::{RunState, Vcpu};
use crate::memplan::GuestRam;
use crate::stage2::Stage2Tables;
use crate::vuart::VirtualPl011;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use spin::{Mutex, Once};

/// A VM's stage-2 tables. The tables are only changed under the mutex that holds this.
pub struct SharedStage2(pub Stage2Tables);
// SAFETY: the tables are plain memory reached through raw pointers inside
// aarch64-paging's `Mapping`; every access goes through the VM's mutex.
unsafe impl Send for SharedStage2 {}

pub struct Vm {
    pub id: usize,
    /// EL1 runs AArch32 (a zImage guest).
    pub aarch32: bool,
    /// HCR_EL2 while this VM runs (a vCPU adds TVM while set/way emulation needs
    /// it: `Vcpu::hcr`).
    pub hcr: u64,
    /// Its memory-control registers are traced (`hv.trace_vm_regs`): TVM and TRVM
    /// stay set, so every access is trapped and counted.
    pub traced: bool,
    /// Event counters of its virtual PMU (`hv.pmu`); 0: no PMU (its PMU registers
    /// trap and UNDEF).
    pub pmu: u8,
    /// Offered memory tagging (`hv.mte`, on by default when the CPU has
    /// FEAT_MTE2): HCR_EL2.ATA, its MTE registers switched, its tags in snapshots.
    pub mte: bool,
    pub ram: GuestRam,
    pub vttbr: u64,
    /// Its virtual counter offset (CNTVOFF_EL2), shared by its vCPUs and loaded
    /// with each ([`crate::vcounter`]): 0 from boot, set by a snapshot restore
    /// while every vCPU is paused.
    pub cntvoff: core::sync::atomic::AtomicU64,
    pub vcpus: Vec<Vcpu>,
    pub stage2: Mutex<SharedStage2>,
    /// IPA of the emulated PL011 (the host's `serial0` address).
    pub uart_ipa: u64,
    pub uart: Mutex<VirtualPl011>,
    /// Guest output waiting for a newline (when several VMs share the console).
    line: Mutex<heapless::Vec<u8, 160>>,
    running: AtomicBool,
    stopping: AtomicBool,
    /// Guest data aborts outside anything mapped or emulated (for the console).
    pub aborts: AtomicUsize,
    /// How many times one of its vCPUs was loaded onto a CPU (world switches in).
    pub switches: core::sync::atomic::AtomicU64,
    /// Hashes of the UNDEF causes already logged.
    undefs: Mutex<heapless::Vec<u32, 32>>,
    /// The debugger's state for this VM (GDB).
    pub debug: super::debug::VmDebug,
    /// What a restart reloads, and its rate limiter (`reset`).
    pub reset: super::reset::VmReset,
}

/// FNV-1a, to remember logged messages in a few bytes.
fn fnv1a(bytes: &[u8]) -> u32 {
    bytes.iter().fold(0x811c_9dc5, |h, &b| {
        (h ^ b as u32).wrapping_mul(0x0100_0193)
    })
}

static VMS: Once<Vec<Vm>> = Once::new();

/// Publishes the VMs built at boot. Called once.
pub fn install(vms: Vec<Vm>) -> &'static [Vm] {
    let vms = VMS.call_once(|| vms);
    super::sched::publish(vms);
    vms
}

/// Every VM (empty before boot has built them).
#[inline(always)]
pub fn all() -> &'static [Vm] {
    VMS.get().map_or(&[], |v| v.as_slice())
}

#[inline(always)]
pub fn get(id: usize) -> Option<&'static Vm> {
    all().get(id)
}

impl Vm {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        id: usize,
        aarch32: bool,
        ram: GuestRam,
        stage2: Stage2Tables,
        vttbr: u64,
        vcpus: Vec<Vcpu>,
        uart_ipa: u64,
        traced: bool,
        reset: super::reset::VmReset,
        pmu: u8,
        mte: bool,
    ) -> Self {
        let base = if aarch32 {
            super::sched::HCR_VM & !super::sched::HCR_RW
        } else {
            super::sched::HCR_VM
        };
        let base = if mte {
            base | crate::cpreg::traps::hcr::ATA
        } else {
            base
        };
        Self {
            id,
            aarch32,
            hcr: if traced {
                base | crate::cpreg::HCR_EL2_TRACE_VM_REGS
            } else {
                base
            },
            traced,
            pmu,
            mte,
            ram,
            vttbr,
            cntvoff: core::sync::atomic::AtomicU64::new(0),
            vcpus,
            stage2: Mutex::new(SharedStage2(stage2)),
            uart_ipa,
            uart: Mutex::new(VirtualPl011::new()),
            line: Mutex::new(heapless::Vec::new()),
            running: AtomicBool::new(true),
            stopping: AtomicBool::new(false),
            aborts: AtomicUsize::new(0),
            switches: core::sync::atomic::AtomicU64::new(0),
            undefs: Mutex::new(heapless::Vec::new()),
            debug: super::debug::VmDebug::new(),
            reset,
        }
    }

    /// Counts a guest abort outside anything mapped or emulated; true if it should be
    /// logged. A guest that faults in a loop (no vector table yet) must not flood the
    /// console: the first few are logged, then one line says the rest are only counted.
    pub fn note_abort(&self) -> bool {
        const LOGGED: usize = 8;
        let n = self.aborts.fetch_add(1, Ordering::Relaxed);
        match super::monitor::log_level() {
            0 => return false,
            2 => return true,
            _ => {}
        }
        if n == LOGGED {
            crate::println!("vm{}: more aborts: counted, no longer logged", self.id);
        }
        n < LOGGED
    }

    /// Logs an UNDEF injected for `what`, once per distinct text (a guest probing the
    /// same register in a loop logs one line), up to a bound.
    pub fn note_undef(&self, what: &str, _sysreg: bool, pc: u64) {
        const KINDS: usize = 32;
        match super::monitor::log_level() {
            0 => return,
            2 => {
                crate::println!("vm{}: UNDEF injected: {} (pc {:#x})", self.id, what, pc);
                return;
            }
            _ => {}
        }
        let mut seen = self.undefs.lock();
        let key = fnv1a(what.as_bytes());
        if seen.contains(&key) {
            return;
        }
        if seen.push(key).is_ok() {
            crate::println!("vm{}: UNDEF injected: {} (pc {:#x})", self.id, what, pc);
            if seen.len() == KINDS {
                crate::println!("vm{}: more kinds of UNDEF: no longer logged", self.id);
            }
        }
    }

    pub fn is_running(&self) -> bool {
        self.running.load(Ordering::Acquire)
    }

    /// Stops the VM for good: every vCPU goes off; their CPUs notice at their next
    /// exit (the scheduling tick guarantees one). Prints the reason once.
    pub fn power_off(&self, reason: &str) {
        if !self.stopping.swap(true, Ordering::AcqRel) {
            for v in &self.vcpus {
                v.set_state(RunState::Off);
                // A WFI it was blocked in no longer counts for its CPU's deadlines.
                super::vgic::unblock(self, v);
            }
            self.flush_output();
            super::passthrough::on_power_off(self);
            crate::println!(
                "vm{}: {} world switches in",
                self.id,
                self.switches.load(Ordering::Relaxed)
            );
            crate::println!("vm{}: powered off ({})", self.id, reason);
            // Only now may an idle CPU see no VM left and power the machine off.
            self.running.store(false, Ordering::Release);
            crate::arch::send_event();
        }
    }

    /// A byte the guest wrote to its UART. With one VM it goes straight out; with
    /// several, whole lines go out prefixed with the VM's name so they stay readable.
    pub fn output(&self, byte: u8) {
        if all().len() <= 1 {
            console::guest_write(&[byte]);
            return;
        }
        let mut line = self.line.lock();
        if byte != b'\r' {
            let _ = line.push(byte);
        }
        if byte == b'\n' || line.is_full() {
            self.emit(&mut line);
        }
    }

    /// Sends out a partial line of guest output (when it stops or restarts).
    pub(super) fn flush_output(&self) {
        let mut line = self.line.lock();
        if !line.is_empty() {
            let _ = line.push(b'\n');
            self.emit(&mut line);
        }
    }

    fn emit(&self, line: &mut heapless::Vec<u8, 160>) {
        let mut prefix = heapless::String::<16>::new();
        let _ = core::fmt::write(&mut prefix, format_args!("[vm{}] ", self.id));
        let mut out = heapless::Vec::<u8, 180>::new();
        let _ = out.extend_from_slice(prefix.as_bytes());
        let _ = out.extend_from_slice(line);
        console::guest_write(&out);
        line.clear();
    }
}

/// True while any VM runs.
pub fn any_running() -> bool {
    all().iter().any(|vm| vm.is_running())
}
