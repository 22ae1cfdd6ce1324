//! `timers`: the EL1 physical (CNTP) and virtual (CNTV) timers interrupt a guest on
//! time, through the (virtual) GICv3.
//!
//! Bootargs: `use=p` (CNTP only, the default), `use=v` (CNTV only) or `use=pv`
//! (both at once, CNTV's deadline a little after CNTP's); `rounds=N` (default 10,
//! 0: for ever); `ms=M`, the deadline in milliseconds (default 10).
//!
//! Each round arms the chosen timers M ms ahead (CNTx_CVAL_EL0, enabled and
//! unmasked) and waits in WFI with IRQs masked at PSTATE, acknowledging what the
//! GIC offers (ICC_IAR1_EL1): each timer's interrupt must arrive on the PPI the
//! device tree names for it (the `arm,armv8-timer` node: 30 physical, 27 virtual on
//! QEMU), not before its deadline, with its ISTATUS set; the guest then disables the
//! timer and ends the interrupt (ICC_EOIR1_EL1). The GIC is the one the device tree
//! names (`arm,gic-v3`, through `rt::gic`).
//!
//! Lines: `timers: round N: cntp +L us, cntv +L us` (L: how late after the
//! deadline), then PASS or FAIL.

#![no_std]
#![no_main]
#![deny(unsafe_op_in_unsafe_fn)]
#![deny(clippy::undocumented_unsafe_blocks)]

use core::arch::asm;
use rt::{Boot, Fail, fail, gic, say, sysreg};

rt::guest!("timers", main);

#[derive(Clone, Copy, PartialEq)]
enum Which {
    Phys,
    Virt,
}

impl Which {
    fn name(self) -> &'static str {
        match self {
            Which::Phys => "cntp",
            Which::Virt => "cntv",
        }
    }
    fn ctl(self) -> u64 {
        let v: u64;
        match self {
            // SAFETY: reading a timer control has no side effects.
            Which::Phys => unsafe {
                asm!("mrs {}, cntp_ctl_el0", out(reg) v, options(nomem, nostack))
            },
            // SAFETY: as above.
            Which::Virt => unsafe {
                asm!("mrs {}, cntv_ctl_el0", out(reg) v, options(nomem, nostack))
            },
        }
        v
    }
    /// The counter this timer compares with.
    fn now(self) -> u64 {
        let v: u64;
        match self {
            // SAFETY: reading a counter has no side effects.
            Which::Phys => unsafe {
                asm!("isb", "mrs {}, cntpct_el0", out(reg) v, options(nomem, nostack))
            },
            // SAFETY: as above.
            Which::Virt => unsafe {
                asm!("isb", "mrs {}, cntvct_el0", out(reg) v, options(nomem, nostack))
            },
        }
        v
    }
    /// Arms the timer at `cval` (enabled, unmasked), or disables it (`None`).
    fn arm(self, cval: Option<u64>) {
        let (cval, ctl) = cval.map_or((0u64, 0u64), |c| (c, 1u64));
        match self {
            // SAFETY: the timer belongs to this guest; IRQs are masked at PSTATE.
            Which::Phys => unsafe {
                asm!("msr cntp_cval_el0, {}", "msr cntp_ctl_el0, {}", "isb",
                     in(reg) cval, in(reg) ctl, options(nomem, nostack))
            },
            // SAFETY: as above.
            Which::Virt => unsafe {
                asm!("msr cntv_cval_el0, {}", "msr cntv_ctl_el0, {}", "isb",
                     in(reg) cval, in(reg) ctl, options(nomem, nostack))
            },
        }
    }
}

fn number(boot: &Boot, key: &str, default: u64) -> Result<u64, Fail> {
    match boot.bootarg(key) {
        None => Ok(default),
        Some(text) => text.parse().map_err(|_| fail!("bad {key}={text}")),
    }
}

fn main(boot: &Boot) -> Result<(), Fail> {
    let timers: &[Which] = match boot.bootarg("use").unwrap_or("p") {
        "p" => &[Which::Phys],
        "v" => &[Which::Virt],
        "pv" => &[Which::Phys, Which::Virt],
        other => return Err(fail!("bad use={other}")),
    };
    let rounds = number(boot, "rounds", 10)?;
    let ms = number(boot, "ms", 10)?;
    // The timer node lists secure, non-secure physical, virtual, hypervisor.
    const TIMER: &[&str] = &["arm,armv8-timer", "arm,armv7-timer"];
    let p_intid = gic::ppi_of(boot, TIMER, 1)?;
    let v_intid = gic::ppi_of(boot, TIMER, 2)?;
    say!("cntp on INTID {p_intid}, cntv on INTID {v_intid}");
    gic::init(boot, (1 << p_intid) | (1 << v_intid))?;
    let hz = sysreg::counter_frequency();
    let ticks = hz * ms / 1000;
    let mut round = 1u64;
    while rounds == 0 || round <= rounds {
        let mut deadline = [0u64; 2];
        let mut late = [None::<u64>; 2];
        for (i, &t) in timers.iter().enumerate() {
            // CNTV a quarter of the wait after CNTP, so both orders are not needed.
            deadline[i] = t.now() + ticks + i as u64 * ticks / 4;
            t.arm(Some(deadline[i]));
        }
        while late.iter().take(timers.len()).any(|l| l.is_none()) {
            let intid = gic::wait(1_000_000)
                .map_err(|e| fail!("round {round}: waiting for a timer: {e}"))?;
            let Some(i) = timers
                .iter()
                .position(|t| intid == if *t == Which::Phys { p_intid } else { v_intid })
            else {
                return Err(fail!("round {round}: unexpected INTID {intid}"));
            };
            let t = timers[i];
            let now = t.now();
            let ctl = t.ctl();
            t.arm(None);
            gic::end(intid);
            if late[i].is_some() {
                return Err(fail!("round {round}: {} interrupted twice", t.name()));
            }
            if now < deadline[i] || ctl & 0b100 == 0 {
                return Err(fail!(
                    "round {round}: {} interrupt (INTID {intid}) before its deadline ({} ticks early, ISTATUS {})",
                    t.name(),
                    deadline[i].saturating_sub(now),
                    (ctl >> 2) & 1
                ));
            }
            late[i] = Some((now - deadline[i]) * 1_000_000 / hz);
        }
        match timers {
            [t] => say!("round {round}: {} +{} us", t.name(), late[0].unwrap_or(0)),
            _ => say!(
                "round {round}: cntp +{} us, cntv +{} us",
                late[0].unwrap_or(0),
                late[1].unwrap_or(0)
            ),
        }
        round += 1;
    }
    Ok(())
}
