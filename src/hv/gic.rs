//! The host GIC (v2 or v3, from the DTB), driven with the `arm-gic` crate. The
//! hypervisor owns it: physical interrupts are taken at EL2 (HCR_EL2.IMO): its own
//! PPIs and SGIs, and the SPIs of passed-through devices. Virtual interrupts for
//! guests go through the list registers, which are ours to program.
//!
//! **Split EOI.** Every CPU interface runs with EOImode = 1 (ICC_CTLR_EL1.EOImode,
//! GICC_CTLR bit 9): a write to EOIR only drops the running priority, and a write to
//! DIR deactivates. [`end`] does both for the hypervisor's own interrupts; for a
//! forwarded SPI ([`set_forwarded`]) it only drops the priority, so the interrupt
//! stays active until the guest deactivates it through a hardware-linked list
//! register. Without split EOI that would not be possible: EOIR would deactivate it
//! before the guest saw it, and a level interrupt would fire again at once.

use arm_gic::{
    gicv2::GicV2,
    gicv3::{GicCpuInterface, GicV3},
    IntId, InterruptGroup, Trigger,
};
use core::ptr::NonNull;
use core::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};
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
/// GICv2: the CPU interface (for GICC_CTLR and GICC_DIR) and the distributor.
static GICC: AtomicUsize = AtomicUsize::new(0);
static GICD: AtomicUsize = AtomicUsize::new(0);
/// INTIDs whose physical interrupt a guest deactivates (forwarded SPIs): one bit each.
static FORWARDED: [AtomicU32; 32] = [const { AtomicU32::new(0) }; 32];

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
                GICC.store(gicc, Ordering::Relaxed);
                GICD.store(gicd, Ordering::Relaxed);
                split_eoi();
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
                GICD.store(gicd, Ordering::Relaxed);
                split_eoi();
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
    split_eoi();
}

/// This CPU's interface: EOI drops the priority only, DIR deactivates (see the
/// module docs).
fn split_eoi() {
    if IS_V3.load(Ordering::Relaxed) {
        // SAFETY: ICC_CTLR_EL1.EOImode (bit 1) only changes what EOIR does on this
        // CPU; `end` writes DIR for every interrupt that needs it.
        unsafe {
            core::arch::asm!(
                "mrs {t}, icc_ctlr_el1",
                "orr {t}, {t}, #2",
                "msr icc_ctlr_el1, {t}",
                "isb",
                t = out(reg) _,
                options(nostack)
            )
        };
    } else {
        let gicc = GICC.load(Ordering::Relaxed);
        if gicc != 0 {
            // SAFETY: GICC_CTLR of this CPU's banked interface (DTB, identity-mapped
            // device memory); bit 9 is EOImode for the interface's interrupts.
            unsafe {
                let ctlr = core::ptr::read_volatile(gicc as *const u32);
                core::ptr::write_volatile(gicc as *mut u32, ctlr | (1 << 9));
            }
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
/// vGIC masks the EL1 timers' PPIs while the guest handles its virtual one.
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
    /// GICv2: GICC_IAR as read, source CPU of an SGI included (bits 12:10): what
    /// GICC_EOIR and GICC_DIR must be given back.
    raw: u32,
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
            raw: id.raw_value(),
        })
    } else {
        let _gic = GIC.get()?.lock();
        let gicc = GICC.load(Ordering::Relaxed);
        // GICC_IAR (group 0) and GICC_AIAR (group 1). Read directly: for an SGI
        // the value carries the source CPU, which `IntId` would keep in the
        // INTID and EOIR needs back.
        [
            (0x0c, InterruptGroup::Group0),
            (0x20, InterruptGroup::Group1),
        ]
        .into_iter()
        .find_map(|(off, group)| {
            // SAFETY: GICC_IAR/GICC_AIAR of this CPU's banked interface (DTB,
            // identity-mapped device memory), read under the driver's lock.
            let raw = unsafe { core::ptr::read_volatile((gicc + off) as *const u32) };
            let intid = raw & 0x3ff;
            (intid < 1020).then(|| Acked {
                id: irq_id(intid),
                group,
                raw,
            })
        })
    };
    acked.filter(|a| a.id.raw_value() < 1020)
}

/// An INTID below 1020 as the driver's type.
fn irq_id(intid: u32) -> IntId {
    match intid {
        0..16 => IntId::sgi(intid),
        16..32 => IntId::ppi(intid - 16),
        _ => IntId::spi(intid - 32),
    }
}

/// Ends an acknowledged interrupt: drops the priority, and deactivates it unless a
/// guest will (a forwarded SPI).
pub fn end(a: Acked) {
    let intid = a.id.raw_value();
    if IS_V3.load(Ordering::Relaxed) {
        GicCpuInterface::end_interrupt(a.id, a.group);
        if !is_forwarded(intid) {
            // SAFETY: deactivates the interrupt this CPU acknowledged and dropped.
            unsafe {
                core::arch::asm!("msr icc_dir_el1, {}", in(reg) intid as u64, options(nostack))
            };
        }
        return;
    }
    let Some(gic) = GIC.get() else { return };
    let _gic = gic.lock();
    let gicc = GICC.load(Ordering::Relaxed);
    let eoir = match a.group {
        InterruptGroup::Group0 => 0x10,
        InterruptGroup::Group1 => 0x24,
    };
    // SAFETY: GICC_EOIR/GICC_AEOIR and GICC_DIR (offset 0x1000) of this CPU's
    // interface, under the driver's lock: drop the priority of the interrupt this
    // CPU acknowledged and, unless a guest will, deactivate it.
    unsafe {
        core::ptr::write_volatile((gicc + eoir) as *mut u32, a.raw);
        if !is_forwarded(intid) {
            core::ptr::write_volatile((gicc + 0x1000) as *mut u32, a.raw);
        }
    }
}

/// Marks SPI `intid` as forwarded to a guest: [`end`] leaves it active.
pub fn set_forwarded(intid: u32) {
    if let Some(w) = FORWARDED.get(intid as usize / 32) {
        w.fetch_or(1 << (intid % 32), Ordering::Relaxed);
    }
}

#[inline(always)]
fn is_forwarded(intid: u32) -> bool {
    FORWARDED
        .get(intid as usize / 32)
        .is_some_and(|w| w.load(Ordering::Relaxed) & (1 << (intid % 32)) != 0)
}

/// Configures SPI `intid` for forwarding: its trigger, a priority, disabled until
/// the guest enables it.
pub fn configure_spi(intid: u32, level: bool) {
    let Some(gic) = GIC.get() else { return };
    let id = IntId::spi(intid - 32);
    let trigger = if level { Trigger::Level } else { Trigger::Edge };
    match &mut *gic.lock() {
        HostGic::V2(g) => {
            let _ = g.enable_interrupt(id, false);
            g.set_interrupt_priority(id, 0xa0);
            g.set_trigger(id, trigger);
        }
        HostGic::V3(g) => {
            let _ = g.enable_interrupt(id, None, false);
            let _ = g.set_interrupt_priority(id, None, 0xa0);
            let _ = g.set_trigger(id, None, trigger);
        }
    }
}

/// Enables or disables SPI `intid` (the guest masked or unmasked the virtual one).
pub fn set_spi_enabled(intid: u32, enable: bool) {
    let Some(gic) = GIC.get() else { return };
    let id = IntId::spi(intid - 32);
    match &mut *gic.lock() {
        HostGic::V2(g) => {
            let _ = g.enable_interrupt(id, enable);
        }
        HostGic::V3(g) => {
            let _ = g.enable_interrupt(id, None, enable);
        }
    }
}

/// Routes SPI `intid` to the CPU with MPIDR `mpidr` (GICv2: CPU interface = Aff0).
pub fn route_spi(intid: u32, mpidr: u64) {
    let Some(gic) = GIC.get() else { return };
    let mut gic = gic.lock();
    match &mut *gic {
        HostGic::V2(_) => {
            let gicd = GICD.load(Ordering::Relaxed);
            // SAFETY: GICD_ITARGETSR<n> byte `intid` of the distributor (DTB,
            // identity-mapped), written under the driver's lock.
            unsafe {
                core::ptr::write_volatile(
                    (gicd + 0x800 + intid as usize) as *mut u8,
                    1 << (mpidr & 7),
                )
            };
        }
        HostGic::V3(g) => {
            let _ = g
                .distributor()
                .set_routing(IntId::spi(intid - 32), Some(mpidr & 0xff_00ff_ffff));
        }
    }
}

/// Takes SPI `intid` for the hypervisor itself (a console UART's interrupt): its
/// trigger, a priority, routed to the CPU with MPIDR `mpidr`, enabled. [`end`]
/// deactivates it (it is not forwarded).
pub fn enable_own_spi(intid: u32, level: bool, mpidr: u64) {
    configure_spi(intid, level);
    route_spi(intid, mpidr);
    set_spi_enabled(intid, true);
}

/// Deactivates SPI `intid` through the distributor (GICD_ICACTIVER): a forwarded
/// interrupt whose guest dropped it without deactivating it.
pub fn deactivate_spi(intid: u32) {
    let Some(gic) = GIC.get() else { return };
    let _guard = gic.lock();
    let gicd = GICD.load(Ordering::Relaxed);
    // SAFETY: GICD_ICACTIVER<n> of the distributor (DTB, identity-mapped); writing
    // a one clears only that interrupt's active state.
    unsafe {
        core::ptr::write_volatile(
            (gicd + 0x380 + 4 * (intid as usize / 32)) as *mut u32,
            1 << (intid % 32),
        )
    };
}
