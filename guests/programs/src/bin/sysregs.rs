//! `sysregs`: the system registers a hypervisor traps behave as on bare hardware.
//!
//! The acceptance guest of the cpreg table (issue 3). In order:
//!
//! 1. Every register HCR_EL2.TVM/TRVM traps is written with a distinct value
//!    and read back (`sysregs: <NAME> wrote 0x.. read 0x.. ok|MISMATCH`). The
//!    values only use bits Armv8.0 defines, so bare QEMU (`-cpu max` and
//!    `cortex-a72`) keeps them whole; AFSR0/AFSR1/AMAIR_EL1 are IMPLEMENTATION
//!    DEFINED and QEMU makes them RAZ/WI, so for those either the value written
//!    or 0 is accepted. SCTLR_EL1 keeps M, C and I as found: only bits that
//!    affect EL0 alone are flipped (UMA, DZE, UCT, nTWI, nTWE, UCI). The MMU
//!    stays off, so translation registers can hold any value; they are restored
//!    afterwards anyway.
//! 2. The ID registers (ID_AA64*, MIDR, MPIDR, REVIDR, AIDR, CTR, CLIDR and
//!    CCSIDR for every cache CLIDR reports, selected with CSSELR) are printed as
//!    `sysregs: ID <NAME>=0x..` for a test to check the sanitised values.
//! 3. An IMPLEMENTATION DEFINED encoding and an EL2 register (read and write)
//!    must each raise UNDEF (EC 0x00) in the guest, which then continues.
//! 4. `DC CSW`, `DC CISW`, `DC ISW` on set/way 0 of level 1 complete.
//! 5. A loop of exactly [`LOOP`] writes and [`LOOP`] reads of CONTEXTIDR_EL1, so
//!    a test can check the hypervisor's `traps` counts against what was done.

#![no_std]
#![no_main]
#![deny(unsafe_op_in_unsafe_fn)]
#![deny(clippy::undocumented_unsafe_blocks)]

use core::arch::asm;
use rt::exception::EC_UNKNOWN;
use rt::{Boot, Fail, fail, probe, say};

rt::guest!("sysregs", main);

/// Writes and reads of CONTEXTIDR_EL1 in the counting loop.
const LOOP: u64 = 100;

/// Reads a system register by name or `S<op0>_<op1>_C<n>_C<m>_<op2>` encoding.
macro_rules! mrs {
    ($reg:literal) => {{
        let v: u64;
        // SAFETY: reading this register has no side effect.
        unsafe { asm!(concat!("mrs {}, ", $reg), out(reg) v, options(nomem, nostack)) };
        v
    }};
}

/// Writes a system register, then synchronises the context (`isb`).
macro_rules! msr {
    ($reg:literal, $v:expr) => {{
        let v: u64 = $v;
        // SAFETY: every write made through this macro is chosen so that it cannot
        // disturb this guest: EL0-only SCTLR bits, translation registers with the
        // MMU off, fault/syndrome registers and identifiers nobody else reads.
        unsafe { asm!(concat!("msr ", $reg, ", {}"), "isb", in(reg) v, options(nostack)) };
    }};
}

/// One instruction that must raise UNDEF; returns what it read, if it did not.
type Probe = fn() -> u64;

/// One register of the write/read-back test.
struct Rw {
    name: &'static str,
    read: fn() -> u64,
    write: fn(u64),
    /// The value to write (for SCTLR_EL1: the bits to flip).
    value: u64,
    /// IMPLEMENTATION DEFINED: RAZ/WI is acceptable too.
    may_be_raz: bool,
}

/// SCTLR_EL1 bits that only change what EL0 may do: UMA (9), DZE (14), UCT (15),
/// nTWI (16), nTWE (18), UCI (26).
const SCTLR_EL0_ONLY: u64 = (1 << 9) | (1 << 14) | (1 << 15) | (1 << 16) | (1 << 18) | (1 << 26);

macro_rules! rw {
    ($name:literal, $reg:literal, $value:expr, $raz:expr) => {
        Rw {
            name: $name,
            read: || mrs!($reg),
            write: |v| msr!($reg, v),
            value: $value,
            may_be_raz: $raz,
        }
    };
}

fn registers() -> [Rw; 11] {
    [
        rw!("SCTLR_EL1", "sctlr_el1", SCTLR_EL0_ONLY, false),
        // ASID 1, BADDR 0x41234000.
        rw!("TTBR0_EL1", "ttbr0_el1", 0x0001_0000_4123_4000, false),
        rw!("TTBR1_EL1", "ttbr1_el1", 0x0002_0000_4567_8000, false),
        // T0SZ=T1SZ=25, inner/outer WBWA, inner shareable, 4 KiB granules,
        // IPS=40 bits, 16-bit ASIDs.
        rw!("TCR_EL1", "tcr_el1", 0x0000_0012_b519_3519, false),
        rw!("ESR_EL1", "esr_el1", 0x5600_1234, false),
        rw!("FAR_EL1", "far_el1", 0x1234_5678_9abc_def0, false),
        rw!("AFSR0_EL1", "afsr0_el1", 0x1111_2222, true),
        rw!("AFSR1_EL1", "afsr1_el1", 0x3333_4444, true),
        rw!("MAIR_EL1", "mair_el1", 0x44ff_0c08_0400_bbff, false),
        rw!("AMAIR_EL1", "amair_el1", 0x5555_6666, true),
        rw!("CONTEXTIDR_EL1", "contextidr_el1", 0x1234_5678, false),
    ]
}

fn main(_boot: &Boot) -> Result<(), Fail> {
    let mut failures = 0;
    for reg in registers() {
        let original = (reg.read)();
        let value = if reg.name == "SCTLR_EL1" {
            original ^ reg.value
        } else {
            reg.value
        };
        (reg.write)(value);
        let read = (reg.read)();
        let ok = read == value || (reg.may_be_raz && read == 0);
        say!(
            "{} wrote 0x{:x} read 0x{:x} {}",
            reg.name,
            value,
            read,
            if ok { "ok" } else { "MISMATCH" }
        );
        if !ok {
            failures += 1;
        }
        // Put back what the guest (and its exception handler) rely on; the
        // identifier and syndrome registers keep the test value.
        if matches!(
            reg.name,
            "SCTLR_EL1" | "TTBR0_EL1" | "TTBR1_EL1" | "TCR_EL1" | "MAIR_EL1"
        ) {
            (reg.write)(original);
        }
    }

    id_registers();

    // Each probe is one `mrs`/`msr` that either completes or raises UNDEF.
    let undef_checks: [(&str, Probe); 4] = [
        ("mrs S3_0_C15_C0_0 (IMPLEMENTATION DEFINED)", || {
            let mut v = 0;
            // SAFETY: run under `probe::catch`, which skips an UNDEF; the
            // output is initialised, and the access has no side effect.
            unsafe { asm!("mrs {}, S3_0_C15_C0_0", inout(reg) v, options(nomem, nostack)) };
            v
        }),
        ("msr S3_0_C15_C0_0 (IMPLEMENTATION DEFINED)", || {
            // SAFETY: run under `probe::catch`, which skips an UNDEF; the
            // output is initialised, and the access has no side effect.
            unsafe { asm!("msr S3_0_C15_C0_0, xzr", options(nomem, nostack)) };
            0
        }),
        ("mrs HCR_EL2", || {
            let mut v = 0;
            // SAFETY: run under `probe::catch`, which skips an UNDEF; the
            // output is initialised, and the access has no side effect.
            unsafe { asm!("mrs {}, S3_4_C1_C1_0", inout(reg) v, options(nomem, nostack)) };
            v
        }),
        ("msr HCR_EL2", || {
            // SAFETY: run under `probe::catch`, which skips an UNDEF; the
            // output is initialised, and the access has no side effect.
            unsafe { asm!("msr S3_4_C1_C1_0, xzr", options(nomem, nostack)) };
            0
        }),
    ];
    for (what, f) in undef_checks {
        // SAFETY: `f` executes exactly one instruction that may fault (see above).
        match unsafe { probe::catch(f) } {
            Err(t) if t.ec() == EC_UNKNOWN => say!("UNDEF {what} EC=0x{:02x} ok", t.ec()),
            Err(t) => {
                say!("UNDEF {what} EC=0x{:02x} MISMATCH", t.ec());
                failures += 1;
            }
            Ok(v) => {
                say!("UNDEF {what} no exception (read 0x{v:x}) MISMATCH");
                failures += 1;
            }
        }
    }

    // Level 1, set 0, way 0. With the MMU off every data access is
    // Device-nGnRnE, so no line this guest owns can be dirty in a cache.
    // SAFETY: set/way maintenance on one line neither this guest nor the
    // hypervisor relies on (see above); it cannot fault at EL1.
    unsafe { asm!("dc csw, xzr", "dsb sy", options(nostack)) };
    say!("DC CSW completed");
    // SAFETY: as above.
    unsafe { asm!("dc cisw, xzr", "dsb sy", options(nostack)) };
    say!("DC CISW completed");
    // SAFETY: as above; nothing dirty can be lost (no cacheable accesses).
    unsafe { asm!("dc isw, xzr", "dsb sy", options(nostack)) };
    say!("DC ISW completed");

    let mut last = 0;
    for i in 0..LOOP {
        msr!("contextidr_el1", 0x100 + i);
        last = mrs!("contextidr_el1");
    }
    say!("wrote CONTEXTIDR_EL1 {LOOP} times, read it {LOOP} times (last 0x{last:x})");
    // The write/read-back test above did one more of each.
    say!(
        "CONTEXTIDR_EL1 total writes={} reads={}",
        LOOP + 1,
        LOOP + 2
    );
    if last != 0x100 + LOOP - 1 {
        failures += 1;
        say!("CONTEXTIDR_EL1 loop read 0x{last:x} MISMATCH");
    }

    if failures > 0 {
        return Err(fail!("{failures} check(s) failed"));
    }
    Ok(())
}

/// Prints every ID register a test checks, then CCSIDR_EL1 for each cache.
fn id_registers() {
    let ids: [(&str, u64); 17] = [
        ("ID_AA64PFR0_EL1", mrs!("S3_0_C0_C4_0")),
        ("ID_AA64PFR1_EL1", mrs!("S3_0_C0_C4_1")),
        ("ID_AA64ZFR0_EL1", mrs!("S3_0_C0_C4_4")),
        ("ID_AA64DFR0_EL1", mrs!("S3_0_C0_C5_0")),
        ("ID_AA64ISAR0_EL1", mrs!("S3_0_C0_C6_0")),
        ("ID_AA64ISAR1_EL1", mrs!("S3_0_C0_C6_1")),
        ("ID_AA64ISAR2_EL1", mrs!("S3_0_C0_C6_2")),
        ("ID_AA64MMFR0_EL1", mrs!("S3_0_C0_C7_0")),
        ("ID_AA64MMFR1_EL1", mrs!("S3_0_C0_C7_1")),
        ("ID_AA64MMFR2_EL1", mrs!("S3_0_C0_C7_2")),
        ("MIDR_EL1", mrs!("midr_el1")),
        ("MPIDR_EL1", mrs!("mpidr_el1")),
        ("REVIDR_EL1", mrs!("revidr_el1")),
        ("AIDR_EL1", mrs!("aidr_el1")),
        ("CTR_EL0", mrs!("ctr_el0")),
        ("CLIDR_EL1", mrs!("clidr_el1")),
        ("CSSELR_EL1", mrs!("csselr_el1")),
    ];
    let mut clidr = 0;
    for (name, value) in ids {
        say!("ID {name}=0x{value:x}");
        if name == "CLIDR_EL1" {
            clidr = value;
        }
    }
    let csselr = mrs!("csselr_el1");
    for level in 0..7u64 {
        // Ctype<n>: 0 none, 1 I only, 2 D only, 3 separate I and D, 4 unified.
        let ctype = (clidr >> (3 * level)) & 7;
        for (ind, kind) in [(0u64, "D"), (1, "I")] {
            let present = matches!((ctype, ind), (2..=4, 0) | (1 | 3, 1));
            if present {
                msr!("csselr_el1", (level << 1) | ind);
                let kind = if ctype == 4 { "U" } else { kind };
                say!(
                    "ID CCSIDR_EL1[L{} {kind}]=0x{:x}",
                    level + 1,
                    mrs!("ccsidr_el1")
                );
            }
        }
    }
    msr!("csselr_el1", csselr);
}
