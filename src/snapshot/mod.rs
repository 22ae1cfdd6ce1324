//! VM snapshots: a versioned, checksummed binary format and the rules for importing
//! one (`docs/snapshot-format.md` is the byte-level reference).
//!
//! A snapshot holds, per vCPU, the system registers as an index list and a value
//! list like QEMU's migration cpreg list, where each index is the register's KVM
//! `ONE_REG` id, so a list is comparable with what KVM and QEMU produce; plus the
//! general and FP/SIMD registers; then the VM's RAM with zero pages compressed.
//!
//! Import follows the table's semantics (DESIGN.md section 5): a non-ALIAS register
//! is written through its raw accessor; an ALIAS (a snapshot from a system that chose
//! to expose the AArch32 view) is written through the alias onto its owner; a NO_RAW
//! or unknown index rejects the snapshot, naming the register; every value is read
//! back and a mismatch fails; a state-owning register the snapshot lacks is an error.
//! All of this runs on copies: [`prepare_restore`] returns the new register files
//! only when everything passed, so a rejected snapshot leaves the VM as it was.
#![forbid(unsafe_code)]

mod fields;
pub mod frame;
pub mod link;

pub mod pool;
pub mod stream;
pub mod transfer;
pub mod v1;
mod wire;

use crate::cpreg::{saved_list, ImportError, Reg, SysRegFile};
use alloc::vec::Vec;
use core::fmt;
pub use stream::{encode, BootImage, Booted, Decoder, Encoder, Item};

/// The first 8 bytes of every snapshot. The CR LF catches a transfer that
/// translated line ends.
pub const MAGIC: [u8; 8] = *b"HVSNAP\r\n";
/// The version written (`stream.rs`). A reader accepts 1 (`v1.rs`) and 2.
pub const VERSION: u32 = stream::VERSION;
/// The register-list encoding: KVM `ONE_REG` ids.
pub const REG_ENCODING_KVM: u32 = 1;
pub const PAGE: usize = 4096;

/// What describes the VM as a whole.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Header {
    pub version: u32,
    /// The CPU model the snapshot was taken on (MIDR_EL1 as the guest saw it).
    pub midr: u64,
    pub vcpus: u32,
    pub reg_encoding: u32,
    /// The VM's RAM: IPA and size in bytes (a multiple of 4 KiB).
    pub ram_ipa: u64,
    pub ram_size: u64,
    /// The VM's virtual count (CNTVCT_EL0 as its guests read it) when the snapshot
    /// was taken, never 0 when recorded; 0: not recorded (files written before
    /// counter offsets), the restored VM counts with the machine's counter
    /// ([`crate::vcounter`]).
    pub cntvct: u64,
}

/// One vCPU's state in a snapshot.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct CpuState {
    pub powered_on: bool,
    pub x: [u64; 31],
    pub pc: u64,
    pub pstate: u64,
    /// (KVM index, value), ascending by index.
    pub regs: Vec<(u64, u64)>,
    pub q: [u128; 32],
    pub fpsr: u64,
    pub fpcr: u64,
}

/// Everything that can be wrong with a snapshot, or with applying it to a VM.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum SnapshotError {
    BadMagic,
    UnsupportedVersion(u32),
    UnsupportedRegEncoding(u32),
    Truncated {
        at: usize,
    },
    BadChecksum {
        stored: u32,
        computed: u32,
    },
    /// A section other than the expected one (tag as found).
    UnexpectedSection {
        expected: [u8; 4],
        found: [u8; 4],
    },
    /// Bytes after the checksum, or inside a section after its last field.
    TrailingBytes {
        at: usize,
    },
    /// A field whose value cannot be right (what, and the value).
    Malformed(&'static str, u64),
    /// The snapshot does not fit the VM it is restored into.
    VcpuCount {
        snapshot: u32,
        vm: u32,
    },
    RamLayout {
        snapshot: (u64, u64),
        vm: (u64, u64),
    },
    CpuModel {
        snapshot: u64,
        host: u64,
    },
    /// A register that cannot be imported.
    Register {
        vcpu: usize,
        error: ImportError,
    },
    /// A state-owning register the snapshot lacks.
    MissingRegister {
        vcpu: usize,
        reg: Reg,
    },
    /// Format 2: no frame header (or a damaged one) at this byte.
    FrameHeader {
        at: usize,
    },
    /// Format 2: a frame whose contents do not match its CRC-32.
    FrameDamaged {
        seq: u32,
    },
    /// Format 2: a frame out of sequence.
    FrameOrder {
        seq: u32,
        expected: u32,
    },
    /// Format 2: a frame of the wrong kind for its place.
    FrameKind {
        seq: u32,
        found: u8,
        expected: &'static str,
    },
    /// Format 2: a frame after the end frame.
    FrameAfterEnd {
        seq: u32,
    },
}

impl From<frame::FrameError> for SnapshotError {
    fn from(e: frame::FrameError) -> Self {
        match e {
            frame::FrameError::BadHeader { at } => Self::FrameHeader { at },
            frame::FrameError::Truncated { at } => Self::Truncated { at },
            frame::FrameError::BadChecksum { seq } => Self::FrameDamaged { seq },
        }
    }
}

impl fmt::Display for SnapshotError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use SnapshotError::*;
        /// A section tag as found in the file: printable ASCII as it is, anything
        /// else (control characters, quotes) as `\xNN`, so a file cannot send
        /// terminal escapes to the console.
        struct Tag<'t>(&'t [u8; 4]);
        impl fmt::Display for Tag<'_> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                let t = self.0;
                let n = t.iter().rposition(|&b| b != b' ').map_or(0, |i| i + 1);
                for &b in &t[..n] {
                    if (b' '..=b'~').contains(&b) && b != b'\'' && b != b'\\' {
                        write!(f, "{}", b as char)?;
                    } else {
                        write!(f, "\\x{b:02x}")?;
                    }
                }
                Ok(())
            }
        }
        let tag = Tag;
        match self {
            BadMagic => write!(f, "not a snapshot (bad magic)"),
            UnsupportedVersion(v) => write!(
                f,
                "format version {v} is not supported (this build reads {VERSION})"
            ),
            UnsupportedRegEncoding(e) => write!(
                f,
                "register-list encoding {e} is not supported (KVM ids are {REG_ENCODING_KVM})"
            ),
            Truncated { at } => write!(f, "truncated at byte {at}"),
            BadChecksum { stored, computed } => {
                write!(
                    f,
                    "bad checksum: stored {stored:#010x}, computed {computed:#010x}"
                )
            }
            UnexpectedSection { expected, found } => {
                write!(
                    f,
                    "expected section '{}', found '{}'",
                    tag(expected),
                    tag(found)
                )
            }
            TrailingBytes { at } => write!(f, "unexpected bytes at {at}"),
            Malformed(what, v) => write!(f, "malformed {what}: {v:#x}"),
            VcpuCount { snapshot, vm } => {
                write!(f, "the snapshot has {snapshot} vCPUs, the VM {vm}")
            }
            RamLayout { snapshot, vm } => write!(
                f,
                "the snapshot's RAM is {:#x}+{:#x}, the VM's {:#x}+{:#x}",
                snapshot.0, snapshot.1, vm.0, vm.1
            ),
            CpuModel { snapshot, host } => {
                write!(
                    f,
                    "taken on CPU MIDR {snapshot:#x}, this CPU is MIDR {host:#x}"
                )
            }
            Register { vcpu, error } => match error {
                ImportError::UnknownIndex(i) => {
                    write!(f, "vCPU {vcpu}: unknown register index {i:#018x}")
                }
                ImportError::NotState(r) => {
                    write!(
                        f,
                        "vCPU {vcpu}: {} is not state (NO_RAW) and cannot be restored",
                        r.name()
                    )
                }
                ImportError::Raw(r, e) => write!(f, "vCPU {vcpu}: {}: {e}", r.name()),
                ImportError::Mismatch { reg, wrote, read } => write!(
                    f,
                    "vCPU {vcpu}: {} wrote {wrote:#x} but reads back {read:#x}",
                    reg.name()
                ),
            },
            MissingRegister { vcpu, reg } => write!(f, "vCPU {vcpu}: {} is missing", reg.name()),
            FrameHeader { at } => write!(
                f,
                "no frame starts at byte {at} (a damaged frame header, or bytes that are not a snapshot)"
            ),
            FrameDamaged { seq } => write!(
                f,
                "frame {seq} is damaged: its contents do not match its CRC-32"
            ),
            FrameOrder { seq, expected } => {
                write!(f, "frame {seq} arrived where frame {expected} was expected")
            }
            FrameKind {
                seq,
                found,
                expected,
            } => {
                let name = frame::kind_name(*found);
                if name == "unknown" {
                    write!(
                        f,
                        "frame {seq} is of unknown kind {found:#04x}; a {expected} frame was expected"
                    )
                } else {
                    write!(
                        f,
                        "frame {seq} is a {name} frame where a {expected} frame was expected"
                    )
                }
            }
            FrameAfterEnd { seq } => write!(f, "frame {seq} comes after the end frame"),
        }
    }
}

/// A decoded snapshot: everything but RAM is parsed; RAM stays in the buffer.
#[derive(Debug)]
pub struct Parsed<'a> {
    pub header: Header,
    pub cpus: Vec<CpuState>,
    /// The virtual GIC's state, if the snapshot has it (its own versioned format).
    pub gic: Option<&'a [u8]>,
    /// The boot images its pages as booted refer to (empty: self-contained).
    pub depends: Vec<stream::BootImage>,
    ram: Ram<'a>,
}

/// Where a decoded snapshot's RAM is, per format.
#[derive(Debug)]
enum Ram<'a> {
    /// The RAM section's runs.
    V1(&'a [u8]),
    /// The frames from the first RAM frame on.
    V2(&'a [u8]),
}

/// Checks the magic, then decodes format 1 (sections, one checksum) or 2 (frames,
/// each with its own): the version, the checksums and the structure, RAM included.
/// Nothing here panics on any input.
pub fn decode(data: &[u8]) -> Result<Parsed<'_>, SnapshotError> {
    if data.len() < MAGIC.len() || data[..MAGIC.len()] != MAGIC {
        return Err(SnapshotError::BadMagic);
    }
    if data[MAGIC.len()..].starts_with(&frame::SYNC) {
        stream::decode(data)
    } else {
        v1::decode(data)
    }
}

impl Parsed<'_> {
    /// Calls `write(ipa, page)` for every page of RAM (`None`: all zeros), but
    /// for those that refer to the boot images ([`Parsed::for_each_booted`]). The
    /// RAM was checked by `decode`.
    pub fn for_each_page(&self, mut write: impl FnMut(u64, Option<&[u8]>)) {
        match self.ram {
            Ram::V1(ram) => {
                let mut ipa = self.header.ram_ipa;
                for (data, n) in v1::runs(ram).flatten() {
                    for i in 0..n as usize {
                        write(ipa, data.map(|d| &d[i * PAGE..(i + 1) * PAGE]));
                        ipa += PAGE as u64;
                    }
                }
            }
            Ram::V2(frames) => {
                stream::for_each_page(self.header.ram_ipa, frames, &self.depends, write)
            }
        }
    }

    /// Calls `page(ipa, data)` for every page that refers to the boot images
    /// ([`Parsed::depends`]; only version 2 has them): `None` for a page that
    /// holds what the boot put there, else its XOR with the image's bytes.
    pub fn for_each_booted(&self, page: impl FnMut(u64, Option<&[u8]>)) {
        if let Ram::V2(frames) = self.ram {
            stream::for_each_booted(self.header.ram_ipa, frames, &self.depends, page);
        }
    }

    /// Calls `write(ipa, tags)` for every page with allocation tags (MTE; only
    /// version 2 carries them). Pages not named have all tags zero.
    pub fn for_each_tagged(&self, write: impl FnMut(u64, &[u8; stream::TAG_BYTES])) {
        if let Ram::V2(frames) = self.ram {
            stream::for_each_tagged(self.header.ram_ipa, frames, write);
        }
    }

    /// How many pages carry allocation tags.
    pub fn tagged_pages(&self) -> u64 {
        let mut n = 0;
        self.for_each_tagged(|_, _| n += 1);
        n
    }
}

/// What a VM looks like, to check a snapshot against before restoring it.
pub struct Target<'r> {
    pub midr: u64,
    pub ram_ipa: u64,
    pub ram_size: u64,
    /// The VM's current register files (one per vCPU): the import works on copies.
    pub sysregs: &'r [SysRegFile],
}

/// Validates `snap` against the VM and imports its registers into copies of the
/// VM's register files. On success the caller writes the returned files, the CPU
/// states and the RAM; on failure nothing has changed.
pub fn prepare_restore(snap: &Parsed, target: &Target) -> Result<Vec<SysRegFile>, SnapshotError> {
    prepare(&snap.header, &snap.cpus, target)
}

/// [`prepare_restore`] from a header and vCPU states as they arrive in a stream,
/// before any RAM.
pub fn prepare(
    h: &Header,
    cpus: &[CpuState],
    target: &Target,
) -> Result<Vec<SysRegFile>, SnapshotError> {
    if h.vcpus as usize != target.sysregs.len() {
        return Err(SnapshotError::VcpuCount {
            snapshot: h.vcpus,
            vm: target.sysregs.len() as u32,
        });
    }
    if (h.ram_ipa, h.ram_size) != (target.ram_ipa, target.ram_size) {
        return Err(SnapshotError::RamLayout {
            snapshot: (h.ram_ipa, h.ram_size),
            vm: (target.ram_ipa, target.ram_size),
        });
    }
    if h.midr != target.midr {
        return Err(SnapshotError::CpuModel {
            snapshot: h.midr,
            host: target.midr,
        });
    }
    let mut out = Vec::with_capacity(target.sysregs.len());
    for (vcpu, (cpu, current)) in cpus.iter().zip(target.sysregs).enumerate() {
        let mut file = current.clone();
        // Indexed by register (a BTreeSet of its own cost the Image 2 KiB of code).
        let mut seen = alloc::vec![false; crate::cpreg::table::COUNT];
        for &(index, value) in &cpu.regs {
            file.import(index, value)
                .map_err(|error| SnapshotError::Register { vcpu, error })?;
            if let Some(reg) = crate::cpreg::lookup_kvm(index) {
                seen[reg.owner() as usize] = true;
            }
        }
        // Every state-owning register of this CPU model must have come, directly or
        // through one of its aliases.
        if let Some((_, reg)) = saved_list(*current.features()).find(|(_, r)| !seen[*r as usize]) {
            return Err(SnapshotError::MissingRegister { vcpu, reg });
        }
        out.push(file);
    }
    Ok(out)
}

#[cfg(test)]
mod blessed;
#[cfg(test)]
mod line_tests;
#[cfg(test)]
mod link_tests;
#[cfg(test)]
mod tags_tests;
#[cfg(test)]
mod tests;
