//! `cargo xtask`: the one entry point for developers and CI (Hubris `build/xtask`).
//!
//! `setup` installs what is missing, `build` makes the hypervisor Image, `run` boots
//! it in QEMU with guests, `test` runs every test, `fetch-linux` fetches a real
//! Linux guest from Debian's arm64 packages, `fuzz` runs the cargo-fuzz targets.
//! Everything the README tells a user to do goes through here, and `.ci/run` calls
//! exactly `cargo xtask test`, then `cargo xtask fuzz --seconds 30`.

mod bench;
mod board;
mod build;
mod fuzz;
mod linux;
mod qemu;
mod setup;
mod snapshot;

use clap::{ArgMatches, CommandFactory, FromArgMatches, Parser, Subcommand};
use std::path::PathBuf;
use std::process::{Command, ExitCode};

#[derive(Parser)]
#[command(
    name = "cargo xtask",
    about = "Build, run and test the hypervisor",
    version
)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Install what is missing: Rust targets, llvm-tools, QEMU 10, gdb-multiarch, cpio, dtc.
    Setup,
    /// Build the hypervisor Image; its path is the last line printed.
    Build {
        /// The board (a directory under boards/).
        #[arg(long, default_value = "qemu-virt")]
        board: String,
    },
    /// Build the bundled guests into guests/target/images/.
    BuildGuests,
    /// Build and boot the hypervisor in QEMU, with the demo guest unless guests are given.
    ///
    /// Guests are given in order: `--guest A --initrd I --append "..." --guest B`.
    /// Both serial lines are shown: the guest console and the hypervisor's debug console
    /// (Ctrl-A C switches which one gets your typing, Ctrl-A X quits).
    Run(RunArgs),
    /// Print the benchmark table: instruction counts under QEMU -icount, bare and virtualised.
    Bench,
    /// Snapshots as host files: save/restore talk to the hypervisor's debug console.
    #[command(subcommand)]
    Snapshot(SnapshotCmd),
    /// Fetch Debian's arm64 cloud kernel and build a busybox initramfs (cached in target/linux/).
    FetchLinux,
    /// Run every test: host unit tests, then the QEMU integration tests.
    Test {
        /// Only tests whose name contains this.
        filter: Option<String>,
    },
    /// Run the cargo-fuzz targets (every [[bin]] of fuzz/Cargo.toml) for a bounded
    /// time each, then print each one's executions and the seed.
    ///
    /// Installs the nightly toolchain and cargo-fuzz when missing. Fails if a target
    /// finds a crash, naming the file the crashing input was written to.
    Fuzz {
        /// Seconds per target.
        #[arg(long, default_value_t = 60)]
        seconds: u64,
        /// libFuzzer's random seed (0: a fresh one, printed so the run can be repeated).
        #[arg(long, default_value_t = 1)]
        seed: u32,
        /// Only this target (default: every target of fuzz/Cargo.toml, in turn).
        target: Option<String>,
    },
}

#[derive(Subcommand)]
enum SnapshotCmd {
    /// Save a running VM's snapshot into FILE.
    Save {
        #[command(flatten)]
        console: ConsoleArgs,
        /// The VM (its number, as in vm0).
        #[arg(long, default_value_t = 0)]
        vm: usize,
        file: PathBuf,
    },
    /// Restore a VM from FILE (validated here first, then by the hypervisor).
    Restore {
        #[command(flatten)]
        console: ConsoleArgs,
        #[arg(long, default_value_t = 0)]
        vm: usize,
        file: PathBuf,
    },
    /// Print a snapshot file: header, every register by name, RAM pages.
    Show { file: PathBuf },
    /// Compare two snapshot files: registers by name, RAM pages, vGIC state.
    Diff { a: PathBuf, b: PathBuf },
}

/// Where the hypervisor's debug console is.
#[derive(clap::Args, Debug)]
struct ConsoleArgs {
    /// QEMU's TCP serial for the debug console (cargo xtask run --debug-port PORT).
    #[arg(long)]
    port: Option<u16>,
    /// A board's serial device (set it up first: stty -F DEVICE 115200 raw -echo).
    #[arg(long)]
    device: Option<PathBuf>,
}

impl ConsoleArgs {
    fn target(&self) -> snapshot::Target {
        snapshot::Target {
            port: self.port,
            device: self.device.clone(),
        }
    }
}

#[derive(clap::Args, Debug)]
struct RunArgs {
    #[arg(long, default_value = "qemu-virt")]
    board: String,
    /// A guest kernel: an arm64 Image (or a raw binary). Repeat for several VMs.
    #[arg(long = "guest", value_name = "IMAGE")]
    guests: Vec<PathBuf>,
    /// The initrd of the preceding --guest.
    #[arg(long = "initrd", value_name = "FILE")]
    initrds: Vec<PathBuf>,
    /// The kernel command line of the preceding --guest.
    #[arg(long = "append", value_name = "ARGS", allow_hyphen_values = true)]
    appends: Vec<String>,
    /// CPUs of the machine (default: the board's).
    #[arg(long)]
    smp: Option<u32>,
    /// Memory of the machine, e.g. 1G (default: the board's).
    #[arg(long)]
    mem: Option<String>,
    /// GIC version of the machine: 2 or 3 (default: the board's).
    #[arg(long, value_parser = clap::value_parser!(u8).range(2..=3))]
    gic: Option<u8>,
    /// QEMU CPU model (default: the board's).
    #[arg(long)]
    cpu: Option<String>,
    /// Put the debug console on 127.0.0.1:PORT (for gdb-multiarch) instead of the terminal.
    #[arg(long)]
    debug_port: Option<u16>,
}

fn main() -> ExitCode {
    let matches = Cli::command().get_matches();
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    let result = match cli.command {
        Cmd::Setup => setup::setup(),
        Cmd::Build { board } => build::hypervisor(&board).map(|img| println!("{}", img.display())),
        Cmd::BuildGuests => build::guests().map(|_| ()),
        Cmd::Run(args) => run(
            args,
            matches.subcommand_matches("run").expect("run's matches"),
        ),
        Cmd::Test { filter } => test(filter),
        Cmd::Fuzz {
            seconds,
            seed,
            target,
        } => fuzz::fuzz(target.as_deref(), seconds, seed),
        Cmd::Bench => bench::bench(),
        Cmd::Snapshot(c) => match c {
            SnapshotCmd::Save { console, vm, file } => snapshot::save(&console.target(), vm, &file),
            SnapshotCmd::Restore { console, vm, file } => {
                snapshot::restore(&console.target(), vm, &file)
            }
            SnapshotCmd::Show { file } => snapshot::show(&file),
            SnapshotCmd::Diff { a, b } => snapshot::diff(&a, &b),
        },
        Cmd::FetchLinux => linux::fetch(&root()).map(|g| {
            println!("kernel {} ({})", g.kernel.display(), g.version);
            println!("initrd {}", g.initrd.display());
        }),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The workspace root (xtask/..).
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// Runs a command, failing with its command line if it fails.
pub fn run_cmd(cmd: &mut Command) -> Result<(), String> {
    let status = cmd
        .status()
        .map_err(|e| format!("cannot start {cmd:?}: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{cmd:?} failed with {status}"))
    }
}

/// Pairs each `--initrd`/`--append` with the `--guest` before it. clap keeps each
/// option in its own list; their positions on the command line give the pairing.
fn guests_in_order(args: &RunArgs, m: &ArgMatches) -> Result<Vec<qemu::Guest>, String> {
    let at = |id: &str| -> Vec<usize> { m.indices_of(id).map(|i| i.collect()).unwrap_or_default() };
    let guest_at = at("guests");
    let mut out: Vec<qemu::Guest> = args
        .guests
        .iter()
        .map(|k| qemu::Guest {
            kernel: k.clone(),
            initrd: None,
            bootargs: None,
        })
        .collect();
    let owner = |pos: usize, what: &str| -> Result<usize, String> {
        guest_at
            .iter()
            .rposition(|&g| g < pos)
            .ok_or_else(|| format!("--{what} must follow the --guest it belongs to"))
    };
    for (pos, initrd) in at("initrds").into_iter().zip(&args.initrds) {
        let g = owner(pos, "initrd")?;
        if out[g].initrd.replace(initrd.clone()).is_some() {
            return Err(format!(
                "guest {} has two --initrd",
                out[g].kernel.display()
            ));
        }
    }
    for (pos, append) in at("appends").into_iter().zip(&args.appends) {
        let g = owner(pos, "append")?;
        if out[g].bootargs.replace(append.clone()).is_some() {
            return Err(format!(
                "guest {} has two --append",
                out[g].kernel.display()
            ));
        }
    }
    for g in &out {
        for f in std::iter::once(&g.kernel).chain(g.initrd.as_ref()) {
            if !f.is_file() {
                return Err(format!("{}: no such file", f.display()));
            }
        }
    }
    Ok(out)
}

fn run(args: RunArgs, m: &ArgMatches) -> Result<(), String> {
    setup::setup()?;
    let image = build::hypervisor(&args.board)?;
    let board = board::Board::load(&args.board)?;
    let mut guests = guests_in_order(&args, m)?;
    if guests.is_empty() {
        let images = build::guests()?;
        guests.push(qemu::Guest {
            kernel: images.join("demo.img"),
            initrd: None,
            bootargs: Some("console=ttyAMA0".into()),
        });
    } else {
        for g in &mut guests {
            if g.bootargs.is_none() {
                g.bootargs = Some("console=ttyAMA0".into());
            }
        }
    }
    let machine = qemu::Machine {
        smp: args.smp.unwrap_or(board.qemu.smp),
        memory: args
            .mem
            .clone()
            .unwrap_or_else(|| board.qemu.memory.clone()),
        gic: args.gic.unwrap_or(board.qemu.gic),
        cpu: args.cpu.clone().unwrap_or_else(|| board.qemu.cpu.clone()),
    };
    let serial = match args.debug_port {
        Some(port) => {
            eprintln!(
                "xtask: debug console on 127.0.0.1:{port} (gdb-multiarch: target remote :{port})"
            );
            qemu::Serial::DebugOnTcp(port)
        }
        None => {
            eprintln!(
                "xtask: both consoles on this terminal; Ctrl-A C switches input, Ctrl-A X quits"
            );
            qemu::Serial::Muxed
        }
    };
    let mut cmd = qemu::command(&board, &machine, &image, &guests, &serial)?;
    let status = cmd
        .status()
        .map_err(|e| format!("cannot start QEMU: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("QEMU exited with {status}"))
    }
}

fn test(filter: Option<String>) -> Result<(), String> {
    setup::setup()?;
    let image = build::hypervisor("qemu-virt")?;
    let guests = build::guests()?;
    // A real guest this repository did not build (cached after the first fetch).
    let linux = linux::fetch(&root())?;
    let root = root();
    let qemu = board::Board::load("qemu-virt")?.qemu.binary;
    // The QEMU tests run `cargo xtask snapshot` (and more) as a user would: this
    // very executable, not a second build of it.
    let xtask =
        std::env::current_exe().map_err(|e| format!("cannot find xtask's own executable: {e}"))?;
    let cargo_test = |args: &[&str]| {
        let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
        cmd.current_dir(&root)
            .arg("test")
            .args(args)
            .env("HV_IMAGE", &image)
            .env("HV_GUESTS", &guests)
            .env("HV_QEMU", &qemu)
            .env("HV_XTASK", &xtask);
        cmd.env("HV_LINUX_KERNEL", &linux.kernel)
            .env("HV_LINUX_INITRD", &linux.initrd)
            .env("HV_LINUX_VERSION", &linux.version);
        cmd.arg("--");
        if let Some(f) = &filter {
            cmd.arg(f);
        }
        cmd
    };
    // Host unit tests of every package, then the QEMU tests. QEMU under TCG is
    // CPU-bound: two at a time is what a small machine finishes inside each
    // test's deadline.
    run_cmd(&mut cargo_test(&["--workspace", "--lib", "--bins"]))?;
    run_cmd(cargo_test(&["--package", "hypervisor", "--test", "qemu"]).arg("--test-threads=2"))
}
