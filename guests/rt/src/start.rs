//! The Image header and the first instructions of every CPU.
//!
//! The guest is linked at address 0 and may be loaded anywhere (the header says
//! "anywhere" and the hypervisor places it at a 2 MiB-aligned RAM address plus
//! `text_offset`), so the boot CPU first applies the `R_AARCH64_RELATIVE` entries
//! of `.rela.dyn` for the address it runs at, then zeroes `.bss`, and only then
//! runs Rust: until the relocations are applied, any pointer held in data (vtables,
//! string slices in statics, `fmt` tables) is wrong. Secondaries started with PSCI
//! `CPU_ON` skip that and only set up their own stack and vectors.
//!
//! Stacks are a `.bss` array of [`STACK_SLOTS`] slots: slot 0 is the boot CPU's,
//! slot `n + 1` belongs to the CPU listed `n`-th in the DTB (see `smp`). With the
//! MMU off there are no guard pages, so the lowest word of each slot holds a
//! canary that the boot CPU checks before it reports PASS: an overflow (a debug
//! build uses ~24 KiB, a release build ~6 KiB) turns into a FAIL line instead of
//! silently corrupted statics.

use core::cell::UnsafeCell;
use core::mem::size_of;

/// Bytes of stack per CPU (exception frames nest on the same stack).
pub const STACK_SIZE: usize = 64 * 1024;
/// The value of an untouched slot's lowest word ("STACK_EN").
const CANARY: u64 = 0x5354_4143_4b5f_454e;
/// Number of stacks: the boot CPU plus up to `STACK_SLOTS - 1` secondaries.
pub const STACK_SLOTS: usize = 16;

/// `text_offset` in the Image header: where, above a 2 MiB-aligned base, loaders put us.
const TEXT_OFFSET: u64 = 0x8_0000;
/// Image header flags: little-endian (bit 0 = 0), 4 KiB pages (bits 1-2 = 1),
/// placeable anywhere in physical memory (bit 3 = 1).
const IMAGE_FLAGS: u64 = (1 << 1) | (1 << 3);
/// "ARM\x64" read as a little-endian u32.
const IMAGE_MAGIC: u32 = 0x644d_5241;
/// The only dynamic relocation a static-pie guest has.
const R_AARCH64_RELATIVE: u64 = 1027;
/// CPACR_EL1.FPEN = 0b11: FP/SIMD instructions do not trap at EL1 (the compiler
/// uses them for copies and formatting).
const CPACR_FPEN: u64 = 0b11 << 20;

/// The per-CPU stacks, only ever touched through `sp`.
#[repr(C, align(16))]
struct Stacks(UnsafeCell<[[u8; STACK_SIZE]; STACK_SLOTS]>);

// SAFETY: each CPU uses its own slot as its stack through `sp`; Rust code only
// touches the lowest word of each slot (the canary), with volatile accesses, which
// a CPU's stack reaches only by overflowing.
unsafe impl Sync for Stacks {}

fn canary(slot: usize) -> *mut u64 {
    assert!(slot < STACK_SLOTS);
    // In bounds: `slot` is checked, and each slot is 16-byte aligned (so is the word).
    STACKS
        .0
        .get()
        .cast::<[u8; STACK_SIZE]>()
        .wrapping_add(slot)
        .cast::<u64>()
}

/// Writes the canary at the bottom of every stack slot.
pub(crate) fn arm_canaries() {
    for slot in 0..STACK_SLOTS {
        // SAFETY: the lowest word of a slot, in bounds and aligned (see `canary`);
        // no CPU's stack is that deep unless it overflowed, which this detects.
        unsafe { canary(slot).write_volatile(CANARY) };
    }
}

/// The first stack slot whose canary was overwritten, if any.
pub(crate) fn overflowed_slot() -> Option<usize> {
    // SAFETY: as in `arm_canaries`.
    (0..STACK_SLOTS).find(|&slot| unsafe { canary(slot).read_volatile() } != CANARY)
}

static STACKS: Stacks = Stacks(UnsafeCell::new([[0; STACK_SIZE]; STACK_SLOTS]));

const _: () = assert!(size_of::<Stacks>() == STACK_SIZE * STACK_SLOTS);
const _: () = assert!(STACK_SIZE.is_multiple_of(16));

core::arch::global_asm!(
    // The 64-byte arm64 Image header (Documentation/arch/arm64/booting.rst).
    ".section .text.head, \"ax\"",
    ".global _start",
    "_start:",
    "    b       rt_primary_entry",       // code0
    "    .long   0",                      // code1
    "    .quad   {text_offset}",          // text_offset
    "    .quad   __image_size",           // image_size: up to the end of .bss
    "    .quad   {flags}",                // flags
    "    .quad   0",                      // res2
    "    .quad   0",                      // res3
    "    .quad   0",                      // res4
    "    .long   {magic}",                // magic "ARM\x64"
    "    .long   0",                      // res5 (PE/COFF offset: none)
    "",
    ".section .text.rt_entry, \"ax\"",
    // Boot CPU: x0 = DTB address, x1..x3 = 0, EL1h, MMU and caches off.
    "rt_primary_entry:",
    "    mov     x19, x0",
    "    bl      rt_cpu_setup",
    // x20 = the address we run at = the load offset (linked at 0).
    "    adrp    x20, __image_start",
    "    add     x20, x20, :lo12:__image_start",
    "    adrp    x1, __rela_start",
    "    add     x1, x1, :lo12:__rela_start",
    "    adrp    x2, __rela_end",
    "    add     x2, x2, :lo12:__rela_end",
    "1:  cmp     x1, x2",
    "    b.hs    2f",
    "    ldp     x3, x4, [x1], #16",      // r_offset, r_info
    "    ldr     x5, [x1], #8",           // r_addend
    "    cmp     x4, #{r_relative}",
    "    b.ne    rt_halt",                // anything else cannot be applied here
    "    add     x5, x5, x20",
    "    str     x5, [x20, x3]",
    "    b       1b",
    "2:  adrp    x1, __bss_start",
    "    add     x1, x1, :lo12:__bss_start",
    "    adrp    x2, __bss_end",
    "    add     x2, x2, :lo12:__bss_end",
    "3:  cmp     x1, x2",
    "    b.hs    4f",
    "    stp     xzr, xzr, [x1], #16",
    "    b       3b",
    "4:  adrp    x1, {stacks}",
    "    add     x1, x1, :lo12:{stacks}",
    "    mov     x2, #{stack_size}",
    "    add     sp, x1, x2",             // top of slot 0
    "    mov     x0, x19",
    "    bl      rt_main",                // defined by `rt::guest!`; never returns
    "    b       rt_halt",
    "",
    // Secondary CPU from PSCI CPU_ON: x0 = context id = stack slot.
    ".global rt_secondary_entry",
    "rt_secondary_entry:",
    "    mov     x19, x0",
    "    bl      rt_cpu_setup",
    "    cmp     x19, #{slots}",
    "    b.hs    rt_halt",
    "    adrp    x1, {stacks}",
    "    add     x1, x1, :lo12:{stacks}",
    "    add     x2, x19, #1",
    "    mov     x3, #{stack_size}",
    "    madd    x1, x2, x3, x1",         // top of slot x19
    "    mov     sp, x1",
    "    mov     x0, x19",
    "    bl      {secondary}",
    "    b       rt_halt",
    "",
    // Per-CPU state: interrupts masked, FP/SIMD usable, our vectors.
    // Clobbers x1 only: runs before the relocations.
    "rt_cpu_setup:",
    "    msr     daifset, #0xf",
    "    mrs     x1, cpacr_el1",
    "    orr     x1, x1, #{fpen}",
    "    msr     cpacr_el1, x1",
    "    adrp    x1, rt_vectors",
    "    add     x1, x1, :lo12:rt_vectors",
    "    msr     vbar_el1, x1",
    "    isb",
    "    ret",
    "",
    ".global rt_halt",
    "rt_halt:",
    "    wfe",
    "    b       rt_halt",
    text_offset = const TEXT_OFFSET,
    flags = const IMAGE_FLAGS,
    magic = const IMAGE_MAGIC,
    r_relative = const R_AARCH64_RELATIVE,
    stacks = sym STACKS,
    stack_size = const STACK_SIZE,
    slots = const STACK_SLOTS,
    fpen = const CPACR_FPEN,
    secondary = sym crate::smp::rt_secondary,
);
