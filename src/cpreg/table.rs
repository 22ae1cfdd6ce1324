//! The table, generated from the rows in `rows.rs`, and everything derived from it at
//! compile time.
//!
//! * [`Reg`]: one enum variant per entry, in row order; `Reg as usize` indexes
//!   the stored table ([`super::packed`], unpacked by [`Reg::entry`]) and every
//!   array parallel to it (trap counters, hardware accessors).
//! * **Slots.** Only entries with `State::Own` have storage. Their slot numbers are
//!   computed here by a `const fn` (the n-th owning row gets slot n), so the vCPU
//!   context ([`SysRegFile`](super::SysRegFile)) is exactly as large as the state,
//!   no row can name a slot that does not exist, and no two rows can share one.
//!   An alias names its owner by `Reg`, not by slot.
//! * **Lookup.** The trap path needs encoding -> entry in constant time. The
//!   AArch64 key space is 16 bits and the table uses a few hundred of its 65,536
//!   values, so a flat index would cost 128 KiB; instead a two-level index keyed by
//!   the syndrome's own bit layout (the `(op0, op2, op1, CRn)` block, then `CRm` in
//!   it) built by a `const fn` costs about 8 KiB and two loads. AArch32 encodings (rarely trapped) and KVM indexes
//!   use a `const`-sorted array and a binary search; the one `const` sort also
//!   gives the KVM `ONE_REG` order, because the keys are laid out like the KVM
//!   indexes.
//! * **Checks.** `check_table` runs at compile time: a row that breaks an
//!   invariant stops the build with the row's name in the error, pointing at the rule
//!   it broke. The tests check the same rules (and the behavioural ones: raw
//!   round-trips, alias write-through, reset) with names in the assertion.
#![forbid(unsafe_code)]

use super::encoding::{Cp, Sys64};
use super::entry::{
    alias, func, id, konst, op, own, volatile, Entry, Flags, Group, OpKind, Presence, State,
    WriteOp,
};
use super::funcs::{
    CCSIDR2_FNS, CCSIDR_FNS, CNTPCT_FNS, CNTP_TVAL_FNS, CNTVCT_FNS, CNTV_TVAL_FNS, DBGCLAIMSET_FNS,
    DBGDIDR_FNS, PMXEVCNTR_FNS, PMXEVTYPER_FNS,
};
use super::packed::PACKED;

/// SCTLR_EL1 after reset: the RES1 bits of Armv8.0 (29, 28, 23, 22, 20, 11), plus
/// SA0/SA/CP15BEN (5:3) and nTWE/nTWI (18, 16) as QEMU's Cortex-A57/A72 reset them.
/// MMU and caches off.
pub const SCTLR_EL1_RESET: u64 = 0x30d5_0838;
/// SCTLR_EL1 after reset when EL1 is AArch32 (the AArch32 `SCTLR` view, as QEMU's
/// Cortex-A57/A72 reset it): the AArch64 reset value has bits AArch32 does not use.
pub const SCTLR_EL1_AARCH32_RESET: u64 = 0x00c5_0838;
/// OSLSR_EL1 after reset: OSLM = 0b10 (OS lock implemented, bit 3), OSLK = 0 (as KVM).
pub const OSLSR_EL1_RESET: u64 = 1 << 3;
/// CNTx_CTL: ENABLE and IMASK are writable, ISTATUS (bit 2) is read-only.
pub const CNT_CTL_WMASK: u64 = 0b011;
/// Eight claim tags.
pub const CLAIM_TAGS: u64 = 0xff;
/// DBGAUTHSTATUS: non-secure invasive and non-invasive debug implemented and
/// disabled by the authentication interface (0b10 each); the Secure state fields 0
/// because EL3 is hidden.
pub const DBGAUTHSTATUS: u64 = 0x0a;
/// PMCR_EL0 bits a guest may write: E, D, X, DP, LC, LP (P and C are actions).
pub const PMCR_WMASK: u64 = 0xf9;
/// PMCR_EL0's action bits: P (reset the event counters) and C (the cycle counter).
pub const PMCR_ACTIONS: u64 = 0b110;

macro_rules! enc64 {
    () => {
        None
    };
    ($op0:literal, $op1:literal, $crn:literal, $crm:literal, $op2:literal) => {
        Some(Sys64::new($op0, $op1, $crn, $crm, $op2))
    };
}

macro_rules! enc32 {
    () => {
        None
    };
    (p15, $opc1:literal, $crn:literal, $crm:literal, $opc2:literal) => {
        Some(Cp::new32(15, $opc1, $crn, $crm, $opc2))
    };
    (p14, $opc1:literal, $crn:literal, $crm:literal, $opc2:literal) => {
        Some(Cp::new32(14, $opc1, $crn, $crm, $opc2))
    };
    (p15_64, $opc1:literal, $crm:literal) => {
        Some(Cp::new64(15, $opc1, $crm))
    };
    (p14_64, $opc1:literal, $crm:literal) => {
        Some(Cp::new64(14, $opc1, $crm))
    };
}

/// The `hw` column: 0 emulated, 1 read/write hardware, 2 read-only hardware.
macro_rules! hw_kind {
    (hw) => {
        1
    };
    (ro) => {
        2
    };
    (-) => {
        0
    };
}

macro_rules! define_table {
    ($( $name:ident : [$($a64:tt)*] [$($a32:tt)*] $hw:tt => $def:expr ; )*) => {
        /// One variant per table entry, in row order.
        #[allow(non_camel_case_types)]
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
        #[repr(u16)]
        pub enum Reg {
            $($name),*
        }

        /// Number of entries.
        pub const COUNT: usize = [$(Reg::$name),*].len();

        impl Reg {
            /// Every entry, in row order (`Reg::ALL[r as usize] == r`).
            pub const ALL: [Reg; COUNT] = [$(Reg::$name),*];
        }

        const TABLE: [Entry; COUNT] = [
            $( $def.at(stringify!($name), enc64!($($a64)*), enc32!($($a32)*), hw_kind!($hw) != 0) ),*
        ];

        /// The `hw` column per entry (checked against the state by [`check_table`]).
        const HW_KIND: [u8; COUNT] = [$( hw_kind!($hw) ),*];

        /// Every entry's name, in row order, in one string (the packed table keeps
        /// an offset and a length into it).
        pub(crate) const NAMES: &str = concat!($( stringify!($name) ),*);
    };
}

with_cpreg_rows!(define_table);

/// The table as a constant, for other modules' compile-time derivations. At run
/// time the rows are stored packed ([`super::packed`]); [`Reg::entry`] unpacks one.
pub(crate) const TABLE_CONST: [Entry; COUNT] = TABLE;

/// Every entry, in row order.
pub fn entries() -> impl Iterator<Item = Entry> {
    Reg::ALL.iter().map(|r| r.entry())
}

impl Reg {
    /// The entry (unpacked from the stored table: a few loads).
    #[inline]
    pub fn entry(self) -> Entry {
        PACKED[self as usize].unpack()
    }
    pub fn name(self) -> &'static str {
        PACKED[self as usize].name()
    }
    /// The KVM `ONE_REG` index (from the encodings alone).
    pub fn kvm_index(self) -> u64 {
        let p = &PACKED[self as usize];
        match (p.a64(), p.a32()) {
            (Some(e), _) => e.kvm_index(),
            (None, Some(c)) => c.kvm_index(),
            (None, None) => 0,
        }
    }
    /// The slot of an entry with own state.
    pub const fn slot(self) -> Option<usize> {
        match SLOT_OF[self as usize] {
            NO_SLOT => None,
            s => Some(s as usize),
        }
    }
    /// The entry whose state this one shows: its owner for an alias, itself
    /// otherwise (e.g. an AArch32 `SCTLR` write changes `SCTLR_EL1`).
    pub fn owner(self) -> Reg {
        match self.entry().state {
            State::Alias { owner, .. } => owner,
            _ => self,
        }
    }
}

// ---------------------------------------------------------------------------------
// Slots.

const NO_SLOT: u16 = u16::MAX;

const fn owns_slot(e: &Entry) -> bool {
    matches!(e.state, State::Own)
}

const fn compute_slots() -> ([u16; COUNT], usize) {
    let mut of = [NO_SLOT; COUNT];
    let mut n = 0;
    let mut i = 0;
    while i < COUNT {
        if owns_slot(&TABLE[i]) {
            of[i] = n as u16;
            n += 1;
        }
        i += 1;
    }
    (of, n)
}

const SLOTS: ([u16; COUNT], usize) = compute_slots();
const SLOT_OF: [u16; COUNT] = SLOTS.0;
/// Number of state slots in a vCPU context.
pub const NUM_SLOTS: usize = SLOTS.1;
/// The length of a context's slot array: a power of two at least [`NUM_SLOTS`], so
/// the trap fast path indexes it by a masked slot number without a bounds check
/// (the slots beyond `NUM_SLOTS` are never used).
pub const SLOT_SPACE: usize = NUM_SLOTS.next_power_of_two();

// ---------------------------------------------------------------------------------
// Sorted lookups.

const fn count_where(a64: bool) -> usize {
    let mut n = 0;
    let mut i = 0;
    while i < COUNT {
        if (a64 && TABLE[i].a64.is_some()) || (!a64 && TABLE[i].a32.is_some()) {
            n += 1;
        }
        i += 1;
    }
    n
}

/// Entries with an AArch64 encoding.
pub const NUM_A64: usize = count_where(true);
/// Entries with an AArch32 encoding.
pub const NUM_A32: usize = count_where(false);

/// The one sort every compile-time index uses: insertion sort by key (a `const fn`
/// over a few hundred entries, run by the compiler).
const fn sort_by_key<const N: usize>(mut a: [(u64, Reg); N]) -> [(u64, Reg); N] {
    let mut i = 1;
    while i < N {
        let mut j = i;
        while j > 0 && a[j - 1].0 > a[j].0 {
            let t = a[j - 1];
            a[j - 1] = a[j];
            a[j] = t;
            j -= 1;
        }
        i += 1;
    }
    a
}

/// `(key, entry)` for every entry with an AArch64 (`a64`) or AArch32 encoding, sorted.
const fn sorted_encodings<const N: usize>(a64: bool) -> [(u64, Reg); N] {
    let mut a = [(0u64, Reg::ALL[0]); N];
    let mut n = 0;
    let mut i = 0;
    while i < COUNT {
        match (a64, TABLE[i].a64, TABLE[i].a32) {
            (true, Some(e), _) => {
                a[n] = (e.key() as u64, Reg::ALL[i]);
                n += 1;
            }
            (false, _, Some(e)) => {
                a[n] = (e.key() as u64, Reg::ALL[i]);
                n += 1;
            }
            _ => {}
        }
        i += 1;
    }
    sort_by_key(a)
}

const fn kvm_indexes() -> [(u64, Reg); COUNT] {
    let mut a = [(0u64, Reg::ALL[0]); COUNT];
    let mut i = 0;
    while i < COUNT {
        a[i] = (TABLE[i].kvm_index(), Reg::ALL[i]);
        i += 1;
    }
    sort_by_key(a)
}

const A64_SORTED: [(u64, Reg); NUM_A64] = sorted_encodings(true);
const A32_SORTED: [(u64, Reg); NUM_A32] = sorted_encodings(false);
const KVM_SORTED: [(u64, Reg); COUNT] = kvm_indexes();

const fn regs_of<const N: usize>(sorted: &[(u64, Reg); N]) -> [Reg; N] {
    let mut a = [Reg::ALL[0]; N];
    let mut i = 0;
    while i < N {
        a[i] = sorted[i].1;
        i += 1;
    }
    a
}

/// The entries with an AArch32 encoding, ascending by [`Cp::key`] (the keys are
/// computed from the packed entries while searching).
static A32_ORDER: [Reg; NUM_A32] = regs_of(&A32_SORTED);
/// Every entry, ascending by KVM `ONE_REG` index ([`Reg::kvm_index`]).
pub static KVM_ORDER: [Reg; COUNT] = regs_of(&KVM_SORTED);

// The AArch64 trap path's index: O(1), two loads, keyed by the syndrome's own bit
// layout so the trap path never reassembles an encoding. ESR_EL2.ISS of a trapped
// MSR/MRS holds op0 [21:20], op2 [19:17], op1 [16:14], CRn [13:10] and CRm [4:1]:
// bits [21:10] (12 bits) pick a block, CRm the entry in it. Only the (op0, op2,
// op1, CRn) combinations the table uses get a 16-entry block (entry + 1 with what
// the fast path needs of it, 0 = none); every other combination shares block 0,
// which is empty. About 12 KiB instead of the 256 KiB of a flat index of such
// entries, and no search.

const A64_HI: usize = 1 << 12;
const A64_LO: usize = 1 << 4;

/// The index's (block, position) of an AArch64 encoding: ISS bits [21:10] and [4:1].
const fn a64_slot(e: Sys64) -> (usize, usize) {
    let hi = ((e.op0 as usize) << 10)
        | ((e.op2 as usize) << 7)
        | ((e.op1 as usize) << 4)
        | e.crn as usize;
    (hi, e.crm as usize)
}

const fn a64_blocks_used() -> usize {
    let mut used = [false; A64_HI];
    let mut n = 1; // block 0: empty
    let mut i = 0;
    while i < COUNT {
        if let Some(e) = TABLE[i].a64 {
            let (hi, _) = a64_slot(e);
            if !used[hi] {
                used[hi] = true;
                n += 1;
            }
        }
        i += 1;
    }
    n
}

const A64_BLOCKS: usize = a64_blocks_used();
/// The block array's length: a power of two, so a block number read from
/// [`A64_TOP`] indexes it without a bounds check (the trap fast path).
const A64_BLOCKS_POW2: usize = A64_BLOCKS.next_power_of_two();
const _: () = assert!(A64_BLOCKS_POW2 <= 256, "block numbers are u8");

/// An index entry: bits 0-15 the entry number plus one (0: no entry), bits 16-23
/// what the trap fast path may do with it ([`super::quick`]), bits 24-31 its state
/// slot. One load gives the trap fast path everything it needs.
const fn a64_entry(i: usize) -> u32 {
    let quick = super::quick::quick_how(&TABLE[i]) as u32;
    let slot = match SLOT_OF[i] {
        NO_SLOT => 0,
        s => s as u32,
    };
    (i as u32 + 1) | (quick << 16) | (slot << 24)
}
const _: () = assert!(
    NUM_SLOTS <= 256 && COUNT < 0xffff,
    "index entries pack into 32 bits"
);

const fn a64_direct() -> ([u8; A64_HI], [[u32; A64_LO]; A64_BLOCKS_POW2]) {
    let mut top = [0u8; A64_HI];
    let mut blocks = [[0u32; A64_LO]; A64_BLOCKS_POW2];
    let mut next = 1;
    let mut i = 0;
    while i < COUNT {
        if let Some(e) = TABLE[i].a64 {
            let (hi, lo) = a64_slot(e);
            if top[hi] == 0 {
                top[hi] = next as u8;
                next += 1;
            }
            blocks[top[hi] as usize][lo] = a64_entry(i);
        }
        i += 1;
    }
    (top, blocks)
}

const A64_DIRECT: ([u8; A64_HI], [[u32; A64_LO]; A64_BLOCKS_POW2]) = a64_direct();
static A64_TOP: [u8; A64_HI] = A64_DIRECT.0;
static A64_BLOCK: [[u32; A64_LO]; A64_BLOCKS_POW2] = A64_DIRECT.1;

/// The raw index entry of a trapped AArch64 `MRS`/`MSR`/`SYS`, straight from its
/// syndrome (ESR_EL2.ISS, EC 0x18): two loads, no bounds check (see
/// [`a64_entry`] for the layout; 0: no entry).
#[inline(always)]
pub(crate) fn a64_index_entry(iss: u64) -> u32 {
    let block = A64_TOP[(iss as usize >> 10) & (A64_HI - 1)] as usize;
    A64_BLOCK[block & (A64_BLOCKS_POW2 - 1)][(iss as usize >> 1) & (A64_LO - 1)]
}

/// The entry a trapped AArch64 `MRS`/`MSR`/`SYS` names, straight from its syndrome
/// (ESR_EL2.ISS, EC 0x18).
#[inline]
pub fn lookup_a64_iss(iss: u64) -> Option<Reg> {
    match a64_index_entry(iss) & 0xffff {
        0 => None,
        r => Reg::ALL.get(r as usize - 1).copied(),
    }
}

/// The entry with this AArch64 encoding.
#[inline]
pub fn lookup_a64(enc: Sys64) -> Option<Reg> {
    let (hi, lo) = a64_slot(enc);
    match A64_BLOCK[A64_TOP[hi] as usize & (A64_BLOCKS_POW2 - 1)][lo] & 0xffff {
        0 => None,
        r => Reg::ALL.get(r as usize - 1).copied(),
    }
}

/// The entry with this AArch32 encoding (binary search: AArch32 traps are rare).
pub fn lookup_a32(enc: Cp) -> Option<Reg> {
    let k = enc.key();
    A32_ORDER
        .binary_search_by_key(&k, |&r| {
            PACKED[r as usize].a32().map_or(u32::MAX, |c| c.key())
        })
        .ok()
        .map(|i| A32_ORDER[i])
}

/// The entry with this KVM `ONE_REG` index.
pub fn lookup_kvm(index: u64) -> Option<Reg> {
    KVM_ORDER
        .binary_search_by_key(&index, |&r| r.kvm_index())
        .ok()
        .map(|i| KVM_ORDER[i])
}

// ---------------------------------------------------------------------------------
// Derived lists.

const fn count_group(g: Group) -> usize {
    let mut n = 0;
    let mut i = 0;
    while i < COUNT {
        if TABLE[i].group as u8 == g as u8 {
            n += 1;
        }
        i += 1;
    }
    n
}

const fn list_group<const N: usize>(g: Group) -> [Reg; N] {
    let mut a = [Reg::ALL[0]; N];
    let mut n = 0;
    let mut i = 0;
    while i < COUNT {
        if TABLE[i].group as u8 == g as u8 {
            a[n] = Reg::ALL[i];
            n += 1;
        }
        i += 1;
    }
    a
}

const NUM_EL1_SET: usize = count_group(Group::El1);
const NUM_DEBUG_SET: usize = count_group(Group::Debug);
const NUM_FP_SET: usize = count_group(Group::Fp);
const NUM_PMU_SET: usize = count_group(Group::Pmu);
const NUM_MTE_SET: usize = count_group(Group::Mte);
/// The EL1/EL0 world-switch set (row order), before presence filtering.
pub static EL1_SET: [Reg; NUM_EL1_SET] = list_group(Group::El1);
/// The debug registers, switched lazily (row order), before presence filtering.
pub static DEBUG_SET: [Reg; NUM_DEBUG_SET] = list_group(Group::Debug);
/// Registers switched with the FP/SIMD state.
pub static FP_SET: [Reg; NUM_FP_SET] = list_group(Group::Fp);
/// The PMU registers, switched only for VMs with a PMU (row order), before presence
/// filtering.
pub static PMU_SET: [Reg; NUM_PMU_SET] = list_group(Group::Pmu);
/// The memory-tagging registers, switched only for VMs offered MTE (row order).
pub static MTE_SET: [Reg; NUM_MTE_SET] = list_group(Group::Mte);

const fn count_ids() -> usize {
    let mut n = 0;
    let mut i = 0;
    while i < COUNT {
        if TABLE[i].flags.contains(Flags::ID) {
            n += 1;
        }
        i += 1;
    }
    n
}

/// Number of sanitised ID registers.
pub const NUM_IDS: usize = count_ids();

const fn list_ids() -> [Reg; NUM_IDS] {
    let mut a = [Reg::ALL[0]; NUM_IDS];
    let mut n = 0;
    let mut i = 0;
    while i < COUNT {
        if TABLE[i].flags.contains(Flags::ID) {
            a[n] = Reg::ALL[i];
            n += 1;
        }
        i += 1;
    }
    a
}

/// The sanitised ID registers, in row order.
pub static ID_REGS: [Reg; NUM_IDS] = list_ids();

// ---------------------------------------------------------------------------------
// Compile-time checks. Each failure panics with the offending row's name; the line
// the compiler points at names the rule.

const fn check_table() {
    let mut i = 0;
    while i < COUNT {
        let e = &TABLE[i];
        let f = e.flags;
        // Rule: the row order is the enum order (the macro guarantees it).
        if Reg::ALL[i] as usize != i {
            panic!("{}", e.name);
        }
        // Rule: every entry has an encoding.
        if e.a64.is_none() && e.a32.is_none() {
            panic!("{}", e.name);
        }
        // Rule: both encodings only for AArch32 state with an EL2 name.
        if e.a64.is_some() && e.a32.is_some() && !f.contains(Flags::EL2_VIEW) {
            panic!("{}", e.name);
        }
        // Rule: EL2_VIEW needs an AArch64 encoding with op1 = 4 (an EL2 register).
        if f.contains(Flags::EL2_VIEW) {
            match e.a64 {
                Some(s) if s.op1 == 4 => {}
                _ => panic!("{}", e.name),
            }
        }
        let no_raw = matches!(e.state, State::Volatile | State::Func(_) | State::Op(_));
        // Rule: NO_RAW exactly for state that is not stored (set by the constructors).
        if no_raw != f.contains(Flags::NO_RAW) {
            panic!("{}", e.name);
        }
        // Rule: ALIAS exactly for alias state.
        if matches!(e.state, State::Alias { .. }) != f.contains(Flags::ALIAS) {
            panic!("{}", e.name);
        }
        // Rule: CONST exactly for constants and sanitised ID registers.
        let is_const = matches!(e.state, State::Const(_))
            || (matches!(e.state, State::Own) && f.contains(Flags::ID));
        if is_const != f.contains(Flags::CONST) {
            panic!("{}", e.name);
        }
        // Rule: a CONST entry is not writable unless its writes are ignored.
        if is_const && e.access.writable() && !f.contains(Flags::WI) {
            panic!("{}", e.name);
        }
        // Rule: an operation is write-only.
        if matches!(e.state, State::Op(_)) && e.access.readable() {
            panic!("{}", e.name);
        }
        // Rule: the hw column: `hw` for stored, writable state; `ro` for values only
        // read from hardware (ID registers, counters); both need an AArch64 encoding.
        let hw = HW_KIND[i];
        if hw != 0 && e.a64.is_none() {
            panic!("{}", e.name);
        }
        let ro_state = is_const || matches!(e.state, State::Volatile);
        if hw == 1 && !matches!(e.state, State::Own) {
            panic!("{}", e.name);
        }
        if hw == 1 && ro_state {
            panic!("{}", e.name);
        }
        if hw == 2 && !ro_state {
            panic!("{}", e.name);
        }
        // Rule: volatile state exists only in hardware.
        if matches!(e.state, State::Volatile) && hw != 2 {
            panic!("{}", e.name);
        }
        // Rule: a world-switch group needs stored, hardware-backed, non-constant state.
        if !matches!(e.group, Group::None) && (hw != 1 || !matches!(e.state, State::Own)) {
            panic!("{}", e.name);
        }
        // Rule: stored, hardware-backed state must be switched (or it leaks between
        // vCPUs); EL2 views too.
        if hw == 1 && matches!(e.group, Group::None) {
            panic!("{}", e.name);
        }
        // Rule: an alias maps onto bits of a non-alias owner with own state, and a
        // writable alias of a constant must ignore writes.
        if let State::Alias { owner, lsb, width } = e.state {
            let o = &TABLE[owner as usize];
            if !matches!(o.state, State::Own) || o.flags.contains(Flags::ALIAS) {
                panic!("{}", e.name);
            }
            if width == 0 || lsb as u32 + width as u32 > 64 {
                panic!("{}", e.name);
            }
            if o.flags.contains(Flags::CONST) && e.access.writable() && !f.contains(Flags::WI) {
                panic!("{}", e.name);
            }
            // Rule: a 32-bit AArch32 (MCR) view is at most 32 bits wide.
            if let Some(c) = e.a32 {
                if !c.wide && width > 32 {
                    panic!("{}", e.name);
                }
            }
        }
        i += 1;
    }
    // Rule: no encoding appears twice (each sorted array is strictly ascending).
    let mut i = 1;
    while i < NUM_A64 {
        if A64_SORTED[i - 1].0 == A64_SORTED[i].0 {
            panic!("{}", TABLE[A64_SORTED[i].1 as usize].name);
        }
        i += 1;
    }
    let mut i = 1;
    while i < NUM_A32 {
        if A32_SORTED[i - 1].0 == A32_SORTED[i].0 {
            panic!("{}", TABLE[A32_SORTED[i].1 as usize].name);
        }
        i += 1;
    }
    // Rule: no KVM index appears twice.
    let mut i = 1;
    while i < COUNT {
        if KVM_SORTED[i - 1].0 == KVM_SORTED[i].0 {
            panic!("{}", TABLE[KVM_SORTED[i].1 as usize].name);
        }
        i += 1;
    }
}

const _: () = check_table();

#[cfg(test)]
mod lookup_tests {
    use super::*;

    /// The two-level AArch64 index agrees with a scan of the table for every one of
    /// the 65,536 keys: each encoding finds its row, and every other key finds none.
    #[test]
    fn a64_index_matches_a_scan_for_every_key() {
        extern crate std;
        let mut scan = std::vec![None; 1 << 16];
        for r in Reg::ALL {
            if let Some(e) = r.entry().a64 {
                assert!(scan[e.key() as usize].replace(r).is_none(), "{}", r.name());
            }
        }
        for key in 0..=u16::MAX {
            let enc = Sys64::from_key(key);
            assert_eq!(
                lookup_a64(enc),
                scan[key as usize],
                "key {key:#06x} ({enc})"
            );
            // The same encoding as a trapped MRS's syndrome (Rt = 7, read).
            let iss = ((enc.op0 as u64) << 20)
                | ((enc.op2 as u64) << 17)
                | ((enc.op1 as u64) << 14)
                | ((enc.crn as u64) << 10)
                | (7 << 5)
                | ((enc.crm as u64) << 1)
                | 1;
            assert_eq!(
                lookup_a64_iss(iss),
                scan[key as usize],
                "ISS {iss:#x} ({enc})"
            );
        }
        assert_eq!(scan.iter().flatten().count(), NUM_A64);
    }

    /// Binary-searched AArch32 and KVM lookups find every row by its own key.
    #[test]
    fn a32_and_kvm_lookups_find_every_row() {
        for r in Reg::ALL {
            let e = r.entry();
            if let Some(c) = e.a32 {
                assert_eq!(lookup_a32(c), Some(r), "{}", e.name);
            }
            assert_eq!(lookup_kvm(e.kvm_index()), Some(r), "{}", e.name);
        }
    }
}
