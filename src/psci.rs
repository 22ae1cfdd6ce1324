//! The guest-facing PSCI interface (Arm DEN 0022): decoding a guest's call into a
//! typed request and the return codes. The runtime (`hv::psci`) carries the requests
//! out on the VM's vCPUs. Function ids and error codes come from the `smccc` crate.
#![forbid(unsafe_code)]

use smccc::psci as ids;

/// PSCI 1.1: what the hypervisor implements for guests.
pub const VERSION: u32 = (1 << 16) | 1;

/// A guest's PSCI request, decoded from x0-x3 of its HVC or SMC.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Request {
    Version,
    Features(u32),
    CpuOn {
        target: u64,
        entry: u64,
        context: u64,
    },
    CpuOff,
    AffinityInfo {
        target: u64,
        lowest_level: u64,
    },
    MigrateInfoType,
    SystemOff,
    SystemReset,
    /// `reset_type` 0 is the architectural warm reset; bit 31 marks vendor
    /// types. Only a warm reset is implemented (a restart, as SYSTEM_RESET).
    SystemReset2 {
        reset_type: u32,
        cookie: u64,
    },
    CpuSuspend {
        power_state: u64,
        entry: u64,
        context: u64,
    },
    /// An SMCCC function this hypervisor does not implement: the guest gets
    /// `NOT_SUPPORTED` (-1), as SMCCC requires for unknown function ids.
    Unknown(u32),
}

/// PSCI return codes (DEN 0022, table 6).
pub mod ret {
    pub const SUCCESS: i64 = 0;
    pub const NOT_SUPPORTED: i64 = -1;
    pub const INVALID_PARAMETERS: i64 = -2;
    pub const DENIED: i64 = -3;
    pub const ALREADY_ON: i64 = -4;
    pub const ON_PENDING: i64 = -5;
    pub const INTERNAL_FAILURE: i64 = -6;
    pub const INVALID_ADDRESS: i64 = -9;
    /// MIGRATE_INFO_TYPE: no trusted OS needs migration.
    pub const TOS_NOT_PRESENT_MP: i64 = 2;
    /// AFFINITY_INFO results.
    pub const AFFINITY_ON: i64 = 0;
    pub const AFFINITY_OFF: i64 = 1;
    pub const AFFINITY_ON_PENDING: i64 = 2;
}

/// Decodes a call. SMC32/HVC32 variants take their arguments from the low 32 bits.
pub fn decode(x: &[u64; 4]) -> Request {
    let function = x[0] as u32;
    let narrow = |v: u64| {
        if function & (1 << 30) == 0 {
            v & 0xffff_ffff
        } else {
            v
        }
    };
    match function {
        ids::PSCI_VERSION => Request::Version,
        ids::PSCI_FEATURES => Request::Features(x[1] as u32),
        ids::PSCI_CPU_ON_32 | ids::PSCI_CPU_ON_64 => Request::CpuOn {
            target: narrow(x[1]),
            entry: narrow(x[2]),
            context: narrow(x[3]),
        },
        ids::PSCI_CPU_OFF => Request::CpuOff,
        ids::PSCI_AFFINITY_INFO_32 | ids::PSCI_AFFINITY_INFO_64 => Request::AffinityInfo {
            target: narrow(x[1]),
            lowest_level: narrow(x[2]),
        },
        ids::PSCI_MIGRATE_INFO_TYPE => Request::MigrateInfoType,
        ids::PSCI_SYSTEM_OFF => Request::SystemOff,
        ids::PSCI_SYSTEM_RESET => Request::SystemReset,
        ids::PSCI_SYSTEM_RESET2_32 | ids::PSCI_SYSTEM_RESET2_64 => Request::SystemReset2 {
            reset_type: x[1] as u32,
            cookie: narrow(x[2]),
        },
        ids::PSCI_CPU_SUSPEND_32 | ids::PSCI_CPU_SUSPEND_64 => Request::CpuSuspend {
            power_state: narrow(x[1]),
            entry: narrow(x[2]),
            context: narrow(x[3]),
        },
        other => Request::Unknown(other),
    }
}

/// PSCI_FEATURES: 0 for the functions implemented here, NOT_SUPPORTED otherwise.
pub fn features(function: u32) -> i64 {
    match decode(&[function as u64, 0, 0, 0]) {
        Request::Unknown(_) => ret::NOT_SUPPORTED,
        // CPU_SUSPEND's feature flags: original power-state format, no OS-initiated mode.
        _ => ret::SUCCESS,
    }
}

/// Whether an SMCCC function id is in the PSCI range (owning entity 4, standard secure
/// service, function numbers 0x00-0x1f), fast call.
pub fn is_psci(function: u32) -> bool {
    (function & 0xbfff_ffe0) == 0x8400_0000
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_cpu_on_in_both_widths() {
        let r = decode(&[0xc400_0003, 0x1, 0x4008_0000, 0x1234_5678_9abc]);
        assert_eq!(
            r,
            Request::CpuOn {
                target: 1,
                entry: 0x4008_0000,
                context: 0x1234_5678_9abc
            }
        );
        // The 32-bit form ignores the upper halves.
        let r = decode(&[
            0x8400_0003,
            0xffff_ffff_0000_0002,
            0x4008_0000,
            0xdead_0000_0000_0001,
        ]);
        assert_eq!(
            r,
            Request::CpuOn {
                target: 2,
                entry: 0x4008_0000,
                context: 1
            }
        );
    }

    #[test]
    fn decodes_the_rest_and_unknowns() {
        assert_eq!(decode(&[0x8400_0000, 0, 0, 0]), Request::Version);
        assert_eq!(decode(&[0x8400_0008, 0, 0, 0]), Request::SystemOff);
        assert_eq!(decode(&[0x8400_0009, 0, 0, 0]), Request::SystemReset);
        assert_eq!(
            decode(&[0xc400_0012, 0x8000_0001, 0x1234_5678_9abc, 0]),
            Request::SystemReset2 {
                reset_type: 0x8000_0001,
                cookie: 0x1234_5678_9abc
            }
        );
        assert_eq!(
            decode(&[0x8400_0012, 0xffff_ffff_0000_0000, 0xdead_0000_0000_0007, 0]),
            Request::SystemReset2 {
                reset_type: 0,
                cookie: 7
            }
        );
        assert_eq!(decode(&[0x8400_0002, 0, 0, 0]), Request::CpuOff);
        assert_eq!(
            decode(&[0xc400_0004, 3, 0, 0]),
            Request::AffinityInfo {
                target: 3,
                lowest_level: 0
            }
        );
        assert_eq!(
            decode(&[0x8400_000a, 0x8400_0000, 0, 0]),
            Request::Features(0x8400_0000)
        );
        assert_eq!(
            decode(&[0x8600_0000, 0, 0, 0]),
            Request::Unknown(0x8600_0000)
        );
    }

    #[test]
    fn features_reports_what_is_implemented() {
        assert_eq!(features(0xc400_0003), ret::SUCCESS);
        assert_eq!(features(0x8400_0008), ret::SUCCESS);
        assert_eq!(features(0x8400_0012), ret::SUCCESS); // SYSTEM_RESET2
        assert_eq!(features(0xc400_0012), ret::SUCCESS);
        assert_eq!(features(0x8400_0013), ret::NOT_SUPPORTED); // MEM_PROTECT
        assert_eq!(features(0x1234), ret::NOT_SUPPORTED);
    }

    #[test]
    fn psci_range() {
        assert!(is_psci(0x8400_0000));
        assert!(is_psci(0xc400_0003));
        assert!(is_psci(0x8400_001f));
        assert!(!is_psci(0x8400_0020));
        assert!(!is_psci(0x8600_0000));
        assert!(!is_psci(0x0400_0000));
    }
}
