//! Issue 13 item 5: a connection dropped in the middle of a streamed snapshot.
//! The test plays the host side itself on QEMU's TCP debug console, so it cuts
//! the stream at a known frame: after the hypervisor's first frames of a save,
//! and after the header and registers (before any RAM) of a restore. The VM must
//! run on as it was, the console must say the transfer was abandoned, and a save
//! afterwards must work.

use crate::common::{self, guest, module, qemu, Qemu};
use hypervisor::snapshot::{frame, MAGIC};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

const EVERY: u64 = 100_000_000;

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

/// Waits until the guest prints a count above `above`.
fn count_above(q: &Qemu, above: u64, what: &str) -> u64 {
    let start = Instant::now();
    loop {
        if let Some(&l) = counts(q).last().filter(|&&l| l > above) {
            return l;
        }
        if start.elapsed() > common::DEADLINE {
            q.fail(&format!("{what}: the guest printed no count above {above}"));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Connects to the debug console (the harness has let go of it), retrying while
/// QEMU notices the previous client gone.
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

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn a_connection_dropped_during_a_save_or_a_restore_leaves_the_vm_running_as_it_was() {
    let spin = module(guest("spin")).bootargs(&format!(
        "console=ttyAMA0 count=1000000000000 every={EVERY}"
    ));
    let mut q = qemu().smp(1).vm(spin).start();
    q.expect_debug("hv: debug console: type 'help' for commands");
    count_above(&q, 2 * EVERY, "before the save");
    q.disconnect_debug();

    // A save cut after its first frames: the hypervisor gets no acknowledgement.
    let mut s = connect(&q);
    s.write_all(b"\rsnapshot send vm0\r").unwrap();
    let got = read_until(&q, &mut s, |b| {
        // The announcement, the magic and a few frames' worth of bytes.
        contains(b, b"HVSNAP-STREAM 2") && b.len() > 4096
    });
    let at = got
        .windows(MAGIC.len())
        .position(|w| w == MAGIC)
        .unwrap_or_else(|| q.fail("no snapshot magic after HVSNAP-STREAM"));
    let first = frame::split(&got[at + MAGIC.len()..], 0).next();
    q.check(
        matches!(first, Some(Ok((_, f))) if f.kind == frame::KIND_HEAD),
        "the stream does not start with a header frame",
    );
    drop(s);
    q.reconnect_debug();
    q.expect_debug("the connection dropped; vm0 runs on as it was");
    let cut = counts(&q).last().copied().unwrap_or(0);
    count_above(&q, cut + EVERY, "after the dropped save");

    // A save afterwards works: the whole stream, acknowledged, makes a file.
    q.disconnect_debug();
    let dir = std::env::temp_dir().join(format!("hv-snapdrop-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("vm0.snap");
    let out = common::xtask()
        .args(["snapshot", "save", "--port", &q.debug_port().to_string()])
        .arg(&file)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    q.check(
        out.status.success() && stdout.contains("saved vm0 to"),
        &format!(
            "the save after a dropped one failed: {stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        ),
    );
    let bytes = std::fs::read(&file).unwrap();
    let _ = std::fs::remove_dir_all(&dir);

    // A restore cut after the header and registers, before any RAM: the VM was
    // not even paused, and runs on.
    let mut s = connect(&q);
    s.write_all(b"\rsnapshot receive vm0\r").unwrap();
    read_until(&q, &mut s, |b| contains(b, b"HVSNAP-READY 2"));
    let mut prelude = MAGIC.to_vec();
    for f in frame::split(&bytes[MAGIC.len()..], MAGIC.len()) {
        let (at, f) = f.unwrap();
        if f.kind != frame::KIND_HEAD && f.kind != frame::KIND_VCPU {
            break;
        }
        prelude.extend_from_slice(&bytes[at..at + frame::HEADER_LEN + f.payload.len() + 4]);
    }
    s.write_all(&prelude).unwrap();
    // The hypervisor acknowledges what it took, then the line goes.
    read_until(&q, &mut s, |b| {
        contains(b, &hypervisor::snapshot::link::message(b'A', 2))
    });
    drop(s);
    q.reconnect_debug();
    q.expect_debug("error: no data from the host for 10 s after 0 of ");
    q.check(
        !q.debug.text().contains("stays paused"),
        "a restore cut before RAM paused the VM",
    );
    let cut = counts(&q).last().copied().unwrap_or(0);
    count_above(&q, cut + EVERY, "after the dropped restore");
}
