//! The runtime: what runs at EL2 once the arch layer has booted. Wiring only.

pub mod boot;
pub mod console;
pub mod control;
pub mod debug;
pub mod gdb;
pub mod gic;
pub mod guest_mem;
pub mod heap;
pub mod inject;
pub mod monitor;
pub mod panic;
pub mod passthrough;
pub mod reset;
pub mod sched;
pub mod snapshot;
pub mod sysreg;
pub mod trap;
pub mod vcpu;
pub mod vgic;
pub mod vm;
pub mod vmbuild;
pub mod vpsci;
