//! AArch64 at EL2: boot, vectors, the hypervisor's own MMU, and thin drivers for the
//! devices the hypervisor itself uses. Nothing here knows about VMs.

pub mod cache;
pub mod crc;
pub mod fpsimd;
pub mod mmio;
pub mod mmu;
pub mod mte;
pub mod pmu;
pub mod smc;
pub mod sysreg;
pub mod timer;
pub mod trap_frame;

core::arch::global_asm!(include_str!("boot.S"));

extern "C" {
    /// Where secondary CPUs start (PSCI CPU_ON entry point, context = logical index).
    pub fn secondary_entry() -> !;
    /// Where CPUs released from a spin table start: no context, so the entry looks
    /// its MPIDR up in [`hv_cpu_mpidrs`] for its logical index.
    pub fn spin_table_entry() -> !;
    static __image_start: u8;
    static __image_end: u8;
    static __heap_start: u8;
    static __heap_end: u8;
    static __stacks_start: u8;
    static __stacks_end: u8;
}

/// Logical CPU index -> MPIDR affinity, for `spin_table_entry` (boot.S), which
/// reads it with the MMU and caches off: [`set_cpu_mpidr`] cleans each entry to
/// the point of coherency. `u64::MAX`: no CPU.
#[no_mangle]
#[allow(non_upper_case_globals)]
static hv_cpu_mpidrs: [core::sync::atomic::AtomicU64; 8] =
    [const { core::sync::atomic::AtomicU64::new(u64::MAX) }; 8];

/// Records that logical CPU `index` is the one with MPIDR affinity `mpidr` (before
/// it is released from a spin table). Out-of-range indexes are ignored.
pub fn set_cpu_mpidr(index: usize, mpidr: u64) {
    if let Some(slot) = hv_cpu_mpidrs.get(index) {
        slot.store(mpidr, core::sync::atomic::Ordering::SeqCst);
        cache::clean_inval_dcache(slot as *const _ as usize, 8);
    }
}

/// Releases a CPU parked in a spin table: writes `entry` to its release address,
/// cleans it to the point of coherency (the parked CPU reads memory with its caches
/// off) and wakes it with `sev`.
///
/// # Safety
/// `release_addr` must be the CPU's `cpu-release-addr` from the device tree: an
/// 8-byte slot in RAM, identity-mapped, that only the firmware's stub reads.
pub unsafe fn release_spin_table(release_addr: usize, entry: usize) {
    // SAFETY: the caller's contract: a RAM slot the stub polls.
    unsafe { core::ptr::write_volatile(release_addr as *mut u64, entry as u64) };
    cache::clean_inval_dcache(release_addr, 8);
    send_event();
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
