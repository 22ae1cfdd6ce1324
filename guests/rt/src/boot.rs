//! The boot CPU's path from the start code to PSCI `SYSTEM_OFF`.
//!
//! `run` finds the console and the PSCI conduit in the DTB, checks we were entered
//! at EL1, runs the guest's `main` and prints the verdict as the guest's last line:
//! `<name>: PASS` or `<name>: FAIL <reason>`. Panics and unexpected exceptions end
//! through [`fatal`], which prints the same FAIL line, so a test always sees one.

use core::sync::atomic::{AtomicBool, Ordering};

use fdt::Fdt;

use crate::dt::{self, Region};
use crate::start::STACK_SIZE;
use crate::{Fail, console, psci, sysreg};

/// What a guest's `main` gets: its device tree and helpers over it.
pub struct Boot {
    dtb: usize,
    fdt: Fdt<'static>,
}

impl Boot {
    /// The device tree's address, as received in `x0`.
    pub fn dtb_address(&self) -> usize {
        self.dtb
    }

    /// The parsed device tree.
    pub fn fdt(&self) -> &Fdt<'static> {
        &self.fdt
    }

    /// RAM regions.
    pub fn memory(&self) -> impl Iterator<Item = Region> + '_ {
        dt::memory(&self.fdt)
    }

    /// Total RAM in bytes.
    pub fn memory_size(&self) -> u64 {
        dt::memory_size(&self.fdt)
    }

    /// MPIDR affinities of the CPUs, in DTB order.
    pub fn cpus(&self) -> impl Iterator<Item = u64> + '_ {
        dt::cpus(&self.fdt)
    }

    /// `/chosen/bootargs` ("" when absent).
    pub fn bootargs(&self) -> &'static str {
        dt::bootargs(&self.fdt).unwrap_or("")
    }

    /// The value of `key=value` in the bootargs, if present.
    pub fn bootarg(&self, key: &str) -> Option<&'static str> {
        self.bootargs()
            .split_ascii_whitespace()
            .find_map(|arg| arg.strip_prefix(key)?.strip_prefix('='))
    }

    /// The initrd, if the DTB has one.
    pub fn initrd(&self) -> Option<Region> {
        dt::initrd(&self.fdt)
    }
}

unsafe extern "C" {
    /// First byte of the Image (the linker script's `__image_start`, link address 0).
    static __image_start: u8;
}

/// The address the Image runs at (where the loader put it).
pub fn image_base() -> usize {
    // Taking the address reads nothing; the code computes it PC-relative.
    (&raw const __image_start) as usize
}

/// Set once the guest is ending: a second fatal event just parks the CPU.
static ENDING: AtomicBool = AtomicBool::new(false);

/// Runs guest `name`'s `main` on the boot CPU; called by `rt::guest!`.
pub fn run(name: &'static str, dtb: usize, main: fn(&Boot) -> Result<(), Fail>) -> ! {
    console::set_name(name);
    crate::start::arm_canaries();
    // SAFETY: the boot protocol puts the DTB's address in x0; `from_ptr` checks the
    // magic and reads no further than the header's `totalsize`. The DTB is outside
    // our image and nothing writes it, so `'static` holds.
    let fdt = match unsafe { Fdt::from_ptr(dtb as *const u8) } {
        Ok(fdt) => fdt,
        // No DTB: no console and no PSCI to say so with.
        Err(_) => psci::halt(),
    };
    if let Some(base) = dt::console_uart(&fdt) {
        // SAFETY: the DTB names this PL011 as the console, and only the console
        // module touches it.
        unsafe { console::init(base) };
    }
    psci::init(dt::psci_conduit(&fdt));

    let el = sysreg::current_el();
    let verdict = if el != 1 {
        Err(crate::fail!("entered at EL{el}, expected EL1"))
    } else {
        main(&Boot { dtb, fdt })
    };
    finish(verdict)
}

/// Prints the verdict line and powers off.
fn finish(mut verdict: Result<(), Fail>) -> ! {
    ENDING.store(true, Ordering::SeqCst);
    if let Some(slot) = crate::start::overflowed_slot() {
        verdict = Err(crate::fail!(
            "stack overflow (slot {slot}, {STACK_SIZE} bytes)"
        ));
    }
    match verdict {
        Ok(()) => crate::say!("PASS"),
        Err(fail) => crate::say!("FAIL {fail}"),
    }
    psci::system_off()
}

/// Ends the guest from anywhere (panic, unexpected exception) with a FAIL line.
pub fn fatal(fail: Fail) -> ! {
    if ENDING.load(Ordering::SeqCst) {
        // Failing while already ending (the console or SYSTEM_OFF itself faulted):
        // calling them again could only recurse, so just stop.
        psci::halt();
    }
    finish(Err(fail))
}
