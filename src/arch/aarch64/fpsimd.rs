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
