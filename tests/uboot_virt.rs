//! A boot loader the other tests never use (included by `qemu.rs`): Debian's
//! U-Boot for QEMU (`u-boot-qemu`, `/usr/lib/u-boot/qemu_arm64/u-boot.bin`) is the
//! firmware of `virt` with EL2 (`-bios`), so U-Boot runs at EL2 and boots the
//! hypervisor as it boots Linux: the Image and a guest bundle (`cargo xtask
//! bundle`) are in RAM where U-Boot's environment expects them (QEMU's `loader`
//! device puts them there), and `booti` is typed at U-Boot's prompt on the first
//! serial line, as a person would. U-Boot moves the initrd and the device tree
//! to the top of RAM, and reserves the initrd with a `/memreserve/` entry. Two
//! bundles: the bundled `bootinfo` and `demo` guests (sizes, command lines,
//! initrd), and Debian's Linux with its initramfs.

use crate::common::{self, guest, qemu, xtask_bundle, Builder, Qemu, Scratch};
use std::path::{Path, PathBuf};

/// Where Debian's `u-boot-qemu` puts U-Boot for QEMU `virt` (AArch64).
const UBOOT: &str = "/usr/lib/u-boot/qemu_arm64/u-boot.bin";
/// U-Boot's `kernel_addr_r` and `ramdisk_addr_r` on qemu_arm64.
const IMAGE_AT: u64 = 0x4040_0000;
const BUNDLE_AT: u64 = 0x4400_0000;

fn uboot() -> PathBuf {
    let p = PathBuf::from(UBOOT);
    assert!(
        p.is_file(),
        "{UBOOT} is missing: run `cargo xtask setup` (it installs Debian's u-boot-qemu)"
    );
    p
}

/// Starts `q` with U-Boot as firmware, the hypervisor and `bundle` (`size`
/// bytes) in RAM, and types at U-Boot's prompt on the first serial line: `setenv
/// bootargs` (the hypervisor's command line, if any), then `booti`.
fn booti(q: Builder, uboot: &Path, bundle: &Path, size: u64, bootargs: Option<&str>) -> Qemu {
    let mut q = q
        .arg("-nic")
        .arg("none")
        .firmware(uboot, IMAGE_AT)
        .load(bundle, BUNDLE_AT)
        .start();
    // Stop the autoboot countdown (if it ran out, the distro boot finds nothing
    // and comes to the prompt too).
    q.expect_guest("Hit any key to stop autoboot");
    q.guest.write(b" ");
    q.expect_guest("\n=> ");
    if let Some(args) = bootargs {
        q.guest
            .write(format!("setenv bootargs {args}\r").as_bytes());
        q.expect_guest(&format!("setenv bootargs {args}\n=> "));
    }
    q.guest.write(
        format!("booti {IMAGE_AT:#x} {BUNDLE_AT:#x}:{size:#x} ${{fdtcontroladdr}}\r").as_bytes(),
    );
    q.expect_guest("Loading Ramdisk to")
        .expect_guest("Starting kernel ...");
    q
}

#[test]
fn uboot_booti_on_virt_boots_the_hypervisor_and_its_bundle() {
    let uboot = uboot();
    let scratch = Scratch::new("uboot");
    let dir = &scratch.0;
    std::fs::create_dir_all(dir).unwrap();
    let initrd = dir.join("rootfs.txt");
    std::fs::write(&initrd, "initrd-through-u-boot\n").unwrap();
    let bundle = dir.join("bundle.cpio");
    let (bootinfo, demo) = (guest("bootinfo"), guest("demo"));
    let os = |s: &'static str| -> &std::ffi::OsStr { s.as_ref() };
    let size = xtask_bundle(
        &bundle,
        &[
            os("--guest"),
            bootinfo.as_os_str(),
            os("--initrd"),
            initrd.as_os_str(),
            os("--append"),
            os("console=ttyAMA0 marker=uboot-vm0"),
            os("--cpus"),
            os("1"),
            os("--mem"),
            os("64M"),
            os("--guest"),
            demo.as_os_str(),
            os("--append"),
            os("console=ttyAMA0 marker=uboot-vm1"),
        ],
    );
    // U-Boot's bootargs are the hypervisor's own command line.
    let mut q = booti(
        qemu().smp(2),
        &uboot,
        &bundle,
        size,
        Some("hv.slice_us=5000"),
    );
    q.expect_debug(&format!(
        "(board qemu-virt) at EL2, image at {IMAGE_AT:#x}, DTB at 0x"
    ))
    .expect_debug("hv: memory: 0x40000000-0x7fffffff (1024 MiB)")
    .expect_debug("hv: scheduling slice 5000 us")
    .expect_debug("hv: 2 CPU(s) online")
    .expect_debug("hv: guest bundle at 0x")
    .expect_debug("2 VM directories")
    .expect_debug("vm0: 1 vCPU(s), 64 MiB RAM")
    .expect_debug("vm0: bootargs \"console=ttyAMA0 marker=uboot-vm0\"")
    .expect_debug("vm1: 2 vCPU(s)")
    .expect_guest("[vm0] bootinfo: bootargs=console=ttyAMA0 marker=uboot-vm0")
    .expect_guest("[vm0] bootinfo: initrd=initrd-through-u-boot")
    .expect_guest("[vm0] bootinfo: memory=64 MiB")
    .expect_guest("[vm0] bootinfo: PASS")
    .expect_guest("[vm1] demo: bootargs=console=ttyAMA0 marker=uboot-vm1")
    .expect_guest("[vm1] demo: cpus online=2/2")
    .expect_guest("[vm1] demo: PASS")
    .expect_debug("vm0: powered off (system-off)")
    .expect_debug("vm1: powered off (system-off)")
    .expect_debug("hv: no VM is left: powering off");
    q.expect_clean_exit();
    let debug = q.debug.text();
    q.check(
        !debug.contains("ignoring the boot loader's initrd")
            && !debug.contains("not starting")
            && !debug.contains("PANIC")
            && !debug.contains("CRASH"),
        "the hypervisor refused the bundle U-Boot passed, or failed",
    );
}

/// Debian's Linux, in a bundle U-Boot passes: a guest and a boot loader that the
/// hypervisor's own tests did not write.
#[test]
fn uboot_booti_on_virt_boots_debians_linux_from_a_bundle() {
    let uboot = uboot();
    let (kernel, initrd, version) = common::linux();
    let scratch = Scratch::new("uboot-linux");
    std::fs::create_dir_all(&scratch.0).unwrap();
    let bundle = scratch.0.join("linux.cpio");
    let os = |s: &'static str| -> &std::ffi::OsStr { s.as_ref() };
    let size = xtask_bundle(
        &bundle,
        &[
            os("--guest"),
            kernel.as_os_str(),
            os("--initrd"),
            initrd.as_os_str(),
            os("--append"),
            os("console=ttyAMA0 panic=-1"),
        ],
    );
    let mut q = booti(qemu().smp(2).cpu("cortex-a72"), &uboot, &bundle, size, None);
    q.expect_debug(&format!("(board qemu-virt) at EL2, image at {IMAGE_AT:#x}"))
        .expect_debug("hv: guest bundle at 0x")
        .expect_debug("vm0: from bundle vm0/")
        .expect_debug("vm0: bootargs \"console=ttyAMA0 panic=-1\"")
        .expect_guest(&format!("Linux version {version}"))
        .expect_guest("linux-guest: init running")
        .expect_guest("linux-guest: cpus=2")
        .expect_guest("linux-guest: PASS")
        .expect_debug("vm0: powered off (system-off)")
        .expect_debug("hv: no VM is left: powering off");
    q.expect_clean_exit();
}
