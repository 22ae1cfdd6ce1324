//! GICv3 redistributor emulation (IHI 0069 12.10/12.11): one RD_base and one
//! SGI_base frame of 64 KiB each per vCPU, in vCPU order from the start of the
//! guest's GICR region; the last vCPU's GICR_TYPER has `Last` set, so a guest stops
//! probing there. Frames past the last vCPU are RAZ/WI. LPIs are not supported.

use super::dist::{reg as dreg, IIDR};
use super::{Kicks, Vgic, GICR_STRIDE, PRIVATE};

pub mod reg {
    pub const CTLR: u64 = 0x0000;
    pub const IIDR: u64 = 0x0004;
    pub const TYPER: u64 = 0x0008;
    pub const WAKER: u64 = 0x0014;
    pub const PIDR2: u64 = 0xffe8;
    /// The SGI_base frame.
    pub const SGI_BASE: u64 = 0x1_0000;
}

const WAKER_PROCESSOR_SLEEP: u64 = 1 << 1;
const WAKER_CHILDREN_ASLEEP: u64 = 1 << 2;

impl Vgic {
    /// GICR_TYPER of `vcpu`: affinity (Aff3.Aff2.Aff1.Aff0 in bits 63:32), processor
    /// number (bits 23:8), Last (bit 4). No physical LPIs, no direct LPI injection.
    pub fn gicr_typer(&self, vcpu: usize) -> u64 {
        let m = self.cpu(vcpu).mpidr;
        let aff = ((m >> 32) & 0xff) << 24 | (m & 0xff_ffff);
        let last = vcpu + 1 == self.vcpus();
        (aff << 32) | ((vcpu as u64 & 0xffff) << 8) | ((last as u64) << 4)
    }

    /// A guest read at `off` of the redistributor region (all frames).
    pub fn redist_read(&self, off: u64, size: u8) -> u64 {
        let vcpu = (off / GICR_STRIDE) as usize;
        let off = off % GICR_STRIDE;
        if vcpu >= self.vcpus() {
            return 0;
        }
        match off {
            reg::CTLR => 0,
            reg::IIDR if size == 4 => IIDR as u64,
            reg::TYPER if size == 8 => self.gicr_typer(vcpu),
            reg::TYPER if size == 4 => self.gicr_typer(vcpu) & 0xffff_ffff,
            0x000c if size == 4 => self.gicr_typer(vcpu) >> 32,
            reg::WAKER if size == 4 && self.cpu(vcpu).sleep => {
                WAKER_PROCESSOR_SLEEP | WAKER_CHILDREN_ASLEEP
            }
            reg::PIDR2 if size == 4 => 0x3b,
            o if o >= reg::SGI_BASE => {
                let o = o - reg::SGI_BASE;
                if o == dreg::ICFGR + 4 || o == dreg::ICFGR {
                    // SGIs edge, PPIs level: read-only.
                    return self.array_read(vcpu, o, size, 0, PRIVATE as u32);
                }
                match o {
                    0x080..=0x3ff if o & 0x7f == 0 => {
                        self.array_read(vcpu, o, size, 0, PRIVATE as u32)
                    }
                    0x400..=0x41f => self.array_read(vcpu, o, size, 0, PRIVATE as u32),
                    _ => 0,
                }
            }
            _ => 0,
        }
    }

    /// A guest write at `off` of the redistributor region.
    pub fn redist_write(&mut self, off: u64, size: u8, value: u64) -> Kicks {
        let vcpu = (off / GICR_STRIDE) as usize;
        let off = off % GICR_STRIDE;
        if vcpu >= self.vcpus() {
            return Kicks::default();
        }
        match off {
            reg::WAKER if size == 4 => {
                self.cpus[vcpu].sleep = value & WAKER_PROCESSOR_SLEEP != 0;
                Kicks::default()
            }
            o if o >= reg::SGI_BASE => {
                let o = o - reg::SGI_BASE;
                match o {
                    0x080..=0x3ff if (o & 0x7f) == 0 => {
                        self.array_write(vcpu, o, size, value, 0, PRIVATE as u32)
                    }
                    0x400..=0x41f => self.array_write(vcpu, o, size, value, 0, PRIVATE as u32),
                    _ => Kicks::default(),
                }
            }
            _ => Kicks::default(),
        }
    }
}
