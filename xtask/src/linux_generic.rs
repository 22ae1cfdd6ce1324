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
