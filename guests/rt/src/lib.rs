//! Runtime for the bare-metal EL1 guests the hypervisor runs in its demo and tests.
//!
//! A guest is an arm64 Linux-style Image entered per the arm64 boot protocol: EL1h,
//! MMU and caches off, `x0` = the IPA of its device tree. Everything it knows about
//! the machine (console UART, PSCI conduit, memory, CPUs, bootargs, initrd) comes
//! from that DTB, so the same Image boots bare under QEMU `-kernel` and as a guest
//! of the hypervisor. A guest binary names itself and its `main` with [`guest!`];
//! the runtime prints `<name>: PASS` or `<name>: FAIL <reason>` when `main`
//! returns and powers the machine off through PSCI `SYSTEM_OFF`.
//!
//! The MMU stays off, so every data access is Device-nGnRnE: no unaligned accesses
//! (the target has `+strict-align`) and no exclusives (no compare-and-swap: only
//! atomic loads and stores are used for state shared between CPUs).

#![no_std]
#![deny(unsafe_op_in_unsafe_fn)]
#![deny(clippy::undocumented_unsafe_blocks)]

pub mod boot;
pub mod console;
pub mod dt;
pub mod exception;
pub mod fail;
pub mod gic;
mod macros;
mod panic;
pub mod probe;
pub mod psci;
pub mod smp;
mod start;
pub mod sysreg;

pub use boot::Boot;
pub use fail::Fail;
