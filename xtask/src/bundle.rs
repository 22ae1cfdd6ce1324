//! `cargo xtask bundle`: writes a guest bundle (DESIGN.md section 4), the one
//! initrd that carries several guests to a board whose firmware loads only a
//! kernel and an initrd (and to QEMU `virt` with `-initrd`).
//!
//! The archive is written by the hypervisor's own `bundle::cpio::Writer` (no
//! `cpio` tool needed) and read back with the hypervisor's own parser before the
//! file is written, so a bundle this command makes is one the hypervisor reads.
//! Options after a `--guest` belong to it, as in `cargo xtask run`
//! ([`paired`]).

use clap::ArgMatches;
use hypervisor::bundle::{self, config, cpio::Writer};
use std::path::{Path, PathBuf};

/// One VM of the bundle, as the command line gives it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Vm {
    pub kernel: PathBuf,
    pub initrd: Option<PathBuf>,
    pub append: Option<String>,
    pub cpus: Option<u32>,
    pub mem: Option<String>,
    pub passthrough: Option<String>,
}

/// What every guest gets as its command line when `--append` is not given, as in
/// `cargo xtask run`: the emulated PL011 as its console.
pub const DEFAULT_APPEND: &str = "console=ttyAMA0";

/// For each `--guest` (its occurrences are `guest_id` in `m`), the value of the
/// option `id` given after it and before the next `--guest`, if any. clap keeps
/// each option in its own list; positions on the command line give the pairing.
/// An option before the first `--guest`, or given twice for one guest, is an
/// error naming the option.
pub fn paired<T: Clone>(
    m: &ArgMatches,
    guest_id: &str,
    id: &str,
    flag: &str,
    values: &[T],
) -> Result<Vec<Option<T>>, String> {
    let at = |id: &str| -> Vec<usize> { m.indices_of(id).map(|i| i.collect()).unwrap_or_default() };
    let guests = at(guest_id);
    let mut out: Vec<Option<T>> = vec![None; guests.len()];
    for (pos, v) in at(id).into_iter().zip(values) {
        let g = guests
            .iter()
            .rposition(|&g| g < pos)
            .ok_or_else(|| format!("--{flag} must follow the --guest it belongs to"))?;
        if out[g].replace(v.clone()).is_some() {
            return Err(format!("guest {} has two --{flag}", g + 1));
        }
    }
    Ok(out)
}

fn read(path: &Path, what: &str) -> Result<Vec<u8>, String> {
    let data = std::fs::read(path).map_err(|e| format!("{what} {}: {e}", path.display()))?;
    if data.is_empty() {
        return Err(format!("{what} {} is empty", path.display()));
    }
    // newc stores sizes in 32 bits.
    if data.len() > u32::MAX as usize {
        return Err(format!(
            "{what} {} is larger than 4 GiB, the most a newc cpio entry holds",
            path.display()
        ));
    }
    Ok(data)
}

/// The `config` file of a VM, or `None` when it sets nothing.
fn config_text(vm: &Vm) -> Result<Option<String>, String> {
    let mut text = String::new();
    if let Some(n) = vm.cpus {
        if !(1..=config::MAX_CPUS).contains(&n) {
            return Err(format!(
                "--cpus {n}: a VM has 1 to {} vCPUs",
                config::MAX_CPUS
            ));
        }
        text.push_str(&format!("cpus={n}\n"));
    }
    if let Some(m) = &vm.mem {
        config::parse_size(m).map_err(|why| format!("--mem {m}: {why}"))?;
        text.push_str(&format!("mem={m}\n"));
    }
    if let Some(p) = &vm.passthrough {
        if p.trim().is_empty() || p.contains('\n') || p.contains('#') {
            return Err(format!(
                "--passthrough '{p}': give device-tree paths separated by commas, or all"
            ));
        }
        text.push_str(&format!("passthrough={p}\n"));
    }
    Ok((!text.is_empty()).then_some(text))
}

/// The archive for `vms`, checked by the hypervisor's parser.
pub fn archive(vms: &[Vm]) -> Result<Vec<u8>, String> {
    if vms.is_empty() {
        return Err("no --guest: a bundle needs at least one guest".into());
    }
    if vms.len() > bundle::MAX_VMS {
        return Err(format!(
            "{} guests: a bundle holds at most {}",
            vms.len(),
            bundle::MAX_VMS
        ));
    }
    let mut w = Writer::new();
    for (i, vm) in vms.iter().enumerate() {
        w.dir(&format!("vm{i}"));
        w.file(&format!("vm{i}/kernel"), &read(&vm.kernel, "guest")?);
        if let Some(initrd) = &vm.initrd {
            w.file(&format!("vm{i}/initrd"), &read(initrd, "initrd")?);
        }
        let append = vm.append.as_deref().unwrap_or(DEFAULT_APPEND);
        if append.contains('\n') {
            return Err(format!("--append of guest {}: one line only", i + 1));
        }
        w.file(&format!("vm{i}/cmdline"), format!("{append}\n").as_bytes());
        if let Some(text) = config_text(vm)? {
            w.file(&format!("vm{i}/config"), text.as_bytes());
        }
    }
    let bytes = w.finish();
    // What the hypervisor will make of it.
    let refused = match bundle::parse(&bytes) {
        Err(e) => Some(e.to_string()),
        Ok(b) => b
            .vms
            .iter()
            .find_map(|v| v.as_ref().err().map(|e| e.to_string())),
    };
    match refused {
        Some(e) => Err(format!(
            "internal error: the hypervisor would refuse it: {e}"
        )),
        None => Ok(bytes),
    }
}

/// `cargo xtask bundle`: writes `out` and prints what is in it, the path last.
pub fn bundle(out: &Path, vms: &[Vm]) -> Result<(), String> {
    let bytes = archive(vms)?;
    std::fs::write(out, &bytes).map_err(|e| format!("{}: {e}", out.display()))?;
    let parsed = bundle::parse(&bytes).map_err(|e| format!("internal error: {e}"))?;
    for (vm, spec) in parsed.ok_vms().zip(vms) {
        let mut line = format!(
            "bundle: vm{}/ kernel {} ({} KiB)",
            vm.index,
            spec.kernel.display(),
            vm.kernel.data.len().div_ceil(1024)
        );
        if let (Some(i), Some(path)) = (vm.initrd, &spec.initrd) {
            line.push_str(&format!(
                ", initrd {} ({} KiB)",
                path.display(),
                i.data.len().div_ceil(1024)
            ));
        }
        if let Some(c) = vm.cmdline {
            line.push_str(&format!(", cmdline \"{c}\""));
        }
        if let Some(n) = vm.config.cpus {
            line.push_str(&format!(", {n} vCPU(s)"));
        }
        if let Some(m) = vm.config.mem {
            line.push_str(&format!(", {} MiB", m >> 20));
        }
        if let Some(p) = vm.config.passthrough {
            line.push_str(&format!(", passthrough {p}"));
        }
        eprintln!("{line}");
    }
    eprintln!(
        "bundle: {} VM(s), {} KiB; boot it with: cargo xtask run --bundle {}",
        vms.len(),
        bytes.len().div_ceil(1024),
        out.display()
    );
    println!("{}", out.display());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    fn dir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("xtask-bundle-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    fn two_vms(d: &Path) -> Vec<Vm> {
        std::fs::write(d.join("a.img"), b"KERNEL-A").unwrap();
        std::fs::write(d.join("b.img"), vec![7u8; 5000]).unwrap();
        std::fs::write(d.join("rootfs"), b"ROOTFS").unwrap();
        vec![
            Vm {
                kernel: d.join("a.img"),
                initrd: Some(d.join("rootfs")),
                append: Some("console=ttyAMA0 hello=1".into()),
                cpus: Some(2),
                mem: Some("256M".into()),
                passthrough: None,
            },
            Vm {
                kernel: d.join("b.img"),
                ..Vm::default()
            },
        ]
    }

    /// `cpio -t` (GNU cpio, which `cargo xtask setup` installs) lists the
    /// archive the way a user expects: one directory per VM, its files inside.
    #[test]
    fn cpio_lists_a_written_bundle() {
        let d = dir("list");
        let out = d.join("bundle.cpio");
        bundle(&out, &two_vms(&d)).unwrap();
        let listing = Command::new("cpio")
            .args(["-t", "--quiet", "-F"])
            .arg(&out)
            .output()
            .unwrap_or_else(|e| {
                panic!("cannot run cpio ({e}): install it (cargo xtask setup, or apt-get install cpio)")
            });
        assert!(
            listing.status.success(),
            "cpio -t failed: {}",
            String::from_utf8_lossy(&listing.stderr)
        );
        assert_eq!(
            String::from_utf8_lossy(&listing.stdout),
            "vm0\nvm0/kernel\nvm0/initrd\nvm0/cmdline\nvm0/config\nvm1\nvm1/kernel\nvm1/cmdline\n"
        );
        // And GNU cpio extracts the same bytes.
        let x = d.join("x");
        std::fs::create_dir_all(&x).unwrap();
        let status = Command::new("cpio")
            .args(["-i", "-d", "--quiet", "-F"])
            .arg(&out)
            .current_dir(&x)
            .status()
            .unwrap();
        assert!(status.success());
        let file = |p: &str| std::fs::read(x.join(p)).unwrap();
        assert_eq!(file("vm0/kernel"), b"KERNEL-A");
        assert_eq!(file("vm0/initrd"), b"ROOTFS");
        assert_eq!(file("vm0/cmdline"), b"console=ttyAMA0 hello=1\n");
        assert_eq!(file("vm0/config"), b"cpus=2\nmem=256M\n");
        assert_eq!(file("vm1/kernel"), vec![7u8; 5000]);
        assert_eq!(file("vm1/cmdline"), b"console=ttyAMA0\n");
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn bad_options_are_refused_before_anything_is_written() {
        let d = dir("bad");
        let vms = two_vms(&d);
        let with = |f: &dyn Fn(&mut Vm)| {
            let mut v = vms.clone();
            f(&mut v[1]);
            archive(&v).unwrap_err()
        };
        assert_eq!(
            with(&|v| v.mem = Some("3M".into())),
            "--mem 3M: must be a non-zero multiple of 2M (a VM's RAM is mapped in 2 MiB blocks)"
        );
        assert_eq!(
            with(&|v| v.cpus = Some(0)),
            "--cpus 0: a VM has 1 to 256 vCPUs"
        );
        assert!(with(&|v| v.kernel = d.join("missing")).starts_with("guest "));
        assert_eq!(
            with(&|v| v.append = Some("a\nb".into())),
            "--append of guest 2: one line only"
        );
        assert_eq!(
            archive(&[]).unwrap_err(),
            "no --guest: a bundle needs at least one guest"
        );
        let nine: Vec<Vm> = (0..9).map(|_| vms[1].clone()).collect();
        assert_eq!(
            archive(&nine).unwrap_err(),
            "9 guests: a bundle holds at most 8"
        );
        let _ = std::fs::remove_dir_all(&d);
    }
}
