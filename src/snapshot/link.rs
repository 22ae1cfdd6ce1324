//! The binary transfer of a format-2 snapshot over the debug line: frames one
//! way, acknowledgements the other, go-back-N with a window.
//!
//! The sender keeps at most [`WINDOW`] frames unacknowledged. The receiver
//! acknowledges every frame it accepts with `A n` (all frames below `n` are
//! here); a damaged frame, or one past a gap, gets `N n` (send again from `n`),
//! once until the receiver makes progress again. A sender that hears nothing for
//! a while goes back to the first unacknowledged frame; one that hears nothing
//! for long gives up: the connection is gone. Frames are repeated by encoding
//! them again (`stream::Encoder` is a function of the frame number), so neither
//! side keeps more than a frame.
//!
//! A message is `0xf5 0xac | kind u8 | n u32 | CRC-32 of the 7 bytes before`.
#![forbid(unsafe_code)]

use super::frame::{Frame, FrameReader, Got};

pub const MSG_SYNC: [u8; 2] = [0xf5, 0xac];
pub const MSG_LEN: usize = 11;
/// All frames below `n` arrived.
pub const ACK: u8 = b'A';
/// Send again from frame `n`.
pub const NAK: u8 = b'N';
/// The receiver gives up (it said why on the console).
pub const ABORT: u8 = b'X';
/// From the sender, once it has heard the acknowledgement of the end frame:
/// nothing follows (`n`: the number of frames). Frames it sent again before that
/// came before it, so the receiver can stop discarding at once.
pub const FIN: u8 = b'F';
/// Frames in flight.
pub const WINDOW: u64 = 8;

/// The bytes of a message.
pub fn message(kind: u8, n: u32) -> [u8; MSG_LEN] {
    let mut m = [0u8; MSG_LEN];
    m[..2].copy_from_slice(&MSG_SYNC);
    m[2] = kind;
    m[3..7].copy_from_slice(&n.to_le_bytes());
    let crc = crate::crc32::hash(&m[..7]);
    m[7..].copy_from_slice(&crc.to_le_bytes());
    m
}

/// Finds messages in the bytes coming back (anything else is skipped).
#[derive(Default)]
pub struct MessageReader {
    buf: [u8; MSG_LEN],
    n: usize,
}

impl MessageReader {
    pub const fn new() -> Self {
        Self {
            buf: [0; MSG_LEN],
            n: 0,
        }
    }

    /// Feeds one byte; `Some((kind, n))` when it completes a message that checks.
    pub fn push(&mut self, b: u8) -> Option<(u8, u32)> {
        self.buf[self.n] = b;
        self.n += 1;
        loop {
            let ok = (self.n < 1 || self.buf[0] == MSG_SYNC[0])
                && (self.n < 2 || self.buf[1] == MSG_SYNC[1]);
            if ok && self.n < MSG_LEN {
                return None;
            }
            if ok {
                let m = self.buf;
                let crc = u32::from_le_bytes([m[7], m[8], m[9], m[10]]);
                if crate::crc32::hash(&m[..7]) == crc {
                    self.n = 0;
                    return Some((m[2], u32::from_le_bytes([m[3], m[4], m[5], m[6]])));
                }
            }
            // Slide by one byte and look again.
            self.buf.copy_within(1..self.n, 0);
            self.n -= 1;
            if self.n == 0 {
                return None;
            }
        }
    }
}

/// The sending side's window.
pub struct Sender {
    total: u64,
    next: u64,
    acked: u64,
    /// Frames sent again (after a NAK or a silence).
    pub repeated: u64,
}

impl Sender {
    pub fn new(total: u64) -> Self {
        Self {
            total,
            next: 0,
            acked: 0,
            repeated: 0,
        }
    }

    /// The next frame to send, if the window has room.
    pub fn next(&mut self) -> Option<u64> {
        if self.next < self.total && self.next < self.acked + WINDOW {
            self.next += 1;
            Some(self.next - 1)
        } else {
            None
        }
    }

    /// The number of frames, once the sender knows it (its encoder reached the
    /// end frame); until then `new` was given an upper bound.
    pub fn set_total(&mut self, total: u64) {
        self.total = total;
        self.next = self.next.min(total);
        self.acked = self.acked.min(total);
    }

    /// The number of the next frame [`Sender::next`] gives (frames below it and
    /// from [`Sender::acked`] on are in flight).
    pub fn next_seq(&self) -> u64 {
        self.next
    }

    /// Frames the receiver has.
    pub fn acked(&self) -> u64 {
        self.acked
    }

    pub fn done(&self) -> bool {
        self.acked == self.total
    }

    /// A message from the receiver; `false` for an abort.
    pub fn on_message(&mut self, kind: u8, n: u32) -> bool {
        let n = (n as u64).min(self.total);
        match kind {
            ACK if n > self.acked => {
                self.acked = n;
                self.next = self.next.max(n);
            }
            NAK if n >= self.acked && n < self.next => {
                self.acked = n;
                self.repeated += self.next - n;
                self.next = n;
            }
            ABORT => return false,
            _ => {}
        }
        true
    }

    /// Nothing heard for a while: send again from the first frame not acknowledged.
    pub fn on_silence(&mut self) {
        self.repeated += self.next - self.acked;
        self.next = self.acked;
    }
}

/// What the receiving side makes of a byte.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Rx {
    None,
    /// The next frame in order: check it ([`Receiver::frame`]), then
    /// [`Receiver::accept`] it.
    Frame,
    /// Send this to the sender (a NAK, or an ACK repeated for a duplicate).
    Reply([u8; MSG_LEN]),
}

/// The receiving side: frames in order, damaged ones asked for again.
#[derive(Default)]
pub struct Receiver {
    pub frames: FrameReader,
    expected: u32,
    nak_sent: bool,
    /// Damaged frames seen.
    pub damaged: u64,
}

impl Receiver {
    pub const fn new() -> Self {
        Self {
            frames: FrameReader::new(),
            expected: 0,
            nak_sent: false,
            damaged: 0,
        }
    }

    pub fn push(&mut self, b: u8) -> Rx {
        match self.frames.push(b) {
            None => Rx::None,
            Some(Got::Frame) => {
                let seq = self.frames.frame().seq;
                if seq == self.expected {
                    Rx::Frame
                } else if seq < self.expected {
                    // A frame repeated by a go-back: it is here already.
                    Rx::Reply(message(ACK, self.expected))
                } else {
                    self.nak()
                }
            }
            Some(Got::Damaged { .. }) => {
                self.damaged += 1;
                self.nak()
            }
        }
    }

    fn nak(&mut self) -> Rx {
        if self.nak_sent {
            return Rx::None;
        }
        self.nak_sent = true;
        Rx::Reply(message(NAK, self.expected))
    }

    /// The frame `push` reported.
    pub fn frame(&self) -> Frame<'_> {
        self.frames.frame()
    }

    /// The reported frame was taken: the acknowledgement to send.
    pub fn accept(&mut self) -> [u8; MSG_LEN] {
        self.expected += 1;
        self.nak_sent = false;
        message(ACK, self.expected)
    }

    /// The number of the frame expected next.
    pub fn expected(&self) -> u32 {
        self.expected
    }
}
