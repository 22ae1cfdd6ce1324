//! The newc cpio format (`cpio -H newc`, the format of Linux initramfs): a
//! zero-copy reader and a small writer.
//!
//! An archive is a sequence of entries, each a 110-byte ASCII header (magic
//! `070701`, or `070702` when the header carries a checksum of the data, then
//! thirteen 8-digit hexadecimal fields), the NUL-terminated name padded to a
//! multiple of 4 bytes from the start of the archive, then the data, padded the
//! same way. The entry named `TRAILER!!!` ends the archive; whatever follows it
//! (`cpio` pads archives to 512-byte blocks) is not read.
//!
//! The reader never trusts a field: every size is checked against the bytes
//! that are really there, with checked arithmetic, so arbitrary input gives
//! entries or a [`CpioError`] saying where and what, never a panic (a fuzz
//! target, `fuzz/fuzz_targets/bundle.rs`, holds it to that).
//!
//! The writer exists for `cargo xtask bundle` and for tests; it writes what GNU
//! `cpio -o -H newc` writes (modulo inode numbers and times, which it sets to
//! reproducible values), and `cpio -t` lists it (tested in `xtask`).
#![forbid(unsafe_code)]

use alloc::vec::Vec;
use core::fmt;

/// The header magic of the newc format.
pub const MAGIC_NEWC: &[u8; 6] = b"070701";
/// The newc format with a checksum of the data in the header's `check` field.
pub const MAGIC_CRC: &[u8; 6] = b"070702";
/// The old portable ASCII format (`cpio -H odc`), recognised only to say so.
const MAGIC_ODC: &[u8; 6] = b"070707";
/// Bytes in an entry header.
pub const HEADER_LEN: usize = 110;
/// The name of the entry that ends an archive.
pub const TRAILER: &[u8] = b"TRAILER!!!";

/// The file type bits of `mode` (`S_IFMT`) and the types a bundle cares about.
pub const S_IFMT: u32 = 0o170_000;
/// A directory.
pub const S_IFDIR: u32 = 0o040_000;
/// A regular file.
pub const S_IFREG: u32 = 0o100_000;
/// A symbolic link (its data is the link's target).
pub const S_IFLNK: u32 = 0o120_000;

/// The header fields after the magic, in order (each 8 hex digits).
const FIELDS: [&str; 13] = [
    "ino",
    "mode",
    "uid",
    "gid",
    "nlink",
    "mtime",
    "filesize",
    "devmajor",
    "devminor",
    "rdevmajor",
    "rdevminor",
    "namesize",
    "check",
];

/// Why an archive cannot be read. Offsets are from the start of the archive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CpioError {
    /// The header at `offset` (or its name, or its data) runs past the end: the
    /// archive is shorter than its headers say.
    Truncated {
        /// Where the entry starts.
        offset: usize,
        /// What is cut off.
        what: &'static str,
    },
    /// The archive ends (or is cut) before its `TRAILER!!!` entry.
    NoTrailer {
        /// Where the next header should have started.
        offset: usize,
    },
    /// Where a header should start, there is no `070701`/`070702` magic.
    BadMagic {
        /// Where.
        offset: usize,
    },
    /// A header field is not 8 hexadecimal digits.
    BadField {
        /// Where the entry starts.
        offset: usize,
        /// The field's name (as in `cpio(5)`).
        field: &'static str,
    },
    /// The name is empty or has no NUL within `namesize` bytes.
    BadName {
        /// Where the entry starts.
        offset: usize,
    },
}

impl fmt::Display for CpioError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::Truncated { offset, what } => write!(
                f,
                "truncated: the entry at byte {offset} says its {what} goes past the end of the archive"
            ),
            Self::NoTrailer { offset } => write!(
                f,
                "truncated: the archive ends at byte {offset} without its TRAILER!!! entry"
            ),
            Self::BadMagic { offset } => write!(
                f,
                "no cpio header at byte {offset} (expected the magic 070701): the archive is damaged"
            ),
            Self::BadField { offset, field } => write!(
                f,
                "the header at byte {offset} has a bad `{field}` field (not 8 hexadecimal digits)"
            ),
            Self::BadName { offset } => write!(
                f,
                "the header at byte {offset} has a name that is empty or not NUL-terminated"
            ),
        }
    }
}

/// What an archive that is not a newc cpio starts with, when it is recognisable:
/// a compressed initramfs or another cpio format (for messages).
pub fn what_else(bytes: &[u8]) -> Option<&'static str> {
    let known: [(&[u8], &str); 6] = [
        (&[0x1f, 0x8b], "gzip-compressed data"),
        (&[0xfd, b'7', b'z', b'X', b'Z', 0], "xz-compressed data"),
        (&[0x28, 0xb5, 0x2f, 0xfd], "zstd-compressed data"),
        (&[0x02, 0x21, 0x4c, 0x18], "lz4-compressed data"),
        (b"BZh", "bzip2-compressed data"),
        (MAGIC_ODC, "a cpio archive in the old odc format"),
    ];
    known
        .iter()
        .find(|(magic, _)| bytes.starts_with(magic))
        .map(|&(_, what)| what)
}

/// Whether `bytes` starts like a newc archive.
pub fn is_newc(bytes: &[u8]) -> bool {
    bytes.starts_with(MAGIC_NEWC) || bytes.starts_with(MAGIC_CRC)
}

/// One entry: its name and data are slices of the archive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry<'a> {
    /// The name as stored (without its NUL; may start with `./`).
    pub name: &'a [u8],
    /// `mode`: file type and permission bits.
    pub mode: u32,
    /// The data.
    pub data: &'a [u8],
    /// Where the data starts, from the start of the archive.
    pub data_offset: usize,
    /// Where the header starts.
    pub offset: usize,
    /// The header's checksum (the `070702` format only): the sum of the data's
    /// bytes, modulo 2^32.
    pub check: Option<u32>,
}

impl Entry<'_> {
    /// The file type bits of `mode`.
    pub fn file_type(&self) -> u32 {
        self.mode & S_IFMT
    }

    /// Whether the data matches the header's checksum (always, without one).
    pub fn checksum_ok(&self) -> bool {
        self.check.is_none_or(|c| checksum(self.data) == c)
    }
}

/// The `070702` checksum: the sum of the data's bytes, modulo 2^32.
pub fn checksum(data: &[u8]) -> u32 {
    data.iter().fold(0u32, |s, &b| s.wrapping_add(b as u32))
}

/// The entries of an archive, in order, up to (not including) `TRAILER!!!`.
/// After an error it yields nothing more.
pub fn entries(archive: &[u8]) -> Entries<'_> {
    Entries {
        archive,
        offset: 0,
        done: false,
    }
}

/// Iterator returned by [`entries`].
pub struct Entries<'a> {
    archive: &'a [u8],
    offset: usize,
    done: bool,
}

fn align4(n: usize) -> Option<usize> {
    n.checked_add(3).map(|v| v & !3)
}

fn hex_field(header: &[u8], index: usize) -> Option<u32> {
    let digits = header.get(6 + index * 8..6 + index * 8 + 8)?;
    digits.iter().try_fold(0u32, |acc, &d| {
        let v = (d as char).to_digit(16)?;
        Some((acc << 4) | v)
    })
}

impl<'a> Entries<'a> {
    fn read(&mut self) -> Result<Option<Entry<'a>>, CpioError> {
        let at = self.offset;
        let rest = self.archive.get(at..).unwrap_or(&[]);
        if rest.is_empty() {
            return Err(CpioError::NoTrailer { offset: at });
        }
        if rest.len() < 6 {
            return Err(CpioError::Truncated {
                offset: at,
                what: "header",
            });
        }
        let crc = if rest.starts_with(MAGIC_NEWC) {
            false
        } else if rest.starts_with(MAGIC_CRC) {
            true
        } else {
            return Err(CpioError::BadMagic { offset: at });
        };
        let header = rest.get(..HEADER_LEN).ok_or(CpioError::Truncated {
            offset: at,
            what: "header",
        })?;
        let mut fields = [0u32; 13];
        for (i, f) in fields.iter_mut().enumerate() {
            *f = hex_field(header, i).ok_or(CpioError::BadField {
                offset: at,
                field: FIELDS[i],
            })?;
        }
        let (mode, filesize, namesize, check) = (
            fields[1],
            fields[6] as usize,
            fields[11] as usize,
            fields[12],
        );
        let trunc = |what| CpioError::Truncated { offset: at, what };
        let name_start = at + HEADER_LEN;
        let name_end = name_start.checked_add(namesize).ok_or(trunc("name"))?;
        let name = self
            .archive
            .get(name_start..name_end)
            .ok_or(trunc("name"))?;
        // The name ends at its first NUL, as Linux reads it (`namesize` may
        // count padding after it).
        let name = match name.iter().position(|&b| b == 0) {
            Some(n) if n > 0 => &name[..n],
            _ => return Err(CpioError::BadName { offset: at }),
        };
        let data_offset = align4(name_end).ok_or(trunc("name"))?;
        if name == TRAILER {
            self.done = true;
            return Ok(None);
        }
        let data_end = data_offset.checked_add(filesize).ok_or(trunc("data"))?;
        let data = self
            .archive
            .get(data_offset..data_end)
            .ok_or(trunc("data"))?;
        // The padding after the last entry's data may be missing; the next read
        // then reports the missing trailer.
        self.offset = align4(data_end).ok_or(trunc("data"))?;
        Ok(Some(Entry {
            name,
            mode,
            data,
            data_offset,
            offset: at,
            check: crc.then_some(check),
        }))
    }
}

impl<'a> Iterator for Entries<'a> {
    type Item = Result<Entry<'a>, CpioError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        match self.read() {
            Ok(Some(e)) => Some(Ok(e)),
            Ok(None) => None,
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }
}

/// Writes a newc archive in memory: directories and regular files, owned by
/// root, time 0, inode numbers from 1, then the trailer and zero padding to a
/// 512-byte block (as `cpio` does).
#[derive(Default)]
pub struct Writer {
    out: Vec<u8>,
    ino: u32,
}

impl Writer {
    /// An empty archive.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds an entry of any type (`mode` includes the type bits).
    pub(super) fn entry(&mut self, name: &str, mode: u32, nlink: u32, data: &[u8]) {
        self.ino += 1;
        let namesize = name.len() + 1;
        let fields = [
            self.ino,
            mode,
            0,
            0,
            nlink,
            0,
            data.len() as u32,
            0,
            0,
            0,
            0,
            namesize as u32,
            0,
        ];
        self.out.extend_from_slice(MAGIC_NEWC);
        for v in fields {
            for shift in (0..8).rev() {
                let digit = (v >> (shift * 4)) & 0xf;
                self.out.push(b"0123456789ABCDEF"[digit as usize]);
            }
        }
        self.out.extend_from_slice(name.as_bytes());
        self.out.push(0);
        self.pad(4);
        self.out.extend_from_slice(data);
        self.pad(4);
    }

    fn pad(&mut self, to: usize) {
        while !self.out.len().is_multiple_of(to) {
            self.out.push(0);
        }
    }

    /// Adds a directory (mode 0755).
    pub fn dir(&mut self, name: &str) -> &mut Self {
        self.entry(name, S_IFDIR | 0o755, 2, &[]);
        self
    }

    /// Adds a regular file (mode 0644). Data above 4 GiB cannot be stored
    /// (`filesize` is 32 bits): the caller checks.
    pub fn file(&mut self, name: &str, data: &[u8]) -> &mut Self {
        self.entry(name, S_IFREG | 0o644, 1, data);
        self
    }

    /// Adds an executable regular file (mode 0755): an initramfs's `/init`.
    pub fn executable(&mut self, name: &str, data: &[u8]) -> &mut Self {
        self.entry(name, S_IFREG | 0o755, 1, data);
        self
    }

    /// The archive, with its trailer.
    pub fn finish(mut self) -> Vec<u8> {
        self.entry("TRAILER!!!", 0, 1, &[]);
        self.pad(512);
        self.out
    }
}
