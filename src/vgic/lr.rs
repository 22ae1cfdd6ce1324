//! List-register encodings: GICv3 ICH_LR<n>_EL2 (IHI 0069, 12.4.6) and GICv2
//! GICH_LRn (IHI 0048B, 5.3.6), from one version-independent [`Lr`].

/// The state field, the same two bits in both architectures.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LrState {
    Invalid = 0,
    Pending = 1,
    Active = 2,
    PendingActive = 3,
}

impl LrState {
    fn from_bits(b: u64) -> Self {
        match b & 3 {
            0 => Self::Invalid,
            1 => Self::Pending,
            2 => Self::Active,
            _ => Self::PendingActive,
        }
    }
    pub fn pending(self) -> bool {
        matches!(self, Self::Pending | Self::PendingActive)
    }
    pub fn active(self) -> bool {
        matches!(self, Self::Active | Self::PendingActive)
    }
}

/// One list register's content.
///
/// `hw`: a hardware-linked interrupt (a passed-through SPI): the physical
/// INTID is the virtual one, and the guest's deactivation of the virtual
/// interrupt deactivates the physical one (ICH_LR.HW / GICH_LR.HW with
/// pINTID). Such an entry has no EOI maintenance and (GICv2) no source CPU:
/// those fields hold the physical INTID.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Lr {
    pub intid: u32,
    pub state: LrState,
    pub priority: u8,
    pub group1: bool,
    /// Ask for a maintenance interrupt when the guest deactivates it (level
    /// interrupts, so the line is resampled).
    pub eoi_maintenance: bool,
    /// GICv2 SGIs: the source CPU (GICH_LR.CPUID).
    pub source: u8,
    /// Hardware-linked to the physical interrupt with the same INTID.
    pub hw: bool,
}

impl Lr {
    pub const INVALID: Lr = Lr {
        intid: 0,
        state: LrState::Invalid,
        priority: 0,
        group1: false,
        eoi_maintenance: false,
        source: 0,
        hw: false,
    };

    /// ICH_LR<n>_EL2: State [63:62], HW [61], Group [60], Priority [55:48],
    /// pINTID [44:32] (HW = 1) or EOI [41] (HW = 0), vINTID [31:0].
    pub fn to_v3(&self) -> u64 {
        if self.state == LrState::Invalid {
            return 0;
        }
        let low = if self.hw {
            (1 << 61) | ((self.intid as u64 & 0x1fff) << 32)
        } else {
            (self.eoi_maintenance as u64) << 41
        };
        ((self.state as u64) << 62)
            | ((self.group1 as u64) << 60)
            | ((self.priority as u64) << 48)
            | low
            | self.intid as u64
    }

    pub fn from_v3(v: u64) -> Self {
        let hw = v & (1 << 61) != 0;
        Self {
            intid: (v & 0xffff_ffff) as u32,
            state: LrState::from_bits(v >> 62),
            priority: (v >> 48) as u8,
            group1: v & (1 << 60) != 0,
            eoi_maintenance: !hw && v & (1 << 41) != 0,
            source: 0,
            hw,
        }
    }

    /// GICH_LRn: HW [31], Grp1 [30], State [29:28], Priority [27:23] (the top five
    /// bits), PhysicalID [19:10] (HW = 1) or EOI [19] and CPUID [12:10] (HW = 0),
    /// VirtualID [9:0].
    pub fn to_v2(&self) -> u32 {
        if self.state == LrState::Invalid {
            return 0;
        }
        let low = if self.hw {
            (1 << 31) | ((self.intid & 0x3ff) << 10)
        } else {
            ((self.eoi_maintenance as u32) << 19) | (((self.source & 7) as u32) << 10)
        };
        ((self.group1 as u32) << 30)
            | ((self.state as u32) << 28)
            | (((self.priority >> 3) as u32) << 23)
            | low
            | (self.intid & 0x3ff)
    }

    pub fn from_v2(v: u32) -> Self {
        let hw = v & (1 << 31) != 0;
        Self {
            intid: v & 0x3ff,
            state: LrState::from_bits((v >> 28) as u64),
            priority: (((v >> 23) & 0x1f) << 3) as u8,
            group1: v & (1 << 30) != 0,
            eoi_maintenance: !hw && v & (1 << 19) != 0,
            source: if hw { 0 } else { ((v >> 10) & 7) as u8 },
            hw,
        }
    }
}

/// Which virtual exception lines the GICv3 virtual CPU interface would raise,
/// worked out in software for a machine whose GIC virtual IRQ/FIQ outputs reach no
/// CPU (QEMU's `imx8mp-evk`): the runtime then drives HCR_EL2.VI/VF from it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct VirtLines {
    /// A virtual IRQ (HCR_EL2.VI).
    pub irq: bool,
    /// A virtual FIQ (HCR_EL2.VF).
    pub fiq: bool,
    /// Some list register holds a pending interrupt (signalled or not).
    pub pending: bool,
}

/// The GICv3 pseudocode's CanSignalVirtualInterrupt over the list registers:
/// the highest-priority pending entry of an enabled group is signalled if its
/// priority is below the priority mask and its group priority above the running
/// priority. `vmcr` is ICH_VMCR_EL2 (VENG0 [0], VENG1 [1], VFIQEn [3], VPMR
/// [31:24]); `active_bits` the active-priority bits of both groups ORed
/// (ICH_AP0Rn | ICH_AP1Rn, register n in bits 32n..), each bit one group
/// priority of `8 - pri_shift` bits (`pri_shift` = 8 - ICH_VTR_EL2.PREbits - 1).
/// Group 0 is a virtual FIQ when VFIQEn is set, else an IRQ. Group priorities are
/// compared at the finest grouping (the smallest binary point).
pub fn virt_lines(lrs: &[Lr], vmcr: u64, active_bits: u128, pri_shift: u32) -> VirtLines {
    let pending = lrs.iter().filter(|l| l.state.pending());
    let mut out = VirtLines {
        pending: pending.clone().next().is_some(),
        ..VirtLines::default()
    };
    let enabled = |g1: bool| vmcr & if g1 { 0b10 } else { 0b01 } != 0;
    let Some(best) = pending
        .filter(|l| enabled(l.group1))
        .min_by_key(|l| l.priority)
    else {
        return out;
    };
    let pmr = (vmcr >> 24) as u8;
    // The running priority: the lowest active group priority (none: idle).
    let running = match active_bits {
        0 => u32::MAX,
        b => b.trailing_zeros(),
    };
    if best.priority < pmr && ((best.priority as u32) >> pri_shift) < running {
        if !best.group1 && vmcr & (1 << 3) != 0 {
            out.fiq = true;
        } else {
            out.irq = true;
        }
    }
    out
}
