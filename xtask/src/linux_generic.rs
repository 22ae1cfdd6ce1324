//! Debian's generic arm64 kernel (`linux-image-arm64`): the dev boards' DTBs for
//! QEMU's board models, and a kernel with the SoC drivers the cloud kernel lacks
//! (DESIGN.md sections 7 and 10). Fetched exactly as `linux.rs` fetches the cloud
//! kernel: the meta-package `linux-image-arm64` resolves to the versioned
//! `linux-image-<release>-arm64`, downloaded for arm64 through the same private
//! apt configuration (`target/linux/apt/`; no system change), and cached under
//! `target/linux-generic/`:
//!
//! - `Image`: the uncompressed arm64 Image;
//! - `dtbs/<vendor>/<board>.dtb`: the DTBs the board files name
//!   (`[qemu] dtb = "broadcom/bcm2711-rpi-4-b.dtb"`), as Debian ships them.
//!
//! A stamp records the release and the DTB list; with it and every file in
//! place, nothing touches the network.

use crate::linux::{self, Apt};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

const META_PACKAGE: &str = "linux-image-arm64";

/// What `fetch` leaves.
pub struct GenericLinux {
    /// The uncompressed Image (`target/linux-generic/Image`).
    pub kernel: PathBuf,
    /// The DTB directory (`target/linux-generic/dtbs`).
    pub dtbs: PathBuf,
    /// The kernel release, e.g. `6.1.0-57-arm64`.
    pub version: String,
}

/// Fetches (or finds cached) the generic kernel and the DTBs at `dtbs`
/// (paths relative to Debian's `/usr/lib/linux-image-<release>/`).
pub fn fetch(root: &Path, dtbs: &[String]) -> Result<GenericLinux, String> {
    let dir = root.join("target").join("linux-generic");
    let kernel = dir.join("Image");
    let dtb_dir = dir.join("dtbs");
    let stamp = dir.join("stamp");
    let mut wanted: Vec<String> = dtbs.to_vec();
    wanted.sort();
    wanted.dedup();
    let list = wanted.join(",");
    if let Ok(text) = fs::read_to_string(&stamp) {
        let get = |k: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(k)?.strip_prefix('=').map(str::to_owned))
        };
        if let (Some(release), Some(have)) = (get("release"), get("dtbs")) {
            if have == list && kernel.is_file() && wanted.iter().all(|d| dtb_dir.join(d).is_file())
            {
                return Ok(GenericLinux {
                    kernel,
                    dtbs: dtb_dir,
                    version: release,
                });
            }
        }
    }
    for tool in ["apt-get", "apt-cache", "apt-config", "dpkg-deb", "gzip"] {
        if !linux::tool_exists(tool) {
            return Err(format!(
                "fetch generic Linux: `{tool}` not found (needs a Debian host with apt, dpkg and gzip)"
            ));
        }
    }
    if stamp.exists() {
        fs::remove_file(&stamp).map_err(|e| format!("removing {}: {e}", stamp.display()))?;
    }
    let apt = Apt::prepare(&root.join("target").join("linux").join("apt"))?;
    eprintln!(
        "xtask: updating private arm64 package lists ({})",
        linux::SUITE
    );
    apt.run("apt-get", &["-q", "--error-on=any", "update"], None)?;
    let meta = apt.show(META_PACKAGE)?;
    let pkg = linux::field(&meta, "Depends")
        .and_then(|deps| {
            deps.split([',', '|'])
                .map(|d| d.split_whitespace().next().unwrap_or("").to_owned())
                .find(|n| n.starts_with("linux-image-") && n.ends_with("-arm64") && !n.contains("cloud"))
        })
        .ok_or_else(|| format!("cannot find a linux-image-*-arm64 dependency in `apt-cache show {META_PACKAGE}`:\n{meta}"))?;
    let release = pkg.strip_prefix("linux-image-").unwrap_or(&pkg).to_owned();
    let version =
        linux::field(&apt.show(&pkg)?, "Version").ok_or_else(|| format!("no Version for {pkg}"))?;
    let debs = dir.join("debs");
    linux::remove_dir_if_exists(&debs)?;
    linux::mkdir(&debs)?;
    eprintln!("xtask: downloading {pkg} {version}");
    apt.run(
        "apt-get",
        &["-q", "download", &format!("{pkg}={version}")],
        Some(&debs),
    )?;
    let deb = linux::find_deb(&debs, &pkg)?;
    let extract = dir.join("extract");
    linux::remove_dir_if_exists(&extract)?;
    linux::mkdir(&extract)?;
    linux::run(
        Command::new("dpkg-deb").arg("-x").arg(&deb).arg(&extract),
        None,
    )?;
    let vmlinuz = extract.join("boot").join(format!("vmlinuz-{release}"));
    let image = linux::decompress_kernel(&vmlinuz)?;
    linux::check_image(&image, &vmlinuz)?;
    linux::write_atomic(&kernel, &image)?;
    let shipped = extract
        .join("usr/lib")
        .join(format!("linux-image-{release}"));
    for d in &wanted {
        let from = shipped.join(d);
        let to = dtb_dir.join(d);
        linux::mkdir(to.parent().unwrap_or(&dtb_dir))?;
        fs::copy(&from, &to).map_err(|e| {
            format!(
                "{} (named by a board file) is not in {pkg}: {e}",
                from.display()
            )
        })?;
    }
    linux::remove_dir_if_exists(&extract)?;
    linux::remove_dir_if_exists(&debs)?;
    linux::write_atomic(
        &stamp,
        format!("release={release}\npackage={pkg} {version}\ndtbs={list}\n").as_bytes(),
    )?;
    Ok(GenericLinux {
        kernel,
        dtbs: dtb_dir,
        version: release,
    })
}

/// The Raspberry Pi firmware package, in Debian's `non-free-firmware` component.
const RASPI_FIRMWARE: &str = "raspi-firmware";
/// Where the package keeps the boot files.
const RASPI_FIRMWARE_DIR: &str = "usr/lib/raspi-firmware";
/// The files a Raspberry Pi 4 boots with: its GPU firmware and the memory split
/// that goes with it (the Pi 4 has its first-stage loader in an EEPROM, so no
/// `bootcode.bin`).
pub const RASPI_FIRMWARE_FILES: &[&str] = &["start4.elf", "fixup4.dat"];

/// Fetches (or finds cached) Debian's `raspi-firmware` for the Raspberry Pi 4
/// boot partition, the same private way as the kernels (the private apt
/// configuration, with `non-free-firmware` added to its sources), cached in
/// `target/raspi-firmware/`: [`RASPI_FIRMWARE_FILES`] and the package's
/// licence and copyright files. Returns that directory and the package version.
pub fn raspi_firmware(root: &Path) -> Result<(PathBuf, String), String> {
    let dir = root.join("target").join("raspi-firmware");
    let stamp = dir.join("stamp");
    if let Ok(text) = fs::read_to_string(&stamp) {
        if let Some(v) = text.lines().find_map(|l| l.strip_prefix("version=")) {
            if RASPI_FIRMWARE_FILES.iter().all(|f| dir.join(f).is_file()) {
                return Ok((dir, v.to_owned()));
            }
        }
    }
    for tool in ["apt-get", "apt-cache", "apt-config", "dpkg-deb"] {
        if !linux::tool_exists(tool) {
            return Err(format!(
                "fetch {RASPI_FIRMWARE}: `{tool}` not found (needs a Debian host with apt and dpkg)"
            ));
        }
    }
    if stamp.exists() {
        fs::remove_file(&stamp).map_err(|e| format!("removing {}: {e}", stamp.display()))?;
    }
    let apt_root = root.join("target").join("linux").join("apt");
    let apt = Apt::prepare(&apt_root)?;
    // The firmware is not free software: Debian keeps it in its own component.
    linux::write_atomic(
        &apt_root.join("etc/sources.list.d/non-free-firmware.list"),
        format!(
            "deb [signed-by={}] {} {} non-free-firmware\n",
            linux::KEYRING,
            linux::DEBIAN_MIRROR,
            linux::SUITE
        )
        .as_bytes(),
    )?;
    eprintln!(
        "xtask: updating private arm64 package lists ({} with non-free-firmware)",
        linux::SUITE
    );
    apt.run("apt-get", &["-q", "--error-on=any", "update"], None)?;
    let version = linux::field(&apt.show(RASPI_FIRMWARE)?, "Version")
        .ok_or_else(|| format!("no Version for {RASPI_FIRMWARE}"))?;
    let debs = dir.join("debs");
    linux::remove_dir_if_exists(&debs)?;
    linux::mkdir(&debs)?;
    eprintln!("xtask: downloading {RASPI_FIRMWARE} {version}");
    apt.run(
        "apt-get",
        &["-q", "download", &format!("{RASPI_FIRMWARE}={version}")],
        Some(&debs),
    )?;
    let deb = linux::find_deb(&debs, RASPI_FIRMWARE)?;
    let extract = dir.join("extract");
    linux::remove_dir_if_exists(&extract)?;
    linux::mkdir(&extract)?;
    linux::run(
        Command::new("dpkg-deb").arg("-x").arg(&deb).arg(&extract),
        None,
    )?;
    let shipped = extract.join(RASPI_FIRMWARE_DIR);
    for f in RASPI_FIRMWARE_FILES {
        let from = shipped.join(f);
        fs::copy(&from, dir.join(f)).map_err(|e| {
            format!(
                "{} is not in {RASPI_FIRMWARE} {version}: {e}",
                from.display()
            )
        })?;
    }
    // The licence goes with the files (the Broadcom licence, and Debian's copyright).
    let mut licences = Vec::new();
    if let Ok(entries) = fs::read_dir(&shipped) {
        licences.extend(
            entries
                .flatten()
                .filter(|e| e.file_name().to_string_lossy().starts_with("LICENCE"))
                .map(|e| e.path()),
        );
    }
    licences.push(
        extract
            .join("usr/share/doc")
            .join(RASPI_FIRMWARE)
            .join("copyright"),
    );
    for l in licences.iter().filter(|l| l.is_file()) {
        let name = match l.file_name().and_then(|n| n.to_str()) {
            Some("copyright") => "COPYRIGHT.raspi-firmware".to_owned(),
            Some(n) => n.to_owned(),
            None => continue,
        };
        fs::copy(l, dir.join(&name)).map_err(|e| format!("{}: {e}", l.display()))?;
    }
    linux::remove_dir_if_exists(&extract)?;
    linux::remove_dir_if_exists(&debs)?;
    linux::write_atomic(&stamp, format!("version={version}\n").as_bytes())?;
    Ok((dir, version))
}
