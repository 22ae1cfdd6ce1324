//! `cargo xtask setup`: installs what is missing, and does nothing (quickly) when all
//! is there. On Debian, as root, it installs with apt-get, adding bookworm-backports
//! for QEMU 10 (bookworm's own 7.2 has no second PL011 on `virt` and no `raspi4b`);
//! anywhere else it says exactly what to install.

use crate::run_cmd;
use std::process::Command;

/// The hypervisor's target, the AArch64 guests', and the AArch32 guest's.
const TARGETS: [&str; 3] = [
    "aarch64-unknown-none-softfloat",
    "aarch64-unknown-none",
    "armv7a-none-eabi",
];
const QEMU_MIN: u32 = 10;
/// What Debian's `u-boot-qemu` ships for QEMU `virt` (AArch64).
const UBOOT_QEMU: &str = "/usr/lib/u-boot/qemu_arm64/u-boot.bin";
const BACKPORTS: &str = "/etc/apt/sources.list.d/bookworm-backports.sources";

fn output(cmd: &str, args: &[&str]) -> Option<String> {
    let o = Command::new(cmd).args(args).output().ok()?;
    o.status
        .success()
        .then(|| String::from_utf8_lossy(&o.stdout).into_owned())
}

fn have(cmd: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {cmd} >/dev/null")])
        .status()
        .is_ok_and(|s| s.success())
}

/// The major version of qemu-system-aarch64, if installed.
pub fn qemu_major() -> Option<u32> {
    let v = output("qemu-system-aarch64", &["--version"])?;
    let ver = v
        .split_whitespace()
        .skip_while(|w| *w != "version")
        .nth(1)?;
    ver.split('.').next()?.parse().ok()
}

fn os_release(key: &str) -> Option<String> {
    let text = std::fs::read_to_string("/etc/os-release").ok()?;
    text.lines().find_map(|l| {
        l.strip_prefix(&format!("{key}="))
            .map(|v| v.trim_matches('"').to_owned())
    })
}

fn is_root() -> bool {
    output("id", &["-u"]).is_some_and(|u| u.trim() == "0")
}

pub fn setup() -> Result<(), String> {
    // Rust: targets and llvm-tools (rustup is the one prerequisite).
    let installed = output("rustup", &["target", "list", "--installed"])
        .ok_or("rustup is missing: install it from https://rustup.rs")?;
    let missing: Vec<&str> = TARGETS
        .iter()
        .copied()
        .filter(|t| !installed.lines().any(|l| l == *t))
        .collect();
    if !missing.is_empty() {
        run_cmd(
            Command::new("rustup")
                .arg("target")
                .arg("add")
                .args(&missing),
        )?;
    }
    let components = output("rustup", &["component", "list", "--installed"]).unwrap_or_default();
    if !components.lines().any(|l| l.starts_with("llvm-tools")) {
        run_cmd(Command::new("rustup").args(["component", "add", "llvm-tools"]))?;
    }

    // System packages.
    let qemu_ok = qemu_major().is_some_and(|v| v >= QEMU_MIN);
    let mut packages: Vec<&str> = Vec::new();
    if !have("gdb-multiarch") {
        packages.push("gdb-multiarch");
    }
    if !have("cpio") {
        packages.push("cpio");
    }
    if !have("dtc") {
        packages.push("device-tree-compiler");
    }
    // `cargo xtask sdcard`: U-Boot's boot.scr (mkimage), the card image's FAT
    // partition (mkfs.vfat) and its files (mcopy).
    for (tool, package) in [
        ("mkimage", "u-boot-tools"),
        ("mkfs.vfat", "dosfstools"),
        ("mcopy", "mtools"),
    ] {
        if !have(tool) {
            packages.push(package);
        }
    }
    // The U-Boot test (tests/uboot_virt.rs): Debian's U-Boot for QEMU `virt` as
    // the machine's firmware, booting the hypervisor with `booti`.
    if !std::path::Path::new(UBOOT_QEMU).is_file() {
        packages.push("u-boot-qemu");
    }
    if qemu_ok && packages.is_empty() {
        return Ok(());
    }
    let debian = os_release("ID").as_deref() == Some("debian");
    let bookworm = os_release("VERSION_CODENAME").as_deref() == Some("bookworm");
    if !(debian && is_root() && have("apt-get")) {
        let mut need = packages.clone();
        if !qemu_ok {
            need.push(
                "qemu-system-arm (QEMU 10 or newer; on Debian bookworm from bookworm-backports)",
            );
        }
        return Err(format!(
            "missing: {}. Install them (as root on Debian: apt-get install ...), then run this again",
            need.join(", ")
        ));
    }
    let apt = |args: &[&str]| {
        run_cmd(
            Command::new("apt-get")
                .env("DEBIAN_FRONTEND", "noninteractive")
                .args(args),
        )
    };
    if !qemu_ok && bookworm && !backports_configured() {
        eprintln!("xtask: adding bookworm-backports ({BACKPORTS}) for QEMU {QEMU_MIN}");
        std::fs::write(
            BACKPORTS,
            "Types: deb\nURIs: http://deb.debian.org/debian\nSuites: bookworm-backports\nComponents: main\n\
             Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n",
        )
        .map_err(|e| format!("{BACKPORTS}: {e}"))?;
    }
    apt(&["update"])?;
    if !qemu_ok {
        if bookworm {
            apt(&[
                "install",
                "-y",
                "-t",
                "bookworm-backports",
                "qemu-system-arm",
            ])?;
        } else {
            apt(&["install", "-y", "qemu-system-arm"])?;
        }
        if !qemu_major().is_some_and(|v| v >= QEMU_MIN) {
            return Err(format!(
                "installed QEMU is older than {QEMU_MIN}: see `qemu-system-aarch64 --version`"
            ));
        }
    }
    if !packages.is_empty() {
        let mut args = vec!["install", "-y"];
        args.extend(&packages);
        apt(&args)?;
    }
    Ok(())
}

fn backports_configured() -> bool {
    let mut files = vec![std::path::PathBuf::from("/etc/apt/sources.list")];
    if let Ok(d) = std::fs::read_dir("/etc/apt/sources.list.d") {
        files.extend(d.flatten().map(|e| e.path()));
    }
    files
        .iter()
        .any(|f| std::fs::read_to_string(f).is_ok_and(|t| t.contains("bookworm-backports")))
}
