//! Calls into the firmware below us (PSCI through SMC: DESIGN.md section 3).

use smccc::{psci, Call, Smc};

/// Starts logical CPU `index` (physical `mpidr`) at `entry` with `x0 = index`.
pub fn cpu_on(mpidr: u64, entry: usize, index: usize) -> Result<(), psci::error::Error> {
    psci::cpu_on::<Smc>(mpidr, entry as u64, index as u64)
}

/// Powers the machine off. Returns only if the firmware refused.
pub fn system_off() -> Result<(), psci::error::Error> {
    psci::system_off::<Smc>()
}

pub fn system_reset() -> Result<(), psci::error::Error> {
    psci::system_reset::<Smc>()
}

/// Issues an SMC with the given function id and arguments, returning x0-x3: used to
/// forward a guest's SMCCC call the hypervisor lets through.
pub fn call(function: u32, args: [u64; 17]) -> [u64; 18] {
    Smc::call64(function, args)
}
