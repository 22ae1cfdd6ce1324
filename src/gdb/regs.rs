//! GDB's register numbers for this target, as the target description declares
//! them: the AArch64 core and FP/SIMD features GDB requires (the numbering of
//! GDB's own `aarch64-core.xml` and `aarch64-fpu.xml`), then the cpreg table's
//! system registers in the table's debugger order.
#![forbid(unsafe_code)]

/// x0..x30: 0..=30.
pub const SP: usize = 31;
pub const PC: usize = 32;
pub const CPSR: usize = 33;
/// v0..v31: 34..=65.
pub const V0: usize = 34;
pub const FPSR: usize = 66;
pub const FPCR: usize = 67;
/// The first system register; the `g` packet carries the registers below it.
pub const FIRST_SYSREG: usize = 68;

/// A register by what it is.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum RegId {
    X(u8),
    Sp,
    Pc,
    /// PSTATE, as SPSR_EL2 saved it.
    Cpsr,
    V(u8),
    Fpsr,
    Fpcr,
    /// The n-th system register of the target description.
    Sys(usize),
}

impl RegId {
    /// The register GDB calls `n`, given how many system registers there are.
    pub fn from_num(n: usize, sysregs: usize) -> Option<Self> {
        Some(match n {
            0..=30 => Self::X(n as u8),
            SP => Self::Sp,
            PC => Self::Pc,
            CPSR => Self::Cpsr,
            34..=65 => Self::V((n - V0) as u8),
            FPSR => Self::Fpsr,
            FPCR => Self::Fpcr,
            _ if n - FIRST_SYSREG < sysregs => Self::Sys(n - FIRST_SYSREG),
            _ => return None,
        })
    }

    /// Size in bytes of a core or FP register (system registers: the target's).
    pub const fn core_size(self) -> Option<usize> {
        match self {
            Self::X(_) | Self::Sp | Self::Pc => Some(8),
            Self::Cpsr | Self::Fpsr | Self::Fpcr => Some(4),
            Self::V(_) => Some(16),
            Self::Sys(_) => None,
        }
    }
}
