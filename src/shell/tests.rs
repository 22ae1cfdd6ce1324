use super::command::*;
use super::line::*;

struct Out(std::string::String);
impl core::fmt::Write for Out {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        self.0.push_str(s);
        Ok(())
    }
}

fn typed(e: &mut LineEditor, bytes: &[u8], out: &mut Out) -> Vec<std::string::String> {
    let mut lines = Vec::new();
    for &b in bytes {
        if e.feed(b, out) == Event::Line {
            lines.push(e.line().to_string());
        }
    }
    lines
}

#[test]
fn editing_backspace_ctrl_u_and_ctrl_c() {
    let mut e = LineEditor::new();
    let mut out = Out(String::new());
    assert_eq!(typed(&mut e, b"vmx\x7fs\r", &mut out), ["vms"]);
    assert!(out.0.starts_with("vmx\x08 \x08s"));
    assert_eq!(typed(&mut e, b"garbage\x15info\n", &mut out), ["info"]);
    assert_eq!(typed(&mut e, b"oops\x03help\r", &mut out), ["help"]);
    assert!(out.0.contains("^C"));
    // Control and non-ASCII bytes are ignored, never echoed.
    assert_eq!(typed(&mut e, b"\x01\x02\xff\xfeok\r", &mut out), ["ok"]);
}

#[test]
fn history_on_the_arrow_keys() {
    let mut e = LineEditor::new();
    let mut out = Out(String::new());
    typed(&mut e, b"vms\rtraps\r", &mut out);
    assert_eq!(typed(&mut e, b"\x1b[A\r", &mut out), ["traps"]);
    assert_eq!(typed(&mut e, b"\x1b[A\x1b[A\r", &mut out), ["vms"]);
    assert_eq!(typed(&mut e, b"\x1b[A\x1b[B\x1b[Bx\r", &mut out), ["x"]);
}

#[test]
fn an_over_long_line_rings_the_bell_and_keeps_what_fits() {
    let mut e = LineEditor::new();
    let mut out = Out(String::new());
    let long = vec![b'a'; MAX_LINE + 10];
    typed(&mut e, &long, &mut out);
    assert!(out.0.contains('\x07'));
    let lines = typed(&mut e, b"\r", &mut out);
    assert_eq!(lines[0].len(), MAX_LINE);
}

#[test]
fn a_dollar_at_the_start_of_a_line_is_gdb() {
    let mut e = LineEditor::new();
    let mut out = Out(String::new());
    assert_eq!(e.feed(b'$', &mut out), Event::Gdb(b'$'));
    typed(&mut e, b"echo ", &mut out);
    assert_eq!(
        e.feed(b'$', &mut out),
        Event::None,
        "a $ inside a line is text"
    );
}

#[test]
fn gdbs_opening_ack_does_not_hide_its_first_packet() {
    // gdb-multiarch sends `+` before `$qSupported...`: neither is echoed, and the
    // `$` still starts a packet.
    let mut e = LineEditor::new();
    let mut out = Out(String::new());
    assert_eq!(e.feed(b'+', &mut out), Event::None);
    assert_eq!(e.feed(b'$', &mut out), Event::Gdb(b'$'));
    assert_eq!(out.0, "");
    // Ctrl-C on an empty line is GDB's interrupt; on a line with text it
    // abandons the line.
    let mut e = LineEditor::new();
    assert_eq!(e.feed(0x03, &mut out), Event::Gdb(0x03));
    let mut out = Out(String::new());
    // Inside a line, `+` is text.
    typed(&mut e, b"a+", &mut out);
    assert_eq!(out.0, "a+");
}

#[test]
fn gdb_command_chooses_a_vm() {
    use crate::shell::command::{parse, Command};
    assert_eq!(parse("gdb vm1"), Ok(Some(Command::Gdb(1))));
    assert!(parse("gdb")
        .unwrap_err()
        .to_string()
        .contains("missing a VM"));
    assert!(parse("gdb 1").unwrap_err().to_string().contains("use vmN"));
    assert!(parse("gdb vm1 x").is_err());
}

/// A terminal as the person at the console sees it: the current row and the cursor.
/// The editor's echo is all it gets.
#[derive(Default)]
struct Screen {
    row: Vec<char>,
    cursor: usize,
}

impl Screen {
    fn show(&mut self, echo: &str) {
        for c in echo.chars() {
            match c {
                '\r' => self.cursor = 0,
                '\n' => self.row.clear(),
                '\x08' => self.cursor = self.cursor.saturating_sub(1),
                '\x07' => {}
                ' '..='~' => {
                    if self.cursor < self.row.len() {
                        self.row[self.cursor] = c;
                    } else {
                        self.row.push(c);
                    }
                    self.cursor += 1;
                }
                other => panic!("the editor echoed {:#x}", other as u32),
            }
        }
    }

    /// What is typed so far, as the screen shows it (blanks after the cursor are
    /// erased characters).
    fn typed(&self) -> std::string::String {
        assert!(
            self.row[self.cursor.min(self.row.len())..]
                .iter()
                .all(|&c| c == ' '),
            "text after the cursor: {:?}",
            self.row
        );
        self.row[..self.cursor].iter().collect()
    }
}

/// Random bytes, arrows and editing keys: no panic, and what the screen shows is
/// always what the editor holds (the delivered line is the row on the screen, an
/// empty editor an empty row), every line printable ASCII of at most MAX_LINE.
#[test]
fn any_bytes_never_panic() {
    let mut e = LineEditor::new();
    let mut screen = Screen::default();
    let mut seed = 7u32;
    let keys: &[&[u8]] = &[
        b"\x1b[A", b"\x1b[B", b"\x7f", b"\x15", b"\x03", b"\r", b"vms ",
    ];
    let (mut lines, mut gdb) = (0, 0);
    for _ in 0..20_000 {
        seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12345);
        let r = seed >> 16;
        let input: &[u8] = if r.is_multiple_of(4) {
            keys[(r as usize / 4) % keys.len()]
        } else {
            &[(r >> 2) as u8]
        };
        for &b in input {
            let mut out = Out(String::new());
            let ev = e.feed(b, &mut out);
            match ev {
                Event::Line => {
                    let line = e.line();
                    assert_eq!(screen.typed(), line, "the screen shows another line");
                    assert!(line.len() <= MAX_LINE);
                    assert!(line.bytes().all(|c| (b' '..=b'~').contains(&c)), "{line:?}");
                    lines += 1;
                }
                Event::Gdb(g) => {
                    assert!(g == b'$' || g == 0x03);
                    assert!(e.is_empty() && out.0.is_empty());
                    gdb += 1;
                }
                Event::None => {}
            }
            screen.show(&out.0);
            assert_eq!(e.is_empty(), screen.typed().is_empty(), "after {b:#x}");
        }
    }
    assert!(lines > 100 && gdb > 10, "{lines} lines, {gdb} GDB starts");
}

#[test]
fn commands_parse_with_their_arguments() {
    assert_eq!(parse("").unwrap(), None);
    assert_eq!(parse("  vms ").unwrap(), Some(Command::Vms));
    assert_eq!(
        parse("regs vm1.3").unwrap(),
        Some(Command::Regs(VcpuId { vm: 1, vcpu: 3 }))
    );
    assert_eq!(
        parse("sysregs vm0.0 TTBR").unwrap(),
        Some(Command::Sysregs(VcpuId { vm: 0, vcpu: 0 }, Some("TTBR")))
    );
    assert_eq!(
        parse("sysregs vm0.0").unwrap(),
        Some(Command::Sysregs(VcpuId { vm: 0, vcpu: 0 }, None))
    );
    assert_eq!(parse("pause vm2").unwrap(), Some(Command::Pause(2)));
    assert_eq!(parse("reset vm1").unwrap(), Some(Command::Reset(1)));
    assert_eq!(
        parse("snapshot save vm0").unwrap(),
        Some(Command::SnapshotSave(0, "default", false))
    );
    assert_eq!(
        parse("snapshot save vm0 before").unwrap(),
        Some(Command::SnapshotSave(0, "before", false))
    );
    assert_eq!(
        parse("snapshot restore vm1 before").unwrap(),
        Some(Command::SnapshotRestore(1, "before", false))
    );
    assert_eq!(parse("snapshot list").unwrap(), Some(Command::SnapshotList));
    assert_eq!(
        parse("snapshot delete before").unwrap(),
        Some(Command::SnapshotDelete("before"))
    );
    // --force (for VMs with passed-through devices) goes anywhere after the verb.
    assert_eq!(
        parse("snapshot save vm0 --force").unwrap(),
        Some(Command::SnapshotSave(0, "default", true))
    );
    assert_eq!(
        parse("snapshot save vm0 before --force").unwrap(),
        Some(Command::SnapshotSave(0, "before", true))
    );
    assert_eq!(
        parse("snapshot --force send vm2").unwrap(),
        Some(Command::SnapshotSend(2, true, false))
    );
    assert_eq!(
        parse("snapshot receive vm0 16 ff --force").unwrap(),
        Some(Command::SnapshotReceive(0, 16, 0xff, true))
    );
    assert!(matches!(
        parse("snapshot save vm0 a b"),
        Err(ParseError::Extra(_))
    ));
    let v = VcpuId { vm: 0, vcpu: 1 };
    assert_eq!(
        parse("mem vm0.1 0xffff800000001000").unwrap(),
        Some(Command::Mem(v, 0xffff_8000_0000_1000, 64))
    );
    assert_eq!(
        parse("mem vm0.1 0x1000 16").unwrap(),
        Some(Command::Mem(v, 0x1000, 16))
    );
    assert_eq!(
        parse("vtop vm0.1 4096").unwrap(),
        Some(Command::Vtop(v, 4096))
    );
    assert_eq!(
        parse("snapshot send vm1").unwrap(),
        Some(Command::SnapshotSend(1, false, false))
    );
    assert_eq!(
        parse("snapshot send vm1 --self-contained").unwrap(),
        Some(Command::SnapshotSend(1, false, true))
    );
    assert_eq!(
        parse("snapshot send vm1 --hex").unwrap(),
        Some(Command::SnapshotSendHex(1, false))
    );
    assert_eq!(
        parse("snapshot receive vm2 --force").unwrap(),
        Some(Command::SnapshotReceiveStream(2, true))
    );
    assert_eq!(
        parse("snapshot receive vm0 4096 deadbeef").unwrap(),
        Some(Command::SnapshotReceive(0, 4096, 0xdead_beef, false))
    );
    assert_eq!(
        parse("log quiet").unwrap(),
        Some(Command::Log(LogLevel::Quiet))
    );
}

#[test]
fn errors_say_what_was_wrong_and_what_is_accepted() {
    let msg = |l: &str| parse(l).unwrap_err().to_string();
    assert_eq!(
        msg("frobnicate"),
        "unknown command 'frobnicate': type 'help'"
    );
    assert_eq!(msg("regs"), "missing a vCPU (vmN.M)");
    assert_eq!(
        msg("regs vm0"),
        "'vm0' is not a vCPU name: use vmN.M, e.g. vm0.1"
    );
    assert_eq!(msg("pause 0"), "'0' is not a VM name: use vmN, e.g. vm0");
    assert_eq!(
        msg("reset vm0.1"),
        "'vm0.1' is not a VM name: use vmN, e.g. vm0"
    );
    assert_eq!(msg("vms now"), "unexpected 'now'");
    assert_eq!(
        msg("log loud"),
        "'loud' is not a log level: use quiet, normal or verbose"
    );
    assert_eq!(msg("snapshot restore vm0"), "missing a slot name");
    assert_eq!(
        msg("snapshot drop"),
        "'drop' is not a snapshot command: use save, restore, list, delete, send or receive"
    );
    assert_eq!(msg("snapshot receive vm0 12"), "missing the CRC-32 in hex");
}

#[test]
fn numbers_in_decimal_and_hex() {
    assert_eq!(parse_number("4096").unwrap(), 4096);
    assert_eq!(parse_number("0xffff_0000").unwrap(), 0xffff_0000);
    assert!(parse_number("0xg").is_err());
    assert!(parse_number("-1").is_err());
}

#[test]
fn help_lists_every_command_once() {
    let mut out = Out(String::new());
    help(&mut out).unwrap();
    for c in COMMANDS {
        let n = out
            .0
            .lines()
            .filter(|l| l.trim_start().split_whitespace().next() == Some(c.name))
            .count();
        assert_eq!(n, 1, "{}", c.name);
        // Every command in the table parses (with sample arguments).
    }
    assert_eq!(out.0.lines().count(), COMMANDS.len());
}
