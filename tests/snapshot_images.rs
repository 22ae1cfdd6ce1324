//! Issue 13 item 5: a streamed snapshot sends the pages inside its VM's boot
//! images (kernel, initrd) as they were booted or as their difference from
//! them, and names those images (IPA, size, CRC-32) before its RAM. Two VMs run
//! the same program from two different kernel images (the second one's file
//! has a page more): vm0's snapshot is refused by vm1 with a message, before
//! anything changes (vm1 runs on), and the same state saved `--self-contained`
//! restores into vm1.

use crate::common::{self, guest, module, qemu, Qemu};
use std::time::{Duration, Instant};

const EVERY: u64 = 100_000_000;

/// vmN's counts on the guest console (complete lines only).
fn counts(q: &Qemu, vm: usize) -> Vec<u64> {
    let text = q.guest.text();
    let complete = &text[..text.rfind('\n').map_or(0, |i| i + 1)];
    let prefix = format!("[vm{vm}] spin: progress ");
    complete
        .lines()
        .filter_map(|l| {
            l.trim()
                .strip_prefix(&prefix)?
                .split('/')
                .next()?
                .parse()
                .ok()
        })
        .collect()
}

fn count_above(q: &Qemu, vm: usize, above: u64, what: &str) -> u64 {
    let start = Instant::now();
    loop {
        if let Some(&l) = counts(q, vm).last().filter(|&&l| l > above) {
            return l;
        }
        if start.elapsed() > common::DEADLINE {
            q.fail(&format!("{what}: vm{vm} printed no count above {above}"));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `cargo xtask snapshot ARGS`: success, and standard output and error.
fn xtask(args: &[&str]) -> (bool, String) {
    let out = common::xtask()
        .arg("snapshot")
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run cargo xtask: {e}"));
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), text)
}

#[test]
fn a_snapshot_that_refers_to_its_boot_images_restores_only_into_a_vm_booted_with_them() {
    let dir = std::env::temp_dir().join(format!("hv-snapimages-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    // The same program, another image: a page of padding after it.
    let mut other = std::fs::read(guest("spin")).unwrap();
    other.extend_from_slice(&[0x5a; 4096]);
    let other_path = dir.join("spin-padded.img");
    std::fs::write(&other_path, &other).unwrap();
    let args = format!("console=ttyAMA0 count=1000000000000 every={EVERY}");
    let mut q = qemu()
        .smp(1)
        .vm(module(guest("spin")).bootargs(&args))
        .vm(module(&other_path).bootargs(&args))
        .start();
    q.expect_debug("hv: debug console: type 'help' for commands");
    count_above(&q, 0, EVERY, "before the save");
    count_above(&q, 1, EVERY, "before the save");
    q.disconnect_debug();
    let port = q.debug_port().to_string();
    let file = dir.join("vm0.snap");
    let whole = dir.join("vm0-whole.snap");
    let path = |p: &std::path::Path| p.to_str().unwrap().to_string();

    let (ok, out) = xtask(&["save", "--port", &port, "--vm", "0", &path(&file)]);
    q.check(ok, &format!("the save failed: {out}"));
    let (ok, out) = xtask(&[
        "save",
        "--port",
        &port,
        "--vm",
        "0",
        "--self-contained",
        &path(&whole),
    ]);
    q.check(ok, &format!("the self-contained save failed: {out}"));
    let (_, shown) = xtask(&["show", &path(&file)]);
    q.check(
        shown.contains("depends on the VM's boot images") && shown.contains("IPA 0x"),
        &format!("snapshot show does not name the boot images: {shown}"),
    );
    let (_, shown) = xtask(&["show", &path(&whole)]);
    q.check(
        !shown.contains("depends on"),
        &format!("a self-contained snapshot names boot images: {shown}"),
    );

    // Into vm1, booted with the other image: refused, and vm1 runs on.
    let (ok, out) = xtask(&["restore", "--port", &port, "--vm", "1", &path(&file)]);
    q.check(
        !ok && out.contains("refers to a boot image at IPA")
            && out.contains("that this VM was not booted with"),
        &format!("a restore into a VM booted with another kernel was not refused by name: {out}"),
    );
    let cut = counts(&q, 1).last().copied().unwrap_or(0);
    count_above(&q, 1, cut + EVERY, "after the refused restore");

    // The self-contained one restores there.
    let (ok, out) = xtask(&["restore", "--port", &port, "--vm", "1", &path(&whole)]);
    q.check(
        ok && out.contains("restored vm1 from"),
        &format!("the self-contained snapshot did not restore into vm1: {out}"),
    );
    let cut = counts(&q, 1).last().copied().unwrap_or(0);
    count_above(&q, 1, cut + EVERY, "after the restore");
    q.reconnect_debug();
    let _ = std::fs::remove_dir_all(&dir);
}
