//! How each secondary CPU is started, and how the machine is powered off,
//! decided from the device tree alone (DESIGN.md sections 1 and 10).
//!
//! * `enable-method = "psci"`: PSCI `CPU_ON` through the `/psci` node's conduit.
//!   Only `smc` reaches firmware from EL2: an `hvc` issued at EL2 traps to EL2,
//!   i.e. to this hypervisor, so a DTB that says `hvc` (written for an OS
//!   running under a hypervisor) offers no firmware to the hypervisor itself.
//! * `enable-method = "spin-table"`: write the entry point to
//!   `cpu-release-addr`, clean it to the point of coherency and `sev` (the
//!   Raspberry Pi firmware's stub). The CPU arrives with no context, so its
//!   entry finds its logical index from its MPIDR.
//! * No enable method (the boot CPU often has none; some DTBs omit it): PSCI
//!   when the DTB has a usable `/psci`, else the CPU is left off.
//!
//! The pages holding release addresses (and, on the Pi, the firmware stub) are
//! listed by the device-tree parser as reserved memory
//! ([`crate::dt::ReservedKind::SpinTable`]), so no guest gets them.
//!
//! Power-off and reset use PSCI `SYSTEM_OFF`/`SYSTEM_RESET` when there is a
//! usable PSCI; otherwise (the Pi) the hypervisor stops every CPU and says so.
#![forbid(unsafe_code)]

use crate::addr::PhysAddr;
use crate::dt::{EnableMethod, MachineInfo, PsciMethod, MAX_CPUS};

/// How one CPU is started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    /// PSCI `CPU_ON` over SMC.
    Psci,
    /// Spin table: the entry point goes to this release address.
    SpinTable(PhysAddr),
    /// It cannot be started; the reason, for the console.
    Unusable(&'static str),
}

/// One secondary CPU and how to start it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Secondary {
    /// Its MPIDR affinity (the DT's `reg`).
    pub mpidr: u64,
    /// How.
    pub start: Start,
}

/// Whether firmware PSCI is reachable from EL2, and if not, why.
pub fn firmware_psci(info: &MachineInfo) -> Result<(), &'static str> {
    match info.psci.map(|p| p.method) {
        Some(PsciMethod::Smc) => Ok(()),
        Some(PsciMethod::Hvc) => {
            Err("the device tree's PSCI method is hvc, which at EL2 reaches no firmware")
        }
        None => Err("the device tree has no PSCI"),
    }
}

/// Every CPU of the DTB except the boot CPU (`boot_mpidr`), in DT order, with
/// how to start it.
pub fn secondaries(info: &MachineInfo, boot_mpidr: u64) -> heapless::Vec<Secondary, MAX_CPUS> {
    let psci = firmware_psci(info);
    info.cpus
        .iter()
        .filter(|c| c.mpidr != boot_mpidr)
        .map(|c| Secondary {
            mpidr: c.mpidr,
            start: match c.enable_method {
                Some(EnableMethod::SpinTable {
                    release_addr: Some(a),
                }) => Start::SpinTable(a),
                Some(EnableMethod::SpinTable { release_addr: None }) => {
                    Start::Unusable("spin-table without cpu-release-addr")
                }
                Some(EnableMethod::Other(_)) => {
                    Start::Unusable("an enable-method this hypervisor does not know")
                }
                Some(EnableMethod::Psci) | None => match psci {
                    Ok(()) => Start::Psci,
                    Err(why) => Start::Unusable(why),
                },
            },
        })
        .collect()
}

/// How the machine is powered off and reset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Power {
    /// PSCI `SYSTEM_OFF` / `SYSTEM_RESET` over SMC.
    Psci,
    /// Nothing to call: stop every CPU (and say so); the reason.
    StopCpus(&'static str),
}

/// How this machine powers off.
pub fn power(info: &MachineInfo) -> Power {
    match firmware_psci(info) {
        Ok(()) => Power::Psci,
        Err(why) => Power::StopCpus(why),
    }
}

/// The counter frequency the hypervisor uses: CNTFRQ_EL0 as the firmware
/// programmed it, or, when it left it 0, the timer node's `clock-frequency`
/// (which the binding keeps for exactly that case). `None`: neither says.
pub fn counter_frequency(cntfrq: u64, info: &MachineInfo) -> Option<u64> {
    match cntfrq {
        0 => info
            .timer
            .and_then(|t| t.clock_frequency)
            .map(u64::from)
            .filter(|&hz| hz != 0),
        hz => Some(hz),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dt;

    fn parse(raw: &[u8]) -> dt::MachineInfo<'_> {
        dt::parse(raw).unwrap()
    }

    #[test]
    fn rpi4_starts_its_cores_by_spin_table_and_stops_them_to_power_off() {
        let m = parse(include_bytes!("../tests/fixtures/bcm2711-rpi-4-b.dtb"));
        let s = secondaries(&m, 0);
        assert_eq!(
            s.as_slice(),
            &[1u64, 2, 3].map(|i| Secondary {
                mpidr: i,
                start: Start::SpinTable(PhysAddr(0xd8 + 8 * i)),
            })
        );
        assert_eq!(power(&m), Power::StopCpus("the device tree has no PSCI"));
        // Booted on another core, core 0 is a secondary.
        assert_eq!(
            secondaries(&m, 2)[0].start,
            Start::SpinTable(PhysAddr(0xd8))
        );
    }

    #[test]
    fn zcu102_and_imx8mp_use_psci_over_smc() {
        for raw in [
            &include_bytes!("../tests/fixtures/zynqmp-zcu102-rev1.0.dtb")[..],
            &include_bytes!("../tests/fixtures/imx8mp-evk.dtb")[..],
        ] {
            let m = parse(raw);
            let s = secondaries(&m, 0);
            assert_eq!(s.len(), 3);
            assert!(s.iter().all(|c| c.start == Start::Psci));
            assert_eq!(power(&m), Power::Psci);
        }
    }

    #[test]
    fn the_counter_frequency_is_cntfrq_unless_the_firmware_left_it_zero() {
        let imx = parse(include_bytes!("../tests/fixtures/imx8mp-evk.dtb"));
        assert_eq!(counter_frequency(8_000_000, &imx), Some(8_000_000));
        assert_eq!(counter_frequency(0, &imx), Some(8_000_000));
        let rpi = parse(include_bytes!("../tests/fixtures/bcm2711-rpi-4-b.dtb"));
        assert_eq!(counter_frequency(54_000_000, &rpi), Some(54_000_000));
        assert_eq!(counter_frequency(0, &rpi), None);
    }

    #[test]
    fn qemu_virt_uses_psci() {
        let m = parse(include_bytes!("../tests/fixtures/virt-gicv3.dtb"));
        let s = secondaries(&m, 0);
        assert_eq!(
            s.iter().map(|c| (c.mpidr, c.start)).collect::<Vec<_>>(),
            [(1, Start::Psci), (2, Start::Psci), (3, Start::Psci)]
        );
        assert_eq!(power(&m), Power::Psci);
    }

    #[test]
    fn hvc_or_a_missing_psci_node_leaves_psci_cpus_off_with_a_reason() {
        let mut m = parse(include_bytes!("../tests/fixtures/virt-gicv3.dtb"));
        m.psci.as_mut().unwrap().method = PsciMethod::Hvc;
        assert!(matches!(secondaries(&m, 0)[0].start, Start::Unusable(w) if w.contains("hvc")));
        assert!(matches!(power(&m), Power::StopCpus(_)));
        m.psci = None;
        assert!(matches!(secondaries(&m, 0)[0].start, Start::Unusable(w) if w.contains("no PSCI")));
        m.cpus[1].enable_method = Some(EnableMethod::SpinTable { release_addr: None });
        assert!(
            matches!(secondaries(&m, 0)[0].start, Start::Unusable(w) if w.contains("cpu-release-addr"))
        );
    }
}
