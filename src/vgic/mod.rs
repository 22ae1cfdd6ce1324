//! The virtual GIC: the register model of a guest's interrupt controller, portable
//! and host-tested (the runtime glue is `hv::vgic`).
//!
//! Designed as KVM's `arch/arm64/kvm/vgic` and Xen's `vgic` are: the distributor
//! and redistributors are emulated (stage-2 data aborts land here), while the CPU
//! interface is the hardware's virtual one (GICv3 `ICV_*` system registers, GICv2
//! the GICV frame mapped at the guest's GICC address), fed through the list
//! registers. The model is the single source of truth between two points of every
//! guest exit:
//!
//! * **fold** ([`Vgic::fold`]), right after the exit: what the guest did to the
//!   interrupts it was given (acknowledged, deactivated) is read back from the list
//!   registers into the model;
//! * **flush** ([`Vgic::flush`]), right before the entry: the interrupts this vCPU
//!   should see next (active ones first, then pending by priority, bounded by the
//!   number of list registers) are written out again.
//!
//! Pending state *moves* into a list register (an edge's latch, a GICv2 SGI's
//! source bit) and moves back on fold if the guest has not taken it, so an edge
//! raised by another CPU while the interrupt sat in a list register is never lost
//! (KVM's `vgic_v3_populate_lr` / `vgic_v3_fold_lr_state` do the same). An SPI held
//! by one vCPU's list registers is not offered to another until folded.
//!
//! Level-triggered sources (the virtual timer, the emulated UART) drive a line with
//! [`Vgic::set_line`]; level interrupts get the list register's EOI-maintenance bit
//! so the runtime exits when the guest deactivates them and resamples the line.
//!
//! **Hardware-linked SPIs** (passed-through devices, [`Vgic::set_hw`]) are taken at
//! EL2, their priority dropped but left active, and made pending here with
//! [`Vgic::inject_hw`]; they go out with the list register's HW bit and the same
//! physical INTID, so the guest's own deactivation deactivates the physical
//! interrupt and no exit is needed for it. While the physical interrupt is active
//! the device cannot signal again, so a level interrupt the guest has masked stays
//! pending here (never lost, never storming) until the guest unmasks and takes it.
//! A pending or active state the guest clears through the distributor instead
//! leaves the physical interrupt active with nobody to end it: [`Vgic::hw_orphans`]
//! hands those to the runtime to deactivate. [`Vgic::hw_config`] tells the runtime
//! whether the guest masks it and which vCPU it targets, so the physical one is
//! masked and routed alike.
//!
//! Security: the guest sees a GIC with one security state (GICD_CTLR.DS = 1, GICv2
//! without the Security Extensions). LPIs and the ITS are not provided.
#![forbid(unsafe_code)]

mod dist;
mod lr;
mod redist;
mod state;

#[cfg(test)]
mod tests;

pub use lr::{virt_lines, Lr, LrState, VirtLines};
pub use state::{StateError, STATE_VERSION};

use alloc::vec::Vec;

/// The architecture the guest sees.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Version {
    V2,
    V3,
}

/// SGIs (0-15) and PPIs (16-31) are banked per vCPU.
pub const PRIVATE: usize = 32;
/// The first SPI.
pub const SPI_BASE: u32 = 32;
/// INTIDs 1020-1023 are special.
pub const MAX_INTID: u32 = 1019;
/// The size of one GICv3 redistributor (RD_base + SGI_base frames).
pub const GICR_STRIDE: u64 = 0x2_0000;
/// The size of the distributor frame (GICv3: 64 KiB; GICv2: 4 KiB used).
pub const GICD_SIZE_V3: u64 = 0x1_0000;
pub const GICD_SIZE_V2: u64 = 0x1000;
/// The most list registers either architecture has.
pub const MAX_LRS: usize = 16;
/// GICv2 has at most 8 CPU interfaces.
pub const V2_MAX_CPUS: usize = 8;

/// One interrupt's state (per vCPU for SGIs/PPIs, per VM for SPIs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IrqState {
    pub enabled: bool,
    /// Edge seen, or set by a GICD_ISPENDR write: pending until taken or cleared.
    pub pending_latch: bool,
    /// The input line (level-sensitive sources the runtime drives).
    pub line_level: bool,
    pub active: bool,
    /// Edge-triggered (ICFGR 0b10) rather than level.
    pub edge: bool,
    pub group1: bool,
    pub priority: u8,
    /// GICv2 ITARGETSR: a CPU-interface mask (SPIs only).
    pub targets: u8,
    /// GICv3 IROUTER (SPIs only): Aff3 in bits 39:32, Aff2.Aff1.Aff0 in 23:0.
    pub route: u64,
    /// GICv2 SGIs: one pending bit per source CPU.
    pub sgi_sources: u8,
    /// GICv2 SGIs: the source of the active one.
    pub active_source: u8,
    /// The vCPU whose list registers hold this interrupt (SPIs), until folded.
    pub in_lr: Option<u16>,
    /// Hardware-linked: a passed-through SPI (configuration, not saved state).
    pub hw: bool,
    /// The physical interrupt is active, waiting for the guest to deactivate it.
    pub hw_active: bool,
}

impl IrqState {
    const fn reset(edge: bool, group1: bool) -> Self {
        Self {
            enabled: false,
            pending_latch: false,
            line_level: false,
            active: false,
            edge,
            group1,
            priority: 0,
            targets: 0,
            route: 0,
            sgi_sources: 0,
            active_source: 0,
            in_lr: None,
            hw: false,
            hw_active: false,
        }
    }

    /// Pending as the architecture defines it (GICv3 4.1.2): a latched edge or
    /// software request, an asserted level line, or (GICv2 SGIs) any source.
    pub fn pending(&self) -> bool {
        self.pending_latch || (!self.edge && self.line_level) || self.sgi_sources != 0
    }
}

/// The saved state of a vCPU's hardware virtual CPU interface (everything but the
/// list registers, which the model rebuilds on every entry): GICv3 ICH_VMCR_EL2 and
/// ICH_AP0R<n>/AP1R<n>_EL2, or GICv2 GICH_VMCR and GICH_APR (in `ap1r[0]`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct IfaceState {
    pub vmcr: u64,
    pub ap0r: [u32; 4],
    pub ap1r: [u32; 4],
}

/// What a flush left in the list registers of one vCPU (8-byte aligned and 56
/// bytes, so saving it is a few register moves rather than a `memcpy` call).
#[derive(Clone, Copy, Debug, Default)]
#[repr(C, align(8))]
struct LrSlots {
    /// INTID in list register `i` (valid below `used`).
    intid: [u16; MAX_LRS],
    /// List register `i` was written hardware-linked.
    hw: [bool; MAX_LRS],
    /// Bit `i`: list register `i` was given its interrupt pending (an active-only
    /// entry cannot be acknowledged, so its fold consumes nothing).
    pending: u16,
    used: u8,
}

/// A vCPU's banked state.
#[derive(Clone, Debug)]
pub struct CpuState {
    pub private: [IrqState; PRIVATE],
    /// The MPIDR the guest sees (for GICR_TYPER and SGI/SPI routing).
    pub mpidr: u64,
    /// GICR_WAKER.ProcessorSleep.
    pub sleep: bool,
    pub iface: IfaceState,
    lrs: LrSlots,
    /// Private interrupts (bit = INTID) that may be pending, active or in a list
    /// register: what [`Vgic::flush`] and [`Vgic::has_pending`] look at. Set by
    /// every change ([`Vgic::irq_mut`]), cleared by a flush that finds the
    /// interrupt idle, so it is never missing a bit it needs.
    touched: u32,
}

/// vCPUs to make exit (or wake) because something became pending for them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Kicks(pub [u64; 4]);

impl Kicks {
    pub fn add(&mut self, vcpu: usize) {
        if vcpu < 256 {
            self.0[vcpu / 64] |= 1 << (vcpu % 64);
        }
    }
    pub fn merge(&mut self, other: Kicks) {
        for (a, b) in self.0.iter_mut().zip(other.0) {
            *a |= b;
        }
    }
    pub fn contains(&self, vcpu: usize) -> bool {
        vcpu < 256 && self.0[vcpu / 64] & (1 << (vcpu % 64)) != 0
    }
    pub fn is_empty(&self) -> bool {
        self.0.iter().all(|&w| w == 0)
    }
    pub fn iter(&self) -> impl Iterator<Item = usize> + '_ {
        (0..256).filter(|&i| self.contains(i))
    }
}

/// What [`Vgic::flush`] produced.
#[derive(Clone, Copy, Debug, Default)]
pub struct Flush {
    /// Valid entries written at the front of the slice.
    pub count: usize,
    /// More interrupts wanted in than fitted: ask for an underflow maintenance
    /// interrupt (ICH_HCR_EL2.UIE / GICH_HCR.UIE) to come back for them.
    pub overflow: bool,
}

/// A VM's virtual GIC: distributor state, one [`CpuState`] per vCPU.
#[derive(Clone, Debug)]
pub struct Vgic {
    pub version: Version,
    /// GICD_CTLR enable bits (bit 0 group 0 / GICv2 Enable, bit 1 group 1).
    ctlr: u32,
    spis: Vec<IrqState>,
    cpus: Vec<CpuState>,
    /// SPIs (bit n = INTID 32 + n) that may be pending, active or in a list
    /// register: as [`CpuState::touched`], for the shared interrupts.
    spi_touched: Vec<u64>,
}

/// Why a guest access could not be emulated (the runtime injects an abort).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MmioError {
    /// An access size the register does not support.
    BadSize,
}

impl Vgic {
    /// A reset GIC for `mpidrs.len()` vCPUs (their guest MPIDRs) with `spis` SPIs
    /// (rounded up to a multiple of 32, at most 988).
    pub fn new(version: Version, mpidrs: &[u64], spis: usize) -> Self {
        let spis = spis.div_ceil(32).clamp(1, 31) * 32;
        let spis = spis.min((MAX_INTID + 1 - SPI_BASE) as usize);
        // KVM resets GICv3 guests' interrupts to group 1 (what Linux expects of
        // firmware); GICv2 guests have group 0 only.
        let g1 = version == Version::V3;
        let cpus = mpidrs
            .iter()
            .map(|&mpidr| {
                let mut private = [IrqState::reset(false, g1); PRIVATE];
                for sgi in private.iter_mut().take(16) {
                    sgi.edge = true;
                    // SGIs are always enabled on a GICv2 without security (the
                    // enable bits are implementation defined; KVM makes them RAO).
                    sgi.enabled = version == Version::V2;
                }
                CpuState {
                    private,
                    mpidr,
                    sleep: true,
                    iface: IfaceState::default(),
                    lrs: LrSlots::default(),
                    touched: 0,
                }
            })
            .collect();
        Self {
            version,
            ctlr: 0,
            spis: alloc::vec![IrqState::reset(false, g1); spis],
            cpus,
            spi_touched: alloc::vec![0; spis.div_ceil(64)],
        }
    }

    pub fn vcpus(&self) -> usize {
        self.cpus.len()
    }

    pub fn spis(&self) -> usize {
        self.spis.len()
    }

    pub fn cpu(&self, vcpu: usize) -> &CpuState {
        &self.cpus[vcpu]
    }

    pub fn iface_mut(&mut self, vcpu: usize) -> Option<&mut IfaceState> {
        self.cpus.get_mut(vcpu).map(|c| &mut c.iface)
    }

    /// The number of INTIDs the distributor describes (SGIs, PPIs and SPIs).
    pub fn lines(&self) -> u32 {
        SPI_BASE + self.spis.len() as u32
    }

    /// The state of `intid` as `vcpu` sees it (private interrupts are banked).
    pub fn irq(&self, vcpu: usize, intid: u32) -> Option<&IrqState> {
        if intid < SPI_BASE {
            self.cpus.get(vcpu)?.private.get(intid as usize)
        } else {
            self.spis.get((intid - SPI_BASE) as usize)
        }
    }

    /// The state of `intid` to change: the interrupt is marked touched, so flushes
    /// and wake-up checks look at it until one finds it idle.
    fn irq_mut(&mut self, vcpu: usize, intid: u32) -> Option<&mut IrqState> {
        if intid < SPI_BASE {
            let c = self.cpus.get_mut(vcpu)?;
            c.touched |= 1u32.checked_shl(intid).unwrap_or(0);
            c.private.get_mut(intid as usize)
        } else {
            let n = (intid - SPI_BASE) as usize;
            if let Some(w) = self.spi_touched.get_mut(n / 64) {
                *w |= 1 << (n % 64);
            }
            self.spis.get_mut(n)
        }
    }

    /// Marks every interrupt touched (after the state was replaced wholesale).
    fn touch_all(&mut self) {
        for c in self.cpus.iter_mut() {
            c.touched = u32::MAX;
        }
        for w in self.spi_touched.iter_mut() {
            *w = u64::MAX;
        }
    }

    /// The touched private interrupts of `vcpu` and touched SPIs, as INTIDs.
    fn touched(&self, vcpu: usize) -> impl Iterator<Item = u32> + '_ {
        let private = self.cpus.get(vcpu).map_or(0, |c| c.touched);
        let end = SPI_BASE + self.spis.len() as u32;
        bits(private as u64, 0).chain(
            self.spi_touched
                .iter()
                .enumerate()
                .flat_map(|(w, &word)| bits(word, SPI_BASE + 64 * w as u32))
                .filter(move |&id| id < end),
        )
    }

    fn group_enabled(&self, group1: bool) -> bool {
        match self.version {
            Version::V2 => self.ctlr & 1 != 0,
            Version::V3 => self.ctlr & if group1 { 2 } else { 1 } != 0,
        }
    }

    /// The vCPU an SPI is delivered to, if any: GICv2 the lowest CPU in ITARGETSR
    /// (as KVM), GICv3 the vCPU whose affinity IROUTER names.
    fn spi_target(&self, irq: &IrqState) -> Option<usize> {
        match self.version {
            Version::V2 => {
                let t = irq.targets as usize;
                (t != 0)
                    .then(|| t.trailing_zeros() as usize)
                    .filter(|&c| c < self.cpus.len())
            }
            Version::V3 => {
                let aff = irq.route & 0xff_00ff_ffff;
                self.cpus
                    .iter()
                    .position(|c| c.mpidr & 0xff_00ff_ffff == aff)
            }
        }
    }

    /// The vCPU that should hear about a change to `intid` (banked: `vcpu` itself).
    fn owner(&self, vcpu: usize, intid: u32) -> Option<usize> {
        if intid < SPI_BASE {
            Some(vcpu)
        } else {
            self.spi_target(self.irq(vcpu, intid)?)
        }
    }

    fn kick_for(&self, vcpu: usize, intid: u32) -> Kicks {
        let mut k = Kicks::default();
        if let Some(t) = self.owner(vcpu, intid) {
            if self
                .irq(vcpu, intid)
                .is_some_and(|i| i.pending() && i.enabled)
            {
                k.add(t);
            }
        }
        k
    }

    /// Drives a level-sensitive input (a PPI of `vcpu`, or an SPI). Returns the vCPU
    /// to kick when the interrupt became deliverable. A GICv2 SGI has no line: nothing
    /// happens.
    pub fn set_line(&mut self, vcpu: usize, intid: u32, level: bool) -> Kicks {
        if intid < 16 {
            // SGIs have no input line: they are raised by their generation registers.
            return Kicks::default();
        }
        let Some(irq) = self.irq_mut(vcpu, intid) else {
            return Kicks::default();
        };
        let rising = level && !irq.line_level;
        irq.line_level = level;
        if irq.edge && rising {
            irq.pending_latch = true;
        }
        if rising {
            self.kick_for(vcpu, intid)
        } else {
            Kicks::default()
        }
    }

    /// Makes an interrupt pending as an edge would (used for SGIs and tests). A GICv2
    /// SGI needs a source CPU: it is made pending through GICD_SGIR or
    /// GICD_SPENDSGIR, and nothing happens here.
    pub fn inject_edge(&mut self, vcpu: usize, intid: u32) -> Kicks {
        if self.version == Version::V2 && intid < 16 {
            return Kicks::default();
        }
        let Some(irq) = self.irq_mut(vcpu, intid) else {
            return Kicks::default();
        };
        irq.pending_latch = true;
        self.kick_for(vcpu, intid)
    }

    /// Whether `intid` of `vcpu` is pending or active (the runtime keeps a physical
    /// interrupt that feeds it masked meanwhile).
    pub fn is_pending_or_active(&self, vcpu: usize, intid: u32) -> bool {
        self.irq(vcpu, intid)
            .is_some_and(|i| i.pending() || i.active)
    }

    /// Marks SPI `intid` hardware-linked (a passed-through device's), or not.
    pub fn set_hw(&mut self, intid: u32, hw: bool) {
        if intid < SPI_BASE {
            return;
        }
        if let Some(i) = self.irq_mut(0, intid) {
            i.hw = hw;
            i.hw_active = false;
        }
    }

    /// The physical SPI `intid` was taken at EL2 and left active: it is pending
    /// for the guest now. Returns the vCPU to kick.
    pub fn inject_hw(&mut self, intid: u32) -> Kicks {
        let Some(i) = self.irq_mut(0, intid).filter(|i| i.hw && intid >= SPI_BASE) else {
            return Kicks::default();
        };
        i.pending_latch = true;
        i.hw_active = true;
        self.kick_for(0, intid)
    }

    /// A hardware-linked SPI's configuration as the guest left it: whether it
    /// can be delivered (enabled, its group enabled) and the vCPU it targets.
    pub fn hw_config(&self, intid: u32) -> Option<(bool, Option<usize>)> {
        let i = self.irq(0, intid).filter(|i| i.hw && intid >= SPI_BASE)?;
        Some((
            i.enabled && self.group_enabled(i.group1),
            self.spi_target(i),
        ))
    }

    /// Back to the state [`Vgic::new`] gives, for a VM that restarts, except
    /// which SPIs are hardware-linked (passthrough: the link is the hypervisor's
    /// choice, not the guest's). Returns the linked SPIs whose physical interrupt
    /// was active: the guest that would have ended them is gone, so the runtime
    /// deactivates them.
    pub fn reset(&mut self) -> Vec<u32> {
        let mpidrs: Vec<u64> = self.cpus.iter().map(|c| c.mpidr).collect();
        let mut fresh = Vgic::new(self.version, &mpidrs, self.spis.len());
        let mut active = Vec::new();
        for (n, (old, new)) in self.spis.iter().zip(fresh.spis.iter_mut()).enumerate() {
            if old.hw {
                new.hw = true;
                if old.hw_active {
                    active.push(SPI_BASE + n as u32);
                }
            }
        }
        *self = fresh;
        active
    }

    /// Hardware-linked SPIs whose physical interrupt is active although the
    /// guest no longer has them pending or active (it cleared them through the
    /// distributor): the runtime must deactivate them. Each is reported once.
    pub fn hw_orphans(&mut self) -> Vec<u32> {
        let mut out = Vec::new();
        for (n, i) in self.spis.iter_mut().enumerate() {
            if i.hw && i.hw_active && !i.pending() && !i.active && i.in_lr.is_none() {
                i.hw_active = false;
                out.push(SPI_BASE + n as u32);
            }
        }
        out
    }

    /// The guest moved hardware-linked SPI `intid` to another vCPU while its
    /// physical interrupt is active (taken on the old vCPU's CPU) and not in a
    /// list register: it is unlinked, its pending or active state stays the
    /// guest's as a software interrupt's, and the runtime deactivates the
    /// physical one now (true), so that no deactivation has to come from another
    /// CPU (QEMU's GICv2 keeps an SPI's active state per CPU).
    pub fn hw_release(&mut self, intid: u32) -> bool {
        match self.irq_mut(0, intid) {
            Some(i) if intid >= SPI_BASE && i.hw && i.hw_active && i.in_lr.is_none() => {
                i.hw_active = false;
                true
            }
            _ => false,
        }
    }

    fn deliverable(&self, irq: &IrqState) -> bool {
        irq.pending() && irq.enabled && self.group_enabled(irq.group1)
    }

    /// Whether something is pending, enabled and forwarded for `vcpu`: what ends a
    /// WFI (the priority mask is left to the hardware: a spurious wake-up is allowed).
    pub fn has_pending(&self, vcpu: usize) -> bool {
        self.touched(vcpu).any(|id| {
            self.irq(vcpu, id).is_some_and(|i| {
                self.deliverable(i)
                    && (id < SPI_BASE || (i.in_lr.is_none() && self.spi_target(i) == Some(vcpu)))
            })
        })
    }

    /// Chooses what goes into `vcpu`'s list registers and encodes it into `out`
    /// (whose length is the number of list registers): active interrupts first (the
    /// guest must be able to deactivate them), then pending ones by priority, then
    /// INTID. Pending state moves into the list registers until [`Vgic::fold`].
    pub fn flush(&mut self, vcpu: usize, out: &mut [Lr]) -> Flush {
        let nr = out.len().min(MAX_LRS);
        let f = self.flush_with(vcpu, nr, |n, lr| out[n] = lr);
        for lr in out.iter_mut().take(nr).skip(f.count) {
            *lr = Lr::INVALID;
        }
        f
    }

    /// [`Vgic::flush`] for `nr` list registers, handing each used one to `emit`
    /// (list register number, value) instead of filling an array: the runtime
    /// writes them straight into the hardware.
    pub fn flush_with(&mut self, vcpu: usize, nr: usize, mut emit: impl FnMut(usize, Lr)) -> Flush {
        let nr = nr.min(MAX_LRS);
        if vcpu >= self.cpus.len() {
            return Flush::default();
        }
        // Candidates: (not active, priority, INTID), so sorting puts active ones
        // first, then by priority and INTID. More than fit is an overflow: the
        // runtime then asks for a maintenance interrupt when the list registers
        // drain, and the rest go in then.
        let mut cand: heapless::Vec<(bool, u8, u32), 16> = heapless::Vec::new();
        let mut overflow = false;
        let groups = (self.group_enabled(false), self.group_enabled(true));
        let wanted = |i: &IrqState| {
            i.active || (i.pending() && i.enabled && if i.group1 { groups.1 } else { groups.0 })
        };
        // Only touched interrupts can be pending or active; those found idle (and
        // in no list register) are untouched again.
        let c = &mut self.cpus[vcpu];
        let mut rest = c.touched;
        while rest != 0 {
            let id = rest.trailing_zeros();
            rest &= rest - 1;
            let i = &c.private[id as usize];
            if !(i.active || i.pending()) {
                c.touched &= !(1 << id);
            }
            if wanted(i) && cand.push((!i.active, i.priority, id)).is_err() {
                overflow = true;
            }
        }
        for w in 0..self.spi_touched.len() {
            let mut word = self.spi_touched[w];
            let mut rest = word;
            while rest != 0 {
                let b = rest.trailing_zeros();
                rest &= rest - 1;
                let Some(i) = self.spis.get(w * 64 + b as usize) else {
                    word &= !(1 << b);
                    continue;
                };
                if !(i.active || i.pending() || i.in_lr.is_some()) {
                    word &= !(1 << b);
                } else if i.in_lr.is_none()
                    && wanted(i)
                    && self.spi_target(i) == Some(vcpu)
                    && cand
                        .push((!i.active, i.priority, SPI_BASE + (w * 64) as u32 + b))
                        .is_err()
                {
                    overflow = true;
                }
            }
            self.spi_touched[w] = word;
        }
        crate::sort::sort(&mut cand);
        if cand.len() > nr {
            overflow = true;
        }
        let v2 = self.version == Version::V2;
        let mut used = 0;
        for (n, &(_, _, id)) in cand.iter().take(nr).enumerate() {
            let Some(i) = self.irq_mut(vcpu, id) else {
                continue;
            };
            let pending = i.enabled && i.pending();
            let mut source = 0;
            let mut pend_in_lr = pending;
            if v2 && id < 16 {
                if i.active {
                    source = i.active_source;
                    // A v2 SGI from another source cannot share the active entry.
                    pend_in_lr = pending && i.sgi_sources & (1 << source) != 0;
                    if pend_in_lr {
                        i.sgi_sources &= !(1 << source);
                    }
                } else if pending {
                    source = i.sgi_sources.trailing_zeros() as u8;
                    i.sgi_sources &= !(1 << source);
                }
                if i.sgi_sources != 0 {
                    overflow = true;
                }
            }
            // A hardware-linked interrupt's pending state is a latch (the line
            // is the physical one's): it moves into the list register.
            let hw_link = i.hw && i.hw_active;
            if !(v2 && id < 16) && pend_in_lr && (i.edge || hw_link) {
                i.pending_latch = false;
            }
            let state = match (pend_in_lr, i.active) {
                (true, true) => LrState::PendingActive,
                (true, false) => LrState::Pending,
                (false, true) => LrState::Active,
                (false, false) => LrState::Invalid,
            };
            emit(
                n,
                Lr {
                    intid: id,
                    state,
                    priority: i.priority,
                    group1: i.group1,
                    eoi_maintenance: !i.edge && !hw_link,
                    source: if hw_link { 0 } else { source },
                    hw: hw_link,
                },
            );
            if id >= SPI_BASE {
                i.in_lr = Some(vcpu as u16);
            }
            self.cpus[vcpu].lrs.intid[n] = id as u16;
            self.cpus[vcpu].lrs.hw[n] = hw_link;
            if pend_in_lr {
                self.cpus[vcpu].lrs.pending |= 1 << n;
            } else {
                self.cpus[vcpu].lrs.pending &= !(1 << n);
            }
            used = n + 1;
        }
        self.cpus[vcpu].lrs.used = used as u8;
        Flush {
            count: used,
            overflow,
        }
    }

    /// How many list registers the last flush for `vcpu` used (what the runtime
    /// reads back on the next exit).
    pub fn lrs_in_use(&self, vcpu: usize) -> usize {
        self.cpus.get(vcpu).map_or(0, |c| c.lrs.used as usize)
    }

    /// Reads back the list registers a flush wrote for `vcpu` (`lrs[i]` is list
    /// register `i` as the hardware holds it now).
    pub fn fold(&mut self, vcpu: usize, lrs: &[Lr]) {
        self.fold_with(vcpu, |n| lrs.get(n).copied().unwrap_or(Lr::INVALID))
    }

    /// [`Vgic::fold`], reading list register `n` with `read` (the runtime reads
    /// the hardware's, for the ones [`Vgic::lrs_in_use`] says were used).
    pub fn fold_with(&mut self, vcpu: usize, mut read: impl FnMut(usize) -> Lr) {
        let Some(c) = self.cpus.get_mut(vcpu) else {
            return;
        };
        let used = core::mem::take(&mut c.lrs.used) as usize;
        let v2 = self.version == Version::V2;
        for n in 0..used.min(MAX_LRS) {
            let id = self.cpus[vcpu].lrs.intid[n] as u32;
            let was_hw = self.cpus[vcpu].lrs.hw[n];
            let given_pending = self.cpus[vcpu].lrs.pending & (1 << n) != 0;
            let lr = read(n);
            let Some(i) = self.irq_mut(vcpu, id) else {
                continue;
            };
            let (pending, active) = (lr.state.pending(), lr.state.active());
            if v2 && id < 16 {
                if pending {
                    i.sgi_sources |= 1 << (lr.source & 7);
                }
                if active {
                    i.active_source = lr.source & 7;
                }
            } else if i.edge || was_hw {
                if pending {
                    i.pending_latch = true;
                }
                if was_hw && !pending && !active {
                    // The guest deactivated it: so did the hardware, physically.
                    i.hw_active = false;
                }
            } else if !pending && given_pending {
                // A level interrupt acknowledged by the guest: a software pending
                // request is consumed (the line, if still high, keeps it pending).
                // One given only as active was not acknowledged: it keeps its latch.
                i.pending_latch = false;
            }
            i.active = active;
            i.in_lr = None;
        }
    }

    /// Makes the SGI `intid` pending from `source` on every vCPU in `targets`.
    fn send_sgi(&mut self, source: usize, intid: u32, targets: Kicks, group1_ok: bool) -> Kicks {
        let mut kicks = Kicks::default();
        let (n, v2) = (self.cpus.len(), self.version == Version::V2);
        for t in targets.iter().filter(|&t| t < n) {
            self.cpus[t].touched |= 1 << (intid & 15);
            let i = &mut self.cpus[t].private[(intid & 15) as usize];
            if !v2 && i.group1 && !group1_ok {
                continue;
            }
            if v2 {
                i.sgi_sources |= 1 << (source & 7);
            } else {
                i.pending_latch = true;
            }
            if i.enabled {
                kicks.add(t);
            }
        }
        kicks
    }

    /// A GICv3 SGI generation register write from `vcpu` (ICC_SGI1R_EL1,
    /// ICC_ASGI1R_EL1 or ICC_SGI0R_EL1; `group1`: SGI1R/ASGI1R, which with a single
    /// security state may raise any SGI, SGI0R only group-0 ones, as KVM).
    pub fn sgi_v3(&mut self, vcpu: usize, value: u64, group1: bool) -> Kicks {
        let intid = ((value >> 24) & 0xf) as u32;
        let mut targets = Kicks::default();
        if value & (1 << 40) != 0 {
            for t in (0..self.cpus.len()).filter(|&t| t != vcpu) {
                targets.add(t);
            }
        } else {
            let aff3 = (value >> 48) & 0xff;
            let aff2 = (value >> 32) & 0xff;
            let aff1 = (value >> 16) & 0xff;
            let rs = (value >> 44) & 0xf;
            let list = value & 0xffff;
            for (t, c) in self.cpus.iter().enumerate() {
                let m = c.mpidr;
                if (m >> 32) & 0xff == aff3 && (m >> 16) & 0xff == aff2 && (m >> 8) & 0xff == aff1 {
                    let aff0 = m & 0xff;
                    if aff0 / 16 == rs && list & (1 << (aff0 % 16)) != 0 {
                        targets.add(t);
                    }
                }
            }
        }
        self.send_sgi(vcpu, intid, targets, group1)
    }
}

/// `base` plus each set bit of `word`, ascending.
fn bits(word: u64, base: u32) -> impl Iterator<Item = u32> {
    let mut rest = word;
    core::iter::from_fn(move || {
        if rest == 0 {
            return None;
        }
        let b = rest.trailing_zeros();
        rest &= rest - 1;
        Some(base + b)
    })
}
