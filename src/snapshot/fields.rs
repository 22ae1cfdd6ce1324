//! The HEAD and VCPU payloads, which formats 1 and 2 share byte for byte (only
//! what wraps them differs: v1 sections, v2 frames).
#![forbid(unsafe_code)]

use super::wire::{Reader, Writer};
use super::{CpuState, Header, SnapshotError, PAGE, REG_ENCODING_KVM};
use alloc::vec::Vec;

/// The largest vCPU count a snapshot may name.
pub const MAX_VCPUS: u32 = 512;

pub fn write_head(w: &mut Writer, version: u32, h: &Header, vcpus: u32) {
    w.u32(version);
    w.u32(REG_ENCODING_KVM);
    w.u64(h.midr);
    w.u32(vcpus);
    w.u64(h.ram_ipa);
    w.u64(h.ram_size);
    w.u64(h.cntvct);
}

/// Reads HEAD after its version (which the caller read and checked).
pub fn read_head(r: &mut Reader, version: u32) -> Result<Header, SnapshotError> {
    let reg_encoding = r.u32()?;
    if reg_encoding != REG_ENCODING_KVM {
        return Err(SnapshotError::UnsupportedRegEncoding(reg_encoding));
    }
    let header = Header {
        version,
        reg_encoding,
        midr: r.u64()?,
        vcpus: r.u32()?,
        ram_ipa: r.u64()?,
        ram_size: r.u64()?,
        cntvct: r.u64()?,
    };
    if !header.ram_size.is_multiple_of(PAGE as u64) || !header.ram_ipa.is_multiple_of(PAGE as u64) {
        return Err(SnapshotError::Malformed("RAM range", header.ram_size));
    }
    if header.vcpus == 0 || header.vcpus > MAX_VCPUS {
        return Err(SnapshotError::Malformed("vCPU count", header.vcpus as u64));
    }
    Ok(header)
}

pub fn write_cpu(w: &mut Writer, index: u32, c: &CpuState) {
    w.u32(index);
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
}

/// Reads vCPU `i`'s payload (all of it: bytes left over are an error).
pub fn read_cpu(c: &mut Reader, i: u32) -> Result<CpuState, SnapshotError> {
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
    if c.remaining() != 0 {
        return Err(SnapshotError::TrailingBytes { at: c.pos() });
    }
    Ok(CpuState {
        powered_on,
        x,
        pc,
        pstate,
        regs,
        q,
        fpsr,
        fpcr,
    })
}
