//! The GDB remote serial protocol, as `gdb-multiarch` speaks it to the debug UART:
//! framing ([`packet`]), commands ([`command`]), the register numbering
//! ([`regs`]) and target description ([`tdesc`]), and the dispatcher over a
//! debugged machine ([`stub`]). Portable: host-tested and fuzzed; the hypervisor's
//! side (vCPUs as threads, guest memory through the live MMU, breakpoints) is
//! `hv::gdb`.
//!
//! Written here rather than on the `gdbstub` crate: gdbstub 0.7 ends the session on
//! a bad checksum, a NAK, an oversized packet or a malformed command (each is a
//! fatal `GdbStubError`), while a serial line shared with people and line noise needs
//! a NAK or an `E` reply and a session that goes on; and the register file here is
//! the cpreg table's, generated at run time, not a fixed architecture's.

pub mod command;
pub mod packet;
pub mod regs;
pub mod stub;
pub mod tdesc;

#[cfg(test)]
mod tests;
