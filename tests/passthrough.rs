//! Device assignment (DESIGN.md section 9) under QEMU `virt`: Debian's Linux
//! with the host's virtio-mmio disk and network and the PL031 RTC passed
//! through, two Linux VMs each with its own disk at once, a bare guest that
//! reads a passed-through device and aborts on its neighbour pages, and
//! assignments the hypervisor must refuse while it stays up.
//!
//! The Linux guest is `common::linux()`; its initramfs loads the cloud
//! kernel's virtio modules and reports what it finds when its command line
//! has `linux-guest.devices` (see `xtask/src/linux.rs`). Disks are ext4
//! images the test makes with `mkfs.ext4 -d` and reads back with `debugfs`.

use crate::common::{self, guest, linux, module, qemu};
use std::path::{Path, PathBuf};
use std::process::Command;

/// A fresh directory for one test's files.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("hv-pt-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn tool(name: &str) -> String {
    for dir in ["/usr/sbin", "/sbin", "/usr/bin", "/bin"] {
        let p = Path::new(dir).join(name);
        if p.is_file() {
            return p.display().to_string();
        }
    }
    panic!("{name} is missing: install e2fsprogs (apt-get install e2fsprogs)");
}

/// A 16 MiB ext4 image holding `hello.txt` with `text`.
fn ext4_image(dir: &Path, name: &str, text: &str) -> PathBuf {
    let root = dir.join(format!("{name}.d"));
    std::fs::create_dir_all(&root).unwrap();
    std::fs::write(root.join("hello.txt"), format!("{text}\n")).unwrap();
    let image = dir.join(format!("{name}.img"));
    let out = Command::new(tool("mkfs.ext4"))
        .args(["-q", "-F", "-d"])
        .arg(&root)
        .arg(&image)
        .arg("16M")
        .output()
        .expect("mkfs.ext4 runs");
    assert!(
        out.status.success(),
        "mkfs.ext4 failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    image
}

/// A file of an ext4 image, read on the host.
fn debugfs_cat(image: &Path, file: &str) -> String {
    let out = Command::new(tool("debugfs"))
        .arg("-R")
        .arg(format!("cat {file}"))
        .arg(image)
        .output()
        .expect("debugfs runs");
    assert!(out.status.success(), "debugfs failed");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// A token no other run (or test) writes.
fn token(what: &str) -> String {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    format!("{what}-{}-{}", std::process::id(), t.subsec_nanos())
}

fn linux_vm(initrd: &Path, kernel: &Path, token: &str) -> common::Module {
    module(kernel).initrd(initrd).bootargs(&format!(
        "console=ttyAMA0 panic=-1 linux-guest.devices linux-guest.token={token}"
    ))
}

/// One Linux VM with every device the hypervisor does not keep: a disk on the
/// top virtio-mmio transport (0x0a003e00), a network card below it.
fn linux_gets_all_devices(gic: u8) {
    let dir = scratch(&format!("all-v{gic}"));
    let hello = token("hello");
    let back = token("back");
    let disk = ext4_image(&dir, "disk", &hello);
    let (kernel, initrd, _) = linux();
    let mut q = qemu()
        .smp(2)
        .gic(gic)
        .hv_args("hv.passthrough=vm0:all")
        .disk(&disk, 31)
        .net_user(30)
        .vm(linux_vm(&initrd, &kernel, &back))
        .start();
    q.expect_debug("vm0: passthrough: ")
        .expect_debug("RAM mapped 1:1 for DMA")
        .expect_guest("linux-guest: modules loaded: ")
        .expect_guest("linux-guest: virtio: ")
        .expect_guest("linux-guest: disk: mounted /dev/vda")
        .expect_guest(&format!("linux-guest: disk: read hello.txt: {hello}"))
        .expect_guest(&format!("linux-guest: disk: wrote from-guest.txt: {back}"))
        .expect_guest("linux-guest: disk: unmounted")
        .expect_guest("linux-guest: rtc: ")
        .expect_guest("linux-guest: net: eth0 lease 10.0.2.15 from 10.0.2.2")
        .expect_guest("linux-guest: PASS")
        .expect_debug("interrupts forwarded")
        .expect_debug("vm0: powered off (system-off)");
    q.expect_clean_exit();
    let text = q.guest.text();
    // Both devices, each at its transport (id 2: block, id 1: network).
    q.check(
        text.contains("id=2 at a003e00.virtio_mmio")
            && text.contains("id=1 at a003c00.virtio_mmio"),
        "the guest did not find the disk at 0xa003e00 and the network at 0xa003c00",
    );
    // The RTC reads the host's time (QEMU's PL031 follows the host clock).
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let rtc = text
        .lines()
        .find_map(|l| l.strip_prefix("linux-guest: rtc: "))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|v| v.parse::<u64>().ok());
    q.check(
        rtc.is_some_and(|r| r.abs_diff(now) < 24 * 3600),
        &format!("the PL031 read {rtc:?}, the host's clock says {now}"),
    );
    // The disk's interrupts came through (a virtio line with a count > 0).
    let disk_irqs = text
        .lines()
        .filter_map(|l| l.strip_prefix("linux-guest: interrupts: "))
        .filter(|l| l.contains("virtio"))
        .filter_map(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        .sum::<u64>();
    q.check(disk_irqs > 0, "no virtio interrupt reached the guest");
    // The hypervisor counted them too.
    let forwarded = q
        .debug
        .text()
        .lines()
        .filter(|l| l.contains(" interrupts forwarded"))
        .find_map(|l| l.strip_prefix("vm0: passthrough: "))
        .and_then(|l| l.split(" interrupts forwarded").next())
        .and_then(|n| n.parse::<u64>().ok());
    q.check(
        forwarded.is_some_and(|n| n >= disk_irqs),
        &format!("the hypervisor forwarded {forwarded:?} interrupts, the guest saw {disk_irqs}"),
    );
    // What the guest wrote is on the disk.
    assert_eq!(debugfs_cat(&disk, "/from-guest.txt"), back);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn passthrough_linux_gets_all_devices_on_gicv3() {
    linux_gets_all_devices(3);
}

#[test]
fn passthrough_linux_gets_all_devices_on_gicv2() {
    linux_gets_all_devices(2);
}

/// Two Linux VMs, each given its own disk by path, on transports in different
/// pages (0x0a003e00 and 0x0a002e00): each sees only its own, both work at once.
fn two_linux_vms_each_with_its_own_disk(gic: u8) {
    let dir = scratch(&format!("two-v{gic}"));
    let (h0, h1) = (token("vm0-hello"), token("vm1-hello"));
    let (b0, b1) = (token("vm0-back"), token("vm1-back"));
    let (d0, d1) = (ext4_image(&dir, "d0", &h0), ext4_image(&dir, "d1", &h1));
    let (kernel, initrd, _) = linux();
    let mut q = qemu()
        .smp(2)
        .gic(gic)
        .hv_args("hv.passthrough=vm0:/virtio_mmio@a003e00 hv.passthrough=vm1:/virtio_mmio@a002e00")
        .disk(&d0, 31)
        .disk(&d1, 23)
        .vm(linux_vm(&initrd, &kernel, &b0))
        .vm(linux_vm(&initrd, &kernel, &b1))
        .start();
    q.expect_debug("vm0: passthrough: 1 device(s)")
        .expect_debug("vm1: passthrough: 1 device(s)")
        .expect_guest(&format!("[vm0] linux-guest: disk: read hello.txt: {h0}"))
        .expect_guest(&format!("[vm1] linux-guest: disk: read hello.txt: {h1}"))
        .expect_guest(&format!(
            "[vm0] linux-guest: disk: wrote from-guest.txt: {b0}"
        ))
        .expect_guest(&format!(
            "[vm1] linux-guest: disk: wrote from-guest.txt: {b1}"
        ))
        .expect_guest("[vm0] linux-guest: PASS")
        .expect_guest("[vm1] linux-guest: PASS")
        .expect_debug("vm0: powered off (system-off)")
        .expect_debug("vm1: powered off (system-off)");
    q.expect_clean_exit();
    let text = q.guest.text();
    let virtio = |vm: &str| -> Vec<String> {
        text.lines()
            .filter_map(|l| l.strip_prefix(&format!("[{vm}] linux-guest: virtio: ")))
            .map(String::from)
            .collect()
    };
    q.check(
        virtio("vm0") == ["virtio0 id=2 at a003e00.virtio_mmio"],
        &format!("vm0 must see only its disk: {:?}", virtio("vm0")),
    );
    q.check(
        virtio("vm1") == ["virtio0 id=2 at a002e00.virtio_mmio"],
        &format!("vm1 must see only its disk: {:?}", virtio("vm1")),
    );
    // Both ran at the same time: each printed before the other finished. (Each
    // one's first line, its kernel's: how far the other got by then depends on
    // the host's load, vm1 having twice vm0's RAM to set up.)
    let at = |needle: &str| text.find(needle).unwrap_or(usize::MAX);
    q.check(
        at("[vm0] ") < at("[vm1] linux-guest: PASS")
            && at("[vm1] ") < at("[vm0] linux-guest: PASS"),
        "the two VMs did not run side by side",
    );
    assert_eq!(debugfs_cat(&d0, "/from-guest.txt"), b0);
    assert_eq!(debugfs_cat(&d1, "/from-guest.txt"), b1);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn passthrough_two_linux_vms_each_with_its_own_disk_on_gicv3() {
    two_linux_vms_each_with_its_own_disk(3);
}

#[test]
fn passthrough_two_linux_vms_each_with_its_own_disk_on_gicv2() {
    two_linux_vms_each_with_its_own_disk(2);
}

#[test]
fn passthrough_a_guest_reads_its_device_and_aborts_on_the_neighbour_pages() {
    let m = module(guest("abort"))
        .bootargs("console=ttyAMA0 read=0x9010fe0 probe=0x9011000 probe=0x900f000");
    let mut q = qemu()
        .smp(1)
        .hv_args("hv.passthrough=vm0:/pl031@9010000")
        .vm(m)
        .start();
    q.expect_debug("vm0: passthrough: 1 device(s), 1 MMIO mapping(s), 1 SPI(s)")
        // The PL031's PeriphID0 reads 0x31: the device itself, not an emulation.
        .expect_guest("abort: read 0x9010fe0 = 0x31")
        .expect_guest("abort: got EC=0x25 FAR=0x9011000 DFSC=0x10")
        .expect_guest("abort: got EC=0x25 FAR=0x900f000 DFSC=0x10")
        .expect_guest("abort: PASS")
        .expect_debug("vm0: data abort: read of unmapped IPA 0x9011000");
    q.expect_clean_exit();
    q.check(
        !q.debug.text().contains("RAM mapped 1:1"),
        "a PL031 does no DMA: the VM's RAM needs no 1:1 mapping",
    );
}

#[test]
fn passthrough_bad_assignments_are_refused_by_name_and_the_hypervisor_stays_up() {
    let demo = || module(guest("demo"));
    let mut q = qemu()
        .smp(2)
        .hv_args(
            "hv.stay=1 hv.passthrough=vm0:/pl031@9010000 hv.passthrough=vm1:/pl031@9010000 \
             hv.passthrough=vm2:/nonexistent@0 hv.passthrough=vm3:serial1 hv.passthrough=vm4/oops",
        )
        .vm(demo())
        .vm(demo())
        .vm(demo())
        .vm(demo())
        .vm(demo())
        .start();
    q.expect_debug("hv: ignoring an option: 'hv.passthrough=vm4/oops' is not understood")
        .expect_debug("vm0: passthrough of /pl031@9010000 refused: it is given to both vm0 and vm1")
        .expect_debug("vm1: passthrough of /pl031@9010000 refused: it is given to both vm0 and vm1")
        .expect_debug("vm2: passthrough of /nonexistent@0 refused: no such node in the device tree")
        .expect_debug(
            "vm3: passthrough of /pl011@9040000 refused: it is the hypervisor's debug console",
        )
        .expect_debug("vm0: powered off (not started: its device assignment was refused)")
        .expect_debug("vm3: powered off (not started: its device assignment was refused)")
        // vm4 was not involved: it runs to its end.
        .expect_guest("[vm4] demo: PASS")
        .expect_debug("vm4: powered off (system-off)")
        .expect_debug("hv: no VM is left; staying up for the debug console");
    q.debug.write(b"vms\r");
    q.expect_debug("vm2: off,");
    q.check(
        !q.guest.text().contains("[vm0]") && !q.guest.text().contains("[vm2]"),
        "a refused VM ran",
    );
}

#[test]
fn passthrough_the_console_lists_devices_and_snapshots_need_force() {
    let spin =
        module(guest("spin")).bootargs("console=ttyAMA0 count=100000000000 every=1000000000");
    let mut q = qemu()
        .smp(1)
        .hv_args("hv.passthrough=vm0:/pl031@9010000")
        .vm(spin)
        .start();
    q.expect_debug("hv: debug console: type 'help'")
        .expect_guest("spin: counting to");
    q.debug.write(b"vms\r");
    q.expect_debug("vm0: 1 passed-through device(s), 0 interrupts forwarded")
        .expect_debug("  /pl031@9010000: MMIO 0x9010000-0x9010fff SPI 34 (level)");
    q.debug.write(b"info\r");
    q.expect_debug("EL2 exits since boot: ");
    q.debug.write(b"snapshot save vm0\r");
    q.expect_debug(
        "error: vm0 has 1 passed-through device(s): their state is in the hardware, not in a snapshot",
    );
    q.check(
        !q.debug.contains("vm0: saved to slot"),
        "a VM with a passed-through device was saved without --force",
    );
    q.debug.write(b"snapshot save vm0 keep --force\r");
    q.expect_debug("vm0: saved to slot 'keep'");

    // The same through `cargo xtask snapshot save`, as a user runs it.
    let dir = scratch("snap");
    let file = dir.join("vm0.snap");
    let port = q.debug_port().to_string();
    q.disconnect_debug();
    let run = |force: bool| {
        let mut cmd = common::xtask();
        cmd.args(["snapshot", "save", "--port", &port, "--vm", "0"]);
        if force {
            cmd.arg("--force");
        }
        cmd.arg(&file).output().expect("cargo xtask runs")
    };
    let refused = run(false);
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        !refused.status.success() && stderr.contains("passed-through device"),
        "xtask snapshot save without --force: {stderr}"
    );
    assert!(!file.exists());
    let saved = run(true);
    assert!(
        saved.status.success(),
        "xtask snapshot save --force: {}",
        String::from_utf8_lossy(&saved.stderr)
    );
    assert!(file.is_file());
    q.reconnect_debug();
    let _ = std::fs::remove_dir_all(&dir);
}
