//! `cargo xtask`: the one entry point for developers and CI (Hubris `build/xtask`).
//!
//! `setup` installs what is missing, `build` makes the hypervisor Image, `bundle`
//! packs guests into one initrd, `run` boots it in QEMU with guests, `test` runs
//! every test, `fetch-linux` fetches a real
//! Linux guest from Debian's arm64 packages, `fuzz` runs the cargo-fuzz targets,
//! `fuzz-guest` runs the random guest next to a checker VM.
//! Everything the README tells a user to do goes through here, and `.ci/run` calls
//! exactly `cargo xtask test`, then `cargo xtask fuzz --seconds 30`.

mod bench;
mod bench_disk;
mod bench_gdb;
mod bench_latency;
mod bench_snapshot;
mod board;
mod budget;
mod build;
mod bundle;
mod fuzz;
mod fuzz_guest;
mod linux;
mod linux_generic;
mod qemu;
mod sdcard;
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
    /// Install what is missing: Rust targets, llvm-tools, QEMU 10, gdb-multiarch, cpio, dtc,
    /// u-boot-tools, dosfstools, mtools.
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
    /// Write a guest bundle: several guests in one initrd (a newc cpio archive).
    ///
    /// Guests are given in order: `--guest A --initrd I --append "..." --cpus 2
    /// --mem 256M --guest B`; each option belongs to the --guest before it. The
    /// path is the last line printed. Boot it with `cargo xtask run --bundle FILE`,
    /// or on a board as its initrd.
    Bundle(BundleArgs),
    /// Lay out a board's SD card boot partition: the hypervisor, a guest bundle, the
    /// board's DTB, and what its loader reads (the Pi's firmware and config.txt, or
    /// U-Boot's boot.scr).
    ///
    /// Exactly one of --out (the partition's files, in a directory), --image (a disk
    /// image for dd or an image writer) or --device (a card, written whole after a
    /// typed confirmation). See the README's Flashing sections.
    Sdcard(SdcardArgs),
    /// Print the benchmark tables: instruction counts under QEMU -icount, bare and virtualised
    /// (CPU operations, world switches, interrupt latency, and a passed-through disk under
    /// Debian's Linux), and the debug line's GDB throughput against QEMU's own gdbstub.
    ///
    /// Fails when a row is over its budget, naming it.
    Bench {
        /// Only the GDB row (the debug line against QEMU's gdbstub).
        #[arg(long)]
        gdb_only: bool,
        /// Only the snapshot rows (save and restore, binary against hex).
        #[arg(long)]
        snapshot_only: bool,
        /// Only the interrupt-latency rows (IPI and timer deadline, 2 CPUs and 1).
        #[arg(long)]
        latency_only: bool,
        /// A row (by a word of its name, e.g. `image`) whose budget is known to be
        /// missed: reported as such without failing the run. Every other row is
        /// still enforced. Repeatable.
        #[arg(long, value_name = "WORD")]
        known_over: Vec<String>,
    },
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
    /// Run the random guest next to a checker VM on QEMU: the hypervisor must neither
    /// crash, nor hang, nor disturb the checker.
    ///
    /// Prints the seed first and progress every 10 s. On a failure it names the seed
    /// and lists the fuzz guest's operations since its last progress line.
    FuzzGuest {
        /// The seed (default: a fresh one, printed).
        #[arg(long)]
        seed: Option<u64>,
        /// How long to run.
        #[arg(long, default_value_t = 60)]
        seconds: u64,
        /// Print every operation from this number on (to reproduce a failure).
        #[arg(long, value_name = "N")]
        trace_from: Option<u64>,
        /// GIC version of the machine: 2 or 3.
        #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u8).range(2..=3))]
        gic: u8,
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
        /// Save even a VM with passed-through devices (their state is not in the
        /// snapshot: it is in the hardware).
        #[arg(long)]
        force: bool,
        /// Move it as checksummed hex text (the fallback for a line that cannot
        /// carry binary; slower, and the VM must fit the hypervisor's heap).
        #[arg(long)]
        hex: bool,
        /// Send every page's data, even those that still hold what the VM's
        /// kernel and initrd put there at boot: the file then restores into a VM
        /// booted with other images too (and is bigger).
        #[arg(long)]
        self_contained: bool,
        file: PathBuf,
    },
    /// Restore a VM from FILE (validated here first, then by the hypervisor).
    Restore {
        #[command(flatten)]
        console: ConsoleArgs,
        #[arg(long, default_value_t = 0)]
        vm: usize,
        /// Restore even a VM with passed-through devices (they may write its RAM
        /// meanwhile, and keep their own state).
        #[arg(long)]
        force: bool,
        /// Move it as checksummed hex text (the fallback for a line that cannot
        /// carry binary; slower, and the snapshot must fit the hypervisor's heap).
        /// The default is binary frames (acknowledged, per-frame CRC-32).
        #[arg(long)]
        hex: bool,
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
    /// A guest bundle (cargo xtask bundle) to boot, given to QEMU as -initrd.
    #[arg(long, value_name = "FILE")]
    bundle: Option<PathBuf>,
    /// Give a VM host devices: vmN:PATH (a device-tree path or alias) or vmN:all.
    /// Repeatable; becomes the hypervisor's -append hv.passthrough=... options.
    #[arg(long = "passthrough", value_name = "vmN:PATH|vmN:all")]
    passthrough: Vec<String>,
    /// A raw disk image, as a virtio-blk-device on virtio-mmio (pass it with --passthrough).
    #[arg(long, value_name = "FILE")]
    disk: Option<PathBuf>,
    /// A virtio-net-device on virtio-mmio with QEMU user networking (restrict=on: DHCP
    /// answers, nothing leaves the machine). The only value is `user`.
    #[arg(long, value_name = "user", value_parser = ["user"])]
    net: Option<String>,
}

#[derive(clap::Args, Debug)]
#[command(group(clap::ArgGroup::new("target").required(true).args(["out", "image", "device"])))]
struct SdcardArgs {
    /// The board (rpi4, zcu102, imx8mp).
    #[arg(long)]
    board: String,
    /// Write the boot partition's files into DIR.
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Write a disk image (an MBR and one FAT32 partition) to FILE.
    #[arg(long, value_name = "FILE")]
    image: Option<PathBuf>,
    /// Write the card at DEVICE (a whole removable disk, e.g. /dev/sdb): everything
    /// on it is lost. Refuses a mounted or system disk.
    #[arg(long, value_name = "DEVICE")]
    device: Option<PathBuf>,
    /// With --device: do not ask to type the device's name.
    #[arg(long)]
    yes: bool,
    /// The guests: a bundle made by `cargo xtask bundle` (default: the demo guest).
    #[arg(long, value_name = "FILE")]
    bundle: Option<PathBuf>,
    /// The hypervisor's options (cmdline.txt on the Pi, bootargs in boot.scr), e.g.
    /// "hv.slice_us=5000".
    #[arg(long, value_name = "ARGS", allow_hyphen_values = true)]
    append: Option<String>,
    /// A DTB instead of Debian's for the board (e.g. for another board revision).
    #[arg(long, value_name = "FILE")]
    dtb: Option<PathBuf>,
}

impl SdcardArgs {
    fn request(self) -> sdcard::Request {
        let target = match (self.out, self.image, self.device) {
            (Some(d), _, _) => sdcard::Target::Dir(d),
            (_, Some(i), _) => sdcard::Target::Image(i),
            (_, _, Some(d)) => sdcard::Target::Device(d),
            (None, None, None) => unreachable!("clap requires one of them"),
        };
        sdcard::Request {
            board: self.board,
            target,
            bundle: self.bundle,
            append: self.append,
            dtb: self.dtb,
            yes: self.yes,
        }
    }
}

#[derive(clap::Args, Debug)]
struct BundleArgs {
    /// The file to write.
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    output: PathBuf,
    /// A guest kernel: an arm64 Image (or a raw binary). Repeat for several VMs.
    #[arg(long = "guest", value_name = "IMAGE", required = true)]
    guests: Vec<PathBuf>,
    /// The initrd of the preceding --guest.
    #[arg(long = "initrd", value_name = "FILE")]
    initrds: Vec<PathBuf>,
    /// The kernel command line of the preceding --guest (default: console=ttyAMA0).
    #[arg(long = "append", value_name = "ARGS", allow_hyphen_values = true)]
    appends: Vec<String>,
    /// vCPUs of the preceding --guest (default: as many as the machine has CPUs).
    #[arg(long = "cpus", value_name = "N")]
    cpus: Vec<u32>,
    /// RAM of the preceding --guest, e.g. 256M or 1G, a multiple of 2M (default:
    /// an equal share of the free RAM).
    #[arg(long = "mem", value_name = "SIZE")]
    mems: Vec<String>,
    /// Devices to pass through to the preceding --guest: device-tree paths
    /// separated by commas, or all (written to its config as passthrough=).
    #[arg(long = "passthrough", value_name = "PATHS")]
    passthroughs: Vec<String>,
}

impl BundleArgs {
    /// Each VM with the options that follow its --guest.
    fn vms(&self, m: &ArgMatches) -> Result<Vec<bundle::Vm>, String> {
        let initrds = bundle::paired(m, "guests", "initrds", "initrd", &self.initrds)?;
        let appends = bundle::paired(m, "guests", "appends", "append", &self.appends)?;
        let cpus = bundle::paired(m, "guests", "cpus", "cpus", &self.cpus)?;
        let mems = bundle::paired(m, "guests", "mems", "mem", &self.mems)?;
        let passthroughs = bundle::paired(
            m,
            "guests",
            "passthroughs",
            "passthrough",
            &self.passthroughs,
        )?;
        Ok(self
            .guests
            .iter()
            .enumerate()
            .map(|(i, k)| bundle::Vm {
                kernel: k.clone(),
                initrd: initrds[i].clone(),
                append: appends[i].clone(),
                cpus: cpus[i],
                mem: mems[i].clone(),
                passthrough: passthroughs[i].clone(),
            })
            .collect())
    }
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
        Cmd::Bundle(args) => args
            .vms(
                matches
                    .subcommand_matches("bundle")
                    .expect("bundle's matches"),
            )
            .and_then(|vms| bundle::bundle(&args.output, &vms)),
        Cmd::Sdcard(args) => setup::setup().and_then(|()| sdcard::sdcard(&args.request())),
        Cmd::Test { filter } => test(filter),
        Cmd::Fuzz {
            seconds,
            seed,
            target,
        } => fuzz::fuzz(target.as_deref(), seconds, seed),
        Cmd::FuzzGuest {
            seed,
            seconds,
            trace_from,
            gic,
        } => fuzz_guest::fuzz_guest(seed, seconds, trace_from, gic),
        Cmd::Bench {
            gdb_only,
            snapshot_only,
            latency_only,
            known_over,
        } => bench::bench(gdb_only, snapshot_only, latency_only, &known_over),
        Cmd::Snapshot(c) => match c {
            SnapshotCmd::Save {
                console,
                vm,
                force,
                hex,
                file,
                self_contained,
            } => snapshot::save(&console.target(), vm, &file, force, hex, self_contained),
            SnapshotCmd::Restore {
                console,
                vm,
                force,
                hex,
                file,
            } => snapshot::restore(&console.target(), vm, &file, force, hex),
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

/// A command as a person would type it (arguments with spaces or quotes in
/// single quotes), for messages.
pub fn command_line(cmd: &Command) -> String {
    std::iter::once(cmd.get_program())
        .chain(cmd.get_args())
        .map(|a| {
            let a = a.to_string_lossy();
            if !a.is_empty()
                && a.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_./=:,+@%".contains(c))
            {
                a.into_owned()
            } else {
                format!("'{}'", a.replace('\'', "'\\''"))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Runs a command, failing with its command line if it fails.
pub fn run_cmd(cmd: &mut Command) -> Result<(), String> {
    let status = cmd
        .status()
        .map_err(|e| format!("cannot start {}: {e}", command_line(cmd)))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{} failed with {status}", command_line(cmd)))
    }
}

/// Pairs each `--initrd`/`--append` with the `--guest` before it ([`bundle::paired`]).
fn guests_in_order(args: &RunArgs, m: &ArgMatches) -> Result<Vec<qemu::Guest>, String> {
    let initrds = bundle::paired(m, "guests", "initrds", "initrd", &args.initrds)?;
    let appends = bundle::paired(m, "guests", "appends", "append", &args.appends)?;
    let out: Vec<qemu::Guest> = args
        .guests
        .iter()
        .enumerate()
        .map(|(i, k)| qemu::Guest {
            kernel: k.clone(),
            initrd: initrds[i].clone(),
            bootargs: appends[i].clone(),
        })
        .collect();
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
    let board = board::Board::load(&args.board)?;
    let image = build::hypervisor(&args.board)?;
    let mut guests = guests_in_order(&args, m)?;
    if let Some(b) = &args.bundle {
        if !b.is_file() {
            return Err(format!("{}: no such file", b.display()));
        }
    }
    if guests.is_empty() && args.bundle.is_none() && board.takes_modules() {
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
    let dtb = board_dtb(&board)?;
    let devices = qemu::device_args(&qemu::Devices {
        passthrough: args.passthrough.clone(),
        disk: args.disk.clone(),
        net_user: args.net.is_some(),
    })?;
    // The hypervisor's command line: a board model without guests stays up at its
    // console; passthrough options.
    let mut hv_options = devices.hv_options.clone();
    if guests.is_empty() && args.bundle.is_none() {
        hv_options.insert(0, "hv.stay=1".to_string());
    }
    let append = (!hv_options.is_empty()).then(|| hv_options.join(" "));
    if args.gic.is_some() && board.qemu.gic.is_none() {
        return Err(format!(
            "board `{}`: its GIC is fixed ({}), --gic applies to qemu-virt",
            board.name, board.qemu.machine
        ));
    }
    let machine = qemu::Machine {
        smp: args.smp.unwrap_or(board.qemu.smp),
        memory: args
            .mem
            .clone()
            .unwrap_or_else(|| board.qemu.memory.clone()),
        gic: args.gic.or(board.qemu.gic),
        cpu: args.cpu.clone().or_else(|| board.qemu.cpu.clone()),
        dtb,
        append,
    };
    let serial = match args.debug_port {
        Some(port) => {
            eprintln!(
                "xtask: debug console on 127.0.0.1:{port} (gdb-multiarch: target remote :{port})"
            );
            qemu::Serial::DebugOnTcp(port)
        }
        None if board.guest_uart.is_none() => {
            eprintln!(
                "xtask: the board's one serial line on this terminal: Ctrl-] three times switches \
                 typed input between the hypervisor and each guest; Ctrl-A X quits QEMU"
            );
            qemu::Serial::Muxed
        }
        None => {
            eprintln!(
                "xtask: both consoles on this terminal; Ctrl-A C switches input, Ctrl-A X quits"
            );
            qemu::Serial::Muxed
        }
    };
    let mut cmd = qemu::command(&board, &machine, &image, &guests, &serial)?;
    cmd.args(&devices.qemu);
    if let Some(b) = &args.bundle {
        // The boot loader's initrd: the hypervisor reads it as a guest bundle.
        cmd.arg("-initrd").arg(b);
    }
    let status = cmd
        .status()
        .map_err(|e| format!("cannot start QEMU: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("QEMU exited with {status}"))
    }
}

/// The board's DTB for `-dtb` (Debian's, fetched and cached, with the board
/// file's fix-ups), or `None` when QEMU builds its own (`virt`).
fn board_dtb(board: &board::Board) -> Result<Option<PathBuf>, String> {
    if board.qemu.dtb.is_none() {
        return Ok(None);
    }
    let generic = linux_generic::fetch(&root(), &board::all_dtbs()?)?;
    board.prepare_dtb(&generic.dtbs)
}

fn test(filter: Option<String>) -> Result<(), String> {
    setup::setup()?;
    let image = build::hypervisor("qemu-virt")?;
    let guests = build::guests()?;
    // A real guest this repository did not build (cached after the first fetch).
    let linux = linux::fetch(&root())?;
    let root = root();
    // HV_QEMU, if set, names another QEMU to test with (a build of one's own, or
    // a wrapper that adds options such as `-gdb`).
    let qemu = match std::env::var("HV_QEMU") {
        Ok(q) => q,
        Err(_) => board::Board::load("qemu-virt")?.qemu.binary,
    };
    // The dev boards' DTBs for their QEMU models (tests/boards.rs), each left at
    // target/images/<board>/board.dtb.
    let generic = linux_generic::fetch(&root, &board::all_dtbs()?)?;
    for name in board::all() {
        board::Board::load(&name)?.prepare_dtb(&generic.dtbs)?;
    }
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
            .env("HV_XTASK", &xtask)
            .env("HV_BOARD_DTBS", root.join("target/images"))
            .env("HV_LINUX_GENERIC_KERNEL", &generic.kernel)
            .env("HV_LINUX_GENERIC_VERSION", &generic.version);
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
