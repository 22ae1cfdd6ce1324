//! FP/SIMD register state of a guest. The hypervisor itself is built soft-float, so
//! these registers change only here, in the world switch (DESIGN.md section 8).

use core::mem::offset_of;

#[repr(C, align(16))]
#[derive(Clone, Copy, Debug)]
pub struct FpState {
    pub q: [u128; 32],
    pub fpsr: u64,
    pub fpcr: u64,
}

impl Default for FpState {
    fn default() -> Self {
        Self {
            q: [0; 32],
            fpsr: 0,
            fpcr: 0,
        }
    }
}

core::arch::global_asm!(
    ".arch_extension fp",
    ".arch_extension simd",
    ".global fpsimd_save",
    "fpsimd_save:",
    "stp q0, q1, [x0, #0]",
    "stp q2, q3, [x0, #32]",
    "stp q4, q5, [x0, #64]",
    "stp q6, q7, [x0, #96]",
    "stp q8, q9, [x0, #128]",
    "stp q10, q11, [x0, #160]",
    "stp q12, q13, [x0, #192]",
    "stp q14, q15, [x0, #224]",
    "stp q16, q17, [x0, #256]",
    "stp q18, q19, [x0, #288]",
    "stp q20, q21, [x0, #320]",
    "stp q22, q23, [x0, #352]",
    "stp q24, q25, [x0, #384]",
    "stp q26, q27, [x0, #416]",
    "stp q28, q29, [x0, #448]",
    "stp q30, q31, [x0, #480]",
    "mrs x1, fpsr",
    "mrs x2, fpcr",
    "add x0, x0, #{FPSR}",
    "stp x1, x2, [x0]",
    "ret",
    ".global fpsimd_restore",
    "fpsimd_restore:",
    "ldp q0, q1, [x0, #0]",
    "ldp q2, q3, [x0, #32]",
    "ldp q4, q5, [x0, #64]",
    "ldp q6, q7, [x0, #96]",
    "ldp q8, q9, [x0, #128]",
    "ldp q10, q11, [x0, #160]",
    "ldp q12, q13, [x0, #192]",
    "ldp q14, q15, [x0, #224]",
    "ldp q16, q17, [x0, #256]",
    "ldp q18, q19, [x0, #288]",
    "ldp q20, q21, [x0, #320]",
    "ldp q22, q23, [x0, #352]",
    "ldp q24, q25, [x0, #384]",
    "ldp q26, q27, [x0, #416]",
    "ldp q28, q29, [x0, #448]",
    "ldp q30, q31, [x0, #480]",
    "add x0, x0, #{FPSR}",
    "ldp x1, x2, [x0]",
    "msr fpsr, x1",
    "msr fpcr, x2",
    "ret",
    FPSR = const offset_of!(FpState, fpsr),
);

const _: () = assert!(offset_of!(FpState, fpcr) == offset_of!(FpState, fpsr) + 8);

extern "C" {
    fn fpsimd_save(state: *mut FpState);
    fn fpsimd_restore(state: *const FpState);
}

impl FpState {
    /// Saves the live FP/SIMD registers into `self`.
    pub fn save(&mut self) {
        // SAFETY: writes exactly one FpState through a valid, aligned pointer.
        unsafe { fpsimd_save(self) }
    }

    /// Loads `self` into the FP/SIMD registers.
    pub fn restore(&self) {
        // SAFETY: reads one FpState; the registers are not used by the (soft-float)
        // hypervisor, so changing them cannot disturb Rust code.
        unsafe { fpsimd_restore(self) }
    }
}

/// Whether CPTR_EL2.TFP is set on each CPU (so it is written only when it changes).
static TRAPPED: [core::sync::atomic::AtomicBool; 8] =
    [const { core::sync::atomic::AtomicBool::new(false) }; 8];

/// CPTR_EL2 with its RES1 bits, SVE trapped (TZ: SVE is hidden from guests) and
/// FP/SIMD trapped (TFP) or not.
const CPTR_EL2: u64 = 0x33ff;
const CPTR_TFP: u64 = 1 << 10;

/// Traps (or stops trapping) FP/SIMD at EL1/EL0 and EL2 with CPTR_EL2.TFP: set while
/// the loaded vCPU's FP/SIMD state is not in the registers (the lazy switch).
/// Nothing at EL2 may touch FP/SIMD while it is set; the hypervisor is built
/// soft-float, so only `FpState::save`/`restore` do, after clearing it.
#[inline(always)]
pub fn trap(on: bool) {
    use core::sync::atomic::Ordering::Relaxed;
    let Some(t) = TRAPPED.get(super::cpu_index()) else {
        return;
    };
    if t.load(Relaxed) == on {
        return;
    }
    let v = if on { CPTR_EL2 | CPTR_TFP } else { CPTR_EL2 };
    // SAFETY: CPTR_EL2 only controls traps of FP/SIMD and SVE to EL2; TFP is what
    // the lazy switch expects for the loaded vCPU, and nothing at EL2 uses FP/SIMD
    // while it is set.
    unsafe { core::arch::asm!("msr cptr_el2, {}", "isb", in(reg) v, options(nostack)) };
    t.store(on, Relaxed);
}
