//! `cargo xtask snapshot save|restore|show|diff`: snapshots as host files.
//!
//! `save` and `restore` talk to the hypervisor's debug console (QEMU's TCP serial,
//! `--port`, or a board's serial device, `--device`) with the console's
//! `snapshot send` and `snapshot receive` commands: binary frames with a CRC-32
//! each, acknowledged and repeated when damaged (`hypervisor::snapshot::link`), or
//! with `--hex` the older checksummed hex text. The format and the transfer are
//! the hypervisor's own code, so both sides agree by construction. A progress line
//! (pages, MiB, rate) is redrawn on stderr as frames go. `show` prints a file's
//! registers by name, `diff` compares two.

use hypervisor::cpreg::lookup_kvm;
use hypervisor::snapshot::link::{self, MessageReader, Receiver, Rx, Sender};
use hypervisor::snapshot::{self, frame, transfer, Decoder, Item, Parsed, PAGE};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

trait Link: Read + Write {}
impl<T: Read + Write> Link for T {}

pub struct Target {
    pub port: Option<u16>,
    pub device: Option<PathBuf>,
}

fn connect(t: &Target) -> Result<Box<dyn Link>, String> {
    match (t.port, &t.device) {
        (Some(p), None) => {
            let s = TcpStream::connect(("127.0.0.1", p)).map_err(|e| format!("cannot connect to 127.0.0.1:{p}: {e}"))?;
            s.set_read_timeout(Some(Duration::from_millis(200))).ok();
            Ok(Box::new(s))
        }
        (None, Some(d)) => {
            // The line's speed and raw mode are the user's (stty -F DEVICE 115200 raw -echo).
            let f = std::fs::OpenOptions::new().read(true).write(true).open(d).map_err(|e| format!("{}: {e}", d.display()))?;
            Ok(Box::new(f))
        }
        _ => Err("give the debug console as --port PORT (QEMU's TCP serial) or --device PATH (a serial device)".into()),
    }
}

/// Reads console text until `done(text)` says so, or the deadline passes.
fn read_until(
    link: &mut dyn Link,
    text: &mut String,
    deadline: Duration,
    done: impl Fn(&str) -> bool,
) -> Result<(), String> {
    let start = Instant::now();
    let mut buf = [0u8; 65536];
    while !done(text) {
        if start.elapsed() > deadline {
            return Err(format!(
                "no answer from the hypervisor within {} s; last output:\n{}",
                deadline.as_secs_f64(),
                tail(text)
            ));
        }
        match link.read(&mut buf) {
            Ok(0) => return Err(format!("the console closed; last output:\n{}", tail(text))),
            Ok(n) => text.push_str(&String::from_utf8_lossy(&buf[..n])),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock
                        | std::io::ErrorKind::TimedOut
                        | std::io::ErrorKind::Interrupted
                ) => {}
            Err(e) => return Err(format!("reading the console: {e}")),
        }
    }
    Ok(())
}

fn tail(text: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(10)..].join("\n")
}

/// The console's `error: ...` message, once its line is complete (a reader
/// that stopped at the first bytes of it would cut the message short). During
/// a transfer the hypervisor's acknowledgements (binary, no line end) may come
/// before it on its line.
fn console_error(text: &str) -> Option<String> {
    let complete = &text[..text.rfind('\n').map_or(0, |i| i + 1)];
    complete.lines().find_map(|l| {
        let at = l.find("error: ")?;
        Some(l[at + "error: ".len()..].trim().to_owned())
    })
}

/// ` --force` when the user forces a snapshot of a VM with passed-through devices.
fn force_flag(force: bool) -> &'static str {
    if force {
        " --force"
    } else {
        ""
    }
}

/// A progress line on stderr, redrawn at most 10 times a second.
struct Progress {
    start: Instant,
    last: Instant,
    total_pages: u64,
    what: &'static str,
}

impl Progress {
    fn new(what: &'static str, total_pages: u64) -> Self {
        let now = Instant::now();
        Self {
            start: now,
            last: now,
            total_pages,
            what,
        }
    }

    fn show(&mut self, pages: u64, bytes: u64, force: bool) {
        if !force && self.last.elapsed() < Duration::from_millis(100) {
            return;
        }
        self.last = Instant::now();
        let secs = self.start.elapsed().as_secs_f64().max(1e-3);
        let mib = (pages * PAGE as u64) as f64 / (1 << 20) as f64;
        let width = 30u64;
        let filled = (pages * width)
            .checked_div(self.total_pages)
            .unwrap_or(width);
        eprint!(
            "\r{} [{}{}] {pages}/{} pages, {mib:.1} MiB of RAM, {:.1} MiB on the line, {:.2} MiB/s ",
            self.what,
            "#".repeat(filled as usize),
            " ".repeat((width - filled.min(width)) as usize),
            self.total_pages,
            bytes as f64 / (1 << 20) as f64,
            mib / secs
        );
        if force {
            eprintln!();
        }
    }
}

/// `key=value` from a console line.
fn field(line: &str, key: &str) -> Option<u64> {
    line.split_whitespace()
        .find_map(|w| w.strip_prefix(key)?.strip_prefix('='))?
        .parse()
        .ok()
}

pub fn save(
    t: &Target,
    vm: usize,
    file: &Path,
    force: bool,
    hex: bool,
    self_contained: bool,
) -> Result<(), String> {
    if hex {
        return save_hex(t, vm, file, force);
    }
    let mut link = connect(t)?;
    let cmd = format!(
        "\rsnapshot send vm{vm}{}{}\r",
        force_flag(force),
        if self_contained {
            " --self-contained"
        } else {
            ""
        }
    );
    link.write_all(cmd.as_bytes()).map_err(|e| e.to_string())?;
    let mut text = String::new();
    read_until(&mut *link, &mut text, Duration::from_secs(120), |t| {
        t.contains("HVSNAP-STREAM 2") && t[t.find("HVSNAP-STREAM 2").unwrap()..].contains('\n')
            || console_error(t).is_some()
    })?;
    if let Some(e) = console_error(&text) {
        return Err(format!("the hypervisor refused: {e}"));
    }
    let at = text.find("HVSNAP-STREAM 2").unwrap();
    let line = text[at..].lines().next().unwrap_or("");
    let total_pages = field(line, "pages").unwrap_or(0);
    // The bytes after the announcement line are frames (and the odd console line).
    let after = text.as_bytes()[at..]
        .iter()
        .position(|&b| b == b'\n')
        .map_or(text.len(), |i| at + i + 1);
    let mut pending: Vec<u8> = text.as_bytes()[after..].to_vec();
    let mut rx = Receiver::new();
    let mut dec = Decoder::new();
    let mut out = snapshot::MAGIC.to_vec();
    let mut progress = Progress::new("saving", total_pages);
    let mut bytes = 0u64;
    let mut buf = vec![0u8; 65536];
    let mut last = Instant::now();
    let mut tail_text = String::new();
    loop {
        for b in std::mem::take(&mut pending) {
            bytes += 1;
            match rx.push(b) {
                Rx::None => {}
                Rx::Reply(m) => link.write_all(&m).map_err(|e| e.to_string())?,
                Rx::Frame => {
                    let f = rx.frame();
                    frame::write(&mut out, f.kind, f.seq, f.payload);
                    let end = dec.feed(f).map_err(|e| {
                        let _ = link.write_all(&link::message(link::ABORT, 0));
                        format!("the hypervisor sent a bad snapshot: {e}")
                    })? == Item::End;
                    link.write_all(&rx.accept()).map_err(|e| e.to_string())?;
                    progress.show(dec.pages().0, bytes, false);
                    if end {
                        progress.show(dec.pages().0, bytes, true);
                        break;
                    }
                }
            }
        }
        if dec.ended() {
            break;
        }
        if last.elapsed() > Duration::from_secs(30) {
            return Err(format!(
                "no data from the hypervisor for 30 s after {} of {total_pages} pages; last output:\n{}",
                dec.pages().0,
                tail(&tail_text)
            ));
        }
        match link.read(&mut buf) {
            Ok(0) => return Err("the console closed during the transfer".into()),
            Ok(n) => {
                last = Instant::now();
                pending.extend_from_slice(&buf[..n]);
                // Console text between frames (for an error message): printable only.
                tail_text.extend(
                    buf[..n]
                        .iter()
                        .filter(|&&b| b == b'\n' || (b' '..=b'~').contains(&b))
                        .map(|&b| b as char),
                );
                if tail_text.len() > 8192 {
                    tail_text.drain(..tail_text.len() - 4096);
                }
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock
                        | std::io::ErrorKind::TimedOut
                        | std::io::ErrorKind::Interrupted
                ) => {}
            Err(e) => return Err(format!("reading the console: {e}")),
        }
    }
    let p = snapshot::decode(&out).map_err(|e| format!("the received snapshot is invalid: {e}"))?;
    std::fs::write(file, &out).map_err(|e| format!("{}: {e}", file.display()))?;
    // The hypervisor's own summary (rate, frames sent again).
    let mut text = String::new();
    let done = format!("vm{vm}: sent ");
    if read_until(&mut *link, &mut text, Duration::from_secs(30), |t| {
        t.contains(&done) && t[t.find(&done).unwrap()..].contains('\n')
    })
    .is_ok()
    {
        if let Some(l) = text.lines().find_map(|l| l.find(&done).map(|i| &l[i..])) {
            println!("hypervisor: {}", l.trim());
        }
    }
    println!(
        "saved vm{vm} to {} ({} bytes, {} vCPU(s), {} MiB of RAM, {} data pages, {} pages as booted)",
        file.display(),
        out.len(),
        p.header.vcpus,
        p.header.ram_size >> 20,
        dec.pages().1,
        dec.booted_pages()
    );
    print_depends(&p);
    Ok(())
}

fn save_hex(t: &Target, vm: usize, file: &Path, force: bool) -> Result<(), String> {
    let mut link = connect(t)?;
    let force = force_flag(force);
    link.write_all(format!("\rsnapshot send vm{vm}{force} --hex\r").as_bytes())
        .map_err(|e| e.to_string())?;
    let mut text = String::new();
    read_until(&mut *link, &mut text, Duration::from_secs(120), |t| {
        transfer::extract(t).is_some() || console_error(t).is_some()
    })?;
    if let Some(e) = console_error(&text) {
        return Err(format!("the hypervisor refused: {e}"));
    }
    let bytes = transfer::extract(&text)
        .unwrap()
        .map_err(|e| format!("transfer: {e}"))?;
    let p =
        snapshot::decode(&bytes).map_err(|e| format!("the received snapshot is invalid: {e}"))?;
    std::fs::write(file, &bytes).map_err(|e| format!("{}: {e}", file.display()))?;
    println!(
        "saved vm{vm} to {} ({} bytes, {} vCPU(s), {} MiB of RAM)",
        file.display(),
        bytes.len(),
        p.header.vcpus,
        p.header.ram_size >> 20
    );
    Ok(())
}

pub fn restore(t: &Target, vm: usize, file: &Path, force: bool, hex: bool) -> Result<(), String> {
    if hex {
        return restore_hex(t, vm, file, force);
    }
    let bytes = std::fs::read(file).map_err(|e| format!("{}: {e}", file.display()))?;
    // Refuse a bad file here, before the hypervisor sees a byte.
    let p = snapshot::decode(&bytes).map_err(|e| format!("{}: {e}", file.display()))?;
    let total_pages = p.header.ram_size / PAGE as u64;
    // A version-1 file is sent as version 2 (the same snapshot, in frames).
    let bytes = if bytes[snapshot::MAGIC.len()..].starts_with(&frame::SYNC) {
        bytes
    } else {
        let mut pages: Vec<Option<Vec<u8>>> = Vec::new();
        p.for_each_page(|_, d| pages.push(d.map(<[u8]>::to_vec)));
        let mut out = Vec::new();
        snapshot::encode(
            &p.header,
            &p.cpus,
            p.gic,
            |ipa, page| match &pages[((ipa - p.header.ram_ipa) / PAGE as u64) as usize] {
                Some(d) => page.copy_from_slice(d),
                None => page.fill(0),
            },
            &mut out,
        );
        out
    };
    let frames: Vec<(usize, usize, u64)> =
        frame::split(&bytes[snapshot::MAGIC.len()..], snapshot::MAGIC.len())
            .map(|f| {
                let (at, f) = f.map_err(|e| {
                    format!("{}: {}", file.display(), snapshot::SnapshotError::from(e))
                })?;
                let pages = match f.kind {
                    frame::KIND_PAGES | frame::KIND_PACKED | frame::KIND_DELTA => {
                        f.payload.get(8).copied().unwrap_or(0) as u64
                    }
                    frame::KIND_RUN | frame::KIND_BOOTED => f
                        .payload
                        .get(8..12)
                        .map_or(0, |c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]) as u64),
                    _ => 0,
                };
                Ok((at, at + frame::HEADER_LEN + f.payload.len() + 4, pages))
            })
            .collect::<Result<_, String>>()?;
    let mut link = connect(t)?;
    let cmd = format!("\rsnapshot receive vm{vm}{}\r", force_flag(force));
    link.write_all(cmd.as_bytes()).map_err(|e| e.to_string())?;
    let mut text = String::new();
    read_until(&mut *link, &mut text, Duration::from_secs(60), |t| {
        t.contains("HVSNAP-READY 2") || console_error(t).is_some()
    })?;
    if let Some(e) = console_error(&text) {
        return Err(format!("the hypervisor refused: {e}"));
    }
    let mut tx = Sender::new(frames.len() as u64);
    let mut msgs = MessageReader::new();
    let mut buf = vec![0u8; 4096];
    let mut progress = Progress::new("restoring", total_pages);
    let mut heard = Instant::now();
    let mut moved = Instant::now();
    let mut sent_bytes = 0u64;
    let mut reply_text = String::new();
    let pages_before = |n: u64| frames[..n as usize].iter().map(|f| f.2).sum::<u64>();
    while !tx.done() {
        while let Some(seq) = tx.next() {
            let (a, b, _) = frames[seq as usize];
            link.write_all(&bytes[a..b])
                .map_err(|e| format!("the console closed during the transfer: {e}"))?;
            sent_bytes += (b - a) as u64;
        }
        match link.read(&mut buf) {
            Ok(0) => return Err("the console closed during the transfer".into()),
            Ok(n) => {
                reply_text.push_str(&String::from_utf8_lossy(&buf[..n]));
                for &b in &buf[..n] {
                    if let Some((kind, n)) = msgs.push(b) {
                        heard = Instant::now();
                        let before = tx.acked();
                        if !tx.on_message(kind, n) {
                            // The hypervisor first drops the frames still in
                            // flight (up to 15 s), then says why.
                            let _ = read_until(
                                &mut *link,
                                &mut reply_text,
                                Duration::from_secs(30),
                                |t| console_error(t).is_some(),
                            );
                            return Err(format!(
                                "the hypervisor refused the snapshot: {}",
                                console_error(&reply_text)
                                    .unwrap_or_else(|| "(no reason given)".into())
                            ));
                        }
                        if tx.acked() > before {
                            moved = heard;
                        }
                    }
                }
                progress.show(pages_before(tx.acked()), sent_bytes, false);
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock
                        | std::io::ErrorKind::TimedOut
                        | std::io::ErrorKind::Interrupted
                ) => {}
            Err(e) => return Err(format!("reading the console: {e}")),
        }
        // Silence: send again from the first frame not acknowledged, once the
        // frames in flight have had time to get through a slow line (QEMU's PL011
        // hands the hypervisor tens of KiB/s; a fixed 2 s would send a window of
        // 64 KiB frames again and again before the first one is through).
        let in_flight: usize = frames[tx.acked() as usize..tx.next_seq() as usize]
            .iter()
            .map(|f| f.1 - f.0)
            .sum();
        let patience = Duration::from_secs(2) + Duration::from_millis(in_flight as u64 / 8);
        if moved.elapsed() > Duration::from_secs(60) + 2 * patience {
            return Err(format!(
                "no acknowledgement from the hypervisor for {} s; last output:\n{}",
                moved.elapsed().as_secs(),
                tail(&reply_text)
            ));
        }
        if heard.elapsed() > patience {
            tx.on_silence();
            heard = Instant::now();
        }
    }
    // Nothing more follows: the hypervisor stops discarding the line at once.
    link.write_all(&hypervisor::snapshot::link::message(
        hypervisor::snapshot::link::FIN,
        frames.len() as u32,
    ))
    .map_err(|e| format!("the console closed during the transfer: {e}"))?;
    progress.show(total_pages, sent_bytes, true);
    let done = format!("vm{vm}: restored from the host");
    read_until(&mut *link, &mut reply_text, Duration::from_secs(120), |t| {
        (t.contains(&done) && t[t.find(&done).unwrap()..].contains('\n'))
            || console_error(t).is_some()
    })?;
    if let Some(e) = console_error(&reply_text) {
        return Err(format!("the hypervisor refused the snapshot: {e}"));
    }
    // From "vmN:" on: acknowledgements may precede it on its line.
    if let Some(l) = reply_text
        .lines()
        .find_map(|l| l.find(&done).map(|i| &l[i..]))
    {
        println!("hypervisor: {}", l.trim());
    }
    // What the hypervisor said of how it took the stream (kept whole, then
    // restored at once; or written out as it came, once it outgrew that room).
    for l in text.lines().chain(reply_text.lines()) {
        let l = l.trim();
        if l.starts_with(&format!("hv: vm{vm}: receiving into"))
            || l.starts_with(&format!("hv: vm{vm}: the snapshot outgrew"))
        {
            println!("hypervisor: {}", l.trim_start_matches("hv: "));
        }
    }
    println!("restored vm{vm} from {}", file.display());
    Ok(())
}

fn restore_hex(t: &Target, vm: usize, file: &Path, force: bool) -> Result<(), String> {
    let bytes = std::fs::read(file).map_err(|e| format!("{}: {e}", file.display()))?;
    // Refuse a bad file here, before the hypervisor sees a byte.
    snapshot::decode(&bytes).map_err(|e| format!("{}: {e}", file.display()))?;
    let mut link = connect(t)?;
    let cmd = format!(
        "\rsnapshot receive vm{vm} {} {:08x}{}\r",
        bytes.len(),
        transfer::checksum(&bytes),
        force_flag(force)
    );
    link.write_all(cmd.as_bytes()).map_err(|e| e.to_string())?;
    let mut text = String::new();
    read_until(&mut *link, &mut text, Duration::from_secs(30), |t| {
        t.contains("ready for ") || console_error(t).is_some()
    })?;
    if let Some(e) = console_error(&text) {
        return Err(format!("the hypervisor refused: {e}"));
    }
    let mut body = String::new();
    transfer::write_body(&bytes, &mut body).unwrap();
    link.write_all(body.as_bytes()).map_err(|e| e.to_string())?;
    let done = format!("vm{vm}: restored from the host");
    // The line carries the body at what the board's (or QEMU's) UART takes: allow
    // 10 KB/s at the worst, plus the import, before calling the hypervisor silent.
    let deadline = Duration::from_secs(120 + body.len() as u64 / 10_000);
    read_until(&mut *link, &mut text, deadline, |t| {
        t.contains(&done) || console_error(t).is_some()
    })?;
    if let Some(e) = console_error(&text) {
        return Err(format!("the hypervisor refused the snapshot: {e}"));
    }
    println!("restored vm{vm} from {}", file.display());
    Ok(())
}

fn load(file: &Path) -> Result<Vec<u8>, String> {
    std::fs::read(file).map_err(|e| format!("{}: {e}", file.display()))
}

fn name(index: u64) -> String {
    lookup_kvm(index).map_or_else(|| format!("{index:#018x}"), |r| r.name().to_string())
}

/// What a page of a snapshot holds, to compare two snapshots page by page.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Page {
    Zero,
    /// FNV-1a of its bytes.
    Data(u64),
    /// What the boot images put there (the images are compared on their own).
    Booted,
    /// FNV-1a of its XOR with the boot images.
    Delta(u64),
}

fn fnv(d: &[u8]) -> u64 {
    d.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
        (h ^ b as u64).wrapping_mul(0x100_0000_01b3)
    })
}

fn pages(p: &Parsed) -> Vec<Page> {
    let ram = p.header.ram_ipa;
    let index = |ipa: u64| ((ipa - ram) / PAGE as u64) as usize;
    let mut v = vec![Page::Zero; (p.header.ram_size / PAGE as u64) as usize];
    p.for_each_page(|ipa, page| v[index(ipa)] = page.map_or(Page::Zero, |d| Page::Data(fnv(d))));
    p.for_each_booted(|ipa, page| {
        v[index(ipa)] = page.map_or(Page::Booted, |d| Page::Delta(fnv(d)))
    });
    v
}

/// The boot images a snapshot's pages as booted refer to, one line each.
fn print_depends(p: &Parsed) {
    if p.depends.is_empty() {
        return;
    }
    println!("depends on the VM's boot images (restores only into a VM booted with them):");
    for i in &p.depends {
        println!("  IPA {:#x}, {} bytes, CRC-32 {:08x}", i.ipa, i.size, i.crc);
    }
}

pub fn show(file: &Path) -> Result<(), String> {
    let bytes = load(file)?;
    let p = snapshot::decode(&bytes).map_err(|e| format!("{}: {e}", file.display()))?;
    let h = &p.header;
    println!(
        "{}: format version {}, MIDR {:#x}, {} vCPU(s)",
        file.display(),
        h.version,
        h.midr,
        h.vcpus
    );
    let all = pages(&p);
    let delta = all.iter().filter(|x| matches!(x, Page::Delta(_))).count();
    let data = delta + all.iter().filter(|x| matches!(x, Page::Data(_))).count();
    let booted = all.iter().filter(|x| **x == Page::Booted).count();
    println!(
        "RAM: {} MiB at IPA {:#x}, {} data pages, {} of them as differences from the boot images, {} pages as booted, {} zero pages",
        h.ram_size >> 20,
        h.ram_ipa,
        data,
        delta,
        booted,
        all.len() - data - booted
    );
    if h.cntvct == 0 {
        println!("virtual counter: not recorded (restores with the machine's count)");
    } else {
        println!("virtual counter: {} when saved", h.cntvct);
    }
    print_depends(&p);
    println!(
        "vGIC state: {}",
        p.gic
            .map_or("none".to_string(), |g| format!("{} bytes", g.len()))
    );
    for (i, c) in p.cpus.iter().enumerate() {
        println!(
            "vCPU {i}: {}, pc {:#x}, pstate {:#x}",
            if c.powered_on { "on" } else { "off" },
            c.pc,
            c.pstate
        );
        for (n, x) in c.x.iter().enumerate() {
            println!("  x{n:<2} {x:#018x}");
        }
        for &(index, value) in &c.regs {
            println!("  {:<20} {value:#018x}", name(index));
        }
    }
    Ok(())
}

pub fn diff(a: &Path, b: &Path) -> Result<(), String> {
    let (ba, bb) = (load(a)?, load(b)?);
    let pa = snapshot::decode(&ba).map_err(|e| format!("{}: {e}", a.display()))?;
    let pb = snapshot::decode(&bb).map_err(|e| format!("{}: {e}", b.display()))?;
    let mut differences = 0;
    let mut say = |s: String| {
        differences += 1;
        println!("{s}");
    };
    let (ha, hb) = (&pa.header, &pb.header);
    if ha.midr != hb.midr {
        say(format!("MIDR: {:#x} -> {:#x}", ha.midr, hb.midr));
    }
    if (ha.ram_ipa, ha.ram_size) != (hb.ram_ipa, hb.ram_size) {
        say(format!(
            "RAM: {:#x}+{:#x} -> {:#x}+{:#x}",
            ha.ram_ipa, ha.ram_size, hb.ram_ipa, hb.ram_size
        ));
    }
    if ha.vcpus != hb.vcpus {
        say(format!("vCPUs: {} -> {}", ha.vcpus, hb.vcpus));
    }
    for (i, (ca, cb)) in pa.cpus.iter().zip(&pb.cpus).enumerate() {
        if ca.pc != cb.pc {
            say(format!("vCPU {i}: pc {:#x} -> {:#x}", ca.pc, cb.pc));
        }
        if ca.pstate != cb.pstate {
            say(format!(
                "vCPU {i}: pstate {:#x} -> {:#x}",
                ca.pstate, cb.pstate
            ));
        }
        for n in 0..31 {
            if ca.x[n] != cb.x[n] {
                say(format!("vCPU {i}: x{n} {:#x} -> {:#x}", ca.x[n], cb.x[n]));
            }
        }
        let ra: std::collections::BTreeMap<u64, u64> = ca.regs.iter().copied().collect();
        let rb: std::collections::BTreeMap<u64, u64> = cb.regs.iter().copied().collect();
        for k in ra
            .keys()
            .chain(rb.keys())
            .collect::<std::collections::BTreeSet<_>>()
        {
            match (ra.get(k), rb.get(k)) {
                (Some(x), Some(y)) if x != y => {
                    say(format!("vCPU {i}: {} {x:#x} -> {y:#x}", name(*k)))
                }
                (Some(_), None) => say(format!("vCPU {i}: {} only in {}", name(*k), a.display())),
                (None, Some(_)) => say(format!("vCPU {i}: {} only in {}", name(*k), b.display())),
                _ => {}
            }
        }
    }
    let (ga, gb) = (pages(&pa), pages(&pb));
    let changed = ga.iter().zip(&gb).filter(|(x, y)| x != y).count();
    if changed > 0 {
        say(format!("RAM: {changed} page(s) differ"));
    }
    if pa.gic != pb.gic {
        say("vGIC state differs".into());
    }
    if pa.depends != pb.depends {
        say("the boot images they depend on differ".into());
    }
    if differences == 0 {
        println!("no differences");
    }
    Ok(())
}
