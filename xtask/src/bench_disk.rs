//! The passthrough row of `cargo xtask bench`: disk throughput and interrupts of
//! a passed-through virtio-blk disk, bare and under the hypervisor in the same
//! run, and the EL2 exits each forwarded interrupt costs.
//!
//! Debian's Linux (`fetch-linux`) with `linux-guest.bench` on its command line
//! mounts the disk, says `bench: ready` and waits for a line on its console;
//! then copies a 64 MiB file to `/dev/null` with `dd bs=1M`, prints how long
//! that took by the kernel's clock and the virtio interrupt count before and after, says `bench: done` and
//! waits again. Bare, QEMU boots that Linux directly (`-M virt`, `-kernel`, at
//! EL1); under the hypervisor the disk is given to it with
//! `hv.passthrough=vm0:/virtio_mmio@a003e00`, and while the guest waits the
//! benchmark reads the hypervisor's counters on its debug console (`info`:
//! EL2 exits since boot; `vms`: interrupts forwarded), so the figures cover
//! the `dd` alone (all exits: the forwarded interrupts, the timers', and the
//! guest's trapped system-register writes and WFIs; and those for interrupts
//! alone). Both run under `-icount shift=0,sleep=off,align=off`: the
//! guest's clock counts instructions, so dd's MB/s is bytes per instruction
//! of guest time, never a wall-clock figure.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const ICOUNT: &str = "shift=0,sleep=off,align=off";
const FILE_MIB: usize = 64;
const DEADLINE: Duration = Duration::from_secs(600);

/// One serial line over QEMU's TCP chardev: what it printed, and a way to type.
pub(crate) struct Line {
    text: Arc<Mutex<String>>,
    stream: TcpStream,
}

impl Line {
    pub(crate) fn connect(port: u16, qemu: &mut Child) -> Result<Line, String> {
        let start = Instant::now();
        let stream = loop {
            match TcpStream::connect(("127.0.0.1", port)) {
                Ok(s) => break s,
                Err(e) => {
                    if let Ok(Some(st)) = qemu.try_wait() {
                        return Err(format!("QEMU exited ({st}) before its serial line opened"));
                    }
                    if start.elapsed() > Duration::from_secs(30) {
                        return Err(format!("cannot connect to QEMU's serial on {port}: {e}"));
                    }
                    std::thread::sleep(Duration::from_millis(20));
                }
            }
        };
        let text = Arc::new(Mutex::new(String::new()));
        let (t, mut r) = (text.clone(), stream.try_clone().map_err(|e| e.to_string())?);
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = r.read(&mut buf) {
                if n == 0 {
                    break;
                }
                t.lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buf[..n]).replace('\r', ""));
            }
        });
        Ok(Line { text, stream })
    }

    pub(crate) fn text(&self) -> String {
        self.text.lock().unwrap().clone()
    }

    /// Waits until `what` appears after byte `from`; returns the text from there.
    pub(crate) fn wait(&self, from: usize, what: &str, qemu: &mut Child) -> Result<String, String> {
        let start = Instant::now();
        loop {
            let t = self.text();
            let tail = t.get(from..).unwrap_or("");
            if tail.contains(what) {
                return Ok(tail.to_string());
            }
            if let Ok(Some(st)) = qemu.try_wait() {
                return Err(format!(
                    "QEMU exited ({st}) before {what:?}; last output:\n{}",
                    last(&t)
                ));
            }
            if start.elapsed() > DEADLINE {
                return Err(format!(
                    "no {what:?} within {DEADLINE:?}; last output:\n{}",
                    last(&t)
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn send(&mut self, s: &str) -> Result<(), String> {
        self.stream
            .write_all(s.as_bytes())
            .map_err(|e| e.to_string())
    }
}

pub(crate) fn last(t: &str) -> String {
    let l: Vec<&str> = t.lines().collect();
    l[l.len().saturating_sub(15)..].join("\n")
}

pub(crate) fn free_port() -> Result<u16, String> {
    Ok(TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_err(|e| e.to_string())?
        .port())
}

fn tool(name: &str) -> Result<PathBuf, String> {
    ["/usr/sbin", "/sbin", "/usr/bin", "/bin"]
        .iter()
        .map(|d| Path::new(d).join(name))
        .find(|p| p.is_file())
        .ok_or_else(|| format!("{name} is missing: install e2fsprogs (apt-get install e2fsprogs)"))
}

/// An ext4 image with `/big`: 64 MiB of pseudo-random bytes (no holes, nothing
/// a disk could shortcut).
fn disk_image(dir: &Path) -> Result<PathBuf, String> {
    let root = dir.join("root");
    std::fs::create_dir_all(&root).map_err(|e| e.to_string())?;
    let mut data = vec![0u8; FILE_MIB << 20];
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for chunk in data.chunks_mut(8) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        chunk.copy_from_slice(&x.to_le_bytes()[..chunk.len()]);
    }
    std::fs::write(root.join("big"), &data).map_err(|e| e.to_string())?;
    let image = dir.join("disk.img");
    let out = Command::new(tool("mkfs.ext4")?)
        .args(["-q", "-F", "-d"])
        .arg(&root)
        .arg(&image)
        .arg(format!("{}M", FILE_MIB + 32))
        .output()
        .map_err(|e| format!("mkfs.ext4: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "mkfs.ext4 failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(image)
}

/// What one run measured.
struct Figures {
    /// The guest's dd line (records, nanoseconds).
    dd: String,
    /// The dd's seconds of guest time (instructions / 10^9 under -icount shift=0).
    seconds: f64,
    /// Virtio interrupts the guest took during the dd.
    irqs: u64,
    /// Under the hypervisor: (EL2 exits, of them for interrupts, interrupts
    /// forwarded) during the dd.
    hv: Option<(u64, u64, u64)>,
}

fn parse_guest(out: &str) -> Result<(String, f64, u64), String> {
    let dd = out
        .lines()
        .find_map(|l| l.trim().strip_prefix("bench: dd "))
        .ok_or_else(|| format!("no dd summary in the guest's output:\n{}", last(out)))?;
    // "64+0 records out in 123456789 ns"
    let seconds = dd
        .rsplit_once(" in ")
        .and_then(|(_, t)| t.strip_suffix(" ns"))
        .and_then(|n| n.trim().parse::<u64>().ok())
        .map(|ns| ns as f64 / 1e9)
        .ok_or_else(|| format!("cannot read the dd's time from {dd:?}"))?;
    let irqs = out
        .lines()
        .find_map(|l| l.trim().strip_prefix("bench: irqs "))
        .and_then(|l| {
            let mut w = l.split_whitespace().map(|n| n.parse::<u64>().ok());
            Some(w.next()??.abs_diff(w.next()??))
        })
        .ok_or_else(|| format!("no interrupt counts in the guest's output:\n{}", last(out)))?;
    Ok((dd.to_string(), seconds, irqs))
}

/// (EL2 exits since boot, of them for interrupts, interrupts forwarded to vm0)
/// from the debug console's `info`.
fn counters(debug: &mut Line, qemu: &mut Child) -> Result<(u64, u64, u64), String> {
    let mark = debug.text().len();
    debug.send("info\r")?;
    let t = debug.wait(mark, "interrupts forwarded", qemu)?;
    // "EL2 exits since boot: N (I interrupts, S synchronous, O other)"
    let line = t
        .lines()
        .find_map(|l| l.trim().strip_prefix("EL2 exits since boot: "))
        .ok_or("the debug console's info gave no EL2 exit count")?;
    let mut words = line
        .split(|c: char| !c.is_ascii_digit())
        .filter(|w| !w.is_empty())
        .map(|w| w.parse::<u64>().ok());
    let (Some(Some(exits)), Some(Some(irq_exits))) = (words.next(), words.next()) else {
        return Err(format!("cannot read the EL2 exit counts from {line:?}"));
    };
    let forwarded = t
        .lines()
        .find(|l| l.contains("interrupts forwarded"))
        .and_then(|l| l.split(", ").nth(1))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .ok_or("the debug console's info gave no forwarded interrupt count")?;
    Ok((exits, irq_exits, forwarded))
}

fn run(mut cmd: Command, hypervisor: bool) -> Result<Figures, String> {
    let guest_port = free_port()?;
    let debug_port = free_port()?;
    for (i, port) in [guest_port, debug_port]
        .iter()
        .enumerate()
        .take(if hypervisor { 2 } else { 1 })
    {
        cmd.arg("-chardev")
            .arg(format!(
                "socket,id=s{i},host=127.0.0.1,port={port},server=on,wait=on,nodelay=on"
            ))
            .arg("-serial")
            .arg(format!("chardev:s{i}"));
    }
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut qemu = cmd.spawn().map_err(|e| format!("cannot start QEMU: {e}"))?;
    let result = (|| {
        let mut guest = Line::connect(guest_port, &mut qemu)?;
        let mut debug = if hypervisor {
            Some(Line::connect(debug_port, &mut qemu)?)
        } else {
            None
        };
        guest.wait(0, "bench: ready", &mut qemu)?;
        let before = match debug.as_mut() {
            Some(d) => Some(counters(d, &mut qemu)?),
            None => None,
        };
        let mark = guest.text().len();
        guest.send("\r")?;
        guest.wait(mark, "bench: done", &mut qemu)?;
        let after = match debug.as_mut() {
            Some(d) => Some(counters(d, &mut qemu)?),
            None => None,
        };
        guest.send("\r")?;
        let (dd, seconds, irqs) = parse_guest(&guest.text())?;
        let hv = before.zip(after).map(|(b, a)| {
            (
                a.0.saturating_sub(b.0),
                a.1.saturating_sub(b.1),
                a.2.saturating_sub(b.2),
            )
        });
        Ok(Figures {
            dd,
            seconds,
            irqs,
            hv,
        })
    })();
    let _ = qemu.kill();
    let _ = qemu.wait();
    result
}

/// The passthrough table (printed by `cargo xtask bench`).
pub fn bench(qemu_bin: &str, hypervisor: &Path, module_base: u64) -> Result<(), String> {
    let linux = crate::linux::fetch(&crate::root())?;
    let dir = crate::root().join("target").join("bench-disk");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let image = disk_image(&dir)?;
    let bootargs = "console=ttyAMA0 panic=-1 linux-guest.bench";
    let common = |cmd: &mut Command, machine: &str| {
        cmd.args(["-M", machine, "-cpu", "max", "-smp", "1", "-m", "1G"])
            .args(["-display", "none", "-monitor", "none", "-no-reboot"])
            .args(["-icount", ICOUNT])
            .arg("-drive")
            .arg(format!(
                "if=none,id=d0,format=raw,file={}",
                image.display().to_string().replace(',', ",,")
            ))
            .args([
                "-device",
                "virtio-blk-device,drive=d0,bus=virtio-mmio-bus.31",
            ]);
    };
    let mut bare = Command::new(qemu_bin);
    common(&mut bare, "virt,gic-version=3");
    bare.arg("-kernel")
        .arg(&linux.kernel)
        .arg("-initrd")
        .arg(&linux.initrd)
        .args(["-append", bootargs]);
    let mut hv = Command::new(qemu_bin);
    common(&mut hv, "virt,virtualization=on,gic-version=3");
    let esc = |p: &Path| p.display().to_string().replace(',', ",,");
    let kernel_size = std::fs::metadata(&linux.kernel)
        .map_err(|e| e.to_string())?
        .len();
    let initrd_at = (module_base + kernel_size + (2 << 20) - 1) & !((2 << 20) - 1);
    hv.arg("-kernel")
        .arg(hypervisor)
        .args(["-append", "hv.passthrough=vm0:/virtio_mmio@a003e00"])
        .arg("-device")
        .arg(format!(
            "guest-loader,addr={module_base:#x},kernel={},bootargs={bootargs}",
            esc(&linux.kernel)
        ))
        .arg("-device")
        .arg(format!(
            "guest-loader,addr={initrd_at:#x},initrd={}",
            esc(&linux.initrd)
        ));
    eprintln!("xtask: bench: Linux reads a {FILE_MIB} MiB file from a virtio disk, bare");
    let b = run(bare, false)?;
    eprintln!("xtask: bench: the same under the hypervisor, the disk passed through");
    let h = run(hv, true)?;
    let (exits, irq_exits, forwarded) = h.hv.unwrap_or((0, 0, 0));
    let mbs = |f: &Figures| FILE_MIB as f64 / f.seconds.max(1e-9);
    println!();
    println!(
        "Passthrough: dd of a {FILE_MIB} MiB file from a virtio-blk disk (virtio-mmio), Debian's Linux, 1 CPU, \
         -icount {ICOUNT} (guest time is instructions: MiB per 10^9 of them):"
    );
    println!();
    println!("| | bare at EL1 | under the hypervisor | ratio |");
    println!("|---|---:|---:|---:|");
    println!(
        "| throughput (MiB per 10^9 guest instructions) | {:.1} | {:.1} | {:.2}x |",
        mbs(&b),
        mbs(&h),
        mbs(&h) / mbs(&b)
    );
    println!(
        "| guest time of the dd (10^6 instructions) | {:.0} | {:.0} | {:.2}x |",
        b.seconds * 1e3,
        h.seconds * 1e3,
        h.seconds / b.seconds.max(1e-9)
    );
    println!(
        "| virtio interrupts during the dd | {} | {} | {:.2}x |",
        b.irqs,
        h.irqs,
        h.irqs as f64 / (b.irqs.max(1)) as f64
    );
    let per = |n: u64| {
        if forwarded == 0 {
            "-".to_string()
        } else {
            format!("{:.2}", n as f64 / forwarded as f64)
        }
    };
    println!(
        "| EL2 exits per forwarded interrupt, all ({exits} exits, {forwarded} interrupts) | - | {} | - |",
        per(exits)
    );
    println!(
        "| EL2 exits per forwarded interrupt, IRQ exits only ({irq_exits}) | - | {} | - |",
        per(irq_exits)
    );
    println!();
    println!("dd bare: {}", b.dd);
    println!("dd under the hypervisor: {}", h.dd);
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
