//! AArch64 at EL2: boot, vectors, the hypervisor's own MMU, and thin drivers for the
//! devices the hypervisor itself uses. Nothing here knows about VMs.

pub mod cache;
pub mod fpsimd;
pub mod mmu;
pub mod pl011;
pub mod smc;
pub mod sysreg;
pub mod timer;
pub mod trap_frame;

core::arch::global_asm!(include_str!("boot.S"));

extern "C" {
    /// Where secondary CPUs start (PSCI CPU_ON entry point, context = logical index).
    pub fn secondary_entry() -> !;
    static __image_start: u8;
    static __image_end: u8;
    static __heap_start: u8;
    static __heap_end: u8;
    static __stacks_start: u8;
    static __stacks_end: u8;
}

/// The physical range the hypervisor's image occupies, including .bss, stacks and heap.
pub fn image_range() -> (usize, usize) {
    // Taking the address of an extern static is safe; its contents are never read.
    (
        &raw const __image_start as usize,
        &raw const __image_end as usize,
    )
}

/// The heap region reserved by the linker script.
pub fn heap_range() -> (usize, usize) {
    (
        &raw const __heap_start as usize,
        &raw const __heap_end as usize,
    )
}

/// The per-CPU stacks reserved by the linker script.
pub fn stacks_range() -> (usize, usize) {
    (
        &raw const __stacks_start as usize,
        &raw const __stacks_end as usize,
    )
}

/// The exception level we are running at (0-3).
pub fn current_el() -> u64 {
    use aarch64_cpu::registers::{CurrentEL, Readable};
    CurrentEL.read(CurrentEL::EL)
}

/// This CPU's MPIDR affinity (Aff3..Aff0, without the U/MT bits).
pub fn mpidr() -> u64 {
    use aarch64_cpu::registers::{Readable, MPIDR_EL1};
    MPIDR_EL1.get() & 0xff_00ff_ffff
}

/// Stops this CPU for good.
pub fn halt() -> ! {
    loop {
        aarch64_cpu::asm::wfe();
    }
}

/// Wakes CPUs waiting in `wfe`.
pub fn send_event() {
    aarch64_cpu::asm::sev();
}

pub fn wait_for_event() {
    aarch64_cpu::asm::wfe();
}

/// The logical index of this CPU, kept in TPIDR_EL2 (free for the hypervisor).
pub fn cpu_index() -> usize {
    use aarch64_cpu::registers::{Readable, TPIDR_EL2};
    TPIDR_EL2.get() as usize
}

pub fn set_cpu_index(index: usize) {
    use aarch64_cpu::registers::{Writeable, TPIDR_EL2};
    TPIDR_EL2.set(index as u64);
}
