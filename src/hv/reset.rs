//! Restarting a VM: PSCI `SYSTEM_RESET`/`SYSTEM_RESET2` from its guest, or
//! `reset vmN` at the console. The VM boots again as it first booted: its RAM
//! gets its original kernel, initrd and device tree back (`crate::reboot::Reload`,
//! kept at boot), its vCPUs their reset values from the cpreg table (vCPU 0 at
//! the kernel's entry, the others off), its virtual GIC and emulated UART their
//! reset state. The rest of its RAM keeps what it held, as on a warm reset of a
//! board or QEMU's `system_reset`. Passed-through devices are not reset.
//!
//! **Where it runs.** A guest's request only marks the restart pending and asks
//! every vCPU to stop (`control::request_pause`); CPU 0 carries it out from the
//! console's poll ([`service`]), through the one path that stops a VM with its
//! state saved (`control::pause_vm`). CPU 0 is also where the console, GDB and
//! snapshots run, so none of them ever sees a VM half restarted, and while a
//! restart is pending nothing resumes the VM (`control::resume_vm` waits for it).
//!
//! **Reset loops.** A VM that resets in a loop is slowed down, never allowed to
//! keep the machine busy: after `reboot::BURST` restarts within [`WINDOW_S`]
//! seconds the next waits, with one message, until the window allows it; the VM
//! stays stopped meanwhile and everything else goes on. A person's `reset vmN`
//! is not limited.
//!
//! **GDB.** The console's `reset vmN` (and GDB's `monitor reset vmN`) is refused
//! while GDB debugs the VM. A guest that resets itself while GDB debugs it is
//! restarted and left stopped at its entry, reported to GDB as a stop (SIGTRAP);
//! software breakpoints inside the reloaded images are gone from memory.

use super::control;
use super::vcpu::RunState;
use super::vm::{self, Vm};
use crate::arch::{cache, timer, trap_frame::TrapFrame};
use crate::println;
use crate::reboot::{Reload, BURST};
use alloc::string::String;
use core::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use spin::Mutex;

/// The rate limiter's window, in seconds: at most `reboot::BURST` restarts of a
/// VM within it.
pub const WINDOW_S: u64 = 10;

/// Why a VM restarts (what the console prints).
#[derive(Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Why {
    SystemReset = 1,
    SystemReset2 = 2,
    Console = 3,
}

impl Why {
    fn from_u8(v: u8) -> Option<Self> {
        match v {
            1 => Some(Self::SystemReset),
            2 => Some(Self::SystemReset2),
            3 => Some(Self::Console),
            _ => None,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Self::SystemReset => "system-reset",
            Self::SystemReset2 => "system-reset2",
            Self::Console => "reset at the console",
        }
    }
}

/// A VM's restart state.
pub struct VmReset {
    /// What to reload; `Err` (with the reason, printed at boot) if the VM
    /// cannot be restarted: a reset then powers it off.
    reload: Result<Reload, String>,
    /// A restart asked for and not done yet (a `Why`, 0: none).
    pending: AtomicU8,
    limiter: Mutex<crate::reboot::Limiter>,
    /// The limiter's message for the pending restart was printed.
    held: AtomicBool,
    /// Restarts done.
    pub count: AtomicU64,
}

impl VmReset {
    pub fn new(reload: Result<Reload, String>) -> Self {
        Self {
            reload,
            pending: AtomicU8::new(0),
            limiter: Mutex::new(crate::reboot::Limiter::new()),
            held: AtomicBool::new(false),
            count: AtomicU64::new(0),
        }
    }

    /// The kept originals a restart copies back (kernel, then initrd); none for
    /// a VM that cannot be restarted. Snapshots refer to them (pages as booted).
    pub fn originals(&self) -> &[crate::reboot::Piece] {
        self.reload.as_ref().map_or(&[], |r| &r.pieces)
    }

    /// Bytes of hypervisor memory kept for restarts beyond what boot keeps
    /// anyway: the guest device tree.
    pub fn kept_bytes(&self) -> usize {
        self.reload.as_ref().map_or(0, |r| r.dtb.len())
    }
}

/// Whether a restart of `vm` is pending (nothing may resume it meanwhile).
pub fn is_pending(vm: &Vm) -> bool {
    vm.reset.pending.load(Ordering::Acquire) != 0
}

/// The guest asked to be reset (PSCI, on any CPU, in the caller's exit): every
/// vCPU is asked to stop, and CPU 0 restarts the VM ([`service`]).
pub fn request(vm: &Vm, why: Why) {
    if vm
        .reset
        .pending
        .compare_exchange(0, why as u8, Ordering::AcqRel, Ordering::Acquire)
        .is_ok()
    {
        control::request_pause(vm);
    }
}

/// CPU 0, from the console's poll: carries out the restarts guests asked for,
/// as the rate limiter allows. `frame`: the exit CPU 0 is handling, if any.
pub fn service(mut frame: Option<&mut TrapFrame>) {
    for vm in vm::all() {
        let Some(why) = Why::from_u8(vm.reset.pending.load(Ordering::Acquire)) else {
            continue;
        };
        let now = timer::now();
        let window = timer::frequency() * WINDOW_S;
        let wait = vm.reset.limiter.lock().next_allowed(now, window);
        if let Some(at) = wait {
            if !vm.reset.held.swap(true, Ordering::AcqRel) {
                println!(
                    "vm{}: it reset {BURST} times within {WINDOW_S} s: a reset loop; the next restart waits {} ms (the VM stays stopped until then)",
                    vm.id,
                    (at - now) * 1000 / timer::frequency().max(1)
                );
            }
            continue;
        }
        vm.reset.limiter.lock().record(now);
        if let Err(e) = restart(vm, frame.as_deref_mut(), why, true) {
            println!("vm{}: cannot restart: {e}", vm.id);
        }
    }
}

/// The console's `reset vmN`: restarts the VM now. A VM that was paused stays
/// paused. Refused while GDB debugs it.
pub fn from_console(vm: &Vm, frame: Option<&mut TrapFrame>) -> Result<(), String> {
    if !vm.is_running() {
        return Err(alloc::format!(
            "vm{} is off: a powered-off VM is not restarted",
            vm.id
        ));
    }
    if vm.debug.is_attached() {
        return Err(alloc::format!(
            "GDB is debugging vm{}: detach it first (a reset would pull the VM from under it)",
            vm.id
        ));
    }
    // A restart the guest asked for and the limiter holds is done now instead.
    let held = is_pending(vm);
    let resume = held || !control::is_paused(vm);
    vm.reset
        .pending
        .store(Why::Console as u8, Ordering::Release);
    restart(vm, frame, Why::Console, resume)
}

/// Restarts `vm` (see the module docs); `resume`: let it run afterwards.
fn restart(vm: &Vm, frame: Option<&mut TrapFrame>, why: Why, resume: bool) -> Result<(), String> {
    let r = &vm.reset;
    let done = |r: &VmReset| {
        r.pending.store(0, Ordering::Release);
        r.held.store(false, Ordering::Release);
    };
    if !vm.is_running() {
        done(r);
        return Ok(());
    }
    let reload = match &r.reload {
        Ok(reload) => reload,
        Err(e) => {
            done(r);
            let reason = alloc::format!("{}: it cannot be restarted: {e}", why.name());
            vm.power_off(&reason);
            return Ok(());
        }
    };
    if let Err(e) = control::pause_vm(vm, frame.as_deref()) {
        // A CPU that does not stop its vCPU is stuck: the VM stays stopped.
        done(r);
        return Err(alloc::format!("{e}"));
    }
    vm.flush_output();
    // RAM: the originals back where the first boot put them.
    for p in &reload.pieces {
        copy_back(vm, p.to, p.from.start.0, p.from.size);
    }
    copy_dtb(vm, reload);
    cache::invalidate_icache_all();
    // SAFETY: drops stale stage-1 translations of every VMID: the guest's page
    // tables in RAM are gone with its previous life.
    unsafe { core::arch::asm!("tlbi alle1is", "dsb ish", "isb", options(nostack)) };
    // Interrupts: a fresh virtual GIC (hardware links kept); a passed-through
    // SPI the guest left active is ended, and the physical masks follow the
    // guest's (now all disabled).
    for intid in super::vgic::reset(vm) {
        super::gic::deactivate_spi(intid);
    }
    super::passthrough::dist_written(vm);
    *vm.uart.lock() = crate::vuart::VirtualPl011::new();
    // vCPUs: reset values from the cpreg table; vCPU 0 at the kernel's entry.
    for v in &vm.vcpus {
        let (entry, args) = if v.index == 0 {
            (reload.entry, reload.args)
        } else {
            (0, [0; 3])
        };
        v.reset(entry, args, reload.aarch32);
        v.sw_tvm.store(false, Ordering::Relaxed);
        v.caches_on.store(false, Ordering::Relaxed);
        v.set_state(if v.index == 0 {
            RunState::Runnable
        } else {
            RunState::Off
        });
    }
    // The vCPU this CPU was running (one of this VM's, paused in place) starts
    // from its reset state, not from the registers of the interrupted exit.
    if let (Some(frame), Some((cur, _))) = (frame, super::sched::current()) {
        if cur.id == vm.id {
            super::sched::reload_current(frame);
        }
    }
    let n = r.count.fetch_add(1, Ordering::Relaxed) + 1;
    println!(
        "vm{}: restarting ({}; restart {n}): {} KiB of kernel, initrd and device tree reloaded, vCPU 0 at {:#x}",
        vm.id,
        why.name(),
        reload.bytes().div_ceil(1024),
        reload.entry
    );
    let devices = super::passthrough::devices(vm).len();
    if devices > 0 {
        println!(
            "vm{}: its {devices} passed-through device(s) are not reset: they keep their state (their interrupts are masked until the guest enables them again)",
            vm.id
        );
    }
    done(r);
    if vm.debug.is_attached() && why != Why::Console {
        // GDB sees the VM stopped at its entry; it runs on at GDB's continue.
        vm.debug.record(0, crate::gdb::stub::SIGTRAP);
    } else if resume {
        control::resume_vm(vm);
    }
    Ok(())
}

/// Copies `size` bytes of host memory at `from` (an original the hypervisor keeps)
/// into the VM's RAM at `to`, cleaned to the point of coherency (the guest starts
/// with its MMU and caches off).
fn copy_back(vm: &Vm, to: crate::addr::Ipa, from: u64, size: u64) {
    super::guest_mem::touch_range(vm, to.0, size);
    let mut done = 0u64;
    while done < size {
        let Some((pa, contiguous)) = vm.ram.translate(to.add(done)) else {
            return;
        };
        let n = (size - done).min(contiguous);
        // SAFETY: `from..from + size` is an original outside every VM's RAM that
        // nothing writes after boot, identity-mapped (`Reload::check` at boot);
        // `pa..pa + n` is this VM's RAM, identity-mapped, and the VM is paused.
        unsafe {
            core::ptr::copy_nonoverlapping((from + done) as *const u8, pa.0 as *mut u8, n as usize)
        };
        cache::clean_inval_dcache(pa.0 as usize, n as usize);
        done += n;
    }
}

fn copy_dtb(vm: &Vm, reload: &Reload) {
    let mut done = 0usize;
    let dtb = &reload.dtb;
    super::guest_mem::touch_range(vm, reload.dtb_ipa.0, dtb.len() as u64);
    while done < dtb.len() {
        let Some((pa, contiguous)) = vm.ram.translate(reload.dtb_ipa.add(done as u64)) else {
            return;
        };
        let n = (dtb.len() - done).min(contiguous as usize);
        // SAFETY: `pa..pa + n` is this VM's RAM, identity-mapped; the VM is paused.
        unsafe { core::ptr::copy_nonoverlapping(dtb[done..].as_ptr(), pa.0 as *mut u8, n) };
        cache::clean_inval_dcache(pa.0 as usize, n);
        done += n;
    }
}
