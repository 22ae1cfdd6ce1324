//! VM restarts (included by `qemu.rs`): Debian's Linux reboots itself twice and
//! boots again each time; the console's `reset vmN` restarts a bundled guest; a
//! guest that resets in a loop is rate-limited and the console stays usable.

use crate::common::{self, guest, module, qemu};
use std::time::{Duration, Instant};

/// Waits until `text` has appeared `n` times on the guest (or debug) console.
fn wait_count(q: &mut common::Qemu, debug: bool, text: &str, n: usize, deadline: Duration) {
    let start = Instant::now();
    loop {
        let t = if debug {
            q.debug.text()
        } else {
            q.guest.text()
        };
        if t.matches(text).count() >= n {
            return;
        }
        if start.elapsed() > deadline {
            let which = if debug { "debug" } else { "guest" };
            q.fail(&format!(
                "the {which} console did not print {text:?} {n} times within {deadline:?}"
            ));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Types `command` on the debug console; waits for `answer` after it.
fn ask(q: &mut common::Qemu, command: &str, answer: &str) -> String {
    let mark = q.debug.text().len();
    q.debug.write(format!("{command}\r").as_bytes());
    let start = Instant::now();
    loop {
        let t = q.debug.text()[mark..].to_owned();
        if t.contains(answer) {
            return t;
        }
        if start.elapsed() > common::DEADLINE {
            q.fail(&format!("'{command}' was not answered with {answer:?}"));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The init the Linux test boots (`rdinit=/reboot-init`, appended to the
/// busybox initramfs as a second cpio archive): it says it booted, then asks.
/// Whatever it remembered is gone after a restart (RAM is reloaded from the
/// originals), so the test drives it: `off` powers off, anything else reboots.
const REBOOT_INIT: &str = r#"#!/bin/sh
export PATH=/bin
mount -t devtmpfs devtmpfs /dev 2>/dev/null
[ -c /dev/console ] && exec </dev/console >/dev/console 2>&1
echo "reboot-test: booted"
echo "reboot-test: reboot or off?"
read -r answer
if [ "$answer" = "off" ]; then
    echo "reboot-test: powering off"
    poweroff -f
fi
echo "reboot-test: rebooting"
reboot -f
"#;

/// Issue 13 item 4: Linux's `reboot -f` (PSCI SYSTEM_RESET) restarts the VM from
/// its original kernel, initrd and device tree, twice in a row; the third boot
/// powers off as asked.
#[test]
fn linux_reboots_itself_twice_then_powers_off() {
    let (kernel, initrd, version) = common::linux();
    let mut bytes = std::fs::read(&initrd).unwrap();
    let mut w = hypervisor::bundle::cpio::Writer::new();
    w.executable("reboot-init", REBOOT_INIT.as_bytes());
    bytes.extend_from_slice(&w.finish());
    let path = std::env::temp_dir().join(format!("hv-reboot-initrd-{}", std::process::id()));
    std::fs::write(&path, &bytes).unwrap();
    // Removed when the test ends (QEMU reads it once the consoles connect).
    struct Remove(std::path::PathBuf);
    impl Drop for Remove {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }
    let _remove = Remove(path.clone());
    let m = module(&kernel)
        .initrd(&path)
        .bootargs("console=ttyAMA0 panic=-1 rdinit=/reboot-init");
    let mut q = qemu().smp(2).cpu("cortex-a72").vm(m).start();
    let long = Duration::from_secs(300);
    for boot in 1..=3 {
        wait_count(
            &mut q,
            false,
            &format!("Linux version {version}"),
            boot,
            long,
        );
        wait_count(&mut q, false, "reboot-test: reboot or off?", boot, long);
        if boot < 3 {
            q.guest.write(b"again\r");
            wait_count(&mut q, false, "reboot-test: rebooting", boot, long);
            q.expect_debug(&format!("vm0: restarting (system-reset; restart {boot})"));
        } else {
            q.guest.write(b"off\r");
        }
    }
    q.expect_guest("reboot-test: powering off")
        .expect_debug("vm0: powered off (system-off)");
    q.expect_clean_exit();
    let guest = q.guest.text();
    q.check(
        guest.matches("reboot-test: booted").count() == 3,
        "three boots",
    );
    q.check(
        !q.debug.contains("restart 3") && !q.debug.contains("reset loop"),
        "exactly two restarts, none held",
    );
    q.check(
        !q.debug.contains("UNDEF injected") && !q.debug.contains("CRASH"),
        "the guest or the hypervisor faulted",
    );
}

/// `reset vmN` at the console restarts a running bundled guest: it prints its
/// boot line again; bad input gets a message.
#[test]
fn the_console_resets_a_vm_and_it_boots_again() {
    let spin = module(guest("spin")).bootargs("console=ttyAMA0 count=1000000000000 every=50000000");
    let mut q = qemu().smp(2).vm(spin).start();
    q.expect_guest("spin: counting to 1000000000000");
    q.expect_guest("spin: progress 50000000/");
    ask(&mut q, "reset vm0", "vm0: reset");
    q.expect_debug("vm0: restarting (reset at the console; restart 1)");
    wait_count(
        &mut q,
        false,
        "spin: counting to 1000000000000",
        2,
        common::DEADLINE,
    );
    let vms = ask(&mut q, "vms", "vm0: running");
    q.check(vms.contains("2 vCPU(s)"), "vms lists the VM");
    // A paused VM restarts and stays paused until resumed.
    ask(&mut q, "pause vm0", "vm0: paused");
    ask(&mut q, "reset vm0", "vm0: reset");
    ask(&mut q, "vms", "vm0: paused");
    let before = q.guest.text().matches("spin: counting to").count();
    q.check(before == 2, "no boot while paused");
    ask(&mut q, "resume vm0", "vm0: resumed");
    wait_count(
        &mut q,
        false,
        "spin: counting to 1000000000000",
        3,
        common::DEADLINE,
    );
    ask(&mut q, "reset vm7", "error: no VM vm7");
    ask(&mut q, "reset", "error: missing a VM (vmN)");
    ask(&mut q, "reset 0", "error: '0' is not a VM name");
    q.check(
        !q.debug.contains("CRASH") && !q.debug.contains("PANIC"),
        "the hypervisor failed",
    );
}

/// A guest that resets as soon as it boots: the first `reboot::BURST` (4)
/// restarts happen at once, the next waits with one message while the console
/// answers; the loop goes on slowly, never stopped and never a livelock.
/// SYSTEM_RESET2 restarts too, and refuses a vendor reset type.
#[test]
fn a_guest_that_resets_in_a_loop_is_rate_limited() {
    let m = module(guest("reboot")).bootargs("console=ttyAMA0 reset2");
    let mut q = qemu().smp(2).vm(m).start();
    q.expect_guest("reboot: vendor reset type refused");
    q.expect_debug("vm0: restarting (system-reset2; restart 4)");
    q.expect_debug("vm0: it reset 4 times within 10 s: a reset loop; the next restart waits");
    // Held: five boots (the first and four restarts), the VM stopped, the
    // console answering.
    let vms = ask(&mut q, "vms", "vm0: restart pending");
    q.check(
        vms.contains("vm0: restart pending"),
        "vms says why it waits",
    );
    let boots = q.guest.text().matches("reboot: boot").count();
    let restarts = q.debug.text().matches("vm0: restarting (").count();
    q.check(
        boots == 5 && restarts == 4,
        &format!("5 boots and 4 restarts while held, not {boots} and {restarts}"),
    );
    // The window passes (10 s of the machine's counter): it restarts again.
    q.expect_debug_within(
        "vm0: restarting (system-reset2; restart 5)",
        Duration::from_secs(180),
    );
    q.check(
        !q.guest.contains("reboot: FAIL") && !q.debug.contains("CRASH"),
        "a reset returned, or the hypervisor failed",
    );
}

/// A VM with a passed-through device restarts, and the console says that the
/// device itself is not reset.
#[test]
fn a_restart_says_that_passed_through_devices_are_not_reset() {
    let spin = module(guest("spin")).bootargs("console=ttyAMA0 count=1000000000000 every=50000000");
    let mut q = qemu()
        .smp(1)
        .vm(spin)
        .hv_args("hv.passthrough=vm0:/pl031@9010000")
        .start();
    q.expect_guest("spin: counting to 1000000000000");
    ask(&mut q, "reset vm0", "vm0: reset");
    q.expect_debug("vm0: its 1 passed-through device(s) are not reset");
    wait_count(
        &mut q,
        false,
        "spin: counting to 1000000000000",
        2,
        common::DEADLINE,
    );
}
