//! The random-guest fuzzer's operation generator: from a seed and the machine's
//! layout, the same sequence of operations, wherever it runs.
//!
//! The `fuzz` guest executes these operations at EL1; `cargo xtask fuzz-guest`
//! includes this very file (`#[path]`) to list, on the host, the operations a
//! failing run executed since its last progress line, from the seed and the
//! `layout` line the guest printed. So nothing here depends on what an operation
//! did: operation `i` of a seed is a pure function of the seed and the layout.
//!
//! Every operation is one 32-bit instruction word executed with all 31 general
//! registers set from [`Op::regs`] (the guest's sandbox, `fuzz.rs`). What would
//! destroy the guest itself (not the hypervisor) is excluded, and only that; the
//! lists are [`NEVER_WRITTEN`], [`Fix`], [`FATAL_CALLS`] and [`Gen::insn_ok`]:
//!
//! - its own RAM is never written. The load and store operations take their
//!   addresses outside it (with 64 bytes to spare below it). A random
//!   instruction runs with every register either below 2^16 or with bits 16-39
//!   clear and some bit above 39 set, so no base plus offset, shifted or
//!   extended register or immediate reaches RAM, and the stack pointer
//!   (SP_EL0 in the sandbox) points into a 2 MiB scratch buffer of the
//!   guest's own. The address a `SYS` operation (`DC`, `AT`, `TLBI`) takes is
//!   never within 1 MiB of RAM;
//! - its console UART page is never written (the guest's only output);
//! - the registers that run it: `VBAR_EL1` and `SPSel` are never written;
//!   `SCTLR_EL1` keeps M, A, SA, EOS, EIS, EE, NMI and SPINTMASK and
//!   `CPACR_EL1` keeps FP/SIMD enabled (both restored after each operation);
//!   the guarded control stack registers are never written (a GCS would fault
//!   every return);
//! - PSCI and SMCCC calls that end or stop its CPU (`CPU_OFF` on itself,
//!   `SYSTEM_OFF`, `SYSTEM_RESET`, `SYSTEM_RESET2`, `CPU_FREEZE`, and the
//!   suspends, which may wait for an interrupt it has masked) become
//!   `PSCI_VERSION`; `CPU_ON` of one of its own CPUs gets a parking entry point
//!   (the CPU turns itself off again) instead of a random one, which would run
//!   whatever bytes are there;
//! - QEMU's own bugs: QEMU 10.0's virtual GIC CPU interface clamps a value
//!   written to `ICC_BPR1_EL1` to the minimum before it keeps the low 3 bits,
//!   so `0x...f0` leaves the binary point at 0 and QEMU aborts on its own
//!   assertion (`icv_gprio_mask: bpr > 0`) at the next priority check. Those
//!   writes carry only bits 2:0 (the rest are RES0; hardware sets the minimum);
//! - instructions: branches (they leave the sandbox), `ERET`, `WFI`/`WFIT`/`WFET`
//!   (nothing would wake it: its interrupts are masked), `MSR SPSel`, and the
//!   memory copy and set instructions (`CPY*`, `SET*`: their size is a register,
//!   so from outside its RAM they could run into it).

#![forbid(unsafe_code)]
#![allow(dead_code)]

use core::fmt;

/// What an operation exercises.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Kind {
    /// `MRS`/`MSR`/`SYS`/`SYSL` of a random encoding with a random value.
    SysReg,
    /// A random instruction word.
    Insn,
    /// A load or store at a random address of the device space or outside RAM.
    Mem,
    /// A load or store into the GIC distributor, redistributors or CPU interface.
    Gic,
    /// `HVC`/`SMC` with a random function id and arguments.
    Hvc,
    /// A PSCI call with random targets and arguments.
    Psci,
}

pub const KINDS: [Kind; 6] = [
    Kind::SysReg,
    Kind::Insn,
    Kind::Mem,
    Kind::Gic,
    Kind::Hvc,
    Kind::Psci,
];

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::SysReg => "sysreg",
            Kind::Insn => "insn",
            Kind::Mem => "mem",
            Kind::Gic => "gic",
            Kind::Hvc => "hvc",
            Kind::Psci => "psci",
        }
    }
    pub fn index(self) -> usize {
        KINDS.iter().position(|&k| k == self).unwrap_or(0)
    }
}

/// A register value the guest fills in when it executes the operation.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Fix {
    None,
    /// `regs[r]` is written to SCTLR_EL1: keep [`SCTLR_KEEP`] as they are.
    Sctlr(u8),
    /// `regs[r]` is written to CPACR_EL1: keep FP/SIMD enabled ([`CPACR_FPEN`]).
    Cpacr(u8),
    /// `regs[r]` is a PSCI entry point: the parking code (`CPU_ON` of an own CPU).
    Park(u8),
}

/// SCTLR_EL1 bits the fuzzer never changes: M (0), A (1), SA (3), EOS (11),
/// EIS (22), EE (25), NMI (61), SPINTMASK (62). With the MMU on, alignment
/// checks, another endianness or non-maskable interrupts the guest itself
/// would stop.
pub const SCTLR_KEEP: u64 = 1 | 1 << 1 | 1 << 3 | 1 << 11 | 1 << 22 | 1 << 25 | 1 << 61 | 1 << 62;
/// ICC_BPR1_EL1 (op0, op1, CRn, CRm, op2): written with bits 2:0 only.
pub const ICC_BPR1_EL1: (u32, u32, u32, u32, u32) = (3, 0, 12, 12, 3);
/// CPACR_EL1.FPEN = 0b11: the guest's own code uses FP/SIMD registers.
pub const CPACR_FPEN: u64 = 3 << 20;

/// A system-register encoding: (op0, op1, CRn, CRm, op2).
pub type Encoding = (u32, u32, u32, u32, u32);

/// System registers never written (encoding, name, why): a write of one
/// becomes a read.
pub const NEVER_WRITTEN: [(Encoding, &str, &str); 6] = [
    (
        (3, 0, 12, 0, 0),
        "VBAR_EL1",
        "the guest's own exception vectors",
    ),
    (
        (3, 0, 4, 2, 0),
        "SPSel",
        "the sandbox runs on SP_EL0, its vectors on SP_EL1",
    ),
    (
        (3, 0, 2, 5, 0),
        "GCSCR_EL1",
        "a guarded control stack faults every return",
    ),
    (
        (3, 0, 2, 5, 1),
        "GCSPR_EL1",
        "a guarded control stack faults every return",
    ),
    ((3, 0, 2, 5, 2), "GCSCRE0_EL1", "a guarded control stack"),
    ((3, 3, 2, 5, 1), "GCSPR_EL0", "a guarded control stack"),
];

/// PSCI calls that end the guest or stop its fuzzing CPU: replaced by
/// PSCI_VERSION. A suspend may wait for an interrupt (QEMU's own PSCI does),
/// and the guest's are masked: nothing would wake it.
pub const FATAL_CALLS: [(u32, &str); 12] = [
    (0x8400_0001, "CPU_SUSPEND"),
    (0xc400_0001, "CPU_SUSPEND"),
    (0x8400_0002, "CPU_OFF"),
    (0x8400_0008, "SYSTEM_OFF"),
    (0x8400_0009, "SYSTEM_RESET"),
    (0x8400_000b, "CPU_FREEZE"),
    (0x8400_000c, "CPU_DEFAULT_SUSPEND"),
    (0xc400_000c, "CPU_DEFAULT_SUSPEND"),
    (0x8400_000e, "SYSTEM_SUSPEND"),
    (0xc400_000e, "SYSTEM_SUSPEND"),
    (0x8400_0012, "SYSTEM_RESET2"),
    (0xc400_0012, "SYSTEM_RESET2"),
];

pub const PSCI_VERSION: u32 = 0x8400_0000;
/// PSCI function ids the PSCI operations pick from (DEN 0022, 32- and 64-bit).
pub const PSCI_CALLS: [u32; 33] = [
    0x8400_0000, // VERSION
    0x8400_0001, // CPU_SUSPEND
    0xc400_0001,
    0x8400_0002, // CPU_OFF (fatal: becomes VERSION)
    0x8400_0003, // CPU_ON
    0xc400_0003,
    0x8400_0004, // AFFINITY_INFO
    0xc400_0004,
    0x8400_0005, // MIGRATE
    0xc400_0005,
    0x8400_0006, // MIGRATE_INFO_TYPE
    0x8400_0007, // MIGRATE_INFO_UP_CPU
    0xc400_0007,
    0x8400_000a, // PSCI_FEATURES
    0x8400_000c, // CPU_DEFAULT_SUSPEND
    0xc400_000c,
    0x8400_000d, // NODE_HW_STATE
    0xc400_000d,
    0x8400_000e, // SYSTEM_SUSPEND
    0xc400_000e,
    0x8400_000f, // PSCI_SET_SUSPEND_MODE
    0x8400_0010, // PSCI_STAT_RESIDENCY
    0xc400_0010,
    0x8400_0011, // PSCI_STAT_COUNT
    0xc400_0011,
    0x8400_0013, // MEM_PROTECT
    0x8400_0014, // MEM_PROTECT_CHECK_RANGE
    0xc400_0014,
    0x8000_0000, // SMCCC_VERSION
    0x8000_0001, // SMCCC_ARCH_FEATURES
    0x8000_0002, // SMCCC_ARCH_SOC_ID
    0x8000_7fff, // SMCCC_ARCH_WORKAROUND_3
    0x8400_0008, // SYSTEM_OFF (fatal: becomes VERSION)
];

/// A load or store with the address in x0, data in x1 and x2 (x3 the status
/// of a store-exclusive): (encoding, name, writes memory). The `fuzz` guest
/// checks these against the assembler's encodings of the same instructions.
pub const MEM_TEMPLATES: [(u32, &str, bool); 24] = [
    (0x3940_0001, "ldrb w1, [x0]", false),
    (0x7940_0001, "ldrh w1, [x0]", false),
    (0xb940_0001, "ldr w1, [x0]", false),
    (0xf940_0001, "ldr x1, [x0]", false),
    (0x3900_0001, "strb w1, [x0]", true),
    (0x7900_0001, "strh w1, [x0]", true),
    (0xb900_0001, "str w1, [x0]", true),
    (0xf900_0001, "str x1, [x0]", true),
    (0xa940_0801, "ldp x1, x2, [x0]", false),
    (0xa900_0801, "stp x1, x2, [x0]", true),
    (0x3dc0_0001, "ldr q1, [x0]", false),
    (0x3d80_0001, "str q1, [x0]", true),
    (0xf840_8401, "ldr x1, [x0], #8", false),
    (0xf800_8c01, "str x1, [x0, #8]!", true),
    (0xc85f_7c01, "ldxr x1, [x0]", false),
    (0xc803_7c01, "stxr w3, x1, [x0]", true),
    (0xf821_0002, "ldadd x1, x2, [x0]", true),
    (0xf821_8002, "swp x1, x2, [x0]", true),
    (0xc8a1_7c02, "cas x1, x2, [x0]", true),
    (0xc8df_fc01, "ldar x1, [x0]", false),
    (0xc89f_fc01, "stlr x1, [x0]", true),
    (0xd50b_7420, "dc zva, x0", true),
    (0x4c40_7001, "ld1 {v1.16b}, [x0]", false),
    (0x4c00_7001, "st1 {v1.16b}, [x0]", true),
];
/// `ldr w1, [x0]`: what a store into the console UART page becomes.
const LDR_W: usize = 2;
/// Templates of the GIC operations: 32-bit mostly, every width, and pairs
/// (whose aborts carry no syndrome for an emulator: ISV = 0).
const GIC_TEMPLATES: [usize; 12] = [2, 6, 2, 6, 2, 6, 0, 4, 1, 5, 3, 7];
const GIC_PAIRS: [usize; 4] = [8, 9, 16, 10];

/// Encodings a third of the system-register operations pick from: the GIC's
/// CPU interface, timers, PMU, debug, the trapped EL1 controls, ID registers,
/// cache and TLB maintenance, address translation, and EL2/EL12 encodings
/// (UNDEF at EL1 without nested virtualisation), as (op0, op1, CRn, CRm, op2).
pub const NOTABLE: [Encoding; 72] = [
    (3, 0, 12, 11, 5), // ICC_SGI1R_EL1
    (3, 0, 12, 11, 6), // ICC_ASGI1R_EL1
    (3, 0, 12, 11, 7), // ICC_SGI0R_EL1
    (3, 0, 4, 6, 0),   // ICC_PMR_EL1
    (3, 0, 12, 12, 0), // ICC_IAR1_EL1
    (3, 0, 12, 12, 1), // ICC_EOIR1_EL1
    (3, 0, 12, 11, 1), // ICC_DIR_EL1
    (3, 0, 12, 12, 4), // ICC_CTLR_EL1
    (3, 0, 12, 12, 5), // ICC_SRE_EL1
    (3, 0, 12, 12, 6), // ICC_IGRPEN0_EL1
    (3, 0, 12, 12, 7), // ICC_IGRPEN1_EL1
    (3, 0, 12, 12, 3), // ICC_BPR1_EL1
    (3, 0, 12, 9, 0),  // ICC_AP1R0_EL1
    (3, 0, 12, 11, 3), // ICC_RPR_EL1
    (3, 0, 12, 8, 0),  // ICC_IAR0_EL1
    (3, 3, 14, 3, 0),  // CNTV_TVAL_EL0
    (3, 3, 14, 3, 1),  // CNTV_CTL_EL0
    (3, 3, 14, 3, 2),  // CNTV_CVAL_EL0
    (3, 3, 14, 2, 0),  // CNTP_TVAL_EL0
    (3, 3, 14, 2, 1),  // CNTP_CTL_EL0
    (3, 3, 14, 2, 2),  // CNTP_CVAL_EL0
    (3, 0, 14, 1, 0),  // CNTKCTL_EL1
    (3, 3, 14, 0, 0),  // CNTFRQ_EL0
    (3, 3, 14, 0, 1),  // CNTPCT_EL0
    (3, 3, 9, 12, 0),  // PMCR_EL0
    (3, 3, 9, 12, 1),  // PMCNTENSET_EL0
    (3, 3, 9, 12, 3),  // PMOVSCLR_EL0
    (3, 3, 9, 12, 5),  // PMSELR_EL0
    (3, 3, 9, 13, 0),  // PMCCNTR_EL0
    (3, 3, 9, 13, 1),  // PMXEVTYPER_EL0
    (3, 3, 9, 13, 2),  // PMXEVCNTR_EL0
    (3, 3, 9, 14, 0),  // PMUSERENR_EL0
    (3, 0, 9, 14, 1),  // PMINTENSET_EL1
    (3, 3, 14, 12, 0), // PMEVTYPER0_EL0
    (3, 3, 14, 15, 7), // PMCCFILTR_EL0
    (2, 0, 0, 2, 2),   // MDSCR_EL1
    (2, 0, 1, 0, 4),   // OSLAR_EL1
    (2, 0, 1, 3, 4),   // OSDLR_EL1
    (2, 0, 1, 1, 4),   // OSLSR_EL1
    (2, 0, 0, 0, 4),   // DBGBVR0_EL1
    (2, 0, 0, 0, 5),   // DBGBCR0_EL1
    (2, 0, 0, 0, 6),   // DBGWVR0_EL1
    (2, 0, 0, 0, 7),   // DBGWCR0_EL1
    (2, 3, 0, 1, 0),   // MDCCSR_EL0
    (2, 3, 0, 4, 0),   // DBGDTR_EL0
    (2, 0, 7, 8, 6),   // DBGCLAIMSET_EL1
    (2, 0, 1, 4, 4),   // DBGPRCR_EL1
    (3, 0, 1, 0, 0),   // SCTLR_EL1
    (3, 0, 1, 0, 1),   // ACTLR_EL1
    (3, 0, 1, 0, 2),   // CPACR_EL1
    (3, 0, 2, 0, 0),   // TTBR0_EL1
    (3, 0, 2, 0, 2),   // TCR_EL1
    (3, 0, 10, 2, 0),  // MAIR_EL1
    (3, 0, 13, 0, 1),  // CONTEXTIDR_EL1
    (3, 2, 0, 0, 0),   // CSSELR_EL1
    (3, 1, 0, 0, 0),   // CCSIDR_EL1
    (3, 0, 0, 4, 0),   // ID_AA64PFR0_EL1
    (3, 0, 1, 2, 0),   // ZCR_EL1
    (3, 3, 4, 2, 2),   // SVCR
    (1, 0, 7, 6, 2),   // DC ISW
    (1, 0, 7, 10, 2),  // DC CSW
    (1, 0, 7, 14, 2),  // DC CISW
    (1, 0, 7, 1, 0),   // IC IALLUIS
    (1, 0, 8, 3, 0),   // TLBI VMALLE1IS
    (1, 0, 7, 8, 0),   // AT S1E1R
    (1, 4, 7, 8, 4),   // AT S12E1R
    (3, 0, 5, 3, 1),   // ERRSELR_EL1
    (3, 4, 1, 1, 0),   // HCR_EL2
    (3, 4, 12, 11, 0), // ICH_HCR_EL2
    (3, 4, 12, 12, 0), // ICH_LR0_EL2
    (3, 5, 1, 0, 0),   // SCTLR_EL12
    (3, 5, 14, 3, 1),  // CNTV_CTL_EL02
];

/// What the guest found in its device tree: everything the generator needs.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct Layout {
    pub ram_start: u64,
    pub ram_end: u64,
    pub uart: u64,
    /// GIC version (2 or 3; 0: no GIC found).
    pub gic: u64,
    pub gicd: u64,
    /// GICv3 redistributors (0 on GICv2).
    pub gicr: u64,
    /// GICv2 CPU interface (0 on GICv3).
    pub gicc: u64,
    /// MPIDR affinities of the guest's CPUs (first `ncpus`).
    pub cpus: [u64; 8],
    pub ncpus: usize,
    /// PSCI through SMC (else HVC).
    pub smc: bool,
}

impl fmt::Display for Layout {
    /// One line the host parses back ([`Layout::parse`]).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "ram=0x{:x}-0x{:x} uart=0x{:x} gic={} gicd=0x{:x} gicr=0x{:x} gicc=0x{:x} conduit={} cpus=",
            self.ram_start,
            self.ram_end,
            self.uart,
            self.gic,
            self.gicd,
            self.gicr,
            self.gicc,
            if self.smc { "smc" } else { "hvc" }
        )?;
        for (i, c) in self.cpus[..self.ncpus].iter().enumerate() {
            write!(f, "{}0x{c:x}", if i == 0 { "" } else { "," })?;
        }
        Ok(())
    }
}

fn hex(s: &str) -> Option<u64> {
    u64::from_str_radix(s.strip_prefix("0x")?, 16).ok()
}

impl Layout {
    /// Parses what [`Layout`]'s `Display` wrote.
    pub fn parse(line: &str) -> Option<Layout> {
        let mut l = Layout::default();
        let mut seen = 0;
        for word in line.split_ascii_whitespace() {
            let (k, v) = word.split_once('=')?;
            seen += 1;
            match k {
                "ram" => {
                    let (a, b) = v.split_once('-')?;
                    l.ram_start = hex(a)?;
                    l.ram_end = hex(b)?;
                }
                "uart" => l.uart = hex(v)?,
                "gic" => l.gic = v.parse().ok()?,
                "gicd" => l.gicd = hex(v)?,
                "gicr" => l.gicr = hex(v)?,
                "gicc" => l.gicc = hex(v)?,
                "conduit" => l.smc = v == "smc",
                "cpus" => {
                    for c in v.split(',').filter(|c| !c.is_empty()) {
                        if l.ncpus == l.cpus.len() {
                            break;
                        }
                        l.cpus[l.ncpus] = hex(c)?;
                        l.ncpus += 1;
                    }
                }
                _ => return None,
            }
        }
        (seen == 8).then_some(l)
    }

    /// Whether `a` is within 1 MiB of the guest's RAM.
    fn near_ram(&self, a: u64) -> bool {
        const MARGIN: u64 = 1 << 20;
        a >= self.ram_start.saturating_sub(MARGIN) && a < self.ram_end.saturating_add(MARGIN)
    }

    /// Whether a store at `a` (up to 64 bytes on) may reach the console UART.
    fn in_uart_page(&self, a: u64) -> bool {
        let page = self.uart & !0xfff;
        a >= page.saturating_sub(64) && a < page + 0x1000
    }
}

/// One operation: an instruction word and the registers it runs with.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Op {
    pub kind: Kind,
    pub insn: u32,
    pub regs: [u64; 31],
    pub fix: Fix,
}

/// The registers an operation's description shows: those it reads.
fn shown_regs(op: &Op) -> usize {
    match op.kind {
        Kind::Hvc | Kind::Psci => 4,
        Kind::Mem | Kind::Gic => 3,
        _ => 0,
    }
}

fn sys_fields(w: u32) -> (u32, u32, u32, u32, u32, bool, usize) {
    (
        (w >> 19) & 3,
        (w >> 16) & 7,
        (w >> 12) & 15,
        (w >> 8) & 15,
        (w >> 5) & 7,
        w & (1 << 21) != 0,
        (w & 31) as usize,
    )
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} 0x{:08x}", self.kind.name(), self.insn)?;
        match self.kind {
            Kind::SysReg => {
                let (op0, op1, crn, crm, op2, read, rt) = sys_fields(self.insn);
                let what = match (op0, read) {
                    (1, false) => "sys",
                    (1, true) => "sysl",
                    (_, true) => "mrs",
                    (_, false) => "msr",
                };
                write!(f, " {what} S{op0}_{op1}_C{crn}_C{crm}_{op2} x{rt}")?;
                if !read && rt < 31 {
                    write!(f, "=0x{:x}", self.regs[rt])?;
                }
            }
            Kind::Mem | Kind::Gic => {
                if let Some(t) = MEM_TEMPLATES.iter().find(|t| t.0 == self.insn) {
                    write!(f, " {}", t.1)?;
                }
            }
            _ => {}
        }
        for r in 0..shown_regs(self) {
            write!(f, " x{r}=0x{:x}", self.regs[r])?;
        }
        match self.fix {
            Fix::None => Ok(()),
            Fix::Sctlr(r) => write!(f, " (x{r}: SCTLR_EL1 safety bits kept)"),
            Fix::Cpacr(r) => write!(f, " (x{r}: FP/SIMD kept enabled)"),
            Fix::Park(r) => write!(f, " (x{r}: the parking entry point)"),
        }
    }
}

/// SplitMix64: small, and every seed (0 too) gives a good sequence.
#[derive(Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    /// Uniform in 0..n (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len() as u64) as usize]
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

/// The operation generator.
pub struct Gen {
    rng: Rng,
    layout: Layout,
}

impl Gen {
    pub fn new(seed: u64, layout: Layout) -> Gen {
        Gen {
            rng: Rng::new(seed),
            layout,
        }
    }

    /// A register value: uniform, small, single bits, patterns, device
    /// addresses.
    fn value(&mut self) -> u64 {
        let r = &mut self.rng;
        match r.below(100) {
            0..=34 => r.next(),
            35..=49 => r.below(256),
            50..=59 => {
                // One bit set, or all but one (a form rustfmt keeps the same in
                // the guests' 2024 edition and in xtask's 2021, which includes it).
                let b = 1u64 << r.below(64);
                let invert = if r.chance(50) { 0 } else { u64::MAX };
                b ^ invert
            }
            60..=69 => r.pick(&[
                0,
                u64::MAX,
                1 << 63,
                u64::MAX >> 1,
                0x5555_5555_5555_5555,
                0xaaaa_aaaa_aaaa_aaaa,
                0xffff_ffff,
                0x8000_0000,
            ]),
            70..=84 => self.address(),
            _ => r.next() & 0xffff_ffff,
        }
    }

    /// A value that is not within 1 MiB of the guest's RAM.
    fn value_off_ram(&mut self) -> u64 {
        let v = self.value();
        if self.layout.near_ram(v) {
            // Move it as far below RAM as it was into it: device space.
            v.wrapping_sub(self.layout.ram_start) & 0x0fff_ffff
        } else {
            v
        }
    }

    /// An address outside the guest's RAM: the device space, just around RAM,
    /// far above it, or anything at all.
    fn address(&mut self) -> u64 {
        let l = self.layout;
        let r = &mut self.rng;
        let a = match r.below(100) {
            0..=39 => r.below(l.ram_start.max(1)),
            40..=54 => l.ram_start.saturating_sub(1 + r.below(2 << 20)),
            55..=69 => l.ram_end + r.below(2 << 20),
            70..=89 => l.ram_end + r.below(1 << 40),
            _ => r.next(),
        };
        // 64 bytes to spare below RAM: a pair or a pre-indexed store.
        if a >= l.ram_start.saturating_sub(64) && a < l.ram_end {
            l.ram_end + (a & 0xfff)
        } else {
            a
        }
    }

    /// A register value for a random instruction: below 2^16, or bits 16-39
    /// clear with a bit above 39 set (see the module docs), or all ones.
    fn value_insn(&mut self) -> u64 {
        let r = &mut self.rng;
        match r.below(10) {
            0..=4 => r.below(1 << 16),
            5 => r.pick(&[u64::MAX, 1 << 63, 1 << 40, 0]),
            _ => (r.next() & !((1u64 << 40) - 1) | 1 << (40 + r.below(24))) | r.below(1 << 16),
        }
    }

    fn regs(&mut self, kind: Kind) -> [u64; 31] {
        let mut regs = [0u64; 31];
        for r in regs.iter_mut() {
            *r = if kind == Kind::Insn {
                self.value_insn()
            } else {
                self.value()
            };
        }
        regs
    }

    /// Operation number `i` comes from `next` called `i + 1` times.
    pub fn next(&mut self) -> Op {
        let kind = match self.rng.below(100) {
            0..=29 => Kind::SysReg,
            30..=54 => Kind::Insn,
            55..=69 => Kind::Mem,
            70..=84 => Kind::Gic,
            85..=94 => Kind::Hvc,
            _ => Kind::Psci,
        };
        let mut op = Op {
            kind,
            insn: 0,
            regs: self.regs(kind),
            fix: Fix::None,
        };
        match kind {
            Kind::SysReg => self.sysreg(&mut op),
            Kind::Insn => self.insn(&mut op),
            Kind::Mem => self.mem(&mut op),
            Kind::Gic => self.gic(&mut op),
            Kind::Hvc => self.hvc(&mut op),
            Kind::Psci => self.psci(&mut op),
        }
        op
    }

    fn sysreg(&mut self, op: &mut Op) {
        if self.rng.chance(35) {
            // A register the hypervisor traps, emulates or switches.
            let (op0, op1, crn, crm, op2) = self.rng.pick(&NOTABLE);
            let read = self.rng.chance(40);
            let rt = self.rng.below(31) as u32;
            op.insn = 0xd500_0000
                | u32::from(read) << 21
                | op0 << 19
                | op1 << 16
                | crn << 12
                | crm << 8
                | op2 << 5
                | rt;
            op.regs[rt as usize] = self.value();
            self.fix_system(op);
            return;
        }
        let r = &mut self.rng;
        let op0 = match r.below(100) {
            0..=59 => 3,
            60..=84 => 2,
            _ => 1,
        };
        let op1 = match r.below(10) {
            0..=3 => 0,
            4..=5 => 3,
            _ => r.below(8) as u32,
        };
        let (crn, crm, op2) = (r.below(16) as u32, r.below(16) as u32, r.below(8) as u32);
        let read = r.chance(50);
        let rt = r.below(32) as u32;
        let value = self.value();
        op.insn = 0xd500_0000
            | u32::from(read) << 21
            | op0 << 19
            | op1 << 16
            | crn << 12
            | crm << 8
            | op2 << 5
            | rt;
        if (rt as usize) < 31 {
            op.regs[rt as usize] = value;
        }
        self.fix_system(op);
    }

    /// Makes a system instruction safe for the guest (see the module docs);
    /// false if it must not run at all.
    fn fix_system(&mut self, op: &mut Op) -> bool {
        let (op0, op1, crn, crm, op2, read, rt) = sys_fields(op.insn);
        if read {
            return true;
        }
        if op0 == 1 {
            // SYS: Xt is an address for DC/AT/TLBI: never the guest's RAM.
            if rt < 31 && self.layout.near_ram(op.regs[rt]) {
                op.regs[rt] = self.value_off_ram();
            }
            return true;
        }
        if op0 == 0 {
            return true;
        }
        let enc = (op0, op1, crn, crm, op2);
        if NEVER_WRITTEN.iter().any(|n| n.0 == enc) {
            op.insn |= 1 << 21; // MSR -> MRS
            return false;
        }
        if enc == ICC_BPR1_EL1 && rt < 31 {
            // QEMU 10.0 would abort (see the module docs): a QEMU bug.
            op.regs[rt] &= 7;
        }
        if enc == (3, 0, 1, 0, 0) || enc == (3, 0, 1, 0, 2) {
            // From XZR the value is 0 whatever the registers hold, and no fix
            // could keep the bits the guest needs: write the same 0 from x0.
            let rt = if rt < 31 {
                rt
            } else {
                op.insn &= !31;
                op.regs[0] = 0;
                0
            };
            op.fix = if enc == (3, 0, 1, 0, 0) {
                Fix::Sctlr(rt as u8)
            } else {
                Fix::Cpacr(rt as u8)
            };
        }
        true
    }

    /// Whether random word `w` may run (see the module docs), after making it
    /// safe.
    fn insn_ok(&mut self, op: &mut Op) -> bool {
        let w = op.insn;
        // Memory copy and set (FEAT_MOPS): the size is a register.
        if w & 0x3b20_0c00 == 0x1900_0400 {
            return false;
        }
        if (w >> 26) & 7 != 0b101 {
            return true;
        }
        if w & 0xff00_0000 == 0xd400_0000 {
            // Exception generation: HVC and SMC are calls.
            let (opc, ll) = ((w >> 21) & 7, w & 3);
            if opc == 0 && (ll == 2 || ll == 3) {
                self.fix_call(op);
            }
            return true;
        }
        if w & 0xffc0_0000 != 0xd500_0000 {
            return false; // branches, ERET and the rest of the group
        }
        let (op0, op1, crn, crm, op2, read, _) = sys_fields(w);
        if op0 == 0 && !read {
            if crn == 4 && op1 == 0 && op2 == 5 {
                return false; // MSR SPSel, #imm
            }
            if crn == 2 && crm == 0 && op2 == 3 {
                return false; // WFI
            }
            if crn == 1 && op1 == 3 && crm == 0 && op2 <= 1 {
                return false; // WFET, WFIT
            }
        }
        self.fix_system(op)
    }

    fn insn(&mut self, op: &mut Op) {
        loop {
            op.insn = self.rng.next() as u32;
            op.fix = Fix::None;
            if self.insn_ok(op) {
                return;
            }
        }
    }

    fn mem(&mut self, op: &mut Op) {
        let t = self.rng.below(MEM_TEMPLATES.len() as u64) as usize;
        let mut addr = self.address();
        // Mostly aligned to the access, sometimes not at all.
        if self.rng.chance(80) {
            addr &= !15;
        }
        self.load_store(op, t, addr);
    }

    fn load_store(&mut self, op: &mut Op, t: usize, addr: u64) {
        let (mut insn, _, writes) = MEM_TEMPLATES[t];
        if writes && self.layout.in_uart_page(addr) {
            insn = MEM_TEMPLATES[LDR_W].0;
        }
        op.insn = insn;
        op.regs[0] = addr;
        op.regs[1] = self.value();
        op.regs[2] = self.value();
    }

    fn gic(&mut self, op: &mut Op) {
        let l = self.layout;
        let r = &mut self.rng;
        let (base, span) = match (l.gic, r.below(3)) {
            (3, 0) if l.gicr != 0 => {
                let cpu = r.below(l.ncpus.max(1) as u64 + 1);
                (l.gicr + cpu * 0x2_0000, 0x2_0000)
            }
            (2, 0) if l.gicc != 0 => (l.gicc, 0x2000),
            _ => (l.gicd, 0x1_0000),
        };
        let mut off = match r.below(10) {
            // The registers that exist are low in each frame.
            0..=5 => r.below(0x1000),
            _ => r.below(span),
        };
        let t = if r.chance(90) {
            off &= !3;
            r.pick(&GIC_TEMPLATES)
        } else {
            off &= !7;
            r.pick(&GIC_PAIRS)
        };
        self.load_store(op, t, base + off);
    }

    /// A function id: uniform, an SMCCC fast call of any owner, PSCI, or 64
    /// random bits.
    fn function_id(&mut self) -> u64 {
        let r = &mut self.rng;
        match r.below(4) {
            0 => r.next() & 0xffff_ffff,
            1 => 0x8000_0000 | r.below(2) << 30 | r.below(64) << 24 | r.below(0x40),
            2 => u64::from(r.pick(&PSCI_CALLS)),
            _ => r.next(),
        }
    }

    fn hvc(&mut self, op: &mut Op) {
        let r = &mut self.rng;
        let smc = match r.below(4) {
            0 => true,
            1 => false,
            _ => self.layout.smc,
        };
        let imm = if r.chance(75) {
            0
        } else {
            r.below(0x1_0000) as u32
        };
        op.insn = 0xd400_0000 | imm << 5 | if smc { 3 } else { 2 };
        op.regs[0] = self.function_id();
        for i in 1..8 {
            op.regs[i] = self.value();
        }
        self.fix_call(op);
    }

    fn psci(&mut self, op: &mut Op) {
        op.insn = 0xd400_0000 | if self.layout.smc { 3 } else { 2 };
        let fid = self.rng.pick(&PSCI_CALLS);
        // 32-bit calls with garbage in the upper halves too.
        let upper = if fid & (1 << 30) == 0 && self.rng.chance(30) {
            self.rng.next() << 32
        } else {
            0
        };
        op.regs[0] = u64::from(fid) | upper;
        op.regs[1] = self.target();
        op.regs[2] = if self.rng.chance(50) {
            self.address()
        } else {
            self.value()
        };
        op.regs[3] = self.value();
        self.fix_call(op);
    }

    /// A CPU: one of the guest's own, one with stray bits, or anything.
    fn target(&mut self) -> u64 {
        let l = self.layout;
        let r = &mut self.rng;
        let own = if l.ncpus > 0 {
            l.cpus[r.below(l.ncpus as u64) as usize]
        } else {
            0
        };
        match r.below(8) {
            0..=3 => own,
            4 => own | 1 << (24 + r.below(40)),
            5 => own + 1 + r.below(4),
            _ => r.next(),
        }
    }

    /// Calls that would end the guest (see the module docs).
    fn fix_call(&mut self, op: &mut Op) {
        let fid = op.regs[0] as u32;
        if FATAL_CALLS.iter().any(|c| c.0 == fid) {
            op.regs[0] = u64::from(PSCI_VERSION);
            return;
        }
        // CPU_ON: an own CPU (compared loosely: whatever bits a hypervisor
        // might ignore) starts at the parking code.
        if fid & !(1 << 30) == 0x8400_0003 {
            let t = op.regs[1] & 0xff_ffff;
            if self.layout.cpus[..self.layout.ncpus]
                .iter()
                .any(|&c| c & 0xff_ffff == t)
            {
                op.fix = Fix::Park(2);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layout() -> Layout {
        Layout {
            ram_start: 0x4000_0000,
            ram_end: 0x5f80_0000,
            uart: 0x900_0000,
            gic: 3,
            gicd: 0x800_0000,
            gicr: 0x80a_0000,
            gicc: 0,
            cpus: [0, 1, 0, 0, 0, 0, 0, 0],
            ncpus: 2,
            smc: false,
        }
    }

    #[test]
    fn the_layout_line_reads_back() {
        let l = layout();
        let line = format!("{l}");
        assert_eq!(Layout::parse(&line), Some(l), "{line}");
        assert_eq!(Layout::parse("ram=0x1-0x2"), None);
    }

    #[test]
    fn a_seed_gives_the_same_operations_and_another_seed_others() {
        let a: Vec<Op> = {
            let mut g = Gen::new(7, layout());
            (0..500).map(|_| g.next()).collect()
        };
        let b: Vec<Op> = {
            let mut g = Gen::new(7, layout());
            (0..500).map(|_| g.next()).collect()
        };
        let c: Vec<Op> = {
            let mut g = Gen::new(8, layout());
            (0..500).map(|_| g.next()).collect()
        };
        assert_eq!(a, b);
        assert_ne!(a, c);
    }

    /// The exclusions hold for many operations of many seeds, and every kind
    /// is generated.
    #[test]
    fn no_operation_can_destroy_the_guest() {
        let l = layout();
        let mut kinds = [0u32; 6];
        for seed in 0..40 {
            let mut g = Gen::new(seed, l);
            for _ in 0..5000 {
                let op = g.next();
                kinds[op.kind.index()] += 1;
                let w = op.insn;
                let s = format!("{op}");
                // Branches never run.
                if (w >> 26) & 7 == 0b101 {
                    assert!(
                        w & 0xff00_0000 == 0xd400_0000 || w & 0xffc0_0000 == 0xd500_0000,
                        "a branch: {s}"
                    );
                }
                assert_ne!(w & 0xffff_f0ff, 0xd500_40bf, "MSR SPSel: {s}");
                assert_ne!(w, 0xd503_207f, "WFI: {s}");
                assert_ne!(w & 0x3b20_0c00, 0x1900_0400, "CPY/SET: {s}");
                if w & 0xffe0_0000 == 0xd500_0000 {
                    // MSR/SYS (L = 0)
                    let (op0, op1, crn, crm, op2, _, rt) = sys_fields(w);
                    assert!(
                        !NEVER_WRITTEN
                            .iter()
                            .any(|n| n.0 == (op0, op1, crn, crm, op2)),
                        "{s}"
                    );
                    // SCTLR_EL1 and CPACR_EL1 are written from a register
                    // the fix can set (never XZR: a 0 that would turn off
                    // FP/SIMD under the guest's own code).
                    if (op0, op1, crn, crm, op2) == (3, 0, 1, 0, 0) {
                        assert_eq!(op.fix, Fix::Sctlr(rt as u8), "{s}");
                        assert!(rt < 31, "{s}");
                    }
                    if (op0, op1, crn, crm, op2) == (3, 0, 1, 0, 2) {
                        assert_eq!(op.fix, Fix::Cpacr(rt as u8), "{s}");
                        assert!(rt < 31, "{s}");
                    }
                    if (op0, op1, crn, crm, op2) == ICC_BPR1_EL1 && rt < 31 {
                        assert!(op.regs[rt as usize] <= 7, "{s}");
                    }
                }
                if op.kind == Kind::Insn {
                    // Bits 16-39 clear: no sum of two, shifted or extended,
                    // reaches RAM.
                    for (i, r) in op.regs.iter().enumerate() {
                        assert!(
                            *r < 1 << 16 || *r >> 16 & 0xff_ffff == 0 || *r == u64::MAX,
                            "x{i} = 0x{r:x}: {s}"
                        );
                    }
                }
                if writes_memory(&op) {
                    let rt = (w & 31) as usize;
                    assert!(rt == 31 || !l.near_ram(op.regs[rt]), "{s}");
                }
                if matches!(op.kind, Kind::Mem | Kind::Gic) {
                    let t = MEM_TEMPLATES.iter().find(|t| t.0 == w).expect("a template");
                    assert!(
                        !(t.2 && l.in_uart_page(op.regs[0])),
                        "a store to the UART: {s}"
                    );
                    let a = op.regs[0];
                    assert!(!(a >= l.ram_start - 64 && a < l.ram_end), "{s}");
                }
                if matches!(op.kind, Kind::Hvc | Kind::Psci) || w & 0xff00_001e == 0xd400_0002 {
                    let fid = op.regs[0] as u32;
                    assert!(!FATAL_CALLS.iter().any(|c| c.0 == fid), "{s}");
                    if fid & !(1 << 30) == 0x8400_0003 && op.regs[1] & 0xff_ffff <= 1 {
                        assert_eq!(op.fix, Fix::Park(2), "{s}");
                    }
                }
            }
        }
        assert!(kinds.iter().all(|&k| k > 1000), "{kinds:?}");
    }

    /// Seed 180692923399114 (found by `cargo xtask fuzz-guest --seconds 300`):
    /// operation 1,089,931 was `MSR CPACR_EL1, XZR`, which no fix of a register
    /// could keep from turning off FP/SIMD, so the guest's own next FP
    /// instruction trapped (EC 0x07) and it failed. The same operation is now
    /// written from x0 with FP/SIMD kept enabled.
    #[test]
    fn seed_180692923399114_keeps_fp_simd_enabled_at_operation_1089931() {
        let mut g = Gen::new(180_692_923_399_114, layout());
        for _ in 0..1_089_931 {
            g.next();
        }
        let op = g.next();
        let (op0, op1, crn, crm, op2, read, rt) = sys_fields(op.insn);
        assert_eq!(
            (op0, op1, crn, crm, op2, read),
            (3, 0, 1, 0, 2, false),
            "{op}"
        );
        assert_eq!((rt, op.fix), (0, Fix::Cpacr(0)), "{op}");
    }

    /// Seed 180692923399114 again, 330 s: operation 2,100,338 wrote
    /// 0x228ea6f0 to ICC_BPR1_EL1 and QEMU 10.0 aborted (`icv_gprio_mask:
    /// Assertion 'bpr > 0' failed`): QEMU's bug. The write now carries 0.
    #[test]
    fn seed_180692923399114_writes_only_the_binary_point_at_operation_2100338() {
        let mut g = Gen::new(180_692_923_399_114, layout());
        for _ in 0..2_100_338 {
            g.next();
        }
        let op = g.next();
        let (op0, op1, crn, crm, op2, read, rt) = sys_fields(op.insn);
        assert_eq!(
            (op0, op1, crn, crm, op2, read),
            (3, 0, 12, 12, 3, false),
            "{op}"
        );
        assert_eq!(op.regs[rt as usize], 0x228e_a6f0 & 7, "{op}");
    }

    /// A SYS operation (L = 0): its Xt may be a `DC` address.
    fn writes_memory(op: &Op) -> bool {
        op.kind == Kind::SysReg && op.insn & 0xfff8_0000 == 0xd508_0000
    }
}
