//! The snapshot rows of `cargo xtask bench` (issue 12 item 4): save and restore
//! of the same VM over the debug line, binary frames against the checksummed hex
//! text, side by side, in MiB of guest RAM per second.
//!
//! The VM is the `spin` guest with the rest of a 1 GiB machine as RAM (about
//! 1010 MiB, nearly all zero): what a big, mostly empty VM costs. Both transfers
//! are `cargo xtask snapshot save|restore` as a user runs them (this executable's
//! own code), on QEMU's TCP serial (`nodelay=on`), timed on the host: like the
//! GDB row, a wall-clock ratio taken in one run, not an instruction count (the
//! line, not the hypervisor's instructions, sets the pace).

use crate::budget::{Budget, Row};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Binary must be at least 4x faster than hex (issue 12 item 4): at most 0.25x
/// hex's time.
pub const RATIO_BUDGET: f64 = 0.25;

struct Kill(Child);

impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> Result<u16, String> {
    let l = TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    Ok(l.local_addr().map_err(|e| e.to_string())?.port())
}

/// Seconds `f` takes.
fn timed(f: impl FnOnce() -> Result<(), String>) -> Result<f64, String> {
    let start = Instant::now();
    f()?;
    Ok(start.elapsed().as_secs_f64())
}

pub fn bench(qemu: &str, image: &Path, spin: &Path, module_base: u64) -> Result<Vec<Row>, String> {
    let dir = std::env::temp_dir().join(format!("hv-bench-snapshot-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let guest_log = dir.join("guest.txt");
    let port = free_port()?;
    let child = Command::new(qemu)
        .args([
            "-M",
            "virt,virtualization=on,gic-version=3",
            "-cpu",
            "max",
            "-smp",
            "1",
            "-m",
            "1G",
            "-display",
            "none",
            "-monitor",
            "none",
            "-no-reboot",
        ])
        .arg("-serial")
        .arg(format!("file:{}", guest_log.display()))
        .arg("-chardev")
        .arg(format!(
            "socket,id=s1,host=127.0.0.1,port={port},server=on,wait=off,nodelay=on"
        ))
        .args(["-serial", "chardev:s1"])
        .arg("-kernel")
        .arg(image)
        .arg("-device")
        .arg(format!(
            "guest-loader,addr={module_base:#x},kernel={},bootargs=console=ttyAMA0 count=1000000000000 every=100000000",
            spin.display()
        ))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot start QEMU: {e}"))?;
    let _qemu = Kill(child);
    // The guest counts once it runs: the hypervisor is up, its console ready.
    let start = Instant::now();
    while !std::fs::read_to_string(&guest_log).is_ok_and(|t| t.contains("spin: progress")) {
        if start.elapsed() > Duration::from_secs(120) {
            return Err("snapshot bench: the spin guest did not start".into());
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let target = crate::snapshot::Target {
        port: Some(port),
        device: None,
    };
    let file = dir.join("vm0.snap");
    let hex_file = dir.join("vm0-hex.snap");
    let save = timed(|| crate::snapshot::save(&target, 0, &file, false, false, false))?;
    let save_hex = timed(|| crate::snapshot::save(&target, 0, &hex_file, false, true, false))?;
    let restore = timed(|| crate::snapshot::restore(&target, 0, &file, false, false))?;
    let restore_hex = timed(|| crate::snapshot::restore(&target, 0, &hex_file, false, true))?;
    let bytes = std::fs::read(&file).map_err(|e| e.to_string())?;
    let p = hypervisor::snapshot::decode(&bytes).map_err(|e| e.to_string())?;
    let mib = (p.header.ram_size >> 20) as f64;
    let _ = std::fs::remove_dir_all(&dir);
    let row = |what: &str, hex: f64, bin: f64| {
        Row::new(
            format!(
                "snapshot {what} of a {mib:.0} MiB VM, {} KiB file, over the debug UART: binary {:.0} MiB/s of RAM; bare: --hex, {:.0} MiB/s (wall clock)",
                bytes.len().div_ceil(1024),
                mib / bin,
                mib / hex
            ),
            Some(hex),
            bin,
            "s",
        )
        .budget(Budget::RatioAtMost(RATIO_BUDGET))
    };
    Ok(vec![
        row("save", save_hex, save),
        row("restore", restore_hex, restore),
    ])
}
