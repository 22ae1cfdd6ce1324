//! The QEMU test harness: boots the hypervisor with guest-loader modules, captures
//! the guest console and the hypervisor's debug console separately, and waits for
//! text with a deadline. On any failure it panics with the tail of both consoles.
//! QEMU is killed when the `Qemu` value is dropped.
//!
//! The images come from `cargo xtask test` through environment variables:
//! `HV_IMAGE` (the hypervisor), `HV_GUESTS` (the directory of the bundled guests),
//! `HV_QEMU` (the QEMU binary), `HV_LINUX_KERNEL`, `HV_LINUX_INITRD` and
//! `HV_LINUX_VERSION` (Debian's kernel and a busybox initramfs).

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;
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
    gic: u8,
    cpu: String,
    modules: Vec<Module>,
    extra: Vec<String>,
}

pub fn qemu() -> Builder {
    Builder {
        bare: None,
        machine: "virt,virtualization=on".into(),
        smp: 2,
        memory: "1G".into(),
        gic: 3,
        cpu: "max".into(),
        modules: Vec::new(),
        extra: Vec::new(),
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
        self.gic = v;
        self
    }
    pub fn cpu(mut self, c: &str) -> Self {
        self.cpu = c.into();
        self
    }
    pub fn vm(mut self, m: Module) -> Self {
        self.modules.push(m);
        self
    }
    pub fn arg(mut self, a: &str) -> Self {
        self.extra.push(a.into());
        self
    }

    /// Starts QEMU and connects to both consoles.
    pub fn start(self) -> Qemu {
        let ports = [free_port(), free_port()];
        let mut cmd =
            Command::new(std::env::var("HV_QEMU").unwrap_or_else(|_| "qemu-system-aarch64".into()));
        cmd.arg("-M")
            .arg(format!("{},gic-version={}", self.machine, self.gic))
            .args([
                "-cpu",
                &self.cpu,
                "-smp",
                &self.smp.to_string(),
                "-m",
                &self.memory,
            ])
            .args(["-display", "none", "-monitor", "none", "-no-reboot"]);
        for (i, port) in ports.iter().enumerate() {
            // wait=on: QEMU starts the machine only once both consoles are connected,
            // so not a byte of output is lost.
            cmd.arg("-chardev")
                .arg(format!(
                    "socket,id=s{i},host=127.0.0.1,port={port},server=on,wait=on"
                ))
                .arg("-serial")
                .arg(format!("chardev:s{i}"));
        }
        cmd.arg("-kernel")
            .arg(self.bare.clone().unwrap_or_else(|| env_path("HV_IMAGE")));
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
        let guest = Console::connect(ports[0], &mut child, &qemu_out);
        let debug = Console::connect(ports[1], &mut child, &qemu_out);
        Qemu {
            child,
            guest,
            debug,
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

/// One serial line: everything received so far, and a way to type into it.
pub struct Console {
    buf: Arc<Mutex<Vec<u8>>>,
    stream: Option<TcpStream>,
}

impl Console {
    fn capture_pipe(mut r: impl Read + Send + 'static) -> Console {
        let buf = Arc::new(Mutex::new(Vec::new()));
        let b = buf.clone();
        thread::spawn(move || {
            let mut chunk = [0u8; 4096];
            while let Ok(n) = r.read(&mut chunk) {
                if n == 0 {
                    break;
                }
                b.lock().unwrap().extend_from_slice(&chunk[..n]);
            }
        });
        Console { buf, stream: None }
    }

    fn connect(port: u16, child: &mut Child, qemu_out: &Console) -> Console {
        let start = Instant::now();
        let stream = loop {
            match TcpStream::connect(("127.0.0.1", port)) {
                Ok(s) => break s,
                Err(e) => {
                    if let Ok(Some(status)) = child.try_wait() {
                        panic!(
                            "QEMU exited ({status}) before its console opened: {}",
                            qemu_out.text()
                        );
                    }
                    if start.elapsed() > Duration::from_secs(30) {
                        panic!("cannot connect to QEMU's console on port {port}: {e}");
                    }
                    thread::sleep(Duration::from_millis(20));
                }
            }
        };
        let mut c = Console::capture_pipe(stream.try_clone().unwrap());
        c.stream = Some(stream);
        c
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
        let s = self.stream.as_mut().expect("a console connection");
        s.write_all(bytes).unwrap();
    }
}

pub struct Qemu {
    child: Child,
    pub guest: Console,
    pub debug: Console,
    qemu_out: Console,
    line: String,
}

impl Qemu {
    /// Panics with both consoles' tails.
    pub fn fail(&self, why: &str) -> ! {
        panic!(
            "{why}\n--- QEMU: {}\n--- QEMU's own output:\n{}\n--- guest console (last 40 lines):\n{}\n--- debug console (last 40 lines):\n{}\n---",
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
