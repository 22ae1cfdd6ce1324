//! Framing of the GDB remote serial protocol: `$body#cs` packets, their checksums,
//! `}` escapes and `*` run-length encoding, the acknowledgements `+`/`-`, and the
//! interrupt byte 0x03 (Ctrl-C). Byte by byte (or a slice at a time, [`Framer::feed_all`]),
//! with a bounded buffer: any input (line noise, a human typing, a fuzzer) gives a
//! defined [`Input`], never a panic.
#![forbid(unsafe_code)]

use alloc::vec::Vec;

/// The largest packet body accepted, after escapes and run lengths are decoded.
/// Advertised to GDB as `PacketSize` (which counts the framing too, so GDB's
/// packets stay below it). GDB reads memory in pieces of half of it (hex), so
/// 32 KiB makes a `dump` 16 KiB per round trip, and an `X` write 32 KiB at most.
pub const MAX_PACKET: usize = 0x8000;

/// What one byte of input completed.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Input {
    /// Nothing yet (inside a packet, or a byte that needs no answer).
    None,
    /// A packet with a good checksum: its decoded body is [`Framer::body`].
    Packet,
    /// A packet with a good checksum whose run-length encoding is invalid.
    Malformed,
    /// A packet with a good checksum, longer than [`MAX_PACKET`].
    TooLong,
    /// A packet whose checksum is wrong or not hex: to be NAKed.
    BadChecksum,
    /// 0x03 outside a packet: the user pressed Ctrl-C in GDB.
    Interrupt,
    /// `+`: the last reply arrived.
    Ack,
    /// `-`: the last reply arrived damaged and must be sent again.
    Nack,
    /// Any other byte outside a packet (not protocol; a person typing, noise).
    Other(u8),
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum State {
    Idle,
    Body,
    Sum1,
    Sum2,
}

/// Reassembles packets from a byte stream.
pub struct Framer {
    state: State,
    /// On the heap (grown up to [`MAX_PACKET`] as packets need it): a session
    /// lives in a static, and no stack frame holds 32 KiB.
    body: Vec<u8>,
    /// Checksum of the raw bytes between `$` and `#`.
    sum: u8,
    /// The first checksum digit.
    high: u8,
    escape: bool,
    run: bool,
    overflow: bool,
    malformed: bool,
}

impl Default for Framer {
    fn default() -> Self {
        Self::new()
    }
}

fn hex_digit(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

impl Framer {
    pub const fn new() -> Self {
        Self {
            state: State::Idle,
            body: Vec::new(),
            sum: 0,
            high: 0,
            escape: false,
            run: false,
            overflow: false,
            malformed: false,
        }
    }

    /// The body of the packet the last [`Input::Packet`] reported.
    pub fn body(&self) -> &[u8] {
        &self.body
    }

    /// Whether a packet is being received (its `$` seen, its checksum not yet).
    pub fn in_packet(&self) -> bool {
        self.state != State::Idle
    }

    fn push(&mut self, b: u8) {
        if self.body.len() < MAX_PACKET {
            self.body.push(b);
        } else {
            self.overflow = true;
        }
    }

    fn start(&mut self) {
        self.state = State::Body;
        self.body.clear();
        self.sum = 0;
        self.escape = false;
        self.run = false;
        self.overflow = false;
        self.malformed = false;
    }

    /// Feeds one byte.
    pub fn feed(&mut self, b: u8) -> Input {
        match self.state {
            State::Idle => match b {
                b'$' => {
                    self.start();
                    Input::None
                }
                b'+' => Input::Ack,
                b'-' => Input::Nack,
                0x03 => Input::Interrupt,
                _ => Input::Other(b),
            },
            State::Body => {
                match b {
                    // A `$` inside a packet: the previous one was cut short; this
                    // starts a new one (as GDB's own reader does).
                    b'$' => {
                        self.start();
                        return Input::None;
                    }
                    b'#' if !self.escape && !self.run => {
                        self.state = State::Sum1;
                        return Input::None;
                    }
                    _ => {}
                }
                self.sum = self.sum.wrapping_add(b);
                if self.run {
                    self.run = false;
                    // `X*n`: X repeated n - 29 more times (n printable, >= 29).
                    match (b.checked_sub(29), self.body.last().copied()) {
                        (Some(n), Some(prev)) if b <= 126 => {
                            for _ in 0..n {
                                self.push(prev);
                            }
                        }
                        _ => self.malformed = true,
                    }
                } else if self.escape {
                    self.escape = false;
                    self.push(b ^ 0x20);
                } else if b == b'}' {
                    self.escape = true;
                } else if b == b'*' {
                    self.run = true;
                } else {
                    self.push(b);
                }
                Input::None
            }
            State::Sum1 => {
                // A digit that is not hex makes the checksum bad (0xff never
                // matches), but the second digit is still consumed.
                self.high = hex_digit(b).unwrap_or(0xff);
                self.state = State::Sum2;
                Input::None
            }
            State::Sum2 => {
                self.state = State::Idle;
                match hex_digit(b) {
                    Some(d) if self.high != 0xff && (self.high << 4 | d) == self.sum => {
                        if self.overflow {
                            Input::TooLong
                        } else if self.malformed || self.escape {
                            Input::Malformed
                        } else {
                            Input::Packet
                        }
                    }
                    _ => Input::BadChecksum,
                }
            }
        }
    }
}

/// Appends `$body#cs` to `out`, escaping `$`, `#`, `}` and `*` in the body, and
/// run-length encoding repeats (`X*c`: `c - 29` more copies of `X`, 3 to 97, never
/// 6 or 7, whose counts would be `#` and `$`), as GDB reads every reply. The line
/// carries a byte per UART write: a page of zeros read as hex is 8192 bytes
/// plain and 256 encoded.
pub fn encode(body: &[u8], out: &mut Vec<u8>) {
    fn put(out: &mut Vec<u8>, sum: &mut u8, b: u8) {
        out.push(b);
        *sum = sum.wrapping_add(b);
    }
    out.push(b'$');
    let mut sum: u8 = 0;
    let mut i = 0;
    while i < body.len() {
        let b = body[i];
        i += 1;
        if matches!(b, b'$' | b'#' | b'}' | b'*') {
            put(out, &mut sum, b'}');
            put(out, &mut sum, b ^ 0x20);
            continue;
        }
        put(out, &mut sum, b);
        let mut more = body[i..].iter().take(97).take_while(|&&x| x == b).count();
        if more >= 3 {
            if more == 6 || more == 7 {
                more = 5;
            }
            put(out, &mut sum, b'*');
            put(out, &mut sum, more as u8 + 29);
            i += more;
        }
    }
    out.push(b'#');
    out.extend_from_slice(&hex_byte(sum));
}

/// Appends `$hex(data)#cs`: exactly what [`encode`] makes of `data` as hex text
/// ([`push_hex`]), without building that text first. A memory read's reply
/// (`m`): runs of a byte whose two hex digits are the same (zeros above all)
/// are counted eight bytes at a time and become `0*~` pieces directly, other
/// bytes cost two table lookups each. Hex digits never need escaping.
pub fn encode_hex(data: &[u8], out: &mut Vec<u8>) {
    /// The run of `c` not yet written: `n` copies.
    struct Run {
        c: u8,
        n: usize,
        sum: u8,
    }
    impl Run {
        /// Writes the pending run as [`encode`] would: the digit, then up to 97
        /// more as `*` and a count (never 6 or 7: `#` and `$`), again while
        /// copies remain.
        fn flush(&mut self, out: &mut Vec<u8>) {
            let c = self.c;
            while self.n > 0 {
                out.push(c);
                self.sum = self.sum.wrapping_add(c);
                self.n -= 1;
                let mut more = self.n.min(97);
                if more >= 3 {
                    if more == 6 || more == 7 {
                        more = 5;
                    }
                    let count = more as u8 + 29;
                    out.extend_from_slice(&[b'*', count]);
                    self.sum = self.sum.wrapping_add(b'*').wrapping_add(count);
                    self.n -= more;
                }
            }
        }

        fn add(&mut self, c: u8, copies: usize, out: &mut Vec<u8>) {
            if c != self.c {
                self.flush(out);
                self.c = c;
            }
            self.n += copies;
        }
    }
    out.reserve(data.len() / 8 + 8);
    out.push(b'$');
    let mut run = Run { c: 0, n: 0, sum: 0 };
    let mut i = 0;
    while i < data.len() {
        let b = data[i];
        if b >> 4 == b & 0xf {
            // A byte of two equal digits: count its run, a word at a time.
            let word = u64::from_ne_bytes([b; 8]);
            let mut end = i + 1;
            while let Some(w) = data.get(end..end + 8) {
                if u64::from_ne_bytes(w.try_into().unwrap_or([0; 8])) != word {
                    break;
                }
                end += 8;
            }
            while end < data.len() && data[end] == b {
                end += 1;
            }
            run.add(HEX[(b & 0xf) as usize], 2 * (end - i), out);
            i = end;
            continue;
        }
        run.add(HEX[(b >> 4) as usize], 1, out);
        run.add(HEX[(b & 0xf) as usize], 1, out);
        i += 1;
    }
    run.flush(out);
    out.push(b'#');
    out.extend_from_slice(&hex_byte(run.sum));
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Two lowercase hex digits.
pub fn hex_byte(b: u8) -> [u8; 2] {
    [HEX[(b >> 4) as usize], HEX[(b & 0xf) as usize]]
}

/// Appends `bytes` as lowercase hex.
pub fn push_hex(bytes: &[u8], out: &mut Vec<u8>) {
    for &b in bytes {
        out.extend_from_slice(&hex_byte(b));
    }
}

/// Decodes hex text (an even number of digits) into bytes.
pub fn decode_hex(text: &[u8]) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    text.chunks_exact(2)
        .map(|p| Some(hex_digit(p[0])? << 4 | hex_digit(p[1])?))
        .collect()
}

/// Parses a hex number of at most 16 digits.
pub fn parse_hex(text: &[u8]) -> Option<u64> {
    if text.is_empty() || text.len() > 16 {
        return None;
    }
    text.iter()
        .try_fold(0u64, |acc, &b| Some(acc << 4 | hex_digit(b)? as u64))
}
