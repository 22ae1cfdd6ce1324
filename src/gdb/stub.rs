//! The protocol's dispatcher: framed input in, replies out, the debugged machine
//! behind the [`Target`] trait. Portable and allocation-light, so the host tests
//! and the fuzz target drive exactly the code the hypervisor runs.
//!
//! All-stop mode: when the target stops, every thread (vCPU) stops; `c` resumes
//! them all. A single step runs only the stepped vCPU (the others stay stopped until
//! the next continue), so a step lands where GDB expects even while other vCPUs
//! would otherwise run on.
#![forbid(unsafe_code)]

use super::command::{self, Action, BreakKind, Command, ThreadSel};
use super::packet::{encode, encode_hex, push_hex, Input, MAX_PACKET};
use super::regs::{RegId, FIRST_SYSREG};
use alloc::string::String;
use alloc::vec::Vec;

/// Signals reported in stop replies.
pub const SIGINT: u8 = 2;
pub const SIGTRAP: u8 = 5;

/// Why a target operation failed; each maps to an `E` reply.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Error {
    /// The address is not mapped, or not guest RAM (`E0e`, EFAULT).
    Fault,
    /// The value, register or thread is not accepted (`E16`, EINVAL).
    Invalid,
    /// No room (breakpoint slots used up) (`E1c`, ENOSPC).
    NoSpace,
}

impl Error {
    fn code(self) -> &'static [u8] {
        match self {
            Self::Fault => b"E0e",
            Self::Invalid => b"E16",
            Self::NoSpace => b"E1c",
        }
    }
}

/// A malformed packet (bad hex, a wrong length, a missing field).
const E_MALFORMED: &[u8] = b"E01";
/// A packet longer than `PacketSize`.
const E_TOO_LONG: &[u8] = b"E02";

/// A stop to report: the vCPU (0-based) and the signal.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Stop {
    pub vcpu: usize,
    pub signal: u8,
}

/// The debugged machine. vCPUs are numbered from 0 here (threads from 1 on the
/// wire). Every method is called only while the target is stopped, except
/// [`Target::interrupt`].
pub trait Target {
    /// How many vCPUs (threads) there are.
    fn vcpus(&self) -> usize;
    /// How many system registers the description lists.
    fn sysregs(&self) -> usize;
    /// Size in bytes of system register `index`.
    fn sysreg_size(&self, index: usize) -> usize;
    /// The target description.
    fn target_xml(&mut self) -> &str;
    /// Reads a register (little-endian) into `buf`; returns its size.
    fn read_register(
        &mut self,
        vcpu: usize,
        reg: RegId,
        buf: &mut [u8; 16],
    ) -> Result<usize, Error>;
    /// Writes a register from little-endian bytes of its exact size.
    fn write_register(&mut self, vcpu: usize, reg: RegId, value: &[u8]) -> Result<(), Error>;
    /// Reads memory at a virtual address as `vcpu` sees it; returns how many bytes
    /// from the start could be read (0 is an error).
    fn read_memory(&mut self, vcpu: usize, addr: u64, buf: &mut [u8]) -> Result<usize, Error>;
    /// Writes memory at a virtual address as `vcpu` sees it: all of it or nothing.
    fn write_memory(&mut self, vcpu: usize, addr: u64, data: &[u8]) -> Result<(), Error>;
    /// Inserts or removes a breakpoint at a virtual address as `vcpu` sees it.
    fn breakpoint(
        &mut self,
        vcpu: usize,
        kind: BreakKind,
        addr: u64,
        insert: bool,
    ) -> Result<(), Error>;
    /// Lets the target run: every vCPU, or only `step` for one instruction.
    fn resume(&mut self, step: Option<usize>);
    /// Stops a running target now; returns the vCPU to report.
    fn interrupt(&mut self) -> usize;
    /// Runs a console command (`monitor CMD`), appending its output.
    fn monitor(&mut self, cmd: &str, out: &mut String);
    /// A line about a vCPU for `info threads`.
    fn thread_info(&mut self, vcpu: usize, out: &mut String);
    /// Removes every breakpoint and lets the target run without the debugger.
    fn detach(&mut self);
    /// Ends the debugged machine (`kill`).
    fn kill(&mut self);
}

/// What the caller must do after an input.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum After {
    /// Keep going.
    Stay,
    /// The debugger detached or killed the target: the session is over.
    End,
}

/// The session state of one connected GDB.
pub struct Stub {
    ack_mode: bool,
    /// Thread for register and memory access (0-based vCPU).
    general: usize,
    running: bool,
    stop: Stop,
    /// The last packet sent, for a NAK.
    last: Vec<u8>,
    /// Position in the thread list for `qsThreadInfo`.
    thread_cursor: usize,
}

impl Stub {
    /// A session with the target already stopped for `stop` (the attach).
    pub fn new(stop: Stop) -> Self {
        Self {
            ack_mode: true,
            general: stop.vcpu,
            running: false,
            stop,
            last: Vec::new(),
            thread_cursor: 0,
        }
    }

    /// Whether the target runs (a stop reply is owed to GDB).
    pub fn is_running(&self) -> bool {
        self.running
    }

    fn send(&mut self, body: &[u8], out: &mut Vec<u8>) {
        self.last.clear();
        encode(body, &mut self.last);
        out.extend_from_slice(&self.last);
    }

    fn stop_reply(&mut self, out: &mut Vec<u8>) {
        let mut r = Vec::with_capacity(32);
        r.push(b'T');
        r.extend_from_slice(&super::packet::hex_byte(self.stop.signal));
        r.extend_from_slice(alloc::format!("thread:{:x};", self.stop.vcpu + 1).as_bytes());
        self.send(&r, out);
    }

    /// Sends the stop reply for the stop the session began with: for a session
    /// that begins with GDB's Ctrl-C (a GDB that still believes it is attached).
    pub fn announce_stop(&mut self, out: &mut Vec<u8>) {
        self.stop_reply(out);
    }

    /// The target stopped on its own (a breakpoint, a step): tells GDB.
    pub fn report_stop(&mut self, stop: Stop, out: &mut Vec<u8>) {
        if !self.running {
            return;
        }
        self.running = false;
        self.stop = stop;
        self.general = stop.vcpu;
        self.stop_reply(out);
    }

    /// The target ended while running (the VM powered off): `W` (exit status).
    pub fn report_exit(&mut self, status: u8, out: &mut Vec<u8>) {
        self.running = false;
        let mut r = b"W".to_vec();
        r.extend_from_slice(&super::packet::hex_byte(status));
        self.send(&r, out);
    }

    /// Handles one framed input (`body`: the framer's body for [`Input::Packet`]).
    pub fn input<T: Target>(
        &mut self,
        input: Input,
        body: &[u8],
        target: &mut T,
        out: &mut Vec<u8>,
    ) -> After {
        match input {
            Input::None | Input::Ack | Input::Other(_) => After::Stay,
            Input::Nack => {
                if self.ack_mode {
                    out.extend_from_slice(&self.last);
                }
                After::Stay
            }
            Input::BadChecksum => {
                out.push(b'-');
                After::Stay
            }
            Input::Malformed | Input::TooLong => {
                self.ack(out);
                let e = if input == Input::TooLong {
                    E_TOO_LONG
                } else {
                    E_MALFORMED
                };
                self.send(e, out);
                After::Stay
            }
            Input::Interrupt => {
                if self.running {
                    let vcpu = target.interrupt();
                    self.running = false;
                    self.stop = Stop {
                        vcpu,
                        signal: SIGINT,
                    };
                    self.general = vcpu;
                    self.stop_reply(out);
                }
                After::Stay
            }
            Input::Packet => {
                let parsed = command::parse(body);
                if parsed == Ok(Command::Supported) {
                    // Every GDB opens with qSupported, in ack mode: a new debugger
                    // on the line (the previous one vanished without detaching).
                    self.ack_mode = true;
                    if self.running {
                        let vcpu = target.interrupt();
                        self.running = false;
                        self.stop = Stop {
                            vcpu,
                            signal: SIGINT,
                        };
                        self.general = vcpu;
                    }
                }
                self.ack(out);
                match parsed {
                    Ok(c) => self.dispatch(c, target, out),
                    Err(command::Malformed) => {
                        self.send(E_MALFORMED, out);
                        After::Stay
                    }
                }
            }
        }
    }

    fn ack(&self, out: &mut Vec<u8>) {
        if self.ack_mode {
            out.push(b'+');
        }
    }

    fn thread(&self, t: usize, target: &impl Target) -> Option<usize> {
        (t >= 1 && t <= target.vcpus()).then(|| t - 1)
    }

    fn reg_size<T: Target>(target: &T, reg: RegId) -> usize {
        match reg {
            RegId::Sys(i) => target.sysreg_size(i),
            r => r.core_size().unwrap_or(8),
        }
    }

    fn dispatch<T: Target>(&mut self, c: Command, target: &mut T, out: &mut Vec<u8>) -> After {
        // While the target runs, only what does not touch its state is answered.
        if self.running && !matches!(c, Command::NoAckMode | Command::Attached | Command::Unknown) {
            self.send(b"E16", out);
            return After::Stay;
        }
        let reply: Result<Vec<u8>, &[u8]> = match c {
            Command::Unknown => Ok(Vec::new()),
            Command::HaltReason => {
                self.stop_reply(out);
                return After::Stay;
            }
            Command::Supported => Ok(alloc::format!(
                "PacketSize={MAX_PACKET:x};qXfer:features:read+;QStartNoAckMode+;vContSupported+"
            )
            .into_bytes()),
            Command::NoAckMode => {
                self.send(b"OK", out);
                self.ack_mode = false;
                return After::Stay;
            }
            Command::Attached => Ok(b"1".to_vec()),
            Command::CurrentThread => Ok(alloc::format!("QC{:x}", self.general + 1).into_bytes()),
            Command::ThreadInfo { first } => {
                if first {
                    self.thread_cursor = 0;
                }
                let n = target.vcpus();
                if self.thread_cursor >= n {
                    Ok(b"l".to_vec())
                } else {
                    let mut r = b"m".to_vec();
                    let ids: Vec<String> = (self.thread_cursor..n)
                        .map(|i| alloc::format!("{:x}", i + 1))
                        .collect();
                    r.extend_from_slice(ids.join(",").as_bytes());
                    self.thread_cursor = n;
                    Ok(r)
                }
            }
            Command::ThreadExtraInfo(t) => match self.thread(t, target) {
                Some(v) => {
                    let mut s = String::new();
                    target.thread_info(v, &mut s);
                    let mut r = Vec::new();
                    push_hex(s.as_bytes(), &mut r);
                    Ok(r)
                }
                None => Err(Error::Invalid.code()),
            },
            Command::Features {
                annex,
                offset,
                length,
            } => {
                if annex != b"target.xml" {
                    Err(Error::Invalid.code())
                } else {
                    let xml = target.target_xml().as_bytes();
                    let length = length.min(MAX_PACKET - 1);
                    let start = offset.min(xml.len());
                    let end = start.saturating_add(length).min(xml.len());
                    let mut r = Vec::with_capacity(end - start + 1);
                    r.push(if end == xml.len() { b'l' } else { b'm' });
                    r.extend_from_slice(&xml[start..end]);
                    Ok(r)
                }
            }
            Command::Monitor(cmd) => {
                let mut text = String::new();
                target.monitor(cmd.trim(), &mut text);
                // The output as `O` packets (GDB prints them as they come), then OK.
                for chunk in text.as_bytes().chunks(1024) {
                    let mut r = b"O".to_vec();
                    push_hex(chunk, &mut r);
                    self.send(&r, out);
                }
                Ok(b"OK".to_vec())
            }
            Command::ReadRegisters => {
                let mut r = Vec::with_capacity(2 * 800);
                let mut buf = [0u8; 16];
                let mut failed = None;
                for n in 0..FIRST_SYSREG {
                    let reg = RegId::from_num(n, 0).unwrap_or(RegId::Pc);
                    match target.read_register(self.general, reg, &mut buf) {
                        Ok(size) => push_hex(&buf[..size.min(16)], &mut r),
                        Err(e) => {
                            failed = Some(e);
                            break;
                        }
                    }
                }
                match failed {
                    Some(e) => Err(e.code()),
                    None => Ok(r),
                }
            }
            Command::WriteRegisters(hex) => self.write_registers(hex, target),
            Command::ReadRegister(n) => match RegId::from_num(n, target.sysregs()) {
                None => Err(Error::Invalid.code()),
                Some(reg) => {
                    let mut buf = [0u8; 16];
                    match target.read_register(self.general, reg, &mut buf) {
                        Ok(size) => {
                            let mut r = Vec::new();
                            push_hex(&buf[..size.min(16)], &mut r);
                            Ok(r)
                        }
                        Err(e) => Err(e.code()),
                    }
                }
            },
            Command::WriteRegister(n, hex) => match RegId::from_num(n, target.sysregs()) {
                None => Err(Error::Invalid.code()),
                Some(reg) => match super::packet::decode_hex(hex) {
                    Some(v) if v.len() == Self::reg_size(target, reg) => target
                        .write_register(self.general, reg, &v)
                        .map(|()| b"OK".to_vec())
                        .map_err(Error::code),
                    _ => Err(E_MALFORMED),
                },
            },
            Command::ReadMemory(addr, len) => {
                if len == 0 {
                    Ok(Vec::new())
                } else {
                    // As much as GDB asks for up to a full packet of hex: GDB asks for
                    // `PacketSize / 2` bytes at a time.
                    let mut buf = alloc::vec![0u8; len.min(MAX_PACKET / 2)];
                    match target.read_memory(self.general, addr, &mut buf) {
                        Ok(n) if n > 0 => {
                            // Hex and run lengths in one pass, straight from the
                            // bytes read (no hex text in between).
                            self.last.clear();
                            encode_hex(&buf[..n.min(buf.len())], &mut self.last);
                            out.extend_from_slice(&self.last);
                            return After::Stay;
                        }
                        Ok(_) => Err(Error::Fault.code()),
                        Err(e) => Err(e.code()),
                    }
                }
            }
            Command::WriteMemory(addr, data) => self.write_memory(addr, &data, target),
            Command::WriteMemoryBinary(addr, data) => self.write_memory(addr, data, target),
            Command::Breakpoint { insert, kind, addr } => target
                .breakpoint(self.general, kind, addr, insert)
                .map(|()| b"OK".to_vec())
                .map_err(Error::code),
            Command::Continue(addr) => return self.resume(addr, None, target, out),
            Command::Step(addr) => {
                let v = self.general;
                return self.resume(addr, Some(v), target, out);
            }
            Command::VContQuery => Ok(b"vCont;c;C;s;S".to_vec()),
            Command::VCont(actions) => return self.vcont(&actions, target, out),
            Command::SetThread { thread, .. } => match thread {
                // `Hc` is kept for GDB's sake; `s` and `vCont` name their thread.
                ThreadSel::All | ThreadSel::Any => Ok(b"OK".to_vec()),
                ThreadSel::Id(t) => match self.thread(t, target) {
                    Some(v) => {
                        self.general = v;
                        Ok(b"OK".to_vec())
                    }
                    None => Err(Error::Invalid.code()),
                },
            },
            Command::ThreadAlive(t) => match self.thread(t, target) {
                Some(_) => Ok(b"OK".to_vec()),
                None => Err(Error::Invalid.code()),
            },
            Command::Detach => {
                self.send(b"OK", out);
                target.detach();
                return After::End;
            }
            Command::Kill => {
                // No reply: GDB does not wait for one.
                target.kill();
                return After::End;
            }
        };
        match reply {
            Ok(r) => self.send(&r, out),
            Err(e) => self.send(e, out),
        }
        After::Stay
    }

    fn write_registers<T: Target>(
        &mut self,
        hex: &[u8],
        target: &mut T,
    ) -> Result<Vec<u8>, &'static [u8]> {
        let bytes = super::packet::decode_hex(hex).ok_or(E_MALFORMED)?;
        // Exactly the core and FP registers `g` sends, in its order.
        let regs: Vec<RegId> = (0..FIRST_SYSREG)
            .filter_map(|n| RegId::from_num(n, 0))
            .collect();
        let total: usize = regs.iter().map(|r| Self::reg_size(target, *r)).sum();
        if bytes.len() != total {
            return Err(E_MALFORMED);
        }
        let mut at = 0;
        for reg in regs {
            let size = Self::reg_size(target, reg);
            let v = bytes.get(at..at + size).ok_or(E_MALFORMED)?;
            target
                .write_register(self.general, reg, v)
                .map_err(Error::code)?;
            at += size;
        }
        Ok(b"OK".to_vec())
    }

    fn write_memory<T: Target>(
        &mut self,
        addr: u64,
        data: &[u8],
        target: &mut T,
    ) -> Result<Vec<u8>, &'static [u8]> {
        if data.is_empty() {
            // `X addr,0:` probes whether binary writes are supported.
            return Ok(b"OK".to_vec());
        }
        target
            .write_memory(self.general, addr, data)
            .map(|()| b"OK".to_vec())
            .map_err(Error::code)
    }

    fn resume<T: Target>(
        &mut self,
        addr: Option<u64>,
        step: Option<usize>,
        target: &mut T,
        out: &mut Vec<u8>,
    ) -> After {
        if let Some(pc) = addr {
            let v = step.unwrap_or(self.general);
            if let Err(e) = target.write_register(v, RegId::Pc, &pc.to_le_bytes()) {
                self.send(e.code(), out);
                return After::Stay;
            }
        }
        self.running = true;
        target.resume(step);
        After::Stay
    }

    fn vcont<T: Target>(&mut self, actions: &[Action], target: &mut T, out: &mut Vec<u8>) -> After {
        // The leftmost action that applies to a thread wins; in all-stop mode the
        // only thing that matters is whether some thread steps.
        let step = match actions.iter().find(|a| a.step).map(|a| a.thread) {
            None => None,
            Some(ThreadSel::All | ThreadSel::Any) => Some(self.general),
            Some(ThreadSel::Id(t)) => match self.thread(t, target) {
                Some(v) => Some(v),
                None => {
                    self.send(Error::Invalid.code(), out);
                    return After::Stay;
                }
            },
        };
        self.resume(None, step, target, out)
    }
}
