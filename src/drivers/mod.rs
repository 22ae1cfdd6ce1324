//! Device drivers the hypervisor itself uses, chosen by the device tree's
//! `compatible` strings (STYLE.md item 15), never by board.
//!
//! Drivers here are portable: they reach their registers through a small
//! [`uart::Mmio`] trait, which the arch layer implements with volatile accesses
//! and the host tests implement with fakes that model each device. So every
//! register sequence is tested on the host, and the bare-metal build adds only
//! the volatile load and store.
#![forbid(unsafe_code)]

pub mod uart;
