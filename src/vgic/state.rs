//! The virtual GIC's state as bytes, for snapshots (a section the snapshot format
//! can carry as it is): distributor, every vCPU's banked interrupts and the saved
//! virtual CPU interface (ICH_VMCR and active priorities, GICv2 GICH_VMCR/APR).
//!
//! Taken while the VM's vCPUs are stopped: their list registers have been folded
//! into the model by then (`hv::vgic::on_exit`), so the model is the whole state and
//! no list register needs saving. Little-endian, versioned; [`Vgic::import`]
//! validates everything before it changes anything.

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
        new.ctlr = r.u32()? & 3;
        for c in new.cpus.iter_mut() {
            c.mpidr = r.u64()?;
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
        new.touch_all();
        *self = new;
        Ok(())
    }
}
