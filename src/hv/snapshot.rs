//! Taking and restoring VM snapshots at run time, and the in-memory named slots
//! (checkpoint and rollback within a boot). The format and its import rules are
//! portable (`crate::snapshot`); this module only gathers the live state, through
//! the one path that stops a VM with its registers saved (`control::pause_vm`).
//!
//! Slots live in the snapshot pool, RAM reserved at boot (`hv.snapshot_pool=SIZE`)
//! and never given to a guest, so a VM of any size can be checkpointed in memory:
//! a save writes the snapshot frame by frame straight into the pool as it reads
//! guest RAM. Without a pool, slots are kept in the heap (small VMs only).
//!
//! Time: a snapshot records the VM's virtual count when it was taken, and a restore
//! sets the VM's counter offset so that count goes on from there, moving the
//! physical timer's compare values along ([`crate::vcounter`]).
//!
//! A streamed save (`send_stream`, over the debug line) spends CPU time to send
//! fewer bytes, since the line sets its pace: data pages compressed, and pages
//! inside the VM's kept boot images (`reset::VmReset::originals`) as booted or as
//! their difference from them; the receiving side checks it has the same images
//! before it changes anything. Slots and the hex path stay self-contained.

use super::control::{self, ControlError};
use super::sched;
use super::vcpu::RunState;
use super::vm::Vm;
use crate::addr::{PhysAddr, Range};
use crate::arch::{cache, trap_frame::TrapFrame};
use crate::cpreg::{Reg, SysRegFile};
use crate::snapshot::pool::{self, PoolFull, Slot, Slots};
use crate::snapshot::{self, CpuState, Encoder, Header, SnapshotError, PAGE};
use crate::vcounter;
use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::vec::Vec;
use core::sync::atomic::Ordering;
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
    /// The pool (or, without one, the heap) cannot hold the snapshot.
    Full(PoolFull),
    /// A streamed transfer failed (what happened, and what became of the VM).
    Transfer(String),
    /// Allocation tags (this many pages) for a VM not offered MTE.
    Tags(u64),
    /// Pages as booted from a boot image this VM was not booted with (`true`),
    /// or a boot image of this VM the snapshot's VM did not have (`false`).
    BootImage(snapshot::BootImage, bool),
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
            Error::Full(e) => write!(f, "{e}"),
            Error::Transfer(e) => write!(f, "{e}"),
            Error::Tags(n) => write!(
                f,
                "the snapshot holds memory tags ({n} pages) and this VM has no memory tagging (hv.mte)"
            ),
            Error::BootImage(i, theirs) => write!(
                f,
                "{} a boot image at IPA {:#x} ({} bytes, CRC-32 {:08x}) that {} not booted with: restore it into a VM booted with the same kernel and initrd, or save it with --self-contained",
                if *theirs { "the snapshot refers to" } else { "this VM has" },
                i.ipa,
                i.size,
                i.crc,
                if *theirs { "this VM was" } else { "the snapshot's VM was" }
            ),
        }
    }
}

/// Named in-memory snapshots: in the pool (its physical base and slots), or,
/// without a pool, in the heap (slot name -> (VM id, bytes)).
struct Store {
    base: u64,
    pool: Slots,
    heap: BTreeMap<String, (usize, Vec<u8>)>,
}

static STORE: Mutex<Store> = Mutex::new(Store {
    base: 0,
    pool: Slots::new(),
    heap: BTreeMap::new(),
});

/// Reserves the snapshot pool that `hv.snapshot_pool=SIZE` (in the hypervisor's
/// boot arguments) asks for, out of the free RAM that guests are planned from:
/// adds it to `taken`. Called once at boot, before guest RAM is planned.
pub fn reserve_pool(
    bootargs: Option<&str>,
    ram: &[Range<PhysAddr>],
    taken: &mut Vec<Range<PhysAddr>>,
) {
    let Some(value) = bootargs.and_then(|a| {
        a.split_ascii_whitespace()
            .find_map(|w| w.strip_prefix("hv.snapshot_pool="))
    }) else {
        return;
    };
    let Some(size) = pool::parse_size(value) else {
        crate::println!(
            "hv: ignoring hv.snapshot_pool={value}: give a size in bytes, or with K, M or G (e.g. 512M)"
        );
        return;
    };
    if size == 0 {
        return;
    }
    let free = crate::memplan::free_ranges(ram, taken);
    let Some(r) = pool::place(&free, size) else {
        let largest = free.iter().map(|r| r.size).max().unwrap_or(0);
        crate::println!(
            "hv: no snapshot pool: hv.snapshot_pool={value} does not fit the free RAM ({} MiB in one piece at most)",
            largest >> 20
        );
        return;
    };
    taken.push(r);
    let mut st = STORE.lock();
    st.base = r.start.0;
    st.pool.size = r.size;
    crate::println!(
        "hv: snapshot pool: {} MiB at {:#x} (not given to guests)",
        r.size >> 20,
        r.start.0
    );
}

/// The pool's bytes from `offset`, `len` long.
///
/// # Safety
/// `offset + len` is within the pool, and no one else uses those bytes while the
/// slice lives (the caller holds the store's lock).
unsafe fn pool_bytes<'a>(base: u64, offset: u64, len: u64) -> &'a mut [u8] {
    // SAFETY: the pool is RAM reserved at boot for this alone, identity-mapped at
    // EL2 as normal memory; the caller keeps within it and serialises access.
    unsafe { core::slice::from_raw_parts_mut((base + offset) as *mut u8, len as usize) }
}

fn midr() -> u64 {
    use aarch64_cpu::registers::{Readable, MIDR_EL1};
    // The guest sees the host's MIDR (VPIDR_EL2).
    MIDR_EL1.get()
}

/// Reads a guest page by IPA (zeros outside its RAM, which the format never asks).
/// The encoder asks only for touched pages: it is told which are untouched
/// ([`with_encoder_for`]), whose memory may hold anything and reads as zeros.
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

/// The pages of a paused VM offered MTE whose allocation tags are not all zero
/// (indexes from its RAM base): what its snapshot carries in tag frames. Empty
/// for a VM without MTE.
fn tagged_pages(vm: &Vm) -> Vec<u64> {
    let mut pages = Vec::new();
    if !vm.mte {
        return pages;
    }
    let total = vm.ram.ipa.size / PAGE as u64;
    let mut index = 0u64;
    while index < total {
        let ipa = vm.ram.ipa.start.0 + index * PAGE as u64;
        // Untouched RAM has no tags (they are cleared when it is first touched).
        let untouched = super::guest_mem::untouched(vm, ipa) / PAGE as u64;
        if untouched > 0 {
            index += untouched;
            continue;
        }
        if let Some((pa, _)) = vm.ram.translate(crate::addr::Ipa(ipa)) {
            if crate::arch::mte::page_tagged(pa.0 as usize) {
                pages.push(index);
            }
        }
        index += 1;
    }
    pages
}

/// Reads the allocation tags of a guest page by IPA (zeros outside its RAM).
fn read_tags(vm: &Vm, ipa: u64, buf: &mut [u8; snapshot::stream::TAG_BYTES]) {
    match vm.ram.translate(crate::addr::Ipa(ipa)) {
        Some((pa, n)) if vm.mte && n >= PAGE as u64 => {
            crate::arch::mte::read_page(pa.0 as usize, buf)
        }
        _ => buf.fill(0),
    }
}

/// Sets the allocation tags of a guest page of a paused VM offered MTE.
fn write_tags(vm: &Vm, ipa: u64, tags: &[u8; snapshot::stream::TAG_BYTES]) {
    if let Some((pa, n)) = vm.ram.translate(crate::addr::Ipa(ipa)) {
        if vm.mte && n >= PAGE as u64 {
            crate::arch::mte::write_page(pa.0 as usize, tags);
        }
    }
}

/// Tag frames must come to a VM that can hold them.
fn check_tags(vm: &Vm, tagged: u64) -> Result<(), Error> {
    if tagged > 0 && !vm.mte {
        return Err(Error::Tags(tagged));
    }
    Ok(())
}

/// The VM's kept boot images (kernel, initrd) as host memory, with where they
/// lie in its RAM.
fn originals(vm: &Vm) -> impl Iterator<Item = (u64, &'static [u8])> + '_ {
    vm.reset
        .originals()
        .iter()
        .filter(|p| p.from.size > 0)
        .map(|p| {
            // SAFETY: an original is host memory outside every VM's RAM that nothing
            // writes after boot, identity-mapped (`Reload::check` at boot).
            let bytes = unsafe {
                core::slice::from_raw_parts(p.from.start.0 as *const u8, p.from.size as usize)
            };
            (p.to.0, bytes)
        })
}

/// The bytes of the boot image at `ipa` (a whole page inside one), if any.
fn original_page(vm: &Vm, ipa: u64) -> Option<&'static [u8]> {
    originals(vm).find_map(|(to, bytes)| {
        let off = usize::try_from(ipa.checked_sub(to)?).ok()?;
        bytes.get(off..off.checked_add(PAGE)?)
    })
}

/// The VM's boot images as a snapshot names them (CRC-32 of each: a second or so
/// under QEMU for a distribution kernel).
fn boot_images(vm: &Vm) -> Vec<snapshot::BootImage> {
    originals(vm)
        .map(|(ipa, bytes)| snapshot::BootImage {
            ipa,
            size: bytes.len() as u64,
            crc: crate::crc32::hash(bytes),
        })
        .collect()
}

/// Pages as booted must come to a VM booted with the same images (all of them:
/// a page inside one of its images that the snapshot's list lacks would be
/// taken for a difference from it).
fn check_boot_images(vm: &Vm, images: &[snapshot::BootImage]) -> Result<(), Error> {
    if let Some((ipa, bytes)) = originals(vm).find(|(ipa, _)| !images.iter().any(|i| i.ipa == *ipa))
    {
        let mine = snapshot::BootImage {
            ipa,
            size: bytes.len() as u64,
            crc: crate::crc32::hash(bytes),
        };
        return Err(Error::BootImage(mine, false));
    }
    for i in images {
        let same = originals(vm).any(|(ipa, bytes)| {
            ipa == i.ipa && bytes.len() as u64 == i.size && crate::crc32::hash(bytes) == i.crc
        });
        if !same {
            return Err(Error::BootImage(*i, true));
        }
    }
    Ok(())
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

/// The paused VM's header, vCPUs and vGIC state: everything but RAM. The header
/// holds the VM's virtual count now, and each CNTP_CVAL_EL0 is on that count's
/// time line ([`crate::vcounter`]).
fn prelude(vm: &Vm) -> (Header, Vec<CpuState>, Option<Vec<u8>>) {
    let off = vm.cntvoff.load(Ordering::Acquire);
    let cntp_cval = Reg::CNTP_CVAL_EL0.kvm_index();
    let header = Header {
        version: snapshot::VERSION,
        midr: midr(),
        vcpus: vm.vcpus.len() as u32,
        reg_encoding: snapshot::REG_ENCODING_KVM,
        ram_ipa: vm.ram.ipa.start.0,
        ram_size: vm.ram.ipa.size,
        cntvct: vcounter::saved_count(crate::arch::timer::now(), off),
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
                regs: ctx
                    .sysregs
                    .export()
                    .map(|(i, v)| {
                        if i == cntp_cval {
                            (i, vcounter::cntp_cval_to_snapshot(v, off))
                        } else {
                            (i, v)
                        }
                    })
                    .collect(),
                q: ctx.fp.q,
                fpsr: ctx.fp.fpsr,
                fpcr: ctx.fp.fpcr,
            }
        })
        .collect();
    let gic = super::vgic::export(vm);
    (header, cpus, gic)
}

/// Encodes the paused VM frame by frame, handing each frame's bytes to `sink`
/// (after the magic); stops at the first error `sink` returns.
fn encode_paused<E>(vm: &Vm, mut sink: impl FnMut(&[u8]) -> Result<(), E>) -> Result<(), E> {
    with_encoder(vm, |enc| {
        sink(&snapshot::MAGIC)?;
        let mut buf = Vec::new();
        let mut read = |ipa, b: &mut [u8; PAGE]| read_page(vm, ipa, b);
        let mut seq = 0;
        while enc.frames().is_none() {
            buf.clear();
            enc.frame(seq, &mut read, &mut buf);
            sink(&buf)?;
            seq += 1;
        }
        Ok(())
    })
}

/// Runs `f` with an encoder of the paused VM: its header, vCPUs and vGIC state,
/// and for a VM with MTE the allocation tags of its tagged pages.
fn with_encoder<R>(vm: &Vm, f: impl FnOnce(&mut Encoder) -> R) -> R {
    with_encoder_for(vm, None, f)
}

/// As [`with_encoder`]; `line`: for a serial line, where bytes are what costs:
/// data pages compressed, and pages that still hold the VM's boot images sent
/// as such (unless `self_contained`).
fn with_line_encoder<R>(vm: &Vm, self_contained: bool, f: impl FnOnce(&mut Encoder) -> R) -> R {
    let images = if self_contained {
        Vec::new()
    } else {
        boot_images(vm)
    };
    let original = |ipa| original_page(vm, ipa);
    let booted = snapshot::Booted {
        images: &images,
        original: &original,
    };
    with_encoder_for(vm, Some(booted), f)
}

fn with_encoder_for<R>(
    vm: &Vm,
    line: Option<snapshot::Booted<'_>>,
    f: impl FnOnce(&mut Encoder) -> R,
) -> R {
    let (header, cpus, gic) = prelude(vm);
    let tagged = tagged_pages(vm);
    let read_tags = |ipa, b: &mut [u8; snapshot::stream::TAG_BYTES]| read_tags(vm, ipa, b);
    let known_zero = |ipa| super::guest_mem::untouched(vm, ipa);
    let mut enc = Encoder::new(&header, &cpus, gic.as_deref()).with_known_zero(&known_zero);
    if vm.mte {
        enc = enc.with_tags(snapshot::stream::Tags {
            pages: &tagged,
            read: &read_tags,
        });
    }
    if let Some(booted) = line {
        enc = enc.with_compression().with_booted(booted);
    }
    f(&mut enc)
}

fn capture_paused(vm: &Vm) -> Result<Vec<u8>, Error> {
    let mut out: Vec<u8> = Vec::new();
    encode_paused(vm, |b| {
        out.try_reserve(b.len())
            .map_err(|_| Error::NoMemory(out.len() + b.len()))?;
        out.extend_from_slice(b);
        Ok(())
    })?;
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

/// Copies of the VM's register files, for an import to work on.
fn current_sysregs(vm: &Vm) -> Vec<SysRegFile> {
    vm.vcpus
        .iter()
        .map(|v| v.ctx.lock().sysregs.clone())
        .collect()
}

/// What a snapshot must match to restore into `vm`.
fn target<'r>(vm: &Vm, current: &'r [SysRegFile]) -> snapshot::Target<'r> {
    snapshot::Target {
        midr: midr(),
        ram_ipa: vm.ram.ipa.start.0,
        ram_size: vm.ram.ipa.size,
        sysregs: current,
    }
}

fn restore_paused(vm: &Vm, parsed: &snapshot::Parsed) -> Result<(), Error> {
    // A snapshot that refers to boot images needs exactly this VM's.
    if !parsed.depends.is_empty() {
        check_boot_images(vm, &parsed.depends)?;
    }
    let current = current_sysregs(vm);
    let target = target(vm, &current);
    let files = snapshot::prepare_restore(parsed, &target).map_err(Error::Snapshot)?;
    check_tags(vm, parsed.tagged_pages())?;
    // The vGIC validates before it changes anything: the last check.
    if let Some(gic) = parsed.gic {
        super::vgic::import(vm, gic).map_err(|_| Error::Gic)?;
    }
    // From here on nothing can fail.
    apply_cpus(vm, &parsed.cpus, files);
    let mut ram = RamWriter::new(vm);
    parsed.for_each_page(|ipa, page| ram.write(ipa, page));
    let mut page = [0u8; PAGE];
    parsed.for_each_booted(|ipa, delta| match (delta, original_page(vm, ipa)) {
        (None, Some(o)) => ram.write(ipa, Some(o)),
        (Some(d), Some(o)) => {
            for ((p, x), y) in page.iter_mut().zip(d).zip(o) {
                *p = x ^ y;
            }
            ram.write(ipa, Some(&page));
        }
        // Checked above: every such page is inside one of this VM's images.
        _ => {}
    });
    parsed.for_each_tagged(|ipa, tags| write_tags(vm, ipa, tags));
    finish_ram();
    set_counter(vm, parsed.header.cntvct);
    Ok(())
}

/// The last step of a restore into the paused `vm`, its vCPUs' registers installed:
/// its virtual count goes on from `saved` (the snapshot's, [`Header::cntvct`]), and
/// its vCPUs' CNTP_CVAL_EL0 move from the snapshot's time line onto the machine's
/// counter, each as far ahead of the VM's count as when it was saved. Every vCPU
/// shares the offset, set while none of them runs.
fn set_counter(vm: &Vm, saved: u64) {
    let off = vcounter::offset_for(crate::arch::timer::now(), saved);
    for v in &vm.vcpus {
        let mut ctx = v.ctx.lock();
        if let Ok(cval) = ctx.sysregs.raw_read(Reg::CNTP_CVAL_EL0) {
            let cval = vcounter::cntp_cval_from_snapshot(cval, off);
            // A state-owning register: the raw write cannot fail.
            let _ = ctx.sysregs.raw_write(Reg::CNTP_CVAL_EL0, cval);
        }
    }
    vm.cntvoff.store(off, Ordering::Release);
}

/// Installs checked vCPU states and register files.
fn apply_cpus(vm: &Vm, cpus: &[CpuState], files: Vec<SysRegFile>) {
    for ((v, cpu), file) in vm.vcpus.iter().zip(cpus).zip(files) {
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
}

/// Writes guest pages of a paused VM, one at a time, in any order.
struct RamWriter<'v> {
    vm: &'v Vm,
    /// RAM below this IPA, from the last page looked up, is untouched: a zero
    /// page there needs neither a write nor a read.
    untouched: core::ops::Range<u64>,
}

impl<'v> RamWriter<'v> {
    fn new(vm: &'v Vm) -> Self {
        Self {
            vm,
            untouched: 0..0,
        }
    }

    /// Writes one guest page (`None`: zeros); a VM offered MTE also gets the
    /// page's tags cleared (a tag frame after the RAM sets them again).
    fn write(&mut self, ipa: u64, page: Option<&[u8]>) {
        let vm = self.vm;
        if page.is_none() {
            // Untouched RAM is zeros already (its tags too).
            if self.untouched.contains(&ipa) {
                return;
            }
            let n = super::guest_mem::untouched(vm, ipa);
            if n > 0 {
                self.untouched = ipa..ipa + n;
                return;
            }
        } else {
            // Data goes into touched RAM: a first touch zeroes the block.
            if self.untouched.contains(&ipa) {
                self.untouched = 0..0;
            }
            super::guest_mem::touch(vm, ipa);
        }
        let Some((pa, n)) = vm.ram.translate(crate::addr::Ipa(ipa)) else {
            return;
        };
        if n < PAGE as u64 {
            return;
        }
        if vm.mte {
            crate::arch::mte::clear_page(pa.0 as usize);
        }
        // SAFETY: the page is this VM's RAM, identity-mapped at EL2, and the VM is
        // paused.
        let dst = unsafe { core::slice::from_raw_parts_mut(pa.0 as *mut u8, PAGE) };
        // A page that already holds these bytes (most of a fresh VM's zero pages,
        // a kernel's text restored into a boot of the same kernel) is left alone:
        // reading it is cheaper than writing it and cleaning it to memory.
        match page {
            Some(p) if p.len() == PAGE => {
                if dst[..] == *p {
                    return;
                }
                dst.copy_from_slice(p)
            }
            _ => {
                if <&[u8; PAGE]>::try_from(&dst[..]).is_ok_and(snapshot::stream::is_zero) {
                    return;
                }
                dst.fill(0)
            }
        }
        cache::clean_inval_dcache(pa.0 as usize, PAGE);
    }
}

/// After a restore wrote guest RAM: no stale instructions or translations.
fn finish_ram() {
    cache::invalidate_icache_all();
    // SAFETY: drops stale stage-1 translations of every VMID: the guest's page tables
    // in RAM may have changed under it.
    unsafe { core::arch::asm!("tlbi alle1is", "dsb ish", "isb", options(nostack)) };
}

/// Saves a snapshot of `vm` in slot `name` (replacing one of that name): into the
/// pool if there is one, else into the heap. Returns its size in bytes.
pub fn save_slot(vm: &Vm, name: &str, frame: Option<&TrapFrame>) -> Result<usize, Error> {
    let mut st = STORE.lock();
    if st.pool.size == 0 {
        drop(st);
        let bytes = capture(vm, frame).map_err(|e| match e {
            Error::NoMemory(_) => Error::Full(Slots::new().full(None)),
            e => e,
        })?;
        let n = bytes.len();
        STORE.lock().heap.insert(name.into(), (vm.id, bytes));
        return Ok(n);
    }
    let was_paused = control::is_paused(vm);
    control::pause_vm(vm, frame).map_err(Error::Control)?;
    let mut result = save_paused(&mut st, vm, name);
    if result.is_err() && st.pool.remove(name).is_some() {
        // The slot being replaced may be what filled the pool: the VM is still
        // paused, so the same snapshot is written again in the room it leaves.
        result = save_paused(&mut st, vm, name);
    }
    if !was_paused {
        control::resume_vm(vm);
    }
    result
}

/// Writes the paused VM into the pool's largest free gap and records the slot.
fn save_paused(st: &mut Store, vm: &Vm, name: &str) -> Result<usize, Error> {
    let (offset, room) = st.pool.largest_gap();
    // SAFETY: the gap is inside the pool and no slot uses it; the store is locked.
    let dst = unsafe { pool_bytes(st.base, offset, room) };
    let mut at = 0usize;
    encode_paused(vm, |b| {
        let end = at + b.len();
        if end > dst.len() {
            return Err(Error::Full(st.pool.full(Some(end as u64))));
        }
        dst[at..end].copy_from_slice(b);
        at = end;
        Ok(())
    })?;
    st.pool.insert(
        name,
        Slot {
            vm: vm.id,
            offset,
            len: at as u64,
        },
    );
    Ok(at)
}

/// Restores `vm` from slot `name`.
pub fn restore_slot(vm: &Vm, name: &str, frame: Option<&mut TrapFrame>) -> Result<(), Error> {
    let st = STORE.lock();
    if let Some(slot) = st.pool.get(name) {
        // SAFETY: the slot is inside the pool and the store stays locked while the
        // bytes are read.
        let bytes = unsafe { pool_bytes(st.base, slot.offset, slot.len) };
        return restore(vm, bytes, frame);
    }
    let (_, bytes) = st
        .heap
        .get(name)
        .ok_or_else(|| Error::NoSlot(name.into()))?;
    restore(vm, bytes, frame)
}

/// Frees slot `name`.
pub fn delete_slot(name: &str) -> Result<(), Error> {
    let mut st = STORE.lock();
    if st.pool.remove(name).is_some() || st.heap.remove(name).is_some() {
        Ok(())
    } else {
        Err(Error::NoSlot(name.into()))
    }
}

/// (name, VM id, size in bytes) of every slot.
pub fn list() -> Vec<(String, usize, usize)> {
    let st = STORE.lock();
    st.pool
        .iter()
        .map(|(k, s)| (String::from(k), s.vm, s.len as usize))
        .chain(st.heap.iter().map(|(k, (vm, b))| (k.clone(), *vm, b.len())))
        .collect()
}

/// The pool's size and the bytes its slots use (0, 0 without a pool).
pub fn pool_usage() -> (u64, u64) {
    let st = STORE.lock();
    (st.pool.size, st.pool.used())
}

/// What a streamed transfer moved.
#[derive(Clone, Copy)]
pub struct Stats {
    /// Bytes on the line (frames), RAM pages, pages that carried data.
    pub bytes: u64,
    pub pages: u64,
    pub data_pages: u64,
    /// Counter ticks from the first frame to the last acknowledgement.
    pub ticks: u64,
    /// Frames sent again (damaged on the line, or after a silence).
    pub repeated: u64,
}

impl core::fmt::Display for Stats {
    /// "N MiB of RAM (P pages, D with data) ... in T ms, R KiB/s of RAM": the
    /// direction-specific words around it are the caller's.
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(
            f,
            "{} MiB of RAM ({} pages, {} with data)",
            (self.pages * PAGE as u64) >> 20,
            self.pages,
            self.data_pages
        )
    }
}

impl Stats {
    /// The transfer's size on the line, time and rate: "K KiB in T ms, R KiB/s of RAM".
    pub fn line(&self) -> impl core::fmt::Display {
        struct Line(Stats);
        impl core::fmt::Display for Line {
            fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
                let s = &self.0;
                write!(
                    f,
                    "{} KiB in {} ms, {} KiB/s of RAM",
                    s.bytes.div_ceil(1024),
                    s.ticks * 1000 / crate::arch::timer::frequency().max(1),
                    s.kib_per_s()
                )
            }
        }
        Line(*self)
    }

    /// RAM moved per second, in KiB.
    pub fn kib_per_s(&self) -> u64 {
        let hz = crate::arch::timer::frequency().max(1);
        let ram = self.pages * PAGE as u64;
        (ram as u128 * hz as u128 / self.ticks.max(1) as u128 / 1024) as u64
    }
}

/// How long the other side may be silent before frames are sent again, and
/// before the transfer is given up as a dropped connection (seconds).
const RESEND_S: u64 = 1;
const GIVE_UP_S: u64 = 10;

/// A progress line on the console (between frames), at most once a second.
struct Progress {
    vm: usize,
    what: &'static str,
    start: u64,
    last: u64,
    total_pages: u64,
}

impl Progress {
    fn new(vm: usize, what: &'static str, total_pages: u64) -> Self {
        let now = crate::arch::timer::now();
        Self {
            vm,
            what,
            start: now,
            last: now,
            total_pages,
        }
    }

    fn tick(&mut self, bytes: u64, pages: u64) {
        let now = crate::arch::timer::now();
        let hz = crate::arch::timer::frequency().max(1);
        if now - self.last < hz {
            return;
        }
        self.last = now;
        let kib_s =
            (pages * PAGE as u64) as u128 * hz as u128 / (now - self.start).max(1) as u128 / 1024;
        crate::println!(
            "\nhv: vm{}: {} {} of {} pages ({} MiB of RAM), {} KiB on the line, {} KiB/s of RAM",
            self.vm,
            self.what,
            pages,
            self.total_pages,
            (pages * PAGE as u64) >> 20,
            bytes / 1024,
            kib_s
        );
    }
}

/// Streams a snapshot of `vm` over the debug line: format 2, binary frames as
/// they are encoded from guest RAM, acknowledged by the host (`snapshot::link`).
/// The VM is paused for the transfer and resumed after it, whatever happens: a
/// dropped connection leaves it running as it was.
pub fn send_stream(
    vm: &Vm,
    frame: Option<&TrapFrame>,
    self_contained: bool,
) -> Result<Stats, Error> {
    use crate::snapshot::link::{MessageReader, Sender};
    let was_paused = control::is_paused(vm);
    control::pause_vm(vm, frame).map_err(Error::Control)?;
    let result = with_line_encoder(vm, self_contained, |enc| {
        let hz = crate::arch::timer::frequency().max(1);
        crate::println!("HVSNAP-STREAM 2 pages={}", enc.pages());
        super::console::debug_write_raw(&snapshot::MAGIC);
        // How many RAM frames there are is known when the encoder gets to the end.
        let mut tx = Sender::new(u64::from(u32::MAX));
        let mut msgs = MessageReader::new();
        let mut buf = Vec::new();
        let mut read = |ipa, b: &mut [u8; PAGE]| read_page(vm, ipa, b);
        let start = crate::arch::timer::now();
        let (mut heard, mut moved) = (start, start);
        let mut stats = Stats {
            bytes: snapshot::MAGIC.len() as u64,
            pages: 0,
            data_pages: 0,
            ticks: 0,
            repeated: 0,
        };
        let mut progress = Progress::new(vm.id, "sent", enc.pages());
        let mut sent = 0;
        while !tx.done() {
            while let Some(b) = super::console::debug_read() {
                if let Some((kind, n)) = msgs.push(b) {
                    heard = crate::arch::timer::now();
                    let before = tx.acked();
                    if !tx.on_message(kind, n) {
                        return Err(Error::Transfer("the host gave up the transfer".into()));
                    }
                    if tx.acked() > before {
                        moved = heard;
                    }
                }
            }
            if let Some(seq) = tx.next() {
                buf.clear();
                let data = enc.frame(seq, &mut read, &mut buf);
                if seq >= sent {
                    // Counted once, however often the frame is sent.
                    stats.data_pages += data;
                    sent = seq + 1;
                }
                if let Some(total) = enc.frames() {
                    tx.set_total(total);
                }
                super::console::debug_write_raw(&buf);
                // The line is slow (the write returns once the frame is out): the
                // host's silence is counted from the end of the last frame.
                heard = crate::arch::timer::now();
                stats.bytes += buf.len() as u64;
                progress.tick(stats.bytes, enc.pages_reached());
                continue;
            }
            let now = crate::arch::timer::now();
            if now - moved > GIVE_UP_S * hz {
                return Err(Error::Transfer(alloc::format!(
                    "no acknowledgement from the host for {GIVE_UP_S} s after {} frames ({} of {} pages sent): the connection dropped",
                    tx.acked(),
                    enc.pages_reached(),
                    enc.pages()
                )));
            }
            if now - heard > RESEND_S * hz {
                tx.on_silence();
                heard = now;
            }
            core::hint::spin_loop();
        }
        stats.ticks = crate::arch::timer::now() - start;
        stats.pages = enc.pages();
        stats.repeated = tx.repeated;
        Ok(stats)
    });
    if !was_paused {
        control::resume_vm(vm);
    }
    result
}

/// The pool slot a streamed restore is received into while it arrives (a name no
/// console command can give: slot names are single words).
const STAGING: &str = "(restore in progress)";

/// Without a snapshot pool (or with a full one), a streamed restore is kept in
/// the heap up to this size.
const STAGING_HEAP: usize = 2 << 20;

/// Where a streamed restore's frames wait: the pool's largest free extent
/// (reserved as a slot while it is used), or a buffer in the heap.
enum Room {
    Pool { base: u64, offset: u64, room: u64 },
    Heap(Vec<u8>),
}

/// A streamed restore's frames, kept until the stream is whole and then restored
/// at once, like a slot: the VM runs on while the frames arrive, and a transfer
/// cut anywhere leaves it as it was. A stream that outgrows the room is written
/// out as it arrives from then on (`receive_stream`).
struct Staging {
    room: Room,
    /// Bytes kept (pool), the frame being copied (pool).
    at: u64,
    frame: Vec<u8>,
}

impl Staging {
    /// The pool's largest free extent, reserved, or else room in the heap.
    fn reserve(vm: &Vm) -> Self {
        let mut st = STORE.lock();
        let (offset, room) = st.pool.largest_gap();
        let room = if room >= STAGING_HEAP as u64 {
            st.pool.insert(
                STAGING,
                Slot {
                    vm: vm.id,
                    offset,
                    len: room,
                },
            );
            Room::Pool {
                base: st.base,
                offset,
                room,
            }
        } else {
            Room::Heap(Vec::new())
        };
        drop(st);
        let mut s = Self {
            room,
            at: 0,
            frame: Vec::new(),
        };
        // Room for the magic is there: at least a heap's worth.
        let _ = s.append(&snapshot::MAGIC);
        s
    }

    /// The most this can keep, in bytes.
    fn capacity(&self) -> u64 {
        match &self.room {
            Room::Pool { room, .. } => *room,
            Room::Heap(_) => STAGING_HEAP as u64,
        }
    }

    /// What the console calls where the frames wait.
    fn place(&self) -> &'static str {
        match self.room {
            Room::Pool { .. } => "the snapshot pool",
            Room::Heap(_) => "hypervisor memory",
        }
    }

    /// Keeps `b`; false if it does not fit.
    fn append(&mut self, b: &[u8]) -> bool {
        let end = self.at + b.len() as u64;
        if end > self.capacity() {
            return false;
        }
        match &mut self.room {
            Room::Pool { base, offset, .. } => {
                // SAFETY: `at..end` is inside the extent this staging reserved as a
                // slot, which nothing else writes while the slot exists.
                let dst = unsafe { pool_bytes(*base, *offset + self.at, b.len() as u64) };
                dst.copy_from_slice(b);
            }
            Room::Heap(v) => {
                if v.try_reserve(b.len()).is_err() {
                    return false;
                }
                v.extend_from_slice(b);
            }
        }
        self.at = end;
        true
    }

    /// Keeps an accepted frame, as the sender framed it; false if it does not fit.
    fn push(&mut self, f: &snapshot::frame::Frame) -> bool {
        let mut buf = core::mem::take(&mut self.frame);
        buf.clear();
        snapshot::frame::write(&mut buf, f.kind, f.seq, f.payload);
        let ok = self.append(&buf);
        self.frame = buf;
        ok
    }

    /// The stream received so far: the magic, then every frame.
    fn bytes(&self) -> &[u8] {
        match &self.room {
            // SAFETY: the reserved extent's first `at` bytes, written by `append`.
            Room::Pool { base, offset, .. } => unsafe { pool_bytes(*base, *offset, self.at) },
            Room::Heap(v) => v,
        }
    }

    /// Writes the RAM and tags of the frames kept so far into the paused VM (the
    /// stream outgrew the room: from here on it is written as it arrives). They
    /// were checked as they arrived, so this cannot fail halfway.
    fn write_out(&self, vm: &Vm) -> Result<(), SnapshotError> {
        let bytes = self.bytes();
        let mut dec = snapshot::Decoder::new();
        let at = snapshot::MAGIC.len();
        let mut ram = RamWriter::new(vm);
        for f in snapshot::frame::split(bytes.get(at..).unwrap_or(&[]), at) {
            let (_, f) = f.map_err(SnapshotError::from)?;
            let item = dec.feed(f)?;
            item.for_each_page_from(
                |ipa| original_page(vm, ipa),
                |ipa, page| ram.write(ipa, page),
            );
            item.for_each_tagged(|ipa, tags| write_tags(vm, ipa, tags));
        }
        Ok(())
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        if matches!(self.room, Room::Pool { .. }) {
            STORE.lock().pool.remove(STAGING);
        }
    }
}

/// Receives a format-2 snapshot streamed by the host and restores `vm` from it.
/// The header, registers and vGIC state come first and are checked (the import
/// rules of the cpreg table, read back) before anything else.
///
/// The frames are kept as they arrive ([`Staging`]: in the snapshot pool's
/// largest free extent, or a little of the heap) while the VM runs on, and
/// restored at once when the end has arrived: a transfer that stops anywhere
/// leaves the VM as it was. A stream that outgrows that room is written out from
/// then on: the VM is paused, what was kept is written, and RAM pages are
/// written as their frames arrive, so a transfer that stops after that leaves
/// it paused (its RAM partly restored) for the restore to be tried again.
pub fn receive_stream(vm: &Vm, mut frame: Option<&mut TrapFrame>) -> Result<Stats, Error> {
    use crate::snapshot::link::{message, Receiver, Rx, ABORT};
    use crate::snapshot::Item;
    let hz = crate::arch::timer::frequency().max(1);
    let was_paused = control::is_paused(vm);
    let mut rx = Receiver::new();
    let mut dec = snapshot::Decoder::new();
    let mut cpus: Vec<CpuState> = Vec::new();
    let mut gic: Option<Vec<u8>> = None;
    let mut files: Option<Vec<SysRegFile>> = None;
    let mut bytes = 0u64;
    let mut progress = Progress::new(vm.id, "received", vm.ram.ipa.size / PAGE as u64);
    let mut staging = Some(Staging::reserve(vm));
    if let Some(st) = &staging {
        crate::println!(
            "hv: vm{}: receiving into {} (up to {} MiB): vm{} runs on until the snapshot is whole, then it is restored at once",
            vm.id,
            st.place(),
            st.capacity() >> 20,
            vm.id
        );
    }
    crate::println!("HVSNAP-READY 2");
    let start = crate::arch::timer::now();
    let mut ram = RamWriter::new(vm);
    // Whatever fails: tell the host to stop, and say what became of the VM.
    let fail = |e: Error, paused_by_us: bool| -> Error {
        super::console::debug_write_raw(&message(ABORT, 0));
        // The frames the host sent before it heard the abort (a window of up to
        // 8 frames, seconds at QEMU's pace) are not typing for the console.
        swallow_line(15);
        if paused_by_us {
            Error::Transfer(alloc::format!(
                "{e}; vm{} stays paused with its RAM partly restored: run the restore again",
                vm.id
            ))
        } else {
            e
        }
    };
    loop {
        let Some(b) = super::console::debug_read_wait(GIVE_UP_S * hz) else {
            let e = Error::Transfer(alloc::format!(
                "no data from the host for {GIVE_UP_S} s after {} of {} pages: the connection dropped",
                dec.pages().0,
                vm.ram.ipa.size / PAGE as u64
            ));
            return Err(fail(e, files.is_some() && staging.is_none()));
        };
        bytes += 1;
        match rx.push(b) {
            Rx::None => continue,
            Rx::Reply(m) => {
                super::console::debug_write_raw(&m);
                continue;
            }
            Rx::Frame => {}
        }
        let item = match dec.feed(rx.frame()) {
            Ok(item) => item,
            Err(e) => {
                let partly = files.is_some() && staging.is_none();
                return Err(fail(Error::Snapshot(e), partly));
            }
        };
        if staging.as_mut().is_some_and(|st| !st.push(&rx.frame())) {
            // Outgrown: pause, write out what was kept, and go on frame by frame.
            let st = staging.take();
            if let Some(st) = st.filter(|_| files.is_some()) {
                if let Err(e) = control::pause_vm(vm, frame.as_deref()) {
                    return Err(fail(Error::Control(e), false));
                }
                if let Err(e) = st.write_out(vm) {
                    return Err(fail(Error::Snapshot(e), true));
                }
            }
            crate::println!(
                "\nhv: vm{}: the snapshot outgrew the room kept for it: from here its pages are written as they arrive (a transfer cut now leaves vm{} paused)",
                vm.id,
                vm.id
            );
        }
        let mut end = false;
        match item {
            Item::Head(_) => {}
            Item::Cpu(c) => cpus.push(c),
            Item::Gic(g) => {
                let mut v = Vec::new();
                if v.try_reserve_exact(g.len()).is_err() {
                    return Err(fail(Error::NoMemory(g.len()), false));
                }
                v.extend_from_slice(g);
                gic = Some(v);
            }
            Item::Depends => {
                if let Err(e) = check_boot_images(vm, dec.depends()) {
                    return Err(fail(e, files.is_some()));
                }
            }
            Item::Pages { .. }
            | Item::Packed { .. }
            | Item::Run { .. }
            | Item::Booted { .. }
            | Item::End => {
                if files.is_none() {
                    // Everything before RAM is here: check it all, then pause.
                    let header = *dec.header().unwrap_or(&Header {
                        version: 0,
                        midr: 0,
                        vcpus: 0,
                        reg_encoding: 0,
                        ram_ipa: 0,
                        ram_size: 0,
                        cntvct: 0,
                    });
                    let checked = check_prelude(vm, &header, &cpus, gic.as_deref());
                    let checked = checked.and_then(|f| {
                        if staging.is_none() {
                            control::pause_vm(vm, frame.as_deref()).map_err(Error::Control)?;
                        }
                        Ok(f)
                    });
                    match checked {
                        Ok(f) => files = Some(f),
                        Err(e) => return Err(fail(e, false)),
                    }
                }
                // Pages as booted and against the boot images come from this
                // VM's own, checked to be the same by the `D` frame.
                if staging.is_none() {
                    item.for_each_page_from(
                        |ipa| original_page(vm, ipa),
                        |ipa, page| ram.write(ipa, page),
                    );
                }
                end = item == Item::End;
                progress.tick(bytes, dec.pages().0);
            }
            Item::Tags { .. } => {
                if let Err(e) = check_tags(vm, dec.tagged()) {
                    return Err(fail(e, files.is_some() && staging.is_none()));
                }
                if staging.is_none() {
                    item.for_each_tagged(|ipa, tags| write_tags(vm, ipa, tags));
                }
            }
        }
        super::console::debug_write_raw(&rx.accept());
        if end {
            break;
        }
    }
    // Frames the host sent again before it heard the last acknowledgement may
    // still be on the line: swallow them up to the host's FIN, or the console
    // would take them for typing.
    swallow_until_fin(5);
    let (pages, data_pages) = dec.pages();
    let stats = Stats {
        bytes,
        pages,
        data_pages,
        ticks: crate::arch::timer::now() - start,
        repeated: rx.damaged,
    };
    if let Some(st) = staging {
        // The whole stream is kept: restored as a slot is (everything checked
        // again before anything changes, the VM paused only for the copy).
        restore(vm, st.bytes(), frame)?;
        return Ok(stats);
    }
    // Everything arrived and was checked: the registers and the vGIC go in.
    let files = files.unwrap_or_default();
    if let Some(g) = &gic {
        super::vgic::import(vm, g).map_err(|_| Error::Gic)?;
    }
    apply_cpus(vm, &cpus, files);
    finish_ram();
    set_counter(vm, dec.header().map_or(0, |h| h.cntvct));
    if let (Some(frame), Some((cur, _))) = (frame.as_deref_mut(), sched::current()) {
        if cur.id == vm.id {
            sched::reload_current(frame);
        }
    }
    if !was_paused {
        control::resume_vm(vm);
    }
    Ok(stats)
}

/// Reads and drops what comes in on the debug line until it has been quiet for
/// half a second (`max_s` seconds at most): frames still in flight at the end
/// of a streamed restore.
/// After a received stream: discards what the host still sends up to its `FIN`
/// message, or (from a sender that sends none) until the line has been quiet
/// for half a second; `max_s` seconds at most.
fn swallow_until_fin(max_s: u64) {
    let hz = crate::arch::timer::frequency().max(1);
    let from = crate::arch::timer::now();
    let mut msgs = snapshot::link::MessageReader::new();
    while crate::arch::timer::now() - from < max_s * hz {
        match super::console::debug_read_wait(hz / 2) {
            Some(b) => {
                if matches!(msgs.push(b), Some((snapshot::link::FIN, _))) {
                    return;
                }
            }
            None => return,
        }
    }
}

fn swallow_line(max_s: u64) {
    let hz = crate::arch::timer::frequency().max(1);
    let from = crate::arch::timer::now();
    while crate::arch::timer::now() - from < max_s * hz
        && super::console::debug_read_wait(hz / 2).is_some()
    {}
}

/// Checks a streamed snapshot's header, registers and vGIC state against `vm`;
/// the register files to install.
fn check_prelude(
    vm: &Vm,
    header: &Header,
    cpus: &[CpuState],
    gic: Option<&[u8]>,
) -> Result<Vec<SysRegFile>, Error> {
    let current = current_sysregs(vm);
    let target = target(vm, &current);
    let files = snapshot::prepare(header, cpus, &target).map_err(Error::Snapshot)?;
    if let Some(g) = gic {
        super::vgic::check_import(vm, g).map_err(|_| Error::Gic)?;
    }
    Ok(files)
}
