//! `aarch32`: an AArch32 EL1 guest, in A32 assembly (`aarch32.s`), that writes
//! cp15 registers (SCTLR, TTBR0 in its 32- and 64-bit forms, TTBCR, DACR,
//! CONTEXTIDR, PRRR, NMRR), reads each back, prints the result on the PL011 at
//! 0x09000000 (QEMU `virt`) and powers off with PSCI SYSTEM_OFF over HVC.
//!
//! The Image is a Linux zImage (magic 0x016F2818 at offset 0x24), which is how
//! a loader (the hypervisor, QEMU `-kernel`) tells it must run in AArch32. No
//! Rust code runs: this file only carries the assembly and the panic handler a
//! `no_std` binary needs.

#![no_std]
#![no_main]

core::arch::global_asm!(include_str!("aarch32.s"), options(raw));

#[panic_handler]
fn panic(_: &core::panic::PanicInfo<'_>) -> ! {
    loop {}
}
