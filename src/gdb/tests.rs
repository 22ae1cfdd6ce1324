//! Host tests of the protocol: framing, every reply for malformed input, the
//! target description, and a whole session against a fake target.

use super::command::{self, BreakKind, Command, ThreadSel};
use super::packet::{decode_hex, encode, Framer, Input, MAX_PACKET};
use super::regs::{RegId, FIRST_SYSREG};
use super::stub::{After, Error, Stop, Stub, Target, SIGINT, SIGTRAP};
use super::tdesc;
use crate::cpreg::{debugger_view, Features, Reg};
use alloc::string::String;
use alloc::vec::Vec;
use std::collections::BTreeMap;

fn frame(bytes: &[u8]) -> (Vec<Input>, Vec<Vec<u8>>) {
    let mut f = Framer::new();
    let mut events = Vec::new();
    let mut bodies = Vec::new();
    for &b in bytes {
        match f.feed(b) {
            Input::None => {}
            Input::Packet => {
                bodies.push(f.body().to_vec());
                events.push(Input::Packet);
            }
            e => events.push(e),
        }
    }
    (events, bodies)
}

fn packet(body: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    encode(body, &mut v);
    v
}

#[test]
fn frames_a_packet_and_checks_its_checksum() {
    let (ev, bodies) = frame(b"$qSupported#37");
    assert_eq!(ev, [Input::Packet]);
    assert_eq!(bodies, [b"qSupported".to_vec()]);
    // Upper-case checksum digits are accepted too.
    let (ev, _) = frame(b"$g#67");
    assert_eq!(ev, [Input::Packet]);
    let (ev, _) = frame(b"$g#68");
    assert_eq!(ev, [Input::BadChecksum]);
    let (ev, _) = frame(b"$g#6z");
    assert_eq!(ev, [Input::BadChecksum]);
    let (ev, _) = frame(b"$g#x7");
    assert_eq!(ev, [Input::BadChecksum]);
}

#[test]
fn control_bytes_outside_packets() {
    let (ev, _) = frame(b"+-\x03a");
    assert_eq!(
        ev,
        [
            Input::Ack,
            Input::Nack,
            Input::Interrupt,
            Input::Other(b'a')
        ]
    );
    // 0x03 inside a packet is data, not an interrupt.
    let mut raw = b"$X0,1:".to_vec();
    raw.push(3);
    let sum: u8 = raw[1..].iter().fold(0u8, |s, &b| s.wrapping_add(b));
    raw.extend_from_slice(format!("#{sum:02x}").as_bytes());
    let (ev, bodies) = frame(&raw);
    assert_eq!(ev, [Input::Packet]);
    assert_eq!(bodies[0], b"X0,1:\x03");
}

#[test]
fn escapes_and_run_lengths_are_decoded() {
    // `}` escapes: 0x7d 0x5d is `}`, 0x7d 0x03 is `#`, 0x7d 0x04 is `$`, 0x7d 0x0a is `*`.
    let body = b"X0,4:}]}\x03}\x04}\x0a";
    let sum: u8 = body.iter().fold(0u8, |s, &b| s.wrapping_add(b));
    let mut raw = b"$".to_vec();
    raw.extend_from_slice(body);
    raw.extend_from_slice(format!("#{sum:02x}").as_bytes());
    let (ev, bodies) = frame(&raw);
    assert_eq!(ev, [Input::Packet]);
    assert_eq!(bodies[0], b"X0,4:}#$*");
    // `0* ` is "0" and 3 more (0x20 - 29): "0000".
    let body = b"M0,2:0* ";
    let sum: u8 = body.iter().fold(0u8, |s, &b| s.wrapping_add(b));
    let mut raw = b"$".to_vec();
    raw.extend_from_slice(body);
    raw.extend_from_slice(format!("#{sum:02x}").as_bytes());
    let (_, bodies) = frame(&raw);
    assert_eq!(bodies[0], b"M0,2:0000");
    // A run with nothing before it, or a count below 29, is malformed.
    for bad in [&b"*!"[..], b"g*\x10"] {
        let sum: u8 = bad.iter().fold(0u8, |s, &b| s.wrapping_add(b));
        let mut raw = b"$".to_vec();
        raw.extend_from_slice(bad);
        raw.extend_from_slice(format!("#{sum:02x}").as_bytes());
        assert_eq!(frame(&raw).0, [Input::Malformed], "{bad:?}");
    }
}

#[test]
fn encode_escapes_and_round_trips() {
    let body = b"a$b#c}d*e";
    let wire = packet(body);
    assert_eq!(&wire[..], b"$a}\x04b}\x03c}]d}\x0ae#51".as_slice());
    let (ev, bodies) = frame(&wire);
    assert_eq!(ev, [Input::Packet]);
    assert_eq!(bodies[0], body);
}

#[test]
fn a_dollar_restarts_a_cut_packet_and_oversize_is_refused() {
    let (ev, bodies) = frame(b"$m0,4$g#67");
    assert_eq!(ev, [Input::Packet]);
    assert_eq!(bodies[0], b"g");
    let body = vec![b'a'; MAX_PACKET + 1];
    let wire = packet(&body);
    assert_eq!(frame(&wire).0, [Input::TooLong]);
    let body = vec![b'a'; MAX_PACKET];
    assert_eq!(frame(&packet(&body)).0, [Input::Packet]);
    // And the framer works after either.
    let mut w = packet(&vec![b'a'; MAX_PACKET + 10]);
    w.extend_from_slice(b"$g#67");
    assert_eq!(frame(&w).0, [Input::TooLong, Input::Packet]);
}

#[test]
fn commands_parse() {
    assert_eq!(
        command::parse(b"m ffff800000001000,40".split_at(1).0),
        Err(command::Malformed)
    );
    assert_eq!(
        command::parse(b"mffff800000001000,40"),
        Ok(Command::ReadMemory(0xffff_8000_0000_1000, 0x40))
    );
    assert_eq!(
        command::parse(b"M10,2:abcd"),
        Ok(Command::WriteMemory(0x10, vec![0xab, 0xcd]))
    );
    assert_eq!(
        command::parse(b"Z0,40001000,4"),
        Ok(Command::Breakpoint {
            insert: true,
            kind: BreakKind::Software,
            addr: 0x4000_1000
        })
    );
    assert_eq!(
        command::parse(b"z1,40001000,4"),
        Ok(Command::Breakpoint {
            insert: false,
            kind: BreakKind::Hardware,
            addr: 0x4000_1000
        })
    );
    assert_eq!(command::parse(b"Z2,1000,8"), Ok(Command::Unknown));
    assert_eq!(
        command::parse(b"Hg-1"),
        Ok(Command::SetThread {
            general: true,
            thread: ThreadSel::All
        })
    );
    assert_eq!(
        command::parse(b"C05;1000"),
        Ok(Command::Continue(Some(0x1000)))
    );
    assert_eq!(command::parse(b"s"), Ok(Command::Step(None)));
    assert_eq!(
        command::parse(b"qRcmd,7674"),
        Ok(Command::Monitor(String::from("vt")))
    );
    match command::parse(b"vCont;s:2;c") {
        Ok(Command::VCont(a)) => {
            assert_eq!(a.len(), 2);
            assert!(a[0].step && a[0].thread == ThreadSel::Id(2));
            assert!(!a[1].step && a[1].thread == ThreadSel::All);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(command::parse(b"vMustReplyEmpty"), Ok(Command::Unknown));
    assert_eq!(command::parse(b""), Ok(Command::Unknown));
}

#[test]
fn malformed_commands_are_errors() {
    for bad in [
        &b"m"[..],
        b"m1000",
        b"m1000,",
        b"mxyz,4",
        b"m1,10000000000000000",
        b"M0,2:abc",
        b"M0,3:abcd",
        b"M0,2abcd",
        b"X0,3:ab",
        b"p",
        b"pzz",
        b"P1",
        b"P1=",
        b"P1=abc",
        b"G",
        b"Gabc",
        b"Z0,1000",
        b"Z0,1000,2",
        b"Z9,1000,4",
        b"Z0,1000,4;cond",
        b"Hx1",
        b"H",
        b"Hgq",
        b"T",
        b"Cxx",
        b"S",
        b"vCont;",
        b"vCont;q",
        b"vCont;s:zz",
        b"vCont",
        b"vCont;c;c;c;c;c;c;c;c;c",
        b"qRcmd,7",
        b"qRcmd,ff",
        b"qXfer:features:read:target.xml",
        b"qXfer:features:read:target.xml:0",
        b"qThreadExtraInfo,",
    ] {
        assert_eq!(
            command::parse(bad),
            Err(command::Malformed),
            "{:?}",
            String::from_utf8_lossy(bad)
        );
    }
}

fn sysregs() -> Vec<(Reg, u8)> {
    debugger_view(Features::ALL).collect()
}

#[test]
fn target_description_is_valid_xml_with_every_shown_register_once() {
    let regs = sysregs();
    let xml = tdesc::generate(regs.iter().map(|(r, w)| (r.name(), *w)));
    let doc = roxmltree::Document::parse_with_options(
        &xml,
        roxmltree::ParsingOptions {
            allow_dtd: true,
            ..Default::default()
        },
    )
    .expect("the target description is well-formed XML");
    let root = doc.root_element();
    assert_eq!(root.tag_name().name(), "target");
    let features: Vec<_> = root
        .children()
        .filter(|n| n.has_tag_name("feature"))
        .map(|n| n.attribute("name").unwrap())
        .collect();
    assert_eq!(
        features,
        [
            "org.gnu.gdb.aarch64.core",
            "org.gnu.gdb.aarch64.fpu",
            tdesc::SYSREG_FEATURE
        ]
    );
    let all: Vec<(String, usize, usize)> = doc
        .descendants()
        .filter(|n| n.has_tag_name("reg"))
        .map(|n| {
            (
                n.attribute("name").unwrap().into(),
                n.attribute("regnum").unwrap().parse().unwrap(),
                n.attribute("bitsize").unwrap().parse().unwrap(),
            )
        })
        .collect();
    // Register numbers are dense from 0, in document order.
    for (i, (_, n, _)) in all.iter().enumerate() {
        assert_eq!(*n, i);
    }
    // GDB's AArch64 names and sizes where it expects them.
    assert_eq!(all[0].0, "x0");
    assert_eq!(all[31], ("sp".into(), 31, 64));
    assert_eq!(all[32], ("pc".into(), 32, 64));
    assert_eq!(all[33], ("cpsr".into(), 33, 32));
    assert_eq!(all[34], ("v0".into(), 34, 128));
    assert_eq!(all[66].0, "fpsr");
    assert_eq!(all[67].0, "fpcr");
    // Every table entry that is not NO_RAW, exactly once, by name, at its width.
    let sys = &all[FIRST_SYSREG..];
    assert_eq!(sys.len(), regs.len());
    let mut seen = std::collections::BTreeSet::new();
    for ((name, _, bits), (reg, width)) in sys.iter().zip(&regs) {
        assert_eq!(name, reg.name());
        assert!(!reg.entry().is(crate::cpreg::Flags::NO_RAW));
        assert_eq!(*bits, tdesc::register_bits(*width) as usize);
        assert!(
            seen.insert(name.to_ascii_lowercase()),
            "{name} listed twice"
        );
    }
    // Nothing shown is left out, and no NO_RAW entry is in.
    let shown = Reg::ALL
        .iter()
        .filter(|r| !r.entry().is(crate::cpreg::Flags::NO_RAW))
        .count();
    assert_eq!(sys.len(), shown);
    for core in ["x0", "sp", "pc", "cpsr", "v0", "fpsr", "fpcr"] {
        assert!(!seen.contains(core), "{core} in the system feature too");
    }
    assert!(seen.contains("sctlr_el1") && seen.contains("sctlr"));
}

// -----------------------------------------------------------------------------
// A session against a fake machine.

#[derive(Default)]
struct Fake {
    vcpus: usize,
    regs: BTreeMap<(usize, usize), [u8; 16]>,
    mem: BTreeMap<u64, u8>,
    breaks: Vec<(BreakKind, u64)>,
    resumed: Vec<Option<usize>>,
    detached: bool,
    killed: bool,
    xml: String,
    sys: Vec<u8>,
}

impl Fake {
    fn new() -> Self {
        let mut f = Fake {
            vcpus: 2,
            sys: vec![64, 32, 64],
            ..Default::default()
        };
        f.xml =
            tdesc::generate([("SCTLR_EL1", 64u8), ("SCTLR", 32), ("TTBR0_EL1", 64)].into_iter());
        for a in 0x1000..0x1010u64 {
            f.mem.insert(a, a as u8);
        }
        for a in 0x10_0000..0x10_4000u64 {
            f.mem.insert(a, (a * 7) as u8);
        }
        f
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
            RegId::Sys(i) => 68 + i,
        }
    }

    fn size(&self, reg: RegId) -> usize {
        match reg {
            RegId::Sys(i) => self.sys[i] as usize / 8,
            r => r.core_size().unwrap(),
        }
    }
}

impl Target for Fake {
    fn vcpus(&self) -> usize {
        self.vcpus
    }
    fn sysregs(&self) -> usize {
        self.sys.len()
    }
    fn sysreg_size(&self, index: usize) -> usize {
        self.sys[index] as usize / 8
    }
    fn target_xml(&mut self) -> &str {
        &self.xml
    }
    fn read_register(
        &mut self,
        vcpu: usize,
        reg: RegId,
        buf: &mut [u8; 16],
    ) -> Result<usize, Error> {
        *buf = self
            .regs
            .get(&(vcpu, Self::regnum(reg)))
            .copied()
            .unwrap_or([0; 16]);
        Ok(self.size(reg))
    }
    fn write_register(&mut self, vcpu: usize, reg: RegId, value: &[u8]) -> Result<(), Error> {
        if reg == RegId::Sys(1) && value != [0u8; 4] {
            return Err(Error::Invalid); // a "constant"
        }
        let mut b = [0u8; 16];
        b[..value.len()].copy_from_slice(value);
        self.regs.insert((vcpu, Self::regnum(reg)), b);
        Ok(())
    }
    fn read_memory(&mut self, _vcpu: usize, addr: u64, buf: &mut [u8]) -> Result<usize, Error> {
        let mut n = 0;
        for (i, b) in buf.iter_mut().enumerate() {
            match self.mem.get(&(addr + i as u64)) {
                Some(v) => {
                    *b = *v;
                    n += 1;
                }
                None => break,
            }
        }
        Ok(n)
    }
    fn write_memory(&mut self, _vcpu: usize, addr: u64, data: &[u8]) -> Result<(), Error> {
        if (0..data.len() as u64).any(|i| !self.mem.contains_key(&(addr + i))) {
            return Err(Error::Fault);
        }
        for (i, b) in data.iter().enumerate() {
            self.mem.insert(addr + i as u64, *b);
        }
        Ok(())
    }
    fn breakpoint(
        &mut self,
        _vcpu: usize,
        kind: BreakKind,
        addr: u64,
        insert: bool,
    ) -> Result<(), Error> {
        if insert {
            if self.breaks.len() == 2 {
                return Err(Error::NoSpace);
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
        self.resumed.push(step);
    }
    fn interrupt(&mut self) -> usize {
        1
    }
    fn monitor(&mut self, cmd: &str, out: &mut String) {
        out.push_str(&format!("ran '{cmd}'\n"));
        if cmd == "long" {
            out.push_str(&"x".repeat(3000));
        }
    }
    fn thread_info(&mut self, vcpu: usize, out: &mut String) {
        out.push_str(&format!("vm0.{vcpu}"));
    }
    fn detach(&mut self) {
        self.detached = true;
    }
    fn kill(&mut self) {
        self.killed = true;
    }
}

struct Session {
    framer: Framer,
    stub: Stub,
    target: Fake,
}

impl Session {
    fn new() -> Self {
        Self {
            framer: Framer::new(),
            stub: Stub::new(Stop {
                vcpu: 0,
                signal: SIGTRAP,
            }),
            target: Fake::new(),
        }
    }

    /// Feeds raw bytes; returns what the stub wrote and whether the session ended.
    fn raw(&mut self, bytes: &[u8]) -> (Vec<u8>, bool) {
        let mut out = Vec::new();
        let mut ended = false;
        for &b in bytes {
            let ev = self.framer.feed(b);
            if self
                .stub
                .input(ev, self.framer.body(), &mut self.target, &mut out)
                == After::End
            {
                ended = true;
            }
        }
        (out, ended)
    }

    /// Sends a packet and returns the reply bodies (acks stripped).
    fn ask(&mut self, body: &[u8]) -> Vec<String> {
        let (out, _) = self.raw(&packet(body));
        replies(&out)
    }
}

/// Splits stub output into decoded packet bodies, checking each checksum.
fn replies(out: &[u8]) -> Vec<String> {
    let mut f = Framer::new();
    let mut v = Vec::new();
    for &b in out {
        match f.feed(b) {
            Input::Packet => v.push(String::from_utf8(f.body().to_vec()).unwrap()),
            Input::None | Input::Ack => {}
            e => panic!("stub sent {e:?} in {:?}", String::from_utf8_lossy(out)),
        }
    }
    v
}

#[test]
fn handshake_and_queries() {
    let mut s = Session::new();
    let (out, _) = s.raw(&packet(
        b"qSupported:multiprocess+;swbreak+;hwbreak+;xmlRegisters=i386",
    ));
    assert_eq!(out[0], b'+', "acked");
    let r = replies(&out);
    assert!(r[0].contains("PacketSize=8000"), "{r:?}");
    assert!(r[0].contains("qXfer:features:read+"));
    assert_eq!(s.ask(b"vMustReplyEmpty"), [""]);
    assert_eq!(s.ask(b"?"), ["T05thread:1;"]);
    assert_eq!(s.ask(b"qAttached"), ["1"]);
    assert_eq!(s.ask(b"qfThreadInfo"), ["m1,2"]);
    assert_eq!(s.ask(b"qsThreadInfo"), ["l"]);
    assert_eq!(s.ask(b"qC"), ["QC1"]);
    assert_eq!(
        s.ask(b"qThreadExtraInfo,2"),
        [String::from_utf8(
            b"vm0.1"
                .iter()
                .flat_map(|b| format!("{b:02x}").into_bytes())
                .collect()
        )
        .unwrap()]
    );
    assert_eq!(s.ask(b"qThreadExtraInfo,3"), ["E16"]);
    assert_eq!(s.ask(b"T2"), ["OK"]);
    assert_eq!(s.ask(b"T3"), ["E16"]);
    assert_eq!(s.ask(b"T0"), ["E16"]);
    assert_eq!(s.ask(b"Hg2"), ["OK"]);
    assert_eq!(s.ask(b"qC"), ["QC2"]);
    assert_eq!(s.ask(b"Hg5"), ["E16"]);
    assert_eq!(s.ask(b"Hc-1"), ["OK"]);
    assert_eq!(s.ask(b"vCont?"), ["vCont;c;C;s;S"]);
    // No-ack mode: acknowledged once, then no more `+`.
    let (out, _) = s.raw(&packet(b"QStartNoAckMode"));
    assert_eq!(out[0], b'+');
    let (out, _) = s.raw(&packet(b"qC"));
    assert_eq!(out[0], b'$');
}

#[test]
fn target_description_is_served_in_chunks() {
    let mut s = Session::new();
    let xml = s.target.xml.clone();
    let mut got = String::new();
    let mut off = 0;
    loop {
        let r = s.ask(format!("qXfer:features:read:target.xml:{off:x},200").as_bytes());
        let (kind, data) = r[0].split_at(1);
        got.push_str(data);
        off += data.len();
        if kind == "l" {
            break;
        }
        assert_eq!(kind, "m");
        assert_eq!(data.len(), 0x200);
    }
    assert_eq!(got, xml);
    // Past the end: an empty last chunk; another annex: an error.
    assert_eq!(
        s.ask(format!("qXfer:features:read:target.xml:{:x},10", xml.len() + 5).as_bytes()),
        ["l"]
    );
    assert_eq!(s.ask(b"qXfer:features:read:other.xml:0,10"), ["E16"]);
}

#[test]
fn registers_read_and_write() {
    let mut s = Session::new();
    let g = s.ask(b"g");
    // 31 x + sp + pc (8 bytes) + cpsr (4) + 32 v (16) + fpsr + fpcr (4).
    assert_eq!(g[0].len(), 2 * (33 * 8 + 4 + 32 * 16 + 8));
    assert_eq!(s.ask(b"P5=efbeadde00000000"), ["OK"]);
    assert_eq!(s.ask(b"p5"), ["efbeadde00000000"]);
    assert_eq!(s.ask(b"p21"), ["00000000"], "cpsr is 32-bit");
    // System registers by their numbers, at their sizes.
    assert_eq!(s.ask(b"P44=0100000000000000"), ["OK"]);
    assert_eq!(s.ask(b"p44"), ["0100000000000000"]);
    assert_eq!(s.ask(b"p45"), ["00000000"]);
    assert_eq!(s.ask(b"P45=01000000"), ["E16"], "the target refused");
    assert_eq!(s.ask(b"P45=0100000000000000"), ["E01"], "wrong size");
    assert_eq!(s.ask(b"p47"), ["E16"], "beyond the last register");
    assert_eq!(s.ask(b"P47=00"), ["E16"]);
    // Registers are per thread.
    assert_eq!(s.ask(b"Hg2"), ["OK"]);
    assert_eq!(s.ask(b"p5"), ["0000000000000000"]);
    // G writes exactly what g reads, and nothing of another size.
    let mut regs = g[0].clone();
    regs.replace_range(0..16, "1122334455667788");
    assert_eq!(s.ask(format!("G{regs}").as_bytes()), ["OK"]);
    assert_eq!(s.ask(b"p0"), ["1122334455667788"]);
    assert_eq!(s.ask(format!("G{}", &regs[2..]).as_bytes()), ["E01"]);
    assert_eq!(s.ask(b"G0000"), ["E01"]);
}

#[test]
fn memory_read_and_write() {
    let mut s = Session::new();
    assert_eq!(s.ask(b"m1000,4"), ["00010203"]);
    // A read running off the mapped range returns what it could.
    assert_eq!(s.ask(b"m100c,10"), ["0c0d0e0f"]);
    assert_eq!(s.ask(b"m2000,4"), ["E0e"], "unmapped: an error, not zeros");
    assert_eq!(s.ask(b"m1000,0"), [""]);
    // Huge lengths are capped to the packet size, not allocated.
    assert_eq!(s.ask(b"mffffffffffffff00,ffffffffffffffff"), ["E0e"]);
    assert_eq!(s.ask(b"M1000,2:aabb"), ["OK"]);
    assert_eq!(s.ask(b"m1000,2"), ["aabb"]);
    assert_eq!(s.ask(b"M100f,2:aabb"), ["E0e"], "all or nothing");
    assert_eq!(s.ask(b"m100f,1"), ["0f"]);
    // X carries binary, escaped on the wire.
    assert_eq!(s.ask(b"X1004,2:#}"), ["OK"]);
    assert_eq!(s.ask(b"m1004,2"), ["237d"]);
    assert_eq!(s.ask(b"X1004,0:"), ["OK"]);
}

#[test]
fn a_16_kib_read_and_a_16_kib_binary_write_take_one_packet_each() {
    let mut s = Session::new();
    // GDB reads `PacketSize / 2` bytes per `m`: 16 KiB, answered whole.
    let r = s.ask(b"m100000,4000");
    assert_eq!(r.len(), 1);
    let want: Vec<u8> = (0x10_0000..0x10_4000u64).map(|a| (a * 7) as u8).collect();
    assert_eq!(decode_hex(r[0].as_bytes()).unwrap(), want);
    // `X`: 16 KiB of binary (every byte value, `$ # } *` escaped) in one packet.
    let data: Vec<u8> = (0..0x4000u32).map(|i| (i * 13 + 5) as u8).collect();
    let mut body = b"X100000,4000:".to_vec();
    body.extend_from_slice(&data);
    assert_eq!(s.ask(&body), ["OK"]);
    let r = s.ask(b"m100000,4000");
    assert_eq!(decode_hex(r[0].as_bytes()).unwrap(), data);
}

#[test]
fn breakpoints_and_resumption() {
    let mut s = Session::new();
    assert_eq!(s.ask(b"Z0,1000,4"), ["OK"]);
    assert_eq!(s.ask(b"Z1,2000,4"), ["OK"]);
    assert_eq!(s.ask(b"Z1,3000,4"), ["E1c"]);
    assert_eq!(s.ask(b"z0,1000,4"), ["OK"]);
    assert_eq!(s.ask(b"z0,1000,4"), ["E16"]);
    assert_eq!(s.ask(b"Z2,1000,4"), [""], "watchpoints: not supported");
    assert_eq!(s.target.breaks, [(BreakKind::Hardware, 0x2000)]);
    // Continue: no reply until the target stops.
    assert_eq!(s.ask(b"vCont;c"), Vec::<String>::new());
    assert!(s.stub.is_running());
    // While it runs, its state is not touched.
    assert_eq!(s.ask(b"g"), ["E16"]);
    let mut out = Vec::new();
    s.stub.report_stop(
        Stop {
            vcpu: 1,
            signal: SIGTRAP,
        },
        &mut out,
    );
    assert_eq!(replies(&out), ["T05thread:2;"]);
    assert_eq!(s.ask(b"qC"), ["QC2"], "the stopped thread is current");
    // A step of thread 1 runs only it; `s ADDR` sets its pc first.
    assert_eq!(s.ask(b"vCont;s:1;c"), Vec::<String>::new());
    s.stub.report_stop(
        Stop {
            vcpu: 0,
            signal: SIGTRAP,
        },
        &mut Vec::new(),
    );
    assert_eq!(s.ask(b"s1234"), Vec::<String>::new());
    assert_eq!(s.target.resumed, [None, Some(0), Some(0)]);
    assert_eq!(s.target.regs[&(0, 32)][..8], 0x1234u64.to_le_bytes());
    assert_eq!(s.ask(b"vCont;s:9"), ["E16"]);
    // Ctrl-C while running: stop reply with SIGINT; ignored while stopped.
    s.stub.report_stop(
        Stop {
            vcpu: 0,
            signal: SIGTRAP,
        },
        &mut Vec::new(),
    );
    assert_eq!(s.raw(b"\x03").0, b"");
    assert_eq!(s.ask(b"c"), Vec::<String>::new());
    let (out, _) = s.raw(b"\x03");
    assert_eq!(replies(&out), [format!("T{SIGINT:02x}thread:2;")]);
}

#[test]
fn monitor_output_comes_as_console_packets() {
    let mut s = Session::new();
    let r = s.ask(b"qRcmd,7674");
    assert_eq!(r.last().unwrap(), "OK");
    let text: Vec<u8> = r[..r.len() - 1]
        .iter()
        .flat_map(|p| decode_hex(p.strip_prefix('O').unwrap().as_bytes()).unwrap())
        .collect();
    assert_eq!(text, b"ran 'vt'\n");
    // Long output is split into packets below the packet size.
    let r = s.ask(b"qRcmd,6c6f6e67");
    assert!(r.len() > 3);
    assert!(r.iter().all(|p| p.len() < MAX_PACKET));
}

#[test]
fn malformed_input_gets_nak_or_error_and_the_session_goes_on() {
    let mut s = Session::new();
    // A bad checksum: NAK, nothing done.
    assert_eq!(s.raw(b"$g#00").0, b"-");
    // A NAK from GDB: the last reply again.
    let r1 = s.raw(&packet(b"qC")).0;
    let again = s.raw(b"-").0;
    assert_eq!(&r1[1..], &again[..]);
    // Malformed commands, bad run lengths, oversize: acked, then an E reply.
    assert_eq!(s.ask(b"mzz,4"), ["E01"]);
    let mut w = b"$*!#".to_vec();
    w.extend_from_slice(format!("{:02x}", b'*'.wrapping_add(b'!')).as_bytes());
    assert_eq!(replies(&s.raw(&w).0), ["E01"]);
    assert_eq!(s.ask(&vec![b'm'; MAX_PACKET + 1]), ["E02"]);
    // Unknown packets: the empty reply. Noise outside packets: nothing.
    assert_eq!(s.ask(b"qWhatever"), [""]);
    assert_eq!(s.raw(b"hello\r\n").0, b"");
    // Still alive.
    assert_eq!(s.ask(b"m1000,1"), ["00"]);
}

#[test]
fn a_new_gdb_on_the_line_resets_the_session() {
    // The first GDB switched acks off and left the target running, then vanished.
    let mut s = Session::new();
    s.ask(b"QStartNoAckMode");
    assert_eq!(s.ask(b"c"), Vec::<String>::new());
    assert!(s.stub.is_running());
    // The next one opens with qSupported in ack mode: acked, target stopped.
    let (out, _) = s.raw(&packet(b"qSupported:swbreak+"));
    assert_eq!(out[0], b'+');
    assert!(!s.stub.is_running());
    assert_eq!(s.ask(b"?"), [format!("T{SIGINT:02x}thread:2;")]);
}

#[test]
fn detach_and_kill_end_the_session() {
    let mut s = Session::new();
    let (out, ended) = s.raw(&packet(b"D"));
    assert!(ended && s.target.detached);
    assert_eq!(replies(&out), ["OK"]);
    let mut s = Session::new();
    let (out, ended) = s.raw(&packet(b"k"));
    assert!(ended && s.target.killed);
    assert_eq!(out, b"+");
}

/// Arbitrary bytes never panic the framer or the stub, and never make it write
/// anything but packets, acks and NAKs (a tiny, deterministic cousin of the fuzz
/// target in `fuzz/`).
#[test]
fn random_input_never_panics() {
    let mut s = Session::new();
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let alphabet = b"$#}*+-\x03gGmMpPXzZ0123456789abcdefq:,;=vContHTcsDk?";
    for _ in 0..200_000 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let b = if x.is_multiple_of(4) {
            (x >> 8) as u8
        } else {
            alphabet[(x >> 8) as usize % alphabet.len()]
        };
        let (out, ended) = s.raw(&[b]);
        if !out.is_empty() {
            assert!(matches!(out[0], b'$' | b'+' | b'-'), "{out:?}");
        }
        if ended {
            s = Session::new();
        }
    }
}

#[test]
fn replies_are_run_length_encoded_and_decode_to_the_same_body() {
    // Every run length from 1 to 300 of a plain and of an escaped byte, between
    // other bytes: the framer (which decodes as GDB does) gets the body back.
    for n in 1..300 {
        for c in [b'0', b'}', b'#'] {
            let mut body = b"ab".to_vec();
            body.extend(core::iter::repeat_n(c, n));
            body.extend_from_slice(b"cd");
            let wire = packet(&body);
            assert!(
                !wire[1..wire.len() - 3]
                    .iter()
                    .any(|&b| b == b'$' || b == b'#'),
                "{n} x {c}: a frame byte inside {:?}",
                String::from_utf8_lossy(&wire)
            );
            let (ev, bodies) = frame(&wire);
            assert_eq!(ev, [Input::Packet], "{n} x {c}");
            assert_eq!(bodies, [body], "{n} x {c}");
        }
    }
    // A page of zeros read as hex: 8192 characters, 256 bytes on the wire.
    let wire = packet(&[b'0'; 8192]);
    assert_eq!(wire.len(), 256);
    assert_eq!(&packet(b"0000")[..], b"$0* #7a");
}

#[test]
fn memory_replies_encoded_from_binary_match_encoding_the_hex_text() {
    use super::packet::{encode_hex, push_hex};
    // Runs of every length around the word size and the 97-copy limit, of
    // bytes with equal digits (0x00, 0x11, 0xff) and without (0x12), at every
    // alignment, between other bytes; and a pseudo-random mix.
    let mut cases: Vec<Vec<u8>> = Vec::new();
    for n in 0..120 {
        for b in [0x00u8, 0x11, 0xff, 0x12] {
            for lead in 0..3 {
                let mut d = alloc::vec![0xabu8; lead];
                d.extend(core::iter::repeat_n(b, n));
                d.push(0x0f);
                cases.push(d);
            }
        }
    }
    let mut x: u32 = 1;
    let mut mix = Vec::new();
    for _ in 0..700 {
        x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
        // Mostly zeros, some runs of other bytes, some noise.
        let b = match (x >> 16) % 8 {
            0..=4 => 0,
            5 => 0x44,
            6 => 0xf0,
            _ => (x >> 8) as u8,
        };
        let len = 1 + ((x >> 24) % 40) as usize;
        mix.extend(core::iter::repeat_n(b, len));
    }
    cases.push(mix);
    cases.push(alloc::vec![0u8; 0x4000]);
    for data in &cases {
        let mut hex = Vec::new();
        push_hex(data, &mut hex);
        let mut want = Vec::new();
        encode(&hex, &mut want);
        let mut got = Vec::new();
        encode_hex(data, &mut got);
        assert_eq!(
            String::from_utf8_lossy(&got),
            String::from_utf8_lossy(&want),
            "{} bytes",
            data.len()
        );
        if hex.len() <= MAX_PACKET {
            let (ev, bodies) = frame(&got);
            assert_eq!(ev, [Input::Packet]);
            assert_eq!(bodies, [hex]);
        }
    }
}
