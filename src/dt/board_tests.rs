//! The machine as the three dev boards' device trees describe it: Debian's
//! `linux-image-arm64` DTBs (as a board's firmware passes them, before its
//! memory fix-ups) and QEMU's copies of them (edited with `FDT_NOP`s, RAM
//! written in). See `tests/fixtures/README.md` for where each comes from.
#![forbid(unsafe_code)]

use super::*;
use crate::addr::{PhysAddr, Range};

const RPI4: &[u8] = include_bytes!("../../tests/fixtures/bcm2711-rpi-4-b.dtb");
const ZCU102: &[u8] = include_bytes!("../../tests/fixtures/zynqmp-zcu102-rev1.0.dtb");
const IMX8MP: &[u8] = include_bytes!("../../tests/fixtures/imx8mp-evk.dtb");
const QEMU_RPI4: &[u8] = include_bytes!("../../tests/fixtures/qemu-raspi4b.dtb");
const QEMU_ZCU102: &[u8] = include_bytes!("../../tests/fixtures/qemu-xlnx-zcu102.dtb");
const QEMU_IMX8MP: &[u8] = include_bytes!("../../tests/fixtures/qemu-imx8mp-evk.dtb");

fn pa(a: u64, size: u64) -> Range<PhysAddr> {
    Range::new(PhysAddr(a), size)
}

fn stripped(raw: &[u8]) -> (Vec<u8>, usize) {
    let mut b = raw.to_vec();
    let n = blob::strip_nops(&mut b).unwrap();
    (b, n)
}

fn uarts(m: &MachineInfo) -> Vec<(UartModel, u64, bool)> {
    m.uarts
        .iter()
        .map(|u| (u.kind, u.base.0, u.enabled))
        .collect()
}

#[test]
fn qemu_board_dtbs_carry_nops_that_strip_nops_removes() {
    for (raw, nops) in [(QEMU_RPI4, 326), (QEMU_ZCU102, 36), (QEMU_IMX8MP, 108)] {
        assert!(matches!(parse(raw), Err(DtError::UnsupportedNop { .. })));
        let (b, n) = stripped(raw);
        assert_eq!(n, nops);
        // Idempotent, and the result parses.
        let mut again = b.clone();
        assert_eq!(blob::strip_nops(&mut again).unwrap(), 0);
        assert_eq!(again, b);
        parse(&b).unwrap();
    }
    // A DTB without NOPs is left byte for byte as it was.
    let (b, n) = stripped(RPI4);
    assert_eq!((n, b.as_slice()), (0, RPI4));
}

#[test]
fn strip_nops_refuses_a_bad_header_and_survives_every_corruption() {
    let mut short = QEMU_ZCU102[..20].to_vec();
    assert_eq!(blob::strip_nops(&mut short), Err(DtError::Truncated));
    let mut bad = QEMU_ZCU102.to_vec();
    bad[0] = 0;
    assert_eq!(blob::strip_nops(&mut bad), Err(DtError::BadMagic));
    // Corrupt header fields and token words: never a panic; parse decides.
    for i in (0..QEMU_ZCU102.len()).step_by(251).chain(0..40) {
        for pattern in [0x00u8, 0xff, 0x04] {
            let mut c = QEMU_ZCU102.to_vec();
            c[i] = pattern;
            if blob::strip_nops(&mut c).is_ok() {
                let _ = parse(&c);
            }
        }
    }
}

#[test]
fn rpi4_machine() {
    let m = parse(RPI4).unwrap();
    assert_eq!(m.model, Some("Raspberry Pi 4 Model B"));
    // Debian's DTB has a zero-sized memory node: the firmware writes the banks.
    assert!(m.memory.is_empty());
    // The firmware's stub page (its /memreserve/) and the page of the
    // release addresses, which is the same page: listed once.
    assert_eq!(
        m.reserved.as_slice(),
        &[Reserved {
            range: pa(0, 0x1000),
            kind: ReservedKind::MemReserve
        }]
    );
    assert_eq!(m.cpus.len(), 4);
    for (i, cpu) in m.cpus.iter().enumerate() {
        assert_eq!(cpu.mpidr, i as u64);
        assert_eq!(
            cpu.enable_method,
            Some(EnableMethod::SpinTable {
                release_addr: Some(PhysAddr(0xd8 + 8 * i as u64))
            })
        );
    }
    assert_eq!(m.psci, None);
    let gic = m.gic.as_ref().unwrap();
    assert_eq!(gic.version, GicVersion::V2);
    assert_eq!(gic.distributor, pa(0xff84_1000, 0x1000));
    assert_eq!(gic.hyp_interface, Some(pa(0xff84_4000, 0x2000)));
    let t = m.timer.unwrap();
    assert_eq!((t.virt.intid, t.hyp_phys.intid), (27, 26));
    assert_eq!(t.clock_frequency, None);
    assert_eq!(
        uarts(&m),
        [
            (UartModel::Pl011, 0xfe20_1000, true),
            (UartModel::Bcm2835Aux, 0xfe21_5040, true),
            (UartModel::Pl011, 0xfe20_1400, false),
            (UartModel::Pl011, 0xfe20_1600, false),
            (UartModel::Pl011, 0xfe20_1800, false),
            (UartModel::Pl011, 0xfe20_1a00, false),
        ]
    );
    assert_eq!(m.stdout_uart().unwrap().base, PhysAddr(0xfe21_5040));

    // QEMU's copy: its RAM (960 MiB at 0), the same CPUs and UARTs.
    let (b, _) = stripped(QEMU_RPI4);
    let q = parse(&b).unwrap();
    assert_eq!(q.memory.as_slice(), &[pa(0, 0x3c00_0000)]);
    assert_eq!(q.cpus.as_slice(), m.cpus.as_slice());
    assert_eq!(uarts(&q)[..2], uarts(&m)[..2]);
}

#[test]
fn zcu102_machine() {
    let m = parse(ZCU102).unwrap();
    // Two banks, the second above 4 GiB.
    assert_eq!(
        m.memory.as_slice(),
        &[pa(0, 0x8000_0000), pa(0x8_0000_0000, 0x8000_0000)]
    );
    assert_eq!(m.memory_size(), 4 << 30);
    assert!(m.reserved.is_empty());
    assert_eq!(m.cpus.len(), 4);
    assert!(m
        .cpus
        .iter()
        .all(|c| c.enable_method == Some(EnableMethod::Psci)));
    let psci = m.psci.unwrap();
    assert_eq!((psci.method, psci.version), (PsciMethod::Smc, (0, 2)));
    let gic = m.gic.as_ref().unwrap();
    assert_eq!(gic.version, GicVersion::V2);
    assert_eq!(gic.distributor, pa(0xf901_0000, 0x10000));
    assert_eq!(gic.vcpu_interface, Some(pa(0xf906_0000, 0x20000)));
    assert_eq!(gic.maintenance_irq.map(|i| i.intid), Some(25));
    assert_eq!(
        uarts(&m),
        [
            (UartModel::Cadence, 0xff00_0000, true),
            (UartModel::Cadence, 0xff01_0000, true),
        ]
    );
    assert_eq!(
        m.resolve_alias("serial1").unwrap().irq.map(|i| i.intid),
        Some(32 + 22)
    );

    let (b, _) = stripped(QEMU_ZCU102);
    let q = parse(&b).unwrap();
    assert_eq!(q.memory.as_slice(), &[pa(0, 0x8000_0000)]);
    assert_eq!(uarts(&q), uarts(&m));
}

#[test]
fn imx8mp_machine() {
    let m = parse(IMX8MP).unwrap();
    assert_eq!(
        m.memory.as_slice(),
        &[pa(0x4000_0000, 0xc000_0000), pa(0x1_0000_0000, 0xc000_0000)]
    );
    assert_eq!(
        m.reserved.as_slice(),
        &[Reserved {
            range: pa(0x9240_0000, 0x200_0000),
            kind: ReservedKind::Node { no_map: true }
        }]
    );
    let psci = m.psci.unwrap();
    assert_eq!((psci.method, psci.version), (PsciMethod::Smc, (1, 0)));
    assert!(m
        .cpus
        .iter()
        .all(|c| c.enable_method == Some(EnableMethod::Psci)));
    let gic = m.gic.as_ref().unwrap();
    assert_eq!(gic.version, GicVersion::V3);
    assert_eq!(gic.distributor, pa(0x3880_0000, 0x10000));
    assert_eq!(gic.redistributors.as_slice(), &[pa(0x3888_0000, 0xc_0000)]);
    let t = m.timer.unwrap();
    assert_eq!(t.clock_frequency, Some(8_000_000));
    assert_eq!(
        uarts(&m),
        [
            (UartModel::Imx, 0x3086_0000, false),
            (UartModel::Imx, 0x3088_0000, false),
            (UartModel::Imx, 0x3089_0000, true),
            (UartModel::Imx, 0x30a6_0000, false),
        ]
    );
    assert_eq!(m.stdout_uart().unwrap().base, PhysAddr(0x3089_0000));

    let (b, _) = stripped(QEMU_IMX8MP);
    let q = parse(&b).unwrap();
    assert_eq!(q.memory.as_slice(), &[pa(0x4000_0000, 0x8000_0000)]);
    assert_eq!(q.cpus.len(), 4);
}
