//! Board selection and console choice on the boards' real DTBs: Debian's
//! (as a board's firmware passes them, modulo its memory fix-ups) and QEMU's
//! edited copies (what the QEMU tests boot with).
#![forbid(unsafe_code)]

use super::*;
use crate::addr::PhysAddr;
use crate::dt::{self, UartModel};

pub const RPI4: &[u8] = include_bytes!("../../tests/fixtures/bcm2711-rpi-4-b.dtb");
pub const ZCU102: &[u8] = include_bytes!("../../tests/fixtures/zynqmp-zcu102-rev1.0.dtb");
pub const IMX8MP: &[u8] = include_bytes!("../../tests/fixtures/imx8mp-evk.dtb");
pub const VIRT: &[u8] = include_bytes!("../../tests/fixtures/virt-gicv3.dtb");

/// A QEMU dump with its NOPs removed, as the boot code does.
pub fn qemu_dtb(raw: &[u8]) -> Vec<u8> {
    let mut b = raw.to_vec();
    dt::blob::strip_nops(&mut b).unwrap();
    b
}

fn board_of(dtb: &[u8]) -> (&'static str, Option<String>) {
    let m = dt::parse(dtb).unwrap();
    let (b, c) = select(m.compatible.iter());
    (b.name, c.map(str::to_owned))
}

#[test]
fn every_board_file_is_in_the_table() {
    let mut names: Vec<&str> = BOARDS.iter().map(|b| b.name).collect();
    names.sort();
    assert_eq!(names, ["imx8mp", "qemu-virt", "rpi4", "zcu102"]);
}

#[test]
fn boards_are_recognised_by_the_root_compatible() {
    assert_eq!(
        board_of(RPI4),
        ("rpi4", Some("raspberrypi,4-model-b".into()))
    );
    assert_eq!(
        board_of(ZCU102),
        ("zcu102", Some("xlnx,zynqmp-zcu102".into()))
    );
    assert_eq!(board_of(IMX8MP), ("imx8mp", Some("fsl,imx8mp-evk".into())));
    assert_eq!(
        board_of(VIRT),
        ("qemu-virt", Some("linux,dummy-virt".into()))
    );
    let (b, c) = select(["acme,board", "acme,soc"]);
    assert_eq!((b, c), (&GENERIC, None));
}

/// (debug UART, guests' UART, one cable), each UART as (model, base).
type Chosen = (Option<(UartModel, u64)>, Option<(UartModel, u64)>, bool);

fn consoles_of(dtb: &[u8]) -> Chosen {
    let m = dt::parse(dtb).unwrap();
    let (b, _) = select(m.compatible.iter());
    let c = consoles(b, &m);
    let f = |u: Option<&dt::UartInfo>| u.map(|u| (u.kind, u.base.0));
    (f(c.debug), f(c.guest), c.single_cable())
}

#[test]
fn rpi4_keeps_the_mini_uart_and_has_one_cable() {
    let mini = Some((UartModel::Bcm2835Aux, 0xfe21_5040));
    assert_eq!(consoles_of(RPI4), (mini, mini, true));
    assert_eq!(
        consoles_of(&qemu_dtb(include_bytes!(
            "../../tests/fixtures/qemu-raspi4b.dtb"
        ))),
        (mini, mini, true)
    );
}

#[test]
fn zcu102_splits_its_two_cadence_uarts() {
    let want = (
        Some((UartModel::Cadence, 0xff01_0000)),
        Some((UartModel::Cadence, 0xff00_0000)),
        false,
    );
    assert_eq!(consoles_of(ZCU102), want);
    assert_eq!(
        consoles_of(&qemu_dtb(include_bytes!(
            "../../tests/fixtures/qemu-xlnx-zcu102.dtb"
        ))),
        want
    );
}

#[test]
fn imx8mp_keeps_uart2_and_has_one_cable() {
    let uart2 = Some((UartModel::Imx, 0x3089_0000));
    assert_eq!(consoles_of(IMX8MP), (uart2, uart2, true));
    assert_eq!(
        consoles_of(&qemu_dtb(include_bytes!(
            "../../tests/fixtures/qemu-imx8mp-evk.dtb"
        ))),
        (uart2, uart2, true)
    );
}

#[test]
fn qemu_virt_keeps_todays_split() {
    assert_eq!(
        consoles_of(VIRT),
        (
            Some((UartModel::Pl011, 0x904_0000)),
            Some((UartModel::Pl011, 0x900_0000)),
            false
        )
    );
}

#[test]
fn a_missing_alias_falls_back_to_stdout_path() {
    let m = dt::parse(VIRT).unwrap();
    let board = Board {
        name: "x",
        compatible: &[],
        debug_uart: Some(UartChoice::Alias("serial7")),
        guest_uart: Some(UartChoice::Alias("serial9")),
        virq_by_hcr: false,
    };
    let c = consoles(&board, &m);
    assert_eq!(c.debug.map(|u| u.base), Some(PhysAddr(0x900_0000)));
    assert!(c.single_cable());
    // The generic rule on a board DTB: stdout-path, one cable.
    let m = dt::parse(ZCU102).unwrap();
    let c = consoles(&GENERIC, &m);
    assert_eq!(c.debug.map(|u| u.base), Some(PhysAddr(0xff00_0000)));
    assert!(c.single_cable());
}

#[test]
fn the_emulated_uart_takes_the_guest_console_uarts_page_and_spi() {
    let want = [
        (VIRT.to_vec(), 0x900_0000, Some(32 + 1)),
        (RPI4.to_vec(), 0xfe21_5000, Some(32 + 93)),
        (ZCU102.to_vec(), 0xff00_0000, Some(32 + 21)),
        (IMX8MP.to_vec(), 0x3089_0000, Some(32 + 27)),
    ];
    for (dtb, ipa, intid) in want {
        let m = dt::parse(&dtb).unwrap();
        let (b, _) = select(m.compatible.iter());
        let u = emulated_uart(&consoles(b, &m)).unwrap();
        assert_eq!((u.ipa, u.intid), (ipa, intid), "{}", b.name);
        // Never in RAM.
        assert!(
            m.memory.iter().all(|r| !r.contains(PhysAddr(ipa))),
            "{}",
            b.name
        );
    }
}

#[test]
fn a_guest_dtb_on_each_board_has_the_emulated_pl011_and_no_host_uart() {
    for (name, dtb) in [
        ("rpi4", RPI4),
        ("zcu102", ZCU102),
        ("imx8mp", IMX8MP),
        ("qemu-virt", VIRT),
    ] {
        let m = dt::parse(dtb).unwrap();
        let (b, _) = select(m.compatible.iter());
        let c = consoles(b, &m);
        let u = emulated_uart(&c).unwrap();
        let hidden: Vec<&str> = c.debug.iter().map(|d| d.path.as_str()).collect();
        let ram = crate::addr::Range::new(crate::addr::Ipa(0x4000_0000), 0x1000_0000);
        let g = dt::guest_dtb(
            dtb,
            &m,
            &dt::GuestDtbParams {
                vcpus: 2,
                ram,
                bootargs: Some("console=ttyAMA0"),
                initrd: None,
                console_path: c.guest.unwrap().path.as_str(),
                hidden_paths: &hidden,
                uart: Some(u),
                pmu: false,
            },
        )
        .unwrap_or_else(|e| panic!("{name}: {e}"));
        let gm = dt::parse(&g).unwrap();
        // Exactly one UART: the emulated PL011, the guest's stdout and serial0.
        let uarts: Vec<_> = gm
            .uarts
            .iter()
            .map(|x| (x.kind, x.base.0, x.enabled))
            .collect();
        assert_eq!(uarts, [(UartModel::Pl011, u.ipa, true)], "{name}");
        let uart = &gm.uarts[0];
        assert_eq!(gm.stdout_uart().map(|x| x.base.0), Some(u.ipa), "{name}");
        assert_eq!(
            gm.resolve_alias("serial0").map(|x| x.base.0),
            Some(u.ipa),
            "{name}"
        );
        assert_eq!(uart.irq.map(|i| i.intid), u.intid, "{name}");
        assert_eq!(uart.clock_hz, Some(24_000_000), "{name}: apb_pclk");
        assert_eq!(
            gm.memory.as_slice(),
            &[crate::addr::Range::new(PhysAddr(ram.start.0), ram.size)],
            "{name}"
        );
        assert_eq!(gm.cpus.len(), 2);
        assert_eq!(
            gm.psci.map(|p| p.method),
            Some(dt::PsciMethod::Hvc),
            "{name}"
        );
        assert!(gm.gic.is_some() && gm.timer.is_some(), "{name}");
        let f = fdt::Fdt::new(&g).unwrap();
        let clk = f
            .find_node(&alloc::format!("/{}", dt::EMULATED_UART_CLOCK))
            .unwrap();
        let names: Vec<&str> = f
            .find_node(&dt::emulated_uart_path(&u))
            .unwrap()
            .property("clock-names")
            .unwrap()
            .value
            .split(|&b| b == 0)
            .filter(|s| !s.is_empty())
            .map(|s| core::str::from_utf8(s).unwrap())
            .collect();
        assert_eq!(names, ["uartclk", "apb_pclk"]);
        assert!(clk.property("phandle").is_some());
    }
}

/// The ZynqMP's GIC-400 has its CPU interface's 4 KiB pages aliased over 64 KiB
/// each (a 128 KiB region): the hypervisor drives it from 60 KiB in, where GICC_DIR
/// sits at its usual offset (on QEMU's model and on the board alike). The Pi's
/// 8 KiB interface is used as it is.
#[test]
fn a_gic400_with_64k_aliased_pages_is_driven_from_60k_in() {
    use crate::addr::PhysAddr;
    let zcu = crate::dt::parse(ZCU102).unwrap().gic.unwrap();
    assert_eq!(zcu.cpu_interface.unwrap().start, PhysAddr(0xf902_0000));
    assert_eq!(zcu.cpu_interface.unwrap().size, 0x2_0000);
    assert_eq!(zcu.cpu_interface_base(), Some(PhysAddr(0xf902_f000)));
    let pi = crate::dt::parse(RPI4).unwrap().gic.unwrap();
    assert_eq!(
        pi.cpu_interface_base(),
        Some(pi.cpu_interface.unwrap().start)
    );
}
