//! Per-entry trap counters for the console's `traps` command.
//!
//! A static array of atomics parallel to the table (`Reg as usize`), so counting
//! needs no lock and no allocation. 32-bit counters wrap after 4G traps of one
//! register, which a console display tolerates. The atomics are load/store-exclusive
//! loops: they need the MMU and caches on (DESIGN.md section 8), which holds
//! whenever a guest runs.
#![forbid(unsafe_code)]

use core::sync::atomic::{AtomicU32, Ordering};

use super::encoding::Encoding;
use super::table::{Reg, COUNT};

struct Counter {
    reads: AtomicU32,
    writes: AtomicU32,
}

static COUNTERS: [Counter; COUNT] = [const {
    Counter {
        reads: AtomicU32::new(0),
        writes: AtomicU32::new(0),
    }
}; COUNT];

pub(crate) fn count(reg: Reg, write: bool) {
    let c = &COUNTERS[reg as usize];
    let a = if write { &c.writes } else { &c.reads };
    a.fetch_add(1, Ordering::Relaxed);
}

/// One line of the `traps` listing.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct TrapCount {
    pub reg: Reg,
    pub name: &'static str,
    pub encoding: Encoding,
    pub reads: u32,
    pub writes: u32,
}

/// The counts of one register.
pub fn trap_count(reg: Reg) -> TrapCount {
    let c = &COUNTERS[reg as usize];
    let e = reg.entry();
    TrapCount {
        reg,
        name: e.name,
        encoding: e.encoding(),
        reads: c.reads.load(Ordering::Relaxed),
        writes: c.writes.load(Ordering::Relaxed),
    }
}

/// Every register with a non-zero count, in table order.
pub fn trap_counts() -> impl Iterator<Item = TrapCount> {
    Reg::ALL
        .iter()
        .map(|&r| trap_count(r))
        .filter(|t| t.reads != 0 || t.writes != 0)
}

/// Zero every counter.
pub fn reset_trap_counts() {
    for c in &COUNTERS {
        c.reads.store(0, Ordering::Relaxed);
        c.writes.store(0, Ordering::Relaxed);
    }
}
