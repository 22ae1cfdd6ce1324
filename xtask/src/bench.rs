//! `cargo xtask bench`: instruction counts, never wall-clock times (DESIGN.md
//! section 7). The `bench` guest runs twice in one invocation, bare at EL1 and under
//! the hypervisor, each under `-icount shift=0,sleep=off,align=off` with `-cpu max`,
//! where the virtual counter advances exactly one tick per instruction; the table
//! puts both side by side.

use crate::budget::{self, Budget, Row};
use crate::{board::Board, build};
use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Stdio};

const ICOUNT: &str = "shift=0,sleep=off,align=off";

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
                .map_err(|_| format!("bad counter_hz in '{line}'"))?;
        } else if let Some(rest) = line.strip_prefix("op=") {
            let (name, n) = rest
                .split_once(" ticks_per_op=")
                .ok_or(format!("bad line '{line}'"))?;
            ops.insert(
                name.to_owned(),
                n.parse().map_err(|_| format!("bad count in '{line}'"))?,
            );
        }
    }
    Ok((hz, ops))
}

/// The trap budget of issue 12: at most this many instructions at EL2 per trap.
const TRAP_BUDGET: u64 = 150;
/// The world-switch budget, per switch, vGIC included.
const SWITCH_BUDGET: u64 = 1500;
/// The release Image's size budget.
const IMAGE_BUDGET: u64 = 256 * 1024;

pub fn bench(
    gdb_only: bool,
    snapshot_only: bool,
    latency_only: bool,
    known_over: &[String],
) -> Result<(), String> {
    crate::setup::setup()?;
    let image = build::hypervisor("qemu-virt")?;
    let guests = build::guests()?;
    let bench = guests.join("bench.img");
    let q = Board::load("qemu-virt")?.qemu;
    let module_base = q
        .module_base
        .ok_or("the qemu-virt board file has no module_base")?;
    let gdb_row = || -> Result<Row, String> {
        let gdb = crate::bench_gdb::bench(
            &q.binary,
            &image,
            &guests.join("gdbtarget.img"),
            module_base,
        )?;
        Ok(Row::new(
            format!(
                "GDB `dump binary memory` of {} KiB of guest memory over the debug UART (QEMU TCP serial, `nodelay=on`); bare: QEMU's own gdbstub, same run (wall clock, fastest of {} alternating dumps each)",
                crate::bench_gdb::DUMP_BYTES / 1024,
                crate::bench_gdb::ROUNDS
            ),
            Some(gdb.qemu),
            gdb.stub,
            "s",
        )
        .budget(Budget::RatioAtMost(crate::bench_gdb::RATIO_BUDGET)))
    };
    let snapshot_rows =
        || crate::bench_snapshot::bench(&q.binary, &image, &guests.join("spin.img"), module_base);
    if snapshot_only {
        let rows = snapshot_rows()?;
        print!("{}", budget::table(&rows));
        return budget::verdict(&rows, known_over);
    }
    if latency_only {
        let rows = crate::bench_latency::bench(&q.binary, &image, &guests)?;
        print!("{}", budget::table(&rows));
        return budget::verdict(&rows, known_over);
    }
    if gdb_only {
        let rows = [gdb_row()?];
        print!("{}", budget::table(&rows));
        return budget::verdict(&rows, known_over);
    }
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
    // Under the hypervisor: the guest console on stdout, the debug console dropped;
    // once as configured by default, once with the VM's memory controls traced.
    let under_hv = |append: &str| {
        let mut hv = Command::new(&q.binary);
        common(&mut hv, "virt,virtualization=on");
        hv.args(["-serial", "stdio", "-serial", "null", "-kernel"])
            .arg(&image)
            .args(["-append", append])
            .arg("-device")
            .arg(format!(
                "guest-loader,addr={:#x},kernel={},bootargs=console=ttyAMA0",
                module_base,
                path(&bench)
            ));
        hv
    };
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
    let (hz_hv, hv) = parse(&run_qemu(&mut under_hv(""))?)?;
    let (_, traced) = parse(&run_qemu(&mut under_hv("hv.trace_vm_regs=vm0"))?)?;
    let unit = if hz_bare == 1_000_000_000 && hz_hv == 1_000_000_000 {
        "instructions"
    } else {
        eprintln!(
            "xtask: the counter runs at {hz_hv} Hz, not 1 GHz: figures are ticks, not instructions"
        );
        "ticks"
    };
    let op = |ops: &std::collections::BTreeMap<String, u64>, key: &str| -> Result<f64, String> {
        ops.get(key)
            .map(|&v| v as f64)
            .ok_or_else(|| format!("the bench guest reported no `{key}`"))
    };
    let trap = Budget::ExtraOverBare(TRAP_BUDGET);
    let mut rows = vec![
        Row::new(
            "`MSR CONTEXTIDR_EL1`, memory controls traced (HCR_EL2.TVM, `hv.trace_vm_regs`)",
            Some(op(&bare, "msr_contextidr_el1")?),
            op(&traced, "msr_contextidr_el1")?,
            unit,
        )
        .budget(trap),
        Row::new(
            "`MSR CONTEXTIDR_EL1`, by default (not trapped)",
            Some(op(&bare, "msr_contextidr_el1")?),
            op(&hv, "msr_contextidr_el1")?,
            unit,
        ),
        Row::new(
            "`MRS ACTLR_EL1` (trapped: HCR_EL2.TACR)",
            Some(op(&bare, "mrs_actlr_el1")?),
            op(&hv, "mrs_actlr_el1")?,
            unit,
        )
        .budget(trap),
        Row::new(
            "`MRS ID_AA64PFR0_EL1` (trapped: HCR_EL2.TID3, sanitised)",
            Some(op(&bare, "mrs_id_aa64pfr0_el1")?),
            op(&hv, "mrs_id_aa64pfr0_el1")?,
            unit,
        )
        .budget(trap),
        Row::new(
            "`MSR TPIDR_EL1` (never trapped)",
            Some(op(&bare, "msr_tpidr_el1")?),
            op(&hv, "msr_tpidr_el1")?,
            unit,
        ),
        Row::new(
            "PSCI `VERSION` over HVC",
            Some(op(&bare, "psci_version")?),
            op(&hv, "psci_version")?,
            unit,
        )
        .budget(trap),
    ];
    let out = run_qemu(&mut ws)?;
    let line = out
        .lines()
        .find(|l| l.contains("world switches,") && l.contains("counter ticks each"))
        .ok_or_else(|| format!("the hypervisor reported no world-switch figures:\n{out}"))?;
    // "hv: N world switches, T counter ticks each on average (R system registers, ...)"
    let words: Vec<&str> = line.split_whitespace().collect();
    let per_switch: f64 = words
        .get(4)
        .and_then(|t| t.parse().ok())
        .ok_or_else(|| format!("cannot read the world-switch cost in {line:?}"))?;
    let regs = line
        .split('(')
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .unwrap_or("?");
    rows.push(
        Row::new(
            format!(
                "world switch, exit to ERET ({regs} system registers; FP/SIMD and debug lazily; vGIC), {} switches",
                words.get(1).unwrap_or(&"?")
            ),
            None,
            per_switch,
            unit,
        )
        .budget(Budget::AtMost(SWITCH_BUDGET)),
    );
    let size = std::fs::metadata(&image)
        .map_err(|e| format!("{}: {e}", image.display()))?
        .len();
    rows.push(
        Row::new("release Image size", None, size as f64, "bytes")
            .budget(Budget::AtMost(IMAGE_BUDGET)),
    );
    // The debug line: GDB through the stub against QEMU's own gdbstub, in seconds
    // (a ratio of two times taken side by side; the one wall-clock row).
    rows.push(gdb_row()?);
    // Snapshots over the same line: binary frames against hex text, same VM.
    rows.extend(snapshot_rows()?);
    println!("QEMU -icount {ICOUNT}, -cpu max, GICv3, 1 CPU; per operation: 1000 iterations.");
    println!(
        "The GDB and snapshot rows: wall-clock seconds without -icount; their budgets are ratios."
    );
    println!();
    print!("{}", budget::table(&rows));
    // Interrupt latency: a pair of vCPUs on one CPU against two (issue 12, item 3).
    rows.extend(crate::bench_latency::bench(&q.binary, &image, &guests)?);
    // Passthrough: a disk under Debian's Linux, bare and under the hypervisor.
    crate::bench_disk::bench(&q.binary, &image, module_base)?;
    budget::verdict(&rows, known_over)
}

fn path(p: &Path) -> String {
    p.to_string_lossy().replace(',', ",,")
}
