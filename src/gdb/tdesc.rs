//! The target description (`target.xml`) GDB reads with `qXfer:features:read`:
//! the AArch64 core and FP/SIMD features under the names and register names GDB's
//! AArch64 support requires, and one feature with the system registers of the cpreg
//! table, named as in the Arm ARM, numbered from [`FIRST_SYSREG`] in the order the
//! caller gives them (the table's debugger view).
#![forbid(unsafe_code)]

use super::regs::{CPSR, FIRST_SYSREG, FPCR, FPSR, PC, SP, V0};
use alloc::string::String;
use core::fmt::Write;

/// The name of the system-register feature.
pub const SYSREG_FEATURE: &str = "org.hv.aarch64.sysregs";

const VECTOR_TYPES: &str = r#"    <vector id="v2d" type="ieee_double" count="2"/>
    <vector id="v2u" type="uint64" count="2"/>
    <vector id="v2i" type="int64" count="2"/>
    <vector id="v4f" type="ieee_single" count="4"/>
    <vector id="v4u" type="uint32" count="4"/>
    <vector id="v4i" type="int32" count="4"/>
    <vector id="v8f" type="ieee_half" count="8"/>
    <vector id="v8u" type="uint16" count="8"/>
    <vector id="v8i" type="int16" count="8"/>
    <vector id="v16u" type="uint8" count="16"/>
    <vector id="v16i" type="int8" count="16"/>
    <vector id="v1u" type="uint128" count="1"/>
    <vector id="v1i" type="int128" count="1"/>
    <union id="vnd"><field name="f" type="v2d"/><field name="u" type="v2u"/><field name="s" type="v2i"/></union>
    <union id="vns"><field name="f" type="v4f"/><field name="u" type="v4u"/><field name="s" type="v4i"/></union>
    <union id="vnh"><field name="f" type="v8f"/><field name="u" type="v8u"/><field name="s" type="v8i"/></union>
    <union id="vnb"><field name="u" type="v16u"/><field name="s" type="v16i"/></union>
    <union id="vnq"><field name="u" type="v1u"/><field name="s" type="v1i"/></union>
    <union id="aarch64v"><field name="d" type="vnd"/><field name="s" type="vns"/><field name="h" type="vnh"/><field name="b" type="vnb"/><field name="q" type="vnq"/></union>
"#;

/// The width GDB is told for a register `width` bits wide: 32 or 64 (a register's
/// value travels in whole bytes, zero-extended).
pub const fn register_bits(width: u8) -> u8 {
    if width <= 32 {
        32
    } else {
        64
    }
}

/// Generates the description; `sysregs` yields each system register's name and
/// width in bits. Names must be XML name characters (the table's are
/// `[A-Za-z0-9_]`); anything else is replaced by `_` so the XML stays valid.
pub fn generate<'a>(sysregs: impl Iterator<Item = (&'a str, u8)>) -> String {
    let mut x = String::with_capacity(48 * 1024);
    let _ = write!(
        x,
        "<?xml version=\"1.0\"?>\n<!DOCTYPE target SYSTEM \"gdb-target.dtd\">\n<target version=\"1.0\">\n  <architecture>aarch64</architecture>\n  <feature name=\"org.gnu.gdb.aarch64.core\">\n"
    );
    for i in 0..31 {
        let _ = writeln!(
            x,
            "    <reg name=\"x{i}\" bitsize=\"64\" type=\"uint64\" regnum=\"{i}\"/>"
        );
    }
    let _ = writeln!(
        x,
        "    <reg name=\"sp\" bitsize=\"64\" type=\"data_ptr\" regnum=\"{SP}\"/>\n    <reg name=\"pc\" bitsize=\"64\" type=\"code_ptr\" regnum=\"{PC}\"/>\n    <reg name=\"cpsr\" bitsize=\"32\" type=\"uint32\" regnum=\"{CPSR}\"/>\n  </feature>\n  <feature name=\"org.gnu.gdb.aarch64.fpu\">"
    );
    x.push_str(VECTOR_TYPES);
    for i in 0..32 {
        let _ = writeln!(
            x,
            "    <reg name=\"v{i}\" bitsize=\"128\" type=\"aarch64v\" regnum=\"{}\"/>",
            V0 + i
        );
    }
    let _ = writeln!(
        x,
        "    <reg name=\"fpsr\" bitsize=\"32\" type=\"uint32\" regnum=\"{FPSR}\"/>\n    <reg name=\"fpcr\" bitsize=\"32\" type=\"uint32\" regnum=\"{FPCR}\"/>\n  </feature>\n  <feature name=\"{SYSREG_FEATURE}\">"
    );
    for (i, (name, bits)) in sysregs.enumerate() {
        let bits = register_bits(bits);
        x.push_str("    <reg name=\"");
        x.extend(name.chars().map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        }));
        let _ = writeln!(
            x,
            "\" bitsize=\"{bits}\" type=\"uint{bits}\" regnum=\"{}\" group=\"system\"/>",
            FIRST_SYSREG + i
        );
    }
    x.push_str("  </feature>\n</target>\n");
    x
}
