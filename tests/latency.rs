//! Interrupt latency (included by `qemu.rs`): an interrupt for a vCPU that is not
//! running reaches its handler promptly, not when another vCPU's slice ends.
//!
//! The `latency` guest as a pair of vCPUs (vm0: a sender and a receiver) and the
//! same guest as a competitor that spins (vm1), from a guest bundle, under QEMU
//! `-icount shift=0` with `-cpu max`: the counter then advances one tick per
//! instruction, so the figures are instruction counts and do not depend on how
//! fast the machine running the tests is.

use crate::common::{self, guest, qemu};
use std::path::{Path, PathBuf};

const ICOUNT: &str = "shift=0,sleep=off,align=off";

/// A bundle of the latency pair (`pair_args`) and a spinning competitor, written to
/// a scratch file (removed when dropped).
struct Bundle(PathBuf);

impl Bundle {
    fn new(name: &str, pair_args: &str) -> Bundle {
        let out =
            std::env::temp_dir().join(format!("hv-latency-{name}-{}.cpio", std::process::id()));
        let img = guest("latency");
        let o = common::xtask()
            .arg("bundle")
            .arg("-o")
            .arg(&out)
            .arg("--guest")
            .arg(&img)
            .args(["--cpus", "2", "--mem", "64M", "--append", pair_args])
            .arg("--guest")
            .arg(&img)
            .args(["--cpus", "1", "--mem", "64M", "--append"])
            .arg("role=competitor competitor=spin ms=300")
            .output()
            .unwrap_or_else(|e| panic!("cannot run cargo xtask bundle: {e}"));
        assert!(
            o.status.success(),
            "cargo xtask bundle failed:\n{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        Bundle(out)
    }
    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for Bundle {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// (min, median, max) from the pair's `latency: <what> ticks min=.. median=.. max=..`.
fn figures(q: &common::Qemu, what: &str) -> (u64, u64, u64) {
    let text = q.guest.text();
    let key = format!("latency: {what} ticks ");
    let line = text
        .lines()
        .find_map(|l| l.split_once(&key).map(|(_, r)| r.trim().to_owned()))
        .unwrap_or_else(|| q.fail(&format!("the pair printed no {what} figures")));
    let field = |name: &str| -> u64 {
        line.split_whitespace()
            .find_map(|w| w.strip_prefix(name)?.strip_prefix('=')?.parse().ok())
            .unwrap_or_else(|| q.fail(&format!("no {name} in {line:?}")))
    };
    (field("min"), field("median"), field("max"))
}

/// Boots the pair and the competitor on `cpus` CPUs with slices of `slice_us`;
/// returns the finished run. The pair must pass while the competitor is still
/// spinning (its last line comes after the pair's PASS).
fn run(cpus: u32, pair_args: &str, slice_us: u64) -> common::Qemu {
    let bundle = Bundle::new(&format!("{cpus}-{slice_us}"), pair_args);
    let mut q = qemu()
        .smp(cpus)
        .initrd(bundle.path())
        .append(&format!("hv.slice_us={slice_us}"))
        .arg("-icount")
        .arg(ICOUNT)
        .start();
    q.expect_guest("[vm0] latency: cpus=2")
        .expect_guest("counter_hz=1000000000")
        .expect_guest("[vm0] latency: PASS")
        .expect_guest("[vm1] latency: competitor done after")
        .expect_guest("[vm1] latency: PASS");
    q.expect_clean_exit();
    let text = q.guest.text();
    let pass = text.find("[vm0] latency: PASS").unwrap_or(usize::MAX);
    let done = text.find("[vm1] latency: competitor done").unwrap_or(0);
    q.check(
        pass < done,
        "the competitor stopped before the pair finished: nothing competed for the CPU",
    );
    q
}

/// vm0's two vCPUs and vm1's spinning vCPU all on one CPU: the sender has spun
/// 300 us (longer than the minimum run) when it sends, and spins on until the
/// receiver took the IPI, so only a preemption lets the receiver run before the
/// sender's 10 ms slice ends. The budget: at most twice the same measurement with
/// the pair on two CPUs (the sender waiting in WFI there, so that QEMU's
/// round-robin of CPUs does not hold the receiver's CPU off), and far below a slice.
#[test]
fn latency_ipi_between_vcpus_sharing_one_cpu_is_within_budget() {
    let slice_us = 10_000;
    let one = run(1, "rounds=16 wait=spin", slice_us);
    let (_, median1, max1) = figures(&one, "ipi");
    let two = run(2, "rounds=16 wait=wfi", slice_us);
    let (_, median2, _) = figures(&two, "ipi");
    eprintln!(
        "ipi latency: 1 CPU median {median1} max {max1}; 2 CPUs median {median2} (instructions)"
    );
    one.check(
        max1 <= 2 * median2,
        &format!("IPI latency on one CPU {max1} instructions, over twice the two-CPU {median2}"),
    );
    one.check(
        max1 < slice_us * 1000 / 100,
        &format!("IPI latency {max1} instructions: bounded by the slice, not by a preemption"),
    );
}

/// The receiver blocks in WFI with its virtual timer armed 300 us ahead while the
/// competitor spins on the same CPU with a 50 ms slice: the receiver's handler must
/// run at its deadline, not when the competitor's slice ends.
#[test]
fn latency_timer_wakes_a_blocked_vcpu_before_the_other_vcpus_slice_ends() {
    let slice_us = 50_000;
    let q = run(1, "rounds=16 wait=spin", slice_us);
    let (_, median, max) = figures(&q, "timer");
    eprintln!("timer latency on one CPU: median {median} max {max} (instructions)");
    // MIN_RUN (100 us) is the longest a woken vCPU may wait; the deadline itself
    // is 300 us after the competitor got the CPU, so it waits for nothing.
    q.check(
        max < 100_000,
        &format!(
            "timer latency {max} instructions: the wake-up waited for the slice ({slice_us} us)"
        ),
    );
}
