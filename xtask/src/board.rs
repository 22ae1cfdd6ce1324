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
    /// How the board boots from an SD card (`cargo xtask sdcard`); absent: it
    /// does not (QEMU `virt`).
    #[serde(default)]
    pub sdcard: Option<SdcardConfig>,
}

/// The `[sdcard]` section: what `cargo xtask sdcard` writes to the boot partition.
#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub struct SdcardConfig {
    /// Who loads the hypervisor from the card.
    pub boot: BootKind,
    /// The board's DTB in Debian's `linux-image-arm64`, copied as it is.
    pub dtb: String,
    /// U-Boot only: load addresses `boot.scr` uses when U-Boot's environment has no
    /// `kernel_addr_r`, `ramdisk_addr_r` or `fdt_addr_r`.
    #[serde(default)]
    pub kernel_addr: Option<u64>,
    #[serde(default)]
    pub ramdisk_addr: Option<u64>,
    #[serde(default)]
    pub fdt_addr: Option<u64>,
}

#[derive(Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum BootKind {
    /// The Raspberry Pi firmware (`start4.elf`) reads `config.txt`.
    RaspiFirmware,
    /// The vendor's U-Boot runs `boot.scr`.
    UBoot,
}

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
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
    /// Other fix-ups: each one `fdtput` command's options and arguments, the DTB
    /// file inserted where `fdtput` wants it (after the options).
    #[serde(default)]
    pub dtb_fdtput: Vec<Vec<String>>,
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
        for cmd in &self.qemu.dtb_fdtput {
            crate::run_cmd(&mut fdtput(cmd, &out)?)
                .map_err(|e| format!("board `{}`: dtb_fdtput: {e}", self.name))?;
        }
        Ok(Some(out))
    }
}

/// `fdtput` with a board file's fix-up: its options (`-c`, `-d`, `-t T`) first,
/// then the DTB, then the node and the rest.
fn fdtput(args: &[String], dtb: &Path) -> Result<Command, String> {
    let mut cmd = Command::new("fdtput");
    let mut i = 0;
    while let Some(a) = args.get(i).filter(|a| a.starts_with('-')) {
        cmd.arg(a);
        i += 1;
        if a == "-t" {
            let t = args
                .get(i)
                .ok_or_else(|| format!("dtb_fdtput {args:?}: -t needs a type"))?;
            cmd.arg(t);
            i += 1;
        }
    }
    if i >= args.len() {
        return Err(format!("dtb_fdtput {args:?}: no node"));
    }
    cmd.arg(dtb).args(&args[i..]);
    Ok(cmd)
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
        let b = Board::load(&name)?;
        v.extend(b.qemu.dtb);
        v.extend(b.sdcard.map(|s| s.dtb));
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_board_file_loads_and_fdtput_fix_ups_put_the_dtb_after_the_options() {
        for name in all() {
            Board::load(&name).unwrap_or_else(|e| panic!("{e}"));
        }
        let zcu = Board::load("zcu102").unwrap();
        let cmds: Vec<Vec<String>> = zcu
            .qemu
            .dtb_fdtput
            .iter()
            .map(|c| {
                let cmd = fdtput(c, Path::new("B.dtb")).unwrap();
                cmd.get_args()
                    .map(|a| a.to_string_lossy().into_owned())
                    .collect()
            })
            .collect();
        assert_eq!(cmds[0], ["-c", "B.dtb", "/uart-clk"]);
        assert_eq!(
            cmds[1],
            ["-t", "s", "B.dtb", "/uart-clk", "compatible", "fixed-clock"]
        );
        assert!(fdtput(&["-t".into()], Path::new("B.dtb")).is_err());
        assert!(fdtput(&["-d".into()], Path::new("B.dtb")).is_err());
    }
}
