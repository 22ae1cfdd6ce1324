//! `pmu`: a guest counts with the (virtual) PMUv3 and takes its overflow interrupt.
//!
//! Bootargs: `loops=N` (default 20 000 000), `expect=none` for a VM not given a PMU.
//!
//! With a PMU (ID_AA64DFR0_EL1.PMUVer, the device tree's `arm,armv8-pmuv3` node):
//! 1. the cycle counter and event counter 0 counting INST_RETIRED (event 0x08) at
//!    EL1 run over a loop of exactly 2 instructions an iteration (`subs`, `b.ne`),
//!    IRQs masked; the guest prints `instructions I cycles C ticks T` (T: the
//!    virtual counter's advance, which goes on while other VMs run);
//! 2. PMSWINC: counter 1 counting SW_INCR (event 0x00) goes up once per write;
//!    PMCR.P resets the event counters (an action, not state);
//! 3. counter 0 is set 1000 instructions short of its 32-bit overflow with its
//!    interrupt enabled: the overflow arrives as the PMU's PPI through the GIC,
//!    with PMOVSSET bit 0 set.
//!
//! Without a PMU (`expect=none`): PMUVer reads 0 and PMCR_EL0 UNDEFs.
//!
//! Lines: `pmu: ...` facts, then PASS or FAIL.

#![no_std]
#![no_main]
#![deny(unsafe_op_in_unsafe_fn)]
#![deny(clippy::undocumented_unsafe_blocks)]

use core::arch::asm;
use rt::{Boot, Fail, fail, gic, probe, say};

rt::guest!("pmu", main);

/// INST_RETIRED and SW_INCR (Arm ARM D13.11).
const INST_RETIRED: u64 = 0x08;
const SW_INCR: u64 = 0x00;
/// The cycle counter's bit in PMCNTENSET/PMOVSSET/PMINTENSET.
const CYCLES: u64 = 1 << 31;

macro_rules! rd {
    ($r:literal) => {{
        let v: u64;
        // SAFETY: reading a PMU register of this guest's own PMU has no side effect.
        unsafe { asm!(concat!("mrs {}, ", $r), out(reg) v, options(nomem, nostack)) };
        v
    }};
}

macro_rules! wr {
    ($r:literal, $v:expr) => {{
        let v: u64 = $v;
        // SAFETY: programs this guest's own PMU; counting has no memory effects.
        unsafe { asm!(concat!("msr ", $r, ", {}"), "isb", in(reg) v, options(nomem, nostack)) };
    }};
}

fn number(boot: &Boot, key: &str, default: u64) -> Result<u64, Fail> {
    match boot.bootarg(key) {
        None => Ok(default),
        Some(text) => text.parse().map_err(|_| fail!("bad {key}={text}")),
    }
}

/// `n` iterations of a two-instruction loop.
#[inline(never)]
fn spin(n: u64) {
    // SAFETY: a register-only loop.
    unsafe {
        asm!("1: subs {n}, {n}, #1", "b.ne 1b", n = inout(reg) n.max(1) => _, options(nomem, nostack))
    };
}

fn virtual_count() -> u64 {
    rd!("cntvct_el0")
}

fn main(boot: &Boot) -> Result<(), Fail> {
    let dfr0 = rd!("id_aa64dfr0_el1");
    let pmuver = (dfr0 >> 8) & 0xf;
    if boot.bootarg("expect") == Some("none") {
        if pmuver != 0 {
            return Err(fail!("PMUVer is {pmuver}, but this VM was given no PMU"));
        }
        // SAFETY: run under `probe::catch`, which skips an UNDEF; the output is
        // initialised.
        let r = unsafe {
            probe::catch(|| {
                let mut v = 0u64;
                asm!("mrs {}, pmcr_el0", inout(reg) v, options(nomem, nostack));
                v
            })
        };
        match r {
            Err(t) if t.ec() == rt::exception::EC_UNKNOWN => {
                say!("no PMU: PMUVer 0, PMCR_EL0 is UNDEFINED");
                return Ok(());
            }
            Err(t) => return Err(fail!("PMCR_EL0: exception class {:#x}, not UNDEF", t.ec())),
            Ok(v) => return Err(fail!("PMCR_EL0 read {v:#x} without a PMU")),
        }
    }
    if pmuver == 0 || pmuver == 0xf {
        return Err(fail!("no PMUv3 (PMUVer {pmuver})"));
    }
    let pmu_ppi = gic::ppi_of(boot, &["arm,armv8-pmuv3"], 0)?;
    let pmcr = rd!("pmcr_el0");
    let counters = (pmcr >> 11) & 0x1f;
    say!("PMUVer {pmuver}, {counters} event counters, overflow on INTID {pmu_ppi}");
    if counters < 2 {
        return Err(fail!("{counters} event counters: this test needs 2"));
    }
    let loops = number(boot, "loops", 20_000_000)?;

    // 1. Cycles and instructions at EL1 (PMEVTYPER: P = U = NSH = 0 counts EL1 and
    // EL0, not EL2), over the loop only.
    wr!("pmcntenclr_el0", u64::MAX);
    wr!("pmintenclr_el1", u64::MAX);
    wr!("pmovsclr_el0", u64::MAX);
    wr!("pmevtyper0_el0", INST_RETIRED);
    wr!("pmccfiltr_el0", 0);
    // E, P (reset event counters), C (reset the cycle counter), LC (64-bit cycles).
    wr!("pmcr_el0", (1 << 6) | 0b111);
    let start = virtual_count();
    wr!("pmcntenset_el0", CYCLES | 1);
    spin(loops);
    wr!("pmcntenclr_el0", CYCLES | 1);
    let ticks = virtual_count() - start;
    let insts = rd!("pmevcntr0_el0") & 0xffff_ffff;
    let cycles = rd!("pmccntr_el0");
    say!("instructions {insts} cycles {cycles} ticks {ticks} for {loops} loops");
    let expect = 2 * loops;
    if insts < expect || insts > expect + 100 {
        return Err(fail!("counted {insts} instructions for {expect}"));
    }

    // 2. PMSWINC and PMCR.P: operations.
    wr!("pmevtyper1_el0", SW_INCR);
    wr!("pmcntenset_el0", 0b10);
    for _ in 0..3 {
        wr!("pmswinc_el0", 0b10);
    }
    let swinc = rd!("pmevcntr1_el0");
    wr!("pmcr_el0", (1 << 6) | 0b011); // E, P
    let after_reset = rd!("pmevcntr1_el0");
    wr!("pmcntenclr_el0", 0b10);
    say!("software increments counted {swinc}, {after_reset} after PMCR.P");
    if swinc != 3 || after_reset != 0 {
        return Err(fail!(
            "PMSWINC x3 counted {swinc}; PMCR.P left {after_reset}"
        ));
    }

    // 3. The overflow interrupt.
    gic::init(boot, 1 << pmu_ppi)?;
    wr!("pmevcntr0_el0", 0xffff_ffff - 1000);
    wr!("pmintenset_el1", 1);
    wr!("pmcntenset_el0", 1);
    spin(1000);
    let intid = gic::wait(1_000_000).map_err(|e| fail!("overflow: {e}"))?;
    let ovs = rd!("pmovsset_el0");
    wr!("pmcntenclr_el0", 1);
    wr!("pmovsclr_el0", ovs);
    gic::end(intid);
    say!("overflow interrupt INTID {intid}, PMOVSSET {ovs:#x}");
    if intid != pmu_ppi || ovs & 1 == 0 {
        return Err(fail!(
            "overflow: INTID {intid} (not {pmu_ppi}), PMOVSSET {ovs:#x}"
        ));
    }
    // Ended, with the overflow flag clear: nothing is pending any more.
    let again = gic::ack();
    if again != gic::SPURIOUS {
        return Err(fail!(
            "INTID {again} pending after the overflow was handled"
        ));
    }
    Ok(())
}
