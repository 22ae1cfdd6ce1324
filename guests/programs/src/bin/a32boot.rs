//! `a32boot`: not a guest but a bare-QEMU harness. QEMU's `-kernel` cannot start
//! a zImage in AArch32 on an AArch64 CPU under TCG, so this arm64 Image, entered
//! at EL2 (`-M virt,virtualization=on`), sets HCR_EL2.RW = 0 and enters the
//! AArch32 guest it finds at `AARCH32_IMAGE` (put there with `-device
//! loader,file=aarch32.img,addr=0x42000000`) in SVC mode at EL1, r2 = the DTB.
//! That gives the reference behaviour of an AArch32 EL1 guest on `cortex-a72`
//! with nothing but the architecture between it and QEMU. The guest's `HVC`
//! (PSCI) is forwarded to QEMU's firmware with `SMC`, the conduit QEMU uses
//! when it emulates EL2. It uses nothing from the runtime (which expects EL1).
//!
//! Prints nothing itself; entered at another EL than 2, or with no zImage magic
//! at `AARCH32_IMAGE`, it parks in `wfe`.

#![no_std]
#![no_main]
#![deny(unsafe_op_in_unsafe_fn)]
#![deny(clippy::undocumented_unsafe_blocks)]

/// Where the harness expects the AArch32 zImage (`-device loader,addr=`).
const AARCH32_IMAGE: u64 = 0x4200_0000;
/// SPSR for AArch32 SVC mode (M = 0b10011, M[4] = 1: AArch32) with A, I, F masked.
const SPSR_AARCH32_SVC: u64 = 0x1d3;
/// CPTR_EL2 RES1 bits (13:12, 9:0), no trap enabled.
const CPTR_EL2_RES1: u64 = 0x33ff;
/// CNTHCTL_EL2: EL1PCTEN | EL1PCEN, EL1 may use the physical counter and timer.
const CNTHCTL_EL1_ACCESS: u64 = 3;

core::arch::global_asm!(
    ".section .text.head, \"ax\"",
    ".global _start",
    "_start:",
    "    b       0f",                  // code0
    "    .word   0",                   // code1
    "    .quad   0x80000",             // text_offset
    "    .quad   __image_size",        // image_size
    "    .quad   0xa",                 // flags: LE, 4 KiB pages, anywhere
    "    .quad   0, 0, 0",             // res2..res4
    "    .ascii  \"ARM\\x64\"",        // magic
    "    .word   0",                   // res5
    "0:  mrs     x9, CurrentEL",
    "    cmp     x9, #8",
    "    b.ne    9f",
    "    mov     x19, x0",             // the DTB
    "    ldr     x20, ={image}",
    "    ldr     w9, [x20, #0x24]",
    "    ldr     w10, =0x016f2818",
    "    cmp     w9, w10",
    "    b.ne    9f",
    "    msr     hcr_el2, xzr",        // RW = 0: EL1 is AArch32; nothing trapped
    "    ldr     x9, ={cptr}",
    "    msr     cptr_el2, x9",
    "    mov     x9, #{cnthctl}",
    "    msr     cnthctl_el2, x9",
    "    msr     cntvoff_el2, xzr",
    "    adr     x9, 1f",
    "    msr     vbar_el2, x9",
    "    mov     x9, #{spsr}",
    "    msr     spsr_el2, x9",
    "    msr     elr_el2, x20",
    "    mov     x0, #0",
    "    mov     x1, #-1",             // machine type: none, DT boot
    "    mov     x2, x19",
    "    isb",
    "    eret",
    "9:  wfe",
    "    b       9b",
    // EL2 vectors: the lower-EL AArch32 synchronous entry (0x600) forwards an
    // HVC (EC 0x12) to the firmware as SMC; anything else parks.
    ".balign 2048",
    "1:",
    ".rept 12",
    "    b       9b",
    "    .balign 0x80",
    ".endr",
    "    mrs     x9, esr_el2",         // 0x600: synchronous, lower EL, AArch32
    "    lsr     x9, x9, #26",
    "    cmp     x9, #0x12",
    "    b.ne    9b",
    "    smc     #0",
    "    eret",
    "    .balign 0x80",
    ".rept 3",
    "    b       9b",
    "    .balign 0x80",
    ".endr",
    ".ltorg",
    image = const AARCH32_IMAGE,
    cptr = const CPTR_EL2_RES1,
    cnthctl = const CNTHCTL_EL1_ACCESS,
    spsr = const SPSR_AARCH32_SVC,
);

#[panic_handler]
fn panic(_: &core::panic::PanicInfo<'_>) -> ! {
    loop {}
}
