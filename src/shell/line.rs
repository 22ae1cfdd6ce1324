//! A line editor for a serial console: echo, backspace, Ctrl-U, Ctrl-C, a short
//! history on the arrow keys, and the first byte of a GDB remote-protocol packet
//! recognised at the start of a line. Any byte sequence is accepted; nothing panics.
#![forbid(unsafe_code)]

use core::fmt::Write;
use heapless::{Deque, String};

pub const MAX_LINE: usize = 160;
const HISTORY: usize = 8;

/// What a byte of input produced.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Event {
    /// Nothing to do yet.
    None,
    /// A complete line: take it with [`LineEditor::line`].
    Line,
    /// GDB speaks (`$` or Ctrl-C 0x03 at the start of a line): the byte is the
    /// first of its input.
    Gdb(u8),
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Escape {
    None,
    Esc,
    Csi,
}

pub struct LineEditor {
    buf: String<MAX_LINE>,
    done: String<MAX_LINE>,
    history: Deque<String<MAX_LINE>, HISTORY>,
    /// Position while browsing the history (0 = newest).
    browsing: Option<usize>,
    escape: Escape,
}

impl Default for LineEditor {
    fn default() -> Self {
        Self::new()
    }
}

impl LineEditor {
    pub const fn new() -> Self {
        Self {
            buf: String::new(),
            done: String::new(),
            history: Deque::new(),
            browsing: None,
            escape: Escape::None,
        }
    }

    /// The line completed by the last [`Event::Line`].
    pub fn line(&self) -> &str {
        &self.done
    }

    /// Whether anything has been typed on the current line.
    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    fn replace_line(&mut self, text: &str, out: &mut impl Write) {
        for _ in 0..self.buf.len() {
            let _ = out.write_str("\x08 \x08");
        }
        self.buf.clear();
        let _ = self.buf.push_str(text);
        let _ = out.write_str(text);
    }

    /// Feeds one byte; echo and editing go to `out`.
    pub fn feed(&mut self, b: u8, out: &mut impl Write) -> Event {
        match self.escape {
            Escape::Esc => {
                self.escape = if b == b'[' { Escape::Csi } else { Escape::None };
                return Event::None;
            }
            Escape::Csi => {
                self.escape = Escape::None;
                self.arrow(b, out);
                return Event::None;
            }
            Escape::None => {}
        }
        match b {
            b'$' if self.buf.is_empty() => return Event::Gdb(b),
            // Ctrl-C on an empty line is GDB's interrupt (DESIGN.md section 6): a
            // GDB that still believes it is attached gets its stop reply.
            0x03 if self.buf.is_empty() => return Event::Gdb(b),
            // GDB acknowledges before its first packet; no command starts with `+`.
            b'+' if self.buf.is_empty() => {}
            0x1b => self.escape = Escape::Esc,
            b'\r' | b'\n' => {
                let _ = out.write_str("\r\n");
                self.done = core::mem::take(&mut self.buf);
                self.browsing = None;
                let line = self.done.trim();
                if !line.is_empty() && self.history.front().map(|h| h.as_str()) != Some(line) {
                    if self.history.is_full() {
                        self.history.pop_back();
                    }
                    let mut h = String::new();
                    let _ = h.push_str(line);
                    let _ = self.history.push_front(h);
                }
                return Event::Line;
            }
            0x08 | 0x7f => {
                if self.buf.pop().is_some() {
                    let _ = out.write_str("\x08 \x08");
                }
            }
            0x15 => self.replace_line("", out), // Ctrl-U
            0x03 => {
                // Ctrl-C: abandon the line.
                let _ = out.write_str("^C\r\n");
                self.buf.clear();
                self.browsing = None;
            }
            0x20..=0x7e => {
                if self.buf.push(b as char).is_ok() {
                    let _ = out.write_char(b as char);
                } else {
                    let _ = out.write_char('\x07'); // the line is full: bell
                }
            }
            _ => {} // other control bytes and non-ASCII are ignored
        }
        Event::None
    }

    fn arrow(&mut self, b: u8, out: &mut impl Write) {
        let next = match (b, self.browsing) {
            (b'A', None) if !self.history.is_empty() => Some(0),
            (b'A', Some(i)) => Some((i + 1).min(self.history.len() - 1)),
            (b'B', Some(0)) => None,
            (b'B', Some(i)) => Some(i - 1),
            _ => return,
        };
        self.browsing = next;
        let text: String<MAX_LINE> = next
            .and_then(|i| self.history.iter().nth(i).cloned())
            .unwrap_or_default();
        self.replace_line(&text, out);
    }
}
