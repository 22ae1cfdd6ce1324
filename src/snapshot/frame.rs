//! The frame of snapshot format 2: the unit that is checksummed, sent, acknowledged
//! and retransmitted. A snapshot file, an in-memory slot and a transfer over the
//! debug line are the same bytes: the magic, then frames.
//!
//! ```text
//! sync     2 bytes  0xf5 0x5f
//! kind     u8       'H' header, 'C' vCPU, 'G' GIC, 'D' boot images, 'P' RAM pages,
//!                   'Z' RAM pages compressed, 'X' RAM against the boot images,
//!                   'R' RAM run, 'B' RAM as booted, 'T' tags, 'E' end
//! seq      u32      the frame's number: 0, 1, 2, ...
//! len      u32      payload bytes (at most MAX_PAYLOAD)
//! hcrc     u32      CRC-32 of the 11 bytes before it
//! payload  len bytes
//! crc      u32      CRC-32 of everything before it, sync to payload
//! ```
//!
//! The header's own checksum lets a reader trust `len` before the payload is there,
//! and find the next frame again after damage on a line ([`FrameReader`] slides
//! over bytes until a header checks).
#![forbid(unsafe_code)]

use alloc::vec::Vec;

pub const SYNC: [u8; 2] = [0xf5, 0x5f];
/// sync, kind, seq, len, hcrc.
pub const HEADER_LEN: usize = 15;
/// The largest payload a reader accepts (a RAM frame is about 64 KiB; a vGIC state
/// of many vCPUs and interrupts is the largest other).
pub const MAX_PAYLOAD: usize = 256 * 1024;

pub const KIND_HEAD: u8 = b'H';
pub const KIND_VCPU: u8 = b'C';
pub const KIND_GIC: u8 = b'G';
pub const KIND_PAGES: u8 = b'P';
/// A run of RAM pages all of one byte (zero pages, mostly).
pub const KIND_RUN: u8 = b'R';
pub const KIND_END: u8 = b'E';
/// Allocation tags of RAM pages (MTE), after the RAM frames.
pub const KIND_TAGS: u8 = b'T';
/// The boot images (kernel, initrd) the RAM frames refer to, before RAM.
pub const KIND_DEPENDS: u8 = b'D';
/// A run of RAM pages that still hold what the VM's boot images put there.
pub const KIND_BOOTED: u8 = b'B';
/// RAM pages as in `P`, their data compressed (LZ4 block format).
pub const KIND_PACKED: u8 = b'Z';
/// As `Z`, each data page inside a boot image XORed with the image's bytes.
pub const KIND_DELTA: u8 = b'X';

/// One frame, checked.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Frame<'a> {
    pub kind: u8,
    pub seq: u32,
    pub payload: &'a [u8],
}

/// What a frame kind is called in messages.
pub fn kind_name(kind: u8) -> &'static str {
    match kind {
        KIND_HEAD => "header",
        KIND_VCPU => "vCPU",
        KIND_GIC => "GIC",
        KIND_PAGES => "RAM",
        KIND_RUN => "RAM run",
        KIND_END => "end",
        KIND_TAGS => "tags",
        KIND_DEPENDS => "boot images",
        KIND_BOOTED => "RAM as booted",
        KIND_PACKED => "compressed RAM",
        KIND_DELTA => "RAM against the boot images",
        _ => "unknown",
    }
}

/// Starts a frame at the end of `out`; the payload is appended after it, then
/// [`finish`] completes it. Returns where the frame starts.
pub fn begin(out: &mut Vec<u8>, kind: u8, seq: u32) -> usize {
    let at = out.len();
    out.extend_from_slice(&SYNC);
    out.push(kind);
    out.extend_from_slice(&seq.to_le_bytes());
    out.extend_from_slice(&[0; 8]);
    at
}

/// Fills in the length and the checksums of the frame begun at `at`.
pub fn finish(out: &mut Vec<u8>, at: usize) {
    let len = (out.len() - at - HEADER_LEN) as u32;
    out[at + 7..at + 11].copy_from_slice(&len.to_le_bytes());
    let hcrc = crate::crc32::hash(&out[at..at + 11]);
    out[at + 11..at + 15].copy_from_slice(&hcrc.to_le_bytes());
    let crc = crate::crc32::hash(&out[at..]);
    out.extend_from_slice(&crc.to_le_bytes());
}

/// Appends a whole frame.
pub fn write(out: &mut Vec<u8>, kind: u8, seq: u32, payload: &[u8]) {
    let at = begin(out, kind, seq);
    out.extend_from_slice(payload);
    finish(out, at);
}

fn le32(b: &[u8]) -> u32 {
    u32::from_le_bytes([b[0], b[1], b[2], b[3]])
}

/// A header that checks: (kind, seq, len).
fn header(h: &[u8]) -> Option<(u8, u32, usize)> {
    if h[..2] != SYNC || crate::crc32::hash(&h[..11]) != le32(&h[11..15]) {
        return None;
    }
    let len = le32(&h[7..11]) as usize;
    (len <= MAX_PAYLOAD).then_some((h[2], le32(&h[3..7]), len))
}

/// What is wrong with the frame at a position of a file.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum FrameError {
    /// No frame header (or a damaged one) at this offset.
    BadHeader { at: usize },
    /// The file ends inside the frame starting at this offset.
    Truncated { at: usize },
    /// The frame's contents do not match its checksum.
    BadChecksum { seq: u32 },
}

/// Splits `data` (a file's bytes after the magic, `base` its offset in the file)
/// into frames, strictly one after another.
pub fn split(
    data: &[u8],
    base: usize,
) -> impl Iterator<Item = Result<(usize, Frame<'_>), FrameError>> {
    let mut pos = 0;
    let mut failed = false;
    core::iter::from_fn(move || {
        if failed || pos == data.len() {
            return None;
        }
        let at = base + pos;
        let r = (|| {
            let rest = &data[pos..];
            if rest.len() < HEADER_LEN {
                return Err(if rest.len() >= 2 && rest[..2] == SYNC {
                    FrameError::Truncated { at }
                } else {
                    FrameError::BadHeader { at }
                });
            }
            let (kind, seq, len) =
                header(&rest[..HEADER_LEN]).ok_or(FrameError::BadHeader { at })?;
            let total = HEADER_LEN + len + 4;
            if rest.len() < total {
                return Err(FrameError::Truncated { at });
            }
            if crate::crc32::hash(&rest[..total - 4]) != le32(&rest[total - 4..total]) {
                return Err(FrameError::BadChecksum { seq });
            }
            pos += total;
            Ok((
                at,
                Frame {
                    kind,
                    seq,
                    payload: &rest[HEADER_LEN..HEADER_LEN + len],
                },
            ))
        })();
        failed = r.is_err();
        Some(r)
    })
}

/// Makes every frame's checksums right again, for tests and fuzzing that change a
/// frame's contents on purpose (so the structure checks run): walks the frames by
/// their length fields and stops at the first that does not fit.
pub fn fix_checksums(data: &mut [u8]) {
    let mut pos = 0;
    while pos + HEADER_LEN <= data.len() && data[pos..pos + 2] == SYNC {
        let len = le32(&data[pos + 7..pos + 11]) as usize;
        let hcrc = crate::crc32::hash(&data[pos..pos + 11]);
        data[pos + 11..pos + 15].copy_from_slice(&hcrc.to_le_bytes());
        let end = pos + HEADER_LEN + len;
        if len > MAX_PAYLOAD || end + 4 > data.len() {
            return;
        }
        let crc = crate::crc32::hash(&data[pos..end]);
        data[end..end + 4].copy_from_slice(&crc.to_le_bytes());
        pos = end + 4;
    }
}

/// What [`FrameReader::push`] found.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Got {
    /// A whole frame whose checksums are right: [`FrameReader::frame`].
    Frame,
    /// A frame with a good header but damaged contents (its number).
    Damaged { seq: u32 },
}

/// Reassembles frames from a byte stream (a serial line), one byte at a time.
/// Bytes that are not a frame (noise, a damaged header) are skipped until a header
/// checks again.
pub struct FrameReader {
    buf: Vec<u8>,
    /// Bytes of the frame being read (0 while looking for a header).
    need: usize,
    complete: bool,
    /// Bytes skipped while looking for a header.
    pub skipped: u64,
}

impl Default for FrameReader {
    fn default() -> Self {
        Self::new()
    }
}

impl FrameReader {
    pub const fn new() -> Self {
        Self {
            buf: Vec::new(),
            need: 0,
            complete: false,
            skipped: 0,
        }
    }

    /// Feeds one byte; `Some` when it completes a frame (good or damaged).
    pub fn push(&mut self, b: u8) -> Option<Got> {
        if self.complete {
            self.buf.clear();
            self.need = 0;
            self.complete = false;
        }
        self.buf.push(b);
        if self.need == 0 {
            // Looking for a header: keep at most one, sliding on a bad one.
            loop {
                let n = self.buf.len();
                if n >= 1 && self.buf[0] != SYNC[0] || n >= 2 && self.buf[1] != SYNC[1] {
                    self.slide();
                    continue;
                }
                if n < HEADER_LEN {
                    return None;
                }
                match header(&self.buf[..HEADER_LEN]) {
                    Some((_, _, len)) => {
                        self.need = HEADER_LEN + len + 4;
                        // A payload up to 64 KiB is reserved once and reused.
                        let _ = self
                            .buf
                            .try_reserve(self.need.saturating_sub(self.buf.len()));
                        break;
                    }
                    None => self.slide(),
                }
            }
        }
        if self.buf.len() < self.need {
            return None;
        }
        self.complete = true;
        let n = self.need;
        let seq = le32(&self.buf[3..7]);
        if crate::crc32::hash(&self.buf[..n - 4]) == le32(&self.buf[n - 4..n]) {
            Some(Got::Frame)
        } else {
            Some(Got::Damaged { seq })
        }
    }

    /// Drops the first byte, and whatever follows it up to the next possible sync.
    fn slide(&mut self) {
        let skip = self.buf[1..]
            .iter()
            .position(|&b| b == SYNC[0])
            .map_or(self.buf.len(), |i| i + 1);
        self.buf.drain(..skip);
        self.skipped += skip as u64;
    }

    /// The frame the last `push` completed (`Got::Frame`).
    pub fn frame(&self) -> Frame<'_> {
        if !self.complete || self.buf.len() != self.need {
            return Frame {
                kind: 0,
                seq: 0,
                payload: &[],
            };
        }
        let n = self.need;
        Frame {
            kind: self.buf[2],
            seq: le32(&self.buf[3..7]),
            payload: &self.buf[HEADER_LEN..n - 4],
        }
    }

    /// Forgets a partly read frame (after a timeout).
    pub fn reset(&mut self) {
        self.buf.clear();
        self.need = 0;
        self.complete = false;
    }
}
