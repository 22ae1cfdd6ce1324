//! Issue 14 item 4, the soak: Debian's Linux runs a shell loop that writes a
//! counter to a file in its RAM disk, reads it back, checks it and prints it,
//! while the test goes through at least 200 cycles of what a person debugging it
//! does: pause it from the debug console, save an in-memory snapshot of it and
//! restore it, resume it, and attach GDB, read memory and registers, set and
//! remove a breakpoint, detach.
//!
//! Linux must keep running with its counter never going backwards or skipping a
//! number and no failed check, the hypervisor's heap use (`info`: `heap: ...
//! (N bytes used)`) must come back to what it was after the first batch, and
//! neither console may report an error.
//!
//! Snapshots: the Linux VM comes from a guest bundle with 64 MiB of RAM (about
//! 40 MiB of it holds data: the kernel, its initramfs, page cache; Linux zeroes
//! what it frees, `init_on_free=1`, so a snapshot carries no stale pages), and the
//! hypervisor keeps slots in a snapshot pool (`hv.snapshot_pool`). A cycle saves
//! the paused VM and restores it at once, so Linux resumes exactly where it was
//! and its counter goes on one by one. Once per batch the test also rolls Linux
//! back: it saves it running, waits until it has printed a few more counts, and
//! restores it; Linux's counter then goes back to the saved point (never below
//! the last count printed before the save) and goes on from there.
//!
//! A rollback also rolls back what the guest was sending to its UART, which the
//! emulated PL011 hands out a character at a time: the line in progress at the
//! restore may be joined to the tail of the line in progress at the save. So the
//! guest prints its counter twice (`soak: count 12 12`): a line whose two
//! numbers differ, or any other line that is not a whole count, is such a join,
//! allowed once per rollback and nowhere else.
//!
//! Cost: the cycles run in batches of `BATCH`, the console's commands of a batch
//! typed in one go and one `gdb-multiarch` doing a batch's attach/detach cycles
//! (`target remote` again after each `detach`), not one gdb start-up each; Linux
//! runs on between batches and during each rollback. A snapshot save and restore
//! of the 64 MiB VM is most of a cycle.

use crate::common::{self, qemu, Qemu};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Total cycles, and cycles per batch.
const CYCLES: usize = 200;
const BATCH: usize = 20;
/// How long one batch may take (a loaded 2-core machine runs TCG slowly).
const BATCH_DEADLINE: Duration = Duration::from_secs(600);
/// The Linux VM's RAM, and the snapshot pool. Every save goes to one slot,
/// `soak`; the pool has room for it twice over, so a save that replaces it finds a
/// gap as large as the VM's RAM (about 40 MiB of the 64 are data) and never has
/// to free the old one first.
const VM_RAM: &str = "64M";
const POOL: &str = "hv.snapshot_pool=160M";
/// How many counts Linux prints between the save and the restore of a rollback.
const ROLLBACK_COUNTS: u64 = 6;

/// Linux's command line. `init_on_free=1`: pages Linux frees are zeroed, so a
/// snapshot does not carry them. The VM's virtual counter runs on while it is
/// paused for a save (a pause keeps its counter offset; a restore sets it from the
/// snapshot, see the README), so a save that a loaded machine stretches past 20 s
/// looks to Linux like a CPU stuck that long:
/// `nosoftlockup` and `rcupdate.rcu_cpu_stall_suppress=1` keep those heuristics
/// quiet; an oops, a `BUG:` or a `WARNING:` still fails the test.
const CMDLINE: &str = "console=ttyAMA0 init_on_free=1 nosoftlockup rcupdate.rcu_cpu_stall_suppress=1 rdinit=/bin/sh -- /soak.sh";

/// `/soak.sh`, run by the kernel as init: one line per turn, `soak: count N N`
/// (the number twice: see the module's docs), or `soak: CHECK FAILED ...` when the
/// file does not read back.
const SCRIPT: &str = r#"export PATH=/bin
mount -t devtmpfs devtmpfs /dev 2>/dev/null
[ -c /dev/console ] && exec </dev/console >/dev/console 2>&1
mount -t proc proc /proc
mkdir -p /tmp
echo "soak: running"
n=0
while true; do
    n=$((n + 1))
    echo "$n" >/tmp/soak.txt
    read -r back </tmp/soak.txt
    if [ "$back" != "$n" ]; then echo "soak: CHECK FAILED: wrote $n, read $back"; fi
    echo "soak: count $n $n"
    sleep 0.2
done
"#;

/// A guest bundle (the hypervisor's initrd) with one VM: Debian's kernel, its
/// initramfs with `/soak.sh` added (a second newc archive after the first, which
/// the kernel unpacks on top of it), 2 vCPUs and `VM_RAM` of RAM.
fn bundle(dir: &std::path::Path) -> std::path::PathBuf {
    let (kernel, initrd, _) = common::linux();
    let read =
        |p: &std::path::Path| std::fs::read(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    let mut rd = read(&initrd);
    let mut w = hypervisor::bundle::cpio::Writer::new();
    w.file("soak.sh", SCRIPT.as_bytes());
    rd.extend_from_slice(&w.finish());
    let mut b = hypervisor::bundle::cpio::Writer::new();
    b.file("vm0/kernel", &read(&kernel))
        .file("vm0/initrd", &rd)
        .file("vm0/cmdline", format!("{CMDLINE}\n").as_bytes())
        .file("vm0/config", format!("cpus=2\nmem={VM_RAM}\n").as_bytes());
    let path = dir.join("soak.cpio");
    std::fs::write(&path, b.finish()).unwrap();
    path
}

/// What the guest printed: each whole count line (`soak: count N N`) with the
/// offset in the guest's text where it ends, the other lines after `soak:
/// running` (joins left by rollbacks, also with their offsets), and the lines
/// reporting a failed check or a kernel error.
struct Counts {
    counts: Vec<(usize, u64)>,
    joins: Vec<(usize, String)>,
    errors: Vec<String>,
}

fn counts(q: &Qemu) -> Counts {
    let text = q.guest.text();
    let complete = &text[..text.rfind('\n').map_or(0, |i| i + 1)];
    let mut c = Counts {
        counts: Vec::new(),
        joins: Vec::new(),
        errors: Vec::new(),
    };
    let mut running = false;
    let mut end = 0;
    for l in complete.split_inclusive('\n') {
        end += l.len();
        let l = l.trim_end_matches('\n');
        if [
            "CHECK FAILED",
            "Oops",
            "BUG:",
            "WARNING:",
            "Kernel panic",
            "Call trace",
        ]
        .iter()
        .any(|e| l.contains(e))
        {
            c.errors.push(l.to_string());
        } else if l == "soak: running" {
            running = true;
        } else if !running || l.starts_with('[') {
            // Linux's boot, and its kernel messages.
        } else if let Some(n) = l
            .strip_prefix("soak: count ")
            .and_then(|r| r.split_once(' '))
            .filter(|(a, b)| a == b)
            .and_then(|(a, _)| a.parse().ok())
        {
            c.counts.push((end, n));
        } else {
            c.joins.push((end, l.to_string()));
        }
    }
    c
}

/// The last whole count Linux has printed (0 before the first).
fn last_count(q: &Qemu) -> u64 {
    counts(q).counts.last().map_or(0, |&(_, n)| n)
}

/// Waits until the guest has printed a count above `above`; returns the last.
fn expect_count_above(q: &mut Qemu, above: u64, what: &str) -> u64 {
    let start = Instant::now();
    loop {
        let last = last_count(q);
        if last > above {
            return last;
        }
        if start.elapsed() > BATCH_DEADLINE {
            q.fail(&format!("{what}: Linux printed no count above {above}"));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Waits until the debug console has printed `text` `n` times after byte `mark`.
fn expect_debug_n(q: &mut Qemu, mark: usize, text: &str, n: usize) {
    let start = Instant::now();
    loop {
        let got = q.debug.text()[mark..].matches(text).count();
        if got >= n {
            return;
        }
        if start.elapsed() > BATCH_DEADLINE {
            q.fail(&format!(
                "the debug console printed {text:?} {got} times, not {n}: a deadlock?"
            ));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Types `command` and waits for `answer` once.
fn ask(q: &mut Qemu, command: &str, answer: &str) {
    let mark = q.debug.text().len();
    q.debug.write(format!("{command}\r").as_bytes());
    expect_debug_n(q, mark, answer, 1);
}

/// A rollback: what the test saw of it, to check the counts against.
struct Rollback {
    /// The guest's text length when the save was typed; the last count printed
    /// before it (no count after it may be lower).
    from: usize,
    floor: u64,
    /// Where the guest's text holds the first count below the highest one before
    /// the restore (the rollback seen): the end of that count's line.
    to: usize,
}

/// Saves the running VM, waits until Linux has printed `ROLLBACK_COUNTS` more
/// counts, restores it, and waits until its counter has gone back.
fn rollback(q: &mut Qemu) -> Rollback {
    let from = q.guest.text().len();
    let floor = last_count(q);
    ask(q, "snapshot save vm0 soak", "vm0: saved to slot 'soak'");
    let saved = last_count(q);
    let high = expect_count_above(q, saved + ROLLBACK_COUNTS, "before a rollback");
    let mark = q.guest.text().len();
    ask(
        q,
        "snapshot restore vm0 soak",
        "vm0: restored from slot 'soak'",
    );
    let start = Instant::now();
    loop {
        let c = counts(q);
        // The highest count before the restore, and the first lower one after.
        let top = c
            .counts
            .iter()
            .filter(|&&(o, _)| o <= mark)
            .map(|&(_, n)| n)
            .max()
            .unwrap_or(high);
        if let Some(&(to, _)) = c.counts.iter().find(|&&(o, n)| o > mark && n < top) {
            return Rollback { from, floor, to };
        }
        if start.elapsed() > BATCH_DEADLINE {
            q.fail(&format!(
                "the restore did not roll Linux back: no count below {top} after it (saved at about {saved})"
            ));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Checks the counts against the rollbacks: outside a rollback they go up one by
/// one; inside one (from the save to the count that went back) no count is below
/// the count printed before the save and at most one line is a join, and the
/// counts go up one by one except where they go back.
fn check_counts(q: &Qemu, rollbacks: &[Rollback]) {
    let c = counts(q);
    q.check(
        c.errors.is_empty(),
        &format!("Linux reported an error: {:?}", c.errors),
    );
    let within = |o: usize| rollbacks.iter().find(|r| o > r.from && o <= r.to);
    for (o, l) in &c.joins {
        if within(*o).is_none() {
            q.fail(&format!(
                "Linux printed {l:?}, not a count, with no rollback"
            ));
        }
    }
    for r in rollbacks {
        let joins = c
            .joins
            .iter()
            .filter(|(o, _)| *o > r.from && *o <= r.to)
            .count();
        q.check(
            joins <= 1,
            &format!("{joins} lines joined by one rollback: {:?}", c.joins),
        );
    }
    let mut back = 0;
    for w in c.counts.windows(2) {
        let ((_, a), (o, b)) = (w[0], w[1]);
        if b == a + 1 {
            continue;
        }
        match within(o) {
            Some(r) if b >= r.floor && b <= a => back += 1,
            Some(r) if b >= r.floor && c.joins.iter().any(|(j, _)| *j > r.from && *j <= o) => {
                // The count the join swallowed.
            }
            Some(r) => q.fail(&format!(
                "the count went from {a} to {b} in a rollback to no lower than {}",
                r.floor
            )),
            None => q.fail(&format!("the count went from {a} to {b}")),
        }
    }
    q.check(
        back >= rollbacks.len(),
        &format!(
            "{back} rollbacks seen in the counts, {} done",
            rollbacks.len()
        ),
    );
}

/// `info`'s heap use in bytes.
fn heap_used(q: &mut Qemu) -> u64 {
    let mark = q.debug.text().len();
    q.debug.write(b"info\r");
    let start = Instant::now();
    loop {
        let t = q.debug.text()[mark..].to_string();
        if let Some(n) = t
            .lines()
            .find_map(|l| {
                l.strip_prefix("heap: ")?
                    .split_once(" (")?
                    .1
                    .strip_suffix(" bytes used)")
            })
            .and_then(|n| n.trim().parse().ok())
        {
            return n;
        }
        if start.elapsed() > common::DEADLINE {
            q.fail("'info' printed no heap line with the bytes used");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// One gdb-multiarch for `n` attach/detach cycles; returns its output.
fn gdb_cycles(q: &Qemu, n: usize) -> String {
    let port = q.debug_port();
    let mut c = Command::new("gdb-multiarch");
    c.args(["-q", "-nx", "-batch"])
        .args(["-ex", "set pagination off", "-ex", "set confirm off"]);
    for i in 0..n {
        for cmd in [
            format!("target remote 127.0.0.1:{port}"),
            format!("echo soak-cycle {i}\\n"),
            "p/x $pc".into(),
            "p/x $sp".into(),
            "p/x $SCTLR_EL1".into(),
            "x/4xw $pc".into(),
            "break *$pc".into(),
            "info breakpoints".into(),
            "delete".into(),
            "detach".into(),
        ] {
            c.args(["-ex", &cmd]);
        }
    }
    c.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let child = c.spawn().expect(crate::gdb_stub::NO_GDB);
    crate::gdb_stub::finish_within(q, child, BATCH_DEADLINE)
}

#[test]
fn linux_runs_on_through_200_pause_snapshot_and_gdb_cycles() {
    let dir = std::env::temp_dir().join(format!("hv-soak-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bundle = bundle(&dir);
    let mut q = qemu()
        .smp(2)
        .cpu("cortex-a72")
        .append(POOL)
        .initrd(&bundle)
        .start();
    q.expect_debug("hv: snapshot pool: 160 MiB")
        .expect_debug(&format!(
            "vm0: 2 vCPU(s), {} MiB RAM",
            VM_RAM.trim_end_matches('M')
        ));
    q.expect_guest_within("soak: running", Duration::from_secs(600));
    expect_count_above(&mut q, 0, "boot");
    let mut baseline = None;
    let mut rollbacks = Vec::new();
    let mut done = 0;
    let start = Instant::now();
    while done < CYCLES {
        let n = BATCH.min(CYCLES - done);
        let batch = Instant::now();
        // A rollback of the running VM.
        rollbacks.push(rollback(&mut q));
        let t_rollback = batch.elapsed();
        // Pause, save, restore and resume, typed in one go; each answered.
        let t = Instant::now();
        let mark = q.debug.text().len();
        let mut typed = String::new();
        for _ in 0..n {
            typed.push_str(
                "pause vm0\rsnapshot save vm0 soak\rsnapshot restore vm0 soak\rresume vm0\r",
            );
        }
        q.debug.write(typed.as_bytes());
        expect_debug_n(&mut q, mark, "vm0: resumed", n);
        let answers = q.debug.text()[mark..].to_string();
        for (what, answer) in [
            ("pause", "vm0: paused"),
            ("save", "vm0: saved to slot 'soak'"),
            ("restore", "vm0: restored from slot 'soak'"),
        ] {
            let got = answers.matches(answer).count();
            q.check(
                got == n,
                &format!("{got} of {n} {what}s were answered with {answer:?}:\n{answers}"),
            );
        }
        let t_snap = t.elapsed();
        // GDB: `n` attach, read, break, delete, detach cycles.
        let t = Instant::now();
        q.disconnect_debug();
        let out = gdb_cycles(&q, n);
        q.reconnect_debug();
        for i in 0..n {
            q.check(
                out.contains(&format!("soak-cycle {i}\n")),
                &format!("gdb cycle {i} did not run:\n{out}"),
            );
        }
        q.check(
            out.lines()
                .filter(|l| l.starts_with("Breakpoint ") && l.contains(" at 0x"))
                .count()
                == n
                && out.matches("breakpoint     keep y").count() == n
                && out.matches(" detached]").count() == n,
            &format!(
                "gdb did not set, list and remove a breakpoint and detach in every cycle:\n{out}"
            ),
        );
        q.check(
            !out.contains("Remote communication error")
                && !out.contains("Remote connection closed"),
            &format!("gdb lost the connection:\n{out}"),
        );
        let t_gdb = t.elapsed();
        done += n;
        // Linux runs on, and its counts go up one by one but where rolled back.
        let seen = last_count(&q);
        let last = expect_count_above(&mut q, seen, &format!("after {done} cycles"));
        check_counts(&q, &rollbacks);
        let debug = q.debug.text();
        let errors: Vec<&str> = debug
            .lines()
            .filter(|l| {
                let l = l.to_lowercase();
                l.contains("error") || l.contains("panic")
            })
            .collect();
        q.check(
            errors.is_empty(),
            &format!("the debug console reported an error: {errors:?}"),
        );
        let used = heap_used(&mut q);
        match baseline {
            None => baseline = Some(used),
            Some(b) => q.check(
                used == b,
                &format!("heap use after {done} cycles is {used} bytes, {b} after the first batch"),
            ),
        }
        eprintln!(
            "soak: {done} cycles, count {last}, heap {used} bytes; batch {:.0} s: rollback {:.1} s, {n} pause/save/restore/resume {:.1} s ({:.2} s each), {n} gdb cycles {:.1} s",
            batch.elapsed().as_secs_f64(),
            t_rollback.as_secs_f64(),
            t_snap.as_secs_f64(),
            t_snap.as_secs_f64() / n as f64,
            t_gdb.as_secs_f64()
        );
    }
    let debug = q.debug.text();
    let size = debug
        .lines()
        .rev()
        .find_map(|l| {
            l.strip_prefix("vm0: saved to slot 'soak' (")?
                .strip_suffix(')')
        })
        .unwrap_or("?")
        .to_string();
    eprintln!(
        "soak: {CYCLES} cycles and {} rollbacks in {:.0} s; a snapshot of the {VM_RAM} VM is {size}",
        rollbacks.len(),
        start.elapsed().as_secs_f64()
    );
    let _ = std::fs::remove_dir_all(&dir);
}
