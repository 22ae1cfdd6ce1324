//! A minimal GICv3 for guests that take interrupts by polling: group 1 on, some
//! PPIs enabled, and acknowledge/end through the CPU interface's system registers.
//! IRQs stay masked at PSTATE, so a guest waits in WFI (which a pending interrupt
//! ends) and then acknowledges what the GIC offers: the delivery through the
//! (virtual) GIC is tested, not an exception handler.
//!
//! Only one CPU's redistributor is set up (the first in the `arm,gic-v3` node):
//! for single-vCPU guests.

use core::arch::asm;

use crate::{Boot, Fail, fail};

/// GICD_CTLR: ARE (bit 4) and EnableGrp1 (bit 1); a single security state.
const GICD_CTLR_ARE_GRP1: u32 = (1 << 4) | (1 << 1);
/// GICR_WAKER (RD frame) and GICR_ISENABLER0 (SGI frame, 64 KiB after it).
const GICR_WAKER: u64 = 0x14;
const GICR_ISENABLER0: u64 = 0x1_0000 + 0x100;
/// What ICC_IAR1_EL1 reads when nothing is pending.
pub const SPURIOUS: u64 = 1023;

fn write32(addr: u64, v: u32) {
    // SAFETY: a GIC register the device tree names (MMU off: Device memory).
    unsafe { core::ptr::write_volatile(addr as *mut u32, v) }
}

/// Distributor, the first redistributor and the CPU interface: group 1 on, the
/// PPIs in `ppis` (bit n: INTID n) enabled, every priority unmasked, IRQs masked
/// at PSTATE.
pub fn init(boot: &Boot, ppis: u32) -> Result<(), Fail> {
    let (gicd, gicr) = v3_frames(boot)?;
    write32(gicd, GICD_CTLR_ARE_GRP1);
    write32(gicr + GICR_WAKER, 0);
    write32(gicr + GICR_ISENABLER0, ppis);
    // SAFETY: the CPU interface belongs to this vCPU: system registers on, priority
    // mask open, group 1 enabled. IRQs stay masked at PSTATE.
    unsafe {
        asm!(
            "msr daifset, #2",
            "msr S3_0_C12_C12_5, {sre}", // ICC_SRE_EL1
            "isb",
            "msr S3_0_C4_C6_0, {pmr}",   // ICC_PMR_EL1
            "msr S3_0_C12_C12_7, {en}",  // ICC_IGRPEN1_EL1
            "isb",
            sre = in(reg) 7u64, pmr = in(reg) 0xffu64, en = in(reg) 1u64,
            options(nomem, nostack)
        )
    };
    Ok(())
}

/// The distance between two redistributors (RD and SGI frames).
const GICR_STRIDE: u64 = 0x2_0000;

/// Enables, from any CPU, the SGIs and PPIs in `mask` (bit n: INTID n) in the
/// redistributor of CPU `index` (frames in CPU order, as QEMU's and this
/// hypervisor's are), with the distributor's group 1 on: so another vCPU can be
/// sent an interrupt before it runs any GIC code of its own.
pub fn enable_private_of(boot: &Boot, index: u64, mask: u32) -> Result<(), Fail> {
    let (gicd, gicr) = v3_frames(boot)?;
    write32(gicd, GICD_CTLR_ARE_GRP1);
    write32(gicr + index * GICR_STRIDE + GICR_ISENABLER0, mask);
    Ok(())
}

/// The GICv3 distributor's and the first redistributor's addresses, from the
/// `arm,gic-v3` node.
fn v3_frames(boot: &Boot) -> Result<(u64, u64), Fail> {
    let node = boot
        .fdt()
        .find_compatible(&["arm,gic-v3"])
        .ok_or_else(|| fail!("no arm,gic-v3 node: this guest needs a GICv3"))?;
    let mut regs = node.reg().ok_or_else(|| fail!("the GIC node has no reg"))?;
    let gicd = regs
        .next()
        .ok_or_else(|| fail!("no GICD"))?
        .starting_address as u64;
    let gicr = regs
        .next()
        .ok_or_else(|| fail!("no GICR"))?
        .starting_address as u64;
    Ok((gicd, gicr))
}

/// Acknowledges the highest-priority pending interrupt (ICC_IAR1_EL1): its INTID,
/// or [`SPURIOUS`].
pub fn ack() -> u64 {
    let v: u64;
    // SAFETY: acknowledging an interrupt only changes the GIC's state for it.
    unsafe { asm!("mrs {}, S3_0_C12_C12_0", out(reg) v, options(nomem, nostack)) };
    v & 0xff_ffff
}

/// Ends (drops the priority of and deactivates) an acknowledged interrupt.
pub fn end(intid: u64) {
    // SAFETY: ends an interrupt this CPU acknowledged.
    unsafe { asm!("msr S3_0_C12_C12_1, {}", "isb", in(reg) intid, options(nomem, nostack)) };
}

/// Waits (WFI) until an interrupt is pending and acknowledges it; `Err` after
/// `max_wakeups` wake-ups with nothing pending.
pub fn wait(max_wakeups: u64) -> Result<u64, Fail> {
    let mut wakeups = 0u64;
    loop {
        let intid = ack();
        if intid != SPURIOUS {
            return Ok(intid);
        }
        // SAFETY: waits for an interrupt; no memory effects.
        unsafe { asm!("dsb sy", "wfi", options(nomem, nostack)) };
        wakeups += 1;
        if wakeups > max_wakeups {
            return Err(fail!("no interrupt came ({wakeups} wake-ups)"));
        }
    }
}

/// The INTID of the `index`-th interrupt of the first node compatible with one of
/// `compatible` (a PPI: 16 + its number).
pub fn ppi_of(boot: &Boot, compatible: &[&str], index: usize) -> Result<u64, Fail> {
    let node = boot
        .fdt()
        .find_compatible(compatible)
        .ok_or_else(|| fail!("no {} node in the device tree", compatible[0]))?;
    let prop = node
        .property("interrupts")
        .ok_or_else(|| fail!("{} has no interrupts", node.name))?;
    // Three cells per specifier: type (1 = PPI), number, flags.
    let cell = |i: usize| -> Option<u64> {
        let b = prop.value.get(4 * i..4 * i + 4)?;
        Some(u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as u64)
    };
    match (cell(3 * index), cell(3 * index + 1)) {
        (Some(1), Some(n)) => Ok(16 + n),
        _ => Err(fail!("interrupt {index} of {} is not a PPI", node.name)),
    }
}
