//! The debug console: commands typed on the hypervisor's debug UART, carried out on
//! the live machine. Input is read on CPU 0, after the UART's interrupt filled its
//! ring, on the scheduling tick and in the idle loop when something waits (always,
//! where the UART is polled); the line editing and the command language are portable (`crate::shell`).
//!
//! Every command that shows or changes a vCPU's state goes through the one path
//! that stops a VM with its state saved (`control::pause_vm`), so what it prints is
//! the live state, never a stale copy; a VM that was running is resumed afterwards.

use super::console::DebugOut;
use super::control;
use super::guest_mem::{self, VmMemory};
use super::vcpu::RunState;
use super::vm::{self, Vm};
use crate::arch::{self, trap_frame::TrapFrame};
use crate::cpreg::{self, Flags, State};
use crate::shell::command::{self, Command, LogLevel, VcpuId};
use crate::shell::line::{Event, LineEditor};
use core::fmt::Write;
use core::sync::atomic::{AtomicU8, Ordering};
use spin::Mutex;

static EDITOR: Mutex<LineEditor> = Mutex::new(LineEditor::new());
static LOG: AtomicU8 = AtomicU8::new(1);
const PROMPT: &str = "hv> ";

/// How much guest faults are logged (0 quiet, 1 normal, 2 verbose).
pub fn log_level() -> u8 {
    LOG.load(Ordering::Relaxed)
}

/// Reads what was typed on the debug console and runs complete lines. `frame`: the
/// exit this CPU is handling, if any (its vCPU is saved in place when paused).
pub fn poll(mut frame: Option<&mut TrapFrame>) {
    if arch::cpu_index() != 0 {
        return;
    }
    super::reset::service(frame.as_deref_mut());
    // Interrupt-driven and nothing received: no register, no lock.
    if !super::console::debug_input_waiting() {
        return;
    }
    if super::gdb::is_active() {
        super::gdb::poll(frame);
        return;
    }
    while let Some(b) = super::console::debug_read() {
        let mut line = heapless::String::<{ crate::shell::line::MAX_LINE }>::new();
        {
            let mut ed = EDITOR.lock();
            match ed.feed(b, &mut DebugOut) {
                Event::None => continue,
                Event::Line => {
                    let _ = line.push_str(ed.line());
                }
                Event::Gdb(b) => {
                    drop(ed);
                    if super::gdb::start(b, frame.as_deref_mut()) {
                        // GDB owns the line now; the rest of its input is the
                        // session's.
                        super::gdb::poll(frame);
                        return;
                    }
                    continue;
                }
            }
        }
        // A command (a snapshot transfer) polls the line tightly while it runs.
        super::console::hold_line(true);
        run(&line, frame.as_deref_mut());
        super::console::hold_line(false);
        crate::hv::console::print(format_args!("{PROMPT}"));
    }
}

/// Runs a command line with its output (errors included) appended to `out`: the
/// GDB stub's `monitor CMD`.
pub fn run_into(line: &str, frame: Option<&mut TrapFrame>, out: &mut alloc::string::String) {
    run_with(line, frame, out);
}

fn run(line: &str, frame: Option<&mut TrapFrame>) {
    run_with(line, frame, &mut DebugOut);
}

fn run_with(line: &str, frame: Option<&mut TrapFrame>, out: &mut dyn Write) {
    let result = match command::parse(line) {
        Ok(None) => Ok(()),
        Ok(Some(c)) => execute(c, frame, out),
        Err(e) => Err(alloc::format!("{e}")),
    };
    if let Err(e) = result {
        let _ = writeln!(out, "error: {e}");
    }
}

fn vm_or_err(id: usize) -> Result<&'static Vm, alloc::string::String> {
    vm::get(id)
        .ok_or_else(|| alloc::format!("no VM vm{id} (there are {}: see 'vms')", vm::all().len()))
}

/// Runs `f` on `vm` with every vCPU stopped and saved; resumes it afterwards unless
/// it was paused already.
fn with_paused<R>(
    vm: &Vm,
    frame: Option<&TrapFrame>,
    f: impl FnOnce(&Vm) -> R,
) -> Result<R, alloc::string::String> {
    let was = control::is_paused(vm);
    control::pause_vm(vm, frame).map_err(|e| alloc::format!("{e}"))?;
    let r = f(vm);
    if !was {
        control::resume_vm(vm);
    }
    Ok(r)
}

fn state_name(vm: &Vm) -> &'static str {
    if !vm.is_running() {
        "off"
    } else if super::reset::is_pending(vm) {
        "restart pending"
    } else if control::is_paused(vm) {
        "paused"
    } else {
        "running"
    }
}

fn execute(
    c: Command,
    frame: Option<&mut TrapFrame>,
    out: &mut dyn Write,
) -> Result<(), alloc::string::String> {
    let w = |r: core::fmt::Result| r.map_err(|_| alloc::string::String::from("output failed"));
    match c {
        Command::Help => w(command::help(out)),
        Command::Info => {
            let (used, free) = super::heap::usage();
            w(writeln!(
                out,
                "hypervisor v{} on board {}",
                super::boot::VERSION,
                super::boot::board_name()
            ))?;
            if let Some(m) = super::boot::machine() {
                w(writeln!(out, "machine: {}", m.model.unwrap_or("?")))?;
                w(writeln!(out, "memory: {} MiB", m.memory_size() >> 20))?;
                w(writeln!(
                    out,
                    "cpus: {} ({} online)",
                    m.cpus.len(),
                    (0..super::sched::MAX_CPUS)
                        .filter(|&c| super::sched::is_online(c))
                        .count()
                ))?;
                if let Some(g) = &m.gic {
                    w(writeln!(
                        out,
                        "gic: {} at {:#x}",
                        super::boot::gic_version(g.version),
                        g.distributor.start.0
                    ))?;
                }
            }
            w(writeln!(
                out,
                "scheduling slice: {} us; a woken vCPU preempts after {} us",
                super::sched::slice_us(),
                super::sched::min_run_us()
            ))?;
            let (sync, irq, other) = super::passthrough::exits_by_class();
            w(writeln!(
                out,
                "EL2 exits since boot: {} ({irq} interrupts, {sync} synchronous, {other} other)",
                sync + irq + other
            ))?;
            for vm in vm::all() {
                write_devices(vm, out)?;
            }
            w(writeln!(
                out,
                "heap: {} KiB used, {} KiB free ({used} bytes used)",
                used / 1024,
                free / 1024
            ))
        }
        Command::Vms => {
            if vm::all().is_empty() {
                w(writeln!(out, "no VMs"))?;
            }
            for vm in vm::all() {
                w(writeln!(
                    out,
                    "vm{}: {}, {} vCPU(s), {} MiB at IPA {:#x}{}, {}, {} world switches, {} aborts",
                    vm.id,
                    state_name(vm),
                    vm.vcpus.len(),
                    vm.ram.size() >> 20,
                    vm.ram.ipa.start.0,
                    if vm.ram.extra.is_empty() {
                        ""
                    } else {
                        " and elsewhere, 1:1"
                    },
                    if vm.aarch32 { "AArch32" } else { "AArch64" },
                    vm.switches.load(Ordering::Relaxed),
                    vm.aborts.load(Ordering::Relaxed),
                ))?;
                write_devices(vm, out)?;
            }
            Ok(())
        }
        Command::Vcpus => {
            for vm in vm::all() {
                let lines = with_paused(vm, frame.as_deref(), |vm| {
                    vm.vcpus
                        .iter()
                        .map(|v| {
                            let pc = v.ctx.lock().frame.elr;
                            (v.index, v.pcpu, v.state(), pc)
                        })
                        .collect::<alloc::vec::Vec<_>>()
                })?;
                for (i, pcpu, st, pc) in lines {
                    let st = match st {
                        RunState::Off => "off",
                        _ if control::is_paused(vm) => "paused",
                        _ => "on",
                    };
                    w(writeln!(
                        out,
                        "vm{}.{}: cpu {}, {}, pc {:#x}",
                        vm.id, i, pcpu, st, pc
                    ))?;
                }
            }
            Ok(())
        }
        Command::Regs(id) => show_regs(id, frame.as_deref(), out),
        Command::Sysregs(id, pattern) => show_sysregs(id, pattern, frame.as_deref(), out),
        Command::Mem(id, va, len) => show_mem(id, va, len, frame.as_deref(), out),
        Command::Vtop(id, va) => show_vtop(id, va, frame.as_deref(), out),
        Command::Uart => w(super::console::report(out)),
        Command::Traps => {
            w(writeln!(
                out,
                "{:<18} {:<16} {:>10} {:>10}",
                "register", "encoding", "reads", "writes"
            ))?;
            for t in cpreg::trap_counts() {
                w(writeln!(out, "{t}"))?;
            }
            Ok(())
        }
        Command::Pause(id) => {
            let vm = vm_or_err(id)?;
            if !vm.is_running() {
                return Err(alloc::format!("vm{id} is off"));
            }
            control::pause_vm(vm, frame.as_deref()).map_err(|e| alloc::format!("{e}"))?;
            w(writeln!(out, "vm{id}: paused"))
        }
        Command::Resume(id) => {
            let vm = vm_or_err(id)?;
            if !control::is_paused(vm) {
                return Err(alloc::format!("vm{id} is not paused"));
            }
            control::resume_vm(vm);
            w(writeln!(out, "vm{id}: resumed"))
        }
        Command::Reset(id) => {
            let vm = vm_or_err(id)?;
            super::reset::from_console(vm, frame)?;
            w(writeln!(out, "vm{id}: reset"))
        }
        Command::SnapshotSave(id, slot, force) => {
            let vm = vm_or_err(id)?;
            passthrough_check(vm, force)?;
            let n = super::snapshot::save_slot(vm, slot, frame.as_deref())
                .map_err(|e| alloc::format!("{e}"))?;
            w(writeln!(
                out,
                "vm{id}: saved to slot '{slot}' ({} KiB)",
                n.div_ceil(1024)
            ))
        }
        Command::SnapshotRestore(id, slot, force) => {
            let vm = vm_or_err(id)?;
            passthrough_check(vm, force)?;
            super::snapshot::restore_slot(vm, slot, frame).map_err(|e| alloc::format!("{e}"))?;
            w(writeln!(out, "vm{id}: restored from slot '{slot}'"))
        }
        Command::SnapshotList => {
            let slots = super::snapshot::list();
            let (size, used) = super::snapshot::pool_usage();
            if slots.is_empty() {
                w(writeln!(out, "no snapshots (snapshot save VM [SLOT])"))?;
            }
            for (name, vm, size) in slots {
                w(writeln!(out, "{name}: vm{vm}, {} KiB", size.div_ceil(1024)))?;
            }
            if size > 0 {
                w(writeln!(
                    out,
                    "pool: {} of {} MiB used",
                    used.div_ceil(1 << 20),
                    size >> 20
                ))?;
            }
            Ok(())
        }
        Command::SnapshotDelete(slot) => {
            super::snapshot::delete_slot(slot).map_err(|e| alloc::format!("{e}"))?;
            w(writeln!(out, "deleted slot '{slot}'"))
        }
        Command::SnapshotSend(id, force, self_contained) => {
            let vm = vm_or_err(id)?;
            passthrough_check(vm, force)?;
            let s = super::snapshot::send_stream(vm, frame.as_deref(), self_contained)
                .map_err(|e| alloc::format!("{e}; vm{id} runs on as it was"))?;
            w(writeln!(
                out,
                "vm{id}: sent {s} as {}, {} frame(s) sent again",
                s.line(),
                s.repeated
            ))
        }
        Command::SnapshotReceiveStream(id, force) => {
            let vm = vm_or_err(id)?;
            passthrough_check(vm, force)?;
            let s =
                super::snapshot::receive_stream(vm, frame).map_err(|e| alloc::format!("{e}"))?;
            w(writeln!(
                out,
                "vm{id}: restored from the host: {s} from {}, {} damaged frame(s) sent again",
                s.line(),
                s.repeated
            ))
        }
        Command::SnapshotSendHex(id, force) => {
            let vm = vm_or_err(id)?;
            passthrough_check(vm, force)?;
            let bytes = super::snapshot::capture(vm, frame.as_deref())
                .map_err(|e| alloc::format!("{e}"))?;
            super::console::with_debug_locked(|w| {
                crate::snapshot::transfer::write(&bytes, &mut Adapter(w))
            })
            .map_err(|_| alloc::string::String::from("output failed"))?;
            w(writeln!(
                out,
                "vm{id}: sent a {} KiB snapshot",
                bytes.len().div_ceil(1024)
            ))
        }
        Command::SnapshotReceive(id, len, crc, force) => {
            let vm = vm_or_err(id)?;
            passthrough_check(vm, force)?;
            let bytes = receive(len, crc)?;
            super::snapshot::restore(vm, &bytes, frame).map_err(|e| alloc::format!("{e}"))?;
            w(writeln!(
                out,
                "vm{id}: restored from the host ({} KiB)",
                bytes.len().div_ceil(1024)
            ))
        }
        Command::Gdb(id) => {
            vm_or_err(id)?;
            super::gdb::set_target_vm(id);
            w(writeln!(
                out,
                "the next GDB session on this line debugs vm{id}: in gdb-multiarch, 'target remote' to this serial line"
            ))
        }
        Command::Log(level) => {
            LOG.store(
                match level {
                    LogLevel::Quiet => 0,
                    LogLevel::Normal => 1,
                    LogLevel::Verbose => 2,
                },
                Ordering::Relaxed,
            );
            w(writeln!(
                out,
                "log level: {}",
                match level {
                    LogLevel::Quiet => "quiet",
                    LogLevel::Normal => "normal",
                    LogLevel::Verbose => "verbose",
                }
            ))
        }
    }
}

/// A snapshot of a VM with passed-through devices misses their state (it is in
/// the devices, not in the VM), and restoring RAM under a device that DMAs into
/// it is unsafe: refused unless the user says `--force`.
fn passthrough_check(vm: &Vm, force: bool) -> Result<(), alloc::string::String> {
    let n = super::passthrough::devices(vm).len();
    if n == 0 || force {
        return Ok(());
    }
    Err(alloc::format!(
        "vm{} has {n} passed-through device(s): their state is in the hardware, not in a snapshot, \
         and they may write its RAM at any time; add --force to do it anyway",
        vm.id
    ))
}

/// A VM's passed-through devices, one line each: path, MMIO, interrupts.
fn write_devices(vm: &Vm, out: &mut dyn Write) -> Result<(), alloc::string::String> {
    let devices = super::passthrough::devices(vm);
    if devices.is_empty() {
        return Ok(());
    }
    let e = |_| alloc::string::String::from("output failed");
    writeln!(
        out,
        "vm{}: {} passed-through device(s), {} interrupts forwarded",
        vm.id,
        devices.len(),
        super::passthrough::forwarded(vm)
    )
    .map_err(e)?;
    for d in devices {
        let mut line = alloc::format!("  {}:", d.path);
        for m in &d.mmio {
            let _ = write!(line, " MMIO {:#x}-{:#x}", m.pa.0, m.pa.0 + m.size - 1);
            if m.ipa.0 != m.pa.0 {
                let _ = write!(line, " (at IPA {:#x})", m.ipa.0);
            }
        }
        for s in &d.spis {
            let _ = write!(
                line,
                " SPI {} ({})",
                s.intid,
                if s.level { "level" } else { "edge" }
            );
        }
        if d.mmio.is_empty() && d.spis.is_empty() {
            line.push_str(" no MMIO, no interrupts (comes with the devices it uses)");
        }
        writeln!(out, "{line}").map_err(e)?;
    }
    Ok(())
}

fn vcpu_of(id: VcpuId) -> Result<&'static Vm, alloc::string::String> {
    let vm = vm_or_err(id.vm)?;
    if id.vcpu >= vm.vcpus.len() {
        return Err(alloc::format!(
            "vm{} has {} vCPU(s): vm{}.0 to vm{}.{}",
            id.vm,
            vm.vcpus.len(),
            id.vm,
            id.vm,
            vm.vcpus.len() - 1
        ));
    }
    Ok(vm)
}

fn show_regs(
    id: VcpuId,
    frame: Option<&TrapFrame>,
    out: &mut dyn Write,
) -> Result<(), alloc::string::String> {
    let vm = vcpu_of(id)?;
    let ctx = with_paused(vm, frame, |vm| vm.vcpus[id.vcpu].ctx.lock().clone())?;
    let f = &ctx.frame;
    for i in (0..31).step_by(2) {
        let _ = if i + 1 < 31 {
            writeln!(
                out,
                "x{:<2} {:#018x}  x{:<2} {:#018x}",
                i,
                f.x[i],
                i + 1,
                f.x[i + 1]
            )
        } else {
            writeln!(out, "x{:<2} {:#018x}", i, f.x[i])
        };
    }
    let sp = |r| ctx.sysregs.raw_read(r).unwrap_or(0);
    let _ = writeln!(out, "pc  {:#018x}  pstate {:#010x}", f.elr, f.spsr);
    let _ = writeln!(
        out,
        "sp_el0 {:#018x}  sp_el1 {:#018x}",
        sp(cpreg::Reg::SP_EL0),
        sp(cpreg::Reg::SP_EL1)
    );
    Ok(())
}

fn show_sysregs(
    id: VcpuId,
    pattern: Option<&str>,
    frame: Option<&TrapFrame>,
    out: &mut dyn Write,
) -> Result<(), alloc::string::String> {
    let vm = vcpu_of(id)?;
    let file = with_paused(vm, frame, |vm| vm.vcpus[id.vcpu].ctx.lock().sysregs.clone())?;
    let pat = pattern.map(|p| p.to_ascii_uppercase());
    let mut shown = 0;
    for (reg, width) in cpreg::debugger_view(*file.features()) {
        let name = reg.name();
        if pat.as_deref().is_some_and(|p| !name.contains(p)) {
            continue;
        }
        let Ok(value) = file.raw_read(reg) else {
            continue;
        };
        let e = reg.entry();
        let mut note = heapless::String::<40>::new();
        if let State::Alias { owner, .. } = e.state {
            let _ = write!(note, "  (view of {})", owner.name());
        } else if e.is(Flags::CONST) {
            let _ = note.push_str("  (constant)");
        }
        let digits = (width as usize).div_ceil(4);
        let _ = writeln!(out, "{:<20} {:#0w$x}{}", name, value, note, w = digits + 2);
        shown += 1;
    }
    if shown == 0 {
        return Err(alloc::format!(
            "no register of vm{}.{} matches '{}'",
            id.vm,
            id.vcpu,
            pattern.unwrap_or("")
        ));
    }
    Ok(())
}

/// `&mut dyn Write` as an `impl Write`.
struct Adapter<'a>(&'a mut dyn Write);

impl Write for Adapter<'_> {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        self.0.write_str(s)
    }
}

/// Reads a transfer (`:<hex>` lines, then the end marker) straight from the debug
/// UART. Polling on the tick would take a minute for a few hundred KiB; this CPU
/// reads in a tight loop instead, and gives up after 10 s without a byte.
fn receive(len: usize, crc: u32) -> Result<alloc::vec::Vec<u8>, alloc::string::String> {
    use crate::snapshot::transfer::Receiver;
    let mut rx = Receiver::new(len, crc).map_err(|e| alloc::format!("{e}"))?;
    crate::println!("ready for {len} bytes");
    let timeout = arch::timer::frequency() * 10;
    let mut line = heapless::String::<256>::new();
    loop {
        let b = super::console::debug_read_wait(timeout)
            .ok_or("the transfer timed out (10 s without data)")?;
        match b {
            b'\r' | b'\n' => {
                if !line.is_empty() {
                    if let Some(bytes) = rx.line(&line).map_err(|e| alloc::format!("{e}"))? {
                        return Ok(bytes);
                    }
                    line.clear();
                }
            }
            _ => {
                if line.push(b as char).is_err() {
                    return Err("a transfer line is too long".into());
                }
            }
        }
    }
}

/// The vCPU's live translation controls.
fn stage1_regs(
    id: VcpuId,
    frame: Option<&TrapFrame>,
) -> Result<(&'static Vm, crate::stage1::Regs), alloc::string::String> {
    let vm = vcpu_of(id)?;
    let file = with_paused(vm, frame, |vm| vm.vcpus[id.vcpu].ctx.lock().sysregs.clone())?;
    Ok((vm, guest_mem::stage1_regs(vm, &file)?))
}

fn show_vtop(
    id: VcpuId,
    va: u64,
    frame: Option<&TrapFrame>,
    out: &mut dyn Write,
) -> Result<(), alloc::string::String> {
    let (vm, regs) = stage1_regs(id, frame)?;
    if regs.sctlr & 1 == 0 {
        let _ = writeln!(out, "stage 1: MMU off (SCTLR_EL1.M = 0): IPA = VA");
    }
    let ipa = crate::stage1::translate(&regs, &VmMemory(vm), va, &mut |s| {
        let kind = s.kind(&regs);
        let _ = writeln!(
            out,
            "stage 1 level {}: table IPA {:#x} [{}] = {:#018x} ({kind})",
            s.level, s.table, s.index, s.descriptor
        );
    })
    .map_err(|f| alloc::format!("VA {va:#x}: {f}"))?;
    match vm.ram.translate(crate::addr::Ipa(ipa)) {
        Some((pa, _)) => {
            let _ = writeln!(out, "stage 2: IPA {ipa:#x} -> PA {:#x} (guest RAM)", pa.0);
            let _ = writeln!(out, "VA {va:#x} -> IPA {ipa:#x} -> PA {:#x}", pa.0);
        }
        None => {
            let what = if ipa >= vm.uart_ipa && ipa < vm.uart_ipa + crate::vuart::SIZE {
                "the emulated UART"
            } else {
                "not RAM (an emulated device or nothing)"
            };
            let _ = writeln!(out, "stage 2: IPA {ipa:#x} is {what}");
        }
    }
    Ok(())
}

fn show_mem(
    id: VcpuId,
    va: u64,
    len: u64,
    frame: Option<&TrapFrame>,
    out: &mut dyn Write,
) -> Result<(), alloc::string::String> {
    const MAX: u64 = 4096;
    if len == 0 || len > MAX {
        return Err(alloc::format!("LEN must be 1 to {MAX} bytes"));
    }
    let (vm, regs) = stage1_regs(id, frame)?;
    let mem = VmMemory(vm);
    let mut bytes = alloc::vec::Vec::with_capacity(len as usize);
    for a in va..va.saturating_add(len) {
        let ipa = crate::stage1::translate(&regs, &mem, a, &mut |_| {})
            .map_err(|f| alloc::format!("VA {a:#x}: {f}"))?;
        let word = crate::stage1::GuestMemory::read_u64(&mem, ipa & !7)
            .ok_or_else(|| alloc::format!("VA {a:#x} (IPA {ipa:#x}) is not guest RAM"))?;
        bytes.push((word >> ((ipa & 7) * 8)) as u8);
    }
    for (i, chunk) in bytes.chunks(16).enumerate() {
        let mut line = heapless::String::<96>::new();
        let _ = write!(line, "{:016x}: ", va + i as u64 * 16);
        for b in chunk {
            let _ = write!(line, "{b:02x} ");
        }
        for _ in chunk.len()..16 {
            let _ = line.push_str("   ");
        }
        for &b in chunk {
            let _ = line.push(if (0x20..0x7f).contains(&b) {
                b as char
            } else {
                '.'
            });
        }
        let _ = writeln!(out, "{line}");
    }
    Ok(())
}
