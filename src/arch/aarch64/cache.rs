//! Cache maintenance by address range, for data the hypervisor writes that a guest or
//! the MMU then reads (DESIGN.md section 8).

use core::arch::asm;

fn dcache_line_size() -> usize {
    let ctr: u64;
    // SAFETY: reading CTR_EL0 has no side effects.
    unsafe { asm!("mrs {}, ctr_el0", out(reg) ctr, options(nomem, nostack)) };
    4 << ((ctr >> 16) & 0xf)
}

/// Cleans and invalidates `[start, start + len)` to the point of coherency.
pub fn clean_inval_dcache(start: usize, len: usize) {
    let line = dcache_line_size();
    let mut addr = start & !(line - 1);
    while addr < start + len {
        // SAFETY: DC CIVAC on a mapped address only writes back/invalidates cache lines.
        unsafe { asm!("dc civac, {}", in(reg) addr, options(nostack)) };
        addr += line;
    }
    // SAFETY: barriers have no memory-safety effects.
    unsafe { asm!("dsb sy", options(nostack)) };
}

/// Invalidates (discards) `[start, start + len)`: used at boot, before the caches are
/// turned on, so stale lines left by the boot loader cannot be written over our data.
pub fn invalidate_dcache(start: usize, len: usize) {
    let line = dcache_line_size();
    let mut addr = start & !(line - 1);
    while addr < start + len {
        // SAFETY: with the caches off, the memory holds the only valid copy.
        unsafe { asm!("dc ivac, {}", in(reg) addr, options(nostack)) };
        addr += line;
    }
    // SAFETY: barrier.
    unsafe { asm!("dsb sy", options(nostack)) };
}

/// Invalidates all instruction caches to the point of unification, Inner Shareable.
pub fn invalidate_icache_all() {
    // SAFETY: instruction cache invalidation is always safe.
    unsafe { asm!("dsb ish", "ic ialluis", "dsb ish", "isb", options(nostack)) };
}

/// Zeroes `[start, start + len)` of normal memory and cleans it to the point of
/// coherency (a guest may read it with its caches off). Uses `DC ZVA` where the
/// CPU allows it and the range is aligned to its block (64 bytes on the CPUs we
/// run on), else plain stores.
pub fn zero_to_poc(start: usize, len: usize) {
    let dczid: u64;
    // SAFETY: reading DCZID_EL0 has no side effects.
    unsafe { asm!("mrs {}, dczid_el0", out(reg) dczid, options(nomem, nostack)) };
    let block = 4usize << (dczid & 0xf);
    let prohibited = dczid & (1 << 4) != 0;
    if prohibited || start % block != 0 || len % block != 0 {
        // SAFETY: the caller hands us memory it owns (guest RAM, identity-mapped).
        unsafe { core::ptr::write_bytes(start as *mut u8, 0, len) };
    } else {
        let mut addr = start;
        while addr < start + len {
            // SAFETY: DC ZVA zeroes one block of the caller's normal memory.
            unsafe { asm!("dc zva, {}", in(reg) addr, options(nostack)) };
            addr += block;
        }
    }
    clean_inval_dcache(start, len);
}
