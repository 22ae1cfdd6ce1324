//! `cargo xtask fuzz`: runs the cargo-fuzz targets in `fuzz/` (libFuzzer, with
//! AddressSanitizer and debug assertions) for a bounded time each. Installs what it
//! needs when missing: the nightly toolchain (cargo-fuzz's sanitizer flags need it)
//! and cargo-fuzz itself.
//!
//! Each target starts from `fuzz/corpus/<target>/`: the seeds there are tracked in
//! git, the inputs the fuzzer adds are not (`.gitignore`). A crash stops the run
//! and fails the command, naming the file libFuzzer wrote the input to.

use crate::{root, run_cmd};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::SystemTime;

/// The targets, in the order they run: `fuzz/fuzz_targets/<name>.rs`.
pub const TARGETS: [&str; 3] = ["gdb_protocol", "gdb_commands", "bundle"];

fn succeeds(cmd: &mut Command) -> bool {
    cmd.stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// The nightly toolchain and cargo-fuzz, each installed only when missing.
fn install() -> Result<(), String> {
    if !succeeds(Command::new("rustup").args(["run", "nightly", "rustc", "--version"])) {
        eprintln!("xtask: installing the nightly toolchain (cargo-fuzz needs it)");
        run_cmd(Command::new("rustup").args([
            "toolchain",
            "install",
            "nightly",
            "--profile",
            "minimal",
            // Never replace rustup itself as a side effect.
            "--no-self-update",
        ]))?;
    }
    if !succeeds(Command::new("cargo").args(["+nightly", "fuzz", "--version"])) {
        eprintln!("xtask: installing cargo-fuzz");
        // Into the normal cargo bin directory ($CARGO_HOME/bin), where cargo looks
        // for subcommands.
        run_cmd(Command::new("cargo").args(["install", "cargo-fuzz", "--locked"]))?;
    }
    Ok(())
}

/// Files in `dir` modified at or after `since`.
fn written_since(dir: &Path, since: SystemTime) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok())
        .filter(|e| {
            e.metadata()
                .and_then(|m| m.modified())
                .is_ok_and(|t| t >= since)
        })
        .map(|e| e.path())
        .collect();
    files.sort();
    files
}

/// Runs one target for `seconds`; on a crash, the error names the input's file.
fn run_target(root: &Path, t: &str, seconds: u64, seed: u32) -> Result<(), String> {
    eprintln!("xtask: fuzzing {t} for {seconds} s");
    let artifacts = root.join("fuzz").join("artifacts").join(t);
    // Artifact times are the file system's; a margin covers coarse clocks.
    let start = SystemTime::now() - std::time::Duration::from_secs(2);
    let result = run_cmd(
        Command::new("cargo")
            .current_dir(root)
            .args(["+nightly", "fuzz", "run", "--debug-assertions", t, "--"])
            .arg(format!("-max_total_time={seconds}"))
            .arg(format!("-seed={seed}"))
            // An input that takes this long is a hang, and a failure.
            .arg("-timeout=10")
            .arg("-print_final_stats=1"),
    );
    let Err(e) = result else { return Ok(()) };
    let found = written_since(&artifacts, start);
    let Some(first) = found.first() else {
        return Err(e);
    };
    let list: Vec<String> = found.iter().map(|p| p.display().to_string()).collect();
    Err(format!(
        "fuzz target {t} failed; the input is in {}\n  replay: cargo +nightly fuzz run {t} {}",
        list.join(", "),
        first.display()
    ))
}

/// Runs `target` (or every target, each even when one fails) for `seconds` each
/// with libFuzzer seed `seed` (0: a random one).
pub fn fuzz(target: Option<&str>, seconds: u64, seed: u32) -> Result<(), String> {
    let targets: Vec<&str> = match target {
        None => TARGETS.to_vec(),
        Some(t) if TARGETS.contains(&t) => vec![t],
        Some(t) => {
            return Err(format!(
                "no fuzz target '{t}': the targets are {}",
                TARGETS.join(", ")
            ))
        }
    };
    install()?;
    let root = root();
    let mut failed = Vec::new();
    for t in &targets {
        if let Err(e) = run_target(&root, t, seconds, seed) {
            eprintln!("xtask: {e}");
            failed.push(*t);
        }
    }
    println!(
        "fuzz: {} passed, {} failed",
        targets.len() - failed.len(),
        failed.len()
    );
    if failed.is_empty() {
        Ok(())
    } else {
        Err(format!("fuzzing failed: {}", failed.join(", ")))
    }
}
