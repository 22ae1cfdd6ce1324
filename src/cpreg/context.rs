//! The vCPU's system-register context: one `u64` per state-owning table entry.
//!
//! Why slots generated from the table rather than a hand-written struct with named
//! fields: the struct, the save/restore code, the reset values and the export list
//! would otherwise be four copies of the same list (the "arm-gic fake" problem in
//! STYLE.md). Here `table.rs` numbers the owning rows at compile time and this file
//! is just an array of that size plus the accessors every consumer shares:
//!
//! * **guest accessors** ([`SysRegFile::guest_value`], [`SysRegFile::guest_store`]):
//!   what a trapped access sees, including hardware (a `hw` register's live value is
//!   in the CPU while its vCPU runs, so it is read from there and the slot
//!   refreshed), write masks, set/clear semantics and computed registers;
//! * **raw accessors** ([`SysRegFile::raw_read`], [`SysRegFile::raw_write`]): the
//!   state itself, without side effects, for import, export, the debugger and
//!   tests. Hardware-backed state must be saved into the context first
//!   (`save_el1`, or [`save_el1_with`](super::save_el1_with)).
#![forbid(unsafe_code)]

use super::entry::{Features, Flags, State, WriteOp};
use super::hw::SysRegHw;
use super::idregs::{mpidr_for_vcpu, GuestIds};
use super::table::{entries, lookup_kvm, Reg, COUNT, ID_REGS, KVM_ORDER, PMCR_ACTIONS, SLOT_SPACE};

/// Why a raw access failed.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum RawError {
    /// The entry is not state (NO_RAW).
    NoRaw,
    /// A constant (or a view of one) was written with a different value.
    ConstMismatch { expected: u64 },
}

impl core::fmt::Display for RawError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::NoRaw => write!(f, "not state (NO_RAW)"),
            Self::ConstMismatch { expected } => {
                write!(f, "a constant: only {expected:#x} is accepted")
            }
        }
    }
}

/// Why an import of one `(index, value)` pair failed.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum ImportError {
    UnknownIndex(u64),
    NotState(Reg),
    Raw(Reg, RawError),
    /// Read back differs from what was written (read-only bits, out-of-range value).
    Mismatch {
        reg: Reg,
        wrote: u64,
        read: u64,
    },
}

/// The system registers of one vCPU.
#[derive(Clone)]
pub struct SysRegFile {
    slots: [u64; SLOT_SPACE],
    features: Features,
    /// One bit per entry: present on this vCPU (`features` resolved once, so the
    /// trap path tests a bit instead of matching on the presence rule).
    present: [u64; PRESENT_WORDS],
    ccsidr: [u64; 16],
}

/// Words of the presence bitmap: a power of two, so an entry number indexes it
/// masked, without a bounds check.
const PRESENT_WORDS: usize = COUNT.div_ceil(64).next_power_of_two();

fn presence_bits(f: &Features) -> [u64; PRESENT_WORDS] {
    let mut bits = [0u64; PRESENT_WORDS];
    for (i, e) in entries().enumerate() {
        if f.has(e.presence) {
            bits[i / 64] |= 1 << (i % 64);
        }
    }
    bits
}

const fn field_mask(width: u8) -> u64 {
    if width >= 64 {
        u64::MAX
    } else {
        (1u64 << width) - 1
    }
}

impl SysRegFile {
    /// A vCPU context with the VM's sanitised ID values, this vCPU's MPIDR and every
    /// other register at its reset value.
    pub fn new(ids: &GuestIds, vcpu_index: usize) -> Self {
        let features = ids.features();
        let mut f = SysRegFile {
            slots: [0; SLOT_SPACE],
            features,
            present: presence_bits(&features),
            ccsidr: ids.ccsidr,
        };
        for (i, &r) in ID_REGS.iter().enumerate() {
            f.set_reg_slot(r, ids.values[i]);
        }
        f.set_reg_slot(Reg::MPIDR_EL1, mpidr_for_vcpu(vcpu_index));
        f.reset();
        f
    }

    pub fn features(&self) -> &Features {
        &self.features
    }

    /// Override the features (normally derived from the ID values).
    pub fn set_features(&mut self, f: Features) {
        self.features = f;
        self.present = presence_bits(&f);
    }

    /// Whether this vCPU has the register.
    #[inline]
    pub fn present(&self, reg: Reg) -> bool {
        self.present_index(reg as usize)
    }

    /// Whether this vCPU has entry number `i` (`Reg as usize`).
    #[inline(always)]
    pub(crate) fn present_index(&self, i: usize) -> bool {
        self.present[(i / 64) & (PRESENT_WORDS - 1)] & (1 << (i % 64)) != 0
    }

    /// Put every owned, non-constant register at its reset value. ALIAS entries are
    /// reset through their owner; ID values are fixed for the vCPU's lifetime. The
    /// context only: a loaded vCPU also needs `restore_el1` afterwards.
    pub fn reset(&mut self) {
        for (i, e) in entries().enumerate() {
            if let (State::Own, Some(s)) = (e.state, Reg::ALL[i].slot()) {
                if !e.is(Flags::CONST) {
                    self.slots[s] = e.reset;
                }
            }
        }
    }

    /// CCSIDR for a CSSELR value (Level and InD, bits 3:0).
    pub fn ccsidr(&self, csselr: u64) -> u64 {
        self.ccsidr[(csselr & 0xf) as usize]
    }

    /// Every slot, for the world switch's generated register moves
    /// (`arch::sysreg`), which index them with the table's slot numbers.
    pub fn slots(&self) -> &[u64; SLOT_SPACE] {
        &self.slots
    }

    /// Every slot, to be written by the world switch.
    pub fn slots_mut(&mut self) -> &mut [u64; SLOT_SPACE] {
        &mut self.slots
    }

    /// Slot `i` (a slot number from the table, `Reg::slot`).
    #[inline]
    pub(crate) fn slot(&self, i: usize) -> u64 {
        self.slots[i & (SLOT_SPACE - 1)]
    }

    /// Stores into slot `i` (a slot number from the table).
    #[inline]
    pub(crate) fn set_slot(&mut self, i: usize, v: u64) {
        self.slots[i & (SLOT_SPACE - 1)] = v;
    }

    fn slot_value(&self, reg: Reg) -> u64 {
        reg.slot().map_or(0, |s| self.slots[s])
    }

    fn set_reg_slot(&mut self, reg: Reg, v: u64) {
        if let Some(s) = reg.slot() {
            self.slots[s] = v;
        }
    }

    // -----------------------------------------------------------------------------
    // Raw accessors.

    /// The state of an entry (aliases: their bits of the owner).
    pub fn raw_read(&self, reg: Reg) -> Result<u64, RawError> {
        match reg.entry().state {
            State::Own => Ok(self.slot_value(reg)),
            State::Const(v) => Ok(v),
            State::Alias { owner, lsb, width } => {
                Ok((self.slot_value(owner) >> lsb) & field_mask(width))
            }
            State::Volatile | State::Func(_) | State::Op(_) => Err(RawError::NoRaw),
        }
    }

    /// Set the state of an entry without side effects. Constants accept only their
    /// own value; an alias writes its bits of the owner (bits above its width are
    /// dropped, which an import detects by reading back).
    pub fn raw_write(&mut self, reg: Reg, value: u64) -> Result<(), RawError> {
        let e = reg.entry();
        match e.state {
            State::Own if e.is(Flags::CONST) => {
                let cur = self.slot_value(reg);
                if cur == value {
                    Ok(())
                } else {
                    Err(RawError::ConstMismatch { expected: cur })
                }
            }
            State::Own => {
                // PMCR_EL0.P and .C reset the counters: actions, never state, so a
                // restore cannot zero the counters it has just restored (an import
                // that carries them reads back differently and fails).
                let value = if reg == Reg::PMCR_EL0 {
                    value & !PMCR_ACTIONS
                } else {
                    value
                };
                self.set_reg_slot(reg, value);
                Ok(())
            }
            State::Const(v) if v == value => Ok(()),
            State::Const(v) => Err(RawError::ConstMismatch { expected: v }),
            State::Alias { owner, lsb, width } => {
                let m = field_mask(width) << lsb;
                let old = self.slot_value(owner);
                let new = (old & !m) | ((value << lsb) & m);
                self.raw_write(owner, new)
            }
            State::Volatile | State::Func(_) | State::Op(_) => Err(RawError::NoRaw),
        }
    }

    /// Import one register of a list (KVM index and value): written through the raw
    /// accessor (aliases write onto their owner), then read back. NO_RAW entries are
    /// refused; unknown indexes are errors (never skipped silently).
    ///
    /// Indexes follow the DESIGN.md formula for every register. KVM's own timer ABI
    /// is the one exception to watch for when reading a KVM list: its
    /// `KVM_REG_ARM_TIMER_CNT` and `KVM_REG_ARM_TIMER_CVAL` carry each other's
    /// encodings (CNT is `(3,3,14,3,2)`, CVAL is `(3,3,14,0,2)`), so a converter
    /// must swap them before importing here.
    pub fn import(&mut self, index: u64, value: u64) -> Result<(), ImportError> {
        let reg = lookup_kvm(index).ok_or(ImportError::UnknownIndex(index))?;
        if !reg.entry().is_importable() {
            return Err(ImportError::NotState(reg));
        }
        self.raw_write(reg, value)
            .map_err(|e| ImportError::Raw(reg, e))?;
        let read = self.raw_read(reg).map_err(|e| ImportError::Raw(reg, e))?;
        if read != value {
            return Err(ImportError::Mismatch {
                reg,
                wrote: value,
                read,
            });
        }
        Ok(())
    }

    /// The saved list of this vCPU with values, ascending by KVM index.
    pub fn export(&self) -> impl Iterator<Item = (u64, u64)> + '_ {
        saved_list(self.features).map(move |(i, r)| (i, self.raw_read(r).unwrap_or(0)))
    }

    // -----------------------------------------------------------------------------
    // Guest accessors.

    /// The value a guest read returns (rights not checked); `None` for operations.
    pub fn guest_value<H: SysRegHw + ?Sized>(&mut self, hw: &mut H, reg: Reg) -> Option<u64> {
        let e = reg.entry();
        match e.state {
            State::Own => {
                if e.is(Flags::HW) && !e.is(Flags::CONST) {
                    let v = hw.read(reg);
                    self.set_reg_slot(reg, v);
                    Some(v)
                } else {
                    Some(self.slot_value(reg))
                }
            }
            State::Const(v) => Some(v),
            State::Alias { owner, lsb, width } => self
                .guest_value(hw, owner)
                .map(|v| (v >> lsb) & field_mask(width)),
            State::Volatile => Some(hw.read(reg)),
            State::Func(f) => Some((f.read)(self, hw.dynamic())),
            State::Op(_) => None,
        }
    }

    /// A guest write (rights not checked): write mask, set/clear semantics and
    /// write-ignore applied; the hardware register is written too and the slot takes
    /// the value read back from it (so read-only and reserved bits behave as on the
    /// hardware).
    pub fn guest_store<H: SysRegHw + ?Sized>(&mut self, hw: &mut H, reg: Reg, value: u64) {
        let e = reg.entry();
        if e.is(Flags::WI) {
            return;
        }
        match e.state {
            State::Own if !e.is(Flags::CONST) => {
                let new = if e.write_op == WriteOp::Store && e.wmask == u64::MAX {
                    value
                } else {
                    let old = self.guest_value(hw, reg).unwrap_or(0);
                    e.write_op.apply(old, value, e.wmask)
                };
                self.guest_store_raw(hw, reg, new);
            }
            State::Alias { owner, lsb, width } => {
                let m = field_mask(width);
                let old = self.guest_value(hw, owner).unwrap_or(0);
                let view = e.write_op.apply((old >> lsb) & m, value & m, e.wmask & m);
                let new = (old & !(m << lsb)) | ((view & m) << lsb);
                self.guest_store_raw(hw, owner, new);
            }
            State::Func(f) => (f.write)(self, hw.dynamic(), value),
            State::Own | State::Const(_) | State::Volatile | State::Op(_) => {}
        }
    }

    /// Store a whole value into an owned register: hardware (with read-back) and slot.
    pub fn guest_store_raw<H: SysRegHw + ?Sized>(&mut self, hw: &mut H, reg: Reg, value: u64) {
        let e = reg.entry();
        if e.is(Flags::HW) {
            hw.write(reg, value);
            let v = hw.read(reg);
            self.set_reg_slot(reg, v);
        } else {
            self.set_reg_slot(reg, value);
        }
    }

    // -----------------------------------------------------------------------------
    // World switch.

    /// Copy the hardware registers of `set` (those present) into the context.
    pub fn save_from(&mut self, hw: &mut dyn SysRegHw, set: &[Reg]) {
        for &r in set {
            if self.present(r) {
                let v = hw.read(r);
                self.set_reg_slot(r, v);
            }
        }
    }

    /// Load the context's values of `set` (those present) into the hardware.
    pub fn restore_to(&self, hw: &mut dyn SysRegHw, set: &[Reg]) {
        for &r in set {
            if self.present(r) {
                hw.write(r, self.slot_value(r));
            }
        }
    }
}

/// The registers a snapshot saves for a vCPU with `features`: every entry that is
/// neither ALIAS nor NO_RAW and is present, ascending by KVM index.
pub fn saved_list(features: Features) -> impl Iterator<Item = (u64, Reg)> {
    KVM_ORDER.iter().copied().filter_map(move |r| {
        let e = r.entry();
        (e.is_saved() && features.has(e.presence)).then(|| (r.kvm_index(), r))
    })
}

/// The registers a debugger shows for a vCPU with `features` (every entry that is
/// not NO_RAW and is present), in table order, with their width in bits.
pub fn debugger_view(features: Features) -> impl Iterator<Item = (Reg, u8)> {
    Reg::ALL.iter().copied().filter_map(move |r| {
        let e = r.entry();
        (e.is_shown() && features.has(e.presence)).then(|| (r, e.width()))
    })
}
