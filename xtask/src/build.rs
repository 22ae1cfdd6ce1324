//! Building the hypervisor Image and the bundled guests.

use crate::{root, run_cmd};
use std::path::{Path, PathBuf};
use std::process::Command;

pub const HV_TARGET: &str = "aarch64-unknown-none-softfloat";

fn cargo() -> Command {
    let mut c = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    c.current_dir(root());
    c
}

/// Where cargo puts what it builds: `CARGO_TARGET_DIR` if set (a relative one is
/// relative to the workspace root, where `cargo()` runs), else `target/`.
fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(d) if !d.is_empty() => root().join(d),
        _ => root().join("target"),
    }
}

/// llvm-objcopy from the `llvm-tools` component.
pub fn objcopy() -> Result<PathBuf, String> {
    let out = |args: &[&str]| -> Result<String, String> {
        let o = Command::new("rustc")
            .args(args)
            .output()
            .map_err(|e| format!("rustc: {e}"))?;
        Ok(String::from_utf8_lossy(&o.stdout).into_owned())
    };
    let sysroot = out(&["--print", "sysroot"])?;
    let host = out(&["-vV"])?
        .lines()
        .find_map(|l| l.strip_prefix("host: ").map(str::to_owned))
        .ok_or("rustc -vV printed no host")?;
    let p = Path::new(sysroot.trim())
        .join("lib/rustlib")
        .join(host)
        .join("bin/llvm-objcopy");
    if p.is_file() {
        Ok(p)
    } else {
        Err(format!(
            "{} is missing: run `rustup component add llvm-tools`",
            p.display()
        ))
    }
}

/// Checks the arm64 Image header: the magic "ARM\x64" at offset 56.
pub fn check_image(path: &Path) -> Result<(), String> {
    let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    if bytes.len() < 64 || &bytes[56..60] != b"ARM\x64" {
        return Err(format!(
            "{} is not an arm64 Image (no magic at offset 56)",
            path.display()
        ));
    }
    Ok(())
}

/// Builds the hypervisor Image and leaves a copy for `board`; returns its path.
/// One Image serves every board (it picks its board at boot from the device
/// tree), so `board` only checks the name and names the directory.
pub fn hypervisor(board: &str) -> Result<PathBuf, String> {
    crate::board::Board::load(board)?;
    run_cmd(cargo().args([
        "build",
        "--release",
        "--target",
        HV_TARGET,
        "--bin",
        "hypervisor",
    ]))?;
    let elf = target_dir().join(HV_TARGET).join("release/hypervisor");
    let dir = root().join("target/images").join(board);
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let img = dir.join("hypervisor.img");
    run_cmd(
        Command::new(objcopy()?)
            .arg("-O")
            .arg("binary")
            .arg(&elf)
            .arg(&img),
    )?;
    check_image(&img)?;
    Ok(img)
}

/// Builds the guests (guests/build.sh); returns the directory of their Images.
pub fn guests() -> Result<PathBuf, String> {
    let script = root().join("guests/build.sh");
    let out = Command::new("bash")
        .arg(&script)
        .current_dir(root())
        .env_remove("CARGO_TARGET_DIR")
        .env_remove("RUSTFLAGS")
        .output()
        .map_err(|e| format!("{}: {e}", script.display()))?;
    if !out.status.success() {
        eprint!("{}", String::from_utf8_lossy(&out.stderr));
        return Err(format!("{} failed with {}", script.display(), out.status));
    }
    Ok(root().join("guests/target/images"))
}
