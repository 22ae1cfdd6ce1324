//! An AArch64 EL2 hypervisor whose heart is one static table of system registers.
//!
//! This file only wires modules together. The split that matters:
//!
//! * **Portable logic** builds and is unit-tested on the host with `cargo test`:
//!   ESR decoding, the device tree, the cpreg table, guest image placement, stage-2
//!   layout, the emulated UART.
//! * **The arch layer** (`arch`) and the **runtime** (`hv`) touch hardware and only
//!   build for the bare-metal target (`target_os = "none"`).
#![cfg_attr(target_os = "none", no_std)]
#![deny(unsafe_op_in_unsafe_fn)]
#![deny(clippy::undocumented_unsafe_blocks)]

extern crate alloc;

pub mod addr;
pub mod board;
pub mod bootcheck;
pub mod bringup;
pub mod bundle;
pub mod cpreg;
pub mod crc32;
pub mod drivers;
pub mod dt;
pub mod el2map;
pub mod esr;
pub mod gdb;
pub mod guest_image;
pub mod memplan;
pub mod passthrough;
pub mod psci;
pub mod reboot;
pub mod serial_mux;
pub mod shell;
pub mod snapshot;
pub mod sort;
pub mod stage1;
pub mod stage2;
pub mod vcounter;
pub mod vgic;
pub mod vuart;

#[cfg(target_os = "none")]
pub mod arch;
#[cfg(target_os = "none")]
pub mod hv;
