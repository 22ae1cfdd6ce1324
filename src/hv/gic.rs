//! The host GIC (v2 or v3, from the DTB), driven with the `arm-gic` crate. The
//! hypervisor owns it: physical interrupts are taken at EL2 (HCR_EL2.IMO), and for now
//! only the EL2 timer's PPI (the scheduling tick) is enabled. Virtual interrupts for
//! guests go through the list registers, which are ours to program.

use arm_gic::{
    gicv2::GicV2,
    gicv3::{GicCpuInterface, GicV3},
    IntId, InterruptGroup, Trigger,
};
use core::ptr::NonNull;
use core::sync::atomic::{AtomicBool, Ordering};
use spin::{Mutex, Once};

pub enum HostGic {
    V2(GicV2<'static>),
    V3(GicV3<'static>),
}

// SAFETY: the drivers hold MMIO pointers to the one GIC; all use goes through the
// mutex below.
unsafe impl Send for HostGic {}

static GIC: Once<Mutex<HostGic>> = Once::new();
static IS_V3: AtomicBool = AtomicBool::new(false);

/// What the DTB says about the GIC.
#[derive(Clone, Copy, Debug)]
pub enum GicConfig {
    V2 { gicd: usize, gicc: usize },
    V3 { gicd: usize, gicr: usize },
}

/// Initialises the distributor and this (boot) CPU's interface.
pub fn init(config: GicConfig, cpus: usize) {
    GIC.call_once(|| {
        let gic = match config {
            GicConfig::V2 { gicd, gicc } => {
                // SAFETY: the addresses are the GIC's from the DTB, identity-mapped as
                // device memory, and this is the only driver instance.
                let mut g = unsafe { GicV2::new(gicd as *mut _, gicc as *mut _) };
                g.setup();
                HostGic::V2(g)
            }
            GicConfig::V3 { gicd, gicr } => {
                GicCpuInterface::enable_system_register_el2(true);
                // SAFETY: as above; the redistributor range holds one frame per CPU.
                let mut g = unsafe {
                    GicV3::new(
                        arm_gic::UniqueMmioPointer::new(NonNull::new(gicd as *mut _).unwrap()),
                        NonNull::new(gicr as *mut _).unwrap(),
                        cpus,
                    )
                }
                .expect("GICv3 redistributors");
                g.setup(0);
                IS_V3.store(true, Ordering::Relaxed);
                HostGic::V3(g)
            }
        };
        Mutex::new(gic)
    });
}

/// Per-CPU interface setup on a secondary CPU.
pub fn init_secondary(cpu: usize) {
    let mut gic = GIC.get().expect("GIC initialised by the boot CPU").lock();
    match &mut *gic {
        HostGic::V2(g) => g.setup(),
        HostGic::V3(g) => {
            GicCpuInterface::enable_system_register_el2(true);
            g.init_cpu(cpu);
            GicCpuInterface::enable_group1(true);
        }
    }
}

/// Enables a private interrupt (an SGI, INTID 0-15, or a PPI, 16-31) on `cpu`,
/// level-triggered for PPIs, group 1 where groups matter.
pub fn enable_private(intid: u32, cpu: usize) {
    let id = if intid < 16 {
        IntId::sgi(intid)
    } else {
        IntId::ppi(intid - 16)
    };
    let mut gic = GIC.get().expect("GIC").lock();
    match &mut *gic {
        HostGic::V2(g) => {
            g.set_interrupt_priority(id, 0x80);
            if intid >= 16 {
                g.set_trigger(id, Trigger::Level);
            }
            let _ = g.enable_interrupt(id, true);
        }
        HostGic::V3(g) => {
            let _ = g.set_interrupt_priority(id, Some(cpu), 0x80);
            if intid >= 16 {
                let _ = g.set_trigger(id, Some(cpu), Trigger::Level);
            }
            let _ = g.enable_interrupt(id, Some(cpu), true);
            GicCpuInterface::set_priority_mask(0xff);
        }
    }
}

/// Enables or disables (without reconfiguring) a private interrupt on `cpu`: the
/// vGIC masks the virtual timer's PPI while the guest handles its virtual one.
pub fn set_private_enabled(intid: u32, cpu: usize, enable: bool) {
    let id = if intid < 16 {
        IntId::sgi(intid)
    } else {
        IntId::ppi(intid - 16)
    };
    let mut gic = GIC.get().expect("GIC").lock();
    match &mut *gic {
        HostGic::V2(g) => {
            let _ = g.enable_interrupt(id, enable);
        }
        HostGic::V3(g) => {
            let _ = g.enable_interrupt(id, Some(cpu), enable);
        }
    }
}

/// Sends SGI `intid` to the CPU with MPIDR `mpidr` (GICv2: CPU interface = Aff0).
pub fn send_sgi(intid: u32, mpidr: u64) {
    let id = IntId::sgi(intid);
    if IS_V3.load(Ordering::Relaxed) {
        let target = arm_gic::gicv3::SgiTarget::List {
            affinity3: (mpidr >> 32) as u8,
            affinity2: (mpidr >> 16) as u8,
            affinity1: (mpidr >> 8) as u8,
            target_list: 1 << (mpidr & 0xf),
        };
        let _ =
            GicCpuInterface::send_sgi(id, target, arm_gic::gicv3::SgiTargetGroup::CurrentGroup1);
        return;
    }
    let Some(gic) = GIC.get() else { return };
    if let HostGic::V2(g) = &mut *gic.lock() {
        let target = arm_gic::gicv2::SgiTarget::List {
            target_list_filter: arm_gic::gicv2::SgiTargetListFilter::CPUTargetList,
            target_list: 1 << (mpidr & 0x7),
        };
        g.send_sgi(id, target);
    }
}

/// An acknowledged interrupt: end it with [`end`].
#[derive(Clone, Copy, Debug)]
pub struct Acked {
    pub id: IntId,
    group: InterruptGroup,
}

/// Acknowledges the highest-priority pending interrupt, if any (never a spurious
/// INTID 1020-1023). GICv3's CPU interface is per-CPU system registers and needs no
/// lock; GICv2's is memory-mapped (banked per CPU) behind the driver's lock. A GICv2
/// without security extensions (QEMU's) signals everything as group 0.
pub fn acknowledge() -> Option<Acked> {
    let acked = if IS_V3.load(Ordering::Relaxed) {
        GicCpuInterface::get_and_acknowledge_interrupt(InterruptGroup::Group1).map(|id| Acked {
            id,
            group: InterruptGroup::Group1,
        })
    } else {
        let mut gic = GIC.get()?.lock();
        match &mut *gic {
            HostGic::V2(g) => [InterruptGroup::Group0, InterruptGroup::Group1]
                .into_iter()
                .find_map(|group| {
                    g.get_and_acknowledge_interrupt(group)
                        .map(|id| Acked { id, group })
                }),
            HostGic::V3(_) => None,
        }
    };
    acked.filter(|a| a.id.raw_value() < 1020)
}

pub fn end(a: Acked) {
    if IS_V3.load(Ordering::Relaxed) {
        GicCpuInterface::end_interrupt(a.id, a.group);
        return;
    }
    let Some(gic) = GIC.get() else { return };
    if let HostGic::V2(g) = &mut *gic.lock() {
        g.end_interrupt(a.id, a.group);
    }
}
