//! PSCI through whichever conduit the DTB's `/psci` node names.
//!
//! Bare under QEMU (EL1 highest) the method is "hvc" and QEMU answers it; under
//! the hypervisor it is "hvc" too and the hypervisor answers; with EL3 firmware
//! it may be "smc". The calls themselves come from the `smccc` crate.

#![forbid(unsafe_code)]

use core::sync::atomic::{AtomicU8, Ordering};

use smccc::psci::{self, AffinityState, LowestAffinityLevel, Version};
use smccc::{Hvc, Smc};

pub use smccc::psci::error::Error;

/// How PSCI calls reach the firmware (or hypervisor).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Conduit {
    /// `HVC #0`.
    Hvc,
    /// `SMC #0`.
    Smc,
}

impl Conduit {
    /// The DTB `method` string.
    pub fn name(self) -> &'static str {
        match self {
            Conduit::Hvc => "hvc",
            Conduit::Smc => "smc",
        }
    }
}

/// 0: none known, 1: HVC, 2: SMC.
static CONDUIT: AtomicU8 = AtomicU8::new(0);

/// Sets the conduit (from the DTB).
pub fn init(conduit: Option<Conduit>) {
    let raw = match conduit {
        None => 0,
        Some(Conduit::Hvc) => 1,
        Some(Conduit::Smc) => 2,
    };
    CONDUIT.store(raw, Ordering::SeqCst);
}

/// The conduit, if the DTB named one.
pub fn conduit() -> Option<Conduit> {
    match CONDUIT.load(Ordering::SeqCst) {
        1 => Some(Conduit::Hvc),
        2 => Some(Conduit::Smc),
        _ => None,
    }
}

/// Why a PSCI call could not be made or failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PsciError {
    /// The DTB has no usable `/psci` node.
    NoConduit,
    /// The call returned an error code.
    Call(Error),
}

impl core::fmt::Display for PsciError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            PsciError::NoConduit => f.write_str("no PSCI conduit in the DTB"),
            PsciError::Call(e) => write!(f, "PSCI error {e:?}"),
        }
    }
}

/// Calls `$f::<Hvc or Smc>($args)` for the configured conduit.
macro_rules! dispatch {
    ($f:ident($($arg:expr),*)) => {
        match conduit() {
            Some(Conduit::Hvc) => psci::$f::<Hvc>($($arg),*).map_err(PsciError::Call),
            Some(Conduit::Smc) => psci::$f::<Smc>($($arg),*).map_err(PsciError::Call),
            None => Err(PsciError::NoConduit),
        }
    };
}

/// PSCI_VERSION.
pub fn version() -> Result<Version, PsciError> {
    dispatch!(version())
}

/// PSCI_FEATURES for a function ID.
pub fn features(function_id: u32) -> Result<u32, PsciError> {
    dispatch!(psci_features(function_id))
}

/// CPU_ON (64-bit): start `mpidr` at physical address `entry` with `x0 = context`.
pub fn cpu_on(mpidr: u64, entry: u64, context: u64) -> Result<(), PsciError> {
    dispatch!(cpu_on(mpidr, entry, context))
}

/// CPU_OFF: returns only on failure.
pub fn cpu_off() -> Result<(), PsciError> {
    dispatch!(cpu_off())
}

/// AFFINITY_INFO (64-bit) for exactly one CPU.
pub fn affinity_info(mpidr: u64) -> Result<AffinityState, PsciError> {
    dispatch!(affinity_info(mpidr, LowestAffinityLevel::All))
}

/// SYSTEM_OFF; if there is no conduit or the call returns, parks this CPU.
pub fn system_off() -> ! {
    let _ = dispatch!(system_off());
    halt()
}

/// SYSTEM_RESET: returns only on failure.
pub fn system_reset() -> Result<(), PsciError> {
    dispatch!(system_reset())
}

/// SYSTEM_RESET2 (64-bit): `reset_type` 0 is a warm reset, bit 31 a vendor type.
/// Returns only on failure.
pub fn system_reset2(reset_type: u32, cookie: u64) -> Result<(), PsciError> {
    dispatch!(system_reset2(reset_type, cookie))
}

/// Parks this CPU for good.
pub fn halt() -> ! {
    loop {
        aarch64_cpu::asm::wfe();
    }
}
