//! `latency`: how long an interrupt takes to reach a vCPU that is not running.
//!
//! `role=pair` (the default) needs two CPUs: CPU 0 is the *sender*, CPU 1 the
//! *receiver*. Each round has two measurements, both taken at the receiver's
//! interrupt handler entry (the first instructions of its IRQ vector read
//! CNTVCT_EL0):
//!
//! * **timer**: the receiver arms its EL1 virtual timer `delay_us` ahead and waits
//!   in WFI; latency = handler entry - the timer's deadline (CNTV_CVAL_EL0).
//! * **ipi**: the receiver sends SGI 2 ("go") to the sender and waits in WFI. The
//!   sender, woken by it, spins `delay_us` (so it has run a while, as a busy vCPU
//!   has), stamps the counter and sends SGI 1 to the receiver, then, with
//!   `wait=spin` (the default), spins until the receiver has taken it (a guest
//!   waiting for an IPI's completion, as Linux's `smp_call_function` does), or
//!   with `wait=wfi` waits in WFI for the next round's "go"; latency = handler
//!   entry - the stamp.
//!
//! Both CPUs read one counter (the virtual counter; its offset is the same for
//! every vCPU of a VM), so the differences are one-way times. Under QEMU
//! `-icount shift=0` with `-cpu max` a tick is one instruction.
//!
//! `role=competitor` is the other guest on the receiver's CPU: it runs
//! `competitor=spin` (a loop that never traps, the default), `wfe` (a loop of WFE)
//! or `wfi` (WFI with nothing to wake it but a timer at its end) for `ms` ms of the
//! counter (default 200), then reports and passes.
//!
//! Lines (pair): `latency: cpus=2 rounds=R delay_us=D wait=W counter_hz=F`, then
//! `latency: ipi ticks min=A median=B max=C` and `latency: timer ticks min=A
//! median=B max=C`, then PASS. Competitor: `latency: competitor spin for M ms`,
//! `latency: competitor done after M ms (N loops)`, then PASS. Needs a GICv3.

#![no_std]
#![no_main]
#![deny(unsafe_op_in_unsafe_fn)]
#![deny(clippy::undocumented_unsafe_blocks)]

use core::arch::{asm, global_asm};
use core::sync::atomic::{AtomicU64, Ordering};
use rt::{Boot, Fail, fail, say, smp, sysreg};

rt::guest!("latency", main);

const MAX_ROUNDS: usize = 64;
/// SGI the sender sends the receiver (measured), and the receiver's "go".
const SGI_IPI: u64 = 1;
const SGI_GO: u64 = 2;

static GICD: AtomicU64 = AtomicU64::new(0);
static GICR: AtomicU64 = AtomicU64::new(0);
static VTIMER: AtomicU64 = AtomicU64::new(27);
static SENDER_MPIDR: AtomicU64 = AtomicU64::new(0);
static RECEIVER_MPIDR: AtomicU64 = AtomicU64::new(0);
static ROUNDS: AtomicU64 = AtomicU64::new(0);
static DELAY: AtomicU64 = AtomicU64::new(0);

/// Written by the handler: counts and the entry stamps.
static IPI_SEEN: AtomicU64 = AtomicU64::new(0);
static IPI_AT: AtomicU64 = AtomicU64::new(0);
static GO_SEEN: AtomicU64 = AtomicU64::new(0);
static TIMER_SEEN: AtomicU64 = AtomicU64::new(0);
static TIMER_AT: AtomicU64 = AtomicU64::new(0);
static OTHER_IRQS: AtomicU64 = AtomicU64::new(0);
/// The sender's stamp, just before its SGI.
static SENT_AT: AtomicU64 = AtomicU64::new(0);
static RECEIVER_READY: AtomicU64 = AtomicU64::new(0);
static RECEIVER_DONE: AtomicU64 = AtomicU64::new(0);
static IPI_LAT: [AtomicU64; MAX_ROUNDS] = [const { AtomicU64::new(0) }; MAX_ROUNDS];
static TIMER_LAT: [AtomicU64; MAX_ROUNDS] = [const { AtomicU64::new(0) }; MAX_ROUNDS];

// GIC registers are accessed with plain `ldr`/`str` (no writeback addressing,
// which a hypervisor cannot emulate: ESR_EL2.ISV is clear for it).
fn read32(addr: u64) -> u32 {
    let v: u32;
    // SAFETY: a register of the GIC found in the DTB (Device memory, MMU off).
    unsafe { asm!("ldr {:w}, [{}]", out(reg) v, in(reg) addr, options(nostack)) };
    v
}

fn write32(addr: u64, v: u32) {
    // SAFETY: as in `read32`.
    unsafe { asm!("str {:w}, [{}]", in(reg) v, in(reg) addr, options(nostack)) };
}

fn read64(addr: u64) -> u64 {
    let v: u64;
    // SAFETY: as in `read32` (GICR_TYPER is a 64-bit register).
    unsafe { asm!("ldr {}, [{}]", out(reg) v, in(reg) addr, options(nostack)) };
    v
}

/// Load and store, not fetch_add: exclusives are not dependable with the MMU off.
fn bump(a: &AtomicU64) {
    a.store(a.load(Ordering::SeqCst) + 1, Ordering::SeqCst);
}

/// The IRQ handler, entered from the vector with the counter read at its entry.
/// Integer work only: the interrupted code's FP/SIMD registers are not saved.
extern "C" fn lat_irq(stamp: u64) {
    let iar: u64;
    // SAFETY: acknowledging the highest-priority pending group 1 interrupt.
    unsafe { asm!("mrs {}, icc_iar1_el1", out(reg) iar, options(nomem, nostack)) };
    let intid = iar & 0xff_ffff;
    if intid >= 1020 {
        return; // spurious: nothing to end
    }
    if intid == SGI_IPI {
        IPI_AT.store(stamp, Ordering::SeqCst);
        bump(&IPI_SEEN);
    } else if intid == SGI_GO {
        bump(&GO_SEEN);
    } else if intid == VTIMER.load(Ordering::SeqCst) {
        TIMER_AT.store(stamp, Ordering::SeqCst);
        // SAFETY: disables this CPU's virtual timer: its line drops.
        unsafe { asm!("msr cntv_ctl_el0, xzr", "isb", options(nomem, nostack)) };
        bump(&TIMER_SEEN);
    } else {
        bump(&OTHER_IRQS);
    }
    // SAFETY: ends the interrupt just acknowledged (EOImode 0: also deactivates).
    unsafe { asm!("msr icc_eoir1_el1, {}", "isb", in(reg) iar, options(nomem, nostack)) };
}

// Vectors: the IRQ from EL1 with SP_EL1 (offset 0x280) stamps the counter first
// and calls `lat_irq`; every other entry goes to the runtime's vector, which
// reports it.
global_asm!(
    ".section .text.lat_vectors, \"ax\"",
    ".balign 2048",
    ".global lat_vectors",
    "lat_vectors:",
    ".irp n, 0,1,2,3,4",
    "    .balign 0x80",
    "    b rt_vectors + \\n * 0x80",
    ".endr",
    "    .balign 0x80",
    "    sub sp, sp, #160",
    "    stp x0, x1, [sp, #0]",
    "    isb",
    "    mrs x0, cntvct_el0",
    "    b lat_irq_entry",
    ".irp n, 6,7,8,9,10,11,12,13,14,15",
    "    .balign 0x80",
    "    b rt_vectors + \\n * 0x80",
    ".endr",
    "lat_irq_entry:",
    "    stp x2, x3, [sp, #16]",
    "    stp x4, x5, [sp, #32]",
    "    stp x6, x7, [sp, #48]",
    "    stp x8, x9, [sp, #64]",
    "    stp x10, x11, [sp, #80]",
    "    stp x12, x13, [sp, #96]",
    "    stp x14, x15, [sp, #112]",
    "    stp x16, x17, [sp, #128]",
    "    stp x18, x30, [sp, #144]",
    "    bl {handler}",
    "    ldp x2, x3, [sp, #16]",
    "    ldp x4, x5, [sp, #32]",
    "    ldp x6, x7, [sp, #48]",
    "    ldp x8, x9, [sp, #64]",
    "    ldp x10, x11, [sp, #80]",
    "    ldp x12, x13, [sp, #96]",
    "    ldp x14, x15, [sp, #112]",
    "    ldp x16, x17, [sp, #128]",
    "    ldp x18, x30, [sp, #144]",
    "    ldp x0, x1, [sp, #0]",
    "    add sp, sp, #160",
    "    eret",
    handler = sym lat_irq,
);

/// This CPU's GIC: its redistributor awake, SGIs and PPIs in group 1, `enable`
/// (a bitmap of INTIDs 0-31) enabled, the CPU interface on, our vectors, IRQs
/// unmasked.
fn cpu_init(enable: u32) -> Result<(), Fail> {
    let me = sysreg::affinity();
    let aff = ((me >> 32) & 0xff) << 24 | (me & 0xff_ffff);
    let mut rd = GICR.load(Ordering::SeqCst);
    loop {
        let typer = read64(rd + 0x8);
        if typer >> 32 == aff {
            break;
        }
        if typer & (1 << 4) != 0 {
            return Err(fail!("no redistributor for mpidr 0x{me:x}"));
        }
        rd += 0x20000;
    }
    // GICR_WAKER: clear ProcessorSleep, wait for ChildrenAsleep to clear.
    write32(rd + 0x14, read32(rd + 0x14) & !(1 << 1));
    while read32(rd + 0x14) & (1 << 2) != 0 {
        core::hint::spin_loop();
    }
    let sgi = rd + 0x10000;
    write32(sgi + 0x80, !0); // IGROUPR0: group 1
    write32(sgi + 0x100, enable); // ISENABLER0
    while read32(rd) & (1 << 3) != 0 {
        core::hint::spin_loop(); // GICR_CTLR.RWP
    }
    unsafe extern "C" {
        static lat_vectors: u8;
    }
    let vectors = (&raw const lat_vectors) as usize as u64;
    // SAFETY: the CPU interface through system registers (SRE), all priorities
    // unmasked, group 1 on; VBAR_EL1 to our vectors (the address of a linked
    // symbol); then IRQs unmasked at PSTATE.
    unsafe {
        asm!(
            "mrs {t}, icc_sre_el1",
            "orr {t}, {t}, #1",
            "msr icc_sre_el1, {t}",
            "isb",
            "mov {t}, #0xff",
            "msr icc_pmr_el1, {t}",
            "mov {t}, #1",
            "msr icc_igrpen1_el1, {t}",
            "msr vbar_el1, {v}",
            "isb",
            "msr daifclr, #2",
            t = out(reg) _,
            v = in(reg) vectors,
            options(nostack),
        )
    };
    Ok(())
}

/// ICC_SGI1R_EL1 for SGI `intid` to the CPU with affinity `mpidr`.
fn send_sgi(intid: u64, mpidr: u64) {
    let v = (intid << 24)
        | (((mpidr >> 32) & 0xff) << 48)
        | (((mpidr >> 16) & 0xff) << 32)
        | (((mpidr >> 8) & 0xff) << 16)
        | (((mpidr & 0xff) >> 4) << 44)
        | (1 << (mpidr & 0xf));
    // SAFETY: generates an SGI; the stamp before it is ordered by the barrier.
    unsafe { asm!("dsb sy", "msr icc_sgi1r_el1, {}", "isb", in(reg) v, options(nostack)) };
}

/// Waits in WFI until the handler has brought `a` to `value`. IRQs are masked
/// around the check, so one that comes between the check and the WFI still ends
/// the WFI (and is taken once they are unmasked).
fn wait_for(a: &AtomicU64, value: u64) {
    loop {
        // SAFETY: masks IRQs at PSTATE; no memory effects.
        unsafe { asm!("msr daifset, #2", options(nomem, nostack)) };
        let done = a.load(Ordering::SeqCst) >= value;
        if !done {
            // SAFETY: waits for an interrupt; no memory effects.
            unsafe { asm!("wfi", options(nomem, nostack)) };
        }
        // SAFETY: unmasks IRQs: a pending one is taken here.
        unsafe { asm!("msr daifclr, #2", options(nomem, nostack)) };
        if done {
            return;
        }
    }
}

fn spin_ticks(ticks: u64) {
    let start = sysreg::counter();
    while sysreg::counter().wrapping_sub(start) < ticks {
        core::hint::spin_loop();
    }
}

/// The receiver: timer and IPI rounds.
fn receiver(_index: usize) {
    if cpu_init((1 << SGI_IPI) | (1 << VTIMER.load(Ordering::SeqCst))).is_err() {
        RECEIVER_DONE.store(2, Ordering::SeqCst);
        return;
    }
    RECEIVER_READY.store(1, Ordering::SeqCst);
    let delay = DELAY.load(Ordering::SeqCst);
    let sender = SENDER_MPIDR.load(Ordering::SeqCst);
    for round in 0..ROUNDS.load(Ordering::SeqCst) as usize {
        let deadline = sysreg::counter() + delay;
        // SAFETY: this CPU's virtual timer: enabled, unmasked, due at `deadline`.
        unsafe {
            asm!("msr cntv_cval_el0, {}", "msr cntv_ctl_el0, {}", "isb",
                 in(reg) deadline, in(reg) 1u64, options(nomem, nostack))
        };
        wait_for(&TIMER_SEEN, round as u64 + 1);
        TIMER_LAT[round].store(
            TIMER_AT.load(Ordering::SeqCst).wrapping_sub(deadline),
            Ordering::SeqCst,
        );
        send_sgi(SGI_GO, sender);
        wait_for(&IPI_SEEN, round as u64 + 1);
        IPI_LAT[round].store(
            IPI_AT
                .load(Ordering::SeqCst)
                .wrapping_sub(SENT_AT.load(Ordering::SeqCst)),
            Ordering::SeqCst,
        );
    }
    RECEIVER_DONE.store(1, Ordering::SeqCst);
    // A last "go": the sender waits for the end in WFI, not spinning (under QEMU's
    // round-robin of CPUs, a spinning CPU would hold the others off).
    send_sgi(SGI_GO, sender);
    // SAFETY: masks IRQs again before the runtime's CPU_OFF.
    unsafe { asm!("msr daifset, #2", options(nomem, nostack)) };
}

/// (min, median, max) of `v`, sorted in place.
fn stats(v: &mut [u64]) -> (u64, u64, u64) {
    for i in 1..v.len() {
        let mut j = i;
        while j > 0 && v[j - 1] > v[j] {
            v.swap(j - 1, j);
            j -= 1;
        }
    }
    (v[0], v[v.len() / 2], v[v.len() - 1])
}

fn find_gic(boot: &Boot) -> Result<(), Fail> {
    let fdt = boot.fdt();
    let gic = fdt
        .find_compatible(&["arm,gic-v3"])
        .ok_or_else(|| fail!("needs a GICv3 (no arm,gic-v3 node)"))?;
    let mut reg = gic.reg().ok_or_else(|| fail!("the GIC node has no reg"))?;
    let d = reg
        .next()
        .ok_or_else(|| fail!("the GIC node has no GICD"))?;
    let r = reg
        .next()
        .ok_or_else(|| fail!("the GIC node has no GICR"))?;
    GICD.store(d.starting_address as u64, Ordering::SeqCst);
    GICR.store(r.starting_address as u64, Ordering::SeqCst);
    // The virtual timer's PPI: the third <type number flags> of the timer node.
    if let Some(p) = fdt
        .find_compatible(&["arm,armv8-timer", "arm,armv7-timer"])
        .and_then(|t| t.property("interrupts"))
    {
        let cell = |i: usize| {
            p.value
                .get(4 * i..4 * i + 4)
                .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as u64)
        };
        if let (Some(0 | 1), Some(n)) = (cell(6), cell(7)) {
            VTIMER.store(n + 16, Ordering::SeqCst);
        }
    }
    Ok(())
}

fn competitor(boot: &Boot, number: &dyn Fn(&str, u64) -> Result<u64, Fail>) -> Result<(), Fail> {
    let kind = boot.bootarg("competitor").unwrap_or("spin");
    let ms = number("ms", 200)?;
    let ticks = sysreg::counter_frequency() * ms / 1000;
    say!("competitor {kind} for {ms} ms");
    let start = sysreg::counter();
    let mut loops = 0u64;
    match kind {
        "spin" => {
            while sysreg::counter().wrapping_sub(start) < ticks {
                loops += 1;
            }
        }
        "wfe" => {
            while sysreg::counter().wrapping_sub(start) < ticks {
                // SAFETY: waits for an event; no memory effects.
                unsafe { asm!("wfe", options(nomem, nostack)) };
                loops += 1;
            }
        }
        "wfi" => {
            // SAFETY: the virtual timer at the end, IRQs masked: only its wake-up
            // is seen.
            unsafe {
                asm!("msr daifset, #2", "msr cntv_cval_el0, {}", "msr cntv_ctl_el0, {}", "isb",
                     in(reg) start + ticks, in(reg) 1u64, options(nomem, nostack))
            };
            while sysreg::counter().wrapping_sub(start) < ticks {
                // SAFETY: waits for an interrupt; no memory effects.
                unsafe { asm!("dsb sy", "wfi", options(nomem, nostack)) };
                loops += 1;
            }
            // SAFETY: disables the timer again.
            unsafe { asm!("msr cntv_ctl_el0, xzr", "isb", options(nomem, nostack)) };
        }
        other => return Err(fail!("bad competitor={other} (spin, wfe or wfi)")),
    }
    let ran = sysreg::counter().wrapping_sub(start) * 1000 / sysreg::counter_frequency();
    say!("competitor done after {ran} ms ({loops} loops)");
    Ok(())
}

fn main(boot: &Boot) -> Result<(), Fail> {
    let number = |key: &str, default: u64| -> Result<u64, Fail> {
        boot.bootarg(key).map_or(Ok(default), |t| {
            t.parse().map_err(|_| fail!("bad {key}={t}"))
        })
    };
    match boot.bootarg("role").unwrap_or("pair") {
        "pair" => {}
        "competitor" => return competitor(boot, &number),
        other => return Err(fail!("bad role={other} (pair or competitor)")),
    }
    let rounds = number("rounds", 32)?;
    if rounds == 0 || rounds > MAX_ROUNDS as u64 {
        return Err(fail!("rounds={rounds}: 1 to {MAX_ROUNDS}"));
    }
    let delay_us = number("delay_us", 300)?;
    let spin = match boot.bootarg("wait").unwrap_or("spin") {
        "spin" => true,
        "wfi" => false,
        other => return Err(fail!("bad wait={other} (spin or wfi)")),
    };
    let hz = sysreg::counter_frequency();
    ROUNDS.store(rounds, Ordering::SeqCst);
    DELAY.store(hz * delay_us / 1_000_000, Ordering::SeqCst);
    find_gic(boot)?;
    let me = sysreg::affinity();
    let mut cpus = boot.cpus();
    let (Some(c0), Some(c1)) = (cpus.next(), cpus.next()) else {
        return Err(fail!("needs 2 CPUs"));
    };
    if c0 != me {
        return Err(fail!("the boot CPU is not the DTB's first"));
    }
    SENDER_MPIDR.store(c0, Ordering::SeqCst);
    RECEIVER_MPIDR.store(c1, Ordering::SeqCst);
    say!(
        "cpus=2 rounds={rounds} delay_us={delay_us} wait={} counter_hz={hz}",
        if spin { "spin" } else { "wfi" }
    );
    // The distributor: affinity routing, group 1 on.
    let gicd = GICD.load(Ordering::SeqCst);
    write32(gicd, (1 << 4) | (1 << 1));
    while read32(gicd) & (1 << 31) != 0 {
        core::hint::spin_loop();
    }
    cpu_init(1 << SGI_GO)?;
    smp::start(1, c1, receiver).map_err(|e| fail!("CPU_ON cpu 1: {e}"))?;
    let start = sysreg::counter();
    while RECEIVER_READY.load(Ordering::SeqCst) == 0 && RECEIVER_DONE.load(Ordering::SeqCst) == 0 {
        if sysreg::counter().wrapping_sub(start) > hz * 10 {
            return Err(fail!("cpu 1 did not come up"));
        }
        core::hint::spin_loop();
    }
    if RECEIVER_DONE.load(Ordering::SeqCst) == 2 {
        return Err(fail!("cpu 1 found no redistributor"));
    }
    let delay = DELAY.load(Ordering::SeqCst);
    for round in 0..rounds {
        wait_for(&GO_SEEN, round + 1);
        spin_ticks(delay);
        SENT_AT.store(sysreg::counter(), Ordering::SeqCst);
        send_sgi(SGI_IPI, c1);
        if spin {
            // Busy until the receiver took it.
            while IPI_SEEN.load(Ordering::SeqCst) < round + 1 {
                core::hint::spin_loop();
            }
        }
    }
    wait_for(&GO_SEEN, rounds + 1);
    let n = rounds as usize;
    let mut ipi = [0u64; MAX_ROUNDS];
    let mut timer = [0u64; MAX_ROUNDS];
    for i in 0..n {
        ipi[i] = IPI_LAT[i].load(Ordering::SeqCst);
        timer[i] = TIMER_LAT[i].load(Ordering::SeqCst);
    }
    let (a, b, c) = stats(&mut ipi[..n]);
    say!("ipi ticks min={a} median={b} max={c}");
    let (a, b, c) = stats(&mut timer[..n]);
    say!("timer ticks min={a} median={b} max={c}");
    let other = OTHER_IRQS.load(Ordering::SeqCst);
    if other != 0 {
        return Err(fail!("{other} unexpected interrupt(s)"));
    }
    smp::wait_off(c1, 10_000).map_err(|e| fail!("cpu 1 not off: {e}"))?;
    Ok(())
}
