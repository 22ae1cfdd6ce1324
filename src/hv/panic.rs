//! The panic handler: an epitaph on the debug console, then this CPU stops. A panic is
//! a broken internal invariant (guest input never panics the hypervisor), so the
//! message says where, for the person at the console (Hubris `sys/kern/src/fail.rs`).

use core::panic::PanicInfo;
use core::sync::atomic::{AtomicUsize, Ordering};

/// How many CPUs have panicked: the monitor and GDB stub can report it.
pub static PANICKED: AtomicUsize = AtomicUsize::new(0);

#[panic_handler]
fn panic(info: &PanicInfo) -> ! {
    PANICKED.fetch_add(1, Ordering::SeqCst);
    crate::hv::console::print_unlocked(format_args!(
        "\nhv: PANIC on cpu {}: {}\nhv: cpu {} stopped\n",
        crate::arch::cpu_index(),
        info,
        crate::arch::cpu_index()
    ));
    crate::arch::halt()
}
