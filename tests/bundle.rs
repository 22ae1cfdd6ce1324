//! Guest bundles on QEMU `virt` (included by `qemu.rs`): the boot loader's initrd
//! (`-initrd`, no guest-loader) carries the guests; a bundle made by
//! `cargo xtask bundle` boots its VMs with the sizes and command lines it says; a
//! broken VM directory is refused by name while the other starts; a
//! guest-loader module over the device tree is refused naming it; Debian's
//! Linux boots from a bundle.

use crate::common::{self, guest, module, qemu, xtask_bundle, Scratch};
use std::process::Command;

fn os(s: &str) -> &std::ffi::OsStr {
    s.as_ref()
}

/// No Rust Debug output on either console.
fn no_debug_output(q: &common::Qemu) {
    for t in [q.debug.text(), q.guest.text()] {
        for pattern in ["Some(", "None", "Err(", "Ok(", " { "] {
            q.check(
                !t.contains(pattern),
                &format!("a console shows Rust Debug output ('{pattern}')"),
            );
        }
    }
}

#[test]
fn a_two_vm_bundle_from_xtask_boots_from_the_initrd_with_its_sizes_and_command_lines() {
    let s = Scratch::new("bundle-two");
    let initrd = s.path("rootfs.txt");
    std::fs::write(&initrd, "initrd-in-a-bundle\n").unwrap();
    let out = s.path("two.cpio");
    let (bootinfo, demo) = (guest("bootinfo"), guest("demo"));
    let size = xtask_bundle(
        &out,
        &[
            os("--guest"),
            bootinfo.as_os_str(),
            os("--initrd"),
            initrd.as_os_str(),
            os("--append"),
            os("console=ttyAMA0 marker=bundle-vm0"),
            os("--cpus"),
            os("1"),
            os("--mem"),
            os("64M"),
            os("--guest"),
            demo.as_os_str(),
            os("--append"),
            os("console=ttyAMA0 marker=bundle-vm1"),
        ],
    );
    eprintln!("two-VM bundle: {size} bytes");
    let mut q = qemu().smp(2).initrd(&out).start();
    q.expect_debug("hv: guest bundle at 0x48000000")
        .expect_debug("2 VM directories")
        .expect_debug("vm0: from bundle vm0/")
        .expect_debug("vm0: 1 vCPU(s), 64 MiB RAM")
        .expect_debug("vm0: bootargs \"console=ttyAMA0 marker=bundle-vm0\"")
        .expect_debug("vm1: from bundle vm1/")
        .expect_debug("vm1: 2 vCPU(s)")
        .expect_guest("[vm0] bootinfo: bootargs=console=ttyAMA0 marker=bundle-vm0")
        .expect_guest("[vm0] bootinfo: initrd=initrd-in-a-bundle")
        .expect_guest("[vm0] bootinfo: memory=64 MiB")
        .expect_guest("[vm0] bootinfo: cpus=1")
        .expect_guest("[vm0] bootinfo: PASS")
        .expect_guest("[vm1] demo: bootargs=console=ttyAMA0 marker=bundle-vm1")
        .expect_guest("[vm1] demo: cpus=2")
        .expect_guest("[vm1] demo: PASS")
        .expect_debug("hv: no VM is left: powering off");
    q.expect_clean_exit();
    q.check(
        !q.debug.contains("not starting"),
        "a VM of a good bundle was refused",
    );
    no_debug_output(&q);
}

/// A bundle made with GNU cpio, as DESIGN.md says anyone can: vm0's config has
/// a misspelt key, vm1 is good.
#[test]
fn a_broken_vm_directory_is_refused_by_name_and_the_other_vm_starts() {
    let s = Scratch::new("bundle-broken");
    let tree = s.path("tree");
    for vm in ["vm0", "vm1"] {
        std::fs::create_dir_all(tree.join(vm)).unwrap();
        std::fs::copy(guest("demo"), tree.join(vm).join("kernel")).unwrap();
        std::fs::write(tree.join(vm).join("cmdline"), "console=ttyAMA0\n").unwrap();
    }
    std::fs::write(tree.join("vm0/config"), "# two CPUs\ncpu=2\n").unwrap();
    let out = s.path("broken.cpio");
    let status = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "find . | LC_ALL=C sort | cpio -o -H newc --quiet > '{}'",
            out.display()
        ))
        .current_dir(&tree)
        .status()
        .expect("cannot run sh");
    assert!(
        status.success() && std::fs::metadata(&out).unwrap().len() > 0,
        "cpio failed: install it (cargo xtask setup, or apt-get install cpio)"
    );
    let mut q = qemu().smp(2).initrd(&out).start();
    q.expect_debug(
        "hv: not starting the guest from bundle vm0/: vm0/config line 2: unknown key 'cpu' (the keys are cpus, mem and passthrough)",
    )
    .expect_debug("vm0: from bundle vm1/")
    .expect_guest("demo: PASS")
    .expect_debug("vm0: powered off (system-off)")
    .expect_debug("hv: no VM is left: powering off");
    q.expect_clean_exit();
    q.check(
        !q.debug.contains("vm1: "),
        "a second VM started from a bundle with one good directory",
    );
    no_debug_output(&q);
}

/// QEMU puts the DTB at RAM base + 128 MiB (0x48000000) with -m 1G and no
/// -initrd, and writes it over a guest-loader module placed there.
#[test]
fn a_module_over_the_device_tree_is_refused_naming_it_and_the_other_vm_starts() {
    let bad = format!(
        "guest-loader,addr=0x48000000,kernel={},bootargs=console=ttyAMA0",
        guest("demo").display()
    );
    let mut q = qemu()
        .smp(2)
        .memory("1G")
        .vm(module(guest("bootinfo")).bootargs("console=ttyAMA0 marker=survivor"))
        .arg("-device")
        .arg(&bad)
        .start();
    q.expect_debug("hv: not starting the guest from the kernel module at 0x48000000: the kernel module at 0x48000000-")
        .expect_debug("overlaps the host device tree at 0x48000000-")
        .expect_debug("load it at a free address in RAM")
        .expect_debug("vm0: from the kernel module at 0x50000000")
        .expect_guest("bootinfo: bootargs=console=ttyAMA0 marker=survivor")
        .expect_guest("bootinfo: PASS")
        .expect_debug("hv: no VM is left: powering off");
    q.expect_clean_exit();
    q.check(!q.guest.contains("demo:"), "the module over the DTB ran");
    no_debug_output(&q);
}

#[test]
fn debians_linux_boots_from_a_bundle() {
    let (kernel, initrd, version) = common::linux();
    let s = Scratch::new("bundle-linux");
    let out = s.path("linux.cpio");
    let size = xtask_bundle(
        &out,
        &[
            os("--guest"),
            kernel.as_os_str(),
            os("--initrd"),
            initrd.as_os_str(),
            os("--append"),
            os("console=ttyAMA0 panic=-1"),
        ],
    );
    eprintln!("Linux bundle: {size} bytes");
    let mut q = qemu().smp(2).cpu("cortex-a72").initrd(&out).start();
    q.expect_debug("hv: guest bundle at 0x48000000")
        .expect_debug("vm0: from bundle vm0/")
        .expect_guest(&format!("Linux version {version}"))
        .expect_guest("linux-guest: init running")
        .expect_guest("linux-guest: cpus=2")
        .expect_guest("linux-guest: PASS")
        .expect_debug("vm0: powered off (system-off)");
    q.expect_clean_exit();
}

/// Image headers that lie: one whose `text_offset + image_size` overflows, one
/// claiming more than the VM's RAM. Both VMs are refused in words, the third
/// starts. (Written with the hypervisor's own cpio writer: `cargo xtask bundle`
/// would take these files too, it does not judge kernels.)
#[test]
fn absurd_kernel_headers_are_refused_in_words_and_the_other_vm_starts() {
    let demo = std::fs::read(guest("demo")).unwrap();
    let with_header = |text_offset: u64, image_size: u64| {
        let mut k = demo.clone();
        assert_eq!(&k[56..60], b"ARM\x64", "the demo guest is an arm64 Image");
        k[8..16].copy_from_slice(&text_offset.to_le_bytes());
        k[16..24].copy_from_slice(&image_size.to_le_bytes());
        k
    };
    let mut w = hypervisor::bundle::cpio::Writer::new();
    w.file("vm0/kernel", &with_header(0x8_0000, u64::MAX - 0x1000))
        .file("vm0/config", b"mem=64M\n")
        .file("vm1/kernel", &with_header(0, 4 << 30))
        .file("vm1/config", b"mem=64M\n")
        .file("vm2/kernel", &std::fs::read(guest("bootinfo")).unwrap())
        .file("vm2/cmdline", b"console=ttyAMA0 marker=sane\n");
    let s = Scratch::new("bundle-absurd");
    let out = s.path("absurd.cpio");
    std::fs::write(&out, w.finish()).unwrap();
    let mut q = qemu().smp(2).initrd(&out).start();
    q.expect_debug(
        "hv: not starting the guest from bundle vm0/: the kernel's Image header is absurd: text_offset 0x80000 plus image_size 0xffffffffffffefff is beyond any memory",
    )
    .expect_debug(
        "hv: not starting the guest from bundle vm1/: the kernel (arm64 Image) needs 4096 MiB from the start of RAM and the VM has 64 MiB: give the VM more memory or use a smaller kernel",
    )
    .expect_debug("vm0: from bundle vm2/")
    .expect_guest("bootinfo: bootargs=console=ttyAMA0 marker=sane")
    .expect_guest("bootinfo: PASS")
    .expect_debug("hv: no VM is left: powering off");
    q.expect_clean_exit();
    no_debug_output(&q);
}
