//! GICD register emulation (GICv3: IHI 0069 12.9; GICv2: IHI 0048B 4.3), and the
//! interrupt-array registers GICD shares with the GICv3 SGI_base frame.
//!
//! Everything not implemented is RAZ/WI, as is an access of a size a register
//! does not support: a probing guest cannot fault the hypervisor.

use super::{Kicks, Version, Vgic, SPI_BASE};

/// Register offsets (GICD; the SGI_base frame uses the same ones for word 0).
#[allow(dead_code)] // the whole map, for reference and the tests
pub mod reg {
    pub const CTLR: u64 = 0x000;
    pub const TYPER: u64 = 0x004;
    pub const IIDR: u64 = 0x008;
    pub const TYPER2: u64 = 0x00c;
    pub const IGROUPR: u64 = 0x080;
    pub const ISENABLER: u64 = 0x100;
    pub const ICENABLER: u64 = 0x180;
    pub const ISPENDR: u64 = 0x200;
    pub const ICPENDR: u64 = 0x280;
    pub const ISACTIVER: u64 = 0x300;
    pub const ICACTIVER: u64 = 0x380;
    pub const IPRIORITYR: u64 = 0x400;
    pub const ITARGETSR: u64 = 0x800;
    pub const ICFGR: u64 = 0xc00;
    pub const SGIR: u64 = 0xf00;
    pub const CPENDSGIR: u64 = 0xf10;
    pub const SPENDSGIR: u64 = 0xf20;
    pub const IROUTER: u64 = 0x6000;
    pub const PIDR2_V3: u64 = 0xffe8;
    pub const PIDR2_V2: u64 = 0xfe8;
}

/// GICD_IIDR/GICR_IIDR: implementer Arm (JEP106 0x43B), product 0, revision 0.
pub const IIDR: u32 = 0x0000_043b;
/// The priority bits kept (five, as KVM and the GICv2 list registers have).
pub const PRIO_MASK: u8 = 0xf8;

#[derive(Clone, Copy)]
enum Bit {
    Group,
    SetEnable,
    ClearEnable,
    SetPending,
    ClearPending,
    SetActive,
    ClearActive,
}

impl Vgic {
    /// Reads one 32-bit word of a bitmap register covering INTIDs
    /// `first..first + 32` as `vcpu` sees them.
    fn bitmap_read(&self, vcpu: usize, first: u32, bit: Bit) -> u32 {
        (0..32).fold(0, |acc, n| {
            let v = self.irq(vcpu, first + n).is_some_and(|i| match bit {
                Bit::Group => i.group1,
                Bit::SetEnable | Bit::ClearEnable => i.enabled,
                Bit::SetPending | Bit::ClearPending => i.pending(),
                Bit::SetActive | Bit::ClearActive => i.active,
            });
            acc | ((v as u32) << n)
        })
    }

    fn bitmap_write(&mut self, vcpu: usize, first: u32, bit: Bit, value: u32) -> Kicks {
        let v2 = self.version == Version::V2;
        let mut kicks = Kicks::default();
        for n in 0..32 {
            let id = first + n;
            let set = value & (1 << n) != 0;
            let Some(i) = self.irq_mut(vcpu, id) else {
                continue;
            };
            // GICv2 SGIs: always enabled, pending only through S/CPENDSGIR, group 0.
            let v2_sgi = v2 && id < 16;
            match bit {
                Bit::Group if !v2 => i.group1 = set,
                Bit::Group => {}
                _ if !set => continue,
                Bit::SetEnable => i.enabled = true,
                Bit::ClearEnable if !v2_sgi => i.enabled = false,
                Bit::SetPending if !v2_sgi => i.pending_latch = true,
                Bit::ClearPending if !v2_sgi => i.pending_latch = false,
                Bit::SetActive => i.active = true,
                Bit::ClearActive => i.active = false,
                _ => {}
            }
            if matches!(bit, Bit::SetEnable | Bit::SetPending) {
                kicks.merge(self.kick_for(vcpu, id));
            }
        }
        kicks
    }

    fn prio_read(&self, vcpu: usize, first: u32, size: u8) -> u64 {
        (0..size as u32).fold(0, |acc, n| {
            let p = self.irq(vcpu, first + n).map_or(0, |i| i.priority);
            acc | ((p as u64) << (8 * n))
        })
    }

    fn prio_write(&mut self, vcpu: usize, first: u32, size: u8, value: u64) {
        for n in 0..size as u32 {
            if let Some(i) = self.irq_mut(vcpu, first + n) {
                i.priority = (value >> (8 * n)) as u8 & PRIO_MASK;
            }
        }
    }

    fn cfg_read(&self, vcpu: usize, first: u32) -> u32 {
        (0..16).fold(0, |acc, n| {
            let edge = self.irq(vcpu, first + n).is_some_and(|i| i.edge);
            acc | ((edge as u32) << (2 * n + 1))
        })
    }

    fn cfg_write(&mut self, vcpu: usize, first: u32, value: u32) {
        for n in 0..16 {
            let id = first + n;
            // SGIs are edge and PPIs level, fixed (the timer PPIs must stay level).
            if id < SPI_BASE {
                continue;
            }
            if let Some(i) = self.irq_mut(vcpu, id) {
                i.edge = value & (1 << (2 * n + 1)) != 0;
            }
        }
    }

    /// The interrupt-array registers shared by GICD and the SGI_base frame:
    /// `lo..hi` is the INTID window this frame may reach (others RAZ/WI).
    pub(super) fn array_read(&self, vcpu: usize, off: u64, size: u8, lo: u32, hi: u32) -> u64 {
        let in_window = |first: u32| first >= lo && first < hi;
        match off {
            0x080..=0x3ff if size == 4 => {
                let first = ((off & 0x7f) / 4 * 32) as u32;
                let bit = match off & !0x7f {
                    reg::IGROUPR => Bit::Group,
                    reg::ISENABLER => Bit::SetEnable,
                    reg::ICENABLER => Bit::ClearEnable,
                    reg::ISPENDR => Bit::SetPending,
                    reg::ICPENDR => Bit::ClearPending,
                    reg::ISACTIVER => Bit::SetActive,
                    _ => Bit::ClearActive,
                };
                if !in_window(first) {
                    return 0;
                }
                self.bitmap_read(vcpu, first, bit) as u64
            }
            0x400..=0x7ff if size == 1 || size == 4 => {
                let first = (off - reg::IPRIORITYR) as u32;
                if !in_window(first) {
                    return 0;
                }
                self.prio_read(vcpu, first, size)
            }
            0xc00..=0xcff if size == 4 => {
                let first = ((off - reg::ICFGR) / 4 * 16) as u32;
                if !in_window(first) {
                    return 0;
                }
                self.cfg_read(vcpu, first) as u64
            }
            _ => 0,
        }
    }

    pub(super) fn array_write(
        &mut self,
        vcpu: usize,
        off: u64,
        size: u8,
        value: u64,
        lo: u32,
        hi: u32,
    ) -> Kicks {
        let in_window = |first: u32| first >= lo && first < hi;
        match off {
            0x080..=0x3ff if size == 4 => {
                let first = ((off & 0x7f) / 4 * 32) as u32;
                let bit = match off & !0x7f {
                    reg::IGROUPR => Bit::Group,
                    reg::ISENABLER => Bit::SetEnable,
                    reg::ICENABLER => Bit::ClearEnable,
                    reg::ISPENDR => Bit::SetPending,
                    reg::ICPENDR => Bit::ClearPending,
                    reg::ISACTIVER => Bit::SetActive,
                    _ => Bit::ClearActive,
                };
                if in_window(first) {
                    return self.bitmap_write(vcpu, first, bit, value as u32);
                }
            }
            0x400..=0x7ff if size == 1 || size == 4 => {
                let first = (off - reg::IPRIORITYR) as u32;
                if in_window(first) {
                    self.prio_write(vcpu, first, size, value);
                }
            }
            0xc00..=0xcff if size == 4 => {
                let first = ((off - reg::ICFGR) / 4 * 16) as u32;
                if in_window(first) {
                    self.cfg_write(vcpu, first, value as u32);
                }
            }
            _ => {}
        }
        Kicks::default()
    }

    fn typer(&self) -> u32 {
        let it_lines = (self.lines() / 32 - 1) & 0x1f;
        let cpus = ((self.vcpus().min(8) - 1) as u32) << 5;
        match self.version {
            Version::V2 => it_lines | cpus,
            // IDbits = 9 (INTIDs below 1024), No1N (no 1-of-N routing), RSS (SGI
            // target lists with a range selector, Aff0 up to 255).
            Version::V3 => it_lines | cpus | (9 << 19) | (1 << 25) | (1 << 26),
        }
    }

    /// A guest read of the distributor by `vcpu` (`size` in bytes: 1, 2, 4 or 8).
    pub fn dist_read(&self, vcpu: usize, off: u64, size: u8) -> u64 {
        let v3 = self.version == Version::V3;
        // GICv3 with affinity routing: INTIDs 0-31 live in the redistributors.
        let lo = if v3 { SPI_BASE } else { 0 };
        match off {
            reg::CTLR if size == 4 => {
                if v3 {
                    // ARE (bit 4) and DS (bit 6) are RAO/WI; RWP never set.
                    ((self.ctlr & 3) | (1 << 4) | (1 << 6)) as u64
                } else {
                    (self.ctlr & 1) as u64
                }
            }
            reg::TYPER if size == 4 => self.typer() as u64,
            reg::IIDR if size == 4 => IIDR as u64,
            reg::TYPER2 => 0,
            0x080..=0x7ff | 0xc00..=0xcff => self.array_read(vcpu, off, size, lo, self.lines()),
            0x800..=0xbff if !v3 && (size == 1 || size == 4) => {
                let first = (off - reg::ITARGETSR) as u32;
                (0..size as u32).fold(0, |acc, n| {
                    let id = first + n;
                    let t = if id < SPI_BASE {
                        // Banked, read-only: the accessing CPU's own interface.
                        1u8 << (vcpu & 7)
                    } else {
                        self.irq(vcpu, id).map_or(0, |i| i.targets)
                    };
                    acc | ((t as u64) << (8 * n))
                })
            }
            0xf10..=0xf2f if !v3 && (size == 1 || size == 4) => {
                let first = ((off - reg::CPENDSGIR) % 0x10) as u32;
                (0..size as u32).fold(0, |acc, n| {
                    let s = self
                        .irq(vcpu, first + n)
                        .filter(|_| first + n < 16)
                        .map_or(0, |i| i.sgi_sources);
                    acc | ((s as u64) << (8 * n))
                })
            }
            0x6100..=0x7fd8 if v3 && (size == 8 || size == 4) => {
                let id = ((off - reg::IROUTER) / 8) as u32;
                let route = self
                    .irq(vcpu, id)
                    .filter(|_| id >= SPI_BASE)
                    .map_or(0, |i| i.route);
                if size == 8 {
                    route
                } else if off.is_multiple_of(8) {
                    route & 0xffff_ffff
                } else {
                    route >> 32
                }
            }
            reg::PIDR2_V3 if v3 && size == 4 => 0x3b,
            reg::PIDR2_V2 if !v3 && size == 4 => 0x2b,
            _ => 0,
        }
    }

    /// A guest write to the distributor by `vcpu`. Returns the vCPUs that have a new
    /// interrupt to take.
    pub fn dist_write(&mut self, vcpu: usize, off: u64, size: u8, value: u64) -> Kicks {
        let v3 = self.version == Version::V3;
        let lo = if v3 { SPI_BASE } else { 0 };
        let lines = self.lines();
        match off {
            reg::CTLR if size == 4 => {
                let was = self.ctlr;
                self.ctlr = value as u32 & if v3 { 3 } else { 1 };
                if self.ctlr & !was != 0 {
                    // Newly enabled groups: everyone re-evaluates.
                    return self.all_pending();
                }
            }
            0x080..=0x7ff | 0xc00..=0xcff => {
                return self.array_write(vcpu, off, size, value, lo, lines);
            }
            0x800..=0xbff if !v3 && (size == 1 || size == 4) => {
                let first = (off - reg::ITARGETSR) as u32;
                let valid = ((1u32 << self.vcpus().min(8)) - 1) as u8;
                let mut kicks = Kicks::default();
                for n in 0..size as u32 {
                    let id = first + n;
                    if id < SPI_BASE {
                        continue;
                    }
                    if let Some(i) = self.irq_mut(vcpu, id) {
                        i.targets = (value >> (8 * n)) as u8 & valid;
                    }
                    kicks.merge(self.kick_for(vcpu, id));
                }
                return kicks;
            }
            reg::SGIR if !v3 && size == 4 => {
                let v = value as u32;
                let intid = v & 0xf;
                let mut targets = Kicks::default();
                match (v >> 24) & 3 {
                    0 => {
                        for t in 0..8 {
                            if v & (1 << (16 + t)) != 0 {
                                targets.add(t);
                            }
                        }
                    }
                    1 => {
                        for t in (0..self.vcpus()).filter(|&t| t != vcpu) {
                            targets.add(t);
                        }
                    }
                    2 => targets.add(vcpu),
                    _ => {}
                }
                return self.send_sgi(vcpu, intid, targets, true);
            }
            0xf10..=0xf2f if !v3 && (size == 1 || size == 4) => {
                let set = off >= reg::SPENDSGIR;
                let first = ((off - reg::CPENDSGIR) % 0x10) as u32;
                let mut kicks = Kicks::default();
                for n in 0..size as u32 {
                    let bits = (value >> (8 * n)) as u8;
                    if let Some(i) = self.irq_mut(vcpu, first + n).filter(|_| first + n < 16) {
                        if set {
                            i.sgi_sources |= bits;
                        } else {
                            i.sgi_sources &= !bits;
                        }
                    }
                    if set && bits != 0 {
                        kicks.merge(self.kick_for(vcpu, first + n));
                    }
                }
                return kicks;
            }
            0x6100..=0x7fd8 if v3 && (size == 8 || size == 4) => {
                let id = ((off - reg::IROUTER) / 8) as u32;
                if id < SPI_BASE {
                    return Kicks::default();
                }
                if let Some(i) = self.irq_mut(vcpu, id) {
                    // Aff3 and Aff2.Aff1.Aff0 are kept; IRM is RAZ/WI (No1N).
                    let mask = 0xff_00ff_ffffu64;
                    i.route = match (size, off % 8) {
                        (8, _) => value & mask,
                        (_, 0) => (i.route & !0xffff_ffff) | (value & 0xff_ffff),
                        _ => (i.route & 0xffff_ffff) | ((value & 0xff) << 32),
                    };
                }
                return self.kick_for(vcpu, id);
            }
            _ => {}
        }
        Kicks::default()
    }

    /// Every vCPU with something deliverable.
    fn all_pending(&self) -> Kicks {
        let mut k = Kicks::default();
        for v in 0..self.vcpus() {
            if self.has_pending(v) {
                k.add(v);
            }
        }
        k
    }
}
