//! Board files (`boards/<name>/board.toml`): what a device tree cannot tell, and the
//! QEMU line. `build.rs` compiles the same files into the hypervisor's board table.

use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The parts of a board file xtask uses.
#[derive(Deserialize, Debug)]
pub struct Board {
    pub name: String,
    /// The UART carrying the guests' consoles; absent: one serial cable.
    #[serde(default)]
    pub guest_uart: Option<String>,
    pub qemu: QemuConfig,
}

#[derive(Deserialize, Debug)]
pub struct QemuConfig {
    pub binary: String,
    /// `-M` value (`,gic-version=N` is appended when `gic` is set).
    pub machine: String,
    /// GIC version of machines that have the option (`virt`).
    #[serde(default)]
    pub gic: Option<u8>,
    /// `-cpu`, for machines that take one (board models have their own CPUs).
    #[serde(default)]
    pub cpu: Option<String>,
    /// `-accel` (raspi4b: `tcg,thread=single`).
    #[serde(default)]
    pub accel: Option<String>,
    pub smp: u32,
    pub memory: String,
    #[serde(default)]
    pub extra: Vec<String>,
    /// Where guest-loader modules go; absent: the machine cannot take them
    /// (board models copy the DTB before `-device` options run).
    #[serde(default)]
    pub module_base: Option<u64>,
    /// The board's DTB in Debian's `linux-image-arm64`, given with `-dtb`.
    #[serde(default)]
    pub dtb: Option<String>,
    /// DTB nodes set to `status = "disabled"` (devices QEMU does not emulate).
    #[serde(default)]
    pub dtb_disable: Vec<String>,
    /// How many `-serial` lines, and which one is the hypervisor's console.
    pub serials: usize,
    pub debug_serial: usize,
}

impl Board {
    pub fn load(name: &str) -> Result<Board, String> {
        let path = crate::root().join("boards").join(name).join("board.toml");
        let text = std::fs::read_to_string(&path).map_err(|e| {
            format!(
                "board `{name}`: cannot read {}: {e} (boards: {})",
                path.display(),
                all().join(", ")
            )
        })?;
        toml::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// Whether guests can be given as guest-loader modules.
    pub fn takes_modules(&self) -> bool {
        self.qemu.module_base.is_some()
    }

    /// The board's DTB with its fix-ups applied, for `-dtb`: `dtbs` is the
    /// directory of Debian's DTBs (`linux_generic::fetch`); the result goes to
    /// `target/images/<board>/board.dtb`. `None` when QEMU builds the DTB itself.
    pub fn prepare_dtb(&self, dtbs: &Path) -> Result<Option<PathBuf>, String> {
        let Some(dtb) = &self.qemu.dtb else {
            return Ok(None);
        };
        let dir = crate::root().join("target/images").join(&self.name);
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let out = dir.join("board.dtb");
        let from = dtbs.join(dtb);
        std::fs::copy(&from, &out).map_err(|e| format!("{}: {e}", from.display()))?;
        for node in &self.qemu.dtb_disable {
            crate::run_cmd(
                Command::new("fdtput")
                    .args(["-t", "s"])
                    .arg(&out)
                    .args([node, "status", "disabled"]),
            )
            .map_err(|e| {
                format!("{e} (fdtput comes with device-tree-compiler: cargo xtask setup)")
            })?;
        }
        Ok(Some(out))
    }
}

/// Every board directory's name, sorted.
pub fn all() -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(crate::root().join("boards"))
        .map(|d| {
            d.flatten()
                .filter(|e| e.path().join("board.toml").is_file())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// The DTBs every board file names (for one fetch).
pub fn all_dtbs() -> Result<Vec<String>, String> {
    let mut v = Vec::new();
    for name in all() {
        if let Some(d) = Board::load(&name)?.qemu.dtb {
            v.push(d);
        }
    }
    Ok(v)
}
