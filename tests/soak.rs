//! Issue 14 item 4, the soak: Debian's Linux runs a shell loop that writes a
//! counter to a file in its RAM disk, reads it back, checks it and prints it,
//! while the test goes through at least 200 cycles of what a person debugging it
//! does: pause and resume it from the debug console, and attach GDB, read memory
//! and registers, set and remove a breakpoint, detach.
//!
//! Linux must keep running with its counter never going backwards or skipping a
//! number and no failed check, the hypervisor's heap use (`info`: `heap: ...
//! (N bytes used)`) must come back to what it was after the first batch, and the
//! debug console must print no error.
//!
//! Cost: the cycles run in batches of `BATCH`, the console's commands of a batch
//! typed in one go and one `gdb-multiarch` doing a batch's attach/detach cycles
//! (`target remote` again after each `detach`), so that 200 cycles take a few
//! minutes of TCG, not one gdb start-up each.
//!
//! Not yet: in-memory snapshot save and restore in each cycle. A Linux guest's
//! RAM does not fit the hypervisor's 8 MiB heap, where snapshot slots live today;
//! the cycles gain a save/restore pair once slots have a pool of their own.

use crate::common::{self, module, qemu, Qemu};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Total cycles, and cycles per batch.
const CYCLES: usize = 200;
const BATCH: usize = 20;
/// How long one batch may take (a loaded 2-core machine runs TCG slowly).
const BATCH_DEADLINE: Duration = Duration::from_secs(300);

/// `/soak.sh`, run by the kernel as init (`rdinit=/bin/sh -- /soak.sh`): one line
/// per turn, `soak: count N`, or `soak: CHECK FAILED ...` when the file does not
/// read back.
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
    echo "soak: count $n"
    sleep 0.2
done
"#;

/// Debian's initramfs with `/soak.sh` added: a second newc archive after the
/// first, which the kernel unpacks on top of it.
fn initrd_with_script(dir: &std::path::Path) -> std::path::PathBuf {
    let (_, initrd, _) = common::linux();
    let mut bytes = std::fs::read(&initrd).unwrap_or_else(|e| panic!("{}: {e}", initrd.display()));
    let mut w = hypervisor::bundle::cpio::Writer::new();
    w.file("soak.sh", SCRIPT.as_bytes());
    bytes.extend_from_slice(&w.finish());
    let path = dir.join("initramfs-soak.cpio");
    std::fs::write(&path, bytes).unwrap();
    path
}

/// The counts printed so far, in order, and the lines reporting a failed check.
fn counts(q: &Qemu) -> (Vec<u64>, Vec<String>) {
    let text = q.guest.text();
    let complete = &text[..text.rfind('\n').map_or(0, |i| i + 1)];
    let mut v = Vec::new();
    let mut failed = Vec::new();
    for l in complete.lines() {
        if let Some(n) = l.strip_prefix("soak: count ") {
            match n.trim().parse() {
                Ok(n) => v.push(n),
                Err(_) => failed.push(l.to_string()),
            }
        } else if l.contains("CHECK FAILED") {
            failed.push(l.to_string());
        }
    }
    (v, failed)
}

/// Waits until the guest has printed a count above `above`; returns the last.
fn expect_count_above(q: &mut Qemu, above: u64, what: &str) -> u64 {
    let start = Instant::now();
    loop {
        let (v, _) = counts(q);
        if let Some(&last) = v.last().filter(|&&l| l > above) {
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
fn linux_runs_on_through_200_pause_and_gdb_cycles() {
    let (kernel, _, _) = common::linux();
    let dir = std::env::temp_dir().join(format!("hv-soak-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let initrd = initrd_with_script(&dir);
    let m = module(&kernel)
        .initrd(&initrd)
        .bootargs("console=ttyAMA0 rdinit=/bin/sh -- /soak.sh");
    let mut q = qemu().smp(2).cpu("cortex-a72").vm(m).start();
    q.expect_guest_within("soak: running", Duration::from_secs(600));
    let mut last = expect_count_above(&mut q, 0, "boot");
    let mut baseline = None;
    let mut done = 0;
    while done < CYCLES {
        let n = BATCH.min(CYCLES - done);
        // Pause and resume, typed in one go; each answered.
        let mark = q.debug.text().len();
        let mut typed = String::new();
        for _ in 0..n {
            typed.push_str("pause vm0\rresume vm0\r");
        }
        q.debug.write(typed.as_bytes());
        expect_debug_n(&mut q, mark, "vm0: resumed", n);
        q.check(
            q.debug.text()[mark..].matches("vm0: paused").count() == n,
            "not every pause was answered",
        );
        // GDB: `n` attach, read, break, delete, detach cycles.
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
        done += n;
        // Linux runs on, and its counts go up one by one.
        last = expect_count_above(&mut q, last, &format!("after {done} cycles"));
        let (v, failed) = counts(&q);
        q.check(
            failed.is_empty(),
            &format!("Linux's check failed: {failed:?}"),
        );
        if let Some(w) = v.windows(2).find(|w| w[1] != w[0] + 1) {
            q.fail(&format!("the count went from {} to {}", w[0], w[1]));
        }
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
        eprintln!("soak: {done} cycles, count {last}, heap {used} bytes");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
