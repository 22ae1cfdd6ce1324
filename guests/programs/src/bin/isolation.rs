//! `isolation`: reads and writes addresses the hypervisor keeps from every
//! guest, given as intermediate physical addresses on the command line, and
//! shows that each access ends in an injected synchronous external abort.
//!
//! Bootargs: `probe=NAME:0xADDR` (repeatable): a read and then a write of the
//! 32-bit word at ADDR must each take a data abort at EL1 (EC 0x25) with DFSC
//! 0x10 (synchronous external abort). `own=NAME:0xADDR`: an address of the
//! hypervisor that lies inside this VM's own RAM window (the hypervisor's
//! image is at the start of host RAM, where every VM's RAM starts too): what
//! is there must be this VM's own RAM, which it shows by writing a word and
//! reading it back, and by not finding the hypervisor's Image magic (`ARM\x64`)
//! at ADDR + 56.
//!
//! `fresh=NAME:0xADDR`: RAM of this VM that nothing has used yet, where the
//! machine's memory held something else before (a boot loader's leftovers):
//! its 64 KiB from ADDR must read as zeros, never what was there.
//!
//! Lines:
//! ```text
//! isolation: read NAME 0x<addr>: abort ESR=0x<esr> EC=0x25 DFSC=0x10
//! isolation: write NAME 0x<addr>: abort ESR=0x<esr> EC=0x25 DFSC=0x10
//! isolation: NAME 0x<addr> is this VM's own RAM (wrote and read back 0x<v>; no Image magic at +56)
//! isolation: NAME 0x<addr> reads as zeros (65536 bytes of fresh RAM)
//! isolation: probes=<N> aborts=<2N>
//! isolation: PASS
//! ```
//! A read or write that completes prints `... NOT ISOLATED: read 0x..` (or
//! `wrote`), another exception class or fault status says so, and the verdict
//! is FAIL.

#![no_std]
#![no_main]
#![deny(unsafe_op_in_unsafe_fn)]
#![deny(clippy::undocumented_unsafe_blocks)]

use core::arch::asm;
use rt::exception::{EC_DATA_ABORT_SAME_EL, Taken};
use rt::{Boot, Fail, fail, probe, say};

rt::guest!("isolation", main);

const DFSC_SYNC_EXTERNAL: u64 = 0x10;
/// The arm64 Image magic at offset 56 of the hypervisor's image: "ARM\x64".
const IMAGE_MAGIC: u32 = 0x644d_5241;

fn hex(s: &str) -> Option<u64> {
    u64::from_str_radix(s.strip_prefix("0x")?, 16).ok()
}

/// Writes `value` to the 32-bit word at `addr`.
///
/// # Safety
/// `addr` must be 4-byte aligned and not this VM's memory (or memory it may
/// overwrite): the hypervisor's addresses, which must abort.
unsafe fn write_u32(addr: u64, value: u32) -> Result<(), Taken> {
    // SAFETY: one store that may fault; the armed handler skips it.
    unsafe {
        probe::catch(|| {
            asm!("str {v:w}, [{a}]", a = in(reg) addr, v = in(reg) value, options(nostack));
        })
    }
}

/// Checks one outcome: an abort with EC 0x25 and DFSC 0x10.
fn aborted(what: &str, name: &str, addr: u64, r: Result<Option<u32>, Taken>) -> bool {
    match r {
        Err(t) if t.ec() == EC_DATA_ABORT_SAME_EL && t.fsc() == DFSC_SYNC_EXTERNAL => {
            say!(
                "{what} {name} 0x{addr:x}: abort ESR=0x{:x} EC=0x{:02x} DFSC=0x{:02x}",
                t.esr,
                t.ec(),
                t.fsc()
            );
            true
        }
        Err(t) => {
            say!(
                "{what} {name} 0x{addr:x}: wrong exception ESR=0x{:x} EC=0x{:02x} DFSC=0x{:02x}, expected EC 0x25 DFSC 0x10",
                t.esr,
                t.ec(),
                t.fsc()
            );
            false
        }
        Ok(Some(v)) => {
            say!("{what} {name} 0x{addr:x}: NOT ISOLATED: read 0x{v:x}");
            false
        }
        Ok(None) => {
            say!("{what} {name} 0x{addr:x}: NOT ISOLATED: the write completed");
            false
        }
    }
}

fn main(boot: &Boot) -> Result<(), Fail> {
    let (mut probes, mut aborts, mut bad) = (0, 0, 0);
    for word in boot.bootargs().split_ascii_whitespace() {
        let (kind, rest) = match word.split_once('=') {
            Some((k @ ("probe" | "own" | "fresh"), r)) => (k, r),
            _ => continue,
        };
        let (name, addr) = rest
            .split_once(':')
            .and_then(|(n, a)| Some((n, hex(a)?)))
            .ok_or_else(|| fail!("bad {word}: NAME:0xADDR"))?;
        let addr = addr & !3;
        if kind == "fresh" {
            const LEN: u64 = 64 << 10;
            if !boot
                .memory()
                .any(|r| r.contains(addr) && r.contains(addr + LEN - 1))
            {
                return Err(fail!("fresh={name}:0x{addr:x} is not in this VM's RAM"));
            }
            // SAFETY: 64 KiB of this VM's own RAM (checked above), which this
            // guest does not otherwise use; only read.
            let leftover = (0..LEN)
                .step_by(8)
                .map(|off| (off, unsafe { ((addr + off) as *const u64).read_volatile() }))
                .find(|&(_, v)| v != 0);
            match leftover {
                None => say!("{name} 0x{addr:x} reads as zeros ({LEN} bytes of fresh RAM)"),
                Some((off, v)) => {
                    say!("{name} 0x{addr:x}: NOT ISOLATED: fresh RAM holds 0x{v:x} at +0x{off:x}");
                    bad += 1;
                }
            }
            continue;
        }
        if kind == "own" {
            let inside = boot
                .memory()
                .any(|r| r.contains(addr) && r.contains(addr + 64));
            if !inside {
                return Err(fail!("own={name}:0x{addr:x} is not in this VM's RAM"));
            }
            // SAFETY: the word is this VM's RAM, past its Image (the test gives
            // the hypervisor's addresses, which are above this guest's image).
            let (magic, back) = unsafe {
                let m = ((addr + 56) as *const u32).read_volatile();
                let p = addr as *mut u32;
                p.write_volatile(0x1501_a7ed);
                (m, p.read_volatile())
            };
            if magic == IMAGE_MAGIC || back != 0x1501_a7ed {
                say!(
                    "{name} 0x{addr:x}: NOT ISOLATED: reads 0x{magic:x} at +56, wrote 0x1501a7ed read back 0x{back:x}"
                );
                bad += 1;
            } else {
                say!(
                    "{name} 0x{addr:x} is this VM's own RAM (wrote and read back 0x{back:x}; no Image magic at +56)"
                );
            }
            continue;
        }
        probes += 1;
        // SAFETY: the address is one the hypervisor keeps from guests; a read
        // must abort (the armed handler skips it).
        let r = unsafe { probe::read_u32(addr) }.map(Some);
        if aborted("read", name, addr, r) {
            aborts += 1;
        } else {
            bad += 1;
        }
        // SAFETY: as above; the value is a marker, never this VM's memory.
        let w = unsafe { write_u32(addr, 0xdead_beef) }.map(|()| None);
        if aborted("write", name, addr, w) {
            aborts += 1;
        } else {
            bad += 1;
        }
    }
    say!("probes={probes} aborts={aborts}");
    if bad != 0 {
        return Err(fail!("{bad} access(es) not isolated"));
    }
    Ok(())
}
