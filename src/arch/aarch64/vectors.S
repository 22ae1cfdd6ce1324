/*
 * The EL2 exception vector table and the guest entry/exit path.
 *
 * Every exception pushes a TrapFrame (x0-x30, ELR_EL2, SPSR_EL2; layout and offsets
 * from the Rust struct in trap_frame.rs) on the EL2 stack. A synchronous exception
 * from a guest first goes to hv_fast_sync(frame), which finishes the exits that
 * need neither the vGIC nor the scheduler; everything else goes to
 * hv_exception(frame, kind), kind = vector index 0-15. For an exception from a guest
 * the handler may replace the frame's contents with another vCPU's: returning
 * restores whatever the frame holds and ERETs into it.
 */
.macro VENTRY kind
    .balign 0x80
    sub     sp, sp, #{FRAME_SIZE}
    stp     x0, x1, [sp, #0]
    mov     x1, #\kind
    b       exception_common
.endm

.section .text.vectors, "ax"
.balign 0x800
.global el2_vectors
el2_vectors:
    VENTRY 0    /* current EL, SP_EL0: sync */
    VENTRY 1    /* irq */
    VENTRY 2    /* fiq */
    VENTRY 3    /* serror */
    VENTRY 4    /* current EL, SP_ELx: sync */
    VENTRY 5
    VENTRY 6
    VENTRY 7
    VENTRY 8    /* lower EL, AArch64: sync */
    VENTRY 9
    VENTRY 10
    VENTRY 11
    VENTRY 12   /* lower EL, AArch32: sync */
    VENTRY 13
    VENTRY 14
    VENTRY 15

exception_common:
    stp     x2, x3, [sp, #16]
    stp     x4, x5, [sp, #32]
    stp     x6, x7, [sp, #48]
    stp     x8, x9, [sp, #64]
    stp     x10, x11, [sp, #80]
    stp     x12, x13, [sp, #96]
    stp     x14, x15, [sp, #112]
    stp     x16, x17, [sp, #128]
    stp     x18, x19, [sp, #144]
    stp     x20, x21, [sp, #160]
    stp     x22, x23, [sp, #176]
    stp     x24, x25, [sp, #192]
    stp     x26, x27, [sp, #208]
    stp     x28, x29, [sp, #224]
    mrs     x2, elr_el2
    mrs     x3, spsr_el2
    stp     x30, x2, [sp, #{X30}]
    str     x3, [sp, #{SPSR}]
    /* A synchronous exception from a guest (kind 8 or 12) tries the fast path
     * first; x19 (already in the frame) keeps the kind across the call. */
    mov     x19, x1
    orr     x2, x1, #4
    cmp     x2, #12
    b.ne    1f
    mov     x0, sp
    bl      hv_fast_sync
    cbnz    w0, 2f
1:  mov     x0, sp
    mov     x1, x19
    bl      hv_exception
2:  mov     x0, sp
    b       restore_frame

/* enter_guest(frame: *const TrapFrame) -> !: load the frame and ERET. */
.global enter_guest
enter_guest:
    b       restore_frame

/* Restores the TrapFrame at x0 and ERETs; the frame is popped only if it is at sp. */
restore_frame:
    ldp     x30, x2, [x0, #{X30}]
    ldr     x3, [x0, #{SPSR}]
    msr     elr_el2, x2
    msr     spsr_el2, x3
    ldp     x2, x3, [x0, #16]
    ldp     x4, x5, [x0, #32]
    ldp     x6, x7, [x0, #48]
    ldp     x8, x9, [x0, #64]
    ldp     x10, x11, [x0, #80]
    ldp     x12, x13, [x0, #96]
    ldp     x14, x15, [x0, #112]
    ldp     x16, x17, [x0, #128]
    ldp     x18, x19, [x0, #144]
    ldp     x20, x21, [x0, #160]
    ldp     x22, x23, [x0, #176]
    ldp     x24, x25, [x0, #192]
    ldp     x26, x27, [x0, #208]
    ldp     x28, x29, [x0, #224]
    mov     x1, sp
    cmp     x0, x1
    b.ne    1f
    add     sp, sp, #{FRAME_SIZE}
1:  ldp     x0, x1, [x0, #0]
    eret
    dsb     nsh
    isb
