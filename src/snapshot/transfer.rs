//! Moving a snapshot over the debug console (a serial line, QEMU's TCP serial, a
//! board's USB adapter) as text, so it survives terminals, logs and line
//! disciplines: a header with the length and CRC-32, hex lines, an end marker.
//!
//! ```text
//! HVSNAP-BEGIN <length> <crc32 hex>
//! :<hex of up to 48 bytes>
//! ...
//! HVSNAP-END
//! ```
//!
//! The hypervisor sends one for `snapshot send vmN`; the host sends one after
//! `snapshot receive vmN <length> <crc32>`. Both sides use this module (the host
//! through `cargo xtask snapshot`), and a receiver checks length and checksum before
//! the snapshot is even decoded.
#![forbid(unsafe_code)]

use alloc::vec::Vec;
use core::fmt;

pub const BEGIN: &str = "HVSNAP-BEGIN";
pub const END: &str = "HVSNAP-END";
/// Bytes per line (96 hex digits: lines stay well under the console's limit).
pub const PER_LINE: usize = 48;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum TransferError {
    /// A line that is neither data nor the end marker.
    BadLine,
    /// More data than announced.
    TooLong {
        expected: usize,
    },
    /// The end came early (bytes received, bytes announced).
    TooShort {
        got: usize,
        expected: usize,
    },
    BadChecksum {
        expected: u32,
        got: u32,
    },
    /// Not enough memory to receive this many bytes.
    NoMemory(usize),
    /// The BEGIN header is malformed.
    BadHeader,
}

impl fmt::Display for TransferError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::BadLine => write!(f, "a line of the transfer is not ':<hex>' or {END}"),
            Self::TooLong { expected } => {
                write!(f, "more data than the {expected} bytes announced")
            }
            Self::TooShort { got, expected } => {
                write!(f, "the transfer ended after {got} of {expected} bytes")
            }
            Self::BadChecksum { expected, got } => {
                write!(
                    f,
                    "transfer checksum {got:#010x}, expected {expected:#010x}"
                )
            }
            Self::NoMemory(n) => write!(f, "not enough memory to receive {n} bytes"),
            Self::BadHeader => write!(
                f,
                "malformed {BEGIN} header: expected '{BEGIN} <length> <crc32 hex>'"
            ),
        }
    }
}

fn hex(b: u8) -> [u8; 2] {
    const D: &[u8; 16] = b"0123456789abcdef";
    [D[(b >> 4) as usize], D[(b & 15) as usize]]
}

/// The transfer's checksum of `bytes` (CRC-32, IEEE).
pub fn checksum(bytes: &[u8]) -> u32 {
    crate::crc32::hash(bytes)
}

/// Writes `bytes` as a complete transfer (header, data lines, end).
pub fn write(bytes: &[u8], out: &mut impl fmt::Write) -> fmt::Result {
    writeln!(
        out,
        "{BEGIN} {} {:08x}\r",
        bytes.len(),
        crate::crc32::hash(bytes)
    )?;
    write_body(bytes, out)
}

/// The data lines and the end marker (after a `snapshot receive` command, which
/// carries the length and checksum itself).
pub fn write_body(bytes: &[u8], out: &mut impl fmt::Write) -> fmt::Result {
    for chunk in bytes.chunks(PER_LINE) {
        out.write_char(':')?;
        for &b in chunk {
            let h = hex(b);
            out.write_char(h[0] as char)?;
            out.write_char(h[1] as char)?;
        }
        out.write_str("\r\n")?;
    }
    writeln!(out, "{END}\r")
}

/// `<length> <crc32 hex>`, as in the header and the receive command.
pub fn parse_header(rest: &str) -> Result<(usize, u32), TransferError> {
    let mut w = rest.split_whitespace();
    let len = w
        .next()
        .and_then(|l| l.parse().ok())
        .ok_or(TransferError::BadHeader)?;
    let crc = w
        .next()
        .and_then(|c| u32::from_str_radix(c, 16).ok())
        .ok_or(TransferError::BadHeader)?;
    Ok((len, crc))
}

/// Reassembles a transfer line by line.
pub struct Receiver {
    expected: usize,
    crc: u32,
    buf: Vec<u8>,
}

impl Receiver {
    /// Ready for `len` bytes with checksum `crc`; fails (without panicking) when the
    /// memory is not there.
    pub fn new(len: usize, crc: u32) -> Result<Self, TransferError> {
        let mut buf = Vec::new();
        buf.try_reserve_exact(len)
            .map_err(|_| TransferError::NoMemory(len))?;
        Ok(Self {
            expected: len,
            crc,
            buf,
        })
    }

    /// Feeds one line (without its line end). `Ok(Some(bytes))` when the end marker
    /// completes a transfer whose length and checksum are right.
    pub fn line(&mut self, line: &str) -> Result<Option<Vec<u8>>, TransferError> {
        let line = line.trim();
        if line == END {
            if self.buf.len() != self.expected {
                return Err(TransferError::TooShort {
                    got: self.buf.len(),
                    expected: self.expected,
                });
            }
            let got = crate::crc32::hash(&self.buf);
            if got != self.crc {
                return Err(TransferError::BadChecksum {
                    expected: self.crc,
                    got,
                });
            }
            return Ok(Some(core::mem::take(&mut self.buf)));
        }
        let data = line
            .strip_prefix(':')
            .ok_or(TransferError::BadLine)?
            .as_bytes();
        if data.len() % 2 != 0 {
            return Err(TransferError::BadLine);
        }
        if self.buf.len() + data.len() / 2 > self.expected {
            return Err(TransferError::TooLong {
                expected: self.expected,
            });
        }
        let digit = |c: u8| (c as char).to_digit(16).ok_or(TransferError::BadLine);
        for pair in data.chunks(2) {
            self.buf
                .push((digit(pair[0])? * 16 + digit(pair[1])?) as u8);
        }
        Ok(None)
    }
}

/// Finds a complete transfer in console text (the host side of `snapshot send`):
/// the bytes, once length and checksum are right. `None` while the end has not
/// arrived yet.
pub fn extract(text: &str) -> Option<Result<Vec<u8>, TransferError>> {
    let start = text.find(BEGIN)?;
    // Nothing is parsed before the whole transfer is there: a header may still be
    // arriving.
    let end = text[start..].find(END)?;
    if !text[start + end..].contains('\n') {
        return None;
    }
    let mut lines = text[start..].lines();
    let header = lines.next()?;
    let (len, crc) = match parse_header(&header[BEGIN.len()..]) {
        Ok(h) => h,
        Err(e) => return Some(Err(e)),
    };
    let mut rx = match Receiver::new(len, crc) {
        Ok(r) => r,
        Err(e) => return Some(Err(e)),
    };
    for line in lines {
        match rx.line(line) {
            Ok(Some(bytes)) => return Some(Ok(bytes)),
            Ok(None) => {}
            Err(e) => return Some(Err(e)),
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::String;

    #[test]
    fn a_transfer_round_trips_through_text() {
        let bytes: Vec<u8> = (0..1000u32).map(|i| (i * 7 % 256) as u8).collect();
        let mut text = String::from("noise before\r\nhv> snapshot send vm0\r\n");
        write(&bytes, &mut text).unwrap();
        text.push_str("hv> ");
        assert_eq!(extract(&text).unwrap().unwrap(), bytes);
        assert!(text.lines().all(|l| l.len() < 120));
        // Still arriving: no result yet, wherever the text is cut.
        let end = text.find(END).unwrap() + END.len();
        for cut in [12, 20, text.find(':').unwrap() + 3, end - 2, end] {
            assert!(extract(&text[..cut]).is_none(), "cut at {cut}");
        }
    }

    #[test]
    fn damage_is_detected() {
        let bytes = [1u8, 2, 3, 4, 5];
        let mut text = String::new();
        write(&bytes, &mut text).unwrap();
        let bad = text.replacen(":0102", ":0103", 1);
        assert!(matches!(
            extract(&bad),
            Some(Err(TransferError::BadChecksum { .. }))
        ));
        let short = text.replacen("0405", "04", 1);
        assert!(matches!(
            extract(&short),
            Some(Err(TransferError::TooShort { .. }))
        ));
        let junk = text.replacen(":0102", "x0102", 1);
        assert_eq!(extract(&junk), Some(Err(TransferError::BadLine)));
        let mut rx = Receiver::new(2, 0).unwrap();
        assert_eq!(
            rx.line(":010203"),
            Err(TransferError::TooLong { expected: 2 })
        );
        assert_eq!(parse_header("12"), Err(TransferError::BadHeader));
    }
}
