//! The dev boards on QEMU's models of them (included by `qemu.rs`): `raspi4b`,
//! `xlnx-zcu102,virtualization=on` and `imx8mp-evk`, each booting the one Image
//! with Debian's DTB for the board (`cargo xtask test` fetches it and applies the
//! board file's fix-ups). No guests yet on these machines (they come in bundles):
//! the hypervisor starts every CPU, says which board and drivers it chose, and
//! stays up at its console (`hv.stay=1`), which answers `info` and `vms`.

use crate::common::{qemu, Qemu};

const VERSION: &str = env!("CARGO_PKG_VERSION");

fn boot(board: &str) -> Qemu {
    qemu().board(board).append("hv.stay=1").start()
}

/// The console is up and answers on the board's line.
fn console_answers(q: &mut Qemu, board: &str) {
    q.expect_debug("hv: cannot start guests: no guest kernel")
        .expect_debug("hv: no VM is left; staying up for the debug console (hv.stay=1)");
    q.debug.write(b"info\r");
    q.expect_debug(&format!("hypervisor v{VERSION} on board {board}"))
        .expect_debug("cpus: 4 (4 online)");
    q.debug.write(b"vms\r");
    q.expect_debug("no VMs");
    q.check(
        !q.debug.contains("PANIC") && !q.debug.contains("CRASH"),
        "the hypervisor failed",
    );
}

#[test]
fn rpi4_boots_on_4_cpus_by_spin_table_on_the_mini_uart() {
    let mut q = boot("rpi4");
    q.expect_debug("(board rpi4) at EL2")
        .expect_debug("hv: board rpi4 (raspberrypi,4-model-b); debug console: bcm2835 mini-UART at 0xfe215040")
        .expect_debug("hv: guest consoles: on the debug console's line (one serial cable)")
        .expect_debug("hv: memory: 0x0-0x3bffffff (960 MiB)")
        .expect_debug("hv: gic: V2 distributor at 0xff841000")
        .expect_debug("hv: 4 CPU(s) online (secondaries started by spin table)");
    console_answers(&mut q, "rpi4");
    q.check(
        q.guest.text().trim().is_empty(),
        "the PL011 (Bluetooth on the board) stays silent",
    );
}

#[test]
fn zcu102_boots_on_4_cpus_by_psci_on_its_cadence_uarts() {
    let mut q = boot("zcu102");
    q.expect_debug("(board zcu102) at EL2")
        .expect_debug(
            "hv: board zcu102 (xlnx,zynqmp-zcu102); debug console: Cadence UART at 0xff010000",
        )
        .expect_debug("hv: guest consoles: Cadence UART at 0xff000000")
        .expect_debug("hv: memory: 0x0-0x7fffffff (2048 MiB)")
        .expect_debug("hv: gic: V2 distributor at 0xf9010000")
        .expect_debug("hv: 4 CPU(s) online (secondaries started by PSCI)");
    console_answers(&mut q, "zcu102");
}

#[test]
fn imx8mp_boots_on_4_cpus_by_psci_on_uart2() {
    let mut q = boot("imx8mp");
    q.expect_debug("(board imx8mp) at EL2")
        .expect_debug("hv: board imx8mp (fsl,imx8mp-evk); debug console: i.MX UART at 0x30890000")
        .expect_debug("hv: guest consoles: on the debug console's line (one serial cable)")
        .expect_debug("hv: memory: 0x40000000-0xbfffffff (2048 MiB)")
        .expect_debug("hv: gic: V3 distributor at 0x38800000")
        .expect_debug("hv: 4 CPU(s) online (secondaries started by PSCI)");
    console_answers(&mut q, "imx8mp");
}
