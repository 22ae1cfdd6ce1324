//! Little-endian byte writing and bounds-checked reading for the snapshot format.
//! Reading never panics: every read that would run past the end is `Truncated`.
#![forbid(unsafe_code)]

use super::SnapshotError;
use alloc::vec::Vec;

#[derive(Default)]
pub struct Writer {
    pub buf: Vec<u8>,
}

impl Writer {
    pub fn u8(&mut self, v: u8) {
        self.buf.push(v);
    }
    pub fn u32(&mut self, v: u32) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }
    pub fn u64(&mut self, v: u64) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }
    pub fn u128(&mut self, v: u128) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }
    pub fn bytes(&mut self, b: &[u8]) {
        self.buf.extend_from_slice(b);
    }
    /// Starts a section: writes its tag and a length placeholder; returns where the
    /// length goes.
    pub fn begin(&mut self, tag: [u8; 4]) -> usize {
        self.bytes(&tag);
        let at = self.buf.len();
        self.u64(0);
        at
    }
    /// Ends the section started at `at`: fills in its payload length.
    pub fn end(&mut self, at: usize) {
        let len = (self.buf.len() - at - 8) as u64;
        self.buf[at..at + 8].copy_from_slice(&len.to_le_bytes());
    }
}

pub struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub fn new(data: &'a [u8]) -> Self {
        Self { data, pos: 0 }
    }
    pub fn pos(&self) -> usize {
        self.pos
    }
    pub fn remaining(&self) -> usize {
        self.data.len() - self.pos
    }
    pub fn take(&mut self, n: usize) -> Result<&'a [u8], SnapshotError> {
        if n > self.remaining() {
            return Err(SnapshotError::Truncated { at: self.pos });
        }
        let s = &self.data[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }
    pub fn u8(&mut self) -> Result<u8, SnapshotError> {
        Ok(self.take(1)?[0])
    }
    pub fn u32(&mut self) -> Result<u32, SnapshotError> {
        Ok(u32::from_le_bytes(self.take(4)?.try_into().unwrap()))
    }
    pub fn u64(&mut self) -> Result<u64, SnapshotError> {
        Ok(u64::from_le_bytes(self.take(8)?.try_into().unwrap()))
    }
    pub fn u128(&mut self) -> Result<u128, SnapshotError> {
        Ok(u128::from_le_bytes(self.take(16)?.try_into().unwrap()))
    }
    /// Reads a section header and returns (tag, a reader over its payload).
    pub fn section(&mut self) -> Result<([u8; 4], Reader<'a>), SnapshotError> {
        let tag: [u8; 4] = self.take(4)?.try_into().unwrap();
        let len = self.u64()?;
        let len = usize::try_from(len).map_err(|_| SnapshotError::Truncated { at: self.pos })?;
        let payload = self.take(len)?;
        Ok((tag, Reader::new(payload)))
    }
}
