//! EL1 exception vectors: record every exception, let an armed probe continue,
//! and fail loudly on anything else.
//!
//! Tests make a guest do things that fault on purpose (read an address that is
//! not RAM, execute an undefined instruction) and check what the hypervisor made
//! of it. So a synchronous exception that a [`probe`](crate::probe) has armed for,
//! with class UNDEF (EC 0x00) or data abort (EC 0x25), skips the faulting
//! instruction (`ELR_EL1 += 4`) and returns; the probe then reads the record.
//! Every other exception prints ESR/ELR/FAR/SPSR and ends the guest with a FAIL
//! line, because a guest that silently hangs makes a test wait for its deadline.

use core::mem::{offset_of, size_of};
use core::sync::atomic::{AtomicU8, AtomicU64, Ordering};

use crate::sysreg;

/// Exception class: unknown reason (UDF and other undefined instructions).
pub const EC_UNKNOWN: u64 = 0x00;
/// Exception class: data abort taken without a change in exception level.
pub const EC_DATA_ABORT_SAME_EL: u64 = 0x25;
/// Vector index of a synchronous exception from the current EL using SP_EL1.
const SYNC_CURRENT_SPX: u64 = 4;

/// What the handler saves: the general registers, ELR and SPSR. The assembly uses
/// the offsets of this struct, never hand-kept numbers.
#[repr(C)]
pub struct Frame {
    /// x0 to x30.
    pub x: [u64; 31],
    /// ELR_EL1: where the exception returns to.
    pub elr: u64,
    /// SPSR_EL1.
    pub spsr: u64,
    _pad: u64,
}

const _: () = assert!(size_of::<Frame>().is_multiple_of(16));

/// The last exception taken, as the handler saw it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Taken {
    /// ESR_EL1.
    pub esr: u64,
    /// FAR_EL1 (meaningful for aborts; check [`Taken::far_valid`]).
    pub far: u64,
    /// ELR_EL1: the faulting instruction.
    pub elr: u64,
}

impl Taken {
    /// Exception class, ESR bits [31:26].
    pub fn ec(&self) -> u64 {
        (self.esr >> 26) & 0x3f
    }

    /// Data/instruction fault status code, ESR ISS bits [5:0] (for aborts).
    pub fn fsc(&self) -> u64 {
        self.esr & 0x3f
    }

    /// For aborts: FAR holds the faulting address (ISS.FnV, bit 10, clear).
    pub fn far_valid(&self) -> bool {
        self.esr & (1 << 10) == 0
    }
}

/// What the handler may skip: nothing ([`ARM_OFF`]), an UNDEF or a data abort
/// ([`ARM_UNDEF_ABORT`]), or any synchronous exception from EL1 ([`ARM_ANY_SYNC`]).
static ARMED: AtomicU8 = AtomicU8::new(ARM_OFF);
const ARM_OFF: u8 = 0;
const ARM_UNDEF_ABORT: u8 = 1;
const ARM_ANY_SYNC: u8 = 2;
static COUNT: AtomicU64 = AtomicU64::new(0);
static LAST_ESR: AtomicU64 = AtomicU64::new(0);
static LAST_FAR: AtomicU64 = AtomicU64::new(0);
static LAST_ELR: AtomicU64 = AtomicU64::new(0);

/// Allows (or stops allowing) the next expected synchronous exception to be skipped.
pub(crate) fn arm(armed: bool) {
    ARMED.store(
        if armed { ARM_UNDEF_ABORT } else { ARM_OFF },
        Ordering::SeqCst,
    );
}

/// Allows any synchronous exception taken from EL1 to be skipped (used by the
/// system-register sweep, where an access may also be trapped as SVE, SME, ...).
pub(crate) fn arm_any_sync() {
    ARMED.store(ARM_ANY_SYNC, Ordering::SeqCst);
}

/// How many exceptions this guest has taken.
pub fn count() -> u64 {
    COUNT.load(Ordering::SeqCst)
}

/// The most recent exception, if any was taken.
pub fn last() -> Option<Taken> {
    (count() > 0).then(|| Taken {
        esr: LAST_ESR.load(Ordering::SeqCst),
        far: LAST_FAR.load(Ordering::SeqCst),
        elr: LAST_ELR.load(Ordering::SeqCst),
    })
}

/// Called from the vectors with the vector index (0-15) and the saved frame.
extern "C" fn rt_exception(kind: u64, frame: &mut Frame) {
    let taken = Taken {
        esr: sysreg::esr(),
        far: sysreg::far(),
        elr: frame.elr,
    };
    LAST_ESR.store(taken.esr, Ordering::SeqCst);
    LAST_FAR.store(taken.far, Ordering::SeqCst);
    LAST_ELR.store(taken.elr, Ordering::SeqCst);
    // Load and store, not fetch_add: exclusives are not dependable with the MMU off.
    COUNT.store(COUNT.load(Ordering::SeqCst) + 1, Ordering::SeqCst);

    let expected = kind == SYNC_CURRENT_SPX
        && match ARMED.load(Ordering::SeqCst) {
            ARM_UNDEF_ABORT => matches!(taken.ec(), EC_UNKNOWN | EC_DATA_ABORT_SAME_EL),
            ARM_ANY_SYNC => true,
            _ => false,
        };
    if expected {
        // A probe executes exactly one 4-byte instruction that may fault.
        frame.elr += 4;
        return;
    }
    crate::say!(
        "unexpected exception: {} ESR=0x{:x} EC=0x{:02x} ELR=0x{:x} FAR=0x{:x} SPSR=0x{:x}",
        kind_name(kind),
        taken.esr,
        taken.ec(),
        taken.elr,
        taken.far,
        frame.spsr
    );
    crate::boot::fatal(crate::fail!(
        "unexpected exception EC=0x{:02x} at ELR=0x{:x}",
        taken.ec(),
        taken.elr
    ));
}

fn kind_name(kind: u64) -> &'static str {
    const NAMES: [&str; 16] = [
        "sync (EL1t)",
        "irq (EL1t)",
        "fiq (EL1t)",
        "serror (EL1t)",
        "sync (EL1h)",
        "irq (EL1h)",
        "fiq (EL1h)",
        "serror (EL1h)",
        "sync (EL0 64)",
        "irq (EL0 64)",
        "fiq (EL0 64)",
        "serror (EL0 64)",
        "sync (EL0 32)",
        "irq (EL0 32)",
        "fiq (EL0 32)",
        "serror (EL0 32)",
    ];
    NAMES.get(kind as usize).copied().unwrap_or("?")
}

core::arch::global_asm!(
    ".macro rt_ventry kind",
    "    .balign 0x80",
    "    sub     sp, sp, #{frame}",
    "    stp     x0, x1, [sp, #0]",
    "    mov     x0, #\\kind",
    "    b       rt_exception_common",
    ".endm",
    "",
    ".section .text.rt_vectors, \"ax\"",
    ".balign 2048",
    ".global rt_vectors",
    "rt_vectors:",
    "    rt_ventry 0",
    "    rt_ventry 1",
    "    rt_ventry 2",
    "    rt_ventry 3",
    "    rt_ventry 4",
    "    rt_ventry 5",
    "    rt_ventry 6",
    "    rt_ventry 7",
    "    rt_ventry 8",
    "    rt_ventry 9",
    "    rt_ventry 10",
    "    rt_ventry 11",
    "    rt_ventry 12",
    "    rt_ventry 13",
    "    rt_ventry 14",
    "    rt_ventry 15",
    "",
    "rt_exception_common:",
    "    stp     x2, x3, [sp, #16]",
    "    stp     x4, x5, [sp, #32]",
    "    stp     x6, x7, [sp, #48]",
    "    stp     x8, x9, [sp, #64]",
    "    stp     x10, x11, [sp, #80]",
    "    stp     x12, x13, [sp, #96]",
    "    stp     x14, x15, [sp, #112]",
    "    stp     x16, x17, [sp, #128]",
    "    stp     x18, x19, [sp, #144]",
    "    stp     x20, x21, [sp, #160]",
    "    stp     x22, x23, [sp, #176]",
    "    stp     x24, x25, [sp, #192]",
    "    stp     x26, x27, [sp, #208]",
    "    stp     x28, x29, [sp, #224]",
    "    str     x30, [sp, #240]",
    "    mrs     x2, elr_el1",
    "    mrs     x3, spsr_el1",
    "    stp     x2, x3, [sp, #{elr}]",
    "    mov     x1, sp",
    "    bl      {handler}",
    "    ldp     x2, x3, [sp, #{elr}]",
    "    msr     elr_el1, x2",
    "    msr     spsr_el1, x3",
    "    ldp     x0, x1, [sp, #0]",
    "    ldp     x2, x3, [sp, #16]",
    "    ldp     x4, x5, [sp, #32]",
    "    ldp     x6, x7, [sp, #48]",
    "    ldp     x8, x9, [sp, #64]",
    "    ldp     x10, x11, [sp, #80]",
    "    ldp     x12, x13, [sp, #96]",
    "    ldp     x14, x15, [sp, #112]",
    "    ldp     x16, x17, [sp, #128]",
    "    ldp     x18, x19, [sp, #144]",
    "    ldp     x20, x21, [sp, #160]",
    "    ldp     x22, x23, [sp, #176]",
    "    ldp     x24, x25, [sp, #192]",
    "    ldp     x26, x27, [sp, #208]",
    "    ldp     x28, x29, [sp, #224]",
    "    ldr     x30, [sp, #240]",
    "    add     sp, sp, #{frame}",
    "    eret",
    frame = const size_of::<Frame>(),
    elr = const offset_of!(Frame, elr),
    handler = sym rt_exception,
);

// The register offsets written out above: x[n] at n * 8, ELR and SPSR adjacent.
const _: () = assert!(offset_of!(Frame, x) == 0);
const _: () = assert!(offset_of!(Frame, elr) == 31 * 8);
const _: () = assert!(offset_of!(Frame, spsr) == offset_of!(Frame, elr) + 8);
