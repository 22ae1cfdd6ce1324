//! Scheduling across VMs: a VM that stops leaves its physical CPUs to the VMs
//! still running, at full speed.

use crate::common::{guest, module, qemu, Qemu, DEADLINE};
use std::time::{Duration, Instant};

/// `spin` progress lines of VM `vm` in `text`: (count, counter value) each.
fn progress(text: &str, vm: usize) -> Vec<(u64, u64)> {
    let prefix = format!("[vm{vm}] spin: progress ");
    text.lines()
        .filter_map(|l| {
            let rest = l.strip_prefix(&prefix)?;
            let (count, rest) = rest.split_once('/')?;
            let counter = rest.split_once("counter=")?.1;
            Some((count.parse().ok()?, counter.trim().parse().ok()?))
        })
        .collect()
}

/// Counter ticks per progress line over `lines` (its first to its last).
fn ticks_per_line(lines: &[(u64, u64)]) -> u64 {
    let (first, last) = (lines[0], lines[lines.len() - 1]);
    (last.1 - first.1) / (lines.len() as u64 - 1)
}

/// Waits (the harness's deadline) until VM `vm` has printed `n` progress lines
/// after byte `from` of the guest console, and returns them.
fn progress_after(q: &mut Qemu, vm: usize, from: usize, n: usize) -> Vec<(u64, u64)> {
    let start = Instant::now();
    loop {
        let text = q.guest.text();
        let done = &text[from..text.rfind('\n').map_or(from, |i| (i + 1).max(from))];
        let lines = progress(done, vm);
        if lines.len() >= n {
            return lines;
        }
        if start.elapsed() > DEADLINE {
            q.fail(&format!(
                "vm{vm} printed {} progress line(s) after the point of interest, not {n}: it stalled",
                lines.len()
            ));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A VM powered off while one of its vCPUs was woken and waiting to preempt
/// another VM's vCPU on the same physical CPU. That CPU used to keep the moment
/// it was to preempt, which then lay in the past, and armed its EL2 timer for it
/// at every entry: the other VM's vCPU ran a few instructions per exit (a Debian
/// Linux reported RCU stalls, in the two-VM passthrough test, about one run in
/// ten under load).
///
/// Here `wakeoff`'s vCPU 1 shares physical CPU 0 with `spin`. After 300 ms,
/// `wakeoff` wakes it (an SGI) just after it blocked in WFI, and 2 ms later
/// powers its VM off from physical CPU 1. With `hv.min_run_us=5000`, `spin` (which
/// has just taken the CPU) is to be preempted only 5 ms after it was loaded, so
/// the power-off comes while vCPU 1 is woken and waiting (with the default 100 us
/// this moment is shorter than QEMU takes to deliver the SGI). `spin` must then
/// go on at least at half the speed it had before; with the fault it made no
/// progress at all (3 runs out of 3).
#[test]
fn a_vm_powered_off_while_its_vcpu_waits_to_preempt_leaves_the_cpu_to_the_others() {
    let spin = module(guest("spin")).bootargs("console=ttyAMA0 count=1000000000000 every=2000000");
    let wakeoff =
        module(guest("wakeoff")).bootargs("console=ttyAMA0 after_ms=300 delay_us=50 off_us=2000");
    let mut q = qemu()
        .smp(2)
        .hv_args("hv.min_run_us=5000")
        .vm(spin)
        .vm(wakeoff)
        .start();
    q.expect_debug("hv: scheduling slice 10000 us; a woken vCPU preempts after 5000 us")
        .expect_guest("[vm1] wakeoff: vCPU 1 starts and waits")
        .expect_debug("vm1: powered off (system-off)");
    let before = progress(&q.guest.text(), 0);
    let alone_from = q.guest.text().len();
    // The first line after the power-off may have been counted partly before it.
    let alone = progress_after(&mut q, 0, alone_from, 5);
    q.check(
        before.len() >= 4,
        &format!(
            "vm0 printed {} progress line(s) before vm1 powered off: too few to compare with (a faster machine needs a larger 'every')",
            before.len()
        ),
    );
    let (was, is) = (ticks_per_line(&before[1..]), ticks_per_line(&alone[1..]));
    eprintln!("spin: {was} ticks per progress line before vm1 powered off, {is} after");
    q.check(
        is <= 2 * was,
        &format!(
            "vm0 slowed down once vm1 was off: {is} ticks per progress line, against {was} before"
        ),
    );
}
