//! The GDB stub on the debug UART: the hypervisor's side of `crate::gdb`.
//!
//! A `$` (or GDB's Ctrl-C, 0x03) at the start of a console line starts a session: the VM chosen with the
//! console's `gdb VM` command (vm0 by default) is paused through the one pause path
//! (`control::pause_vm`), so GDB sees the live state, and its vCPUs become GDB's
//! threads. Registers are the vCPU contexts (general, FP/SIMD, and every cpreg
//! table entry that is not NO_RAW, writable through the raw accessors with an
//! import's read-back check); memory is read and written by virtual address
//! through the vCPU's live stage-1 controls and the VM's own RAM only. The session
//! runs on CPU 0, like the console, and never waits for input: what has arrived is
//! read on each tick and in CPU 0's idle loop (which polls tightly while a session
//! is open and nothing else runs there), so another VM on CPU 0 runs at full speed
//! while GDB sits at a prompt.
//!
//! The session ends with `D` (the VM runs on), `k` (the VM is powered off), or a
//! line of text typed on the console (a person took the line back: like `D`).

use super::console;
use super::control;
use super::guest_mem::{self, VmMemory};
use super::vm::{self, Vm};
use crate::arch::{self, trap_frame::TrapFrame};
use crate::cpreg::{debugger_view, Reg};
use crate::gdb::command::BreakKind;
use crate::gdb::packet::{Framer, Input};
use crate::gdb::regs::RegId;
use crate::gdb::stub::{After, Error, Stop, Stub, Target, SIGINT, SIGTRAP};
use alloc::string::String;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicUsize, Ordering};
use spin::Mutex;

/// The VM the next session debugs (console `gdb VM`).
static TARGET_VM: AtomicUsize = AtomicUsize::new(0);
static SESSION: Mutex<Option<Session>> = Mutex::new(None);

/// At most this many software breakpoints at once.
const MAX_SW_BREAKS: usize = 64;

struct SwBreak {
    va: u64,
    pa: u64,
    orig: u32,
}

/// What the target keeps between packets.
struct State {
    vm: &'static Vm,
    xml: Option<String>,
    sysregs: Vec<(Reg, u8)>,
    sw: Vec<SwBreak>,
}

struct Session {
    framer: Framer,
    stub: Stub,
    state: State,
    /// Printable bytes seen outside packets (a person typing?).
    typed: usize,
}

/// Sets the VM the next session debugs.
pub fn set_target_vm(id: usize) {
    TARGET_VM.store(id, Ordering::Relaxed);
}

pub fn target_vm() -> usize {
    TARGET_VM.load(Ordering::Relaxed)
}

/// Whether GDB owns the debug UART.
pub fn is_active() -> bool {
    SESSION.lock().is_some()
}

/// Starts a session with the first byte of GDB's first packet (the console saw a
/// `$` at the start of a line). False (with a message) if there is nothing to debug.
pub fn start(first: u8, frame: Option<&mut TrapFrame>) -> bool {
    let id = target_vm();
    let Some(vm) = vm::get(id).filter(|vm| vm.is_running()) else {
        crate::println!("\nhv: GDB: vm{id} does not exist or is off (choose one with 'gdb VM')");
        return false;
    };
    if let Err(e) = control::pause_vm(vm, frame.as_deref()) {
        crate::println!("\nhv: GDB: cannot stop vm{id}: {e}");
        return false;
    }
    vm.debug.set_attached(true);
    console::set_gdb_mode(true);
    let features = *vm.vcpus[0].ctx.lock().sysregs.features();
    let mut s = Session {
        framer: Framer::new(),
        stub: Stub::new(Stop {
            vcpu: 0,
            signal: if first == 0x03 { SIGINT } else { SIGTRAP },
        }),
        state: State {
            vm,
            xml: None,
            sysregs: debugger_view(features).collect(),
            sw: Vec::new(),
        },
        typed: 0,
    };
    let mut frame = frame;
    let ended = if first == 0x03 {
        // GDB's interrupt: the VM is stopped; say so.
        let mut out = Vec::new();
        s.stub.announce_stop(&mut out);
        console::debug_write_raw(&out);
        false
    } else {
        feed(&mut s, first, frame.as_deref_mut())
    };
    if !ended {
        *SESSION.lock() = Some(s);
    }
    true
}

/// Feeds one byte; true if the session ended.
fn feed(s: &mut Session, b: u8, frame: Option<&mut TrapFrame>) -> bool {
    let input = s.framer.feed(b);
    let mut out = Vec::new();
    let mut target = HvTarget {
        st: &mut s.state,
        frame,
    };
    let mut after = s.stub.input(input, s.framer.body(), &mut target, &mut out);
    if let Input::Other(c) = input {
        if c == b'\r' || c == b'\n' {
            if s.typed > 0 {
                // A line typed by a person: give the console back.
                target.detach();
                after = After::End;
                out.clear();
            }
        } else if c.is_ascii_graphic() {
            s.typed += 1;
        }
    } else if input != Input::None {
        s.typed = 0;
    }
    console::debug_write_raw(&out);
    if after == After::End {
        finish(s.state.vm);
        return true;
    }
    false
}

fn finish(vm: &Vm) {
    console::set_gdb_mode(false);
    crate::println!(
        "\nhv: GDB session on vm{} ended ({})",
        vm.id,
        if vm.is_running() {
            "the VM runs on"
        } else {
            "the VM is off"
        }
    );
    console::print(format_args!("hv> "));
}

/// Serves the session, if any, on CPU 0: a stop to report, then every byte from
/// GDB that has arrived. Never waits for input: called on each tick and from CPU
/// 0's idle loop (tightly while a session is open and nothing else runs there), so
/// a VM sharing CPU 0 with the stopped, debugged one runs at full speed.
pub fn poll(mut frame: Option<&mut TrapFrame>) {
    let mut guard = SESSION.lock();
    let Some(s) = guard.as_mut() else { return };
    let mut buf = [0u8; 64];
    loop {
        if s.stub.is_running() {
            let vm = s.state.vm;
            let mut out = Vec::new();
            if !vm.is_running() {
                s.stub.report_exit(0, &mut out);
                console::debug_write_raw(&out);
                remove_all_breakpoints(&mut s.state);
                vm.debug.set_attached(false);
                finish(vm);
                *guard = None;
                return;
            }
            if let Some((vcpu, signal)) = vm.debug.take_event() {
                let _ = control::pause_vm(vm, frame.as_deref());
                vm.debug.set_step(None);
                s.stub.report_stop(Stop { vcpu, signal }, &mut out);
                console::debug_write_raw(&out);
            }
        }
        let n = console::debug_read_some(&mut buf);
        if n == 0 {
            return;
        }
        for &b in &buf[..n] {
            if feed(s, b, frame.as_deref_mut()) {
                *guard = None;
                return;
            }
        }
    }
}

/// The live machine as GDB's target, for the duration of one input.
struct HvTarget<'a> {
    st: &'a mut State,
    /// The exit CPU 0 is handling, if any: a vCPU of the VM loaded here must be
    /// reloaded after its context changed.
    frame: Option<&'a mut TrapFrame>,
}

impl HvTarget<'_> {
    /// After a context changed: if that vCPU is loaded on this CPU (paused in
    /// place, in this very exit), load the new state into the frame and hardware.
    fn reload_if_current(&mut self) {
        if let (Some(f), Some((cvm, _))) = (self.frame.as_deref_mut(), super::sched::current()) {
            if cvm.id == self.st.vm.id {
                super::sched::reload_current(f);
            }
        }
    }

    fn stage1(&self, vcpu: usize) -> Result<crate::stage1::Regs, Error> {
        let v = self.st.vm.vcpus.get(vcpu).ok_or(Error::Invalid)?;
        let file = v.ctx.lock().sysregs.clone();
        guest_mem::stage1_regs(self.st.vm, &file).map_err(|_| Error::Fault)
    }

    /// The physical address of `va` and how many bytes from it are contiguous
    /// guest RAM within its page.
    fn phys(&self, regs: &crate::stage1::Regs, va: u64) -> Result<(u64, u64), Error> {
        let vm = self.st.vm;
        let ipa = crate::stage1::translate(regs, &VmMemory(vm), va, &mut |_| {})
            .map_err(|_| Error::Fault)?;
        let (pa, contiguous) = vm
            .ram
            .translate(crate::addr::Ipa(ipa))
            .ok_or(Error::Fault)?;
        // Untouched RAM reads as zeros: make it so before GDB reads or writes it.
        super::guest_mem::touch(vm, ipa);
        let in_page = 0x1000 - (va & 0xfff);
        Ok((pa.0, contiguous.min(in_page)))
    }
}

fn sp_reg(spsr: u64) -> Reg {
    // EL1h (M[3:0] = 0b0101) uses SP_EL1; EL0t and EL1t use SP_EL0.
    if spsr & 0xf == 0b0101 {
        Reg::SP_EL1
    } else {
        Reg::SP_EL0
    }
}

/// Writes `bytes` at physical addresses (guest RAM already checked) and makes them
/// visible to instruction fetch (a breakpoint, code loaded by GDB).
fn poke(pa: u64, bytes: &[u8]) {
    for (i, &b) in bytes.iter().enumerate() {
        // SAFETY: `pa..pa + len` was translated from the VM's own RAM, which is
        // identity-mapped at EL2 and not hypervisor memory.
        unsafe { core::ptr::write_volatile((pa as usize + i) as *mut u8, b) };
    }
    arch::cache::clean_inval_dcache(pa as usize, bytes.len());
    arch::cache::invalidate_icache_all();
}

fn peek_u32(pa: u64) -> u32 {
    // SAFETY: as `poke`; 4-byte aligned.
    unsafe { core::ptr::read_volatile(pa as usize as *const u32) }
}

fn remove_all_breakpoints(st: &mut State) {
    for b in st.sw.drain(..) {
        if peek_u32(b.pa) == super::debug::BRK {
            poke(b.pa, &b.orig.to_le_bytes());
        }
    }
}

impl Target for HvTarget<'_> {
    fn vcpus(&self) -> usize {
        self.st.vm.vcpus.len()
    }

    fn sysregs(&self) -> usize {
        self.st.sysregs.len()
    }

    fn sysreg_size(&self, index: usize) -> usize {
        self.st.sysregs.get(index).map_or(8, |&(_, w)| {
            crate::gdb::tdesc::register_bits(w) as usize / 8
        })
    }

    fn target_xml(&mut self) -> &str {
        let regs = &self.st.sysregs;
        self.st.xml.get_or_insert_with(|| {
            crate::gdb::tdesc::generate(regs.iter().map(|(r, w)| (r.name(), *w)))
        })
    }

    fn read_register(
        &mut self,
        vcpu: usize,
        reg: RegId,
        buf: &mut [u8; 16],
    ) -> Result<usize, Error> {
        let v = self.st.vm.vcpus.get(vcpu).ok_or(Error::Invalid)?;
        let ctx = v.ctx.lock();
        let f = &ctx.frame;
        let (value, size): (u128, usize) = match reg {
            RegId::X(i) => (f.x[i as usize] as u128, 8),
            RegId::Sp => (ctx.sysregs.raw_read(sp_reg(f.spsr)).unwrap_or(0) as u128, 8),
            RegId::Pc => (f.elr as u128, 8),
            RegId::Cpsr => (f.spsr as u32 as u128, 4),
            RegId::V(i) => (ctx.fp.q[i as usize], 16),
            RegId::Fpsr => (ctx.fp.fpsr as u32 as u128, 4),
            RegId::Fpcr => (ctx.fp.fpcr as u32 as u128, 4),
            RegId::Sys(i) => {
                let (r, _) = *self.st.sysregs.get(i).ok_or(Error::Invalid)?;
                let value = ctx.sysregs.raw_read(r).map_err(|_| Error::Invalid)?;
                (value as u128, self.sysreg_size(i))
            }
        };
        buf.copy_from_slice(&value.to_le_bytes());
        Ok(size)
    }

    fn write_register(&mut self, vcpu: usize, reg: RegId, value: &[u8]) -> Result<(), Error> {
        let v = self.st.vm.vcpus.get(vcpu).ok_or(Error::Invalid)?;
        let mut b = [0u8; 16];
        b.get_mut(..value.len())
            .ok_or(Error::Invalid)?
            .copy_from_slice(value);
        let wide = u128::from_le_bytes(b);
        let x = wide as u64;
        {
            let mut ctx = v.ctx.lock();
            match reg {
                RegId::X(i) => ctx.frame.x[i as usize] = x,
                RegId::Sp => {
                    let r = sp_reg(ctx.frame.spsr);
                    ctx.sysregs.raw_write(r, x).map_err(|_| Error::Invalid)?;
                }
                RegId::Pc => ctx.frame.elr = x,
                RegId::Cpsr => {
                    // Flags, masks and EL1/EL0 modes only: never EL2 or EL3, and not
                    // the other execution state.
                    let old = ctx.frame.spsr;
                    let mode = x & 0x1f;
                    let aarch32 = old & 0x10 != 0;
                    let ok = if aarch32 {
                        x & 0x10 != 0 && matches!(mode, 0x10..=0x13 | 0x17 | 0x1b | 0x1f)
                    } else {
                        matches!(mode, 0b0000 | 0b0100 | 0b0101)
                    };
                    if !ok {
                        return Err(Error::Invalid);
                    }
                    ctx.frame.spsr = (old & !0xffff_ffff) | x;
                }
                RegId::V(i) => ctx.fp.q[i as usize] = wide,
                RegId::Fpsr => ctx.fp.fpsr = x,
                RegId::Fpcr => ctx.fp.fpcr = x,
                RegId::Sys(i) => {
                    let (r, _) = *self.st.sysregs.get(i).ok_or(Error::Invalid)?;
                    // As an import: state only, written through the raw accessor
                    // (an alias onto its owner), read back; a refused value leaves
                    // the context as it was.
                    if !r.entry().is_importable() {
                        return Err(Error::Invalid);
                    }
                    let mut file = ctx.sysregs.clone();
                    file.raw_write(r, x).map_err(|_| Error::Invalid)?;
                    if file.raw_read(r) != Ok(x) {
                        return Err(Error::Invalid);
                    }
                    ctx.sysregs = file;
                }
            }
        }
        self.reload_if_current();
        Ok(())
    }

    fn read_memory(&mut self, vcpu: usize, addr: u64, buf: &mut [u8]) -> Result<usize, Error> {
        let regs = self.stage1(vcpu)?;
        let mut done = 0;
        while done < buf.len() {
            let Some(va) = addr.checked_add(done as u64) else {
                break;
            };
            let Ok((pa, n)) = self.phys(&regs, va) else {
                break;
            };
            let n = (n as usize).min(buf.len() - done);
            // SAFETY: `pa..pa + n` is guest RAM of this VM (see `poke`), which
            // never overlaps the hypervisor's heap buffer `buf`.
            unsafe {
                core::ptr::copy_nonoverlapping(
                    pa as usize as *const u8,
                    buf[done..].as_mut_ptr(),
                    n,
                )
            };
            done += n;
        }
        if done == 0 {
            Err(Error::Fault)
        } else {
            Ok(done)
        }
    }

    fn write_memory(&mut self, vcpu: usize, addr: u64, data: &[u8]) -> Result<(), Error> {
        let regs = self.stage1(vcpu)?;
        // Translate all of it first: all or nothing.
        let mut pieces = Vec::new();
        let mut done = 0;
        while done < data.len() {
            let va = addr.checked_add(done as u64).ok_or(Error::Fault)?;
            let (pa, n) = self.phys(&regs, va)?;
            let n = (n as usize).min(data.len() - done);
            pieces.push((pa, done, n));
            done += n;
        }
        for (pa, at, n) in pieces {
            poke(pa, &data[at..at + n]);
        }
        Ok(())
    }

    fn breakpoint(
        &mut self,
        vcpu: usize,
        kind: BreakKind,
        addr: u64,
        insert: bool,
    ) -> Result<(), Error> {
        let vm = self.st.vm;
        if vm.aarch32 {
            // A64 breakpoints only; an AArch32 guest would need BKPT.
            return Err(Error::Invalid);
        }
        if kind == BreakKind::Hardware {
            let slots = super::debug::hw_slots(&vm.vcpus[0].ctx.lock().sysregs);
            return vm.debug.hw_breakpoint(addr, insert, slots);
        }
        if addr % 4 != 0 {
            return Err(Error::Invalid);
        }
        let at = self.st.sw.iter().position(|b| b.va == addr);
        match (insert, at) {
            (true, Some(_)) => Ok(()),
            (true, None) => {
                if self.st.sw.len() >= MAX_SW_BREAKS {
                    return Err(Error::NoSpace);
                }
                let regs = self.stage1(vcpu)?;
                let (pa, _) = self.phys(&regs, addr)?;
                let orig = peek_u32(pa);
                poke(pa, &super::debug::BRK.to_le_bytes());
                self.st.sw.push(SwBreak { va: addr, pa, orig });
                Ok(())
            }
            (false, Some(i)) => {
                let b = self.st.sw.swap_remove(i);
                if peek_u32(b.pa) == super::debug::BRK {
                    poke(b.pa, &b.orig.to_le_bytes());
                }
                Ok(())
            }
            (false, None) => Err(Error::Invalid),
        }
    }

    fn resume(&mut self, step: Option<usize>) {
        let vm = self.st.vm;
        vm.debug.set_step(step);
        // A vCPU paused in place on this CPU (this very exit) is entered again with
        // the debugger's settings (step, breakpoints, TDE).
        self.reload_if_current();
        match step {
            Some(v) => control::resume_vcpu(vm, v),
            None => control::resume_vm(vm),
        }
    }

    fn interrupt(&mut self) -> usize {
        let vm = self.st.vm;
        let running = vm
            .vcpus
            .iter()
            .find(|v| v.state() == super::vcpu::RunState::Running)
            .map_or(0, |v| v.index);
        let _ = control::pause_vm(vm, self.frame.as_deref());
        vm.debug.set_step(None);
        running
    }

    fn monitor(&mut self, cmd: &str, out: &mut String) {
        use crate::shell::command::{self, Command};
        use core::fmt::Write;
        let vm = self.st.vm.id;
        let refused = match command::parse(cmd) {
            Ok(Some(Command::SnapshotSend(..) | Command::SnapshotReceive(..))) => {
                Some("snapshot transfers use this line: detach GDB first")
            }
            Ok(Some(Command::Resume(v) | Command::Pause(v) | Command::SnapshotRestore(v, ..)))
                if v == vm =>
            {
                Some("GDB controls this VM: use continue/interrupt, or detach first")
            }
            Ok(Some(Command::Gdb(_))) => Some("detach first, then choose another VM"),
            _ => None,
        };
        if let Some(why) = refused {
            let _ = writeln!(out, "error: {why}");
            return;
        }
        super::monitor::run_into(cmd, self.frame.as_deref_mut(), out);
    }

    fn thread_info(&mut self, vcpu: usize, out: &mut String) {
        use core::fmt::Write;
        if let Some(v) = self.st.vm.vcpus.get(vcpu) {
            let _ = write!(
                out,
                "vm{}.{} on cpu {} (MPIDR {:#x})",
                self.st.vm.id, vcpu, v.pcpu, v.mpidr
            );
        }
    }

    fn detach(&mut self) {
        let vm = self.st.vm;
        remove_all_breakpoints(self.st);
        vm.debug.set_attached(false);
        self.reload_if_current();
        control::resume_vm(vm);
    }

    fn kill(&mut self) {
        let vm = self.st.vm;
        remove_all_breakpoints(self.st);
        vm.debug.set_attached(false);
        control::resume_vm(vm);
        vm.power_off("killed from GDB");
    }
}
