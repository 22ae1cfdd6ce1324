//! Taking and restoring VM snapshots at run time, and the in-memory named slots
//! (checkpoint and rollback within a boot). The format and its import rules are
//! portable (`crate::snapshot`); this module only gathers the live state, through
//! the one path that stops a VM with its registers saved (`control::pause_vm`).

use super::control::{self, ControlError};
use super::sched;
use super::vcpu::RunState;
use super::vm::Vm;
use crate::arch::{cache, trap_frame::TrapFrame};
use crate::cpreg::SysRegFile;
use crate::snapshot::{self, CpuState, Header, SnapshotError, PAGE};
use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::vec::Vec;
use spin::Mutex;

#[derive(Debug)]
pub enum Error {
    Control(ControlError),
    Snapshot(SnapshotError),
    /// The VM's vGIC refused the saved interrupt state.
    Gic,
    /// Not enough hypervisor memory to hold the snapshot (bytes needed).
    NoMemory(usize),
    NoSlot(String),
}

impl core::fmt::Display for Error {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Error::Control(e) => write!(f, "{e}"),
            Error::Snapshot(e) => write!(f, "{e}"),
            Error::Gic => write!(f, "the virtual GIC state does not fit this VM"),
            Error::NoMemory(n) => write!(
                f,
                "not enough hypervisor memory for a {} KiB snapshot",
                n / 1024
            ),
            Error::NoSlot(s) => write!(f, "no snapshot slot named '{s}' (see 'snapshot list')"),
        }
    }
}

/// Named in-memory snapshots: slot name -> (VM id, bytes).
static SLOTS: Mutex<BTreeMap<String, (usize, Vec<u8>)>> = Mutex::new(BTreeMap::new());

fn midr() -> u64 {
    use aarch64_cpu::registers::{Readable, MIDR_EL1};
    // The guest sees the host's MIDR (VPIDR_EL2).
    MIDR_EL1.get()
}

/// Reads a guest page by IPA (zeros outside its RAM, which the format never asks).
fn read_page(vm: &Vm, ipa: u64, buf: &mut [u8; PAGE]) {
    match vm.ram.translate(crate::addr::Ipa(ipa)) {
        Some((pa, n)) if n >= PAGE as u64 => {
            // SAFETY: the page is this VM's RAM, identity-mapped at EL2, and the VM is
            // paused, so nothing writes it while it is copied.
            let src = unsafe { core::slice::from_raw_parts(pa.0 as *const u8, PAGE) };
            buf.copy_from_slice(src);
        }
        _ => buf.fill(0),
    }
}

fn is_zero_page(vm: &Vm, ipa: u64) -> bool {
    let mut b = [0u8; PAGE];
    read_page(vm, ipa, &mut b);
    snapshot::is_zero_page(&b)
}

/// Takes a snapshot of `vm` (paused for the duration, then resumed unless it was
/// already paused). `frame`: the caller's trap frame if it runs in an exit.
pub fn capture(vm: &Vm, frame: Option<&TrapFrame>) -> Result<Vec<u8>, Error> {
    let was_paused = control::is_paused(vm);
    control::pause_vm(vm, frame).map_err(Error::Control)?;
    let result = capture_paused(vm);
    if !was_paused {
        control::resume_vm(vm);
    }
    result
}

fn capture_paused(vm: &Vm) -> Result<Vec<u8>, Error> {
    let header = Header {
        version: snapshot::VERSION,
        midr: midr(),
        vcpus: vm.vcpus.len() as u32,
        reg_encoding: snapshot::REG_ENCODING_KVM,
        ram_ipa: vm.ram.ipa.start.0,
        ram_size: vm.ram.ipa.size,
        cntvoff: 0,
    };
    let cpus: Vec<CpuState> = vm
        .vcpus
        .iter()
        .map(|v| {
            let ctx = v.ctx.lock();
            CpuState {
                powered_on: v.state() != RunState::Off,
                x: ctx.frame.x,
                pc: ctx.frame.elr,
                pstate: ctx.frame.spsr,
                regs: ctx.sysregs.export().collect(),
                q: ctx.fp.q,
                fpsr: ctx.fp.fpsr,
                fpcr: ctx.fp.fpcr,
            }
        })
        .collect();
    let gic = super::vgic::export(vm);
    let pages = header.ram_size / PAGE as u64;
    let data_pages = (0..pages)
        .filter(|&p| !is_zero_page(vm, header.ram_ipa + p * PAGE as u64))
        .count() as u64;
    let size = snapshot::encoded_size(
        &cpus,
        gic.as_ref().map_or(0, |g| g.len()),
        data_pages,
        pages,
    );
    let mut out = Vec::new();
    out.try_reserve_exact(size)
        .map_err(|_| Error::NoMemory(size))?;
    snapshot::encode(
        &header,
        &cpus,
        gic.as_deref(),
        |ipa, b| read_page(vm, ipa, b),
        &mut out,
    );
    Ok(out)
}

/// Restores `vm` from `bytes`. Everything is validated before anything changes; on
/// an error the VM is as it was (and resumes if it was running).
pub fn restore(vm: &Vm, bytes: &[u8], frame: Option<&mut TrapFrame>) -> Result<(), Error> {
    let parsed = snapshot::decode(bytes).map_err(Error::Snapshot)?;
    let was_paused = control::is_paused(vm);
    control::pause_vm(vm, frame.as_deref()).map_err(Error::Control)?;
    let result = restore_paused(vm, &parsed);
    if result.is_ok() {
        // The vCPU this CPU was running (if it is one of this VM's) must resume
        // from the restored state, not from the registers of the interrupted exit.
        if let (Some(frame), Some((cur, _))) = (frame, sched::current()) {
            if cur.id == vm.id {
                sched::reload_current(frame);
            }
        }
    }
    if !was_paused {
        control::resume_vm(vm);
    }
    result
}

fn restore_paused(vm: &Vm, parsed: &snapshot::Parsed) -> Result<(), Error> {
    let current: Vec<SysRegFile> = vm
        .vcpus
        .iter()
        .map(|v| v.ctx.lock().sysregs.clone())
        .collect();
    let target = snapshot::Target {
        midr: midr(),
        ram_ipa: vm.ram.ipa.start.0,
        ram_size: vm.ram.ipa.size,
        sysregs: &current,
    };
    let files = snapshot::prepare_restore(parsed, &target).map_err(Error::Snapshot)?;
    // The vGIC validates before it changes anything: the last check.
    if let Some(gic) = parsed.gic {
        super::vgic::import(vm, gic).map_err(|_| Error::Gic)?;
    }
    // From here on nothing can fail.
    for ((v, cpu), file) in vm.vcpus.iter().zip(&parsed.cpus).zip(files) {
        let mut ctx = v.ctx.lock();
        ctx.frame.x = cpu.x;
        ctx.frame.elr = cpu.pc;
        ctx.frame.spsr = cpu.pstate;
        ctx.sysregs = file;
        ctx.fp.q = cpu.q;
        ctx.fp.fpsr = cpu.fpsr;
        ctx.fp.fpcr = cpu.fpcr;
        drop(ctx);
        v.set_state(if cpu.powered_on {
            RunState::Runnable
        } else {
            RunState::Off
        });
    }
    parsed.for_each_page(|ipa, page| {
        if let Some((pa, _)) = vm.ram.translate(crate::addr::Ipa(ipa)) {
            // SAFETY: the page is this VM's RAM and the VM is paused.
            let dst = unsafe { core::slice::from_raw_parts_mut(pa.0 as *mut u8, PAGE) };
            match page {
                Some(p) => dst.copy_from_slice(p),
                None => dst.fill(0),
            }
            cache::clean_inval_dcache(pa.0 as usize, PAGE);
        }
    });
    cache::invalidate_icache_all();
    // SAFETY: drops stale stage-1 translations of every VMID: the guest's page tables
    // in RAM may have changed under it.
    unsafe { core::arch::asm!("tlbi alle1is", "dsb ish", "isb", options(nostack)) };
    Ok(())
}

/// Saves a snapshot of `vm` in slot `name` (replacing one of that name).
pub fn save_slot(vm: &Vm, name: &str, frame: Option<&TrapFrame>) -> Result<usize, Error> {
    let bytes = capture(vm, frame)?;
    let n = bytes.len();
    SLOTS.lock().insert(name.into(), (vm.id, bytes));
    Ok(n)
}

/// Restores `vm` from slot `name`.
pub fn restore_slot(vm: &Vm, name: &str, frame: Option<&mut TrapFrame>) -> Result<(), Error> {
    let slots = SLOTS.lock();
    let (_, bytes) = slots.get(name).ok_or_else(|| Error::NoSlot(name.into()))?;
    restore(vm, bytes, frame)
}

/// (name, VM id, size in bytes) of every slot.
pub fn list() -> Vec<(String, usize, usize)> {
    SLOTS
        .lock()
        .iter()
        .map(|(k, (vm, b))| (k.clone(), *vm, b.len()))
        .collect()
}
