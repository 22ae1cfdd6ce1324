//! `cargo xtask fuzz`: runs the cargo-fuzz targets in `fuzz/` (libFuzzer, with
//! AddressSanitizer and debug assertions) for a bounded time each. Installs what it
//! needs when missing: the nightly toolchain (cargo-fuzz's sanitizer flags need it)
//! and cargo-fuzz itself.
//!
//! The targets are the `[[bin]]` entries of `fuzz/Cargo.toml`, in their order, so a
//! target added there is run without touching this file. Each starts from
//! `fuzz/corpus/<target>/`: the seeds there are tracked in git, the inputs the
//! fuzzer adds are not (`.gitignore`). Every target runs even when one fails; a
//! crash fails the command, naming the file libFuzzer wrote the input to. The end
//! is a table: each target's executions and rate, and the seed, so a run can be
//! repeated.

use crate::{root, run_cmd};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Instant, SystemTime};

/// The fuzz crate's manifest, as far as the targets go.
#[derive(serde::Deserialize)]
struct Manifest {
    #[serde(default)]
    bin: Vec<Bin>,
}

#[derive(serde::Deserialize)]
struct Bin {
    name: String,
    /// The source, relative to `fuzz/` (cargo's default when absent): read by the
    /// test that checks every target has one.
    #[allow(dead_code)]
    path: Option<String>,
}

/// The targets `fuzz/Cargo.toml` declares, in its order.
pub fn targets(root: &Path) -> Result<Vec<String>, String> {
    Ok(bins(root)?.into_iter().map(|b| b.name).collect())
}

fn bins(root: &Path) -> Result<Vec<Bin>, String> {
    let path = root.join("fuzz").join("Cargo.toml");
    let text = std::fs::read_to_string(&path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let m: Manifest = toml::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    if m.bin.is_empty() {
        return Err(format!("{} declares no [[bin]] target", path.display()));
    }
    Ok(m.bin)
}

fn succeeds(cmd: &mut Command) -> bool {
    cmd.stdout(Stdio::null())
        .stderr(Stdio::null())
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

/// What one target's run did.
struct Outcome {
    target: String,
    executions: Option<u64>,
    seconds: f64,
    error: Option<String>,
}

/// `stat::number_of_executed_units: N` from libFuzzer's final statistics.
fn executions(line: &str) -> Option<u64> {
    line.strip_prefix("stat::number_of_executed_units:")?
        .trim()
        .parse()
        .ok()
}

/// Whether a libFuzzer line is routine progress (a new or reduced corpus entry),
/// left out of the log to keep it readable.
fn progress(line: &str) -> bool {
    let mut words = line.split_whitespace();
    words.next().is_some_and(|w| w.starts_with('#'))
        && matches!(words.next(), Some("NEW" | "REDUCE"))
}

/// Runs one target for `seconds`; on a crash, the error names the input's file.
fn run_target(root: &Path, t: &str, seconds: u64, seed: u32) -> Outcome {
    eprintln!("xtask: fuzzing {t} for {seconds} s (seed {seed})");
    let artifacts = root.join("fuzz").join("artifacts").join(t);
    // Artifact times are the file system's; a margin covers coarse clocks.
    let start = SystemTime::now() - std::time::Duration::from_secs(2);
    let began = Instant::now();
    let mut outcome = Outcome {
        target: t.to_string(),
        executions: None,
        seconds: 0.0,
        error: None,
    };
    let mut cmd = Command::new("cargo");
    cmd.current_dir(root)
        .args(["+nightly", "fuzz", "run", "--debug-assertions", t, "--"])
        .arg(format!("-max_total_time={seconds}"))
        .arg(format!("-seed={seed}"))
        // An input that takes this long is a hang, and a failure.
        .arg("-timeout=10")
        .arg("-print_final_stats=1")
        .stderr(Stdio::piped());
    let status = cmd.spawn().and_then(|mut child| {
        // libFuzzer reports on standard error: pass it on, and keep the count.
        if let Some(err) = child.stderr.take() {
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                if let Some(n) = executions(&line) {
                    outcome.executions = Some(n);
                }
                if !progress(&line) {
                    eprintln!("{line}");
                }
            }
        }
        child.wait()
    });
    outcome.seconds = began.elapsed().as_secs_f64();
    let e = match status {
        Ok(s) if s.success() => return outcome,
        Ok(s) => format!("cargo fuzz run {t} failed with {s}"),
        Err(e) => format!("cannot start cargo fuzz run {t}: {e}"),
    };
    let found = written_since(&artifacts, start);
    outcome.error = Some(match found.first() {
        None => e,
        Some(first) => {
            let list: Vec<String> = found.iter().map(|p| p.display().to_string()).collect();
            format!(
                "fuzz target {t} failed; the input is in {}\n  replay: cargo +nightly fuzz run {t} {}",
                list.join(", "),
                first.display()
            )
        }
    });
    outcome
}

/// A seed for libFuzzer: `seed`, or when it is 0 a fresh one (printed, so the run
/// can be repeated with `--seed`).
fn choose_seed(seed: u32) -> u32 {
    if seed != 0 {
        return seed;
    }
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(1, |d| d.as_nanos());
    (nanos as u32 ^ (nanos >> 32) as u32 ^ std::process::id()).max(1)
}

/// Runs `target` (or every target, each even when one fails) for `seconds` each
/// with libFuzzer seed `seed` (0: a fresh one).
pub fn fuzz(target: Option<&str>, seconds: u64, seed: u32) -> Result<(), String> {
    let root = root();
    let all = targets(&root)?;
    let targets: Vec<String> = match target {
        None => all,
        Some(t) if all.iter().any(|a| a == t) => vec![t.to_string()],
        Some(t) => {
            return Err(format!(
                "no fuzz target '{t}': the targets are {}",
                all.join(", ")
            ))
        }
    };
    install()?;
    let seed = choose_seed(seed);
    println!(
        "fuzz: seed {seed}, {seconds} s per target: {}",
        targets.join(", ")
    );
    // Build them all first, so the time each target gets is spent fuzzing.
    let began = Instant::now();
    run_cmd(Command::new("cargo").current_dir(&root).args([
        "+nightly",
        "fuzz",
        "build",
        "--debug-assertions",
    ]))?;
    println!("fuzz: built in {:.0} s", began.elapsed().as_secs_f64());
    let outcomes: Vec<Outcome> = targets
        .iter()
        .map(|t| run_target(&root, t, seconds, seed))
        .collect();
    println!("fuzz: seed {seed} (repeat with --seed {seed})");
    for o in &outcomes {
        let runs = o
            .executions
            .map_or_else(|| "?".to_string(), |n| n.to_string());
        let rate = o.executions.map_or_else(String::new, |n| {
            format!(" ({:.0}/s)", n as f64 / o.seconds.max(1.0))
        });
        let verdict = if o.error.is_some() { "FAILED" } else { "ok" };
        println!(
            "fuzz: {:<14} {runs:>10} executions in {:.0} s{rate}  {verdict}",
            o.target, o.seconds
        );
    }
    let failed: Vec<&Outcome> = outcomes.iter().filter(|o| o.error.is_some()).collect();
    for o in &failed {
        eprintln!("xtask: {}", o.error.as_deref().unwrap_or_default());
    }
    println!(
        "fuzz: {} passed, {} failed",
        outcomes.len() - failed.len(),
        failed.len()
    );
    if failed.is_empty() {
        Ok(())
    } else {
        let names: Vec<&str> = failed.iter().map(|o| o.target.as_str()).collect();
        Err(format!("fuzzing failed: {}", names.join(", ")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_targets_are_the_fuzz_crates_bins() {
        let t = targets(&crate::root()).unwrap();
        for want in [
            "gdb_protocol",
            "gdb_commands",
            "dt",
            "snapshot",
            "shell",
            "vgic",
        ] {
            assert!(t.iter().any(|x| x == want), "{want} missing from {t:?}");
        }
        // Each has its source and a seed corpus.
        for name in &t {
            let root = crate::root().join("fuzz");
            assert!(
                root.join(format!("fuzz_targets/{name}.rs")).is_file(),
                "{name}"
            );
        }
    }

    #[test]
    fn libfuzzer_statistics_are_read() {
        assert_eq!(
            executions("stat::number_of_executed_units: 12345"),
            Some(12345)
        );
        assert_eq!(executions("stat::peak_rss_mb: 12"), None);
        assert!(progress("#1024\tNEW    cov: 10 ft: 12 corp: 3/9b"));
        assert!(!progress("#1024\tDONE   cov: 10"));
        assert!(!progress("==12== ERROR: libFuzzer: deadly signal"));
        assert_ne!(choose_seed(0), 0);
        assert_eq!(choose_seed(7), 7);
    }
}
