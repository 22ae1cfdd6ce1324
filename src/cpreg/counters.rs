//! Per-entry trap counters for the console's `traps` command.
//!
//! [`TrapCounters`] is an array of atomics parallel to the table (`Reg as usize`),
//! so counting needs no lock and no allocation. The emulation counts through its
//! hardware handle ([`SysRegHw::counters`](super::hw::SysRegHw::counters)): the
//! real hardware counts into the one static set the console shows
//! ([`TRAP_COUNTERS`]), a test's fake into its own, so tests running in parallel
//! never see each other's counts. 32-bit counters wrap after 4G traps of one
//! register, which a console display tolerates. The atomics are load/store-exclusive
//! loops: they need the MMU and caches on (DESIGN.md section 8), which holds
//! whenever a guest runs.
#![forbid(unsafe_code)]

use core::fmt;
use core::sync::atomic::{AtomicU32, Ordering};

use super::encoding::Encoding;
use super::table::{Reg, COUNT};

struct Counter {
    reads: AtomicU32,
    writes: AtomicU32,
}

/// Counters per table entry: one per entry, rounded up to a power of two so the
/// trap fast path indexes them by a masked entry number, without a bounds check.
const COUNTERS_LEN: usize = COUNT.next_power_of_two();

/// One read and one write counter per table entry.
pub struct TrapCounters([Counter; COUNTERS_LEN]);

/// The hypervisor's counters: what `traps` lists.
pub static TRAP_COUNTERS: TrapCounters = TrapCounters::new();

impl Default for TrapCounters {
    fn default() -> Self {
        Self::new()
    }
}

impl TrapCounters {
    pub const fn new() -> Self {
        TrapCounters(
            [const {
                Counter {
                    reads: AtomicU32::new(0),
                    writes: AtomicU32::new(0),
                }
            }; COUNTERS_LEN],
        )
    }

    /// Counts one emulated access to `reg`.
    pub fn count(&self, reg: Reg, write: bool) {
        self.count_index(reg as usize, write)
    }

    /// [`Self::count`] by entry number (`Reg as usize`), for the trap fast path.
    #[inline(always)]
    pub fn count_index(&self, i: usize, write: bool) {
        let c = &self.0[i & (COUNTERS_LEN - 1)];
        let a = if write { &c.writes } else { &c.reads };
        a.fetch_add(1, Ordering::Relaxed);
    }

    /// The counts of one register.
    pub fn get(&self, reg: Reg) -> TrapCount {
        let c = &self.0[reg as usize];
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
    pub fn iter(&self) -> impl Iterator<Item = TrapCount> + '_ {
        Reg::ALL
            .iter()
            .map(|&r| self.get(r))
            .filter(|t| t.reads != 0 || t.writes != 0)
    }

    /// Zero every counter.
    pub fn reset(&self) {
        for c in &self.0 {
            c.reads.store(0, Ordering::Relaxed);
            c.writes.store(0, Ordering::Relaxed);
        }
    }
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

/// The counts of one register in [`TRAP_COUNTERS`].
pub fn trap_count(reg: Reg) -> TrapCount {
    TRAP_COUNTERS.get(reg)
}

/// Every register with a non-zero count in [`TRAP_COUNTERS`], in table order.
pub fn trap_counts() -> impl Iterator<Item = TrapCount> {
    TRAP_COUNTERS.iter()
}

impl fmt::Display for TrapCount {
    /// One `traps` line: name, encoding, reads, writes.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use fmt::Write as _;
        // Encodings are at most 16 characters ("S3_7_C15_C15_7", "p15,7,c15,c15,7").
        let mut enc = heapless::String::<24>::new();
        let _ = write!(enc, "{}", self.encoding);
        write!(
            f,
            "{:<18} {:<16} {:>10} {:>10}",
            self.name, enc, self.reads, self.writes
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trap_count_line() {
        extern crate std;
        let t = TrapCount {
            reg: crate::cpreg::Reg::SCTLR_EL1,
            name: "SCTLR_EL1",
            encoding: crate::cpreg::Reg::SCTLR_EL1.entry().encoding(),
            reads: 2,
            writes: 40,
        };
        let s = std::format!("{t}");
        assert!(s.starts_with("SCTLR_EL1 "), "{s}");
        assert!(
            s.contains("S3_0_C1_C0_0") && s.ends_with("         2         40"),
            "{s}"
        );
    }
}
