//! Issue 13 item 1: a restored VM's virtual counter goes on from where it was
//! saved. The `spin` guest prints its virtual counter (CNTVCT_EL0) with each
//! progress line; these tests read it before a save and after the restore.
//!
//! QEMU's `-cpu max` counts at 1 GHz, and without `-icount` its clock follows the
//! host's, so a reading converts to seconds of the machine's life; wall-clock
//! times here only bound how far the counter may have moved, with generous margins.

use super::common::{self, guest, module, qemu, Qemu};
use super::{ask, complete_lines, run_xtask};
use std::time::{Duration, Instant};

/// The counter's frequency under `-cpu max` (QEMU 10; DESIGN.md, Tests).
const HZ: f64 = 1e9;
/// The spin guest's progress step.
const EVERY: u64 = 100_000_000;
/// The machine's memory: the smallest that holds the guest module (at 0x50000000,
/// 256 MiB above RAM's base), so saves and restores are quick.
const MEMORY: &str = "288M";
/// How far machine A counts (30 s of its life) before its VM is saved.
const A_COUNT: u64 = 30_000_000_000;

fn spin() -> common::Module {
    module(guest("spin")).bootargs(&format!(
        "console=ttyAMA0 count=1000000000000 every={EVERY}"
    ))
}

/// `spin: progress N/M counter=C` lines of `text`: (N, C).
fn readings(text: &str) -> Vec<(u64, u64)> {
    complete_lines(text)
        .lines()
        .filter_map(|l| {
            let rest = l.strip_prefix("spin: progress ")?;
            let (n, rest) = rest.split_once('/')?;
            let c = rest.split_once(" counter=")?.1;
            Some((n.parse().ok()?, c.trim().parse().ok()?))
        })
        .collect()
}

fn last(q: &Qemu) -> (u64, u64) {
    match readings(&q.guest.text()).last() {
        Some(&r) => r,
        None => q.fail("the guest printed no progress line"),
    }
}

/// Waits for the second reading printed after byte `from` (the guest console's
/// length when the command before returned): the first may have been read from
/// the counter before that command paused the VM, the second was not.
fn reading_after(q: &Qemu, from: usize) -> (u64, u64) {
    let start = Instant::now();
    loop {
        if let Some(&r) = readings(&q.guest.text()[from..]).get(1) {
            return r;
        }
        if start.elapsed() > common::DEADLINE {
            q.fail("the guest printed no two progress lines after the command");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Waits for the first progress line after byte `from` that does not follow the
/// one before it by one step (`prev` is the reading just before `from`): the
/// restored guest's first reading. Returns it, when it was seen, and the next two.
fn first_restored(
    q: &Qemu,
    from: usize,
    prev: (u64, u64),
) -> ((u64, u64), Instant, Vec<(u64, u64)>) {
    let start = Instant::now();
    let mut seen: Option<(usize, Instant)> = None;
    loop {
        let r = readings(&q.guest.text()[from..]);
        let mut own = prev.0;
        let jump = r.iter().position(|&(n, _)| {
            let next = n == own + EVERY;
            own = n;
            !next
        });
        if let Some(i) = jump {
            let at = *seen.get_or_insert((i, Instant::now()));
            if r.len() >= at.0 + 3 {
                return (r[at.0], at.1, r[at.0 + 1..at.0 + 3].to_vec());
            }
        }
        if start.elapsed() > common::DEADLINE {
            q.fail(&format!(
                "no reading from the restored guest after {prev:?}: {r:?}"
            ));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Saved to a file by `cargo xtask snapshot save` from a machine that had run a
/// while, restored by `cargo xtask snapshot restore` into a fresh boot that has
/// run for less: the guest's counter goes on from the count the file recorded
/// (which `snapshot show` prints), so it is never below the last reading before
/// the save (it went back to the new machine's count before), and is ahead of the
/// recorded count by no more than the guest can have run since the restore (the
/// seconds between the save and the restore do not pass for it).
#[test]
fn a_vm_restored_into_a_younger_machine_counts_on_from_its_saved_counter() {
    let dir = crate::common::Scratch::new("vcounter");
    let file = dir.0.join("vm0.snap");

    // Machine A: runs longer than B will have run when its restore ends (B's
    // boot and a restore of this small VM take well under half a minute, even on
    // a loaded machine; the premise is checked below).
    let mut a = qemu().smp(1).memory(MEMORY).vm(spin()).start();
    a.expect_debug("hv: debug console: type 'help' for commands")
        .expect_guest(&format!("spin: progress {EVERY}/"));
    let start = Instant::now();
    while last(&a).1 < A_COUNT {
        if start.elapsed() > common::DEADLINE {
            a.fail(&format!("the guest's counter did not reach {A_COUNT}"));
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    a.disconnect_debug();
    let port = a.debug_port().to_string();
    let lo = last(&a);
    let save = run_xtask(&[
        "snapshot".as_ref(),
        "save".as_ref(),
        "--port".as_ref(),
        port.as_ref(),
        "--vm".as_ref(),
        "0".as_ref(),
        file.as_os_str(),
    ]);
    let mark = complete_lines(&a.guest.text()).len();
    a.check(
        save.status.success(),
        &format!("cargo xtask snapshot save failed: {save}"),
    );
    // A reading after the save: the count the file holds lies between lo and hi.
    let hi = reading_after(&a, mark);
    drop(a);

    let show = run_xtask(&["snapshot".as_ref(), "show".as_ref(), file.as_os_str()]);
    let recorded: Option<u64> = show.stdout.lines().find_map(|l| {
        l.strip_prefix("virtual counter: ")?
            .strip_suffix(" when saved")?
            .parse()
            .ok()
    });
    let recorded = match recorded {
        Some(c) if c > lo.1 && c < hi.1 => c,
        _ => panic!(
            "snapshot show: the recorded count {recorded:?} is not between the readings {lo:?} and {hi:?} around the save: {show}"
        ),
    };
    eprintln!("saved at count {recorded}, between readings {lo:?} and {hi:?}");

    // The seconds between save and restore must not count for the guest.
    std::thread::sleep(Duration::from_secs(2));

    // Machine B, fresh: restore as soon as the guest runs.
    let mut b = qemu().smp(1).memory(MEMORY).vm(spin()).start();
    b.expect_debug("hv: debug console: type 'help' for commands")
        .expect_guest(&format!("spin: progress {EVERY}/"));
    b.disconnect_debug();
    let port = b.debug_port().to_string();
    let before = complete_lines(&b.guest.text()).len();
    let b_prev = last(&b);
    let b_prev_seen = Instant::now();
    let restore = run_xtask(&[
        "snapshot".as_ref(),
        "restore".as_ref(),
        "--port".as_ref(),
        port.as_ref(),
        "--vm".as_ref(),
        "0".as_ref(),
        file.as_os_str(),
    ]);
    // The restore set the VM's counter before the command ended.
    let restored = Instant::now();
    b.check(
        restore.status.success(),
        &format!("cargo xtask snapshot restore failed: {restore}"),
    );
    b.reconnect_debug();
    let (first, seen, next) = first_restored(&b, before, b_prev);
    let ran = seen.duration_since(restored).as_secs_f64() + 1.0;
    eprintln!(
        "B before the restore {b_prev:?}; the restored guest {first:?} then {next:?}, seen within {ran:.2} s of the restore"
    );
    // The premise: B's own count (at most b_prev plus the time since, with a
    // second's margin for how late b_prev was seen) is still behind the reading
    // before the save, so a restore that let the guest see the machine's count
    // would read below lo.
    let b_count = b_prev.1 as f64 + HZ * (seen.duration_since(b_prev_seen).as_secs_f64() + 1.0);
    b.check(
        b_count < lo.1 as f64,
        &format!(
            "the test cannot tell: machine B's counter (up to {b_count:.0}) caught up with A's at the save ({}); A must run longer",
            lo.1
        ),
    );
    b.check(
        first.0 > lo.0 && first.0 <= hi.0,
        &format!(
            "the guest went on at progress {} (the save was between {} and {})",
            first.0, lo.0, hi.0
        ),
    );
    b.check(
        first.1 > lo.1,
        &format!(
            "the restored guest's counter went back: {} after the restore, {} before the save",
            first.1, lo.1
        ),
    );
    let bound = recorded as f64 + HZ * ran;
    b.check(
        first.1 >= recorded && (first.1 as f64) <= bound,
        &format!(
            "the restored guest's counter read {}: not from the saved {recorded} on, or past {bound:.0} ({ran:.2} s later)",
            first.1
        ),
    );
    b.check(
        next[0].1 > first.1 && next[1].1 > next[0].1,
        &format!("the counter does not count on: {first:?} then {next:?}"),
    );
    ask(&mut b, "vms", "vm0: running, 1 vCPU(s)");
}

/// An in-memory rollback (`snapshot restore vm0 SLOT` while it runs) takes the
/// guest's counter back with its state: it goes on from where it was at the save,
/// not from the seconds the machine ran since.
#[test]
fn a_rolled_back_vm_counts_on_from_the_saved_counter() {
    let mut q = qemu().smp(1).memory(MEMORY).vm(spin()).start();
    q.expect_debug("hv: debug console: type 'help' for commands")
        .expect_guest(&format!("spin: progress {}/", 2 * EVERY));
    let lo = last(&q);
    ask(&mut q, "snapshot save vm0 t", "vm0: saved to slot 't'");
    let hi = reading_after(&q, complete_lines(&q.guest.text()).len());
    // Let the machine run on for several seconds past the save.
    std::thread::sleep(Duration::from_secs(6));
    let before = complete_lines(&q.guest.text()).len();
    let prev = last(&q);
    ask(
        &mut q,
        "snapshot restore vm0 t",
        "vm0: restored from slot 't'",
    );
    // The restore set the VM's counter before it answered.
    let restored = Instant::now();
    let (first, seen, next) = first_restored(&q, before, prev);
    let ran = seen.duration_since(restored).as_secs_f64() + 1.0;
    eprintln!(
        "saved between {lo:?} and {hi:?}; at {prev:?} rolled back to {first:?} then {next:?} (seen within {ran:.2} s)"
    );
    let bound = hi.1 as f64 + HZ * ran;
    // The premise: the machine's own count, which a rollback that left the
    // counter alone would show, is past the bound already.
    q.check(
        prev.1 as f64 > bound,
        &format!(
            "the test cannot tell: the machine ran on only to {} since the save (hi {}, bound {bound:.0})",
            prev.1, hi.1
        ),
    );
    q.check(
        first.0 > lo.0 && first.0 <= hi.0,
        &format!(
            "the guest went on at progress {} (saved between {} and {})",
            first.0, lo.0, hi.0
        ),
    );
    q.check(
        first.1 > lo.1 && (first.1 as f64) <= bound,
        &format!(
            "after the rollback the counter read {}: not after {} (before the save), or past {bound:.0}",
            first.1, lo.1
        ),
    );
    q.check(
        next[0].1 > first.1 && next[1].1 > next[0].1,
        &format!("the counter does not count on: {first:?} then {next:?}"),
    );
}
