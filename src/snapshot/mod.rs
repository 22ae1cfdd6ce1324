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

pub mod transfer;
mod wire;

use crate::cpreg::{saved_list, ImportError, Reg, SysRegFile};
use alloc::collections::BTreeSet;
use alloc::vec::Vec;
use core::fmt;
use wire::{Reader, Writer};

/// The first 8 bytes of every snapshot. The CR LF catches a transfer that
/// translated line ends.
pub const MAGIC: [u8; 8] = *b"HVSNAP\r\n";
/// This format's version. A reader accepts only the versions it knows.
pub const VERSION: u32 = 1;
/// The register-list encoding: KVM `ONE_REG` ids.
pub const REG_ENCODING_KVM: u32 = 1;
pub const PAGE: usize = 4096;

/// Whether a page is all zeros, 8 bytes at a time: every page of a VM's RAM is
/// checked on each save, and a byte loop (the hypervisor's target has no SIMD)
/// made a save of a 500 MiB VM take minutes under QEMU.
pub fn is_zero_page(page: &[u8; PAGE]) -> bool {
    page.chunks_exact(8)
        .all(|w| u64::from_ne_bytes([w[0], w[1], w[2], w[3], w[4], w[5], w[6], w[7]]) == 0)
}

const TAG_HEADER: [u8; 4] = *b"HEAD";
const TAG_VCPU: [u8; 4] = *b"VCPU";
const TAG_GIC: [u8; 4] = *b"GIC ";
const TAG_RAM: [u8; 4] = *b"RAM ";

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
    /// The VM's virtual counter offset (CNTVOFF_EL2).
    pub cntvoff: u64,
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
        }
    }
}

/// Encodes a snapshot into `out` (which the caller may have reserved: see
/// [`encoded_size`]). `gic` is the virtual GIC's state as its own versioned bytes,
/// `read_page(ipa, buf)` fills `buf` with the guest page at `ipa`.
pub fn encode(
    header: &Header,
    cpus: &[CpuState],
    gic: Option<&[u8]>,
    mut read_page: impl FnMut(u64, &mut [u8; PAGE]),
    out: &mut Vec<u8>,
) {
    out.clear();
    let mut w = Writer {
        buf: core::mem::take(out),
    };
    w.bytes(&MAGIC);
    let at = w.begin(TAG_HEADER);
    w.u32(VERSION);
    w.u32(REG_ENCODING_KVM);
    w.u64(header.midr);
    w.u32(cpus.len() as u32);
    w.u64(header.ram_ipa);
    w.u64(header.ram_size);
    w.u64(header.cntvoff);
    w.end(at);
    for (i, c) in cpus.iter().enumerate() {
        let at = w.begin(TAG_VCPU);
        w.u32(i as u32);
        w.u8(c.powered_on as u8);
        for x in c.x {
            w.u64(x);
        }
        w.u64(c.pc);
        w.u64(c.pstate);
        for q in c.q {
            w.u128(q);
        }
        w.u64(c.fpsr);
        w.u64(c.fpcr);
        w.u32(c.regs.len() as u32);
        for &(index, _) in &c.regs {
            w.u64(index);
        }
        for &(_, value) in &c.regs {
            w.u64(value);
        }
        w.end(at);
    }
    if let Some(gic) = gic {
        let at = w.begin(TAG_GIC);
        w.bytes(gic);
        w.end(at);
    }
    // RAM as runs of zero pages (no bytes) and data pages.
    let at = w.begin(TAG_RAM);
    let pages = header.ram_size / PAGE as u64;
    let mut page = [0u8; PAGE];
    let mut run: Option<(bool, u32, usize)> = None; // (zero, count, count's offset)
    for p in 0..pages {
        read_page(header.ram_ipa + p * PAGE as u64, &mut page);
        let zero = is_zero_page(&page);
        match &mut run {
            Some((z, n, _)) if *z == zero && *n < u32::MAX => *n += 1,
            _ => {
                if let Some((_, n, off)) = run {
                    w.buf[off..off + 4].copy_from_slice(&n.to_le_bytes());
                }
                w.u8(if zero { 0 } else { 1 });
                let off = w.buf.len();
                w.u32(0);
                run = Some((zero, 1, off));
            }
        }
        if !zero {
            w.bytes(&page);
        }
    }
    if let Some((_, n, off)) = run {
        w.buf[off..off + 4].copy_from_slice(&n.to_le_bytes());
    }
    w.end(at);
    let crc = crate::crc32::hash(&w.buf);
    w.u32(crc);
    *out = w.buf;
}

/// An upper bound of the encoded size of a VM with `cpus`, a `gic` blob of that
/// size and `data_pages` non-zero pages: reserve it first, and an allocation failure
/// is an error the caller can report instead of a panic.
pub fn encoded_size(cpus: &[CpuState], gic_len: usize, data_pages: u64, total_pages: u64) -> usize {
    let per_cpu: usize = cpus
        .iter()
        .map(|c| 12 + 4 + 1 + 31 * 8 + 16 + 32 * 16 + 16 + 4 + 16 * c.regs.len())
        .sum();
    // Every page could start a run (5 bytes), at worst.
    MAGIC.len()
        + 12
        + 48
        + per_cpu
        + 12
        + gic_len
        + 12
        + 5 * total_pages as usize
        + data_pages as usize * PAGE
        + 4
}

/// A decoded snapshot: everything but RAM is parsed; RAM stays in the buffer.
#[derive(Debug)]
pub struct Parsed<'a> {
    pub header: Header,
    pub cpus: Vec<CpuState>,
    /// The virtual GIC's state, if the snapshot has it (its own versioned format).
    pub gic: Option<&'a [u8]>,
    ram: &'a [u8],
}

/// Checks the magic, the checksum, the version and the structure. Nothing here
/// panics on any input.
pub fn decode(data: &[u8]) -> Result<Parsed<'_>, SnapshotError> {
    if data.len() < MAGIC.len() || data[..MAGIC.len()] != MAGIC {
        return Err(SnapshotError::BadMagic);
    }
    if data.len() < MAGIC.len() + 4 {
        return Err(SnapshotError::Truncated { at: data.len() });
    }
    let (body, crc) = data.split_at(data.len() - 4);
    let stored = u32::from_le_bytes(crc.try_into().unwrap());
    // The version comes before the checksum in what we report: a future version
    // may checksum differently.
    let mut r = Reader::new(&body[MAGIC.len()..]);
    let (tag, mut h) = r.section()?;
    expect(TAG_HEADER, tag)?;
    let version = h.u32()?;
    if version != VERSION {
        return Err(SnapshotError::UnsupportedVersion(version));
    }
    let computed = crate::crc32::hash(body);
    if stored != computed {
        return Err(SnapshotError::BadChecksum { stored, computed });
    }
    let reg_encoding = h.u32()?;
    if reg_encoding != REG_ENCODING_KVM {
        return Err(SnapshotError::UnsupportedRegEncoding(reg_encoding));
    }
    let header = Header {
        version,
        reg_encoding,
        midr: h.u64()?,
        vcpus: h.u32()?,
        ram_ipa: h.u64()?,
        ram_size: h.u64()?,
        cntvoff: h.u64()?,
    };
    done(&h, MAGIC.len())?;
    if header.ram_size % PAGE as u64 != 0 || header.ram_ipa % PAGE as u64 != 0 {
        return Err(SnapshotError::Malformed("RAM range", header.ram_size));
    }
    if header.vcpus == 0 || header.vcpus > 512 {
        return Err(SnapshotError::Malformed("vCPU count", header.vcpus as u64));
    }
    let mut cpus = Vec::new();
    for i in 0..header.vcpus {
        let (tag, mut c) = r.section()?;
        expect(TAG_VCPU, tag)?;
        let index = c.u32()?;
        if index != i {
            return Err(SnapshotError::Malformed("vCPU index", index as u64));
        }
        let powered_on = match c.u8()? {
            0 => false,
            1 => true,
            v => return Err(SnapshotError::Malformed("vCPU power state", v as u64)),
        };
        let mut x = [0u64; 31];
        for v in &mut x {
            *v = c.u64()?;
        }
        let pc = c.u64()?;
        let pstate = c.u64()?;
        let mut q = [0u128; 32];
        for v in &mut q {
            *v = c.u128()?;
        }
        let fpsr = c.u64()?;
        let fpcr = c.u64()?;
        let n = c.u32()? as usize;
        if n > c.remaining() / 16 {
            return Err(SnapshotError::Truncated { at: c.pos() });
        }
        let indexes: Vec<u64> = (0..n).map(|_| c.u64()).collect::<Result<_, _>>()?;
        let mut regs = Vec::with_capacity(n);
        for index in indexes {
            regs.push((index, c.u64()?));
        }
        if regs.windows(2).any(|w| w[0].0 >= w[1].0) {
            return Err(SnapshotError::Malformed(
                "register list order (not ascending)",
                i as u64,
            ));
        }
        done(&c, 0)?;
        cpus.push(CpuState {
            powered_on,
            x,
            pc,
            pstate,
            regs,
            q,
            fpsr,
            fpcr,
        });
    }
    let (mut tag, mut section) = r.section()?;
    let mut gic = None;
    if tag == TAG_GIC {
        gic = Some(section.take(section.remaining())?);
        (tag, section) = r.section()?;
    }
    expect(TAG_RAM, tag)?;
    let mut ram = section;
    if r.remaining() != 0 {
        return Err(SnapshotError::TrailingBytes { at: r.pos() });
    }
    let ram = ram.take(ram.remaining())?;
    let parsed = Parsed {
        header,
        cpus,
        gic,
        ram,
    };
    // Walk the RAM runs once, so a restore cannot fail half-way through them.
    let mut pages = 0u64;
    for run in parsed.ram_runs() {
        pages += run?.1 as u64;
    }
    if pages != header.ram_size / PAGE as u64 {
        return Err(SnapshotError::Malformed("RAM page count", pages));
    }
    Ok(parsed)
}

fn expect(expected: [u8; 4], found: [u8; 4]) -> Result<(), SnapshotError> {
    if expected == found {
        Ok(())
    } else {
        Err(SnapshotError::UnexpectedSection { expected, found })
    }
}

fn done(r: &Reader, base: usize) -> Result<(), SnapshotError> {
    if r.remaining() == 0 {
        Ok(())
    } else {
        Err(SnapshotError::TrailingBytes { at: base + r.pos() })
    }
}

impl<'a> Parsed<'a> {
    /// The RAM runs: (data pages or None for zeros, page count).
    fn ram_runs(
        &self,
    ) -> impl Iterator<Item = Result<(Option<&'a [u8]>, u32), SnapshotError>> + 'a {
        let mut r = Reader::new(self.ram);
        core::iter::from_fn(move || {
            if r.remaining() == 0 {
                return None;
            }
            let run = (|| {
                let kind = r.u8()?;
                let n = r.u32()?;
                match kind {
                    0 => Ok((None, n)),
                    1 => Ok((Some(r.take(n as usize * PAGE)?), n)),
                    k => Err(SnapshotError::Malformed("RAM run kind", k as u64)),
                }
            })();
            if run.is_err() {
                // Stop after the first error.
                let rest = r.remaining();
                let _ = r.take(rest);
            }
            Some(run)
        })
    }

    /// Calls `write(ipa, page)` for every page of RAM (`None`: all zeros). The runs
    /// were checked by `decode`.
    pub fn for_each_page(&self, mut write: impl FnMut(u64, Option<&[u8]>)) {
        let mut ipa = self.header.ram_ipa;
        for (data, n) in self.ram_runs().flatten() {
            for i in 0..n as usize {
                write(ipa, data.map(|d| &d[i * PAGE..(i + 1) * PAGE]));
                ipa += PAGE as u64;
            }
        }
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
    let h = &snap.header;
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
    for (vcpu, (cpu, current)) in snap.cpus.iter().zip(target.sysregs).enumerate() {
        let mut file = current.clone();
        let mut seen = BTreeSet::new();
        for &(index, value) in &cpu.regs {
            file.import(index, value)
                .map_err(|error| SnapshotError::Register { vcpu, error })?;
            if let Some(reg) = crate::cpreg::lookup_kvm(index) {
                seen.insert(reg.owner() as usize);
            }
        }
        // Every state-owning register of this CPU model must have come, directly or
        // through one of its aliases.
        if let Some((_, reg)) =
            saved_list(*current.features()).find(|(_, r)| !seen.contains(&(*r as usize)))
        {
            return Err(SnapshotError::MissingRegister { vcpu, reg });
        }
        out.push(file);
    }
    Ok(out)
}

#[cfg(test)]
mod blessed;
#[cfg(test)]
mod tests;
