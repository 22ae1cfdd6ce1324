//! `abort`: reads addresses where the DTB says nothing is, and must see a
//! synchronous external data abort for each (EC 0x25, DFSC 0x10) and carry on.
//!
//! The addresses come from the DTB, never from a fixed map: the first byte after
//! the highest RAM region, and the lowest 64 KiB-aligned granule below RAM that no
//! node's `reg` or bus `ranges` claims (on QEMU `virt`, a gap between the GIC's
//! regions). Under the hypervisor a stage-2 fault there must come back as an
//! injected external abort; bare under QEMU the bus error does the same. Last, an
//! UDF checks the UNDEF path (EC 0x00) of the guest's own vectors.
//!
//! For the passthrough tests, the command line may add addresses: each
//! `read=0xADDR` is read and its value printed (`read 0xADDR = 0xVALUE`: a
//! passed-through device's register), each `probe=0xADDR` must abort like the
//! holes above (the page next to a passed-through device).

#![no_std]
#![no_main]
#![deny(unsafe_op_in_unsafe_fn)]
#![deny(clippy::undocumented_unsafe_blocks)]

use rt::exception::{EC_DATA_ABORT_SAME_EL, EC_UNKNOWN};
use rt::{Boot, Fail, dt, fail, probe, say};

rt::guest!("abort", main);

/// DFSC of a synchronous external abort, not on a translation table walk.
const DFSC_SYNC_EXTERNAL: u64 = 0x10;
/// Granule of the hole search: the largest page size a hypervisor might map.
const GRANULE: u64 = 0x1_0000;

fn main(boot: &Boot) -> Result<(), Fail> {
    let ram_end = boot
        .memory()
        .map(|r| r.end())
        .max()
        .ok_or_else(|| fail!("no memory in the DTB"))?;
    expect_abort(ram_end, "end of RAM")?;

    let ram_start = boot.memory().map(|r| r.base).min().unwrap_or(0);
    match dt::unclaimed_hole(boot.fdt(), ram_start, GRANULE) {
        Some(hole) => expect_abort(hole, "hole below RAM")?,
        None => say!("no unclaimed granule below RAM: hole probe skipped"),
    }

    for word in boot.bootargs().split_ascii_whitespace() {
        if let Some(addr) = word.strip_prefix("read=").and_then(hex) {
            // SAFETY: the test gives an address of a device it passed through, a
            // register whose read has no side effect (an ID register).
            match unsafe { probe::read_u32(addr) } {
                Ok(v) => say!("read 0x{addr:x} = 0x{v:x}"),
                Err(t) => return Err(fail!("read of 0x{addr:x} aborted: EC=0x{:02x}", t.ec())),
            }
        } else if let Some(addr) = word.strip_prefix("probe=").and_then(hex) {
            expect_abort(addr, "given on the command line")?;
        }
    }

    match probe::undefined() {
        Err(t) if t.ec() == EC_UNKNOWN => {
            say!("got EC=0x{:02x} from UDF at ELR=0x{:x}", t.ec(), t.elr)
        }
        Err(t) => return Err(fail!("UDF raised EC=0x{:02x}, expected 0x00", t.ec())),
        Ok(()) => return Err(fail!("UDF did not raise an exception")),
    }
    say!("still running after {} exceptions", rt::exception::count());
    Ok(())
}

/// `0x`-prefixed hex, 4-byte aligned.
fn hex(s: &str) -> Option<u64> {
    let v = u64::from_str_radix(s.strip_prefix("0x")?, 16).ok()?;
    (v % 4 == 0).then_some(v)
}

/// Reads `addr` and checks that it aborts with a synchronous external abort.
fn expect_abort(addr: u64, what: &str) -> Result<(), Fail> {
    say!("reading 0x{addr:x} ({what})");
    // SAFETY: the DTB (or the test, for `probe=`) claims nothing at `addr` (no RAM,
    // no device), so the read has no side effect; it is 4-byte aligned.
    let taken = match unsafe { probe::read_u32(addr) } {
        Ok(value) => {
            return Err(fail!(
                "read of 0x{addr:x} ({what}) returned 0x{value:x}, no abort"
            ));
        }
        Err(taken) => taken,
    };
    say!(
        "got EC=0x{:02x} FAR=0x{:x} DFSC=0x{:02x}",
        taken.ec(),
        taken.far,
        taken.fsc()
    );
    if taken.ec() != EC_DATA_ABORT_SAME_EL {
        return Err(fail!("0x{addr:x}: EC=0x{:02x}, expected 0x25", taken.ec()));
    }
    if taken.fsc() != DFSC_SYNC_EXTERNAL {
        return Err(fail!(
            "0x{addr:x}: DFSC=0x{:02x}, expected 0x10 (external abort)",
            taken.fsc()
        ));
    }
    if taken.far_valid() && taken.far != addr {
        return Err(fail!("0x{addr:x}: FAR=0x{:x}", taken.far));
    }
    Ok(())
}
