//! `mte`: a guest uses memory tagging (FEAT_MTE2) and checks its tags round after
//! round, so that a snapshot restore can be seen to bring them back.
//!
//! Bootargs: `expect=none` for a VM not offered MTE; `rounds=N` (default 4; 0:
//! for ever), `ms=M` between rounds (default 50), `retag=R` (the round that
//! retags the granule with 9; default none).
//!
//! With MTE (ID_AA64PFR1_EL1.MTE >= 2):
//! 1. the MMU goes on with an identity map of 1 GiB blocks: the block holding the
//!    guest Tagged Normal write-back (MAIR 0xf0), the rest Device; TBI0 so
//!    pointers carry tags; SCTLR_EL1.ATA (tag access) and TCF = synchronous
//!    faults; GCR_EL1 is written with 0xaa (its Exclude mask);
//! 2. one 16-byte granule is tagged 5 (`STG`);
//! 3. every round: `LDG` reads the granule's tag, a load through a pointer with
//!    that tag works, a load through a pointer with another tag takes a
//!    synchronous tag-check fault (data abort, DFSC 0x11) and GCR_EL1 still reads
//!    0xaa. The line: `mte: round R: tag T, matching load 0x..., mismatched load:
//!    tag check fault (EC 0x25 DFSC 0x11)`.
//!
//! Without MTE (`expect=none`): MTE reads 0 and GCR_EL1 is UNDEFINED.
//!
//! Lines: `mte: ...` facts, then PASS or FAIL.

#![no_std]
#![no_main]
#![deny(unsafe_op_in_unsafe_fn)]
#![deny(clippy::undocumented_unsafe_blocks)]

use core::arch::asm;
use core::sync::atomic::{AtomicU64, Ordering};
use rt::{Boot, Fail, fail, probe, say};

rt::guest!("mte", main);

/// The level-1 table of the identity map (39-bit VA, 4 KiB granule: 512 blocks
/// of 1 GiB).
#[repr(C, align(4096))]
struct Table([u64; 512]);
static mut L1: Table = Table([0; 512]);

/// The tagged granule (and one more, untouched): only ever reached through
/// pointers carrying its tag, in `asm`.
#[repr(C, align(16))]
struct Granules([u64; 4]);
static mut BUF: Granules = Granules([0x1111_2222_3333_4444, 0, 0, 0]);

/// The tag the granule should have (RAM: a restore brings back its value then).
static EXPECT: AtomicU64 = AtomicU64::new(0);

const GCR: u64 = 0xaa;

fn number(boot: &Boot, key: &str, default: u64) -> Result<u64, Fail> {
    match boot.bootarg(key) {
        None => Ok(default),
        Some(text) => text.parse().map_err(|_| fail!("bad {key}={text}")),
    }
}

fn read_gcr() -> u64 {
    let v: u64;
    // SAFETY: reads GCR_EL1 (with MTE: the caller checked the ID field).
    unsafe { asm!("mrs {}, s3_0_c1_c0_6", out(reg) v, options(nomem, nostack)) };
    v
}

/// The identity map and the MTE controls (see the module docs).
fn mmu_on() {
    let here = mmu_on as usize as u64;
    let ram_block = here >> 30;
    // SAFETY: the table is written once, before the MMU uses it.
    let table = unsafe { &mut *core::ptr::addr_of_mut!(L1) };
    for (i, e) in table.0.iter_mut().enumerate() {
        let base = (i as u64) << 30;
        // Block, AF; AttrIndx 1 (Tagged Normal), inner shareable; or AttrIndx 0
        // (Device-nGnRnE), never executable.
        *e = if i as u64 == ram_block {
            base | 0b01 | (1 << 2) | (0b11 << 8) | (1 << 10)
        } else {
            base | 0b01 | (1 << 10) | (1 << 53) | (1 << 54)
        };
    }
    let mair: u64 = 0xf0 << 8;
    // T0SZ 25, IRGN0/ORGN0 write-back, SH0 inner, TG0 4K, EPD1, IPS 40 bits, TBI0.
    let tcr: u64 = 25 | (1 << 8) | (1 << 10) | (0b11 << 12) | (1 << 23) | (2 << 32) | (1 << 37);
    let ttbr = table.0.as_ptr() as u64;
    // SAFETY: the map is an identity map of everything this guest touches (its
    // RAM normal, devices device), so turning it on changes no address's meaning.
    unsafe {
        asm!(
            "dsb sy",
            "msr mair_el1, {mair}",
            "msr tcr_el1, {tcr}",
            "msr ttbr0_el1, {ttbr}",
            "isb",
            "tlbi vmalle1",
            "dsb sy",
            "isb",
            "mrs {s}, sctlr_el1",
            // M, C, I; ATA (43); TCF = 0b01, synchronous (41:40).
            "orr {s}, {s}, {bits}",
            "msr sctlr_el1, {s}",
            "isb",
            mair = in(reg) mair, tcr = in(reg) tcr, ttbr = in(reg) ttbr,
            s = out(reg) _,
            bits = in(reg) (1u64 << 0) | (1 << 2) | (1 << 12) | (1 << 43) | (1 << 40),
            options(nostack)
        );
        asm!("msr s3_0_c1_c0_6, {}", "isb", in(reg) GCR, options(nomem, nostack));
    }
}

fn granule() -> u64 {
    core::ptr::addr_of!(BUF) as u64
}

fn with_tag(addr: u64, tag: u64) -> u64 {
    (addr & !(0xf << 56)) | (tag << 56)
}

fn set_tag(tag: u64) {
    let p = with_tag(granule(), tag);
    // SAFETY: STG sets the allocation tag of BUF's first granule; data unchanged.
    unsafe { asm!(".arch_extension memtag", "stg {p}, [{p}]", p = in(reg) p, options(nostack)) };
    EXPECT.store(tag, Ordering::SeqCst);
}

fn read_tag() -> u64 {
    let mut p = granule();
    // SAFETY: LDG reads the allocation tag of BUF's first granule into p[59:56].
    unsafe { asm!(".arch_extension memtag", "ldg {p}, [{p}]", p = inout(reg) p, options(nostack)) };
    (p >> 56) & 0xf
}

/// A load from BUF through a pointer with `tag`.
fn load(tag: u64) -> Result<u64, rt::exception::Taken> {
    let p = with_tag(granule(), tag);
    // SAFETY: one load, under `probe::catch`, which skips it if it faults (the
    // output is initialised).
    unsafe {
        probe::catch(|| {
            let mut v = 0u64;
            asm!("ldr {v}, [{p}]", p = in(reg) p, v = inout(reg) v, options(nostack, readonly));
            v
        })
    }
}

fn main(boot: &Boot) -> Result<(), Fail> {
    let pfr1: u64;
    // SAFETY: reading an ID register.
    unsafe { asm!("mrs {}, id_aa64pfr1_el1", out(reg) pfr1, options(nomem, nostack)) };
    let level = (pfr1 >> 8) & 0xf;
    if boot.bootarg("expect") == Some("none") {
        if level != 0 {
            return Err(fail!("MTE is {level}, but this VM was offered no MTE"));
        }
        // SAFETY: under `probe::catch`, which skips an UNDEF; output initialised.
        let r = unsafe {
            probe::catch(|| {
                let mut v = 0u64;
                asm!("mrs {}, s3_0_c1_c0_6", inout(reg) v, options(nomem, nostack));
                v
            })
        };
        return match r {
            Err(t) if t.ec() == rt::exception::EC_UNKNOWN => {
                say!("no MTE: ID_AA64PFR1_EL1.MTE 0, GCR_EL1 is UNDEFINED");
                Ok(())
            }
            Err(t) => Err(fail!("GCR_EL1: exception class {:#x}, not UNDEF", t.ec())),
            Ok(v) => Err(fail!("GCR_EL1 read {v:#x} without MTE")),
        };
    }
    if level < 2 {
        return Err(fail!("ID_AA64PFR1_EL1.MTE is {level}: no FEAT_MTE2"));
    }
    let rounds = number(boot, "rounds", 4)?;
    let ms = number(boot, "ms", 50)?;
    let retag = boot
        .bootarg("retag")
        .map(|t| t.parse::<u64>().map_err(|_| fail!("bad retag={t}")))
        .transpose()?;
    mmu_on();
    say!(
        "MTE level {level}; MMU on, RAM Tagged, synchronous tag checks, GCR_EL1 {:#x}",
        read_gcr()
    );
    set_tag(5);
    say!("granule at {:#x} tagged 5", granule());
    let mut round = 0;
    while rounds == 0 || round < rounds {
        round += 1;
        if Some(round) == retag {
            set_tag(9);
            say!("round {round}: retagged 9");
        }
        let expect = EXPECT.load(Ordering::SeqCst);
        let tag = read_tag();
        let good = load(tag).map_err(|t| {
            fail!(
                "round {round}: load with the granule's tag {tag} faulted (ESR {:#x})",
                t.esr
            )
        })?;
        let wrong = (tag + 1) & 0xf;
        let fault = match load(wrong) {
            Ok(v) => {
                return Err(fail!(
                    "round {round}: load with tag {wrong} read {v:#x}: no tag check"
                ));
            }
            Err(t) => t,
        };
        let gcr = read_gcr();
        say!(
            "round {round}: tag {tag}, matching load {good:#x}, mismatched load: tag check fault (EC {:#x} DFSC {:#x}), GCR_EL1 {gcr:#x}",
            fault.ec(),
            fault.fsc()
        );
        if tag != expect {
            return Err(fail!(
                "round {round}: the granule's tag is {tag}, not {expect}"
            ));
        }
        if fault.ec() != rt::exception::EC_DATA_ABORT_SAME_EL || fault.fsc() != 0x11 {
            return Err(fail!(
                "round {round}: mismatched load: ESR {:#x}, not a synchronous tag check fault",
                fault.esr
            ));
        }
        if gcr != GCR {
            return Err(fail!("round {round}: GCR_EL1 is {gcr:#x}, not {GCR:#x}"));
        }
        rt::smp::delay_ms(ms);
    }
    Ok(())
}
