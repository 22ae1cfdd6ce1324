/*
 * Entry point: the arm64 Image header, self-relocation, stacks, and the jump to Rust.
 *
 * Boot loaders (QEMU -kernel, U-Boot booti, the Raspberry Pi firmware) enter here at
 * EL2 with the MMU off and x0 = physical address of the device tree. The image is
 * linked at 0 as a PIE; before any Rust runs, the R_AARCH64_RELATIVE entries of
 * .rela.dyn are applied for the address we were actually loaded at, so nothing
 * assumes a load address. Only PC-relative instructions are used until then.
 */
.section .text.head, "ax"
.global _start
_start:
    /* The 64-byte arm64 Image header (Documentation/arch/arm64/booting.rst). */
    b       primary_entry           /* code0 */
    .word   0                       /* code1 */
    .quad   0                       /* text_offset: load at a 2 MiB boundary */
    .quad   __image_size            /* image_size: covers .bss, stacks and heap */
    .quad   0xa                     /* flags: little-endian, 4K pages, anywhere */
    .quad   0, 0, 0                 /* res2-res4 */
    .ascii  "ARM\x64"               /* magic */
    .word   0                       /* res5 */

primary_entry:
    mov     x19, x0                 /* the DTB, kept for Rust */
    adr     x20, _start             /* where we were loaded */

    /*
     * Caches per the boot protocol: the loader cleaned the loaded file to the point
     * of coherency, but the rest of image_size (.bss, stacks, heap) may still have
     * dirty lines from the firmware, which could be written back over what we write
     * here with the MMU off. Discard every line over the whole image first (Rust
     * discards them again before the MMU goes on, for stale clean lines), and any
     * stale instructions.
     */
    ic      iallu
    mrs     x3, ctr_el0
    ubfx    x3, x3, #16, #4         /* DminLine: log2(words) */
    mov     x4, #4
    lsl     x3, x4, x3              /* line size in bytes */
    sub     x4, x3, #1
    bic     x1, x20, x4             /* from _start, line-aligned */
    adrp    x2, __image_end
    add     x2, x2, :lo12:__image_end
0:  cmp     x1, x2
    b.hs    1f
    dc      ivac, x1
    add     x1, x1, x3
    b       0b
1:  dsb     sy
    isb

    /* Apply relocations: *(base + r_offset) = base + r_addend. */
    adrp    x1, __rela_start
    add     x1, x1, :lo12:__rela_start
    adrp    x2, __rela_end
    add     x2, x2, :lo12:__rela_end
10: cmp     x1, x2
    b.hs    2f
    ldp     x3, x4, [x1], #16       /* r_offset, r_info */
    ldr     x5, [x1], #8            /* r_addend */
    cmp     w4, #1027               /* R_AARCH64_RELATIVE: the only kind a PIE of ours has */
    b.ne    10b
    add     x5, x5, x20
    str     x5, [x20, x3]
    b       10b
2:
    /* Zero .bss (the stacks and the heap need no zeroing). */
    adrp    x1, __bss_start
    add     x1, x1, :lo12:__bss_start
    adrp    x2, __bss_end
    add     x2, x2, :lo12:__bss_end
3:  cmp     x1, x2
    b.hs    4f
    stp     xzr, xzr, [x1], #16
    b       3b
4:
    mov     x0, #0                  /* the boot CPU is logical CPU 0 */
    bl      cpu_setup_stack
    mrs     x2, CurrentEL
    lsr     x2, x2, #2
    cmp     x2, #2
    b.ne    5f                      /* Rust reports a wrong EL */
    bl      el2_early_setup
5:  mov     x0, x19                 /* dtb */
    mov     x1, x20                 /* load address */
    mrs     x2, CurrentEL
    lsr     x2, x2, #2              /* the EL we were entered at */
    bl      hv_primary_main         /* never returns */
6:  wfe
    b       6b

/*
 * Secondary CPUs, started by the boot CPU through PSCI CPU_ON with
 * context_id = logical CPU index. Relocation and .bss are already done.
 */
.global secondary_entry
secondary_entry:
    mov     x19, x0
    ic      iallu                   /* no stale instructions from the firmware */
    dsb     nsh
    isb
    bl      cpu_setup_stack
    bl      el2_early_setup
    mov     x0, x19
    bl      hv_secondary_main       /* never returns */
7:  wfe
    b       7b

/*
 * Secondary CPUs released from a spin table (the Raspberry Pi firmware's stub,
 * QEMU raspi4b's): they arrive with no context (x0 = 0), so the logical index is
 * this CPU's position in hv_cpu_mpidrs, which the boot CPU filled and cleaned to
 * memory before the release (we run with the MMU and caches off here). A CPU not
 * in the table parks.
 */
.global spin_table_entry
spin_table_entry:
    mrs     x1, mpidr_el1
    ldr     x2, =0xff00ffffff       /* Aff3..Aff0 */
    and     x1, x1, x2
    adrp    x2, hv_cpu_mpidrs
    add     x2, x2, :lo12:hv_cpu_mpidrs
    mov     x0, #0
8:  ldr     x3, [x2, x0, lsl #3]
    cmp     x3, x1
    b.eq    secondary_entry
    add     x0, x0, #1
    cmp     x0, #8                  /* the table's length (HV_MAX_CPUS) */
    b.lo    8b
9:  wfe
    b       9b

/* sp = top of the 64 KiB stack of logical CPU x0. Clobbers x1, x2. */
cpu_setup_stack:
    adrp    x1, __stacks_start
    add     x1, x1, :lo12:__stacks_start
    add     x2, x0, #1
    lsl     x2, x2, #16
    add     x1, x1, x2
    mov     sp, x1
    ret

/*
 * EL2 state every CPU needs before Rust: our vectors, a known SCTLR_EL2 (MMU and
 * caches off, little-endian, RES1 bits set), and no traps of FP/SIMD to EL2 at EL2.
 * Clobbers x0.
 */
el2_early_setup:
    adrp    x0, el2_vectors
    add     x0, x0, :lo12:el2_vectors
    msr     vbar_el2, x0
    ldr     x0, =0x30c50830
    msr     sctlr_el2, x0
    mov     x0, #0x33ff             /* CPTR_EL2: RES1 bits, TFP = 0 */
    msr     cptr_el2, x0
    isb
    ret
