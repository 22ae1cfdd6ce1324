//! Calls into the firmware below us: PSCI through SMC, when the device tree has a
//! PSCI that EL2 can reach (`crate::bringup::firmware_psci`; the Raspberry Pi has
//! none, QEMU `virt`, the ZCU102 and the i.MX 8M Plus have it over SMC).

use core::sync::atomic::{AtomicBool, Ordering};
use smccc::{psci, Call, Smc};

/// Whether firmware PSCI is there (set once at boot from the device tree).
static PSCI: AtomicBool = AtomicBool::new(false);

/// Records whether firmware PSCI may be called.
pub fn set_psci(present: bool) {
    PSCI.store(present, Ordering::SeqCst);
}

pub fn has_psci() -> bool {
    PSCI.load(Ordering::Relaxed)
}

fn available() -> Result<(), psci::error::Error> {
    if has_psci() {
        Ok(())
    } else {
        Err(psci::error::Error::NotSupported)
    }
}

/// Starts logical CPU `index` (physical `mpidr`) at `entry` with `x0 = index`.
pub fn cpu_on(mpidr: u64, entry: usize, index: usize) -> Result<(), psci::error::Error> {
    available()?;
    psci::cpu_on::<Smc>(mpidr, entry as u64, index as u64)
}

/// Powers the machine off. Returns only if there is no PSCI or the firmware refused.
pub fn system_off() -> Result<(), psci::error::Error> {
    available()?;
    psci::system_off::<Smc>()
}

pub fn system_reset() -> Result<(), psci::error::Error> {
    available()?;
    psci::system_reset::<Smc>()
}

/// Issues an SMC with the given function id and arguments, returning x0-x3: used to
/// forward a guest's SMCCC call the hypervisor lets through.
pub fn call(function: u32, args: [u64; 17]) -> [u64; 18] {
    Smc::call64(function, args)
}
