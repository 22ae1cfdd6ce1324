//! The GDB remote protocol end to end: the fuzz input is what "GDB" sends, fed byte
//! by byte through `gdb::packet::Framer` into `gdb::stub::Stub::input`, against an
//! in-memory fake machine (three vCPUs, registers, a small sparse memory,
//! breakpoints, a monitor that echoes). Besides "no panic", every byte must keep
//! these invariants:
//!
//! - Everything the stub writes re-frames (with a second `Framer`) into `+`, `-`
//!   and packets with good checksums, and each answer ends on a packet boundary.
//! - No reply body exceeds `MAX_PACKET` (the `qXfer` chunk is capped at
//!   `MAX_PACKET - 1` bytes plus its `m`/`l`; `monitor` output comes in `O`
//!   packets of at most 1024 bytes, hex-encoded).
//! - The answer has the shape the protocol prescribes for what came in: a NAK for
//!   a bad checksum, the last packet again for a NAK, an ack (in ack mode) and an
//!   `E` reply for malformed packets, one reply per command (none for a resume or
//!   `k`, several `O` then `OK` for `monitor`), `E16` for state-touching commands
//!   while the target runs, a stop reply for Ctrl-C only while it runs.
//! - `After::End` comes only for a `D` or `k` packet (and always for one while
//!   the target is stopped), after the target was told to detach or was killed.
//! - A `qSupported` (a new GDB on the line) puts the stub back in ack mode and
//!   stops a running target; a target that powers off while running gets one `W`.
//! - The target is used as `stub::Target` promises: only valid vCPUs, only while
//!   stopped (`interrupt` only while running), register writes of exactly the
//!   register's size.
//! - Replies agree with the fake: memory read back is the memory, `qXfer` chunks
//!   are slices of the target description.
//!
//! Sessions begin as `hv::gdb::start` begins them: on a `$`, or on GDB's Ctrl-C,
//! which is announced with a stop reply at once. After a session ends (`D`, `k`,
//! the target's exit) the next byte begins a new one.
#![no_main]

use hypervisor::gdb::command::{self, BreakKind, Command};
use hypervisor::gdb::packet::{decode_hex, Framer, Input, MAX_PACKET};
use hypervisor::gdb::regs::{RegId, FIRST_SYSREG};
use hypervisor::gdb::stub::{After, Error, Stop, Stub, Target, SIGINT, SIGTRAP};
use hypervisor::gdb::tdesc;
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

const VCPUS: usize = 3;
/// The fake's system registers, as (name, width in bits).
const SYSREGS: [(&str, u8); 4] = [
    ("SCTLR_EL1", 64),
    ("SCTLR", 32),
    ("TTBR0_EL1", 64),
    ("MIDR_EL1", 64),
];
/// The guest powers the machine off when resumed with this in vCPU 0's x0 (PSCI
/// `SYSTEM_OFF`): the stub reports an exit and the session ends.
const SYSTEM_OFF: u64 = 0x8400_0008;
/// A system register that refuses any value but 0 (a "constant").
const CONSTANT: usize = 1;
/// Breakpoint slots before `NoSpace`.
const SLOTS: usize = 4;
/// The `g` packet's registers in bytes: 31 x + sp + pc, cpsr, 32 v, fpsr + fpcr.
const G_BYTES: usize = 33 * 8 + 4 + 32 * 16 + 2 * 4;
/// The largest `monitor` output chunk the stub sends (bytes before hex encoding).
const MONITOR_CHUNK: usize = 1024;

fn target_xml() -> &'static str {
    static XML: OnceLock<String> = OnceLock::new();
    XML.get_or_init(|| {
        let mut xml = tdesc::generate(SYSREGS.iter().copied());
        // Characters the stub must escape on the wire (the real description has
        // none, but a `qXfer` chunk is any slice of whatever the target gives).
        xml.push_str("<!-- escaped: $ # } * -->\n");
        xml
    })
}

/// Mapped guest memory: (base, contents). The last region ends at the top of the
/// address space, so reads and writes that would wrap are exercised.
fn memory() -> Vec<(u64, Vec<u8>)> {
    vec![
        (0x1000, (0..=255u8).collect()),
        (0x4000_0000, vec![0; 64]),
        (u64::MAX - 63, vec![0xee; 64]),
    ]
}

/// What the target does on its own while it runs.
#[derive(Clone, Copy, Debug)]
enum Event {
    /// A step completes, or a breakpoint is hit.
    Stop(Stop),
    /// The machine powered off, with this exit status.
    Exit(u8),
}

struct Fake {
    regs: Vec<[u8; 16]>,
    mem: Vec<(u64, Vec<u8>)>,
    breaks: Vec<(BreakKind, u64)>,
    running: bool,
    resumes: usize,
    /// What the target will report.
    pending: Option<Event>,
    detached: bool,
    killed: bool,
}

impl Fake {
    fn new() -> Self {
        Self {
            regs: vec![[0; 16]; VCPUS * (FIRST_SYSREG + SYSREGS.len())],
            mem: memory(),
            breaks: Vec::new(),
            running: false,
            resumes: 0,
            pending: None,
            detached: false,
            killed: false,
        }
    }

    fn regnum(reg: RegId) -> usize {
        match reg {
            RegId::X(i) => i as usize,
            RegId::Sp => 31,
            RegId::Pc => 32,
            RegId::Cpsr => 33,
            RegId::V(i) => 34 + i as usize,
            RegId::Fpsr => 66,
            RegId::Fpcr => 67,
            RegId::Sys(i) => FIRST_SYSREG + i,
        }
    }

    fn size(reg: RegId) -> usize {
        match reg {
            RegId::Sys(i) => SYSREGS[i].1 as usize / 8,
            r => r.core_size().expect("a core register"),
        }
    }

    /// The stub's promises for every call but `interrupt`.
    fn stopped(&self, vcpu: usize) {
        assert!(!self.running, "target called while running");
        assert!(vcpu < VCPUS, "vCPU {vcpu} does not exist");
        assert!(
            !self.detached && !self.killed,
            "target called after the end"
        );
    }

    fn byte(&mut self, addr: u64) -> Option<&mut u8> {
        self.mem.iter_mut().find_map(|(base, bytes)| {
            let off = usize::try_from(addr.checked_sub(*base)?).ok()?;
            bytes.get_mut(off)
        })
    }

    fn mapped(&mut self, addr: u64, len: usize) -> bool {
        (0..len as u64).all(|i| addr.checked_add(i).is_some_and(|a| self.byte(a).is_some()))
    }
}

impl Target for Fake {
    fn vcpus(&self) -> usize {
        VCPUS
    }
    fn sysregs(&self) -> usize {
        SYSREGS.len()
    }
    fn sysreg_size(&self, index: usize) -> usize {
        SYSREGS[index].1 as usize / 8
    }
    fn target_xml(&mut self) -> &str {
        target_xml()
    }
    fn read_register(
        &mut self,
        vcpu: usize,
        reg: RegId,
        buf: &mut [u8; 16],
    ) -> Result<usize, Error> {
        self.stopped(vcpu);
        // The last vCPU has no FP state to show (as if it ran AArch32 code).
        if vcpu == VCPUS - 1 && reg == RegId::Fpcr {
            return Err(Error::Invalid);
        }
        *buf = self.regs[vcpu * (FIRST_SYSREG + SYSREGS.len()) + Self::regnum(reg)];
        Ok(Self::size(reg))
    }
    fn write_register(&mut self, vcpu: usize, reg: RegId, value: &[u8]) -> Result<(), Error> {
        self.stopped(vcpu);
        assert_eq!(
            value.len(),
            Self::size(reg),
            "{reg:?} written at a wrong size"
        );
        if reg == RegId::Sys(CONSTANT) && value.iter().any(|&b| b != 0) {
            return Err(Error::Invalid);
        }
        if reg == RegId::Pc && value[0] & 3 != 0 {
            return Err(Error::Invalid);
        }
        let mut b = [0u8; 16];
        b[..value.len()].copy_from_slice(value);
        self.regs[vcpu * (FIRST_SYSREG + SYSREGS.len()) + Self::regnum(reg)] = b;
        Ok(())
    }
    fn read_memory(&mut self, vcpu: usize, addr: u64, buf: &mut [u8]) -> Result<usize, Error> {
        self.stopped(vcpu);
        assert!(
            !buf.is_empty() && buf.len() < MAX_PACKET,
            "read of {} bytes",
            buf.len()
        );
        let mut n = 0;
        for (i, b) in buf.iter_mut().enumerate() {
            match addr.checked_add(i as u64).and_then(|a| self.byte(a)) {
                Some(v) => *b = *v,
                None => break,
            }
            n += 1;
        }
        // Nothing readable: the last vCPU's translation says so as an error, the
        // others as 0 bytes (the stub must answer both with `E0e`).
        if n == 0 && vcpu == VCPUS - 1 {
            return Err(Error::Fault);
        }
        Ok(n)
    }
    fn write_memory(&mut self, vcpu: usize, addr: u64, data: &[u8]) -> Result<(), Error> {
        self.stopped(vcpu);
        if !self.mapped(addr, data.len()) {
            return Err(Error::Fault);
        }
        for (i, &v) in data.iter().enumerate() {
            *self.byte(addr + i as u64).expect("mapped") = v;
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
        self.stopped(vcpu);
        if insert {
            if self.breaks.len() == SLOTS {
                return Err(Error::NoSpace);
            }
            // A software breakpoint is an instruction written into memory.
            if kind == BreakKind::Software && !self.mapped(addr, 4) {
                return Err(Error::Fault);
            }
            self.breaks.push((kind, addr));
        } else {
            let i = self
                .breaks
                .iter()
                .position(|b| *b == (kind, addr))
                .ok_or(Error::Invalid)?;
            self.breaks.remove(i);
        }
        Ok(())
    }
    fn resume(&mut self, step: Option<usize>) {
        self.stopped(step.unwrap_or(0));
        self.running = true;
        self.resumes += 1;
        // A step stops at once; a continue powers off on SYSTEM_OFF, stops on "a
        // breakpoint" if there is one, else runs until Ctrl-C.
        let x0 = u64::from_le_bytes(self.regs[0][..8].try_into().expect("8 bytes"));
        self.pending = match step {
            Some(vcpu) => Some(Event::Stop(Stop {
                vcpu,
                signal: SIGTRAP,
            })),
            None if x0 == SYSTEM_OFF => Some(Event::Exit(self.resumes as u8)),
            None if !self.breaks.is_empty() => Some(Event::Stop(Stop {
                vcpu: self.resumes % VCPUS,
                signal: SIGTRAP,
            })),
            None => None,
        };
    }
    fn interrupt(&mut self) -> usize {
        assert!(self.running, "interrupt while stopped");
        self.running = false;
        self.pending = None;
        (self.resumes + 1) % VCPUS
    }
    fn monitor(&mut self, cmd: &str, out: &mut String) {
        self.stopped(0);
        out.push_str("ran '");
        out.push_str(cmd);
        out.push_str("'\n");
        if cmd == "long" {
            out.push_str(&"x".repeat(3000));
        }
    }
    fn thread_info(&mut self, vcpu: usize, out: &mut String) {
        self.stopped(vcpu);
        out.push_str(&format!("vm0.{vcpu}"));
    }
    fn detach(&mut self) {
        self.stopped(0);
        self.detached = true;
    }
    fn kill(&mut self) {
        self.stopped(0);
        self.killed = true;
    }
}

/// One byte of what the stub wrote, re-framed.
#[derive(Debug, PartialEq)]
enum Sent {
    Ack,
    Nack,
    Packet(Vec<u8>),
}

/// Re-frames the stub's output; any byte that is not part of `+`, `-` or a packet
/// with a good checksum, or a packet left unfinished, fails.
fn reframe(out: &[u8], last_wire: &mut Vec<u8>) -> Vec<Sent> {
    // Most bytes get no answer: spare them a framer (4 KiB, poisoned and unpoisoned
    // by AddressSanitizer at every call).
    if out.is_empty() {
        return Vec::new();
    }
    let mut f = Framer::new();
    let mut sent = Vec::new();
    let mut start = 0;
    for (i, &b) in out.iter().enumerate() {
        if b == b'$' && !f.in_packet() {
            start = i;
        }
        match f.feed(b) {
            Input::None => {}
            Input::Ack => sent.push(Sent::Ack),
            Input::Nack => sent.push(Sent::Nack),
            Input::Packet => {
                let body = f.body();
                assert!(body.len() <= MAX_PACKET, "reply of {} bytes", body.len());
                if body.first() == Some(&b'O') && body.len() > 1 {
                    assert!(
                        body.len() <= 1 + 2 * MONITOR_CHUNK,
                        "O packet of {}",
                        body.len()
                    );
                }
                sent.push(Sent::Packet(body.to_vec()));
                last_wire.clear();
                last_wire.extend_from_slice(&out[start..=i]);
            }
            e => panic!("the stub wrote {e:?}: {:?}", String::from_utf8_lossy(out)),
        }
    }
    assert!(
        !f.in_packet(),
        "unfinished packet: {:?}",
        String::from_utf8_lossy(out)
    );
    sent
}

struct Session {
    framer: Framer,
    stub: Stub,
    target: Fake,
    /// Whether the stub still acknowledges packets (until `QStartNoAckMode`).
    ack_mode: bool,
    /// The last packet the stub wrote, as it went on the wire.
    last_wire: Vec<u8>,
}

impl Session {
    /// A session as `hv::gdb::start` begins one on its first byte: a `$` (the
    /// target stopped for GDB, SIGTRAP), or GDB's Ctrl-C 0x03 (a GDB that believes
    /// it is still attached: SIGINT, announced at once).
    fn new(first: u8) -> Self {
        let signal = if first == 0x03 { SIGINT } else { SIGTRAP };
        let mut s = Self {
            framer: Framer::new(),
            stub: Stub::new(Stop { vcpu: 0, signal }),
            target: Fake::new(),
            ack_mode: true,
            last_wire: Vec::new(),
        };
        if first == 0x03 {
            let mut out = Vec::new();
            s.stub.announce_stop(&mut out);
            let sent = reframe(&out, &mut s.last_wire);
            let reply = format!("T{SIGINT:02x}thread:1;");
            assert_eq!(sent, [Sent::Packet(reply.into_bytes())]);
            assert!(!s.stub.is_running());
        }
        s
    }

    /// One byte from GDB: frames it, runs it, checks the answer; true when the
    /// session ended.
    fn feed(&mut self, b: u8) -> bool {
        let input = self.framer.feed(b);
        // The stub reads the body only for a packet (a copy: `input` borrows all
        // of `self`).
        if input == Input::Packet {
            let body = self.framer.body().to_vec();
            self.input(input, &body)
        } else {
            self.input(input, &[])
        }
    }

    /// One framed input: runs it, checks the answer; true when the session ended.
    fn input(&mut self, input: Input, body: &[u8]) -> bool {
        if input == Input::None {
            // Inside a packet: nothing to answer (the bulk of all bytes).
            let mut out = Vec::new();
            let after = self.stub.input(input, body, &mut self.target, &mut out);
            assert!(out.is_empty() && after == After::Stay, "{out:?}");
            return false;
        }
        let mut was_running = self.stub.is_running();
        let parsed = (input == Input::Packet).then(|| command::parse(body));
        if parsed == Some(Ok(Command::Supported)) {
            // Every GDB opens with qSupported in ack mode: a new debugger on the
            // line. The stub goes back to ack mode and stops a running target.
            self.ack_mode = true;
            was_running = false;
        }
        let mut out = Vec::new();
        let after = self.stub.input(input, body, &mut self.target, &mut out);
        let sent = reframe(&out, &mut self.last_wire);
        let packets: Vec<&[u8]> = sent
            .iter()
            .filter_map(|s| match s {
                Sent::Packet(p) => Some(&p[..]),
                _ => None,
            })
            .collect();
        let show = || {
            format!(
                "{input:?} {:?} -> {:?}",
                String::from_utf8_lossy(body),
                String::from_utf8_lossy(&out)
            )
        };
        let mut ends = false;
        match input {
            Input::None | Input::Ack | Input::Other(_) => assert!(out.is_empty(), "{}", show()),
            Input::BadChecksum => assert_eq!(out, b"-", "{}", show()),
            Input::Nack => {
                if self.ack_mode {
                    // The last packet again (none before the first reply).
                    assert_eq!(out, self.last_wire, "NAK answered with {}", show());
                } else {
                    assert!(out.is_empty(), "{}", show());
                }
            }
            Input::Interrupt => {
                if was_running {
                    assert_eq!(packets.len(), 1, "{}", show());
                    assert!(packets[0].starts_with(format!("T{SIGINT:02x}thread:").as_bytes()));
                } else {
                    assert!(out.is_empty(), "Ctrl-C while stopped: {}", show());
                }
            }
            Input::Malformed | Input::TooLong => {
                self.acked(&sent, &show);
                let e: &[u8] = if input == Input::TooLong {
                    b"E02"
                } else {
                    b"E01"
                };
                assert_eq!(packets, [e], "{}", show());
            }
            Input::Packet => {
                self.acked(&sent, &show);
                let cmd = parsed.expect("parsed");
                ends = self.command(cmd, was_running, &packets, &show);
            }
        }
        assert_eq!(after == After::End, ends, "After::{after:?} for {}", show());
        if ends {
            assert!(self.target.detached || self.target.killed);
            return true;
        }
        match self.target.pending.take() {
            // The target stops on its own: the stub tells GDB, once.
            Some(Event::Stop(stop)) => {
                assert!(self.stub.is_running());
                self.target.running = false;
                let mut out = Vec::new();
                self.stub.report_stop(stop, &mut out);
                let sent = reframe(&out, &mut self.last_wire);
                let reply = format!("T{SIGTRAP:02x}thread:{:x};", stop.vcpu + 1);
                assert_eq!(sent, [Sent::Packet(reply.into_bytes())]);
                let mut again = Vec::new();
                self.stub.report_stop(stop, &mut again);
                assert!(again.is_empty(), "a second stop reported while stopped");
            }
            // The machine is gone: `W`, and the session is over (as in hv::gdb).
            Some(Event::Exit(status)) => {
                assert!(self.stub.is_running());
                let mut out = Vec::new();
                self.stub.report_exit(status, &mut out);
                let sent = reframe(&out, &mut self.last_wire);
                let reply = format!("W{status:02x}");
                assert_eq!(sent, [Sent::Packet(reply.into_bytes())]);
                assert!(!self.stub.is_running());
                return true;
            }
            None => {}
        }
        assert_eq!(self.stub.is_running(), self.target.running);
        false
    }

    /// In ack mode a packet is acknowledged first, once; in no-ack mode never.
    fn acked(&self, sent: &[Sent], show: &dyn Fn() -> String) {
        let acks = sent.iter().filter(|s| **s == Sent::Ack).count();
        assert!(!sent.contains(&Sent::Nack), "{}", show());
        if self.ack_mode {
            assert!(sent.first() == Some(&Sent::Ack) && acks == 1, "{}", show());
        } else {
            assert_eq!(acks, 0, "{}", show());
        }
    }

    /// Checks the replies to one packet; returns whether the session must end.
    fn command(
        &mut self,
        parsed: Result<Command, command::Malformed>,
        was_running: bool,
        packets: &[&[u8]],
        show: &dyn Fn() -> String,
    ) -> bool {
        let cmd = match parsed {
            Ok(c) => c,
            Err(command::Malformed) => {
                assert_eq!(packets, [b"E01"], "{}", show());
                return false;
            }
        };
        if was_running
            && !matches!(
                cmd,
                Command::NoAckMode | Command::Attached | Command::Unknown
            )
        {
            assert_eq!(packets, [b"E16"], "while running: {}", show());
            return false;
        }
        match cmd {
            Command::Kill => {
                assert!(packets.is_empty() && self.target.killed, "{}", show());
                return true;
            }
            Command::Detach => {
                assert!(packets == [b"OK"] && self.target.detached, "{}", show());
                return true;
            }
            Command::Continue(_) | Command::Step(_) | Command::VCont(_) => {
                // No reply until the target stops, or an error and still stopped.
                match packets {
                    [] => assert!(self.stub.is_running(), "{}", show()),
                    [e] => assert!(e[0] == b'E' && !self.stub.is_running(), "{}", show()),
                    _ => panic!("{}", show()),
                }
                return false;
            }
            Command::Monitor(_) => {
                let (ok, text) = packets.split_last().expect("a reply");
                assert_eq!(*ok, b"OK", "{}", show());
                assert!(!text.is_empty(), "the echo is missing: {}", show());
                for p in text {
                    assert!(p[0] == b'O' && decode_hex(&p[1..]).is_some(), "{}", show());
                }
                return false;
            }
            _ => {}
        }
        assert_eq!(packets.len(), 1, "one reply: {}", show());
        let reply = packets[0];
        match cmd {
            Command::NoAckMode => {
                assert_eq!(reply, b"OK");
                self.ack_mode = false;
            }
            Command::HaltReason => assert!(reply.starts_with(b"T"), "{}", show()),
            Command::ReadRegisters if reply[0] != b'E' => {
                assert_eq!(reply.len(), 2 * G_BYTES, "{}", show());
            }
            Command::ReadMemory(addr, len) if reply.first() != Some(&b'E') => {
                let bytes = decode_hex(reply).expect("hex");
                assert!(bytes.len() <= len, "{}", show());
                assert_eq!(bytes.is_empty(), len == 0, "{}", show());
                for (i, b) in bytes.iter().enumerate() {
                    let real = self.target.byte(addr + i as u64).copied();
                    assert_eq!(Some(*b), real, "memory at {addr:#x}+{i}: {}", show());
                }
            }
            Command::ReadMemory(addr, len) => {
                // Only an address with nothing readable is an error.
                assert!(reply == b"E0e" && len > 0, "{}", show());
                assert!(self.target.byte(addr).is_none(), "{}", show());
            }
            Command::Features { offset, .. } if reply[0] != b'E' => {
                let xml = target_xml().as_bytes();
                let start = offset.min(xml.len());
                let data = &reply[1..];
                assert_eq!(data, &xml[start..start + data.len()], "{}", show());
                let last = start + data.len() == xml.len();
                assert_eq!(reply[0], if last { b'l' } else { b'm' }, "{}", show());
            }
            _ => {}
        }
        false
    }
}

fuzz_target!(|data: &[u8]| {
    // The session to come: it starts on the next byte.
    let mut session: Option<Session> = None;
    for &b in data {
        let s = match &mut session {
            Some(s) => s,
            None => {
                let s = session.insert(Session::new(b));
                if b == 0x03 {
                    continue; // announced, not fed
                }
                s
            }
        };
        if s.feed(b) {
            session = None;
        }
    }
});
