//! The architecture layer, chosen in one place (Hubris `sys/kern/src/arch.rs`).
//!
//! Everything that touches hardware directly lives below this module; the rest of the
//! hypervisor calls the names it re-exports.

#[cfg(target_arch = "aarch64")]
mod aarch64;
#[cfg(target_arch = "aarch64")]
pub use aarch64::*;

#[cfg(not(target_arch = "aarch64"))]
compile_error!("the hypervisor runs on AArch64 only; host builds use the portable modules");
