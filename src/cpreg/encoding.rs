//! System-register encodings, their lookup keys and their KVM `ONE_REG` indexes.
//!
//! Two encoding spaces reach the table:
//!
//! * [`Sys64`]: an AArch64 `MRS`/`MSR`/`SYS` encoding `(op0, op1, CRn, CRm, op2)`, as
//!   reported by a trapped EC 0x18 syndrome.
//! * [`Cp`]: an AArch32 coprocessor encoding on cp14 or cp15, either the 32-bit
//!   `MCR`/`MRC` form `(opc1, CRn, CRm, opc2)` or the 64-bit `MCRR`/`MRRC` form
//!   `(opc1, CRm)`, as reported by EC 0x03/0x05 and 0x04/0x0C.
//!
//! Each encoding packs into an integer key whose order is the order of its KVM index,
//! so one sort serves both the trap-path lookup and the sorted `ONE_REG` lists.
#![forbid(unsafe_code)]

use core::fmt;

use crate::esr::{CpRrtIss, CpRtIss, SysRegIss};

/// An AArch64 system-register or system-instruction encoding.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub struct Sys64 {
    pub op0: u8,
    pub op1: u8,
    pub crn: u8,
    pub crm: u8,
    pub op2: u8,
}

/// `KVM_REG_ARM64 | KVM_REG_SIZE_U64 | KVM_REG_ARM64_SYSREG`.
pub const KVM_ARM64_SYSREG_BASE: u64 = 0x6030_0000_0013_0000;
/// `KVM_REG_ARM` (the AArch32 coprocessor register space).
pub const KVM_REG_ARM: u64 = 0x4000_0000_0000_0000;
/// `KVM_REG_SIZE_U32`.
pub const KVM_REG_SIZE_U32: u64 = 0x0020_0000_0000_0000;
/// `KVM_REG_SIZE_U64`.
pub const KVM_REG_SIZE_U64: u64 = 0x0030_0000_0000_0000;

impl Sys64 {
    pub const fn new(op0: u8, op1: u8, crn: u8, crm: u8, op2: u8) -> Self {
        assert!(op0 < 4 && op1 < 8 && crn < 16 && crm < 16 && op2 < 8);
        Sys64 {
            op0,
            op1,
            crn,
            crm,
            op2,
        }
    }

    /// The 16-bit key `op0<<14 | op1<<11 | CRn<<7 | CRm<<3 | op2` (the low bits of the
    /// KVM index, and the order of `MRS` encodings).
    pub const fn key(self) -> u16 {
        ((self.op0 as u16) << 14)
            | ((self.op1 as u16) << 11)
            | ((self.crn as u16) << 7)
            | ((self.crm as u16) << 3)
            | self.op2 as u16
    }

    pub const fn from_key(key: u16) -> Self {
        Sys64 {
            op0: (key >> 14) as u8 & 3,
            op1: (key >> 11) as u8 & 7,
            crn: (key >> 7) as u8 & 15,
            crm: (key >> 3) as u8 & 15,
            op2: key as u8 & 7,
        }
    }

    /// The KVM `ONE_REG` id (`0x6030_0000_0013_0000 | key`).
    pub const fn kvm_index(self) -> u64 {
        KVM_ARM64_SYSREG_BASE | self.key() as u64
    }

    /// The encoding of a trapped `MRS`/`MSR`/`SYS`.
    pub const fn from_iss(iss: SysRegIss) -> Self {
        Sys64 {
            op0: iss.op0(),
            op1: iss.op1(),
            crn: iss.crn(),
            crm: iss.crm(),
            op2: iss.op2(),
        }
    }
}

impl fmt::Display for Sys64 {
    /// The assembler's generic name, `S<op0>_<op1>_C<n>_C<m>_<op2>`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "S{}_{}_C{}_C{}_{}",
            self.op0, self.op1, self.crn, self.crm, self.op2
        )
    }
}

/// An AArch32 coprocessor encoding (cp14 or cp15).
///
/// `wide` selects the 64-bit `MCRR`/`MRRC` form, which has only `opc1` and `CRm`
/// (`crn` and `opc2` are zero).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub struct Cp {
    pub cp: u8,
    pub wide: bool,
    pub opc1: u8,
    pub crn: u8,
    pub crm: u8,
    pub opc2: u8,
}

impl Cp {
    /// A 32-bit `MCR`/`MRC` encoding.
    pub const fn new32(cp: u8, opc1: u8, crn: u8, crm: u8, opc2: u8) -> Self {
        assert!((cp == 14 || cp == 15) && opc1 < 8 && crn < 16 && crm < 16 && opc2 < 8);
        Cp {
            cp,
            wide: false,
            opc1,
            crn,
            crm,
            opc2,
        }
    }

    /// A 64-bit `MCRR`/`MRRC` encoding.
    pub const fn new64(cp: u8, opc1: u8, crm: u8) -> Self {
        assert!((cp == 14 || cp == 15) && opc1 < 16 && crm < 16);
        Cp {
            cp,
            wide: true,
            opc1,
            crn: 0,
            crm,
            opc2: 0,
        }
    }

    /// The register field of the KVM index: `CRn<<11 | CRm<<7 | opc1<<3 | opc2`
    /// (`KVM_REG_ARM_32_CRN_SHIFT` 11, `KVM_REG_ARM_CRM_SHIFT` 7,
    /// `KVM_REG_ARM_OPC1_SHIFT` 3, `KVM_REG_ARM_32_OPC2_SHIFT` 0).
    const fn reg_bits(self) -> u64 {
        ((self.crn as u64) << 11)
            | ((self.crm as u64) << 7)
            | ((self.opc1 as u64) << 3)
            | self.opc2 as u64
    }

    /// A key ordered like the KVM index: size, then coprocessor, then register bits.
    pub const fn key(self) -> u32 {
        ((self.wide as u32) << 24) | ((self.cp as u32) << 16) | self.reg_bits() as u32
    }

    /// The KVM `ONE_REG` id: `KVM_REG_ARM | size | cp<<16 | reg_bits`.
    pub const fn kvm_index(self) -> u64 {
        KVM_REG_ARM
            | if self.wide {
                KVM_REG_SIZE_U64
            } else {
                KVM_REG_SIZE_U32
            }
            | ((self.cp as u64) << 16)
            | self.reg_bits()
    }

    /// The encoding of a trapped `MCR`/`MRC` on coprocessor `cp`.
    pub const fn from_rt_iss(cp: u8, iss: CpRtIss) -> Self {
        Cp {
            cp,
            wide: false,
            opc1: iss.opc1(),
            crn: iss.crn(),
            crm: iss.crm(),
            opc2: iss.opc2(),
        }
    }

    /// The encoding of a trapped `MCRR`/`MRRC` on coprocessor `cp`.
    pub const fn from_rrt_iss(cp: u8, iss: CpRrtIss) -> Self {
        Cp {
            cp,
            wide: true,
            opc1: iss.opc1(),
            crn: 0,
            crm: iss.crm(),
            opc2: 0,
        }
    }
}

impl fmt::Display for Cp {
    /// `p15,0,c1,c0,0` or, for the 64-bit form, `p15,0,c2` (the operand order of
    /// `MCR` and `MCRR` without the transfer registers).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.wide {
            write!(f, "p{},{},c{}", self.cp, self.opc1, self.crm)
        } else {
            write!(
                f,
                "p{},{},c{},c{},{}",
                self.cp, self.opc1, self.crn, self.crm, self.opc2
            )
        }
    }
}

/// Either kind of encoding, for reports (trap counters, UNDEF logs).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Encoding {
    A64(Sys64),
    A32(Cp),
}

impl Encoding {
    pub const fn kvm_index(self) -> u64 {
        match self {
            Encoding::A64(e) => e.kvm_index(),
            Encoding::A32(e) => e.kvm_index(),
        }
    }
}

impl fmt::Display for Encoding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Encoding::A64(e) => e.fmt(f),
            Encoding::A32(e) => e.fmt(f),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sctlr_el1_kvm_index() {
        assert_eq!(Sys64::new(3, 0, 1, 0, 0).kvm_index(), 0x6030_0000_0013_c080);
    }

    #[test]
    fn sys64_key_round_trips_for_every_encoding() {
        for key in 0..=u16::MAX {
            assert_eq!(Sys64::from_key(key).key(), key);
        }
    }

    #[test]
    fn aarch32_kvm_index_formula() {
        // SCTLR: MRC p15, 0, <Rt>, c1, c0, 0 -> CRn 1 at bit 11.
        assert_eq!(Cp::new32(15, 0, 1, 0, 0).kvm_index(), 0x4020_0000_000f_0800);
        // CONTEXTIDR p15,0,c13,c0,1 -> 13<<11 | 1.
        assert_eq!(
            Cp::new32(15, 0, 13, 0, 1).kvm_index(),
            0x4020_0000_000f_0000 | (13 << 11) | 1
        );
        // TTBR1 64-bit: MRRC p15, 1, <Rt>, <Rt2>, c2 -> CRm 2 at bit 7, opc1 1 at bit 3.
        assert_eq!(Cp::new64(15, 1, 2).kvm_index(), 0x4030_0000_000f_0108);
        // DBGBVR1 on cp14: p14,0,c0,c1,4.
        assert_eq!(
            Cp::new32(14, 0, 0, 1, 4).kvm_index(),
            0x4020_0000_000e_0000 | (1 << 7) | 4
        );
    }

    #[test]
    fn keys_order_like_kvm_indexes() {
        let a = [
            Cp::new32(15, 0, 1, 0, 0),
            Cp::new64(15, 0, 2),
            Cp::new32(14, 0, 0, 1, 4),
            Cp::new64(14, 0, 1),
            Cp::new32(15, 7, 15, 15, 7),
        ];
        for x in a {
            for y in a {
                assert_eq!(x.key().cmp(&y.key()), x.kvm_index().cmp(&y.kvm_index()));
            }
        }
    }

    #[test]
    fn decodes_from_syndromes() {
        // MRC p15, 0, r2, c13, c0, 1 (CONTEXTIDR).
        let iss = CpRtIss((1 << 24) | (0xe << 20) | (1 << 17) | (13 << 10) | (2 << 5) | 1);
        assert_eq!(Cp::from_rt_iss(15, iss), Cp::new32(15, 0, 13, 0, 1));
        // MCRR p15, 1, r4, r5, c2.
        let iss = CpRrtIss((1 << 24) | (0xe << 20) | (1 << 16) | (5 << 10) | (4 << 5) | (2 << 1));
        assert_eq!(Cp::from_rrt_iss(15, iss), Cp::new64(15, 1, 2));
        let iss = SysRegIss((3 << 20) | (1 << 10) | (3 << 5));
        assert_eq!(Sys64::from_iss(iss), Sys64::new(3, 0, 1, 0, 0));
    }

    #[test]
    fn display_names() {
        extern crate std;
        use std::format;
        assert_eq!(format!("{}", Sys64::new(3, 0, 1, 0, 0)), "S3_0_C1_C0_0");
        assert_eq!(format!("{}", Cp::new32(15, 0, 2, 0, 2)), "p15,0,c2,c0,2");
        assert_eq!(format!("{}", Cp::new64(15, 1, 2)), "p15,1,c2");
    }
}
