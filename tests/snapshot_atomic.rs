//! Issue 13 item 5, a restore from the host that fails cleanly: the hypervisor
//! keeps the frames as they arrive (in the snapshot pool, or without one in a
//! little of its heap) while the VM runs on, and restores them at once when the
//! stream is whole. The tests cut a restore in the middle of RAM (playing the
//! host side on QEMU's TCP debug console): the VM must run on as it was, neither
//! paused nor partly restored, and the pool must hold nothing of it; a whole
//! restore afterwards (`cargo xtask snapshot restore`) must take the guest back
//! to where it was saved. A stream larger than the room kept for it is written
//! out as it arrives from the moment it outgrows the room, and still restores.

use crate::common::{self, guest, qemu, Qemu};
use hypervisor::snapshot::{frame, link, MAGIC};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::{Duration, Instant};

/// The spin guest prints its count every `EVERY` turns.
const EVERY: u64 = 100_000_000;

/// The guest's counts so far, from complete lines.
fn counts(q: &Qemu) -> Vec<u64> {
    let text = q.guest.text();
    let complete = &text[..text.rfind('\n').map_or(0, |i| i + 1)];
    complete
        .lines()
        .filter_map(|l| {
            l.strip_prefix("spin: progress ")?
                .split('/')
                .next()?
                .parse()
                .ok()
        })
        .collect()
}

/// Waits until the guest has printed `more` counts after the first `seen`; returns
/// every count printed after those `seen`.
fn counts_after(q: &Qemu, seen: usize, more: usize, what: &str) -> Vec<u64> {
    let start = Instant::now();
    loop {
        let c = counts(q);
        if c.len() >= seen + more {
            return c[seen..].to_vec();
        }
        if start.elapsed() > common::DEADLINE {
            q.fail(&format!("{what}: the guest printed no new count"));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn connect(q: &Qemu) -> TcpStream {
    let start = Instant::now();
    loop {
        if let Ok(s) = TcpStream::connect(("127.0.0.1", q.debug_port())) {
            s.set_read_timeout(Some(Duration::from_millis(200)))
                .unwrap();
            return s;
        }
        if start.elapsed() > Duration::from_secs(10) {
            q.fail("cannot connect to the debug console");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// Reads from `s` until `done(bytes)`; returns the bytes.
fn read_until(q: &Qemu, s: &mut TcpStream, done: impl Fn(&[u8]) -> bool) -> Vec<u8> {
    let mut got = Vec::new();
    let mut buf = [0u8; 65536];
    let start = Instant::now();
    while !done(&got) {
        if start.elapsed() > common::DEADLINE {
            q.fail(&format!(
                "the hypervisor did not answer; it sent: {}",
                String::from_utf8_lossy(&got[got.len().saturating_sub(300)..])
            ));
        }
        match s.read(&mut buf) {
            Ok(0) => q.fail("the debug console closed"),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(_) => {}
        }
    }
    got
}

/// Runs `cargo xtask snapshot ARGS... FILE` against the debug console; its stdout.
fn xtask(q: &Qemu, args: &[&str], file: &Path) -> String {
    let out = common::xtask()
        .arg("snapshot")
        .args(args)
        .args(["--port", &q.debug_port().to_string()])
        .arg(file)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    q.check(
        out.status.success(),
        &format!(
            "cargo xtask snapshot {args:?} failed: {stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        ),
    );
    stdout
}

/// A spin guest in a 64 MiB VM, as a bundle in `dir`.
fn spin_bundle(dir: &Path) -> std::path::PathBuf {
    let mut w = hypervisor::bundle::cpio::Writer::new();
    w.file("vm0/kernel", &std::fs::read(guest("spin")).unwrap())
        .file(
            "vm0/cmdline",
            format!("console=ttyAMA0 count=1000000000000 every={EVERY}\n").as_bytes(),
        )
        .file("vm0/config", b"cpus=1\nmem=64M\n");
    let bundle = dir.join("spin.cpio");
    std::fs::write(&bundle, w.finish()).unwrap();
    bundle
}

/// Boots the spin bundle with the hypervisor's `args`.
fn boot(dir: &Path, args: &str) -> Qemu {
    let mut q = qemu().smp(1).append(args).initrd(&spin_bundle(dir)).start();
    q.expect_debug("hv: debug console: type 'help' for commands");
    q
}

fn scratch(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("hv-snapatomic-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Cuts a restore after its first RAM frame; `place`: where the console says it
/// keeps the frames.
fn cut_restore_leaves_the_vm_as_it_was(args: &str, place: &str) {
    let dir = scratch(place.split(' ').next_back().unwrap_or("x"));
    let file = dir.join("vm0.snap");
    let mut q = boot(&dir, args);
    q.expect_guest(&format!("spin: progress {}/", 2 * EVERY));
    q.disconnect_debug();
    xtask(&q, &["save", "--vm", "0"], &file);
    let saved = *counts(&q).last().unwrap();
    let bytes = std::fs::read(&file).unwrap();

    // The guest counts well past the snapshot, so a restore would show.
    let seen = counts(&q).len();
    counts_after(&q, seen, 3, "after the save");

    // A restore cut after its first RAM frame.
    let mut s = connect(&q);
    s.write_all(b"\rsnapshot receive vm0\r").unwrap();
    let got = read_until(&q, &mut s, |b| contains(b, b"HVSNAP-READY 2"));
    q.check(
        contains(&got, format!("receiving into {place}").as_bytes()),
        &format!(
            "the console did not say the restore is received into {place}: {}",
            String::from_utf8_lossy(&got)
        ),
    );
    let mut sent = MAGIC.to_vec();
    let mut frames = 0u32;
    for f in frame::split(&bytes[MAGIC.len()..], MAGIC.len()) {
        let (at, f) = f.unwrap();
        sent.extend_from_slice(&bytes[at..at + frame::HEADER_LEN + f.payload.len() + 4]);
        frames += 1;
        if f.kind == frame::KIND_PAGES || f.kind == frame::KIND_RUN {
            break;
        }
    }
    s.write_all(&sent).unwrap();
    read_until(&q, &mut s, |b| contains(b, &link::message(b'A', frames)));
    let before_cut = counts(&q);
    drop(s);
    q.reconnect_debug();
    q.expect_debug("error: no data from the host for 10 s after ");
    let debug = q.debug.text();
    q.check(
        !debug.contains("stays paused") && !debug.contains("partly restored"),
        "a restore received into the pool left the VM paused or partly restored",
    );
    // It ran on through the transfer and after it, from its own count.
    let last = *before_cut.last().unwrap();
    let after = counts_after(&q, before_cut.len(), 2, "after the cut restore");
    q.check(
        after.iter().all(|&c| c > last),
        &format!("the count went back after a cut restore: {last} then {after:?}"),
    );
    // Nothing of it is left in the pool.
    let list = crate::ask(&mut q, "snapshot list", "hv>");
    q.check(
        !list.contains("restore in progress"),
        "the cut restore's frames are still in the pool",
    );

    // A whole restore takes the guest back to where it was saved.
    q.disconnect_debug();
    let seen = counts(&q).len();
    let out = xtask(&q, &["restore", "--vm", "0"], &file);
    q.check(
        out.contains("restored vm0 from")
            && out.contains(&format!("hypervisor: vm0: receiving into {place}"))
            && !out.contains("outgrew"),
        &format!("cargo xtask snapshot restore did not report a whole restore into {place}: {out}"),
    );
    let now = counts(&q);
    let latest = *now.last().unwrap();
    let after = counts_after(&q, now.len(), 2, "after the restore");
    q.check(
        after.iter().any(|&c| c <= saved + 2 * EVERY && c < latest),
        &format!(
            "after the restore the guest did not count from the saved {saved}: {after:?} (it was at {latest}, {seen} counts before)"
        ),
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_restore_cut_in_the_middle_of_ram_leaves_the_vm_running_as_it_was() {
    cut_restore_leaves_the_vm_as_it_was("hv.snapshot_pool=96M", "the snapshot pool");
}

#[test]
fn without_a_pool_a_small_restore_cut_in_the_middle_of_ram_leaves_the_vm_as_it_was() {
    cut_restore_leaves_the_vm_as_it_was("hv.stay=0", "hypervisor memory");
}

#[test]
fn a_restore_larger_than_its_room_is_written_out_as_it_arrives_and_completes() {
    let dir = scratch("outgrown");
    let file = dir.join("vm0.snap");
    let big = dir.join("big.snap");
    let mut q = boot(&dir, "hv.stay=0");
    q.expect_guest(&format!("spin: progress {}/", 2 * EVERY));
    q.disconnect_debug();
    // Every page's data (no pages as booted), for the host to re-encode.
    xtask(&q, &["save", "--self-contained", "--vm", "0"], &file);
    let saved = *counts(&q).last().unwrap();

    // The same snapshot with 2.3 MiB of data pages above the guest's own memory
    // (16 MiB into its RAM): more than the 2 MiB of heap kept for a restore.
    let bytes = std::fs::read(&file).unwrap();
    let p = hypervisor::snapshot::decode(&bytes).unwrap();
    let page = hypervisor::snapshot::PAGE as u64;
    let mut pages: Vec<Option<Vec<u8>>> = vec![None; (p.header.ram_size / page) as usize];
    p.for_each_page(|ipa, d| {
        pages[((ipa - p.header.ram_ipa) / page) as usize] = d.map(<[u8]>::to_vec)
    });
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    for n in 0..600 {
        let mut d = vec![0u8; page as usize];
        for b in d.iter_mut() {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            *b = x as u8;
        }
        pages[(16 << 20) / page as usize + n] = Some(d);
    }
    let mut out = Vec::new();
    hypervisor::snapshot::encode(
        &p.header,
        &p.cpus,
        p.gic,
        |ipa, buf| match &pages[((ipa - p.header.ram_ipa) / page) as usize] {
            Some(d) => buf.copy_from_slice(d),
            None => buf.fill(0),
        },
        &mut out,
    );
    q.check(out.len() > 2 << 20, "the large snapshot is not over 2 MiB");
    std::fs::write(&big, &out).unwrap();

    // The guest counts well past the snapshot, so the restore shows.
    let seen = counts(&q).len();
    counts_after(&q, seen, 3, "after the save");
    let latest = *counts(&q).last().unwrap();
    let out = xtask(&q, &["restore", "--vm", "0"], &big);
    q.check(
        out.contains("restored vm0 from")
            && out.contains("hypervisor: vm0: receiving into hypervisor memory (up to 2 MiB)")
            && out.contains("hypervisor: vm0: the snapshot outgrew the room kept for it"),
        &format!(
            "cargo xtask snapshot restore did not report a restore that outgrew its room: {out}"
        ),
    );
    let after = counts_after(&q, counts(&q).len(), 2, "after the restore");
    q.check(
        after.iter().any(|&c| c <= saved + 2 * EVERY && c < latest),
        &format!("after the restore the guest did not count from the saved {saved}: {after:?}"),
    );
    q.reconnect_debug();
    crate::ask(&mut q, "snapshot list", "hv>");
    let _ = std::fs::remove_dir_all(&dir);
}
