//! `cargo xtask bench`: instruction counts, never wall-clock times (DESIGN.md
//! section 7). The `bench` guest runs twice in one invocation, bare at EL1 and under
//! the hypervisor, each under `-icount shift=0,sleep=off,align=off` with `-cpu max`,
//! where the virtual counter advances exactly one tick per instruction; the table
//! puts both side by side.

use crate::{board::Board, build};
use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Stdio};

const ICOUNT: &str = "shift=0,sleep=off,align=off";

/// What each operation is, for the table.
const OPS: [(&str, &str); 4] = [
    (
        "msr_contextidr_el1",
        "MSR CONTEXTIDR_EL1 (trapped: HCR_EL2.TVM)",
    ),
    (
        "mrs_id_aa64pfr0_el1",
        "MRS ID_AA64PFR0_EL1 (trapped: HCR_EL2.TID3)",
    ),
    ("msr_tpidr_el1", "MSR TPIDR_EL1 (not trapped)"),
    ("psci_version", "PSCI_VERSION call (HVC)"),
];

/// Runs QEMU until it exits; returns the guest console's output.
fn run_qemu(cmd: &mut Command) -> Result<String, String> {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot start QEMU: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "QEMU failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// `bench: op=<name> ticks_per_op=<n>` lines, and the counter frequency.
fn parse(output: &str) -> Result<(u64, BTreeMap<String, u64>), String> {
    if !output.contains("bench: PASS") {
        return Err(format!("the bench guest did not pass:\n{output}"));
    }
    let mut hz = 0;
    let mut ops = BTreeMap::new();
    for line in output.lines().map(|l| l.trim_end_matches('\r')) {
        let line = line
            .trim_start_matches(|c| c != 'b')
            .strip_prefix("bench: ")
            .unwrap_or("");
        if let Some(v) = line.strip_prefix("counter_hz=") {
            hz = v
                .parse()
                .map_err(|_| format!("bad counter_hz in {line:?}"))?;
        } else if let Some(rest) = line.strip_prefix("op=") {
            let (name, n) = rest
                .split_once(" ticks_per_op=")
                .ok_or(format!("bad line {line:?}"))?;
            ops.insert(
                name.to_owned(),
                n.parse().map_err(|_| format!("bad count in {line:?}"))?,
            );
        }
    }
    Ok((hz, ops))
}

pub fn bench() -> Result<(), String> {
    crate::setup::setup()?;
    let image = build::hypervisor("qemu-virt")?;
    let guests = build::guests()?;
    let bench = guests.join("bench.img");
    let q = Board::load("qemu-virt")?.qemu;
    let module_base = q
        .module_base
        .ok_or("the qemu-virt board file has no module_base")?;
    let common = |cmd: &mut Command, machine: &str| {
        cmd.args([
            "-M",
            &format!("{machine},gic-version=3"),
            "-cpu",
            "max",
            "-smp",
            "1",
            "-m",
            "1G",
        ])
        .args(["-display", "none", "-monitor", "none", "-icount", ICOUNT]);
    };
    // Bare: QEMU enters the guest at EL1 and provides PSCI itself.
    let mut bare = Command::new(&q.binary);
    common(&mut bare, "virt");
    bare.args(["-serial", "stdio", "-kernel"]).arg(&bench);
    // Under the hypervisor: the guest console on stdout, the debug console dropped.
    let mut hv = Command::new(&q.binary);
    common(&mut hv, "virt,virtualization=on");
    hv.args(["-serial", "stdio", "-serial", "null", "-kernel"])
        .arg(&image)
        .arg("-device")
        .arg(format!(
            "guest-loader,addr={:#x},kernel={},bootargs=console=ttyAMA0",
            module_base,
            path(&bench)
        ));
    // World switches: two VMs of one vCPU each on one CPU, preempting each other
    // every 200 us; the hypervisor reports the switches' average cost.
    let switch = guests.join("switch.img");
    let mut ws = Command::new(&q.binary);
    common(&mut ws, "virt,virtualization=on");
    ws.args(["-serial", "null", "-serial", "stdio", "-kernel"])
        .arg(&image)
        .args(["-append", "hv.slice_us=200"]);
    for (i, addr) in [module_base, module_base + 0x200_0000]
        .into_iter()
        .enumerate()
    {
        ws.arg("-device").arg(format!(
            "guest-loader,addr={addr:#x},kernel={},bootargs=console=ttyAMA0 tag={} rounds=2000",
            path(&switch),
            i + 1
        ));
    }
    let (hz_bare, bare) = parse(&run_qemu(&mut bare)?)?;
    let (hz_hv, hv) = parse(&run_qemu(&mut hv)?)?;
    let unit = if hz_bare == 1_000_000_000 && hz_hv == 1_000_000_000 {
        "instructions"
    } else {
        eprintln!(
            "xtask: the counter runs at {hz_hv} Hz, not 1 GHz: figures are ticks, not instructions"
        );
        "ticks"
    };
    println!("Per operation, in {unit} (QEMU -icount {ICOUNT}, -cpu max, 1 CPU, 1000 iterations):");
    println!();
    println!("| operation | bare at EL1 | under the hypervisor | ratio |");
    println!("|---|---:|---:|---:|");
    for (key, what) in OPS {
        let (b, h) = (
            bare.get(key).copied().unwrap_or(0),
            hv.get(key).copied().unwrap_or(0),
        );
        let ratio = if b == 0 {
            "-".to_string()
        } else {
            format!("{:.1}x", h as f64 / b as f64)
        };
        println!("| {what} | {b} | {h} | {ratio} |");
    }
    let out = run_qemu(&mut ws)?;
    let line = out
        .lines()
        .find(|l| l.contains("world switches,") && l.contains("counter ticks each"))
        .ok_or_else(|| format!("the hypervisor reported no world-switch figures:\n{out}"))?;
    // "hv: N world switches, T counter ticks each on average (R system registers, ...)"
    let words: Vec<&str> = line.split_whitespace().collect();
    let n = words.get(1).copied().unwrap_or("?");
    let t = words.get(4).copied().unwrap_or("?");
    let regs = line
        .split('(')
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .unwrap_or("?");
    println!();
    println!(
        "World switch (save one vCPU, load another on the same CPU), 2 VMs on 1 CPU, 200 us slice:"
    );
    println!();
    println!(
        "| switches measured | {unit} per switch | system registers switched | also switched |"
    );
    println!("|---:|---:|---:|---|");
    println!("| {n} | {t} | {regs} | 32 FP/SIMD registers, FPSR/FPCR, vGIC interface |");
    Ok(())
}

fn path(p: &Path) -> String {
    p.to_string_lossy().replace(',', ",,")
}
