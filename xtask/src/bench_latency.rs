//! `cargo xtask bench`, interrupt latency (issue 12, item 3): the `latency` guest's
//! pair of vCPUs (a sender and a receiver) measures, at the receiver's interrupt
//! handler entry, the time from an IPI's send and from a timer's deadline. Bare on
//! two CPUs, then under the hypervisor on two CPUs (the pair apart, the competitor
//! on the receiver's CPU) and on one CPU (the pair and the competitor, a second VM
//! that spins, sharing it). Under `-icount shift=0` with `-cpu max` a counter tick
//! is one instruction.
//!
//! QEMU runs the CPUs of an `-icount` machine round-robin in one thread: a CPU
//! runs until it halts or its turn ends, so whatever another CPU must do first
//! waits for that. The two-CPU pair therefore has its sender wait in WFI after
//! each IPI (`wait=wfi`), in every run of the table; the one-CPU run with the
//! sender spinning until the receiver took the IPI (`wait=spin`, the worst case:
//! only a preemption lets the receiver run) is a row of its own.

use crate::budget::{Budget, Row};
use std::path::Path;
use std::process::{Command, Stdio};

const ICOUNT: &str = "shift=0,sleep=off,align=off";
const ROUNDS: u32 = 32;
/// The hypervisor's slice in these runs (its default).
const SLICE_US: u64 = 10_000;

/// (min, median, max) of the IPI and the timer, in counter ticks, and the
/// counter's frequency.
struct Figures {
    hz: u64,
    ipi: (u64, u64, u64),
    timer: (u64, u64, u64),
}

fn parse(out: &str, what: &str) -> Result<Figures, String> {
    let pair: Vec<&str> = out
        .lines()
        .map(|l| l.trim_end_matches('\r'))
        .filter(|l| l.contains("latency: ") && !l.contains("[vm1]"))
        .collect();
    if !pair.iter().any(|l| l.ends_with("latency: PASS")) {
        return Err(format!("{what}: the latency guest did not pass:\n{out}"));
    }
    let value = |line: &str, key: &str| -> Option<u64> {
        line.split_whitespace()
            .find_map(|w| w.strip_prefix(key)?.strip_prefix('=')?.parse().ok())
    };
    let stats = |kind: &str| -> Result<(u64, u64, u64), String> {
        let l = pair
            .iter()
            .find(|l| l.contains(&format!("latency: {kind} ticks ")))
            .ok_or_else(|| format!("{what}: no {kind} figures in:\n{out}"))?;
        match (value(l, "min"), value(l, "median"), value(l, "max")) {
            (Some(a), Some(b), Some(c)) => Ok((a, b, c)),
            _ => Err(format!("{what}: cannot read {l:?}")),
        }
    };
    let hz = pair
        .iter()
        .find_map(|l| value(l, "counter_hz"))
        .ok_or_else(|| format!("{what}: no counter_hz in:\n{out}"))?;
    Ok(Figures {
        hz,
        ipi: stats("ipi")?,
        timer: stats("timer")?,
    })
}

fn run(cmd: &mut Command, what: &str) -> Result<Figures, String> {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot start QEMU: {e}"))?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    if !out.status.success() {
        return Err(format!(
            "{what}: QEMU failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    parse(&text, what)
}

/// The rows of the latency table, each a one-CPU figure with its two-CPU
/// reference as the `bare` figure (budget: at most twice it); prints the table.
pub fn bench(qemu: &str, image: &Path, guests: &Path) -> Result<Vec<Row>, String> {
    let latency = guests.join("latency.img");
    let machine = |cmd: &mut Command, m: &str, cpus: u32| {
        cmd.args(["-M", &format!("{m},gic-version=3"), "-cpu", "max"])
            .args(["-smp", &cpus.to_string(), "-m", "1G"])
            .args(["-display", "none", "-monitor", "none", "-icount", ICOUNT]);
    };
    eprintln!("xtask: bench: interrupt latency, bare on 2 CPUs");
    let mut bare = Command::new(qemu);
    machine(&mut bare, "virt", 2);
    bare.args(["-serial", "stdio", "-kernel"])
        .arg(&latency)
        .args(["-append", &format!("rounds={ROUNDS} wait=wfi")]);
    let bare = run(&mut bare, "bare")?;
    let tmp = image
        .parent()
        .unwrap_or(Path::new("."))
        .join("latency-bench.cpio");
    let under_hv = |cpus: u32, wait: &str| -> Result<Figures, String> {
        let vms = [
            crate::bundle::Vm {
                kernel: latency.clone(),
                append: Some(format!("rounds={ROUNDS} wait={wait}")),
                cpus: Some(2),
                mem: Some("64M".into()),
                ..Default::default()
            },
            crate::bundle::Vm {
                kernel: latency.clone(),
                append: Some("role=competitor competitor=spin ms=300".into()),
                cpus: Some(1),
                mem: Some("64M".into()),
                ..Default::default()
            },
        ];
        std::fs::write(&tmp, crate::bundle::archive(&vms)?)
            .map_err(|e| format!("{}: {e}", tmp.display()))?;
        eprintln!(
            "xtask: bench: interrupt latency under the hypervisor, {cpus} CPU(s), wait={wait}"
        );
        let mut cmd = Command::new(qemu);
        machine(&mut cmd, "virt,virtualization=on", cpus);
        cmd.args(["-serial", "stdio", "-serial", "null", "-kernel"])
            .arg(image)
            .arg("-initrd")
            .arg(&tmp)
            .args(["-append", &format!("hv.slice_us={SLICE_US}")]);
        run(&mut cmd, &format!("{cpus} CPU(s), wait={wait}"))
    };
    let two = under_hv(2, "wfi")?;
    let one = under_hv(1, "wfi")?;
    let spin = under_hv(1, "spin")?;
    let _ = std::fs::remove_file(&tmp);
    let unit = if [bare.hz, two.hz, one.hz]
        .iter()
        .all(|&h| h == 1_000_000_000)
    {
        "instructions"
    } else {
        eprintln!("xtask: the counter does not run at 1 GHz: latency figures are ticks");
        "ticks"
    };
    let f = |v: u64| v as f64;
    let ratio = Budget::RatioAtMost(2.0);
    let rows = [
        ("IPI, median", bare.ipi.1, two.ipi.1, one.ipi.1),
        ("IPI, max", bare.ipi.2, two.ipi.2, one.ipi.2),
        (
            "IPI, median, sender spinning until it is taken",
            bare.ipi.1,
            two.ipi.1,
            spin.ipi.1,
        ),
        (
            "IPI, max, sender spinning until it is taken",
            bare.ipi.2,
            two.ipi.2,
            spin.ipi.2,
        ),
        (
            "timer deadline, median",
            bare.timer.1,
            two.timer.1,
            one.timer.1,
        ),
        (
            "timer deadline, max",
            bare.timer.2,
            two.timer.2,
            one.timer.2,
        ),
    ];
    println!();
    println!(
        "Interrupt latency: the `latency` guest's pair, send (or deadline) to handler entry, {ROUNDS} rounds, QEMU -icount {ICOUNT}, -cpu max, GICv3, slice {SLICE_US} us; under the hypervisor a second VM spins on the receiver's CPU. Budget: 1 CPU at most twice 2 CPUs."
    );
    println!();
    println!("| interrupt to handler | bare, 2 CPUs | hypervisor, 2 CPUs | hypervisor, 1 CPU shared | unit | budget | |");
    println!("|---|---:|---:|---:|---|---|---|");
    let mut out = Vec::new();
    for (what, b, t, o) in rows {
        let row = Row::new(
            format!("latency: {what}, 1 CPU vs 2 CPUs"),
            Some(f(t)),
            f(o),
            unit,
        )
        .budget(ratio);
        println!(
            "| {what} | {b} | {t} | {o} | {unit} | at most 2x the 2-CPU figure | {} |",
            if row.within() { "met" } else { "EXCEEDED" }
        );
        out.push(row);
    }
    let slice = SLICE_US * bare.hz / 1_000_000;
    let worst = [one.ipi.2, one.timer.2, spin.ipi.2]
        .into_iter()
        .max()
        .unwrap_or(0);
    let row = Row::new(
        "latency: worst case on 1 CPU, against the slice",
        None,
        f(worst),
        unit,
    )
    .budget(Budget::AtMost(slice / 10));
    println!(
        "| worst case on 1 CPU | - | - | {worst} | {unit} | at most a tenth of the slice ({}) | {} |",
        slice / 10,
        if row.within() { "met" } else { "EXCEEDED" }
    );
    out.push(row);
    Ok(out)
}
