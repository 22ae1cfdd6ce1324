//! The virtual GIC's state as bytes, for snapshots (a section the snapshot format
//! can carry as it is): distributor, every vCPU's banked interrupts and the saved
//! virtual CPU interface (ICH_VMCR and active priorities, GICv2 GICH_VMCR/APR).
//!
//! Taken while the VM's vCPUs are stopped: their list registers have been folded
//! into the model by then (`hv::vgic::on_exit`), so the model is the whole state and
//! no list register needs saving. Little-endian, versioned; [`Vgic::import`]
//! validates everything before it changes anything: the shape (version, vCPUs,
//! SPIs, each vCPU's MPIDR) must be this VM's, and every field must be one the
//! model itself can reach (priorities of five bits, SGIs edge and PPIs level,
//! GICv2 sources and targets that name CPU interfaces, GICv3 routes of affinity
//! bits only, ...). A state the model could never be in would break what it
//! relies on: a flush and a fold would no longer give back what they took, and a
//! GICv2 active source above 7 would overflow a shift.

use super::dist::PRIO_MASK;
use super::{IfaceState, IrqState, Version, Vgic, PRIVATE};
use alloc::vec::Vec;

/// This encoding's version.
pub const STATE_VERSION: u32 = 1;

/// Why a saved vGIC state was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StateError {
    Truncated,
    /// Bytes left over after the last field.
    Trailing,
    UnknownVersion(u32),
    /// Saved for another GIC architecture, vCPU count or SPI count than this VM's.
    Mismatch,
    /// A field the model can never hold (says which).
    Invalid(&'static str),
}

impl core::fmt::Display for StateError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Truncated => write!(f, "the virtual GIC state is truncated"),
            Self::Trailing => write!(f, "the virtual GIC state has bytes after its end"),
            Self::UnknownVersion(v) => write!(
                f,
                "virtual GIC state version {v} is not supported (this build reads {STATE_VERSION})"
            ),
            Self::Mismatch => write!(
                f,
                "the virtual GIC state is for another GIC version, vCPU or SPI count"
            ),
            Self::Invalid(what) => write!(f, "the virtual GIC state is invalid: {what}"),
        }
    }
}

struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn take<const N: usize>(&mut self) -> Result<[u8; N], StateError> {
        let (head, rest) = self
            .0
            .split_first_chunk::<N>()
            .ok_or(StateError::Truncated)?;
        self.0 = rest;
        Ok(*head)
    }
    fn u8(&mut self) -> Result<u8, StateError> {
        Ok(self.take::<1>()?[0])
    }
    fn u16(&mut self) -> Result<u16, StateError> {
        Ok(u16::from_le_bytes(self.take()?))
    }
    fn u32(&mut self) -> Result<u32, StateError> {
        Ok(u32::from_le_bytes(self.take()?))
    }
    fn u64(&mut self) -> Result<u64, StateError> {
        Ok(u64::from_le_bytes(self.take()?))
    }
}

fn put_irq(out: &mut Vec<u8>, i: &IrqState) {
    let flags = i.enabled as u16
        | (i.pending_latch as u16) << 1
        | (i.line_level as u16) << 2
        | (i.active as u16) << 3
        | (i.edge as u16) << 4
        | (i.group1 as u16) << 5;
    out.extend_from_slice(&flags.to_le_bytes());
    out.extend_from_slice(&[i.priority, i.targets, i.sgi_sources, i.active_source]);
    out.extend_from_slice(&i.route.to_le_bytes());
}

fn get_irq(r: &mut Reader) -> Result<IrqState, StateError> {
    let flags = r.u16()?;
    if flags & !0x3f != 0 {
        return Err(StateError::Invalid("unknown interrupt flags"));
    }
    let [priority, targets, sgi_sources, active_source] = r.take::<4>()?;
    let route = r.u64()?;
    let bit = |n: u16| flags & (1 << n) != 0;
    Ok(IrqState {
        enabled: bit(0),
        pending_latch: bit(1),
        line_level: bit(2),
        active: bit(3),
        edge: bit(4),
        group1: bit(5),
        priority,
        targets,
        route,
        sgi_sources,
        active_source,
        in_lr: None,
        hw: false,
        hw_active: false,
    })
}

impl Vgic {
    /// The state as bytes (see the module documentation for when to take it).
    pub fn export(&self) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(&STATE_VERSION.to_le_bytes());
        out.push(match self.version {
            Version::V2 => 2,
            Version::V3 => 3,
        });
        out.extend_from_slice(&(self.cpus.len() as u32).to_le_bytes());
        out.extend_from_slice(&(self.spis.len() as u32).to_le_bytes());
        out.extend_from_slice(&self.ctlr.to_le_bytes());
        for c in &self.cpus {
            out.extend_from_slice(&c.mpidr.to_le_bytes());
            out.push(c.sleep as u8);
            out.extend_from_slice(&c.iface.vmcr.to_le_bytes());
            for a in c.iface.ap0r.iter().chain(&c.iface.ap1r) {
                out.extend_from_slice(&a.to_le_bytes());
            }
            for i in &c.private {
                put_irq(&mut out, i);
            }
        }
        for i in &self.spis {
            put_irq(&mut out, i);
        }
        out
    }

    /// Replaces the state with `bytes` from [`Vgic::export`] of a VM with the same
    /// GIC version, vCPU count and SPI count; on error nothing changes.
    pub fn import(&mut self, bytes: &[u8]) -> Result<(), StateError> {
        let mut r = Reader(bytes);
        let version = r.u32()?;
        if version != STATE_VERSION {
            return Err(StateError::UnknownVersion(version));
        }
        let gic = r.u8()?;
        let (cpus, spis) = (r.u32()? as usize, r.u32()? as usize);
        let want = match self.version {
            Version::V2 => 2,
            Version::V3 => 3,
        };
        if gic != want || cpus != self.cpus.len() || spis != self.spis.len() {
            return Err(StateError::Mismatch);
        }
        let mut new = self.clone();
        new.ctlr = r.u32()?;
        if new.ctlr & !if gic == 3 { 3 } else { 1 } != 0 {
            return Err(StateError::Invalid("GICD_CTLR bits"));
        }
        for c in new.cpus.iter_mut() {
            if r.u64()? != c.mpidr {
                return Err(StateError::Invalid("a vCPU's MPIDR differs from this VM's"));
            }
            c.sleep = r.u8()? != 0;
            let mut iface = IfaceState {
                vmcr: r.u64()?,
                ..IfaceState::default()
            };
            for a in iface.ap0r.iter_mut() {
                *a = r.u32()?;
            }
            for a in iface.ap1r.iter_mut() {
                *a = r.u32()?;
            }
            c.iface = iface;
            for n in 0..PRIVATE {
                c.private[n] = get_irq(&mut r)?;
            }
            c.lrs = Default::default();
        }
        for s in new.spis.iter_mut() {
            // Which SPIs are hardware-linked, and whether their physical
            // interrupt is active, belong to this machine, not to the snapshot.
            let (hw, hw_active) = (s.hw, s.hw_active);
            *s = IrqState {
                hw,
                hw_active,
                ..get_irq(&mut r)?
            };
        }
        if !r.0.is_empty() {
            return Err(StateError::Trailing);
        }
        new.check_reachable()?;
        new.touch_all();
        *self = new;
        Ok(())
    }

    /// Whether every interrupt's state is one the model can reach (see the module
    /// documentation): what the register emulation allows to be written, and the
    /// fixed properties of SGIs and PPIs.
    fn check_reachable(&self) -> Result<(), StateError> {
        let v2 = self.version == Version::V2;
        let targets = ((1u32 << self.cpus.len().min(8)) - 1) as u8;
        let check = |id: usize, i: &IrqState| -> Result<(), StateError> {
            let bad = |what| Err(StateError::Invalid(what));
            if i.priority & !PRIO_MASK != 0 {
                return bad("a priority with unimplemented bits");
            }
            let v2_sgi = v2 && id < 16;
            if !v2_sgi && (i.sgi_sources != 0 || i.active_source != 0) {
                return bad("SGI sources on an interrupt that has none");
            }
            if v2_sgi && (i.active_source >= 8 || !i.enabled || i.pending_latch || i.line_level) {
                return bad("a GICv2 SGI's source, enable or pending state");
            }
            if v2 && i.group1 {
                return bad("group 1 on a GICv2");
            }
            if (id < 16 && !i.edge) || ((16..PRIVATE).contains(&id) && i.edge) {
                return bad("an SGI configured level or a PPI edge");
            }
            let (t, route) = if id < PRIVATE {
                (0, 0)
            } else if v2 {
                (targets, 0)
            } else {
                (0, 0xff_00ff_ffff)
            };
            if i.targets & !t != 0 || i.route & !route != 0 {
                return bad("an interrupt's targets or route");
            }
            Ok(())
        };
        for c in &self.cpus {
            for (id, i) in c.private.iter().enumerate() {
                check(id, i)?;
            }
        }
        for (n, i) in self.spis.iter().enumerate() {
            check(PRIVATE + n, i)?;
        }
        Ok(())
    }
}
