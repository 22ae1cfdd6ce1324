//! Format version 1: one checksummed blob of sections (HEAD, VCPU..., GIC, RAM),
//! written before format 2 streamed. Restores still read it; `encode` stays for the
//! tests that prove they do.
#![forbid(unsafe_code)]

use super::fields::{read_cpu, read_head, write_cpu, write_head};
use super::wire::{Reader, Writer};
use super::{CpuState, Header, Parsed, Ram, SnapshotError, MAGIC, PAGE};
use alloc::vec::Vec;

pub const VERSION: u32 = 1;

const TAG_HEADER: [u8; 4] = *b"HEAD";
const TAG_VCPU: [u8; 4] = *b"VCPU";
const TAG_GIC: [u8; 4] = *b"GIC ";
const TAG_RAM: [u8; 4] = *b"RAM ";

/// Encodes a version-1 snapshot into `out`.
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
    write_head(&mut w, VERSION, header, cpus.len() as u32);
    w.end(at);
    for (i, c) in cpus.iter().enumerate() {
        let at = w.begin(TAG_VCPU);
        write_cpu(&mut w, i as u32, c);
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
        let zero = page.iter().all(|&b| b == 0);
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

/// Decodes a version-1 snapshot (the magic was checked by the caller). Checks the
/// version, the checksum and the structure; nothing here panics on any input.
pub fn decode(data: &[u8]) -> Result<Parsed<'_>, SnapshotError> {
    if data.len() < MAGIC.len() + 4 {
        return Err(SnapshotError::Truncated { at: data.len() });
    }
    let (body, crc) = data.split_at(data.len() - 4);
    let stored = u32::from_le_bytes([crc[0], crc[1], crc[2], crc[3]]);
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
    let header = read_head(&mut h, version)?;
    if h.remaining() != 0 {
        return Err(SnapshotError::TrailingBytes {
            at: MAGIC.len() + h.pos(),
        });
    }
    let mut cpus = Vec::new();
    for i in 0..header.vcpus {
        let (tag, mut c) = r.section()?;
        expect(TAG_VCPU, tag)?;
        cpus.push(read_cpu(&mut c, i)?);
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
    // Walk the RAM runs once, so a restore cannot fail half-way through them.
    let mut pages = 0u64;
    for run in runs(ram) {
        pages += run?.1 as u64;
    }
    if pages != header.ram_size / PAGE as u64 {
        return Err(SnapshotError::Malformed("RAM page count", pages));
    }
    Ok(Parsed {
        header,
        cpus,
        gic,
        depends: Vec::new(),
        ram: Ram::V1(ram),
    })
}

fn expect(expected: [u8; 4], found: [u8; 4]) -> Result<(), SnapshotError> {
    if expected == found {
        Ok(())
    } else {
        Err(SnapshotError::UnexpectedSection { expected, found })
    }
}

/// The RAM runs: (data pages or None for zeros, page count).
pub fn runs(ram: &[u8]) -> impl Iterator<Item = Result<(Option<&[u8]>, u32), SnapshotError>> {
    let mut r = Reader::new(ram);
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
