//! `cargo xtask snapshot save|restore|show|diff`: snapshots as host files.
//!
//! `save` and `restore` talk to the hypervisor's debug console (QEMU's TCP serial,
//! `--port`, or a board's serial device, `--device`) with the console's
//! `snapshot send` and `snapshot receive` commands; the format and the transfer are
//! the hypervisor's own code (`hypervisor::snapshot`), so both sides agree by
//! construction. `show` prints a file's registers by name, `diff` compares two.

use hypervisor::cpreg::lookup_kvm;
use hypervisor::snapshot::{self, transfer, Parsed, PAGE};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

trait Link: Read + Write {}
impl<T: Read + Write> Link for T {}

pub struct Target {
    pub port: Option<u16>,
    pub device: Option<PathBuf>,
}

fn connect(t: &Target) -> Result<Box<dyn Link>, String> {
    match (t.port, &t.device) {
        (Some(p), None) => {
            let s = TcpStream::connect(("127.0.0.1", p)).map_err(|e| format!("cannot connect to 127.0.0.1:{p}: {e}"))?;
            s.set_read_timeout(Some(Duration::from_millis(200))).ok();
            Ok(Box::new(s))
        }
        (None, Some(d)) => {
            // The line's speed and raw mode are the user's (stty -F DEVICE 115200 raw -echo).
            let f = std::fs::OpenOptions::new().read(true).write(true).open(d).map_err(|e| format!("{}: {e}", d.display()))?;
            Ok(Box::new(f))
        }
        _ => Err("give the debug console as --port PORT (QEMU's TCP serial) or --device PATH (a serial device)".into()),
    }
}

/// Reads console text until `done(text)` says so, or the deadline passes.
fn read_until(
    link: &mut dyn Link,
    text: &mut String,
    deadline: Duration,
    done: impl Fn(&str) -> bool,
) -> Result<(), String> {
    let start = Instant::now();
    let mut buf = [0u8; 65536];
    while !done(text) {
        if start.elapsed() > deadline {
            return Err(format!(
                "no answer from the hypervisor within {} s; last output:\n{}",
                deadline.as_secs_f64(),
                tail(text)
            ));
        }
        match link.read(&mut buf) {
            Ok(0) => return Err(format!("the console closed; last output:\n{}", tail(text))),
            Ok(n) => text.push_str(&String::from_utf8_lossy(&buf[..n])),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(e) => return Err(format!("reading the console: {e}")),
        }
    }
    Ok(())
}

fn tail(text: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(10)..].join("\n")
}

/// The console's `error: ...` message, once its line is complete (a reader
/// that stopped at the first bytes of it would cut the message short).
fn console_error(text: &str) -> Option<String> {
    let complete = &text[..text.rfind('\n').map_or(0, |i| i + 1)];
    complete
        .lines()
        .find_map(|l| l.trim().strip_prefix("error: ").map(str::to_owned))
}

/// ` --force` when the user forces a snapshot of a VM with passed-through devices.
fn force_flag(force: bool) -> &'static str {
    if force {
        " --force"
    } else {
        ""
    }
}

pub fn save(t: &Target, vm: usize, file: &Path, force: bool) -> Result<(), String> {
    let mut link = connect(t)?;
    let force = force_flag(force);
    link.write_all(format!("\rsnapshot send vm{vm}{force}\r").as_bytes())
        .map_err(|e| e.to_string())?;
    let mut text = String::new();
    read_until(&mut *link, &mut text, Duration::from_secs(120), |t| {
        transfer::extract(t).is_some() || console_error(t).is_some()
    })?;
    if let Some(e) = console_error(&text) {
        return Err(format!("the hypervisor refused: {e}"));
    }
    let bytes = transfer::extract(&text)
        .unwrap()
        .map_err(|e| format!("transfer: {e}"))?;
    let p =
        snapshot::decode(&bytes).map_err(|e| format!("the received snapshot is invalid: {e}"))?;
    std::fs::write(file, &bytes).map_err(|e| format!("{}: {e}", file.display()))?;
    println!(
        "saved vm{vm} to {} ({} bytes, {} vCPU(s), {} MiB of RAM)",
        file.display(),
        bytes.len(),
        p.header.vcpus,
        p.header.ram_size >> 20
    );
    Ok(())
}

pub fn restore(t: &Target, vm: usize, file: &Path, force: bool) -> Result<(), String> {
    let bytes = std::fs::read(file).map_err(|e| format!("{}: {e}", file.display()))?;
    // Refuse a bad file here, before the hypervisor sees a byte.
    snapshot::decode(&bytes).map_err(|e| format!("{}: {e}", file.display()))?;
    let mut link = connect(t)?;
    let cmd = format!(
        "\rsnapshot receive vm{vm} {} {:08x}{}\r",
        bytes.len(),
        transfer::checksum(&bytes),
        force_flag(force)
    );
    link.write_all(cmd.as_bytes()).map_err(|e| e.to_string())?;
    let mut text = String::new();
    read_until(&mut *link, &mut text, Duration::from_secs(30), |t| {
        t.contains("ready for ") || console_error(t).is_some()
    })?;
    if let Some(e) = console_error(&text) {
        return Err(format!("the hypervisor refused: {e}"));
    }
    let mut body = String::new();
    transfer::write_body(&bytes, &mut body).unwrap();
    link.write_all(body.as_bytes()).map_err(|e| e.to_string())?;
    let done = format!("vm{vm}: restored from the host");
    read_until(&mut *link, &mut text, Duration::from_secs(120), |t| {
        t.contains(&done) || console_error(t).is_some()
    })?;
    if let Some(e) = console_error(&text) {
        return Err(format!("the hypervisor refused the snapshot: {e}"));
    }
    println!("restored vm{vm} from {}", file.display());
    Ok(())
}

fn load(file: &Path) -> Result<Vec<u8>, String> {
    std::fs::read(file).map_err(|e| format!("{}: {e}", file.display()))
}

fn name(index: u64) -> String {
    lookup_kvm(index).map_or_else(|| format!("{index:#018x}"), |r| r.name().to_string())
}

fn pages(p: &Parsed) -> Vec<Option<u64>> {
    let mut v = Vec::new();
    p.for_each_page(|_, page| {
        v.push(page.map(|d| {
            d.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
                (h ^ b as u64).wrapping_mul(0x100_0000_01b3)
            })
        }))
    });
    v
}

pub fn show(file: &Path) -> Result<(), String> {
    let bytes = load(file)?;
    let p = snapshot::decode(&bytes).map_err(|e| format!("{}: {e}", file.display()))?;
    let h = &p.header;
    println!(
        "{}: format version {}, MIDR {:#x}, {} vCPU(s)",
        file.display(),
        h.version,
        h.midr,
        h.vcpus
    );
    let data = pages(&p).iter().filter(|x| x.is_some()).count();
    println!(
        "RAM: {} MiB at IPA {:#x}, {} data pages, {} zero pages",
        h.ram_size >> 20,
        h.ram_ipa,
        data,
        h.ram_size as usize / PAGE - data
    );
    println!(
        "vGIC state: {}",
        p.gic
            .map_or("none".to_string(), |g| format!("{} bytes", g.len()))
    );
    for (i, c) in p.cpus.iter().enumerate() {
        println!(
            "vCPU {i}: {}, pc {:#x}, pstate {:#x}",
            if c.powered_on { "on" } else { "off" },
            c.pc,
            c.pstate
        );
        for (n, x) in c.x.iter().enumerate() {
            println!("  x{n:<2} {x:#018x}");
        }
        for &(index, value) in &c.regs {
            println!("  {:<20} {value:#018x}", name(index));
        }
    }
    Ok(())
}

pub fn diff(a: &Path, b: &Path) -> Result<(), String> {
    let (ba, bb) = (load(a)?, load(b)?);
    let pa = snapshot::decode(&ba).map_err(|e| format!("{}: {e}", a.display()))?;
    let pb = snapshot::decode(&bb).map_err(|e| format!("{}: {e}", b.display()))?;
    let mut differences = 0;
    let mut say = |s: String| {
        differences += 1;
        println!("{s}");
    };
    let (ha, hb) = (&pa.header, &pb.header);
    if ha.midr != hb.midr {
        say(format!("MIDR: {:#x} -> {:#x}", ha.midr, hb.midr));
    }
    if (ha.ram_ipa, ha.ram_size) != (hb.ram_ipa, hb.ram_size) {
        say(format!(
            "RAM: {:#x}+{:#x} -> {:#x}+{:#x}",
            ha.ram_ipa, ha.ram_size, hb.ram_ipa, hb.ram_size
        ));
    }
    if ha.vcpus != hb.vcpus {
        say(format!("vCPUs: {} -> {}", ha.vcpus, hb.vcpus));
    }
    for (i, (ca, cb)) in pa.cpus.iter().zip(&pb.cpus).enumerate() {
        if ca.pc != cb.pc {
            say(format!("vCPU {i}: pc {:#x} -> {:#x}", ca.pc, cb.pc));
        }
        if ca.pstate != cb.pstate {
            say(format!(
                "vCPU {i}: pstate {:#x} -> {:#x}",
                ca.pstate, cb.pstate
            ));
        }
        for n in 0..31 {
            if ca.x[n] != cb.x[n] {
                say(format!("vCPU {i}: x{n} {:#x} -> {:#x}", ca.x[n], cb.x[n]));
            }
        }
        let ra: std::collections::BTreeMap<u64, u64> = ca.regs.iter().copied().collect();
        let rb: std::collections::BTreeMap<u64, u64> = cb.regs.iter().copied().collect();
        for k in ra
            .keys()
            .chain(rb.keys())
            .collect::<std::collections::BTreeSet<_>>()
        {
            match (ra.get(k), rb.get(k)) {
                (Some(x), Some(y)) if x != y => {
                    say(format!("vCPU {i}: {} {x:#x} -> {y:#x}", name(*k)))
                }
                (Some(_), None) => say(format!("vCPU {i}: {} only in {}", name(*k), a.display())),
                (None, Some(_)) => say(format!("vCPU {i}: {} only in {}", name(*k), b.display())),
                _ => {}
            }
        }
    }
    let (ga, gb) = (pages(&pa), pages(&pb));
    let changed = ga.iter().zip(&gb).filter(|(x, y)| x != y).count();
    if changed > 0 {
        say(format!("RAM: {changed} page(s) differ"));
    }
    if pa.gic != pb.gic {
        say("vGIC state differs".into());
    }
    if differences == 0 {
        println!("no differences");
    }
    Ok(())
}
