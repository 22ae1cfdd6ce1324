//! Issue 14 item 6, under load: two VMs of four vCPUs each on a four-CPU machine,
//! every vCPU sending SGIs to the other vCPUs of its VM as fast as it can (the
//! `ipi` guest: one SGI in flight per ordered pair, each side counting), while the
//! debug console pauses, resumes, snapshots and restores them over and over.
//!
//! A restore rewinds a guest's counters together with its vGIC (the SGIs in
//! flight included), so the guest's own accounting stays exact across it: the
//! test asserts on the totals the guests print at the end (every pair sent and
//! received exactly `count`, no duplicate, no lost SGI, which the guest reports
//! as a stall), that both VMs finish (no deadlock), that every console command was
//! answered, and that the debug console printed no error.

use crate::common::{self, guest, module, qemu, Qemu};
use std::time::{Duration, Instant};

/// SGIs per ordered pair: 12 pairs per VM. Under TCG on a loaded 2-core machine
/// a VM manages 50 to 100 round trips a second, so a VM runs for a minute or more.
const COUNT: u64 = 400;
/// Console cycles each VM goes through (a cycle: pause, save, restore, resume,
/// then a save of the running VM or a rollback to it), and the fewest it must have
/// gone through before its guest finished, so the run proves something (a faster
/// machine would need a larger `COUNT`).
const CYCLES: usize = 3;
const MIN_CYCLES: usize = 2;
/// Machine memory: each VM gets about 120 MiB, which a snapshot scans page by page
/// (a save of a 500 MiB VM takes most of a minute under a loaded TCG).
const MEMORY: &str = "320M";

/// Types `command` on the debug console and waits (deadline: the harness's) for
/// `answer` in what it prints from then on.
fn ask(q: &mut Qemu, command: &str, answer: &str) {
    let mark = q.debug.text().len();
    q.debug.write(format!("{command}\r").as_bytes());
    let start = Instant::now();
    while !q.debug.text()[mark..].contains(answer) {
        if start.elapsed() > common::DEADLINE {
            q.fail(&format!(
                "'{command}' was not answered with {answer:?}: a deadlock?"
            ));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn ipis_survive_pause_resume_and_snapshots(gic: u8) {
    let ipi = || module(guest("ipi")).bootargs(&format!("console=ttyAMA0 count={COUNT}"));
    let mut q = qemu()
        .smp(4)
        .memory(MEMORY)
        .gic(gic)
        .vm(ipi())
        .vm(ipi())
        .start();
    q.expect_debug("hv: debug console: type 'help' for commands");
    q.expect_guest("[vm0] ipi: progress")
        .expect_guest("[vm1] ipi: progress");
    let mut cycles = [0usize; 2];
    let mut live_slot = [false; 2];
    let mut done = [false; 2];
    while !(done[0] && done[1]) {
        for vm in 0..2 {
            // Stop once the guest quiesces: it powers off 2 s later, and a command
            // to a VM that is off would (rightly) be an error.
            if done[vm]
                || cycles[vm] == CYCLES
                || q.guest.contains(&format!("[vm{vm}] ipi: quiescing"))
            {
                done[vm] = true;
                continue;
            }
            let n = cycles[vm];
            // Paused: save and restore with no guest progress in between.
            ask(&mut q, &format!("pause vm{vm}"), &format!("vm{vm}: paused"));
            ask(
                &mut q,
                &format!("snapshot save vm{vm} p{vm}"),
                &format!("vm{vm}: saved to slot 'p{vm}'"),
            );
            ask(
                &mut q,
                &format!("snapshot restore vm{vm} p{vm}"),
                &format!("vm{vm}: restored from slot 'p{vm}'"),
            );
            ask(
                &mut q,
                &format!("resume vm{vm}"),
                &format!("vm{vm}: resumed"),
            );
            // Running: every other cycle takes a snapshot of the running VM, and the
            // cycle after rolls it back there (SGIs in flight included).
            if n % 2 == 0 {
                ask(
                    &mut q,
                    &format!("snapshot save vm{vm} r{vm}"),
                    &format!("vm{vm}: saved to slot 'r{vm}'"),
                );
                live_slot[vm] = true;
            } else if live_slot[vm] {
                ask(
                    &mut q,
                    &format!("snapshot restore vm{vm} r{vm}"),
                    &format!("vm{vm}: restored from slot 'r{vm}'"),
                );
            }
            cycles[vm] += 1;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let deadline = Duration::from_secs(600);
    for vm in 0..2 {
        let end = Instant::now();
        while !q.guest.contains(&format!("[vm{vm}] ipi: PASS"))
            && !q.guest.contains(&format!("[vm{vm}] ipi: FAIL"))
        {
            if end.elapsed() > deadline {
                q.fail(&format!(
                    "vm{vm} did not finish within {deadline:?}: a deadlock?"
                ));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    let text = q.guest.text();
    for vm in 0..2 {
        let p = format!("[vm{vm}] ipi: ");
        q.check(
            !text.contains(&format!("{p}FAIL")),
            &format!("vm{vm} failed"),
        );
        for a in 0..4 {
            for b in (0..4).filter(|&b| b != a) {
                let want = format!("{p}pair {a}->{b} sent={COUNT} received={COUNT}\n");
                q.check(text.contains(&want), &format!("vm{vm}: no line {want:?}"));
            }
        }
        let total = 12 * COUNT;
        q.check(
            text.contains(&format!(
                "{p}total sent={total} received={total} duplicates=0\n"
            )),
            &format!("vm{vm}: totals are not {total} sent and received without duplicates"),
        );
        q.check(
            text.contains(&format!("{p}PASS")),
            &format!("vm{vm} did not pass"),
        );
        q.check(
            cycles[vm] >= MIN_CYCLES,
            &format!(
                "vm{vm} went through {} console cycles, fewer than {MIN_CYCLES}: raise COUNT",
                cycles[vm]
            ),
        );
    }
    q.expect_debug("vm0: powered off (system-off)")
        .expect_debug("vm1: powered off (system-off)");
    let debug = q.debug.text().to_lowercase();
    q.check(
        !debug.contains("error") && !debug.contains("panic"),
        "the debug console reported an error",
    );
    eprintln!("console cycles: vm0 {}, vm1 {}", cycles[0], cycles[1]);
}

#[test]
fn ipis_are_neither_lost_nor_duplicated_under_pause_and_snapshots_gicv3() {
    ipis_survive_pause_resume_and_snapshots(3);
}

#[test]
fn ipis_are_neither_lost_nor_duplicated_under_pause_and_snapshots_gicv2() {
    ipis_survive_pause_resume_and_snapshots(2);
}
