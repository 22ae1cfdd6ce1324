//! `switch`: checks that every vCPU's registers survive world switches.
//!
//! Each vCPU writes values of its own (from `tag=N` in the bootargs, its index and
//! the register) into the registers the hypervisor switches with every switch
//! (the virtual-memory controls, thread IDs, fault and PAR registers), the debug
//! registers it switches lazily (breakpoint and watchpoint values, loaded while
//! MDSCR_EL1.MDE is set, which `debug=1` asks for, or at the first access) and
//! FP/SIMD (switched lazily: used only in some slices here), then checks them over
//! and over while the hypervisor preempts it and runs other vCPUs on the same
//! physical CPU. The FP/SIMD check runs inside one assembly block so no
//! compiler-generated code can touch those registers. The breakpoints and
//! watchpoints stay disabled (their control registers' E bit clear).
//!
//! Lines: `switch: cpu N ok rounds=R` per vCPU (or `switch: cpu N MISMATCH ...`),
//! then PASS or FAIL.

#![no_std]
#![no_main]
#![deny(unsafe_op_in_unsafe_fn)]
#![deny(clippy::undocumented_unsafe_blocks)]

use core::arch::asm;
use core::sync::atomic::{AtomicU64, Ordering};
use rt::{Boot, Fail, fail, say, smp, sysreg};

rt::guest!("switch", main);

const MAX_CPUS: usize = smp::MAX_SECONDARY_INDEX + 1;
/// Per vCPU: 0 running, 1 passed, otherwise 2 + the index of the failing check.
static RESULT: [AtomicU64; MAX_CPUS] = [const { AtomicU64::new(0) }; MAX_CPUS];
static FOUND: [AtomicU64; MAX_CPUS] = [const { AtomicU64::new(0) }; MAX_CPUS];
static WANTED: [AtomicU64; MAX_CPUS] = [const { AtomicU64::new(0) }; MAX_CPUS];
static TAG: AtomicU64 = AtomicU64::new(0);
static ROUNDS: AtomicU64 = AtomicU64::new(0);

macro_rules! sysregs {
    ($($name:literal),*) => {
        const NAMES: &[&str] = &[$($name),*];
        fn write_all(v: &[u64]) {
            let mut i = 0;
            $(
                // SAFETY: with the MMU off, none of these registers changes how this
                // program runs (translation, thread IDs, syndromes); vectors and
                // SCTLR are left alone.
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
    "contextidr_el1", "ttbr0_el1", "ttbr1_el1", "mair_el1", "amair_el1", "far_el1",
    "afsr0_el1", "afsr1_el1", "tpidr_el0", "tpidrro_el0", "tpidr_el1", "par_el1", "csselr_el1",
    "dbgbvr0_el1", "dbgbvr1_el1", "dbgwvr0_el1", "mdscr_el1"
);
const N: usize = 17;
/// MDSCR_EL1.MDE: breakpoints and watchpoints enabled (none is: their E bits are 0).
const MDE: u64 = 1 << 15;
static DEBUG: AtomicU64 = AtomicU64::new(0);

/// FP/SIMD: loads d16-d31 with distinct values, spins `spins` iterations (being
/// preempted), and returns how many of them still hold their value.
fn fp_check(seed: u64, spins: u64) -> u64 {
    let ok: u64;
    // SAFETY: only v16-v31 (declared clobbered), x9-x12 and flags are used.
    unsafe {
        asm!(
            "mov x9, {seed}",
            "fmov d16, x9", "add x9, x9, #1", "fmov d17, x9", "add x9, x9, #1",
            "fmov d18, x9", "add x9, x9, #1", "fmov d19, x9", "add x9, x9, #1",
            "fmov d20, x9", "add x9, x9, #1", "fmov d21, x9", "add x9, x9, #1",
            "fmov d22, x9", "add x9, x9, #1", "fmov d23, x9", "add x9, x9, #1",
            "fmov d24, x9", "add x9, x9, #1", "fmov d25, x9", "add x9, x9, #1",
            "fmov d26, x9", "add x9, x9, #1", "fmov d27, x9", "add x9, x9, #1",
            "fmov d28, x9", "add x9, x9, #1", "fmov d29, x9", "add x9, x9, #1",
            "fmov d30, x9", "add x9, x9, #1", "fmov d31, x9",
            "mov x10, {spins}",
            "2: subs x10, x10, #1",
            "b.ne 2b",
            "mov x9, {seed}",
            "mov x11, #0",
            ".irp r, 16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31",
            "fmov x12, d\\r",
            "cmp x12, x9",
            "cinc x11, x11, eq",
            "add x9, x9, #1",
            ".endr",
            "mov {ok}, x11",
            seed = in(reg) seed,
            spins = in(reg) spins,
            ok = out(reg) ok,
            out("x9") _, out("x10") _, out("x11") _, out("x12") _,
            out("v16") _, out("v17") _, out("v18") _, out("v19") _,
            out("v20") _, out("v21") _, out("v22") _, out("v23") _,
            out("v24") _, out("v25") _, out("v26") _, out("v27") _,
            out("v28") _, out("v29") _, out("v30") _, out("v31") _,
            options(nostack),
        )
    };
    ok
}

fn check(cpu: usize) {
    let base = (TAG.load(Ordering::SeqCst) << 40) | ((cpu as u64) << 32);
    let mut wanted = [0u64; N];
    for (i, w) in wanted.iter_mut().enumerate() {
        // CONTEXTIDR is 32 bits; TTBRs keep ASID and address bits; the rest
        // take whatever bits the CPU keeps, read back once below.
        *w = base | ((i as u64 + 1) << 12) | 0x5a0;
    }
    // Breakpoint/watchpoint values: word-aligned addresses. MDSCR_EL1: MDE or
    // nothing (no step, no debug exceptions at EL1).
    wanted[N - 4] = (base | (14 << 12)) & !3;
    wanted[N - 3] = (base | (15 << 12)) & !3;
    wanted[N - 2] = (base | (16 << 12)) & !7;
    wanted[N - 1] = if DEBUG.load(Ordering::SeqCst) != 0 { MDE } else { 0 };
    write_all(&wanted);
    read_all(&mut wanted); // what this CPU keeps of each value
    let mut now = [0u64; N];
    for round in 0..ROUNDS.load(Ordering::SeqCst) {
        read_all(&mut now);
        if let Some(i) = (0..N).find(|&i| now[i] != wanted[i]) {
            FOUND[cpu].store(now[i], Ordering::SeqCst);
            WANTED[cpu].store(wanted[i], Ordering::SeqCst);
            RESULT[cpu].store(2 + i as u64, Ordering::SeqCst);
            return;
        }
        if round % 64 == 0 {
            let good = fp_check(base | round, 20_000);
            if good != 16 {
                FOUND[cpu].store(good, Ordering::SeqCst);
                WANTED[cpu].store(16, Ordering::SeqCst);
                RESULT[cpu].store(2 + N as u64, Ordering::SeqCst);
                return;
            }
        }
    }
    RESULT[cpu].store(1, Ordering::SeqCst);
}

fn secondary(index: usize) {
    check(index);
}

fn main(boot: &Boot) -> Result<(), Fail> {
    let number = |key: &str, default: u64| -> Result<u64, Fail> {
        boot.bootarg(key).map_or(Ok(default), |t| t.parse().map_err(|_| fail!("bad {key}={t}")))
    };
    TAG.store(number("tag", 0)?, Ordering::SeqCst);
    ROUNDS.store(number("rounds", 20_000)?, Ordering::SeqCst);
    DEBUG.store(number("debug", 0)?, Ordering::SeqCst);
    let me = sysreg::affinity();
    let mut cpus = [0u64; MAX_CPUS];
    let mut ncpus = 0;
    for m in boot.cpus().take(MAX_CPUS) {
        cpus[ncpus] = m;
        ncpus += 1;
    }
    let cpus = &cpus[..ncpus];
    let boot_index = cpus.iter().position(|&m| m == me).ok_or_else(|| fail!("boot CPU not in the DTB"))?;
    for (i, &mpidr) in cpus.iter().enumerate().filter(|&(i, _)| i != boot_index) {
        smp::start(i, mpidr, secondary).map_err(|e| fail!("CPU_ON cpu {i}: {e}"))?;
    }
    check(boot_index);
    let mut failed = false;
    for cpu in 0..cpus.len() {
        while RESULT[cpu].load(Ordering::SeqCst) == 0 {
            core::hint::spin_loop();
        }
        match RESULT[cpu].load(Ordering::SeqCst) {
            1 => say!("cpu {cpu} ok rounds={}", ROUNDS.load(Ordering::SeqCst)),
            r => {
                let i = (r - 2) as usize;
                let what = NAMES.get(i).copied().unwrap_or("d16-d31 (FP/SIMD)");
                say!(
                    "cpu {cpu} MISMATCH {what}: expected 0x{:x} found 0x{:x}",
                    WANTED[cpu].load(Ordering::SeqCst),
                    FOUND[cpu].load(Ordering::SeqCst)
                );
                failed = true;
            }
        }
    }
    if failed { Err(fail!("registers changed across world switches")) } else { Ok(()) }
}
