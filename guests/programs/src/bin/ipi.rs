//! `ipi`: every vCPU sends SGIs to every other vCPU as fast as it can, and each
//! side counts what it sent and what it received, per pair.
//!
//! Each CPU uses SGI number = its own index (so the receiver knows the sender on a
//! GICv3 too, where the acknowledge register does not say), and keeps at most one
//! SGI in flight per target: it sends the next only once the target has counted the
//! last one. An SGI sent while the same one is still pending would merge with it
//! (the architecture allows that), so with one in flight every SGI sent must be
//! received exactly once:
//!
//! * **lost**: a sender that waits for its target's count for `stall=S` seconds
//!   (default 60) of its own running time (gaps while the VM is paused, preempted or
//!   restored from a snapshot are not counted) fails with the pair's counts;
//! * **duplicated**: an SGI received when the receiver's count already equals the
//!   sender's is counted as a duplicate and fails the run.
//!
//! Interrupts stay masked at PSTATE: each CPU polls the acknowledge register
//! (GICv3 `ICC_IAR1_EL1`, GICv2 `GICC_IAR`) between sends, so no vector is needed.
//! The GIC (v2 or v3) and its addresses come from the device tree.
//!
//! Bootargs: `count=N` SGIs per ordered pair (default 2000), `stall=S`.
//!
//! Lines (boot CPU only):
//! ```text
//! ipi: gic vN, C cpus, N per pair
//! ipi: progress sent=X received=Y          (about once a second)
//! ipi: quiescing                           (every pair reached N; 2 s with no sends)
//! ipi: pair A->B sent=X received=Y         (each ordered pair)
//! ipi: total sent=X received=Y duplicates=D
//! ipi: PASS | FAIL <reason>
//! ```

#![no_std]
#![no_main]
#![deny(unsafe_op_in_unsafe_fn)]
#![deny(clippy::undocumented_unsafe_blocks)]

use core::arch::asm;
use core::sync::atomic::{AtomicU64, Ordering};
use rt::{Boot, Fail, fail, say, smp, sysreg};

rt::guest!("ipi", main);

/// GICv2 names at most 8 CPU interfaces; SGI numbers (= sender index) go to 15.
const MAX: usize = 8;

/// `SENT[a][b]`: SGIs CPU `a` has sent to CPU `b` (written by `a` only).
static SENT: [[AtomicU64; MAX]; MAX] = [const { [const { AtomicU64::new(0) }; MAX] }; MAX];
/// `RECV[b][a]`: SGIs CPU `b` has received from CPU `a` (written by `b` only).
static RECV: [[AtomicU64; MAX]; MAX] = [const { [const { AtomicU64::new(0) }; MAX] }; MAX];
/// Per CPU: duplicates received (an SGI with nothing outstanding from its sender).
static DUPS: [AtomicU64; MAX] = [const { AtomicU64::new(0) }; MAX];
/// Per CPU: 0 running, 1 done, 2 stalled (a lost SGI).
static STATE: [AtomicU64; MAX] = [const { AtomicU64::new(0) }; MAX];
/// Per CPU: the target it waited for when it stalled.
static STALLED_ON: [AtomicU64; MAX] = [const { AtomicU64::new(0) }; MAX];
/// Per CPU: its affinity (GICv3 SGI target) or CPU-interface mask (GICv2).
static TARGET: [AtomicU64; MAX] = [const { AtomicU64::new(0) }; MAX];
/// Per CPU: its GIC CPU interface is set up.
static READY: [AtomicU64; MAX] = [const { AtomicU64::new(0) }; MAX];
/// Set by the boot CPU once every pair reached the count: stop sending, keep
/// receiving (late duplicates are still caught) until `FINISH`.
static QUIESCE: AtomicU64 = AtomicU64::new(0);
static FINISH: AtomicU64 = AtomicU64::new(0);

static NCPUS: AtomicU64 = AtomicU64::new(0);
static COUNT: AtomicU64 = AtomicU64::new(0);
static STALL_TICKS: AtomicU64 = AtomicU64::new(0);
static V3: AtomicU64 = AtomicU64::new(0);
static GICD: AtomicU64 = AtomicU64::new(0);
/// GICv3: the redistributor region; GICv2: the CPU interface.
static GICR_OR_GICC: AtomicU64 = AtomicU64::new(0);
static GICR_SIZE: AtomicU64 = AtomicU64::new(0);

fn ld(a: &AtomicU64) -> u64 {
    a.load(Ordering::SeqCst)
}

fn st(a: &AtomicU64, v: u64) {
    a.store(v, Ordering::SeqCst)
}

// GIC registers are accessed with single plain loads and stores (no writeback
// addressing the compiler might pick), which a hypervisor can emulate.

fn r32(addr: u64) -> u32 {
    let v: u32;
    // SAFETY: `addr` is a GIC register from the device tree (MMU off: device memory).
    unsafe { asm!("ldr {v:w}, [{a}]", a = in(reg) addr, v = out(reg) v, options(nostack)) };
    v
}

fn w32(addr: u64, v: u32) {
    // SAFETY: as in `r32`.
    unsafe { asm!("str {v:w}, [{a}]", a = in(reg) addr, v = in(reg) v, options(nostack)) };
}

/// Sets up this CPU's side of the GIC: SGIs enabled, group 1, middle priority, the
/// CPU interface on with the lowest priority mask.
fn init_cpu(me: usize) -> Result<(), Fail> {
    let gicd = ld(&GICD);
    let base = ld(&GICR_OR_GICC);
    let prio = 0xa0a0_a0a0u32; // IPRIORITYR: 0xa0 for each of 4 SGIs
    if ld(&V3) != 0 {
        let aff = sysreg::affinity();
        let aff32 = ((aff >> 8) & 0xff00_0000) as u32 | (aff & 0xff_ffff) as u32;
        let mut rd = None;
        let mut off = 0;
        while off < ld(&GICR_SIZE) {
            if r32(base + off + 0xc) == aff32 {
                rd = Some(base + off);
                break;
            }
            if r32(base + off + 0x8) & (1 << 4) != 0 {
                break; // GICR_TYPER.Last
            }
            off += 0x20000;
        }
        let rd = rd.ok_or_else(|| fail!("cpu {me}: no redistributor for affinity 0x{aff:x}"))?;
        w32(rd + 0x14, 0); // GICR_WAKER: awake
        let sgi = rd + 0x10000;
        w32(sgi + 0x80, 0xffff_ffff); // IGROUPR0: group 1
        for i in 0..4 {
            w32(sgi + 0x400 + 4 * i, prio);
        }
        w32(sgi + 0x100, 0xffff); // ISENABLER0: SGIs 0-15
        // SAFETY: the GICv3 CPU interface belongs to this CPU: system-register
        // access on, every priority unmasked, group 1 on. PSTATE.I stays set.
        unsafe {
            asm!(
                "mrs {t}, icc_sre_el1", "orr {t}, {t}, #1", "msr icc_sre_el1, {t}", "isb",
                "msr icc_pmr_el1, {pmr}", "msr icc_bpr1_el1, xzr",
                "msr icc_ctlr_el1, xzr", "msr icc_igrpen1_el1, {one}", "isb",
                t = out(reg) _, pmr = in(reg) 0xffu64, one = in(reg) 1u64,
                options(nostack),
            )
        };
        st(&TARGET[me], aff);
    } else {
        // GICv2: ITARGETSR0 (banked) reads as this CPU's own interface mask.
        let mask = r32(gicd + 0x800) & 0xff;
        if mask == 0 {
            return Err(fail!("cpu {me}: GICD_ITARGETSR0 reads 0"));
        }
        w32(gicd + 0x80, 0); // IGROUPR0: group 0 (no security: signalled as IRQ)
        for i in 0..4 {
            w32(gicd + 0x400 + 4 * i, prio);
        }
        w32(gicd + 0x100, 0xffff);
        w32(base + 0x4, 0xff); // GICC_PMR
        w32(base, 1); // GICC_CTLR: enable
        st(&TARGET[me], mask as u64);
    }
    st(&READY[me], 1);
    Ok(())
}

/// Sends this CPU's SGI (number `me`) to CPU `to`.
fn send(me: usize, to: usize) {
    let t = ld(&TARGET[to]);
    if ld(&V3) != 0 {
        let aff0 = t & 0xff;
        let v = ((t >> 32) & 0xff) << 48
            | ((t >> 16) & 0xff) << 32
            | (aff0 >> 4) << 44
            | ((me as u64) << 24)
            | ((t >> 8) & 0xff) << 16
            | 1 << (aff0 & 0xf);
        // SAFETY: generates an SGI; the counter update before it is complete first.
        unsafe { asm!("dsb sy", "msr icc_sgi1r_el1, {}", "isb", in(reg) v, options(nostack)) };
    } else {
        // SAFETY: as above.
        unsafe { asm!("dsb sy", options(nostack)) };
        w32(ld(&GICD) + 0xf00, ((t as u32) << 16) | me as u32);
    }
}

/// Acknowledges one pending interrupt: `Some(source CPU)` for an SGI, `None` when
/// nothing is pending. Anything that is not an SGI fails the run.
fn receive(me: usize) -> Option<usize> {
    let (iar, id, src);
    if ld(&V3) != 0 {
        let v: u64;
        // SAFETY: acknowledging an interrupt at this CPU's own interface.
        unsafe { asm!("mrs {}, icc_iar1_el1", out(reg) v, options(nostack)) };
        iar = v;
        id = v & 0xff_ffff;
        src = id as usize;
    } else {
        iar = r32(ld(&GICR_OR_GICC) + 0xc) as u64;
        id = iar & 0x3ff;
        src = ((iar >> 10) & 7) as usize;
    }
    if id >= 1020 {
        return None;
    }
    if ld(&V3) != 0 {
        // SAFETY: ends the interrupt just acknowledged (EOImode 0: also deactivates).
        unsafe { asm!("msr icc_eoir1_el1, {}", "isb", in(reg) iar, options(nostack)) };
    } else {
        w32(ld(&GICR_OR_GICC) + 0x10, iar as u32);
    }
    if id >= 16 {
        rt::boot::fatal(fail!("cpu {me}: unexpected interrupt {id}"));
    }
    if ld(&V3) == 0 && src != id as usize {
        // GICv2 says the source CPU interface: our SGI number is its index too
        // (interface numbers follow vCPU indexes: checked in `main`).
        rt::boot::fatal(fail!("cpu {me}: SGI {id} from cpu interface {src}"));
    }
    Some(id as usize)
}

/// Counts every SGI pending here.
fn drain(me: usize, n: usize) {
    while let Some(src) = receive(me) {
        if src >= n {
            rt::boot::fatal(fail!("cpu {me}: SGI {src} from no CPU of this VM"));
        }
        let got = ld(&RECV[me][src]);
        if got >= ld(&SENT[src][me]) {
            st(&DUPS[me], ld(&DUPS[me]) + 1);
        } else {
            st(&RECV[me][src], got + 1);
        }
    }
}

/// The work loop of every CPU; the boot CPU (`report`) also prints progress and
/// decides when to quiesce.
fn work(me: usize, report: bool) {
    let n = ld(&NCPUS) as usize;
    let count = ld(&COUNT);
    let hz = sysreg::counter_frequency();
    let stall = ld(&STALL_TICKS);
    let mut last = sysreg::counter();
    let mut waited = 0u64;
    let mut next_report = last + hz;
    let mut to = me;
    while ld(&QUIESCE) == 0 {
        drain(me, n);
        // The next target in turn whose last SGI has been counted.
        let mut progressed = false;
        let mut pending = None;
        for _ in 0..n {
            to = (to + 1) % n;
            if to == me {
                continue;
            }
            let sent = ld(&SENT[me][to]);
            if sent >= count {
                continue;
            }
            if ld(&RECV[to][me]) == sent {
                st(&SENT[me][to], sent + 1);
                send(me, to);
                progressed = true;
                break;
            }
            pending = Some(to);
        }
        let now = sysreg::counter();
        let gap = now.wrapping_sub(last);
        last = now;
        // Only time spent running here counts towards a stall: a gap above 50 ms
        // between two turns of this loop is a pause, a preemption or a restore.
        if progressed || pending.is_none() || gap > hz / 20 {
            waited = 0;
        } else {
            waited += gap;
            if waited > stall {
                st(&STALLED_ON[me], pending.unwrap_or(0) as u64);
                st(&STATE[me], 2);
                return;
            }
        }
        if report {
            if now >= next_report {
                next_report = now + hz;
                let (s, r) = totals(n);
                say!("progress sent={s} received={r}");
            }
            let all = (0..n).all(|a| (0..n).all(|b| a == b || ld(&RECV[b][a]) >= count));
            if all || (0..n).any(|c| ld(&STATE[c]) == 2) {
                st(&QUIESCE, 1);
            }
        }
    }
    if report {
        return; // `main` drains through the quiescence itself
    }
    // Quiescent: no more sends; anything that still arrives is a duplicate.
    while ld(&FINISH) == 0 {
        drain(me, n);
    }
    drain(me, n);
    st(&STATE[me], 1);
}

fn totals(n: usize) -> (u64, u64) {
    let mut s = 0;
    let mut r = 0;
    for a in 0..n {
        for b in 0..n {
            s += ld(&SENT[a][b]);
            r += ld(&RECV[b][a]);
        }
    }
    (s, r)
}

fn secondary(index: usize) {
    if let Err(e) = init_cpu(index) {
        rt::boot::fatal(e);
    }
    while (0..ld(&NCPUS) as usize).any(|c| ld(&READY[c]) == 0) {
        core::hint::spin_loop();
    }
    work(index, false);
}

fn main(boot: &Boot) -> Result<(), Fail> {
    let number = |key: &str, default: u64| -> Result<u64, Fail> {
        boot.bootarg(key).map_or(Ok(default), |t| {
            t.parse().map_err(|_| fail!("bad {key}={t}"))
        })
    };
    let count = number("count", 2000)?;
    let stall_s = number("stall", 60)?;
    let hz = sysreg::counter_frequency();
    st(&COUNT, count);
    st(&STALL_TICKS, stall_s.saturating_mul(hz));

    let fdt = boot.fdt();
    let (v3, node) = if let Some(n) = fdt.find_compatible(&["arm,gic-v3"]) {
        (true, n)
    } else if let Some(n) = fdt.find_compatible(&["arm,cortex-a15-gic", "arm,gic-400"]) {
        (false, n)
    } else {
        return Err(fail!("no GICv2 or GICv3 in the device tree"));
    };
    let mut regs = node.reg().into_iter().flatten();
    let d = regs
        .next()
        .ok_or_else(|| fail!("the GIC node has no reg"))?;
    let r = regs
        .next()
        .ok_or_else(|| fail!("the GIC node has one reg only"))?;
    st(&V3, v3 as u64);
    st(&GICD, d.starting_address as u64);
    st(&GICR_OR_GICC, r.starting_address as u64);
    st(&GICR_SIZE, r.size.unwrap_or(0) as u64);

    let me = sysreg::affinity();
    let mut cpus = [0u64; MAX];
    let mut n = 0;
    for m in boot.cpus() {
        if n == MAX {
            return Err(fail!("more than {MAX} CPUs"));
        }
        cpus[n] = m;
        n += 1;
    }
    if n < 2 {
        return Err(fail!("{n} CPU: IPIs need two"));
    }
    let boot_index = cpus[..n]
        .iter()
        .position(|&m| m == me)
        .ok_or_else(|| fail!("boot CPU not in the DTB"))?;
    if boot_index != 0 {
        return Err(fail!("the boot CPU is cpu {boot_index}, expected 0"));
    }
    st(&NCPUS, n as u64);
    say!(
        "gic v{}, {n} cpus, {count} per pair",
        if v3 { 3 } else { 2 }
    );
    w32(d.starting_address as u64, 3); // GICD_CTLR: both groups on
    init_cpu(0)?;
    for (i, &mpidr) in cpus[..n].iter().enumerate().skip(1) {
        smp::start(i, mpidr, secondary).map_err(|e| fail!("CPU_ON cpu {i}: {e}"))?;
    }
    let start = sysreg::counter();
    while (0..n).any(|c| ld(&READY[c]) == 0) {
        if sysreg::counter().wrapping_sub(start) > 30 * hz {
            return Err(fail!("not every CPU came online within 30 s"));
        }
        core::hint::spin_loop();
    }
    if !v3 {
        for (c, t) in TARGET[..n].iter().enumerate() {
            if ld(t) != 1 << c {
                return Err(fail!("cpu {c}: CPU interface mask 0x{:x}", ld(t)));
            }
        }
    }
    work(0, true);
    st(&QUIESCE, 1);
    let stalled = (0..n).find(|&c| ld(&STATE[c]) == 2);
    if stalled.is_none() {
        say!("quiescing");
        let start = sysreg::counter();
        while sysreg::counter().wrapping_sub(start) < 2 * hz {
            drain(0, n);
        }
    }
    st(&FINISH, 1);
    drain(0, n);
    st(&STATE[0], 1);
    while (0..n).any(|c| ld(&STATE[c]) == 0) {
        core::hint::spin_loop();
    }
    let mut bad = 0;
    for a in 0..n {
        for b in (0..n).filter(|&b| b != a) {
            let (s, r) = (ld(&SENT[a][b]), ld(&RECV[b][a]));
            say!("pair {a}->{b} sent={s} received={r}");
            if s != r || s != count {
                bad += 1;
            }
        }
    }
    let dups: u64 = (0..n).map(|c| ld(&DUPS[c])).sum();
    let (s, r) = totals(n);
    say!("total sent={s} received={r} duplicates={dups}");
    if let Some(c) = stalled {
        let t = ld(&STALLED_ON[c]) as usize;
        return Err(fail!(
            "lost SGI: cpu {c} waited {stall_s} s for cpu {t} (sent {} received {})",
            ld(&SENT[c][t]),
            ld(&RECV[t][c])
        ));
    }
    if dups != 0 {
        return Err(fail!("{dups} duplicated SGI(s)"));
    }
    if bad != 0 {
        return Err(fail!("{bad} pair(s) with sent != received or != {count}"));
    }
    Ok(())
}
