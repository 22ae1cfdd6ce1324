//! The trap fast path's share of [`emulate`](super::emulate): a trapped AArch64
//! `MRS`/`MSR` at EL1 of a register whose access is plain state (a stored value, a
//! sanitised constant, the live hardware register), completed in a few dozen
//! instructions.
//!
//! Which accesses qualify is decided per entry at compile time from the table
//! ([`quick_how`], packed into the table's AArch64 index), not by a list kept here: a read qualifies when the entry is its own
//! state or a constant; a write when it is its own, stored, non-constant state whose
//! guest write is a plain store of every bit, or is ignored (`WI`). Anything with
//! effects (`IO`), an alias, a computed value, an operation, a write mask or
//! set/clear semantics, an EL0 access and every UNDEF take the general path, which
//! stays the reference: the tests run both on every entry and require identical
//! results wherever this path claims an access.
#![forbid(unsafe_code)]

use super::context::SysRegFile;
use super::counters::TRAP_COUNTERS;
use super::entry::{Entry, Flags, Group, State, WriteOp};
use super::hw::SysRegHw;
use super::table::{a64_index_entry, Reg};

/// How a read of an entry is done on the fast path.
const READ_SLOT: u8 = 1;
const READ_HW: u8 = 2;
const READ_MASK: u8 = 3;
/// How a write is done.
const WRITE_SLOT: u8 = 1 << 2;
const WRITE_HW: u8 = 2 << 2;
const WRITE_IGNORE: u8 = 3 << 2;
const WRITE_MASK: u8 = 3 << 2;

/// What the fast path may do with an entry (`READ_*` | `WRITE_*`, 0: nothing),
/// evaluated at compile time into the table's AArch64 index
/// (`table::a64_index_entry`).
pub(crate) const fn quick_how(e: &Entry) -> u8 {
    if e.flags.contains(Flags::IO) || e.flags.contains(Flags::EL2_VIEW) || e.a64.is_none() {
        return 0;
    }
    if !matches!(e.state, State::Own) {
        return 0;
    }
    // Lazily switched: the hardware holds them only once the vCPU uses debug.
    if matches!(e.group, Group::Debug) {
        return 0;
    }
    let hw = e.flags.contains(Flags::HW);
    let constant = e.flags.contains(Flags::CONST);
    let mut q = 0;
    if e.access.can_read(false) {
        q |= if hw && !constant { READ_HW } else { READ_SLOT };
    }
    if e.access.can_write(false) {
        if e.flags.contains(Flags::WI) {
            q |= WRITE_IGNORE;
        } else if !constant && matches!(e.write_op, WriteOp::Store) && e.wmask == u64::MAX {
            q |= if hw { WRITE_HW } else { WRITE_SLOT };
        }
    }
    q
}

/// Tries to complete a trapped AArch64 `MRS`/`MSR` (EC 0x18, syndrome `iss`) from
/// EL1. True when done: the register read into `gprs[Rt]` or written, the access
/// counted; the caller advances the PC. False when the general
/// [`emulate`](super::emulate) must handle it, with nothing changed.
#[inline]
pub fn emulate_quick<H: SysRegHw + ?Sized>(
    ctx: &mut SysRegFile,
    hw: &mut H,
    iss: u64,
    gprs: &mut [u64; 31],
) -> bool {
    // One load: entry number + 1, what may be done, slot (`table::a64_entry`).
    let e = a64_index_entry(iss);
    let index = (e & 0xffff) as usize;
    let how = (e >> 16) as u8;
    if index == 0 || how == 0 {
        return false;
    }
    let index = index - 1;
    if !ctx.present_index(index) {
        return false;
    }
    let slot = (e >> 24) as usize;
    let rt = ((iss >> 5) & 31) as usize;
    if iss & 1 != 0 {
        let v = match how & READ_MASK {
            READ_SLOT => ctx.slot(slot),
            READ_HW => {
                // As the general path does: the slot follows the live value.
                let v = hw.read_index(index);
                ctx.set_slot(slot, v);
                v
            }
            _ => return false,
        };
        if let Some(x) = gprs.get_mut(rt) {
            *x = v;
        }
        TRAP_COUNTERS.count_index(index, false);
    } else {
        let v = gprs.get(rt).copied().unwrap_or(0);
        // Bit tests, not a `match` (which becomes a jump table: five
        // instructions more on every trapped write). WRITE_IGNORE has both bits.
        let write = how & WRITE_MASK;
        if write == 0 {
            return false;
        }
        if write != WRITE_IGNORE {
            if write & WRITE_HW != 0 {
                // While the vCPU runs its hardware register is the truth (read
                // back by the next save); the slot only follows it.
                hw.write_index(index, v);
            }
            ctx.set_slot(slot, v);
        }
        TRAP_COUNTERS.count_index(index, true);
    }
    true
}

/// Whether the fast path handles reads (`.0`) and writes (`.1`) of `reg` at EL1.
pub fn claims(reg: Reg) -> (bool, bool) {
    let q = quick_how(&reg.entry());
    (q & READ_MASK != 0, q & WRITE_MASK != 0)
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::super::emulate::{emulate_msr_mrs, Emulation};
    use super::super::hw::FakeHw;
    use super::super::idregs::{GuestIds, HostIds, IdPolicy};
    use super::*;
    use crate::cpreg::encoding::Sys64;
    use crate::esr::SysRegIss;
    use std::vec::Vec;

    fn file() -> SysRegFile {
        let host = HostIds::read(&mut FakeHw::new());
        let ids = GuestIds::sanitise(
            &host,
            &IdPolicy {
                aarch32_el1: true,
                ipa_bits: 40,
                pmu_counters: 0,
                mte: false,
            },
        );
        SysRegFile::new(&ids, 1)
    }

    fn iss(e: Sys64, rt: usize, read: bool) -> u64 {
        ((e.op0 as u64) << 20)
            | ((e.op2 as u64) << 17)
            | ((e.op1 as u64) << 14)
            | ((e.crn as u64) << 10)
            | ((rt as u64) << 5)
            | ((e.crm as u64) << 1)
            | read as u64
    }

    /// Wherever the fast path claims an access, it leaves exactly what the general
    /// emulation leaves: the same register file, hardware and general registers.
    #[test]
    fn agrees_with_the_general_emulation_on_every_entry() {
        let values = [0, 1, u64::MAX, 0x5555_aaaa_0f0f_f0f0, 0x8000_0000_0000_0001];
        let mut claimed = (0, 0);
        for reg in Reg::ALL {
            let Some(enc) = reg.entry().a64 else { continue };
            for read in [true, false] {
                for &v in &values {
                    let (mut ca, mut cb) = (file(), file());
                    let (mut ha, mut hb) = (FakeHw::new(), FakeHw::new());
                    for (i, x) in ha.values.iter_mut().enumerate() {
                        *x = 0x1234_0000 + i as u64;
                    }
                    hb.values = ha.values;
                    let mut ga = [7u64; 31];
                    ga[3] = v;
                    let mut gb = ga;
                    let s = iss(enc, 3, read);
                    if !emulate_quick(&mut ca, &mut ha, s, &mut ga) {
                        continue;
                    }
                    if read {
                        claimed.0 += 1;
                    } else {
                        claimed.1 += 1;
                    }
                    let r = emulate_msr_mrs(&mut cb, &mut hb, SysRegIss(s), &mut gb, false);
                    assert!(
                        matches!(r, Emulation::Done { .. }),
                        "{}: the fast path completed an access the general path does not",
                        reg.name()
                    );
                    assert_eq!(ga, gb, "{} read={read} v={v:#x}: registers", reg.name());
                    assert_eq!(ha.values, hb.values, "{} read={read}: hardware", reg.name());
                    let (ea, eb): (Vec<_>, Vec<_>) = (ca.export().collect(), cb.export().collect());
                    assert_eq!(ea, eb, "{} read={read} v={v:#x}: state", reg.name());
                }
            }
        }
        // Independent expectations: ID registers are read here, so are the EL1
        // registers the world switch loads; writes of plain EL1 state too.
        for r in [
            Reg::ID_AA64PFR0_EL1,
            Reg::MIDR_EL1,
            Reg::CONTEXTIDR_EL1,
            Reg::TTBR0_EL1,
        ] {
            assert!(claims(r).0, "{} reads", r.name());
        }
        for r in [
            Reg::CONTEXTIDR_EL1,
            Reg::TTBR0_EL1,
            Reg::MAIR_EL1,
            Reg::ACTLR_EL1,
        ] {
            assert!(claims(r).1, "{} writes", r.name());
        }
        // Never: effects, operations, computed values, constants written.
        for r in [Reg::SCTLR_EL1, Reg::CNTV_CTL_EL0, Reg::CCSIDR_EL1] {
            assert_eq!(claims(r), (false, false), "{}", r.name());
        }
        assert!(!claims(Reg::MIDR_EL1).1);
        assert!(claimed.0 > 100 && claimed.1 > 20, "{claimed:?}");
    }

    /// An EL0 access, an unknown encoding and an absent register are left alone.
    #[test]
    fn leaves_what_it_does_not_claim_untouched() {
        let mut c = file();
        let mut h = FakeHw::new();
        let mut g = [9u64; 31];
        let before: Vec<_> = c.export().collect();
        // IMPLEMENTATION DEFINED space: no entry.
        assert!(!emulate_quick(
            &mut c,
            &mut h,
            iss(Sys64::new(3, 0, 15, 0, 0), 1, true),
            &mut g
        ));
        assert!(!emulate_quick(
            &mut c,
            &mut h,
            iss(Sys64::new(3, 0, 1, 0, 0), 1, false),
            &mut g
        ));
        assert_eq!(g, [9u64; 31]);
        assert_eq!(before, c.export().collect::<Vec<_>>());
        assert_eq!((h.reads, h.writes), (0, 0));
    }
}
