@ aarch32: an AArch32 EL1 (PL1, SVC mode) guest in A32 assembly.
@
@ Entry (Linux ARM boot protocol, as QEMU -kernel and the hypervisor start a
@ zImage): MMU and caches off, r0 = 0, r1 = machine type, r2 = DTB address.
@ Everything is PC-relative, so the image runs wherever it is loaded.
@
@ Output lines (CRLF), on the PL011 at 0x09000000 (QEMU virt):
@   aarch32: hello from AArch32 mode=0x<cpsr mode> midr=0x<MIDR>
@   aarch32: <NAME> wrote 0x<v> read 0x<v> ok|MISMATCH   (SCTLR, TTBR0, TTBR0_64,
@            TTBCR, DACR, CONTEXTIDR, PRRR, NMRR)
@   aarch32: PASS | aarch32: FAIL <n> check(s) failed | aarch32: FAIL exception ...
@ then PSCI SYSTEM_OFF (0x84000008) with HVC #0.
@
@ Register use: r10 = UART base, r9 = number of failed checks, r4-r8 callee-saved.

    .syntax unified
    .arm

    .equ UART_BASE,   0x09000000
    .equ UART_DR,     0x00
    .equ UART_FR,     0x18
    .equ UART_CR,     0x30
    .equ FR_TXFF,     0x20
    .equ CR_ENABLE,   0x101          @ UARTEN | TXE
    .equ PSCI_SYSTEM_OFF, 0x84000008

@ Loads the address of `label` into `reg`, PC-relatively (any distance).
    .macro ladr reg, label
    ldr     \reg, 1001f
1000: add   \reg, pc, \reg
    b       1002f
1001: .word \label - (1000b + 8)
1002:
    .endm

@ Prints "aarch32: <NAME> wrote .. read .." for a 32-bit register: `name`
@ label, written value in r5, read value in r6.
    .macro check name
    ladr    r0, \name
    mov     r1, r5
    mov     r2, r6
    bl      report
    .endm

    .section .text.head, "ax"
    .global _start
_start:
    .rept 8
    mov     r0, r0                   @ 0x00-0x1c: the zImage's NOPs
    .endr
    b       entry                    @ 0x20
    .word   0x016f2818               @ 0x24: zImage magic
    .word   0                        @ 0x28: start address (0: position independent)
    .word   _image_end               @ 0x2c: end address (= size, linked at 0)
    .word   0x04030201               @ 0x30: little-endian

    .text
entry:
    cpsid   aif
    ladr    sp, stack_top
    movw    r10, #:lower16:UART_BASE
    movt    r10, #:upper16:UART_BASE
    mov     r9, #0
    ladr    r0, vectors
    mcr     p15, 0, r0, c12, c0, 0   @ VBAR
    isb
    @ QEMU's bare -kernel leaves the UART disabled: enable it if so.
    ldr     r0, [r10, #UART_CR]
    movw    r2, #CR_ENABLE
    and     r1, r0, r2
    cmp     r1, r2
    orrne   r0, r0, r2
    strne   r0, [r10, #UART_CR]

    ladr    r0, s_hello
    bl      prefix_puts
    mrs     r0, cpsr
    and     r0, r0, #0x1f
    bl      puthex
    ladr    r0, s_midr
    bl      puts
    mrc     p15, 0, r0, c0, c0, 0    @ MIDR
    bl      puthex
    bl      newline

    @ SCTLR: flip nTWI (16) and nTWE (18), which only affect PL0; M, C, I stay.
    mrc     p15, 0, r4, c1, c0, 0
    eor     r5, r4, #0x50000
    mcr     p15, 0, r5, c1, c0, 0
    isb
    mrc     p15, 0, r6, c1, c0, 0
    check   s_sctlr
    mcr     p15, 0, r4, c1, c0, 0
    isb

    @ TTBCR first (short descriptors, EAE = 0, N = 2), then TTBR0 in both forms.
    mov     r5, #2
    mcr     p15, 0, r5, c2, c0, 2
    isb
    mrc     p15, 0, r6, c2, c0, 2
    check   s_ttbcr

    ldr     r5, =0x41234008          @ BADDR, RGN = 01 (outer WBWA)
    mcr     p15, 0, r5, c2, c0, 0
    isb
    mrc     p15, 0, r6, c2, c0, 0
    check   s_ttbr0

    ldr     r4, =0x45678000          @ low word: BADDR
    ldr     r5, =0x00ab0000          @ high word: ASID 0xab (bits 55:48)
    mcrr    p15, 0, r4, r5, c2
    isb
    mrrc    p15, 0, r6, r7, c2
    ladr    r0, s_ttbr0_64
    bl      report64

    ldr     r5, =0x55555555          @ every domain: client
    mcr     p15, 0, r5, c3, c0, 0
    isb
    mrc     p15, 0, r6, c3, c0, 0
    check   s_dacr

    ldr     r5, =0x12345678
    mcr     p15, 0, r5, c13, c0, 1
    isb
    mrc     p15, 0, r6, c13, c0, 1
    check   s_contextidr

    ldr     r5, =0xff0a81a8          @ Linux's PRRR
    mcr     p15, 0, r5, c10, c2, 0
    isb
    mrc     p15, 0, r6, c10, c2, 0
    check   s_prrr

    ldr     r5, =0x40e040e0          @ Linux's NMRR
    mcr     p15, 0, r5, c10, c2, 1
    isb
    mrc     p15, 0, r6, c10, c2, 1
    check   s_nmrr

    cmp     r9, #0
    bne     1f
    ladr    r0, s_pass
    bl      prefix_puts
    bl      newline
    b       system_off
1:  ladr    r0, s_fail
    bl      prefix_puts
    mov     r0, r9
    bl      putdec
    ladr    r0, s_failed
    bl      puts
    bl      newline
    b       system_off

system_off:
    ldr     r0, =PSCI_SYSTEM_OFF
    mov     r1, #0
    mov     r2, #0
    mov     r3, #0
    .inst   0xe1400070               @ hvc #0
1:  wfe
    b       1b

@ report: r0 = name, r1 = written, r2 = read. Counts a mismatch in r9.
report:
    push    {r4, r5, r6, lr}
    mov     r5, r1
    mov     r6, r2
    bl      prefix_puts
    ladr    r0, s_wrote
    bl      puts
    mov     r0, r5
    bl      puthex
    ladr    r0, s_read
    bl      puts
    mov     r0, r6
    bl      puthex
    cmp     r5, r6
    bl      verdict
    pop     {r4, r5, r6, pc}

@ report64: r0 = name, r4/r5 = written low/high, r6/r7 = read low/high.
report64:
    push    {r4, r5, r6, r7, r8, lr}
    bl      prefix_puts
    ladr    r0, s_wrote
    bl      puts
    mov     r0, r4
    mov     r1, r5
    bl      puthex64
    ladr    r0, s_read
    bl      puts
    mov     r0, r6
    mov     r1, r7
    bl      puthex64
    cmp     r4, r6
    cmpeq   r5, r7
    bl      verdict
    pop     {r4, r5, r6, r7, r8, pc}

@ verdict: flags from a comparison (EQ: ok). Prints " ok" or " MISMATCH", CRLF.
verdict:
    push    {r4, lr}
    ladr    r0, s_ok
    beq     1f
    add     r9, r9, #1
    ladr    r0, s_mismatch
1:  bl      puts
    bl      newline
    pop     {r4, pc}

@ prefix_puts: prints "aarch32: " then the string at r0.
prefix_puts:
    push    {r4, lr}
    mov     r4, r0
    ladr    r0, s_prefix
    bl      puts
    mov     r0, r4
    bl      puts
    pop     {r4, pc}

newline:
    push    {r4, lr}
    mov     r0, #'\r'
    bl      putc
    mov     r0, #'\n'
    bl      putc
    pop     {r4, pc}

@ puts: prints the NUL-terminated string at r0.
puts:
    push    {r4, lr}
    mov     r4, r0
1:  ldrb    r0, [r4], #1
    cmp     r0, #0
    popeq   {r4, pc}
    bl      putc
    b       1b

@ putc: prints the character in r0 (clobbers r3).
putc:
1:  ldr     r3, [r10, #UART_FR]
    tst     r3, #FR_TXFF
    bne     1b
    str     r0, [r10, #UART_DR]
    bx      lr

@ puthex: "0x" + r0 in lowercase hex, no leading zeros.
puthex:
    push    {r4, lr}
    mov     r4, r0
    mov     r0, #'0'
    bl      putc
    mov     r0, #'x'
    bl      putc
    mov     r0, r4
    mov     r1, #0
    bl      hexdigits
    pop     {r4, pc}

@ puthex64: "0x" + r1:r0 in lowercase hex, no leading zeros.
puthex64:
    push    {r4, r5, r6, lr}
    mov     r4, r0
    mov     r5, r1
    mov     r0, #'0'
    bl      putc
    mov     r0, #'x'
    bl      putc
    mov     r6, #0
    cmp     r5, #0
    beq     1f
    mov     r0, r5
    mov     r1, #0
    bl      hexdigits
    mov     r6, #1                   @ the low word then needs all 8 digits
1:  mov     r0, r4
    mov     r1, r6
    bl      hexdigits
    pop     {r4, r5, r6, pc}

@ hexdigits: r0 in hex; r1 != 0: all 8 digits, else no leading zeros.
hexdigits:
    push    {r4, r5, r6, lr}
    mov     r4, r0
    mov     r6, r1
    mov     r5, #28
1:  mov     r0, r4, lsr r5
    and     r0, r0, #15
    orr     r6, r6, r0               @ non-zero once a digit was printed
    cmp     r6, #0
    bne     2f
    cmp     r5, #0
    bne     3f                       @ a leading zero, not the last digit
2:  cmp     r0, #10
    addlo   r0, r0, #'0'
    addhs   r0, r0, #('a' - 10)
    bl      putc
    mov     r6, #1
3:  subs    r5, r5, #4
    bpl     1b
    pop     {r4, r5, r6, pc}

@ putdec: r0 (< 100) in decimal.
putdec:
    push    {r4, lr}
    mov     r4, r0
    cmp     r4, #10
    blo     2f
    mov     r0, #'0'
1:  add     r0, r0, #1
    sub     r4, r4, #10
    cmp     r4, #10
    bhs     1b
    bl      putc
2:  add     r0, r4, #'0'
    bl      putc
    pop     {r4, pc}

@ Exception vectors: any exception is a failure (nothing here should fault).
    .balign 32
vectors:
    mov     r4, #0
    b       fault
    mov     r4, #1                   @ undefined instruction
    b       fault
    mov     r4, #2                   @ supervisor call
    b       fault
    mov     r4, #3                   @ prefetch abort
    b       fault
    mov     r4, #4                   @ data abort
    b       fault
    mov     r4, #5
    b       fault
    mov     r4, #6                   @ IRQ
    b       fault
    mov     r4, #7                   @ FIQ
    b       fault

@ fault: r4 = vector index, lr = return address of the exception mode.
fault:
    mov     r5, lr
    ladr    sp, fault_stack_top
    ladr    r0, s_exception
    bl      prefix_puts
    mov     r0, r4
    bl      putdec
    ladr    r0, s_at
    bl      puts
    mov     r0, r5
    bl      puthex
    bl      newline
    b       system_off

    .ltorg

s_prefix:     .asciz "aarch32: "
s_hello:      .asciz "hello from AArch32 mode="
s_midr:       .asciz " midr="
s_wrote:      .asciz " wrote "
s_read:       .asciz " read "
s_ok:         .asciz " ok"
s_mismatch:   .asciz " MISMATCH"
s_sctlr:      .asciz "SCTLR"
s_ttbr0:      .asciz "TTBR0"
s_ttbr0_64:   .asciz "TTBR0_64"
s_ttbcr:      .asciz "TTBCR"
s_dacr:       .asciz "DACR"
s_contextidr: .asciz "CONTEXTIDR"
s_prrr:       .asciz "PRRR"
s_nmrr:       .asciz "NMRR"
s_pass:       .asciz "PASS"
s_fail:       .asciz "FAIL "
s_failed:     .asciz " check(s) failed"
s_exception:  .asciz "FAIL exception "
s_at:         .asciz " lr=" 

    .balign 8
    .space  1024
fault_stack_top:
    .space  2048
stack_top:
