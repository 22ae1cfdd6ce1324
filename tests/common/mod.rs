//! The QEMU test harness: boots the hypervisor with guest-loader modules (and, with
//! [`Builder::initrd`], a guest bundle as QEMU's `-initrd`), captures
//! the guest console and the hypervisor's debug console separately, and waits for
//! text with a deadline. On any failure it panics with the tail of both consoles.
//! QEMU is killed when the `Qemu` value is dropped.
//!
//! The images come from `cargo xtask test` through environment variables:
//! `HV_IMAGE` (the hypervisor), `HV_GUESTS` (the directory of the bundled guests),
//! `HV_QEMU` (the QEMU binary), `HV_LINUX_KERNEL`, `HV_LINUX_INITRD` and
//! `HV_LINUX_VERSION` (Debian's kernel and a busybox initramfs), and `HV_XTASK`
//! (the `cargo xtask` executable, for tests that run its commands: [`xtask`]).
//!
//! The debug console can be handed to another program (`cargo xtask snapshot`,
//! `gdb-multiarch`): [`Qemu::disconnect_debug`], then that program connects to
//! [`Qemu::debug_port`], then [`Qemu::reconnect_debug`].

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

/// The default deadline for anything a test waits for. QEMU under TCG on a small
/// machine is slow, and tests run two at a time.
pub const DEADLINE: Duration = Duration::from_secs(120);

fn env_path(var: &str) -> PathBuf {
    match std::env::var_os(var) {
        Some(p) => PathBuf::from(p),
        None => panic!("{var} is not set: run the QEMU tests through `cargo xtask test`, which builds the images"),
    }
}

/// A bundled guest's Image, by name (guests/target/images/<name>.img).
pub fn guest(name: &str) -> PathBuf {
    let p = env_path("HV_GUESTS").join(format!("{name}.img"));
    assert!(
        p.is_file(),
        "{} is missing: `cargo xtask test` builds the guests",
        p.display()
    );
    p
}

/// Debian's arm64 cloud kernel and a busybox initramfs (`cargo xtask test` fetches
/// them): (kernel, initrd, kernel release).
pub fn linux() -> (PathBuf, PathBuf, String) {
    let version = std::env::var("HV_LINUX_VERSION").unwrap_or_else(|_| {
        panic!("HV_LINUX_VERSION is not set: run the QEMU tests through `cargo xtask test`")
    });
    (
        env_path("HV_LINUX_KERNEL"),
        env_path("HV_LINUX_INITRD"),
        version,
    )
}

/// `cargo xtask` as a command to run from a test (add its arguments): the executable
/// `cargo xtask test` passes in `HV_XTASK` (its own), or, when that is not set,
/// `cargo run -q -p xtask --` in the repository root.
pub fn xtask() -> Command {
    match std::env::var_os("HV_XTASK") {
        Some(exe) => Command::new(exe),
        None => {
            let mut cmd = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
            cmd.current_dir(env!("CARGO_MANIFEST_DIR"))
                .args(["run", "-q", "-p", "xtask", "--"]);
            cmd
        }
    }
}

/// One VM's modules.
#[derive(Clone)]
pub struct Module {
    pub kernel: PathBuf,
    pub initrd: Option<PathBuf>,
    pub bootargs: Option<String>,
}

pub fn module(kernel: impl AsRef<Path>) -> Module {
    Module {
        kernel: kernel.as_ref().to_path_buf(),
        initrd: None,
        bootargs: Some("console=ttyAMA0".into()),
    }
}

impl Module {
    pub fn initrd(mut self, p: impl AsRef<Path>) -> Self {
        self.initrd = Some(p.as_ref().to_path_buf());
        self
    }
    pub fn bootargs(mut self, a: &str) -> Self {
        self.bootargs = Some(a.into());
        self
    }
}

pub struct Builder {
    /// Boot this image bare (QEMU enters it at EL1) instead of the hypervisor.
    bare: Option<PathBuf>,
    machine: String,
    smp: u32,
    memory: String,
    /// `gic-version=N`, for machines with the option (`virt`).
    gic: Option<u8>,
    cpu: Option<String>,
    /// `-accel` (the board file's, e.g. raspi4b's `tcg,thread=single`).
    accel: Option<String>,
    /// `-dtb`: a board model's DTB (Debian's, with the board file's fix-ups).
    dtb: Option<PathBuf>,
    /// `-append`: the hypervisor's own command line.
    append: Option<String>,
    modules: Vec<Module>,
    /// QEMU `-initrd`: the boot loader's initrd (a guest bundle, or anything).
    initrd: Option<PathBuf>,
    extra: Vec<String>,
    /// One `-serial` line only (one serial cable): `q.debug` is that line, and
    /// `q.guest` stays empty.
    one_serial: bool,
    /// `-bios`: this firmware boots instead of QEMU's `-kernel` loader, and the
    /// hypervisor Image is put into RAM at the address given ([`Builder::firmware`]).
    firmware: Option<(PathBuf, u64)>,
}

pub fn qemu() -> Builder {
    Builder {
        bare: None,
        machine: "virt,virtualization=on".into(),
        smp: 2,
        memory: "1G".into(),
        gic: Some(3),
        cpu: Some("max".into()),
        accel: None,
        dtb: None,
        append: None,
        modules: Vec::new(),
        initrd: None,
        extra: Vec::new(),
        one_serial: false,
        firmware: None,
    }
}

impl Builder {
    /// Runs `image` bare under QEMU (entered at EL1, no hypervisor): the reference a
    /// guest's behaviour under the hypervisor is compared with.
    pub fn bare(mut self, image: impl AsRef<Path>) -> Self {
        self.bare = Some(image.as_ref().to_path_buf());
        self.machine = "virt".into();
        self
    }
    /// `-kernel`: this hypervisor Image instead of `HV_IMAGE` (e.g. the one an SD
    /// card layout holds); QEMU enters it as a board's firmware would.
    pub fn kernel(mut self, image: impl AsRef<Path>) -> Self {
        self.bare = Some(image.as_ref().to_path_buf());
        self
    }
    /// The `-M` value before `,gic-version=N` (default: virt with EL2).
    pub fn machine(mut self, m: &str) -> Self {
        self.machine = m.into();
        self
    }
    pub fn smp(mut self, n: u32) -> Self {
        self.smp = n;
        self
    }
    pub fn memory(mut self, m: &str) -> Self {
        self.memory = m.into();
        self
    }
    pub fn gic(mut self, v: u8) -> Self {
        self.gic = Some(v);
        self
    }
    pub fn cpu(mut self, c: &str) -> Self {
        self.cpu = Some(c.into());
        self
    }
    /// One serial line: on `virt` the hypervisor then has no `serial1` and shares
    /// `serial0` with the guests (one serial cable). It is `q.debug`.
    pub fn one_serial(mut self) -> Self {
        self.one_serial = true;
        self
    }
    /// `-dtb`: boot with this device tree instead of the machine's own.
    pub fn dtb(mut self, path: impl AsRef<Path>) -> Self {
        self.dtb = Some(path.as_ref().to_path_buf());
        self
    }
    /// The hypervisor's command line (QEMU `-append`), e.g. `hv.stay=1`.
    pub fn append(mut self, a: &str) -> Self {
        self.append = Some(a.into());
        self
    }
    /// The QEMU line of `boards/<name>/board.toml` (machine, accel, CPUs, memory,
    /// GIC and CPU options where the machine has them) and its DTB as `cargo xtask
    /// test` prepared it (`$HV_BOARD_DTBS/<name>/board.dtb`). The board's serial
    /// lines: `-serial` #0 is `q.guest`, #1 (the hypervisor's) `q.debug`.
    pub fn board(mut self, name: &str) -> Self {
        let file = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("boards")
            .join(name)
            .join("board.toml");
        let text =
            std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        let t: toml::Table = text
            .parse()
            .unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        let q = t["qemu"].as_table().expect("[qemu] in a board file");
        let s = |k: &str| q.get(k).and_then(|v| v.as_str()).map(str::to_owned);
        let n = |k: &str| q.get(k).and_then(|v| v.as_integer());
        self.machine = s("machine").expect("qemu.machine");
        self.gic = n("gic").map(|g| g as u8);
        self.cpu = s("cpu");
        self.accel = s("accel");
        self.smp = n("smp").expect("qemu.smp") as u32;
        self.memory = s("memory").expect("qemu.memory");
        assert_eq!(
            (n("serials"), n("debug_serial")),
            (Some(2), Some(1)),
            "{}: the harness connects two serial lines, the second the hypervisor's",
            file.display()
        );
        if q.contains_key("dtb") {
            let dtb = env_path("HV_BOARD_DTBS").join(name).join("board.dtb");
            assert!(
                dtb.is_file(),
                "{} is missing: `cargo xtask test` prepares it",
                dtb.display()
            );
            self.dtb = Some(dtb);
        }
        self
    }
    pub fn vm(mut self, m: Module) -> Self {
        self.modules.push(m);
        self
    }
    /// Passes `file` as QEMU's `-initrd`: the hypervisor's initrd, read as a guest
    /// bundle (QEMU puts it at RAM base + 128 MiB and the DTB after it).
    pub fn initrd(mut self, file: impl AsRef<Path>) -> Self {
        self.initrd = Some(file.as_ref().to_path_buf());
        self
    }
    /// Boots `bios` as the machine's firmware (`-bios`, e.g. U-Boot) instead of
    /// QEMU's own `-kernel` loader; the hypervisor Image (`HV_IMAGE`, or
    /// [`Builder::kernel`]'s) is put into RAM at `image_at` unmodified, for the
    /// firmware to boot. Not with guest-loader modules or `-initrd`, which need
    /// `-kernel`: give files with [`Builder::load`].
    pub fn firmware(mut self, bios: impl AsRef<Path>, image_at: u64) -> Self {
        self.firmware = Some((bios.as_ref().to_path_buf(), image_at));
        self
    }
    /// Puts `file` into RAM at `addr` as it is (QEMU's generic `loader` device),
    /// before the machine starts: what a boot loader would have loaded.
    pub fn load(self, file: impl AsRef<Path>, addr: u64) -> Self {
        let f = file.as_ref().display().to_string().replace(',', ",,");
        self.arg("-device")
            .arg(&format!("loader,file={f},addr={addr:#x},force-raw=on"))
    }
    pub fn arg(mut self, a: &str) -> Self {
        self.extra.push(a.into());
        self
    }
    /// The hypervisor's own command line (QEMU `-append`), e.g.
    /// `hv.passthrough=vm0:all`.
    pub fn hv_args(self, args: &str) -> Self {
        self.append(args)
    }
    /// A raw disk image as a `virtio-blk-device`, on virtio-mmio transport `bus`
    /// (0-31; transport N is at 0x0a000000 + N * 0x200, so 31 is the top one,
    /// where QEMU puts the first device anyway).
    pub fn disk(self, image: &Path, bus: u32) -> Self {
        let id = format!("disk{bus}");
        let file = image.display().to_string().replace(',', ",,");
        self.arg("-drive")
            .arg(&format!("if=none,id={id},format=raw,file={file}"))
            .arg("-device")
            .arg(&format!(
                "virtio-blk-device,drive={id},bus=virtio-mmio-bus.{bus}"
            ))
    }
    /// A `virtio-net-device` on QEMU user networking with `restrict=on` (DHCP
    /// answers inside QEMU; nothing leaves the machine), on transport `bus`.
    pub fn net_user(self, bus: u32) -> Self {
        let id = format!("net{bus}");
        self.arg("-netdev")
            .arg(&format!("user,id={id},restrict=on"))
            .arg("-device")
            .arg(&format!(
                "virtio-net-device,netdev={id},bus=virtio-mmio-bus.{bus}"
            ))
    }

    /// Starts QEMU and connects to both consoles.
    pub fn start(self) -> Qemu {
        let ports = if self.one_serial {
            vec![free_port()]
        } else {
            vec![free_port(), free_port()]
        };
        let mut cmd =
            Command::new(std::env::var("HV_QEMU").unwrap_or_else(|_| "qemu-system-aarch64".into()));
        match self.gic {
            Some(gic) => cmd
                .arg("-M")
                .arg(format!("{},gic-version={gic}", self.machine)),
            None => cmd.arg("-M").arg(&self.machine),
        };
        if let Some(cpu) = &self.cpu {
            cmd.args(["-cpu", cpu]);
        }
        if let Some(accel) = &self.accel {
            cmd.args(["-accel", accel]);
        }
        cmd.args(["-smp", &self.smp.to_string(), "-m", &self.memory])
            .args(["-display", "none", "-monitor", "none", "-no-reboot"])
            // Board models with sound devices otherwise probe the host's audio.
            .env("QEMU_AUDIO_DRV", "none");
        if let Some(dtb) = &self.dtb {
            cmd.arg("-dtb").arg(dtb);
        }
        for (i, port) in ports.iter().enumerate() {
            // wait=on: QEMU starts the machine only once both consoles are connected,
            // so not a byte of output is lost.
            cmd.arg("-chardev")
                .arg(format!(
                    "socket,id=s{i},host=127.0.0.1,port={port},server=on,wait=on,nodelay=on"
                ))
                .arg("-serial")
                .arg(format!("chardev:s{i}"));
        }
        let image = self.bare.clone().unwrap_or_else(|| env_path("HV_IMAGE"));
        match &self.firmware {
            None => {
                cmd.arg("-kernel").arg(image);
            }
            Some((bios, at)) => {
                assert!(
                    self.modules.is_empty() && self.initrd.is_none() && self.append.is_none(),
                    "guest-loader modules, -initrd and -append need -kernel, not -bios"
                );
                let f = image.display().to_string().replace(',', ",,");
                cmd.arg("-bios")
                    .arg(bios)
                    .arg("-device")
                    .arg(format!("loader,file={f},addr={at:#x},force-raw=on"));
            }
        }
        if let Some(a) = &self.append {
            cmd.arg("-append").arg(a);
        }
        if let Some(i) = &self.initrd {
            cmd.arg("-initrd").arg(i);
        }
        let mut addr: u64 = 0x5000_0000;
        let align = |v: u64| (v + (2 << 20) - 1) & !((2 << 20) - 1);
        for m in &self.modules {
            let size = std::fs::metadata(&m.kernel)
                .unwrap_or_else(|e| panic!("{}: {e}", m.kernel.display()))
                .len();
            let mut dev = format!("guest-loader,addr={addr:#x},kernel={}", m.kernel.display());
            if let Some(b) = &m.bootargs {
                dev.push_str(&format!(",bootargs={}", b.replace(',', ",,")));
            }
            cmd.arg("-device").arg(dev);
            addr = align(addr + size);
            if let Some(i) = &m.initrd {
                let size = std::fs::metadata(i).unwrap().len();
                cmd.arg("-device").arg(format!(
                    "guest-loader,addr={addr:#x},initrd={}",
                    i.display()
                ));
                addr = align(addr + size);
            }
        }
        cmd.args(&self.extra);
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let line = format!("{cmd:?}");
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start QEMU ({line}): {e}"));
        let qemu_out = Console::capture_pipe(child.stderr.take().unwrap());
        let _ = Console::capture_pipe(child.stdout.take().unwrap());
        let mut guest = Console::new();
        if !self.one_serial {
            guest.connect(ports[0], &mut child, &qemu_out, Duration::from_secs(30));
        }
        let debug_port = *ports.last().unwrap();
        let mut debug = Console::new();
        debug.connect(debug_port, &mut child, &qemu_out, Duration::from_secs(30));
        Qemu {
            child,
            guest,
            debug,
            debug_port,
            qemu_out,
            line,
        }
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// One serial line: everything received so far, and a way to type into it. Its text
/// outlives its connection: a console disconnected and connected again (see
/// [`Qemu::disconnect_debug`]) appends to the same text.
pub struct Console {
    buf: Arc<Mutex<Vec<u8>>>,
    stream: Option<TcpStream>,
    /// The thread that reads `stream` into `buf`.
    reader: Option<JoinHandle<()>>,
}

impl Console {
    fn new() -> Console {
        Console {
            buf: Arc::new(Mutex::new(Vec::new())),
            stream: None,
            reader: None,
        }
    }

    /// Appends everything `r` gives to `buf`, on a thread, until its end.
    fn read_into(buf: &Arc<Mutex<Vec<u8>>>, mut r: impl Read + Send + 'static) -> JoinHandle<()> {
        let b = buf.clone();
        thread::spawn(move || {
            let mut chunk = [0u8; 4096];
            while let Ok(n) = r.read(&mut chunk) {
                if n == 0 {
                    break;
                }
                b.lock().unwrap().extend_from_slice(&chunk[..n]);
            }
        })
    }

    fn capture_pipe(r: impl Read + Send + 'static) -> Console {
        let mut c = Console::new();
        c.reader = Some(Console::read_into(&c.buf, r));
        c
    }

    /// Connects to QEMU's socket chardev on `port`, retrying until `patience` has
    /// passed, and reads it into this console's text from then on.
    fn connect(&mut self, port: u16, child: &mut Child, qemu_out: &Console, patience: Duration) {
        assert!(
            self.stream.is_none(),
            "the console on port {port} is already connected"
        );
        let start = Instant::now();
        let stream = loop {
            match TcpStream::connect(("127.0.0.1", port)) {
                Ok(s) => break s,
                Err(e) => {
                    if let Ok(Some(status)) = child.try_wait() {
                        panic!(
                            "QEMU exited ({status}) before its console on port {port} opened: {}",
                            qemu_out.text()
                        );
                    }
                    if start.elapsed() > patience {
                        panic!("cannot connect to QEMU's console on port {port} within {patience:?}: {e}");
                    }
                    thread::sleep(Duration::from_millis(20));
                }
            }
        };
        self.reader = Some(Console::read_into(&self.buf, stream.try_clone().unwrap()));
        self.stream = Some(stream);
    }

    /// Closes the connection; the text received so far stays.
    fn disconnect(&mut self) {
        if let Some(s) = self.stream.take() {
            // Both directions: the reader thread sees the end and stops, and QEMU
            // sees the client go.
            let _ = s.shutdown(Shutdown::Both);
        }
        if let Some(r) = self.reader.take() {
            let _ = r.join();
        }
    }

    /// Whether the console has a connection (`write` needs one).
    pub fn is_connected(&self) -> bool {
        self.stream.is_some()
    }

    /// Everything received so far, as text (CR removed).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.buf.lock().unwrap()).replace('\r', "")
    }

    pub fn contains(&self, s: &str) -> bool {
        self.text().contains(s)
    }

    pub fn tail(&self, lines: usize) -> String {
        let t = self.text();
        let v: Vec<&str> = t.lines().collect();
        v[v.len().saturating_sub(lines)..].join("\n")
    }

    pub fn write(&mut self, bytes: &[u8]) {
        let s = self
            .stream
            .as_mut()
            .expect("the console is disconnected: Qemu::reconnect_debug before writing to it");
        s.write_all(bytes).unwrap();
    }
}

pub struct Qemu {
    child: Child,
    pub guest: Console,
    pub debug: Console,
    debug_port: u16,
    qemu_out: Console,
    line: String,
}

impl Qemu {
    /// The 127.0.0.1 TCP port of the hypervisor's debug console (QEMU's
    /// `-chardev socket,server=on`). QEMU serves one client at a time: another
    /// program (`cargo xtask snapshot --port`, `gdb-multiarch -ex 'target remote
    /// :PORT'`) connects to it between [`Qemu::disconnect_debug`] and
    /// [`Qemu::reconnect_debug`].
    pub fn debug_port(&self) -> u16 {
        self.debug_port
    }

    /// Closes the harness's connection to the debug console, so that another
    /// program can connect to [`Qemu::debug_port`]. The text received so far stays
    /// in `self.debug` (`expect_debug` and `check` still see it); what the
    /// hypervisor prints while the harness is not connected goes to the other
    /// program, or nowhere (QEMU drops a socket chardev's output while no client
    /// is connected). `self.debug.write` panics until [`Qemu::reconnect_debug`].
    /// Idempotent.
    pub fn disconnect_debug(&mut self) {
        self.debug.disconnect();
    }

    /// Connects the harness to the debug console again, after
    /// [`Qemu::disconnect_debug`] and after the other program has closed its
    /// connection. New output is appended to the same `self.debug` text, so
    /// `expect_debug` goes on working (note that it searches the whole text,
    /// including what came before the disconnection). Retries for up to 10 s:
    /// QEMU accepts a new client only once it has noticed the previous one go.
    /// Does nothing if the harness is connected.
    pub fn reconnect_debug(&mut self) {
        if self.debug.is_connected() {
            return;
        }
        self.debug.connect(
            self.debug_port,
            &mut self.child,
            &self.qemu_out,
            Duration::from_secs(10),
        );
    }

    /// Whether QEMU still runs, for failure messages: a QEMU killed from outside
    /// (by a signal it cannot report) otherwise looks like a console gone quiet.
    fn state(&self) -> String {
        let pid = self.child.id();
        match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
            // "pid (comm) S ...": the state follows the command name.
            Ok(stat) => match stat.rsplit_once(") ").and_then(|(_, r)| r.chars().next()) {
                Some('Z') | Some('X') => format!("pid {pid}, has exited"),
                Some(c) => format!("pid {pid}, running (state {c})"),
                None => format!("pid {pid}"),
            },
            Err(_) => format!("pid {pid}, has exited"),
        }
    }

    /// Panics with both consoles' tails.
    pub fn fail(&self, why: &str) -> ! {
        panic!(
            "{why}\n--- QEMU ({}): {}\n--- QEMU's own output:\n{}\n--- guest console (last 40 lines):\n{}\n--- debug console (last 40 lines):\n{}\n---",
            self.state(),
            self.line,
            self.qemu_out.tail(10),
            self.guest.tail(40),
            self.debug.tail(40)
        )
    }

    fn wait_for(&mut self, which: &str, text: &str, deadline: Duration) {
        let start = Instant::now();
        loop {
            let c = if which == "guest" {
                &self.guest
            } else {
                &self.debug
            };
            if c.contains(text) {
                return;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                // Let the reader threads drain what QEMU wrote before it exited.
                thread::sleep(Duration::from_millis(200));
                let c = if which == "guest" {
                    &self.guest
                } else {
                    &self.debug
                };
                if c.contains(text) {
                    return;
                }
                self.fail(&format!(
                    "QEMU exited ({status}) before the {which} console printed {text:?}"
                ));
            }
            if start.elapsed() > deadline {
                self.fail(&format!(
                    "the {which} console did not print {text:?} within {deadline:?}"
                ));
            }
            thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits until the guest console has printed `text`.
    pub fn expect_guest(&mut self, text: &str) -> &mut Self {
        self.wait_for("guest", text, DEADLINE);
        self
    }

    /// Waits until the debug console has printed `text`.
    pub fn expect_debug(&mut self, text: &str) -> &mut Self {
        self.wait_for("debug", text, DEADLINE);
        self
    }

    /// [`Self::expect_guest`] with a deadline of its own (a generic distribution
    /// kernel probing a whole SoC under single-threaded TCG).
    pub fn expect_guest_within(&mut self, text: &str, deadline: Duration) -> &mut Self {
        self.wait_for("guest", text, deadline);
        self
    }

    /// [`Self::expect_debug`] with a deadline of its own.
    pub fn expect_debug_within(&mut self, text: &str, deadline: Duration) -> &mut Self {
        self.wait_for("debug", text, deadline);
        self
    }

    /// Waits for QEMU to exit and returns its status.
    pub fn wait_exit(&mut self, deadline: Duration) -> ExitStatus {
        let start = Instant::now();
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                thread::sleep(Duration::from_millis(200));
                return status;
            }
            if start.elapsed() > deadline {
                self.fail(&format!("QEMU did not exit within {deadline:?}"));
            }
            thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits for QEMU to exit with status 0.
    pub fn expect_clean_exit(&mut self) {
        let status = self.wait_exit(DEADLINE);
        if !status.success() {
            self.fail(&format!("QEMU exited with {status}"));
        }
    }

    /// Asserts on a console's whole text so far, with the consoles on failure.
    pub fn check(&self, ok: bool, why: &str) {
        if !ok {
            self.fail(why);
        }
    }
}

impl Drop for Qemu {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A scratch directory, `hv-NAME-PID` under the temporary directory, made
/// empty, and removed when dropped (also when the test fails).
pub struct Scratch(pub PathBuf);

impl Scratch {
    pub fn new(name: &str) -> Scratch {
        let d = std::env::temp_dir().join(format!("hv-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        Scratch(d)
    }
    pub fn path(&self, p: &str) -> PathBuf {
        self.0.join(p)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// `cargo xtask bundle -o OUT ARGS` (as a user runs it); panics with its output
/// if it fails, checks it names the bundle last, returns the bundle's size.
pub fn xtask_bundle(out: &Path, args: &[&std::ffi::OsStr]) -> u64 {
    let o = xtask()
        .arg("bundle")
        .arg("-o")
        .arg(out)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run cargo xtask bundle: {e}"));
    assert!(
        o.status.success(),
        "cargo xtask bundle failed ({}):\n{}{}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    // The path is the last line of standard output.
    let last = String::from_utf8_lossy(&o.stdout)
        .lines()
        .last()
        .map(str::to_owned);
    assert_eq!(last.as_deref(), Some(out.to_str().unwrap()));
    eprintln!("{}", String::from_utf8_lossy(&o.stderr));
    std::fs::metadata(out).unwrap().len()
}
