//! Device assignment (passthrough): which of the host's devices each VM gets,
//! and everything about them that can be decided without touching hardware.
//!
//! The flow, each step its own module:
//!
//! 1. [`request`]: the user's words: `hv.passthrough=vmN:PATH|all` on the
//!    hypervisor's command line, a bundle's `passthrough=PATH,PATH|all`.
//! 2. [`dom0less`]: Xen dom0less partial device trees (`/passthrough` with
//!    `xen,reg` and `xen,path`).
//! 3. [`tree`]: the host tree, every node with its translated MMIO, GIC
//!    interrupts and phandle references.
//! 4. [`resolve`]: the rules (what the hypervisor keeps, one device one VM,
//!    `all`, whole pages, SPIs) turn requests into each VM's devices, its
//!    stage-2 mappings and its SPIs, or refusals that name the node.
//! 5. [`guest_dt`]: the guest's device tree gets the assigned nodes and what
//!    they reference by phandle, and its memory node the VM's RAM ranges.
//!
//! The runtime (`hv::passthrough`) maps the pages (IPA = PA, so the guest's
//! own drivers run unmodified), plans 1:1 RAM for VMs whose devices may DMA
//! ([`crate::memplan::plan_direct`]), and forwards the SPIs as
//! hardware-linked virtual interrupts ([`crate::vgic`]).
//!
//! Portable and host-tested against QEMU `virt`'s device trees.
#![forbid(unsafe_code)]

pub mod dom0less;
pub mod guest_dt;
pub mod phandles;
pub mod request;
pub mod resolve;
pub mod tree;

#[cfg(test)]
mod tests;

pub use dom0less::{devices as partial_devices, PartialDevice, PartialError};
pub use guest_dt::{add_devices, Additions};
pub use request::{dma_option, parse_cmdline, parse_config, Request, SyntaxError, Target};
pub use resolve::{
    ipa_clash, kept, resolve, Device, Keep, Limits, Machine, Mapping, Message, Mmio, Plan, Spi,
    VmDevices, PAGE,
};
pub use tree::HostTree;
