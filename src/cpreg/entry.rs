//! One row of the cpreg table: what a register is and where its state lives.
//!
//! Modelled on QEMU's `ARMCPRegInfo`, with the parts QEMU keeps as C callbacks
//! turned into data wherever the behaviour is regular:
//!
//! * **State** ([`State`]): a slot of the vCPU's [`SysRegFile`]
//!   (`Own`), a constant (`Const`), a bit-field of another entry's slot (`Alias`), a
//!   value that only exists in hardware (`Volatile`, e.g. the counters), a function
//!   pair (`Func`, e.g. `CCSIDR` indexed by `CSSELR`, the timers' `TVAL`), or nothing
//!   (`Op`: TLBI, DC, IC, AT).
//! * **Guest-write behaviour as data**: a write mask ([`Entry::wmask`], bits outside
//!   it keep their value) and a [`WriteOp`] (store, set-bits, clear-bits). The raw
//!   accessors used by import, export and the debugger ignore both, which is what
//!   QEMU's separate `raw_writefn` achieves for registers whose guest write has side
//!   effects (`PMCNTENCLR`, `OSLAR`, `DBGCLAIMCLR`).
//! * **Flags** ([`Flags`]): QEMU's `ALIAS`, `NO_RAW`, `CONST`, `IO`, and a few of our
//!   own, each documented on its constant.
//!
//! Every flag that follows from the state (`ALIAS`, `NO_RAW`, `CONST`) is set by the
//! constructor that chooses the state, so a row cannot claim one and be the other;
//! `table.rs` checks the remaining rules at compile time and the tests check them
//! again with names in the failure message.
#![forbid(unsafe_code)]

use super::context::SysRegFile;
use super::encoding::{Cp, Encoding, Sys64};
use super::hw::SysRegHw;
use super::table::Reg;

/// Entry flags. A plain `u16` newtype so it can be built and tested in `const fn`.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Flags(pub u16);

impl Flags {
    pub const NONE: Flags = Flags(0);
    /// The state belongs to another entry (the owner); only the owner is saved, reset
    /// and listed. Set by [`alias`].
    pub const ALIAS: Flags = Flags(1 << 0);
    /// Not state: never saved, restored, imported or shown as a value (operations,
    /// counters, views computed on access). Set by [`op`], [`volatile`], [`func`].
    pub const NO_RAW: Flags = Flags(1 << 1);
    /// Reads a fixed value. Raw writes succeed only with that same value (an import
    /// that disagrees fails, as in QEMU); guest writes UNDEF unless `WI`.
    pub const CONST: Flags = Flags(1 << 2);
    /// The access has effects beyond the state (timers, counters): the runtime looks
    /// at [`Emulation::Done`](super::Emulation) for these.
    pub const IO: Flags = Flags(1 << 3);
    /// Hardware-backed: a real register of the same encoding holds the live value
    /// while the guest runs. Guest reads come from hardware, guest writes go to it,
    /// and the world switch saves it (when it also has a [`Group`]). Set by the
    /// `hw`/`ro` column of the table, which also generates the `mrs`/`msr` accessors.
    pub const HW: Flags = Flags(1 << 4);
    /// The AArch64 encoding names an EL2 register (`DACR32_EL2`, `SP_EL1`,
    /// `SPSR_abt`, ...): the hypervisor uses it to save and index the state, a guest
    /// `MRS`/`MSR` of it UNDEFs.
    pub const EL2_VIEW: Flags = Flags(1 << 5);
    /// Guest writes are ignored rather than UNDEF (RAZ/WI registers such as
    /// `DBGDTRTX_EL0` or `ACTLR_EL1`).
    pub const WI: Flags = Flags(1 << 6);
    /// A sanitised ID register: CONST, with a per-VM value from
    /// [`idregs`](super::idregs) stored in a slot (not a compile-time constant).
    pub const ID: Flags = Flags(1 << 7);

    pub const fn contains(self, other: Flags) -> bool {
        self.0 & other.0 == other.0
    }
    pub const fn union(self, other: Flags) -> Flags {
        Flags(self.0 | other.0)
    }
}

/// Access rights of the guest, per exception level. Whatever EL0 may do, EL1 may do
/// too (the constructors below only build such sets).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Access(pub u8);

impl Access {
    pub const NONE: Access = Access(0);
    pub const EL0_R: Access = Access(1);
    pub const EL0_W: Access = Access(2);
    pub const EL1_R: Access = Access(4);
    pub const EL1_W: Access = Access(8);

    pub const fn can_read(self, el0: bool) -> bool {
        self.0 & if el0 { Self::EL0_R.0 } else { Self::EL1_R.0 } != 0
    }
    pub const fn can_write(self, el0: bool) -> bool {
        self.0 & if el0 { Self::EL0_W.0 } else { Self::EL1_W.0 } != 0
    }
    /// Readable or writable at EL1 at all.
    pub const fn readable(self) -> bool {
        self.can_read(false)
    }
    pub const fn writable(self) -> bool {
        self.can_write(false)
    }
}

/// How a guest write combines with the current value (inside [`Entry::wmask`]).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum WriteOp {
    Store,
    /// Write-1-to-set (`PMCNTENSET`, `DBGCLAIMSET`).
    Set,
    /// Write-1-to-clear (`PMCNTENCLR`, `DBGCLAIMCLR`).
    Clear,
}

impl WriteOp {
    pub const fn apply(self, old: u64, value: u64, wmask: u64) -> u64 {
        match self {
            WriteOp::Store => (old & !wmask) | (value & wmask),
            WriteOp::Set => old | (value & wmask),
            WriteOp::Clear => old & !(value & wmask),
        }
    }
}

/// What a system instruction (NO_RAW operation) asks the runtime to do.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum OpKind {
    /// TLB invalidation; the operand is the instruction's (VA/ASID) argument.
    Tlbi,
    /// Data-cache maintenance by virtual address (the operand is the VA).
    DcVa,
    /// `DC ZVA`: zero a block at the VA.
    DcZva,
    /// Data-cache maintenance by set/way (trapped by `HCR_EL2.TSW`): must be turned
    /// into something safe (clean by VA over the VM's memory, as KVM does).
    DcSetWay,
    /// Instruction-cache invalidation by VA.
    IcVa,
    /// Instruction-cache invalidate all (local or inner shareable).
    IcAll,
    /// Address translation; the result goes to `PAR_EL1`.
    At,
    /// GICv3 `ICC_SGI1R`: generate a Group 1 SGI (the operand has the target list,
    /// affinity, INTID and IRM fields).
    Sgi1,
    /// GICv3 `ICC_ASGI1R`: a Group 1 SGI for the other Security state.
    Asgi1,
    /// GICv3 `ICC_SGI0R`: a Group 0 SGI.
    Sgi0,
    /// No effect needed beyond completing (AArch32 barriers `CP15DMB`/`DSB`/`ISB`,
    /// branch-predictor maintenance): emulated as done.
    Nop,
}

/// Registers present only on some CPUs or with some features. The presence of an
/// entry in a VM is a function of the VM's [`Features`], which are themselves
/// derived from the guest's sanitised ID registers.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Presence {
    Always,
    /// AArch32 is supported at EL1 (`ID_AA64PFR0_EL1.EL1 == 2`).
    Aarch32El1,
    /// The VM has a PMU (`ID_AA64DFR0_EL1.PMUVer`): a VM option, off by default.
    Pmu,
    /// The VM has a PMU with event counter `n` (`n < PMCR_EL0.N`, which the
    /// hypervisor sets with MDCR_EL2.HPMN).
    PmuCounter(u8),
    /// Breakpoint `n` exists (`n <= ID_AA64DFR0_EL1.BRPs`).
    Brp(u8),
    /// Watchpoint `n` exists (`n <= ID_AA64DFR0_EL1.WRPs`).
    Wrp(u8),
    /// `FEAT_TLBIOS` (`ID_AA64ISAR0_EL1.TLB >= 1`).
    TlbiOs,
    /// `FEAT_TLBIRANGE` (`ID_AA64ISAR0_EL1.TLB >= 2`).
    TlbiRange,
    /// `FEAT_PAN2` (`ID_AA64MMFR1_EL1.PAN >= 2`): `AT S1E1RP/WP`.
    Pan2,
    /// `FEAT_DPB` (`ID_AA64ISAR1_EL1.DPB >= 1`): `DC CVAP`.
    Dpb,
    /// `FEAT_DPB2` (`ID_AA64ISAR1_EL1.DPB >= 2`): `DC CVADP`.
    Dpb2,
    /// `FEAT_CCIDX` (`ID_AA64MMFR2_EL1.CCIDX != 0`): 64-bit CCSIDR and `CCSIDR2`.
    Ccidx,
    /// The GICv3 system-register interface (`ID_AA64PFR0_EL1.GIC != 0`).
    GicV3,
    /// `FEAT_MTE2` offered to the VM (`ID_AA64PFR1_EL1.MTE >= 2`): a VM option, on
    /// by default when the CPU has it (`hv.mte`).
    Mte,
}

/// The optional parts of the architecture a VM has.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Features {
    pub aarch32_el1: bool,
    pub pmu: bool,
    /// Event counters of the PMU (0..=8; 0 without a PMU).
    pub pmu_counters: u8,
    /// Number of breakpoints (1..=16).
    pub brps: u8,
    /// Number of watchpoints (1..=16).
    pub wrps: u8,
    pub tlbi_os: bool,
    pub tlbi_range: bool,
    pub pan2: bool,
    pub dpb: bool,
    pub dpb2: bool,
    pub ccidx: bool,
    pub gicv3: bool,
    /// Memory tagging (`FEAT_MTE2`): its registers, and tags in its RAM.
    pub mte: bool,
}

impl Features {
    /// Everything the table knows about (for tests and for listing every register).
    pub const ALL: Features = Features {
        aarch32_el1: true,
        pmu: true,
        pmu_counters: 8,
        brps: 16,
        wrps: 16,
        tlbi_os: true,
        tlbi_range: true,
        pan2: true,
        dpb: true,
        dpb2: true,
        ccidx: true,
        gicv3: true,
        mte: true,
    };

    pub const fn has(&self, p: Presence) -> bool {
        match p {
            Presence::Always => true,
            Presence::Aarch32El1 => self.aarch32_el1,
            Presence::Pmu => self.pmu,
            Presence::PmuCounter(n) => self.pmu && n < self.pmu_counters,
            Presence::Brp(n) => n < self.brps,
            Presence::Wrp(n) => n < self.wrps,
            Presence::TlbiOs => self.tlbi_os,
            Presence::TlbiRange => self.tlbi_range,
            Presence::Pan2 => self.pan2,
            Presence::Dpb => self.dpb,
            Presence::Dpb2 => self.dpb2,
            Presence::Ccidx => self.ccidx,
            Presence::GicV3 => self.gicv3,
            Presence::Mte => self.mte,
        }
    }
}

/// Which world-switch set a hardware-backed register belongs to.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Group {
    /// Not switched (emulated, constant, alias, operation).
    None,
    /// The EL1/EL0 context, switched with every world switch
    /// ([`save_el1_with`](super::save_el1_with)).
    El1,
    /// The debug registers (breakpoint and watchpoint pairs, MDCCINT_EL1): trapped
    /// by MDCR_EL2.TDA and switched lazily, only while the vCPU uses debug
    /// (MDSCR_EL1.MDE, or an access), as KVM does, with
    /// [`save_debug_with`](super::save_debug_with).
    Debug,
    /// Switched with the FP/SIMD state (`FPEXC32_EL2`: touching it with
    /// `CPTR_EL2.TFP` set traps, so it belongs to the lazy FP switch).
    Fp,
    /// The PMU's registers: the guest uses the hardware PMU directly (its counters
    /// partitioned by MDCR_EL2.HPMN), so they are switched, but only for a VM
    /// given a PMU ([`save_pmu_with`](super::save_pmu_with)).
    Pmu,
    /// The memory-tagging registers (GCR_EL1, RGSR_EL1, TFSR_EL1, TFSRE0_EL1): the
    /// guest reaches them directly (HCR_EL2.ATA), so they are switched, but only
    /// for a VM offered MTE ([`save_mte_with`](super::save_mte_with)).
    Mte,
}

/// A read/write function pair for state computed on access. Always NO_RAW: the
/// state it reads lives elsewhere (a slot, a counter), and that is what is saved.
pub struct FnPair {
    pub read: fn(&mut SysRegFile, &mut dyn SysRegHw) -> u64,
    pub write: fn(&mut SysRegFile, &mut dyn SysRegHw, u64),
}

/// Where an entry's value lives.
#[derive(Clone, Copy)]
pub enum State {
    /// A full 64-bit slot of the vCPU context (index computed from the table).
    Own,
    /// A fixed value.
    Const(u64),
    /// Bits `[lsb + width - 1 : lsb]` of `owner`'s slot, seen as bits
    /// `[width - 1 : 0]` of this entry.
    Alias { owner: Reg, lsb: u8, width: u8 },
    /// Only in hardware (counters, `ISR_EL1`): read through [`SysRegHw`].
    Volatile,
    /// Computed on access.
    Func(&'static FnPair),
    /// A system instruction.
    Op(OpKind),
}

/// One table entry. Built with the constructors below and finished by the table
/// macro, which fills in the name, the encodings and the `HW` flag.
#[derive(Clone, Copy)]
pub struct Entry {
    /// The name as in the Arm ARM (a suffix `_64` marks the 64-bit `MCRR` view of an
    /// AArch32 register whose 32-bit view has the same name).
    pub name: &'static str,
    pub a64: Option<Sys64>,
    pub a32: Option<Cp>,
    pub state: State,
    /// Reset value of an `Own` slot (ID registers: set per VM instead).
    pub reset: u64,
    pub access: Access,
    pub flags: Flags,
    /// Guest-writable bits (in the entry's own view).
    pub wmask: u64,
    pub write_op: WriteOp,
    pub group: Group,
    pub presence: Presence,
}

const fn base(state: State, flags: Flags) -> Entry {
    Entry {
        name: "",
        a64: None,
        a32: None,
        state,
        reset: 0,
        access: Access::NONE,
        flags,
        wmask: u64::MAX,
        write_op: WriteOp::Store,
        group: Group::None,
        presence: Presence::Always,
    }
}

/// Own state in a slot, reset to `reset`.
pub const fn own(reset: u64) -> Entry {
    let mut e = base(State::Own, Flags::NONE);
    e.reset = reset;
    e
}

/// A sanitised ID register: read-only, per-VM value in a slot.
pub const fn id() -> Entry {
    base(State::Own, Flags::CONST.union(Flags::ID)).el1_r()
}

/// A constant.
pub const fn konst(value: u64) -> Entry {
    let mut e = base(State::Const(value), Flags::CONST);
    e.reset = value;
    e
}

/// A view of bits `[lsb + width - 1 : lsb]` of `owner`.
pub const fn alias(owner: Reg, lsb: u8, width: u8) -> Entry {
    let mut e = base(State::Alias { owner, lsb, width }, Flags::ALIAS);
    e.wmask = if width >= 64 {
        u64::MAX
    } else {
        (1u64 << width) - 1
    };
    e
}

/// A value that only exists in hardware.
pub const fn volatile() -> Entry {
    base(State::Volatile, Flags::NO_RAW.union(Flags::IO))
}

/// Computed on access.
pub const fn func(f: &'static FnPair) -> Entry {
    base(State::Func(f), Flags::NO_RAW)
}

/// A system instruction (write-only, NO_RAW).
pub const fn op(kind: OpKind) -> Entry {
    base(State::Op(kind), Flags::NO_RAW).el1_w()
}

impl Entry {
    /// Called by the table macro: name, encodings and the `HW` flag.
    pub const fn at(
        mut self,
        name: &'static str,
        a64: Option<Sys64>,
        a32: Option<Cp>,
        hw: bool,
    ) -> Self {
        self.name = name;
        self.a64 = a64;
        self.a32 = a32;
        if hw {
            self.flags = self.flags.union(Flags::HW);
        }
        self
    }
    pub const fn access(mut self, a: Access) -> Self {
        self.access = a;
        self
    }
    pub const fn el1_rw(self) -> Self {
        self.access(Access(Access::EL1_R.0 | Access::EL1_W.0))
    }
    pub const fn el1_r(self) -> Self {
        self.access(Access::EL1_R)
    }
    pub const fn el1_w(self) -> Self {
        self.access(Access::EL1_W)
    }
    /// Read/write at EL0 and EL1.
    pub const fn el0_rw(self) -> Self {
        self.access(Access(0xf))
    }
    /// Read at EL0 and EL1.
    pub const fn el0_r(self) -> Self {
        self.access(Access(Access::EL0_R.0 | Access::EL1_R.0))
    }
    /// Read at EL0, read/write at EL1.
    pub const fn el0_r_el1_rw(self) -> Self {
        self.access(Access(Access::EL0_R.0 | Access::EL1_R.0 | Access::EL1_W.0))
    }
    /// Write at EL0 and EL1 (operations permitted at EL0, e.g. `DC CVAC`).
    pub const fn el0_w(self) -> Self {
        self.access(Access(Access::EL0_W.0 | Access::EL1_W.0))
    }
    pub const fn flag(mut self, f: Flags) -> Self {
        self.flags = self.flags.union(f);
        self
    }
    pub const fn io(self) -> Self {
        self.flag(Flags::IO)
    }
    pub const fn wi(self) -> Self {
        self.flag(Flags::WI)
    }
    pub const fn el2_view(self) -> Self {
        self.flag(Flags::EL2_VIEW)
    }
    pub const fn wmask(mut self, m: u64) -> Self {
        self.wmask = m;
        self
    }
    pub const fn write_op(mut self, w: WriteOp) -> Self {
        self.write_op = w;
        self
    }
    pub const fn group(mut self, g: Group) -> Self {
        self.group = g;
        self
    }
    /// Member of the EL1 world-switch set.
    pub const fn el1(self) -> Self {
        self.group(Group::El1)
    }
    pub const fn debug(self) -> Self {
        self.group(Group::Debug)
    }
    pub const fn pmu(self) -> Self {
        self.group(Group::Pmu)
    }
    pub const fn mte(self) -> Self {
        self.group(Group::Mte).presence(Presence::Mte)
    }
    pub const fn presence(mut self, p: Presence) -> Self {
        self.presence = p;
        self
    }

    pub const fn is(&self, f: Flags) -> bool {
        self.flags.contains(f)
    }

    /// In a world switch or snapshot list: neither ALIAS nor NO_RAW.
    pub const fn is_saved(&self) -> bool {
        !self.is(Flags::ALIAS) && !self.is(Flags::NO_RAW)
    }

    /// Accepted by an import of a list from outside: everything but NO_RAW (aliases
    /// write through onto their owner).
    pub const fn is_importable(&self) -> bool {
        !self.is(Flags::NO_RAW)
    }

    /// Shown as a value by the debugger: everything but NO_RAW.
    pub const fn is_shown(&self) -> bool {
        !self.is(Flags::NO_RAW)
    }

    /// The encoding used for the KVM index and in reports: AArch64 if any.
    pub const fn encoding(&self) -> Encoding {
        match (self.a64, self.a32) {
            (Some(e), _) => Encoding::A64(e),
            (None, Some(e)) => Encoding::A32(e),
            // Excluded by the compile-time table check.
            (None, None) => panic!("entry without an encoding"),
        }
    }

    pub const fn kvm_index(&self) -> u64 {
        self.encoding().kvm_index()
    }

    /// Width in bits of the entry's own view (32 for a 32-bit AArch32-only view).
    pub const fn width(&self) -> u8 {
        match self.state {
            State::Alias { width, .. } => width,
            _ => 64,
        }
    }
}
