//! The debug line's row of `cargo xtask bench` (issue 12, item 4): GDB's
//! `dump binary memory` of 1 MiB of a guest's memory through the hypervisor's
//! stub, on the debug UART over QEMU's TCP serial (`nodelay=on`), against QEMU's
//! own gdbstub dumping the same guest memory, side by side in one QEMU run.
//!
//! The one row measured in wall-clock seconds: the budget is a ratio of
//! two times taken on the same machine at the same moment, which no instruction
//! count can express (the cost is QEMU's serial back end and the line, not
//! instructions). No `-icount`, so the line runs at QEMU's real speed.
//!
//! The `gdbtarget` guest runs with its MMU on (two vCPUs on two CPUs); the
//! dumped megabyte is the one holding its pattern, read by virtual address
//! through the stub (`dump binary memory` over the guest's live stage-1
//! tables) and by physical address through QEMU's gdbstub
//! (`Qqemu.PhyMemMode:1`), the address the stub's `monitor vtop` gave. Both
//! dumps must hold the pattern at the same offset: the two read the same
//! memory.
//!
//! A wall-clock figure moves with whatever else the machine runs (QEMU's vCPU
//! thread, which runs the stub, competes for a core; QEMU's gdbstub answers from
//! its main loop): the two dumps are taken [`ROUNDS`] times, alternating, and the
//! row reports the fastest of each side, the usual way to time under noise.

use crate::bench_disk::{free_port, last, Line};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// How much is dumped.
pub const DUMP_BYTES: u64 = 1 << 20;
/// The budget: the stub takes at most this many times QEMU's gdbstub.
pub const RATIO_BUDGET: f64 = 10.0;
/// Dumps per side, alternating stub and QEMU's gdbstub in one QEMU run.
pub const ROUNDS: usize = 3;
const GDB_DEADLINE: Duration = Duration::from_secs(600);
const PATTERN: &[u8] = b"hv-gdb-pattern!";

/// What one side took: the fastest of its [`ROUNDS`] dumps.
pub struct Figures {
    /// Seconds through the hypervisor's stub.
    pub stub: f64,
    /// Seconds through QEMU's gdbstub.
    pub qemu: f64,
}

impl Figures {
    /// The fastest dump of each side over `rounds`.
    pub fn fastest(rounds: &[(f64, f64)]) -> Option<Self> {
        let min = |f: fn(&(f64, f64)) -> f64| rounds.iter().map(f).reduce(f64::min);
        Some(Self {
            stub: min(|r| r.0)?,
            qemu: min(|r| r.1)?,
        })
    }
}

/// Runs gdb-multiarch with `commands` against `port`; its output (stdout and stderr).
fn gdb(port: u16, commands: &[String]) -> Result<String, String> {
    let mut c = Command::new("gdb-multiarch");
    c.args(["-q", "-nx", "-batch"])
        .args(["-ex", "set pagination off", "-ex", "set confirm off"])
        .args(["-ex", &format!("target remote 127.0.0.1:{port}")]);
    for cmd in commands {
        c.args(["-ex", cmd]);
    }
    let mut child = c
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| {
            format!(
                "cannot start gdb-multiarch ({e}): install it with `apt-get install gdb-multiarch`"
            )
        })?;
    let start = Instant::now();
    while child.try_wait().map_err(|e| e.to_string())?.is_none() {
        if start.elapsed() > GDB_DEADLINE {
            let _ = child.kill();
            let out = child.wait_with_output().map_err(|e| e.to_string())?;
            return Err(format!(
                "gdb did not finish within {GDB_DEADLINE:?}:\n{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().map_err(|e| e.to_string())?;
    Ok(format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    ))
}

/// The dump's commands, bracketed by two time stamps (`bench-t=SECONDS`).
fn timed_dump(file: &Path, start: u64) -> Vec<String> {
    vec![
        "shell date +bench-t=%s.%N".into(),
        format!(
            "dump binary memory {} {start:#x} {:#x}",
            file.display(),
            start + DUMP_BYTES
        ),
        "shell date +bench-t=%s.%N".into(),
        "detach".into(),
    ]
}

/// The seconds between the two time stamps `timed_dump` printed.
pub fn elapsed(out: &str) -> Result<f64, String> {
    let t: Vec<f64> = out
        .lines()
        .filter_map(|l| l.trim().strip_prefix("bench-t=")?.parse().ok())
        .collect();
    match t[..] {
        [a, b] if b >= a => Ok(b - a),
        _ => Err(format!("gdb printed no two time stamps:\n{out}")),
    }
}

/// The physical address `monitor vtop` printed (`VA .. -> IPA .. -> PA 0x..`).
pub fn vtop_pa(out: &str) -> Result<u64, String> {
    out.lines()
        .find_map(|l| {
            let pa = l.split(" -> PA 0x").nth(1)?;
            u64::from_str_radix(pa.split_whitespace().next()?, 16).ok()
        })
        .ok_or_else(|| format!("monitor vtop printed no physical address:\n{out}"))
}

/// The address the guest printed after `label`.
fn printed_address(text: &str, label: &str) -> Result<u64, String> {
    let line = text
        .lines()
        .find_map(|l| l.trim().strip_prefix(label))
        .ok_or_else(|| format!("the guest did not print {label:?}:\n{}", last(text)))?;
    u64::from_str_radix(line.trim().trim_start_matches("0x"), 16)
        .map_err(|_| format!("bad address after {label:?}: {line}"))
}

/// Checks a dump: its size, and the pattern at `offset`.
fn check_dump(file: &Path, offset: usize, who: &str) -> Result<(), String> {
    let data = std::fs::read(file).map_err(|e| format!("{}: {e}", file.display()))?;
    if data.len() as u64 != DUMP_BYTES {
        return Err(format!(
            "{who}: the dump holds {} bytes, not {DUMP_BYTES}",
            data.len()
        ));
    }
    if data.get(offset..offset + PATTERN.len()) != Some(PATTERN) {
        return Err(format!(
            "{who}: the dump does not hold the guest's pattern at offset {offset:#x}"
        ));
    }
    Ok(())
}

/// One QEMU run: the stub's dump, then QEMU gdbstub's of the same memory.
pub fn bench(qemu: &str, image: &Path, guest: &Path, module_base: u64) -> Result<Figures, String> {
    let (guest_port, debug_port, gdb_port) = (free_port()?, free_port()?, free_port()?);
    let dir = std::env::temp_dir().join(format!("hv-bench-gdb-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let mut cmd = Command::new(qemu);
    cmd.args(["-M", "virt,virtualization=on,gic-version=3", "-cpu", "max"])
        .args([
            "-smp", "2", "-m", "1G", "-display", "none", "-monitor", "none",
        ])
        .arg("-chardev")
        .arg(format!(
            "socket,id=s0,host=127.0.0.1,port={guest_port},server=on,wait=on,nodelay=on"
        ))
        .args(["-serial", "chardev:s0", "-chardev"])
        .arg(format!(
            "socket,id=s1,host=127.0.0.1,port={debug_port},server=on,wait=off,nodelay=on"
        ))
        .args(["-serial", "chardev:s1", "-chardev"])
        .arg(format!(
            "socket,id=g,host=127.0.0.1,port={gdb_port},server=on,wait=off,nodelay=on"
        ))
        .args(["-gdb", "chardev:g", "-kernel"])
        .arg(image)
        .arg("-device")
        .arg(format!(
            "guest-loader,addr={module_base:#x},kernel={},bootargs=console=ttyAMA0",
            guest.to_string_lossy().replace(',', ",,")
        ))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().map_err(|e| format!("cannot start QEMU: {e}"))?;
    let result = (|| {
        let line = Line::connect(guest_port, &mut child)?;
        let text = line.wait(0, "gdbtarget: ready", &mut child)?;
        let pattern = printed_address(&text, "gdbtarget: pattern at ")?;
        let start = pattern & !(DUMP_BYTES - 1);
        let offset = (pattern - start) as usize;

        let stub_file = dir.join("stub.bin");
        let qemu_file = dir.join("qemu.bin");
        let mut pa = None;
        let mut rounds = Vec::new();
        for _ in 0..ROUNDS {
            let mut cmds = vec![format!("monitor vtop vm0.0 {start:#x}")];
            cmds.extend(timed_dump(&stub_file, start));
            let out = gdb(debug_port, &cmds)?;
            let at = *pa.get_or_insert(vtop_pa(&out)?);
            let stub = elapsed(&out)?;
            check_dump(&stub_file, offset, "the hypervisor's stub")?;

            let mut cmds = vec!["maint packet Qqemu.PhyMemMode:1".to_string()];
            cmds.extend(timed_dump(&qemu_file, at));
            let out = gdb(gdb_port, &cmds)?;
            let qemu = elapsed(&out)?;
            check_dump(&qemu_file, offset, "QEMU's gdbstub")?;
            eprintln!("bench: GDB dump round: stub {stub:.2} s, QEMU's gdbstub {qemu:.2} s");
            rounds.push((stub, qemu));
        }
        Figures::fastest(&rounds).ok_or_else(|| "no GDB dump round ran".to_string())
    })();
    let _ = child.kill();
    let _ = child.wait();
    if std::env::var_os("HV_BENCH_KEEP").is_none() {
        let _ = std::fs::remove_dir_all(&dir);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_row_takes_the_fastest_dump_of_each_side() {
        let f = Figures::fastest(&[(1.5, 0.2), (1.2, 0.3), (2.0, 0.25)]).unwrap();
        assert_eq!((f.stub, f.qemu), (1.2, 0.2));
        assert!(Figures::fastest(&[]).is_none());
    }

    #[test]
    fn the_time_is_read_between_the_two_stamps() {
        let out =
            "Remote debugging using :1\nbench-t=100.25\nbench-t=103.75\n[Inferior 1 detached]\n";
        assert_eq!(elapsed(out), Ok(3.5));
        assert!(elapsed("bench-t=1.0\n").is_err());
        assert!(elapsed("bench-t=2.0\nbench-t=1.0\n").is_err());
    }

    #[test]
    fn the_physical_address_is_read_from_vtop() {
        let out = "stage 1 level 0: table IPA 0x1 [0] = 0x3 (table)\n\
                   VA 0xffff800000100000 -> IPA 0x40100000 -> PA 0x90100000\n";
        assert_eq!(vtop_pa(out), Ok(0x9010_0000));
        assert!(vtop_pa("stage 2: IPA 0x1 is not guest RAM\n").is_err());
    }
}
