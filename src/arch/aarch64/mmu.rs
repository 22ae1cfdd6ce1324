//! The hypervisor's own stage-1 translation (EL2 regime): an identity map of RAM
//! (normal, write-back) and of the devices the hypervisor drives (device-nGnRE),
//! built with `aarch64-paging`. The MMU and caches must be on before any lock is
//! taken: exclusives on Device memory (all memory with the MMU off) need not work.

use aarch64_cpu::registers::{
    ReadWriteable, Readable, Writeable, ID_AA64MMFR0_EL1, MAIR_EL2, SCTLR_EL2, TCR_EL2,
};
use aarch64_paging::{
    descriptor::El23Attributes,
    idmap::IdMap,
    paging::{El2, MemoryRegion},
};
use core::arch::asm;
use core::sync::atomic::{AtomicU64, Ordering};

/// MAIR_EL2 index 0: Device-nGnRE; index 1: Normal, inner/outer write-back,
/// Tagged (0xf0) when the CPU has FEAT_MTE2 so that EL2 can read and write the
/// allocation tags of guest RAM (`mte`; SCTLR_EL2.TCF stays 0, so nothing EL2
/// does is tag checked), else plain (0xff; 0xf0 is reserved without MTE2).
fn mair() -> u64 {
    let normal = if super::mte::present() { 0xf0 } else { 0xff };
    0x04 | (normal << 8)
}

pub const NORMAL: El23Attributes = El23Attributes::VALID
    .union(El23Attributes::ATTRIBUTE_INDEX_1)
    .union(El23Attributes::INNER_SHAREABLE)
    .union(El23Attributes::ACCESSED)
    .union(El23Attributes::USER_RES1);

pub const DEVICE: El23Attributes = El23Attributes::VALID
    .union(El23Attributes::ATTRIBUTE_INDEX_0)
    .union(El23Attributes::ACCESSED)
    .union(El23Attributes::USER_RES1)
    .union(El23Attributes::XN);

/// TTBR0_EL2 of the shared map, so secondary CPUs can turn on the same translation.
static TTBR0: AtomicU64 = AtomicU64::new(0);

fn tcr() -> u64 {
    let pa_range = ID_AA64MMFR0_EL1.read(ID_AA64MMFR0_EL1::PARange).min(5);
    // RES1 bits 31 and 23; PS = PARange; SH0 inner; ORGN0/IRGN0 write-back
    // write-allocate; TG0 4K; T0SZ 16 (48-bit VA, root level 0).
    (1 << 31) | (1 << 23) | (pa_range << 16) | (3 << 12) | (1 << 10) | (1 << 8) | 16
}

/// Builds the identity map: `ram` as normal memory, `devices` as device memory.
pub fn build(ram: &[(usize, usize)], devices: &[(usize, usize)]) -> IdMap<El2> {
    let mut map = IdMap::new(0, El2);
    for &(start, size) in ram {
        map.map_range(&MemoryRegion::new(start, start + size), NORMAL)
            .expect("identity map of RAM");
    }
    for &(start, size) in devices {
        map.map_range(&MemoryRegion::new(start, start + size), DEVICE)
            .expect("identity map of a device");
    }
    map
}

/// Turns on the MMU and caches on this CPU with `map`, and records it for the
/// secondaries. `map` must stay alive for ever (the caller leaks it).
pub fn enable(map: &mut IdMap<El2>) {
    MAIR_EL2.set(mair());
    TCR_EL2.set(tcr());
    // SAFETY: the map identity-maps all RAM (code, data, stacks, heap) and the devices
    // in use, so every address in use keeps its meaning.
    unsafe { map.activate() };
    TTBR0.store(map.root_address().0 as u64, Ordering::SeqCst);
    turn_on();
    // Secondaries read TTBR0 with their MMU and caches off: make it reach memory.
    super::cache::clean_inval_dcache(&TTBR0 as *const _ as usize, 8);
    MMU_ON.store(true, Ordering::SeqCst);
}

/// Turns on the map recorded by `enable` on a secondary CPU.
pub fn enable_secondary() {
    MAIR_EL2.set(mair());
    TCR_EL2.set(tcr());
    let ttbr = TTBR0.load(Ordering::SeqCst);
    // SAFETY: the same identity map as the boot CPU's, already complete.
    unsafe { asm!("msr ttbr0_el2, {}", "isb", in(reg) ttbr) };
    turn_on();
}

fn turn_on() {
    // SAFETY: invalidates stale EL2 translations before the MMU goes on.
    unsafe { asm!("tlbi alle2", "dsb ish", "isb", options(nostack)) };
    SCTLR_EL2.modify(SCTLR_EL2::M::Enable + SCTLR_EL2::C::Cacheable + SCTLR_EL2::I::Cacheable);
    if super::mte::present() {
        // SAFETY: EL2 may access allocation tags (ATA); TCF stays 0, so no access
        // of the hypervisor's is ever tag checked.
        unsafe {
            asm!(
                "mrs {t}, sctlr_el2",
                "orr {t}, {t}, {ata}",
                "msr sctlr_el2, {t}",
                t = out(reg) _,
                ata = in(reg) super::mte::SCTLR_EL2_ATA,
                options(nostack)
            )
        };
    }
    // SAFETY: synchronises the new translation regime.
    unsafe { asm!("isb", options(nostack)) };
}

/// The MMU is on (so locks, which need exclusives on cacheable memory, work). Set by
/// the boot CPU; secondaries take no lock before their own `enable_secondary`. A flag
/// rather than SCTLR_EL2, which cannot be read if we were wrongly entered at EL1.
pub fn is_on() -> bool {
    MMU_ON.load(Ordering::Relaxed)
}

static MMU_ON: core::sync::atomic::AtomicBool = core::sync::atomic::AtomicBool::new(false);
