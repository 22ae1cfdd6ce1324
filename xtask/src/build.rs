//! Building the hypervisor Image and the bundled guests.

use crate::{root, run_cmd};
use object::elf::{RelocationType, SectionType};
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
    check_relocations(&elf)?;
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

/// The relocation sections of the linked hypervisor, as [`relocation_problems`]
/// sees them.
struct RelocSection {
    name: String,
    kind: SectionType,
    /// The type of every entry (RELA and REL; RELR entries have none).
    types: Vec<RelocationType>,
}

/// What the boot code (src/arch/aarch64/boot.S) would leave undone in a linked
/// hypervisor with these relocation sections: it applies `.rela.dyn`'s
/// `R_AARCH64_RELATIVE` entries and all of `.relr.dyn` (RELR holds only relative
/// relocations), and nothing else. One message per problem; none when the image
/// relocates itself completely.
fn relocation_problems(sections: &[RelocSection]) -> Vec<String> {
    use object::elf::{R_AARCH64_RELATIVE, SHT_REL, SHT_RELA, SHT_RELR};
    let names = object::elf::machine_names(object::elf::EM_AARCH64);
    let mut problems = Vec::new();
    for s in sections {
        match (s.kind, s.name.as_str()) {
            (SHT_RELR, ".relr.dyn") => {}
            (SHT_RELA, ".rela.dyn") => {
                let mut other = std::collections::BTreeMap::<RelocationType, usize>::new();
                for &t in s.types.iter().filter(|&&t| t != R_AARCH64_RELATIVE) {
                    *other.entry(t).or_default() += 1;
                }
                for (t, n) in other {
                    let name = names.r.name(t).unwrap_or("an unknown type");
                    problems.push(format!(
                        "{n} relocation(s) of type {name} ({t}) in .rela.dyn: the boot code \
                         applies only R_AARCH64_RELATIVE there",
                        t = t.0
                    ));
                }
            }
            (SHT_REL | SHT_RELA | SHT_RELR, name) => {
                let kind = names.sht.name(s.kind).unwrap_or("?");
                problems.push(format!(
                    "relocation section {name} ({kind}, {} entries): the boot code applies \
                     only .rela.dyn and .relr.dyn",
                    s.types.len()
                ));
            }
            _ => {}
        }
    }
    problems
}

/// Fails unless the boot code applies every relocation of the linked hypervisor
/// `elf` (a position-independent executable that relocates itself before any Rust
/// runs: a relocation it skipped would leave a pointer to address 0 + offset).
fn check_relocations(elf: &Path) -> Result<(), String> {
    use object::read::elf::{FileHeader, SectionHeader};
    use object::{elf, LittleEndian as LE};
    let data = std::fs::read(elf).map_err(|e| format!("{}: {e}", elf.display()))?;
    let bad = |e: object::read::Error| format!("{}: not a readable ELF: {e}", elf.display());
    let header = elf::FileHeader64::<LE>::parse(&*data).map_err(bad)?;
    let table = header.sections(LE, &*data).map_err(bad)?;
    let mut sections = Vec::new();
    for sh in table.iter() {
        let kind = sh.sh_type(LE);
        let types = match kind {
            elf::SHT_RELA => sh
                .data_as_array::<elf::Rela64<LE>, _>(LE, &*data)
                .map_err(bad)?
                .iter()
                .map(|r| r.r_type(LE, false))
                .collect(),
            elf::SHT_REL => sh
                .data_as_array::<elf::Rel64<LE>, _>(LE, &*data)
                .map_err(bad)?
                .iter()
                .map(|r| r.r_type(LE))
                .collect(),
            elf::SHT_RELR => Vec::new(),
            _ => continue,
        };
        let name = table.section_name(LE, sh).map_err(bad)?;
        sections.push(RelocSection {
            name: String::from_utf8_lossy(name).into_owned(),
            kind,
            types,
        });
    }
    let problems = relocation_problems(&sections);
    if problems.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "{}: the Image would not relocate itself completely (src/arch/aarch64/boot.S, \
             linker/image.ld):\n  {}",
            elf.display(),
            problems.join("\n  ")
        ))
    }
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

#[cfg(test)]
mod tests {
    use super::{relocation_problems, RelocSection};
    use object::elf::{
        RelocationType, SectionType, R_AARCH64_ABS64, R_AARCH64_RELATIVE, SHT_REL, SHT_RELA,
        SHT_RELR,
    };

    fn section(name: &str, kind: SectionType, types: &[RelocationType]) -> RelocSection {
        RelocSection {
            name: name.into(),
            kind,
            types: types.to_vec(),
        }
    }

    #[test]
    fn relative_relocations_in_rela_and_relr_are_all_applied() {
        let ok = [
            section(".rela.dyn", SHT_RELA, &[R_AARCH64_RELATIVE; 3]),
            section(".relr.dyn", SHT_RELR, &[]),
        ];
        assert_eq!(relocation_problems(&ok), Vec::<String>::new());
    }

    #[test]
    fn another_relocation_kind_is_named() {
        let p = relocation_problems(&[section(
            ".rela.dyn",
            SHT_RELA,
            &[R_AARCH64_RELATIVE, R_AARCH64_ABS64, R_AARCH64_ABS64],
        )]);
        assert_eq!(p.len(), 1, "{p:?}");
        assert!(
            p[0].starts_with("2 relocation(s) of type R_AARCH64_ABS64 (257) in .rela.dyn"),
            "{}",
            p[0]
        );
    }

    #[test]
    fn a_relocation_section_the_boot_code_ignores_is_named() {
        let p = relocation_problems(&[
            section(".rel.dyn", SHT_REL, &[R_AARCH64_RELATIVE]),
            section(".rela.text", SHT_RELA, &[R_AARCH64_RELATIVE]),
        ]);
        assert_eq!(p.len(), 2, "{p:?}");
        assert!(
            p[0].starts_with("relocation section .rel.dyn (SHT_REL, 1 entries)"),
            "{}",
            p[0]
        );
        assert!(
            p[1].starts_with("relocation section .rela.text (SHT_RELA"),
            "{}",
            p[1]
        );
    }
}
