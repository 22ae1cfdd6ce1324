//! `cargo xtask fuzz-guest`: the random guest (`guests/programs/src/bin/fuzz.rs`)
//! runs on QEMU next to the `checker` VM for a while, and the hypervisor must
//! neither crash, nor hang, nor disturb the checker.
//!
//! Two VMs on `-smp 2`, two vCPUs each, so every physical CPU runs a vCPU of
//! both (the fuzz VM's second vCPU is the target of its `CPU_ON` calls). Both
//! consoles go to files under `target/fuzz-guest/`, read twice a second. A run
//! fails, naming the seed, on: a panic or crash line of the hypervisor, a VM
//! powered off, the checker's `MISMATCH` or `FAIL`, the fuzz guest's `FAIL`,
//! QEMU gone, or no new heartbeat of the checker (or progress line of the fuzz
//! guest) for [`HANG`]. Then it lists the operations the fuzz guest ran since
//! its last progress line: the generator (`fuzzgen.rs`, included here) makes
//! them again from the seed and the layout line the guest printed.

#[path = "../../guests/programs/src/fuzzgen.rs"]
mod fuzzgen;

use crate::{board, build, root, setup};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// No heartbeat (or fuzz progress) for this long is a hang. QEMU under TCG on
/// a loaded 2-core machine is slow; the checker beats every second.
const HANG: Duration = Duration::from_secs(90);
/// The first heartbeat and progress line may take longer: the boot.
const FIRST: Duration = Duration::from_secs(240);
/// A progress line every this many operations.
const EVERY: u64 = 500;

/// A fresh seed: the clock and the process id through std's randomly keyed hasher.
fn fresh_seed() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    h.write_u32(std::process::id());
    h.finish() >> 16 // short enough to type
}

/// What the consoles said so far.
#[derive(Default)]
struct Seen {
    heartbeats: u64,
    progress: u64,
    last_progress_line: String,
}

fn count_last(text: &str, prefix: &str) -> Option<(u64, String)> {
    text.lines().rev().find_map(|l| {
        let rest = l.split_once(prefix)?.1;
        let n = rest.split_ascii_whitespace().next()?.parse().ok()?;
        Some((n, l.trim().to_string()))
    })
}

/// Why a run failed, from what the consoles and QEMU show; None if all is well.
fn problem(guest: &str, debug: &str) -> Option<String> {
    for l in debug.lines() {
        if l.contains("hv: PANIC") || l.contains("hv: CRASH") {
            return Some(format!("the hypervisor crashed: {}", l.trim()));
        }
        if l.starts_with("vm1: powered off") || l.starts_with("vm1: SError") {
            return Some(format!("the checker VM was stopped: {}", l.trim()));
        }
        if l.starts_with("vm0: powered off") || l.starts_with("vm0: SError") {
            return Some(format!("the fuzz VM was stopped: {}", l.trim()));
        }
    }
    for l in guest.lines() {
        if l.contains("[vm1] checker: MISMATCH") || l.contains("[vm1] checker: FAIL") {
            return Some(format!("the checker VM was disturbed: {}", l.trim()));
        }
        if l.contains("[vm0] fuzz: FAIL") || l.contains("[vm0] fuzz: unexpected") {
            return Some(format!("the fuzz guest failed: {}", l.trim()));
        }
    }
    None
}

fn read(p: &Path) -> String {
    std::fs::read(p)
        .map(|b| String::from_utf8_lossy(&b).replace('\r', ""))
        .unwrap_or_default()
}

fn tail(text: &str, n: usize) -> String {
    let v: Vec<&str> = text.lines().collect();
    v[v.len().saturating_sub(n)..].join("\n")
}

/// The operations from number `from` to `to` (exclusive) of `seed`, with the
/// layout the guest printed.
fn operations(guest: &str, seed: u64, from: u64, to: u64) -> Result<Vec<String>, String> {
    let line = guest
        .lines()
        .find_map(|l| {
            l.split_once("fuzz: layout ")
                .map(|(_, r)| r.trim().to_string())
        })
        .ok_or("the fuzz guest printed no layout line")?;
    let layout = fuzzgen::Layout::parse(&line)
        .ok_or_else(|| format!("cannot read the layout line '{line}'"))?;
    let mut g = fuzzgen::Gen::new(seed, layout);
    let mut out = Vec::new();
    for i in 0..to {
        let op = g.next();
        if i >= from {
            out.push(format!("op {i} {op}"));
        }
    }
    Ok(out)
}

struct Run {
    child: Child,
}

impl Drop for Run {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn fuzz_guest(
    seed: Option<u64>,
    seconds: u64,
    trace_from: Option<u64>,
    gic: u8,
) -> Result<(), String> {
    let seed = seed.unwrap_or_else(fresh_seed);
    println!("fuzz-guest: seed {seed} (repeat with --seed {seed}), {seconds} s, GICv{gic}");
    setup::setup()?;
    let image = build::hypervisor("qemu-virt")?;
    let guests = build::guests()?;
    let qemu = board::Board::load("qemu-virt")?.qemu.binary;
    let dir = root().join("target/fuzz-guest");
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let (guest_log, debug_log) = (dir.join("guest.log"), dir.join("debug.log"));
    for f in [&guest_log, &debug_log] {
        let _ = std::fs::remove_file(f);
    }
    let mut fuzz_args = format!("console=ttyAMA0 seed={seed} iters=0 every={EVERY}");
    if let Some(t) = trace_from {
        fuzz_args.push_str(&format!(" trace={t}"));
    }
    let mut cmd = command(
        &qemu,
        &image,
        &guests.join("fuzz.img"),
        &fuzz_args,
        &guests.join("checker.img"),
        (&guest_log, &debug_log),
        gic,
    );
    println!("fuzz-guest: {}", crate::command_line(&cmd));
    println!(
        "fuzz-guest: consoles in {} and {}",
        guest_log.display(),
        debug_log.display()
    );
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start QEMU: {e}"))?;
    let mut run = Run { child };
    let start = Instant::now();
    let mut seen = Seen::default();
    let (mut beat_at, mut progress_at) = (start, start);
    let mut shown = start;
    let outcome = loop {
        std::thread::sleep(Duration::from_millis(500));
        let (guest, debug) = (read(&guest_log), read(&debug_log));
        if let Some(p) = problem(&guest, &debug) {
            break Err((p, guest, debug));
        }
        if let Ok(Some(status)) = run.child.try_wait() {
            // What QEMU said before it went (an assertion of one of its models).
            let mut said = String::new();
            if let Some(mut e) = run.child.stderr.take() {
                use std::io::Read;
                let _ = e.read_to_string(&mut said);
            }
            let said = said.trim();
            let why = if said.is_empty() {
                format!("QEMU exited ({status})")
            } else {
                format!("QEMU exited ({status}), saying:\n{said}")
            };
            break Err((why, guest, debug));
        }
        let now = Instant::now();
        if let Some((n, _)) = count_last(&guest, "[vm1] checker: heartbeat ") {
            if n > seen.heartbeats {
                seen.heartbeats = n;
                beat_at = now;
            }
        }
        if let Some((n, line)) = count_last(&guest, "[vm0] fuzz: progress ") {
            if n > seen.progress {
                seen.progress = n;
                seen.last_progress_line = line;
                progress_at = now;
            }
        }
        let limit = |seen_any: bool| if seen_any { HANG } else { FIRST };
        if now - beat_at > limit(seen.heartbeats > 0) {
            break Err((
                format!(
                    "the checker VM printed no heartbeat for {} s: the hypervisor hangs or starves it",
                    (now - beat_at).as_secs()
                ),
                guest,
                debug,
            ));
        }
        if now - progress_at > limit(seen.progress > 0) {
            break Err((
                format!(
                    "the fuzz VM made no progress for {} s (its last operation hangs)",
                    (now - progress_at).as_secs()
                ),
                guest,
                debug,
            ));
        }
        if now - shown >= Duration::from_secs(10) {
            shown = now;
            println!(
                "fuzz-guest: {} s of {seconds}: {} operations, {} checker heartbeats",
                (now - start).as_secs(),
                seen.progress,
                seen.heartbeats
            );
        }
        if now - start >= Duration::from_secs(seconds) {
            break Ok(());
        }
    };
    drop(run);
    match outcome {
        Ok(()) => {
            println!("fuzz-guest: {}", seen.last_progress_line);
            println!(
                "fuzz-guest: passed: seed {seed}, {} operations in {seconds} s; the checker VM beat {} times undisturbed; the hypervisor did not crash or hang",
                seen.progress, seen.heartbeats
            );
            Ok(())
        }
        Err((why, guest, debug)) => {
            eprintln!("fuzz-guest: FAILED with seed {seed}: {why}");
            eprintln!("--- guest console (last 25 lines):\n{}", tail(&guest, 25));
            eprintln!("--- debug console (last 25 lines):\n{}", tail(&debug, 25));
            let from = seen.progress;
            match operations(&guest, seed, from, from + EVERY) {
                Ok(ops) => {
                    let file = dir.join(format!("seed-{seed}-ops.txt"));
                    let _ = std::fs::write(&file, ops.join("\n") + "\n");
                    eprintln!(
                        "--- the fuzz guest's operations since its last progress line ({} to {}; all in {}), the last 10:",
                        from,
                        from + EVERY - 1,
                        file.display()
                    );
                    eprintln!("{}", tail(&ops.join("\n"), 10));
                }
                Err(e) => eprintln!("--- no operation list: {e}"),
            }
            Err(format!(
                "fuzz-guest failed with seed {seed}: {why}\nrepeat it, printing each operation: cargo xtask fuzz-guest --seed {seed} --gic {gic} --trace-from {}",
                seen.progress
            ))
        }
    }
}

/// QEMU `virt` with the hypervisor, the fuzz VM and the checker VM, both
/// consoles to files.
fn command(
    qemu: &str,
    image: &Path,
    fuzz: &Path,
    fuzz_args: &str,
    checker: &Path,
    (guest_log, debug_log): (&PathBuf, &PathBuf),
    gic: u8,
) -> Command {
    let mut cmd = Command::new(qemu);
    cmd.arg("-M")
        .arg(format!("virt,virtualization=on,gic-version={gic}"))
        .args(["-cpu", "max"])
        .args([
            "-smp", "2", "-m", "1G", "-display", "none", "-monitor", "none",
        ])
        .args(["-no-reboot", "-chardev"])
        .arg(format!("file,id=g,path={}", guest_log.display()))
        .args(["-serial", "chardev:g", "-chardev"])
        .arg(format!("file,id=d,path={}", debug_log.display()))
        .args(["-serial", "chardev:d", "-kernel"])
        .arg(image)
        .arg("-device")
        .arg(format!(
            "guest-loader,addr=0x50000000,kernel={},bootargs={}",
            fuzz.display(),
            fuzz_args
        ))
        .arg("-device")
        .arg(format!(
            "guest-loader,addr=0x54000000,kernel={},bootargs=console=ttyAMA0 tag=7",
            checker.display()
        ));
    cmd
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_failure_is_named() {
        let ok_guest = "[vm0] fuzz: progress 500 x\n[vm1] checker: heartbeat 3 rounds=1,2\n";
        assert_eq!(problem(ok_guest, "hv: 2 CPU(s) online\n"), None);
        let p = problem(ok_guest, "\nhv: PANIC on cpu 1: oops\n").unwrap();
        assert!(p.contains("crashed") && p.contains("oops"), "{p}");
        let p = problem(ok_guest, "vm1: powered off (system-off)\n").unwrap();
        assert!(p.contains("checker VM was stopped"), "{p}");
        let p = problem(
            "[vm1] checker: MISMATCH cpu 0 tpidr_el0: expected 0x1 found 0x2\n",
            "",
        )
        .unwrap();
        assert!(p.contains("disturbed") && p.contains("tpidr_el0"), "{p}");
        let p = problem("[vm0] fuzz: FAIL unexpected exception\n", "").unwrap();
        assert!(p.contains("fuzz guest failed"), "{p}");
        assert_eq!(
            count_last(ok_guest, "[vm1] checker: heartbeat "),
            Some((3, "[vm1] checker: heartbeat 3 rounds=1,2".into()))
        );
    }

    #[test]
    fn the_operations_of_a_failure_are_listed_from_the_layout_line() {
        let guest = "[vm0] fuzz: layout ram=0x40000000-0x5f800000 uart=0x9000000 gic=3 gicd=0x8000000 gicr=0x80a0000 gicc=0x0 conduit=hvc cpus=0x0,0x1\n";
        let ops = operations(guest, 5, 10, 13).unwrap();
        assert_eq!(ops.len(), 3);
        assert!(ops[0].starts_with("op 10 "), "{ops:?}");
        assert_eq!(ops, operations(guest, 5, 10, 13).unwrap());
        assert!(operations("no layout", 5, 0, 1).is_err());
    }
}
