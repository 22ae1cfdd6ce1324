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

/// One guest module: where QEMU's `-device loader` puts the file, and what the
/// DTB says it is.
struct Module<'a> {
    addr: u64,
    file: &'a std::path::Path,
    /// `None`: a ramdisk (of the kernel below it); `Some(bootargs)`: a kernel.
    kernel_bootargs: Option<&'a str>,
}

/// The board's DTB (as `cargo xtask test` prepared it) with a `/chosen/module@ADDR`
/// node per module, the files put in RAM by QEMU's generic `-device loader`: the
/// Xen/multiboot convention the hypervisor reads on any machine. (QEMU's
/// `guest-loader` writes such nodes only on `virt`; on the boards guests will
/// normally come in a bundle, an initrd.) Returns the DTB in a temporary
/// directory, to remove at the end.
fn dtb_with_modules(board: &str, modules: &[Module]) -> std::path::PathBuf {
    let from = std::path::PathBuf::from(
        std::env::var_os("HV_BOARD_DTBS").expect("HV_BOARD_DTBS: run through cargo xtask test"),
    )
    .join(board)
    .join("board.dtb");
    let dir = std::env::temp_dir().join(format!(
        "hv-{board}-{}-{:x}",
        std::process::id(),
        modules[0].addr
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let dtb = dir.join("board-with-guest.dtb");
    std::fs::copy(&from, &dtb).unwrap_or_else(|e| panic!("{}: {e}", from.display()));
    let cells = |prop: &str| -> u32 {
        let out = std::process::Command::new("fdtget")
            .arg(&dtb)
            .args(["/", prop])
            .output()
            .expect("fdtget (device-tree-compiler: cargo xtask setup)");
        String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
    };
    let (ac, sc) = (cells("#address-cells"), cells("#size-cells"));
    let fdtput = |args: &[&str]| {
        let ok = std::process::Command::new("fdtput")
            .args(args)
            .status()
            .expect("fdtput (device-tree-compiler: cargo xtask setup)")
            .success();
        assert!(ok, "fdtput {args:?} failed");
    };
    let d = dtb.to_str().unwrap();
    for m in modules {
        let size = std::fs::metadata(m.file)
            .unwrap_or_else(|e| panic!("{}: {e}", m.file.display()))
            .len();
        let mut reg: Vec<String> = Vec::new();
        for (value, n) in [(m.addr, ac), (size, sc)] {
            if n == 2 {
                reg.push(format!("{:x}", value >> 32));
            }
            reg.push(format!("{:x}", value & 0xffff_ffff));
        }
        let node = format!("/chosen/module@{:x}", m.addr);
        fdtput(&["-c", d, &node]);
        let kind = if m.kernel_bootargs.is_some() {
            "multiboot,kernel"
        } else {
            "multiboot,ramdisk"
        };
        fdtput(&["-t", "s", d, &node, "compatible", kind, "multiboot,module"]);
        if let Some(args) = m.kernel_bootargs {
            fdtput(&["-t", "s", d, &node, "bootargs", args]);
        }
        let mut args = vec!["-t", "x", d, &node, "reg"];
        args.extend(reg.iter().map(String::as_str));
        fdtput(&args);
    }
    dtb
}

/// A board model with these guest modules; also returns the temporary directory
/// of its DTB, to remove at the end (QEMU reads the DTB only once the consoles
/// are connected).
fn board_with_modules(board: &str, modules: &[Module]) -> (Qemu, std::path::PathBuf) {
    let dtb = dtb_with_modules(board, modules);
    let mut b = qemu().board(board).dtb(&dtb);
    for m in modules {
        b = b.arg("-device").arg(&format!(
            "loader,file={},addr={:#x},force-raw=on",
            m.file.display(),
            m.addr
        ));
    }
    (b.start(), dtb.parent().unwrap().to_path_buf())
}

/// The demo guest on a board model, on all four CPUs, through the emulated PL011.
fn demo_guest_on(board: &str, addr: u64) -> (Qemu, std::path::PathBuf) {
    let kernel = crate::common::guest("demo");
    board_with_modules(
        board,
        &[Module {
            addr,
            file: &kernel,
            kernel_bootargs: Some("console=ttyAMA0"),
        }],
    )
}

/// Debian's generic arm64 kernel (it has the SoC support the cloud kernel lacks)
/// with the busybox initramfs, on a board model.
fn linux_on(board: &str, addr: u64) -> (Qemu, std::path::PathBuf) {
    let kernel = std::path::PathBuf::from(
        std::env::var_os("HV_LINUX_GENERIC_KERNEL")
            .expect("HV_LINUX_GENERIC_KERNEL: run through cargo xtask test"),
    );
    let (_, initrd, _) = crate::common::linux();
    board_with_modules(
        board,
        &[
            Module {
                addr,
                file: &kernel,
                kernel_bootargs: Some("console=ttyAMA0 panic=-1"),
            },
            Module {
                addr: addr + 0x400_0000,
                file: &initrd,
                kernel_bootargs: None,
            },
        ],
    )
}

/// What Linux's init prints (`xtask/src/linux.rs`), on the given line.
fn expect_linux(q: &mut Qemu, on_debug_line: bool) {
    let version = std::env::var("HV_LINUX_GENERIC_VERSION")
        .expect("HV_LINUX_GENERIC_VERSION: run through cargo xtask test");
    let lines = [
        "linux-guest: init running".to_string(),
        format!("linux-guest: uname: Linux (none) {version} "),
        "linux-guest: cpus=4".to_string(),
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
    q.expect_debug("vm0: powered off (system-off)");
}

#[test]
fn rpi4_runs_debians_linux_to_init_on_4_vcpus() {
    let (mut q, tmp) = linux_on("rpi4", 0x1000_0000);
    q.expect_debug("vm0: 4 vCPU(s)");
    expect_linux(&mut q, true);
    let _ = std::fs::remove_dir_all(tmp);
}

#[test]
fn zcu102_runs_debians_linux_to_init_on_4_vcpus() {
    let (mut q, tmp) = linux_on("zcu102", 0x1000_0000);
    q.expect_debug("vm0: 4 vCPU(s)");
    expect_linux(&mut q, false);
    q.expect_clean_exit();
    let _ = std::fs::remove_dir_all(tmp);
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
fn rpi4_runs_a_guest_on_4_vcpus_with_its_console_on_the_mini_uart_line() {
    let (mut q, tmp) = demo_guest_on("rpi4", 0x1000_0000);
    q.expect_debug("vm0: 4 vCPU(s)");
    expect_demo(&mut q, true);
    q.expect_debug("this machine has no PSCI to power it off: every CPU stops here");
    let _ = std::fs::remove_dir_all(tmp);
}

#[test]
fn zcu102_runs_a_guest_on_4_vcpus_with_its_console_on_uart0() {
    let (mut q, tmp) = demo_guest_on("zcu102", 0x1000_0000);
    q.expect_debug("vm0: 4 vCPU(s)");
    expect_demo(&mut q, false);
    q.expect_clean_exit();
    let _ = std::fs::remove_dir_all(tmp);
}

#[test]
fn imx8mp_runs_a_guest_on_4_vcpus_with_its_console_on_uart2() {
    let (mut q, tmp) = demo_guest_on("imx8mp", 0x5000_0000);
    q.expect_debug("vm0: 4 vCPU(s)");
    expect_demo(&mut q, true);
    q.expect_clean_exit();
    let _ = std::fs::remove_dir_all(tmp);
}
