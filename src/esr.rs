//! Decoding of the Exception Syndrome Register (ESR_ELx).
//!
//! Every trap the hypervisor takes is dispatched on the exception class (EC) decoded
//! here, and its instruction-specific syndrome (ISS) is read through the typed views
//! below, never through magic masks at the call site. Field positions follow the Arm
//! ARM (DDI 0487, section D24.2.40 "ESR_EL2"). Pure logic: host-tested.
#![forbid(unsafe_code)]

/// A raw syndrome value as read from ESR_EL2 (or built for ESR_EL1 on injection).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Esr(pub u64);

/// Exception classes the hypervisor distinguishes. Anything else is `Other(ec)`.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum ExceptionClass {
    Unknown,
    WfiWfe,
    /// MCR/MRC to cp15 (AArch32).
    Cp15Rt,
    /// MCRR/MRRC to cp15 (AArch32).
    Cp15RRt,
    /// MCR/MRC to cp14 (AArch32).
    Cp14Rt,
    /// LDC/STC to cp14 (AArch32).
    Cp14Ls,
    FpSimdAccess,
    /// MRRC to cp14 (AArch32).
    Cp14RRt,
    IllegalState,
    Svc32,
    Hvc32,
    Smc32,
    Svc64,
    Hvc64,
    Smc64,
    /// MSR, MRS or SYS (AArch64).
    SysReg,
    Sve,
    InstrAbortLower,
    InstrAbortSame,
    PcAlignment,
    DataAbortLower,
    DataAbortSame,
    SpAlignment,
    Fp32,
    Fp64,
    SError,
    BreakpointLower,
    BreakpointSame,
    SoftwareStepLower,
    SoftwareStepSame,
    WatchpointLower,
    WatchpointSame,
    Bkpt32,
    Brk64,
    Other(u8),
}

impl ExceptionClass {
    pub const fn from_bits(ec: u8) -> Self {
        use ExceptionClass::*;
        match ec {
            0x00 => Unknown,
            0x01 => WfiWfe,
            0x03 => Cp15Rt,
            0x04 => Cp15RRt,
            0x05 => Cp14Rt,
            0x06 => Cp14Ls,
            0x07 => FpSimdAccess,
            0x0c => Cp14RRt,
            0x0e => IllegalState,
            0x11 => Svc32,
            0x12 => Hvc32,
            0x13 => Smc32,
            0x15 => Svc64,
            0x16 => Hvc64,
            0x17 => Smc64,
            0x18 => SysReg,
            0x19 => Sve,
            0x20 => InstrAbortLower,
            0x21 => InstrAbortSame,
            0x22 => PcAlignment,
            0x24 => DataAbortLower,
            0x25 => DataAbortSame,
            0x26 => SpAlignment,
            0x28 => Fp32,
            0x2c => Fp64,
            0x2f => SError,
            0x30 => BreakpointLower,
            0x31 => BreakpointSame,
            0x32 => SoftwareStepLower,
            0x33 => SoftwareStepSame,
            0x34 => WatchpointLower,
            0x35 => WatchpointSame,
            0x38 => Bkpt32,
            0x3c => Brk64,
            other => Other(other),
        }
    }

    pub const fn bits(self) -> u8 {
        use ExceptionClass::*;
        match self {
            Unknown => 0x00,
            WfiWfe => 0x01,
            Cp15Rt => 0x03,
            Cp15RRt => 0x04,
            Cp14Rt => 0x05,
            Cp14Ls => 0x06,
            FpSimdAccess => 0x07,
            Cp14RRt => 0x0c,
            IllegalState => 0x0e,
            Svc32 => 0x11,
            Hvc32 => 0x12,
            Smc32 => 0x13,
            Svc64 => 0x15,
            Hvc64 => 0x16,
            Smc64 => 0x17,
            SysReg => 0x18,
            Sve => 0x19,
            InstrAbortLower => 0x20,
            InstrAbortSame => 0x21,
            PcAlignment => 0x22,
            DataAbortLower => 0x24,
            DataAbortSame => 0x25,
            SpAlignment => 0x26,
            Fp32 => 0x28,
            Fp64 => 0x2c,
            SError => 0x2f,
            BreakpointLower => 0x30,
            BreakpointSame => 0x31,
            SoftwareStepLower => 0x32,
            SoftwareStepSame => 0x33,
            WatchpointLower => 0x34,
            WatchpointSame => 0x35,
            Bkpt32 => 0x38,
            Brk64 => 0x3c,
            Other(ec) => ec,
        }
    }
}

/// The class in words, as the Arm ARM names it (for console messages).
impl core::fmt::Display for ExceptionClass {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        use ExceptionClass::*;
        let name = match self {
            Unknown => "an unknown reason",
            WfiWfe => "WFI or WFE",
            Cp15Rt => "MCR or MRC to cp15",
            Cp15RRt => "MCRR or MRRC to cp15",
            Cp14Rt => "MCR or MRC to cp14",
            Cp14Ls => "LDC or STC to cp14",
            FpSimdAccess => "an FP/SIMD access",
            Cp14RRt => "MRRC to cp14",
            IllegalState => "an illegal execution state",
            Svc32 => "SVC (AArch32)",
            Hvc32 => "HVC (AArch32)",
            Smc32 => "SMC (AArch32)",
            Svc64 => "SVC (AArch64)",
            Hvc64 => "HVC (AArch64)",
            Smc64 => "SMC (AArch64)",
            SysReg => "MSR, MRS or a system instruction",
            Sve => "an SVE access",
            InstrAbortLower => "an instruction abort from a lower EL",
            InstrAbortSame => "an instruction abort",
            PcAlignment => "a PC alignment fault",
            DataAbortLower => "a data abort from a lower EL",
            DataAbortSame => "a data abort",
            SpAlignment => "an SP alignment fault",
            Fp32 => "an FP exception (AArch32)",
            Fp64 => "an FP exception (AArch64)",
            SError => "an SError",
            BreakpointLower => "a breakpoint from a lower EL",
            BreakpointSame => "a breakpoint",
            SoftwareStepLower => "a software step from a lower EL",
            SoftwareStepSame => "a software step",
            WatchpointLower => "a watchpoint from a lower EL",
            WatchpointSame => "a watchpoint",
            Bkpt32 => "BKPT (AArch32)",
            Brk64 => "BRK (AArch64)",
            Other(_) => "an exception class not decoded here",
        };
        f.write_str(name)
    }
}

const fn bits(v: u64, hi: u32, lo: u32) -> u64 {
    (v >> lo) & ((1u64 << (hi - lo + 1)) - 1)
}

impl Esr {
    /// Bit 25: the trapped instruction was 32 bits wide (A64, A32, or a 32-bit T32).
    pub const IL: u64 = 1 << 25;

    pub const fn ec(self) -> ExceptionClass {
        ExceptionClass::from_bits(bits(self.0, 31, 26) as u8)
    }

    /// The trapped instruction's length in bytes (2 or 4), from `IL`.
    pub const fn instruction_len(self) -> u64 {
        if self.0 & Self::IL != 0 {
            4
        } else {
            2
        }
    }

    pub const fn iss(self) -> u64 {
        bits(self.0, 24, 0)
    }

    /// An instruction or data abort whose fault status (IFSC/DFSC, bits 5:0) is
    /// an access flag fault at any level (0b0010LL).
    pub const fn is_access_flag_fault(self) -> bool {
        matches!(
            self.ec(),
            ExceptionClass::InstrAbortLower | ExceptionClass::DataAbortLower
        ) && matches!(bits(self.0, 5, 0), 0b001000..=0b001011)
    }

    /// Build a syndrome from its parts (used to inject exceptions into a guest).
    pub const fn new(ec: ExceptionClass, il32: bool, iss: u64) -> Self {
        Esr(((ec.bits() as u64) << 26) | if il32 { Self::IL } else { 0 } | (iss & 0x1ff_ffff))
    }

    pub const fn data_abort(self) -> DataAbortIss {
        DataAbortIss(self.iss())
    }

    pub const fn sysreg(self) -> SysRegIss {
        SysRegIss(self.iss())
    }

    pub const fn cp_rt(self) -> CpRtIss {
        CpRtIss(self.iss())
    }

    pub const fn cp_rrt(self) -> CpRrtIss {
        CpRrtIss(self.iss())
    }

    /// HVC/SMC/SVC immediate (AArch64: imm16).
    pub const fn imm16(self) -> u16 {
        bits(self.0, 15, 0) as u16
    }

    /// WFI/WFE: bit 0 of TI is set for WFE (and WFET), clear for WFI.
    pub const fn is_wfe(self) -> bool {
        self.0 & 1 != 0
    }
}

/// ISS of a data abort (EC 0x24/0x25), Arm ARM D24.2.40 "ISS encoding for an
/// exception from a Data Abort".
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct DataAbortIss(pub u64);

impl DataAbortIss {
    /// Instruction syndrome valid: the fields below (size, register, sign) describe
    /// the access, so it can be emulated.
    pub const fn isv(self) -> bool {
        bits(self.0, 24, 24) != 0
    }
    /// Access size in bytes: 1, 2, 4 or 8.
    pub const fn access_size(self) -> usize {
        1 << bits(self.0, 23, 22)
    }
    pub const fn sign_extend(self) -> bool {
        bits(self.0, 21, 21) != 0
    }
    /// The transfer register Rt (31 means XZR/WZR).
    pub const fn srt(self) -> usize {
        bits(self.0, 20, 16) as usize
    }
    /// The destination is a 64-bit register.
    pub const fn sixty_four(self) -> bool {
        bits(self.0, 15, 15) != 0
    }
    /// Cache maintenance or address translation instruction.
    pub const fn cm(self) -> bool {
        bits(self.0, 8, 8) != 0
    }
    /// Fault on a stage-2 walk of a stage-1 table.
    pub const fn s1ptw(self) -> bool {
        bits(self.0, 7, 7) != 0
    }
    pub const fn is_write(self) -> bool {
        bits(self.0, 6, 6) != 0
    }
    /// Data fault status code.
    pub const fn dfsc(self) -> u8 {
        bits(self.0, 5, 0) as u8
    }
    /// DFSC is a translation fault (level 0-3).
    pub const fn is_translation_fault(self) -> bool {
        matches!(self.dfsc(), 0b000100..=0b000111)
    }
}

/// ISS of a trapped MSR/MRS/SYS (EC 0x18).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct SysRegIss(pub u64);

impl SysRegIss {
    pub const fn op0(self) -> u8 {
        bits(self.0, 21, 20) as u8
    }
    pub const fn op2(self) -> u8 {
        bits(self.0, 19, 17) as u8
    }
    pub const fn op1(self) -> u8 {
        bits(self.0, 16, 14) as u8
    }
    pub const fn crn(self) -> u8 {
        bits(self.0, 13, 10) as u8
    }
    pub const fn rt(self) -> usize {
        bits(self.0, 9, 5) as usize
    }
    pub const fn crm(self) -> u8 {
        bits(self.0, 4, 1) as u8
    }
    /// MRS (a read) when set; MSR or SYS (a write) when clear.
    pub const fn is_read(self) -> bool {
        bits(self.0, 0, 0) != 0
    }
}

/// The condition-code fields shared by every AArch32 trapped class.
pub trait Conditional {
    fn raw(&self) -> u64;
    /// CV: the COND field is valid.
    fn cond_valid(&self) -> bool {
        bits(self.raw(), 24, 24) != 0
    }
    fn cond(&self) -> u8 {
        bits(self.raw(), 23, 20) as u8
    }
}

/// ISS of a trapped MCR/MRC (EC 0x03 cp15, 0x05 cp14).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct CpRtIss(pub u64);

impl Conditional for CpRtIss {
    fn raw(&self) -> u64 {
        self.0
    }
}

impl CpRtIss {
    pub const fn opc2(self) -> u8 {
        bits(self.0, 19, 17) as u8
    }
    pub const fn opc1(self) -> u8 {
        bits(self.0, 16, 14) as u8
    }
    pub const fn crn(self) -> u8 {
        bits(self.0, 13, 10) as u8
    }
    pub const fn rt(self) -> usize {
        bits(self.0, 9, 5) as usize
    }
    pub const fn crm(self) -> u8 {
        bits(self.0, 4, 1) as u8
    }
    /// MRC (a read) when set.
    pub const fn is_read(self) -> bool {
        bits(self.0, 0, 0) != 0
    }
}

/// ISS of a trapped MCRR/MRRC (EC 0x04 cp15, 0x0C cp14).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct CpRrtIss(pub u64);

impl Conditional for CpRrtIss {
    fn raw(&self) -> u64 {
        self.0
    }
}

impl CpRrtIss {
    pub const fn opc1(self) -> u8 {
        bits(self.0, 19, 16) as u8
    }
    pub const fn rt2(self) -> usize {
        bits(self.0, 14, 10) as usize
    }
    pub const fn rt(self) -> usize {
        bits(self.0, 9, 5) as usize
    }
    pub const fn crm(self) -> u8 {
        bits(self.0, 4, 1) as u8
    }
    /// MRRC (a read) when set.
    pub const fn is_read(self) -> bool {
        bits(self.0, 0, 0) != 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exception_class_round_trips_for_every_value() {
        for ec in 0u8..64 {
            assert_eq!(ExceptionClass::from_bits(ec).bits(), ec);
        }
    }

    #[test]
    fn decodes_a_trapped_msr_sctlr_el1() {
        // MSR SCTLR_EL1, x3: op0=3 op1=0 CRn=1 CRm=0 op2=0, Rt=3, write.
        let iss = (3 << 20) | (0 << 17) | (0 << 14) | (1 << 10) | (3 << 5) | (0 << 1);
        let esr = Esr(0x18 << 26 | Esr::IL | iss);
        assert_eq!(esr.ec(), ExceptionClass::SysReg);
        assert_eq!(esr.instruction_len(), 4);
        let s = esr.sysreg();
        assert_eq!(
            (s.op0(), s.op1(), s.crn(), s.crm(), s.op2()),
            (3, 0, 1, 0, 0)
        );
        assert_eq!(s.rt(), 3);
        assert!(!s.is_read());
    }

    #[test]
    fn decodes_a_trapped_mrs_with_every_field_at_its_limit() {
        // MRS x30, S3_7_C15_C15_7
        let iss = (3 << 20) | (7 << 17) | (7 << 14) | (15 << 10) | (30 << 5) | (15 << 1) | 1;
        let s = Esr(0x18 << 26 | Esr::IL | iss).sysreg();
        assert_eq!(
            (s.op0(), s.op1(), s.crn(), s.crm(), s.op2()),
            (3, 7, 15, 15, 7)
        );
        assert_eq!(s.rt(), 30);
        assert!(s.is_read());
    }

    #[test]
    fn access_flag_faults_are_told_from_other_aborts() {
        for level in 0..4 {
            assert!(Esr(0x24 << 26 | Esr::IL | 0b001000 | level).is_access_flag_fault());
            assert!(Esr(0x20 << 26 | Esr::IL | 0b001000 | level).is_access_flag_fault());
            // Translation and permission faults are not.
            assert!(!Esr(0x24 << 26 | Esr::IL | 0b000100 | level).is_access_flag_fault());
            assert!(!Esr(0x24 << 26 | Esr::IL | 0b001100 | level).is_access_flag_fault());
        }
        // Nor is a trapped instruction with the same low bits.
        assert!(!Esr(0x18 << 26 | Esr::IL | 0b001001).is_access_flag_fault());
    }

    #[test]
    fn decodes_a_data_abort_with_valid_syndrome() {
        // 4-byte store from w5, stage-2 translation fault at level 2.
        let iss = (1 << 24) | (2 << 22) | (5 << 16) | (1 << 6) | 0b000110;
        let da = Esr(0x24 << 26 | Esr::IL | iss).data_abort();
        assert!(da.isv());
        assert_eq!(da.access_size(), 4);
        assert_eq!(da.srt(), 5);
        assert!(da.is_write());
        assert!(!da.sixty_four());
        assert!(da.is_translation_fault());
        assert_eq!(da.dfsc(), 6);
    }

    #[test]
    fn decodes_aarch32_mcr_and_mrrc() {
        // MCR p15, 0, r2, c1, c0, 0 (SCTLR), condition AL valid.
        let iss = (1 << 24) | (0xe << 20) | (0 << 17) | (0 << 14) | (1 << 10) | (2 << 5);
        let e = Esr(0x03 << 26 | Esr::IL | iss);
        assert_eq!(e.ec(), ExceptionClass::Cp15Rt);
        let c = e.cp_rt();
        assert!(c.cond_valid());
        assert_eq!(c.cond(), 0xe);
        assert_eq!(
            (c.opc1(), c.crn(), c.crm(), c.opc2(), c.rt()),
            (0, 1, 0, 0, 2)
        );
        assert!(!c.is_read());

        // MRRC p15, 1, r4, r5, c2 (TTBR1 64-bit), condition EQ.
        let iss = (1 << 24) | (0x0 << 20) | (1 << 16) | (5 << 10) | (4 << 5) | (2 << 1) | 1;
        let e = Esr(0x04 << 26 | Esr::IL | iss);
        assert_eq!(e.ec(), ExceptionClass::Cp15RRt);
        let c = e.cp_rrt();
        assert_eq!((c.opc1(), c.crm(), c.rt(), c.rt2()), (1, 2, 4, 5));
        assert_eq!(c.cond(), 0);
        assert!(c.is_read());
    }

    #[test]
    fn decodes_aarch32_cp14_classes_and_an_unconditional_syndrome() {
        // MRC p14, 0, r7, c0, c5, 4 (DBGBVR5), CV clear (T32 outside an IT block).
        let iss = (4 << 17) | (0 << 14) | (0 << 10) | (7 << 5) | (5 << 1) | 1;
        let e = Esr(0x05 << 26 | iss);
        assert_eq!(e.ec(), ExceptionClass::Cp14Rt);
        assert_eq!(e.instruction_len(), 2);
        let c = e.cp_rt();
        assert!(!c.cond_valid());
        assert_eq!(
            (c.opc1(), c.crn(), c.crm(), c.opc2(), c.rt()),
            (0, 0, 5, 4, 7)
        );
        assert!(c.is_read());

        // MCRR p14, 0, r0, r1, c1 (DBGDRAR 64-bit), condition NE valid.
        let iss = (1 << 24) | (0x1 << 20) | (0 << 16) | (1 << 10) | (0 << 5) | (1 << 1);
        let e = Esr(0x0c << 26 | Esr::IL | iss);
        assert_eq!(e.ec(), ExceptionClass::Cp14RRt);
        let c = e.cp_rrt();
        assert!(c.cond_valid());
        assert_eq!(c.cond(), 1);
        assert_eq!((c.opc1(), c.crm(), c.rt(), c.rt2()), (0, 1, 0, 1));
        assert!(!c.is_read());
    }

    #[test]
    fn builds_an_undef_syndrome() {
        let e = Esr::new(ExceptionClass::Unknown, true, 0);
        assert_eq!(e.0, Esr::IL);
        assert_eq!(e.ec(), ExceptionClass::Unknown);
        let e = Esr::new(ExceptionClass::DataAbortSame, false, 0x10);
        assert_eq!(e.0, 0x25 << 26 | 0x10);
    }

    #[test]
    fn wfe_and_imm16() {
        assert!(Esr(0x01 << 26 | Esr::IL | 1).is_wfe());
        assert!(!Esr(0x01 << 26 | Esr::IL).is_wfe());
        assert_eq!(Esr(0x16 << 26 | Esr::IL | 0xbeef).imm16(), 0xbeef);
    }
}
