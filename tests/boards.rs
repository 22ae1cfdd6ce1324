//! The dev boards on QEMU's models of them (included by `qemu.rs`): `raspi4b`,
//! `xlnx-zcu102,virtualization=on` and `imx8mp-evk`, each booting the one Image
//! with Debian's DTB for the board (`cargo xtask test` fetches it and applies the
//! board file's fix-ups). Without guests the hypervisor starts every CPU, says
//! which board and drivers it chose, and stays up at its console (`hv.stay=1`),
//! which answers `info` and `vms`. Guests come as on a real board, in a bundle
//! made by `cargo xtask bundle` and passed as the initrd (one test keeps
//! `-device loader` modules); `cargo xtask sdcard` lays out the boot partition a
//! card would hold, and the Pi's boots from its files.

use crate::common::{qemu, Qemu, Scratch};
use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Command;

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

/// Three `Ctrl-]` (the one-cable switch key, `serial_mux`).
const SWITCH: &[u8] = &[0x1d, 0x1d, 0x1d];

#[test]
fn imx8mp_one_cable_console_keeps_input_without_guests() {
    let mut q = boot("imx8mp");
    q.expect_debug("hv: guest consoles: on the debug console's line (one serial cable); Ctrl-] three times switches typed input");
    q.expect_debug("hv: no VM is left; staying up");
    q.debug.write(b"info\r");
    q.expect_debug("hypervisor v");
    // Fewer than three Ctrl-] are typed input like any other byte: the line
    // editor ignores them and the command still runs.
    q.debug.write(&[0x1d]);
    q.debug.write(b"vms\r");
    q.expect_debug("no VMs");
    q.debug.write(SWITCH);
    q.expect_debug("hv: no VM to switch typed input to: it stays with the hypervisor console");
    q.debug.write(b"help\r");
    q.expect_debug("vtop");
}

#[test]
fn one_cable_switches_typed_input_between_the_hypervisor_and_a_guest() {
    // QEMU virt with a single serial line: no `serial1`, so the hypervisor keeps
    // stdout-path's PL011 and shares it with the guest.
    let mut q = qemu()
        .one_serial()
        .smp(2)
        .vm(crate::common::module(crate::common::guest("echo")))
        .start();
    q.expect_debug("on the debug console's line (one serial cable)")
        .expect_debug("echo: waiting for input");
    // Input starts at the hypervisor's console.
    q.debug.write(b"vms\r");
    q.expect_debug("vm0: running");
    q.debug.write(SWITCH);
    q.expect_debug("hv: typed input goes to vm0 now");
    q.debug.write(b"a");
    q.expect_debug("echo: got 'a'");
    // A lone Ctrl-] reaches the guest too.
    q.debug.write(&[0x1d, b'b']);
    q.expect_debug("echo: got 0x1d")
        .expect_debug("echo: got 'b'");
    q.debug.write(SWITCH);
    q.expect_debug("hv: typed input goes to the hypervisor console now");
    q.debug.write(b"info\r");
    q.expect_debug("cpus: 2 (2 online)");
    q.check(
        !q.debug.contains("echo: got 'i'"),
        "typed input for the hypervisor reached the guest",
    );
    // GDB can still take the line while input is the hypervisor's.
    q.debug.write(b"$?#3f");
    q.expect_debug("$T05");
    q.debug.write(b"+$D#44");
    q.expect_debug("$OK#9a");
    q.debug.write(b"\r");
    q.debug.write(SWITCH);
    q.expect_debug("hv: typed input goes to vm0 now");
    q.debug.write(b"q");
    q.expect_debug("echo: PASS")
        .expect_debug("vm0: powered off (system-off)");
    q.expect_clean_exit();
}

#[test]
fn memory_above_4_gib_is_mapped_and_given_to_guests() {
    // QEMU virt with 5 GiB: one bank from 1 GiB to 6 GiB.
    let mut q = qemu()
        .memory("5G")
        .smp(2)
        .vm(crate::common::module(crate::common::guest("demo")))
        .start();
    q.expect_debug("hv: memory: 0x40000000-0x17fffffff (5120 MiB)")
        .expect_debug("vm0: 2 vCPU(s)")
        .expect_guest("demo: PASS")
        .expect_debug("vm0: powered off (system-off)");
    q.expect_clean_exit();
    let line = q
        .debug
        .text()
        .lines()
        .find(|l| l.starts_with("vm0: 2 vCPU(s)"))
        .map(str::to_owned)
        .unwrap_or_default();
    let mib: u64 = line
        .split(", ")
        .nth(1)
        .and_then(|s| s.split(' ').next())
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    q.check(
        mib > 4096,
        &format!("vm0 got {mib} MiB, not RAM above 4 GiB: {line}"),
    );
}

#[test]
fn a_board_no_file_knows_falls_back_to_stdout_paths_uart() {
    // QEMU virt's own DTB with another root compatible, given back with -dtb.
    let dir = std::env::temp_dir().join(format!("hv-generic-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let dtb = dir.join("unknown.dtb");
    let qemu_bin = std::env::var("HV_QEMU").unwrap_or_else(|_| "qemu-system-aarch64".into());
    let status = std::process::Command::new(&qemu_bin)
        .arg("-M")
        .arg(format!(
            "virt,virtualization=on,gic-version=3,dumpdtb={}",
            dtb.display()
        ))
        .args(["-cpu", "max", "-smp", "2", "-m", "1G", "-display", "none"])
        .args(["-serial", "null", "-serial", "null"])
        .status()
        .unwrap_or_else(|e| panic!("cannot run {qemu_bin}: {e}"));
    assert!(status.success(), "{qemu_bin} could not dump virt's DTB");
    let status = std::process::Command::new("fdtput")
        .args(["-t", "s"])
        .arg(&dtb)
        .args(["/", "compatible", "acme,unknown-board"])
        .status()
        .unwrap_or_else(|e| {
            panic!("cannot run fdtput (device-tree-compiler: cargo xtask setup): {e}")
        });
    assert!(status.success(), "fdtput failed");
    let mut q = qemu().dtb(&dtb).append("hv.stay=1").start();
    // stdout-path is the first PL011: the harness's first line.
    q.expect_guest("(board generic) at EL2")
        .expect_guest("hv: board generic (no board file knows the root compatible \"acme,unknown-board\": the console is stdout-path's UART); debug console: PL011 at 0x9000000")
        .expect_guest("hv: guest consoles: on the debug console's line (one serial cable)")
        .expect_guest("hv: no VM is left; staying up");
    q.guest.write(b"info\r");
    q.expect_guest("on board generic");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Runs `cargo xtask ARGS` as a user would; panics with its output if it fails,
/// returns its standard output.
fn xtask(args: &[&OsStr]) -> String {
    let mut cmd = crate::common::xtask();
    cmd.args(args);
    let o = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run cargo xtask: {e}"));
    assert!(
        o.status.success(),
        "cargo xtask {args:?} failed ({}):\n{}{}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn os(s: &str) -> &OsStr {
    s.as_ref()
}

/// A one-VM bundle (`cargo xtask bundle`) of `kernel` (and `initrd`) with this
/// command line, in `dir`.
fn bundle(dir: &Scratch, kernel: &Path, initrd: Option<&Path>, append: &str) -> PathBuf {
    bundle_with(dir, kernel, initrd, append, &[])
}

/// [`bundle`] with more `cargo xtask bundle` options for the guest (`--cpus 1`).
fn bundle_with(
    dir: &Scratch,
    kernel: &Path,
    initrd: Option<&Path>,
    append: &str,
    more: &[&str],
) -> PathBuf {
    let out = dir.path("bundle.cpio");
    let mut args = vec![os("bundle"), os("-o"), out.as_os_str()];
    args.extend([os("--guest"), kernel.as_os_str()]);
    if let Some(i) = initrd {
        args.extend([os("--initrd"), i.as_os_str()]);
    }
    args.extend([os("--append"), os(append)]);
    args.extend(more.iter().map(|a| os(a)));
    xtask(&args);
    out
}

/// The demo guest on a board model, on all four CPUs, through the emulated
/// PL011, from a bundle passed as the initrd.
fn demo_guest_on(board: &str) -> (Qemu, Scratch) {
    let dir = Scratch::new(&format!("board-{board}-demo"));
    let b = bundle(&dir, &crate::common::guest("demo"), None, "console=ttyAMA0");
    (qemu().board(board).initrd(&b).start(), dir)
}

/// Debian's generic arm64 kernel (it has the SoC support the cloud kernel lacks)
/// with the busybox initramfs, on a board model, from a bundle.
fn linux_on(board: &str) -> (Qemu, Scratch) {
    linux_on_with(board, &[])
}

/// [`linux_on`] with more `cargo xtask bundle` options for the guest.
fn linux_on_with(board: &str, more: &[&str]) -> (Qemu, Scratch) {
    let kernel = PathBuf::from(
        std::env::var_os("HV_LINUX_GENERIC_KERNEL")
            .expect("HV_LINUX_GENERIC_KERNEL: run through cargo xtask test"),
    );
    let (_, initrd, _) = crate::common::linux();
    // Its own directory per option set: the 1- and 4-vCPU tests of a board run
    // side by side in one process.
    let dir = Scratch::new(&format!(
        "board-{board}-linux{}",
        more.concat().replace('-', "")
    ));
    let b = bundle_with(
        &dir,
        &kernel,
        Some(&initrd),
        "console=ttyAMA0 panic=-1",
        more,
    );
    (qemu().board(board).initrd(&b).start(), dir)
}

/// What Linux's init prints (`xtask/src/linux.rs`), on the given line.
/// Then it powers off (PSCI SYSTEM_OFF).
fn expect_linux(q: &mut Qemu, on_debug_line: bool) {
    expect_linux_on(q, on_debug_line, 4);
    q.expect_debug("vm0: powered off (system-off)");
}

/// What Linux's init prints up to `PASS`, with `cpus` vCPUs.
fn expect_linux_on(q: &mut Qemu, on_debug_line: bool, cpus: u32) {
    let version = std::env::var("HV_LINUX_GENERIC_VERSION")
        .expect("HV_LINUX_GENERIC_VERSION: run through cargo xtask test");
    let lines = [
        "linux-guest: init running".to_string(),
        format!("linux-guest: uname: Linux (none) {version} "),
        format!("linux-guest: cpus={cpus}"),
        "linux-guest: PASS".to_string(),
    ];
    // Debian's generic kernel probes every SoC driver it has on 4 vCPUs under
    // single-threaded TCG: about 65 s of guest time to init on the Pi, more on a
    // loaded 2-core machine than the harness's usual deadline allows.
    let deadline = std::time::Duration::from_secs(360);
    for l in &lines {
        if on_debug_line {
            q.expect_debug_within(l, deadline);
        } else {
            q.expect_guest_within(l, deadline);
        }
    }
}

#[test]
fn rpi4_runs_debians_linux_to_init_on_4_vcpus() {
    let (mut q, _dir) = linux_on("rpi4");
    q.expect_debug("hv: guest bundle at 0x8000000")
        .expect_debug("vm0: from bundle vm0/")
        .expect_debug("vm0: 4 vCPU(s)");
    expect_linux(&mut q, true);
}

#[test]
fn zcu102_runs_debians_linux_to_init_on_4_vcpus() {
    let (mut q, _dir) = linux_on("zcu102");
    q.expect_debug("hv: guest bundle at 0x8000000")
        .expect_debug("vm0: 4 vCPU(s)");
    expect_linux(&mut q, false);
    q.expect_clean_exit();
}

#[test]
fn imx8mp_runs_debians_linux_to_init_on_1_vcpu() {
    let (mut q, _dir) = linux_on_with("imx8mp", &["--cpus", "1"]);
    q.expect_debug("hv: guest bundle at 0x48000000")
        .expect_debug("vm0: 1 vCPU(s)");
    expect_linux_on(&mut q, true, 1);
    // `poweroff -f` waits for interrupts (which reach the guest through
    // HCR_EL2.VI on this model) before its PSCI SYSTEM_OFF.
    q.expect_debug("vm0: powered off (system-off)");
    q.expect_clean_exit();
}

/// QEMU's `imx8mp-evk` does not wire the GIC's virtual IRQ output to the CPUs:
/// Linux's first IPI (bringing up its secondary vCPUs) only arrives because the
/// hypervisor raises HCR_EL2.VI itself (README, Boards).
#[test]
fn imx8mp_runs_debians_linux_to_init_on_4_vcpus() {
    let (mut q, _dir) = linux_on("imx8mp");
    q.expect_debug("hv: guest bundle at 0x48000000")
        .expect_debug(
            "hv: vgic: the GIC raises no virtual interrupts on this board: HCR_EL2.VI/VF do",
        )
        .expect_debug("vm0: 4 vCPU(s)")
        .expect_debug_within(
            "smp: Brought up 1 node, 4 CPUs",
            std::time::Duration::from_secs(360),
        );
    expect_linux(&mut q, true);
    q.expect_clean_exit();
}

/// What the demo guest prints on any board (`which` console carries it).
fn expect_demo(q: &mut Qemu, on_debug_line: bool) {
    let lines = [
        "demo: hello from EL1",
        "demo: CurrentEL=EL1",
        "demo: cpus=4",
        "demo: psci version=1.1 conduit=hvc",
        "demo: cpus online=4/4",
        "demo: PASS",
    ];
    for l in lines {
        if on_debug_line {
            q.expect_debug(l);
        } else {
            q.expect_guest(l);
        }
    }
    q.expect_debug("vm0: powered off (system-off)");
}

#[test]
fn zcu102_runs_a_guest_from_a_bundle_on_4_vcpus_with_its_console_on_uart0() {
    let (mut q, _dir) = demo_guest_on("zcu102");
    q.expect_debug("hv: guest bundle at 0x8000000")
        .expect_debug("vm0: 4 vCPU(s)");
    expect_demo(&mut q, false);
    q.expect_clean_exit();
}

#[test]
fn imx8mp_runs_a_guest_from_a_bundle_on_4_vcpus_with_its_console_on_uart2() {
    let (mut q, _dir) = demo_guest_on("imx8mp");
    q.expect_debug("hv: guest bundle at 0x48000000")
        .expect_debug("vm0: 4 vCPU(s)");
    expect_demo(&mut q, true);
    q.expect_clean_exit();
}

/// The board's DTB (as `cargo xtask test` prepared it) with a
/// `/chosen/module@ADDR` kernel node for `file`, which QEMU's generic
/// `-device loader` puts at ADDR: the Xen/multiboot convention the hypervisor
/// reads on any machine (QEMU's `guest-loader` writes such nodes only on `virt`).
fn dtb_with_module(board: &str, dir: &Scratch, addr: u64, file: &Path, bootargs: &str) -> PathBuf {
    let from = PathBuf::from(
        std::env::var_os("HV_BOARD_DTBS").expect("HV_BOARD_DTBS: run through cargo xtask test"),
    )
    .join(board)
    .join("board.dtb");
    let dtb = dir.path("board-with-guest.dtb");
    std::fs::copy(&from, &dtb).unwrap_or_else(|e| panic!("{}: {e}", from.display()));
    let cells = |prop: &str| -> u32 {
        let out = Command::new("fdtget")
            .arg(&dtb)
            .args(["/", prop])
            .output()
            .expect("fdtget (device-tree-compiler: cargo xtask setup)");
        String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
    };
    let (ac, sc) = (cells("#address-cells"), cells("#size-cells"));
    let fdtput = |args: &[&str]| {
        let ok = Command::new("fdtput")
            .args(args)
            .status()
            .expect("fdtput (device-tree-compiler: cargo xtask setup)")
            .success();
        assert!(ok, "fdtput {args:?} failed");
    };
    let d = dtb.to_str().unwrap();
    let size = std::fs::metadata(file)
        .unwrap_or_else(|e| panic!("{}: {e}", file.display()))
        .len();
    let mut reg: Vec<String> = Vec::new();
    for (value, n) in [(addr, ac), (size, sc)] {
        if n == 2 {
            reg.push(format!("{:x}", value >> 32));
        }
        reg.push(format!("{:x}", value & 0xffff_ffff));
    }
    let node = format!("/chosen/module@{addr:x}");
    fdtput(&["-c", d, &node]);
    fdtput(&[
        "-t",
        "s",
        d,
        &node,
        "compatible",
        "multiboot,kernel",
        "multiboot,module",
    ]);
    fdtput(&["-t", "s", d, &node, "bootargs", bootargs]);
    let mut args = vec!["-t", "x", d, &node, "reg"];
    args.extend(reg.iter().map(String::as_str));
    fdtput(&args);
    dtb
}

/// The module path on a board: a guest in a `/chosen/module@` node of the DTB,
/// its file put in RAM by `-device loader`.
#[test]
fn rpi4_runs_a_guest_module_on_4_vcpus_with_its_console_on_the_mini_uart_line() {
    let dir = Scratch::new("board-rpi4-module");
    let kernel = crate::common::guest("demo");
    let addr = 0x1000_0000;
    let dtb = dtb_with_module("rpi4", &dir, addr, &kernel, "console=ttyAMA0");
    let mut q = qemu()
        .board("rpi4")
        .dtb(&dtb)
        .arg("-device")
        .arg(&format!(
            "loader,file={},addr={addr:#x},force-raw=on",
            kernel.display()
        ))
        .start();
    q.expect_debug("vm0: 4 vCPU(s)");
    expect_demo(&mut q, true);
    q.expect_debug("this machine has no PSCI to power it off: every CPU stops here");
}

/// `cargo xtask sdcard --out DIR` for a board.
fn sdcard(board: &str, dir: &Scratch, extra: &[&str]) -> PathBuf {
    let out = dir.path("boot");
    let mut args = vec![
        os("sdcard"),
        os("--board"),
        os(board),
        os("--out"),
        out.as_os_str(),
    ];
    args.extend(extra.iter().map(|a| os(a)));
    let stdout = xtask(&args);
    assert_eq!(
        stdout.lines().last(),
        out.to_str(),
        "the path is the last line"
    );
    out
}

/// `key=value` of a Pi `config.txt`.
fn config_value<'a>(config: &'a str, key: &str) -> Option<&'a str> {
    config
        .lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix('='))
}

/// What the Pi's firmware would do with the card: its `config.txt` names the
/// kernel, the initramfs and the DTB, `cmdline.txt` the options; QEMU does not
/// run the firmware, so it is given those same files with `-kernel`, `-initrd`,
/// `-dtb` and `-append`.
#[test]
fn rpi4_sdcard_layout_boots_on_raspi4b_from_its_files() {
    let dir = Scratch::new("board-rpi4-sdcard");
    let boot = sdcard("rpi4", &dir, &["--append", "hv.slice_us=5000"]);
    let read = |name: &str| {
        std::fs::read_to_string(boot.join(name))
            .unwrap_or_else(|e| panic!("{}: {e}", boot.join(name).display()))
    };
    let config = read("config.txt");
    assert_eq!(config_value(&config, "arm_64bit"), Some("1"), "{config}");
    assert_eq!(config_value(&config, "enable_uart"), Some("1"), "{config}");
    let kernel = config_value(&config, "kernel").expect("kernel= in config.txt");
    let dtb = config_value(&config, "device_tree").expect("device_tree= in config.txt");
    assert_eq!(dtb, "bcm2711-rpi-4-b.dtb");
    let initramfs: Vec<&str> = config
        .lines()
        .find_map(|l| l.strip_prefix("initramfs "))
        .expect("an initramfs line in config.txt")
        .split_whitespace()
        .collect();
    assert_eq!(initramfs.len(), 2, "{config}");
    assert_eq!(initramfs[1], "followkernel");
    // The firmware the Pi 4 boots with, from Debian's raspi-firmware.
    for f in ["start4.elf", "fixup4.dat"] {
        let len = std::fs::metadata(boot.join(f))
            .map(|m| m.len())
            .unwrap_or(0);
        assert!(len > 0, "{f} is missing from the layout");
    }
    let cmdline = read("cmdline.txt");
    assert_eq!(cmdline.trim(), "hv.slice_us=5000");
    let mut q = qemu()
        .board("rpi4")
        .kernel(boot.join(kernel))
        .dtb(boot.join(dtb))
        .initrd(boot.join(initramfs[0]))
        .append(cmdline.trim())
        .start();
    q.expect_debug("(board rpi4) at EL2")
        .expect_debug("hv: board rpi4 (raspberrypi,4-model-b); debug console: bcm2835 mini-UART")
        .expect_debug("hv: scheduling slice 5000 us")
        .expect_debug("hv: guest bundle at 0x8000000")
        .expect_debug("vm0: from bundle vm0/")
        .expect_debug("vm0: 4 vCPU(s)");
    expect_demo(&mut q, true);
    q.expect_debug("this machine has no PSCI to power it off: every CPU stops here");
}

/// The U-Boot boards' layout: `boot.scr` is a U-Boot script image (as
/// `mkimage -l` reads it) of `boot.cmd`, which `booti`s the files beside it;
/// `--image` puts the same files in a FAT partition at 16 MiB.
#[test]
fn zcu102_and_imx8mp_sdcard_boot_scr_is_a_u_boot_script_for_booti() {
    for (board, dtb) in [
        ("zcu102", "zynqmp-zcu102-rev1.0.dtb"),
        ("imx8mp", "imx8mp-evk.dtb"),
    ] {
        let dir = Scratch::new(&format!("board-{board}-sdcard"));
        let boot = sdcard(board, &dir, &["--append", "hv.slice_us=5000"]);
        for f in ["hypervisor.img", "bundle.cpio", dtb] {
            let len = std::fs::metadata(boot.join(f))
                .map(|m| m.len())
                .unwrap_or(0);
            assert!(len > 0, "{board}: {f} is missing from the layout");
        }
        let script = std::fs::read(boot.join("boot.cmd")).expect("boot.cmd");
        let text = String::from_utf8_lossy(&script);
        assert!(
            text.contains(&format!(
                "load ${{devtype}} ${{devnum}}:${{distro_bootpart}} ${{fdt_addr_r}} {dtb}\n"
            )) && text.contains("setenv bootargs \"hv.slice_us=5000\"\n")
                && text.contains(
                    "booti ${kernel_addr_r} ${ramdisk_addr_r}:${bundle_size} ${fdt_addr_r}\n"
                ),
            "{board}: boot.cmd:\n{text}"
        );
        let out = Command::new("mkimage")
            .arg("-l")
            .arg(boot.join("boot.scr"))
            .output()
            .expect("mkimage (u-boot-tools: cargo xtask setup)");
        let listing = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{board}: mkimage -l failed:\n{listing}"
        );
        for want in [
            format!("Image Name:   hypervisor {board}"),
            "Image Type:   AArch64 Linux Script (uncompressed)".to_string(),
            format!("Image 0: {} Bytes", script.len()),
        ] {
            assert!(
                listing.contains(&want),
                "{board}: no `{want}` in:\n{listing}"
            );
        }
        // The payload: the 64-byte header, the length table (one length and a
        // zero), then boot.cmd itself.
        let scr = std::fs::read(boot.join("boot.scr")).unwrap();
        assert_eq!(&scr[72..], &script[..], "{board}: boot.scr holds boot.cmd");
    }
    // A disk image: the files in the FAT partition at 16 MiB.
    let dir = Scratch::new("board-zcu102-image");
    let img = dir.path("card.img");
    let stdout = xtask(&[
        os("sdcard"),
        os("--board"),
        os("zcu102"),
        os("--image"),
        img.as_os_str(),
    ]);
    assert_eq!(stdout.lines().last(), img.to_str());
    let out = Command::new("mdir")
        .env("MTOOLS_SKIP_CHECK", "1")
        .args(["-b", "-i"])
        .arg(format!("{}@@16M", img.display()))
        .arg("::/")
        .output()
        .expect("mdir (mtools: cargo xtask setup)");
    let listing = String::from_utf8_lossy(&out.stdout).to_lowercase();
    for f in [
        "hypervisor.img",
        "bundle.cpio",
        "boot.scr",
        "zynqmp-zcu102-rev1.0.dtb",
    ] {
        assert!(
            listing.contains(f),
            "no {f} in the image's partition:\n{listing}"
        );
    }
}
