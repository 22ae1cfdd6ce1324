//! The debug console's portable half (`src/shell/`): bytes typed at the console go
//! through the line editor, and every line it delivers through the command parser,
//! as `hv::monitor` does.
//!
//! Invariants, checked after every byte:
//! * no panic, whatever the bytes;
//! * what the person sees is what the editor holds: the echo, played on a model
//!   terminal (printable characters, backspace, CR/LF, bell and nothing else),
//!   shows exactly the line the editor delivers, and an empty row when the
//!   editor says the line is empty;
//! * a delivered line is printable ASCII of at most `MAX_LINE` bytes; GDB takes
//!   over only with `$` or Ctrl-C on an empty line, and nothing is echoed then;
//! * a parsed command prints back (in the console's own syntax) to text that
//!   parses to the same command; a refused line gets a message in words (no Rust
//!   debug output) that quotes at most 32 characters of what was typed.
#![no_main]

use hypervisor::shell::command::{parse, Command, LogLevel, VcpuId};
use hypervisor::shell::line::{Event, LineEditor, MAX_LINE};
use libfuzzer_sys::fuzz_target;
use std::fmt::Write as _;

struct Out(String);

impl std::fmt::Write for Out {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        self.0.push_str(s);
        Ok(())
    }
}

/// The terminal the console is shown on: one row and a cursor.
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

    /// The typed text on the row; blanks after the cursor are erased characters.
    fn typed(&self) -> String {
        let end = self.cursor.min(self.row.len());
        assert!(
            self.row[end..].iter().all(|&c| c == ' '),
            "text after the cursor: {:?}",
            self.row
        );
        self.row[..end].iter().collect()
    }
}

fn vcpu(v: &VcpuId) -> String {
    format!("vm{}.{}", v.vm, v.vcpu)
}

/// The command as a person would type it.
fn print(c: &Command) -> String {
    match c {
        Command::Help => "help".into(),
        Command::Info => "info".into(),
        Command::Vms => "vms".into(),
        Command::Vcpus => "vcpus".into(),
        Command::Regs(v) => format!("regs {}", vcpu(v)),
        Command::Sysregs(v, None) => format!("sysregs {}", vcpu(v)),
        Command::Sysregs(v, Some(p)) => format!("sysregs {} {p}", vcpu(v)),
        Command::Mem(v, va, len) => format!("mem {} {va:#x} {len}", vcpu(v)),
        Command::Vtop(v, va) => format!("vtop {} {va}", vcpu(v)),
        Command::Traps => "traps".into(),
        Command::Uart => "uart".into(),
        Command::Pause(vm) => format!("pause vm{vm}"),
        Command::Resume(vm) => format!("resume vm{vm}"),
        Command::Reset(vm) => format!("reset vm{vm}"),
        Command::SnapshotSave(vm, slot, f) => format!("snapshot save vm{vm} {slot}{}", force(*f)),
        Command::SnapshotRestore(vm, slot, f) => {
            format!("snapshot restore vm{vm} {slot}{}", force(*f))
        }
        Command::SnapshotList => "snapshot list".into(),
        Command::SnapshotDelete(slot) => format!("snapshot delete {slot}"),
        Command::SnapshotSendHex(vm, f) => format!("snapshot send vm{vm} --hex{}", force(*f)),
        Command::SnapshotReceiveStream(vm, f) => format!("snapshot receive vm{vm}{}", force(*f)),
        Command::SnapshotSend(vm, f, whole) => format!(
            "snapshot send vm{vm}{}{}",
            force(*f),
            if *whole { " --self-contained" } else { "" }
        ),
        Command::SnapshotReceive(vm, len, crc, f) => {
            format!("snapshot receive vm{vm} {len} {crc:x}{}", force(*f))
        }
        Command::Log(LogLevel::Quiet) => "log quiet".into(),
        Command::Log(LogLevel::Normal) => "log normal".into(),
        Command::Log(LogLevel::Verbose) => "log verbose".into(),
        Command::Gdb(vm) => format!("gdb vm{vm}"),
    }
}

/// The `--force` flag as typed.
fn force(f: bool) -> &'static str {
    if f {
        " --force"
    } else {
        ""
    }
}

fn check_line(line: &str) {
    assert!(line.len() <= MAX_LINE, "{} bytes", line.len());
    assert!(line.bytes().all(|b| (b' '..=b'~').contains(&b)), "{line:?}");
    match parse(line) {
        Ok(None) => assert!(line.trim().is_empty(), "{line:?} parsed as nothing"),
        Ok(Some(c)) => {
            let text = print(&c);
            let again = parse(&text)
                .unwrap_or_else(|e| panic!("{line:?} -> {c:?} -> {text:?} refused: {e}"));
            assert_eq!(again, Some(c), "{line:?} printed as {text:?}");
        }
        Err(e) => {
            let mut msg = String::new();
            write!(msg, "{e}").unwrap();
            in_words(&msg, line);
            // Quotes are 32 characters at most (heapless::String<32>), so a long
            // line cannot flood the console.
            assert!(msg.len() <= 32 + 80, "{msg}");
        }
    }
}

/// An error message is words: no Rust debug output (an enum's variant name,
/// `Some(..)`, `Foo { .. }`) unless the person typed it and it is quoted back.
fn in_words(msg: &str, input: &str) {
    assert!(!msg.is_empty());
    for debug in [
        "Some(",
        "None",
        "{ ",
        "UnknownCommand",
        "Missing",
        "Extra(",
        "BadVm",
        "BadVcpu",
        "BadNumber",
        "BadWord",
    ] {
        assert!(!msg.contains(debug) || input.contains(debug), "{msg}");
    }
}

fuzz_target!(|data: &[u8]| {
    let mut e = LineEditor::new();
    let mut screen = Screen::default();
    for &b in data {
        let mut out = Out(String::new());
        match e.feed(b, &mut out) {
            Event::Line => {
                let line = e.line().to_string();
                assert_eq!(screen.typed(), line, "the screen shows another line");
                check_line(&line);
            }
            Event::Gdb(g) => {
                assert!(g == b'$' || g == 0x03, "GDB started by {g:#x}");
                assert!(e.is_empty() && out.0.is_empty());
            }
            Event::None => {}
        }
        screen.show(&out.0);
        assert_eq!(e.is_empty(), screen.typed().is_empty(), "after {b:#x}");
    }
    // The parser alone, on the input as one line (any UTF-8, not only what the
    // editor lets through): no panic, errors in words.
    if let Ok(s) = std::str::from_utf8(data) {
        if let Err(err) = parse(s) {
            in_words(&err.to_string(), s);
        }
    }
});
