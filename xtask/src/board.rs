//! Board files (`boards/<name>/board.toml`): what a device tree cannot tell, and the
//! QEMU line. `build.rs` reads the same files for the hypervisor's compile-time part.

use serde::Deserialize;

/// The parts of a board file xtask uses (`build.rs` reads `debug_uart`).
#[derive(Deserialize, Debug)]
pub struct Board {
    pub qemu: QemuConfig,
}

#[derive(Deserialize, Debug)]
pub struct QemuConfig {
    pub binary: String,
    pub machine: String,
    pub gic: u8,
    pub cpu: String,
    pub smp: u32,
    pub memory: String,
    #[serde(default)]
    pub extra: Vec<String>,
    pub module_base: u64,
}

impl Board {
    pub fn load(name: &str) -> Result<Board, String> {
        let path = crate::root().join("boards").join(name).join("board.toml");
        let text = std::fs::read_to_string(&path).map_err(|e| {
            let known: Vec<String> = std::fs::read_dir(crate::root().join("boards"))
                .map(|d| {
                    d.flatten()
                        .map(|e| e.file_name().to_string_lossy().into_owned())
                        .collect()
                })
                .unwrap_or_default();
            format!(
                "board `{name}`: cannot read {}: {e} (boards: {})",
                path.display(),
                known.join(", ")
            )
        })?;
        toml::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))
    }
}
