//! Single-instruction probes that may fault: the way a guest asks "what happens
//! if I touch this?" and carries on.
//!
//! Each probe arms the exception handler, executes exactly one instruction that
//! may take a synchronous exception (so skipping 4 bytes resumes right after it),
//! disarms, and reports whether an exception was taken and what it was.

use core::arch::asm;

use crate::exception::{self, Taken};

/// Runs `f` with the handler armed; `Err` with the exception if one was taken.
fn armed<T>(f: impl FnOnce() -> T) -> Result<T, Taken> {
    let before = exception::count();
    exception::arm(true);
    let value = f();
    exception::arm(false);
    match exception::last() {
        Some(taken) if exception::count() != before => Err(taken),
        _ => Ok(value),
    }
}

/// Runs `f` with the handler armed for an UNDEF (EC 0x00) or a data abort (EC
/// 0x25); `Err` with the exception if one was taken. Any other exception fails
/// the guest.
///
/// # Safety
/// `f` must execute at most one instruction that may fault, a 4-byte one whose
/// skipping (the handler resumes at the next instruction) leaves `f` sound: e.g.
/// an `mrs` into an output register that was initialised.
pub unsafe fn catch<T>(f: impl FnOnce() -> T) -> Result<T, Taken> {
    armed(f)
}

/// Like [`catch`], but any synchronous exception taken from EL1 (whatever its
/// class: UNDEF, an SVE or SME access trap, ...) is skipped and returned.
///
/// # Safety
/// As for [`catch`].
pub unsafe fn catch_any<T>(f: impl FnOnce() -> T) -> Result<T, Taken> {
    let before = exception::count();
    exception::arm_any_sync();
    let value = f();
    exception::arm(false);
    match exception::last() {
        Some(taken) if exception::count() != before => Err(taken),
        _ => Ok(value),
    }
}

/// Reads the 32-bit word at physical address `addr` (the MMU is off).
///
/// # Safety
/// `addr` must be 4-byte aligned and reading it must have no side effect the
/// caller does not intend (it may be a device register or nothing at all; an
/// abort is reported as `Err`).
pub unsafe fn read_u32(addr: u64) -> Result<u32, Taken> {
    armed(|| {
        let mut value: u32 = 0;
        // SAFETY: the caller vouches for the address; a fault is caught by the
        // armed handler, which skips this one instruction and leaves `value` 0.
        unsafe {
            asm!("ldr {v:w}, [{a}]", a = in(reg) addr, v = inout(reg) value, options(nostack));
        }
        value
    })
}

/// Executes `UDF #0`, which must raise an UNDEF (EC 0x00) exception.
pub fn undefined() -> Result<(), Taken> {
    armed(|| {
        // SAFETY: UDF only raises an exception, which the armed handler skips.
        unsafe { asm!("udf #0", options(nostack)) }
    })
}
