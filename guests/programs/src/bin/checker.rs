//! `checker`: the VM that runs next to the fuzz guest and checks that nothing
//! another VM does reaches it. Every vCPU writes values of its own (from
//! `tag=N`, its index and the register) into EL1 system registers, general
//! registers and FP/SIMD registers, and a memory pattern into RAM, then checks
//! them over and over while the hypervisor switches it with other VMs' vCPUs.
//! The boot CPU prints a heartbeat every `beat_ms` milliseconds of the virtual
//! counter (default 1000) with each CPU's rounds, so a watcher sees it is alive.
//!
//! Bootargs: `tag=N` (default 1), `beats=N` (end with PASS after N heartbeats;
//! default 0: never), `beat_ms=N`, and for the test that shows a disturbance
//! is reported, `corrupt=N`: at heartbeat N the boot CPU changes a word of the
//! last CPU's pattern, as another VM writing into this one's RAM would.
//!
//! Lines:
//! ```text
//! checker: tag=<N> cpus=<N> pattern 0x<start>..0x<end>
//! checker: heartbeat <n> rounds=<cpu0 rounds>,<cpu1 rounds>,...
//! checker: MISMATCH cpu <N> <what>: expected 0x.. found 0x..   (then FAIL)
//! checker: PASS                                                 (beats=N only)
//! ```

#![no_std]
#![no_main]
#![deny(unsafe_op_in_unsafe_fn)]
#![deny(clippy::undocumented_unsafe_blocks)]

use core::arch::asm;
use core::sync::atomic::{AtomicU64, Ordering};
use rt::{Boot, Fail, fail, say, smp, sysreg};

rt::guest!("checker", main);

const MAX_CPUS: usize = smp::MAX_SECONDARY_INDEX + 1;
/// Per vCPU: rounds completed.
static ROUNDS: [AtomicU64; MAX_CPUS] = [const { AtomicU64::new(0) }; MAX_CPUS];
/// Per vCPU: 0 fine, otherwise 1 + the index of the failing check in WHAT.
static BAD: [AtomicU64; MAX_CPUS] = [const { AtomicU64::new(0) }; MAX_CPUS];
static FOUND: [AtomicU64; MAX_CPUS] = [const { AtomicU64::new(0) }; MAX_CPUS];
static WANTED: [AtomicU64; MAX_CPUS] = [const { AtomicU64::new(0) }; MAX_CPUS];
static ADDR: [AtomicU64; MAX_CPUS] = [const { AtomicU64::new(0) }; MAX_CPUS];
static TAG: AtomicU64 = AtomicU64::new(1);
static STOP: AtomicU64 = AtomicU64::new(0);
/// RAM checked for its pattern: [PATTERN_START, PATTERN_START + CPUs x PER_CPU).
static PATTERN_START: AtomicU64 = AtomicU64::new(0);
const PER_CPU: u64 = 256 << 10;
/// Where the pattern starts: past the Image (loaded at RAM + 0x80000, about 1
/// MiB with its stacks) and below the device tree (near the end of RAM).
const PATTERN_OFFSET: u64 = 4 << 20;

macro_rules! sysregs {
    ($($name:literal),*) => {
        const NAMES: &[&str] = &[$($name),*];
        fn write_all(v: &[u64]) {
            let mut i = 0;
            $(
                // SAFETY: with the MMU off none of these registers changes how
                // this program runs; its vectors and SCTLR are left alone.
                unsafe { asm!(concat!("msr ", $name, ", {}"), in(reg) v[i], options(nomem, nostack)) };
                i += 1;
            )*
            let _ = i;
        }
        fn read_all(v: &mut [u64]) {
            let mut i = 0;
            $(
                // SAFETY: reading these registers has no side effects.
                unsafe { asm!(concat!("mrs {}, ", $name), out(reg) v[i], options(nomem, nostack)) };
                i += 1;
            )*
            let _ = i;
        }
    };
}

sysregs!(
    "tpidr_el0",
    "tpidrro_el0",
    "tpidr_el1",
    "contextidr_el1",
    "ttbr0_el1",
    "ttbr1_el1",
    "mair_el1",
    "amair_el1",
    "tcr_el1",
    "far_el1",
    "esr_el1",
    "afsr0_el1",
    "afsr1_el1",
    "par_el1",
    "csselr_el1",
    "sp_el0",
    "elr_el1",
    "spsr_el1",
    "cntkctl_el1",
    "cntv_cval_el0"
);
const N: usize = NAMES.len();
/// Checks after the system registers: general registers, FP/SIMD, memory.
const GPRS: usize = N;
const FPSIMD: usize = N + 1;
const MEMORY: usize = N + 2;

/// Loads x20-x28 and x9-x15 with distinct values, spins, and returns how many
/// still hold them (16 when all do).
fn gpr_check(seed: u64, spins: u64) -> u64 {
    let ok: u64;
    // SAFETY: only registers declared clobbered are used.
    unsafe {
        asm!(
            "mov x9, {seed}",
            ".irp r, 10,11,12,13,14,15,20,21,22,23,24,25,26,27,28",
            "add x\\r, x9, #(\\r * 3)",
            ".endr",
            "mov x16, {spins}",
            "2: subs x16, x16, #1",
            "b.ne 2b",
            "mov x17, #1",
            ".irp r, 10,11,12,13,14,15,20,21,22,23,24,25,26,27,28",
            "add x16, x9, #(\\r * 3)",
            "cmp x16, x\\r",
            "cinc x17, x17, eq",
            ".endr",
            "mov {ok}, x17",
            seed = in(reg) seed,
            spins = in(reg) spins,
            ok = out(reg) ok,
            out("x9") _, out("x10") _, out("x11") _, out("x12") _, out("x13") _,
            out("x14") _, out("x15") _, out("x16") _, out("x17") _,
            out("x20") _, out("x21") _, out("x22") _, out("x23") _, out("x24") _,
            out("x25") _, out("x26") _, out("x27") _, out("x28") _,
            options(nostack),
        )
    };
    ok
}

/// Loads q0-q31 with distinct values, spins, and returns how many of the 32
/// still hold them.
fn fp_check(seed: u64, spins: u64) -> u64 {
    let ok: u64;
    // SAFETY: only registers declared clobbered are used.
    unsafe {
        asm!(
            "mov x9, {seed}",
            ".irp r, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31",
            "add x10, x9, #\\r",
            "fmov d\\r, x10",
            "mov v\\r\\().d[1], x9",
            ".endr",
            "mov x10, {spins}",
            "2: subs x10, x10, #1",
            "b.ne 2b",
            "mov x11, #0",
            ".irp r, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31",
            "add x10, x9, #\\r",
            "fmov x12, d\\r",
            "mov x13, v\\r\\().d[1]",
            "cmp x12, x10",
            "ccmp x13, x9, #0, eq",
            "cinc x11, x11, eq",
            ".endr",
            "mov {ok}, x11",
            seed = in(reg) seed,
            spins = in(reg) spins,
            ok = out(reg) ok,
            out("x9") _, out("x10") _, out("x11") _, out("x12") _, out("x13") _,
            out("v0") _, out("v1") _, out("v2") _, out("v3") _, out("v4") _, out("v5") _,
            out("v6") _, out("v7") _, out("v8") _, out("v9") _, out("v10") _, out("v11") _,
            out("v12") _, out("v13") _, out("v14") _, out("v15") _, out("v16") _, out("v17") _,
            out("v18") _, out("v19") _, out("v20") _, out("v21") _, out("v22") _, out("v23") _,
            out("v24") _, out("v25") _, out("v26") _, out("v27") _, out("v28") _, out("v29") _,
            out("v30") _, out("v31") _,
            options(nostack),
        )
    };
    ok
}

fn pattern(addr: u64, tag: u64) -> u64 {
    addr.rotate_left(17) ^ tag.wrapping_mul(0x9e37_79b9_7f4a_7c15)
}

fn report(cpu: usize, what: usize, wanted: u64, found: u64, addr: u64) {
    WANTED[cpu].store(wanted, Ordering::SeqCst);
    FOUND[cpu].store(found, Ordering::SeqCst);
    ADDR[cpu].store(addr, Ordering::SeqCst);
    BAD[cpu].store(1 + what as u64, Ordering::SeqCst);
}

fn check(cpu: usize) {
    let tag = TAG.load(Ordering::SeqCst);
    let base = (tag << 40) | ((cpu as u64) << 32);
    let mut wanted = [0u64; N];
    for (i, w) in wanted.iter_mut().enumerate() {
        *w = base | ((i as u64 + 1) << 12) | 0x5a0;
    }
    write_all(&wanted);
    read_all(&mut wanted); // what this CPU keeps of each value
    let start = PATTERN_START.load(Ordering::SeqCst) + cpu as u64 * PER_CPU;
    let words = (PER_CPU / 8) as usize;
    let mem = start as *mut u64;
    for i in 0..words {
        let a = start + i as u64 * 8;
        // SAFETY: [start, start + PER_CPU) is this CPU's part of the pattern
        // area, RAM of this VM that nothing else uses (MMU off: identity).
        unsafe { mem.add(i).write_volatile(pattern(a, tag)) };
    }
    let mut now = [0u64; N];
    let mut round: u64 = 0;
    while STOP.load(Ordering::SeqCst) == 0 {
        read_all(&mut now);
        if let Some(i) = (0..N).find(|&i| now[i] != wanted[i]) {
            return report(cpu, i, wanted[i], now[i], 0);
        }
        let g = gpr_check(base ^ round, 5_000);
        if g != 16 {
            return report(cpu, GPRS, 16, g, 0);
        }
        let f = fp_check(base ^ round.rotate_left(7), 5_000);
        if f != 32 {
            return report(cpu, FPSIMD, 32, f, 0);
        }
        // One 4 KiB slice of the pattern per round.
        let slice = (round as usize * 512) % words;
        for i in slice..slice + 512 {
            let a = start + i as u64 * 8;
            // SAFETY: as above.
            let v = unsafe { mem.add(i).read_volatile() };
            if v != pattern(a, tag) {
                return report(cpu, MEMORY, pattern(a, tag), v, a);
            }
        }
        round += 1;
        ROUNDS[cpu].store(round, Ordering::SeqCst);
    }
}

fn secondary(index: usize) {
    check(index);
    // Stay on (a CPU that ends returns into CPU_OFF): a fault is reported by
    // the boot CPU.
    loop {
        core::hint::spin_loop();
    }
}

fn main(boot: &Boot) -> Result<(), Fail> {
    let number = |key: &str, default: u64| -> Result<u64, Fail> {
        boot.bootarg(key).map_or(Ok(default), |t| {
            t.parse().map_err(|_| fail!("bad {key}={t}"))
        })
    };
    TAG.store(number("tag", 1)?, Ordering::SeqCst);
    let beats = number("beats", 0)?;
    let beat_ms = number("beat_ms", 1000)?.max(1);
    let corrupt = number("corrupt", 0)?;
    let me = sysreg::affinity();
    let mut cpus = [0u64; MAX_CPUS];
    let mut ncpus = 0;
    for m in boot.cpus().take(MAX_CPUS) {
        cpus[ncpus] = m;
        ncpus += 1;
    }
    let cpus = &cpus[..ncpus];
    let ram = boot
        .memory()
        .next()
        .ok_or_else(|| fail!("no memory in the DTB"))?;
    let start = ram.base + PATTERN_OFFSET;
    let end = start + PER_CPU * ncpus as u64;
    if end > ram.end() {
        return Err(fail!(
            "RAM 0x{:x}..0x{:x} is too small for the pattern",
            ram.base,
            ram.end()
        ));
    }
    PATTERN_START.store(start, Ordering::SeqCst);
    say!(
        "tag={} cpus={ncpus} pattern 0x{start:x}..0x{end:x}",
        TAG.load(Ordering::SeqCst)
    );
    let boot_index = cpus
        .iter()
        .position(|&m| m == me)
        .ok_or_else(|| fail!("boot CPU not in the DTB"))?;
    for (i, &mpidr) in cpus.iter().enumerate().filter(|&(i, _)| i != boot_index) {
        smp::start(i, mpidr, secondary).map_err(|e| fail!("CPU_ON cpu {i}: {e}"))?;
    }
    // The boot CPU runs the same checks as `check`, between heartbeats and
    // the reports of the others.
    let ticks = sysreg::counter_frequency().saturating_mul(beat_ms) / 1000;
    let mut next = sysreg::counter() + ticks;
    let mut beat = 0u64;
    let tag = TAG.load(Ordering::SeqCst);
    let base = (tag << 40) | ((boot_index as u64) << 32);
    let mut wanted = [0u64; N];
    for (i, w) in wanted.iter_mut().enumerate() {
        *w = base | ((i as u64 + 1) << 12) | 0x5a0;
    }
    write_all(&wanted);
    read_all(&mut wanted);
    let pstart = start + boot_index as u64 * PER_CPU;
    for i in 0..PER_CPU / 8 {
        let a = pstart + i * 8;
        // SAFETY: the boot CPU's part of the pattern area, this VM's RAM.
        unsafe { (a as *mut u64).write_volatile(pattern(a, tag)) };
    }
    let mut now = [0u64; N];
    let mut round = 0u64;
    loop {
        read_all(&mut now);
        if let Some(i) = (0..N).find(|&i| now[i] != wanted[i]) {
            report(boot_index, i, wanted[i], now[i], 0);
        }
        let g = gpr_check(base ^ round, 5_000);
        if g != 16 {
            report(boot_index, GPRS, 16, g, 0);
        }
        let f = fp_check(base ^ round.rotate_left(7), 5_000);
        if f != 32 {
            report(boot_index, FPSIMD, 32, f, 0);
        }
        let slice = (round * 512) % (PER_CPU / 8);
        for i in slice..slice + 512 {
            let a = pstart + i * 8;
            // SAFETY: as above.
            let v = unsafe { (a as *const u64).read_volatile() };
            if v != pattern(a, tag) {
                report(boot_index, MEMORY, pattern(a, tag), v, a);
                break;
            }
        }
        round += 1;
        ROUNDS[boot_index].store(round, Ordering::SeqCst);
        let mut failed = false;
        for cpu in 0..ncpus {
            let bad = BAD[cpu].load(Ordering::SeqCst);
            if bad != 0 {
                let what = match bad as usize - 1 {
                    i if i < N => NAMES[i],
                    GPRS => "general registers (x9-x15, x20-x28 holding their values)",
                    FPSIMD => "FP/SIMD registers (q0-q31 holding their values)",
                    _ => "memory pattern",
                };
                say!(
                    "MISMATCH cpu {cpu} {what}: expected 0x{:x} found 0x{:x}{}",
                    WANTED[cpu].load(Ordering::SeqCst),
                    FOUND[cpu].load(Ordering::SeqCst),
                    AddrNote(ADDR[cpu].load(Ordering::SeqCst))
                );
                failed = true;
            }
        }
        if failed {
            STOP.store(1, Ordering::SeqCst);
            return Err(fail!(
                "another VM or the hypervisor changed this VM's state"
            ));
        }
        if sysreg::counter() >= next {
            beat += 1;
            next += ticks;
            say!("heartbeat {beat} rounds={}", RoundsLine(ncpus));
            if corrupt != 0 && beat == corrupt {
                let a = start + (ncpus as u64 - 1) * PER_CPU + 0x1238;
                // SAFETY: a word of this VM's own pattern area (the disturbance
                // the test asks for); aligned, RAM, no one relies on it but the check.
                unsafe { (a as *mut u64).write_volatile(!pattern(a, tag)) };
                say!("corrupted the word at 0x{a:x}");
            }
            if beats != 0 && beat >= beats {
                STOP.store(1, Ordering::SeqCst);
                return Ok(());
            }
        }
    }
}

struct AddrNote(u64);

impl core::fmt::Display for AddrNote {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        if self.0 != 0 {
            write!(f, " at 0x{:x}", self.0)
        } else {
            Ok(())
        }
    }
}

/// Each CPU's rounds, comma-separated.
struct RoundsLine(usize);

impl core::fmt::Display for RoundsLine {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        for (cpu, rounds) in ROUNDS.iter().take(self.0).enumerate() {
            let sep = if cpu == 0 { "" } else { "," };
            write!(f, "{sep}{}", rounds.load(Ordering::SeqCst))?;
        }
        Ok(())
    }
}
