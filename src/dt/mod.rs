//! The device-tree layer: what the hypervisor learns from the host DTB, how boot
//! modules become guests, and each guest's DTB.
//!
//! * [`parse`] reads the host DTB into a [`MachineInfo`] without allocating
//!   (it runs before anything else is set up, and its result must not depend on
//!   a heap).
//! * [`guests`] groups `/chosen` modules into [`GuestSpec`]s (DESIGN.md section 4).
//! * [`boot_initrd`] finds the initrd the boot loader passed (maybe a guest
//!   bundle).
//! * [`guest_dtb`] derives a guest's DTB from the host's with `vm-fdt`
//!   (allocates: runs after the hypervisor's heap is up).
//!
//! Reading is done with `fdt` 0.1.5, behind two guards explained in the
//! submodules: [`blob`] validates the structure first, because `fdt` panics
//! on malformed input, and [`props`] decodes property values itself, because
//! `fdt`'s `reg` helpers get `#address-cells` inheritance wrong for
//! `/chosen/module@*` and do not translate `ranges`.
//!
//! Everything here is portable and tested on the host against QEMU's real DTBs
//! in `tests/fixtures/`.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod blob;
#[cfg(test)]
mod board_tests;
mod guest_dtb;
mod guests;
mod initrd;
mod machine;
pub mod props;
#[cfg(test)]
mod tests;

pub use guest_dtb::{
    emulated_uart_path, guest_dtb, EmulatedUart, GuestDtbParams, Keep, KeepRule, Match, PropMatch,
    PropRule, DROPPED_PROPS, EMULATED_UART_CLOCK, KEEP_RULES, MAX_VCPUS,
};
pub use guests::{bundle_guest, guests, GuestSpec, Source, MAX_GUESTS};
pub use initrd::boot_initrd;
pub use machine::*;
pub use props::{NodePath, StringList, MAX_PATH};

use crate::addr::PhysAddr;

/// Why a DTB could not be read, grouped or written. Each variant says what to
/// look at; none carries borrowed data, so errors outlive the blob.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DtError {
    /// Shorter than its header or than the header's `totalsize`.
    Truncated,
    /// Not a DTB (`0xd00dfeed` missing).
    BadMagic,
    /// Older than version 17.
    BadVersion(u32),
    /// A header offset or size points outside the blob.
    BadHeader,
    /// The structure block is malformed at this byte offset of the blob.
    BadStructure {
        /// Offset from the start of the blob.
        offset: usize,
    },
    /// An `FDT_NOP` token (see [`blob`]).
    UnsupportedNop {
        /// Offset from the start of the blob.
        offset: usize,
    },
    /// Nodes nested deeper than [`blob::MAX_DEPTH`].
    TooDeep,
    /// A node path longer than [`MAX_PATH`].
    PathTooLong,
    /// A property we need has a value we cannot use (names the property).
    BadProperty(&'static str),
    /// More of something than its fixed capacity (names the list).
    TooMany(&'static str),
    /// Something required is missing (names it).
    Missing(&'static str),
    /// A ramdisk or device-tree module with no kernel module below it.
    OrphanModule(PhysAddr),
    /// A second ramdisk/device tree for the same kernel, or a second kernel in a domain.
    DuplicateModule(PhysAddr),
    /// A module that says only `multiboot,module`.
    UnknownModule(PhysAddr),
    /// The parameters for a guest DTB are unusable (says which).
    InvalidParams(&'static str),
    /// `vm-fdt` refused to write (its error, as text).
    Write(&'static str),
}

impl core::fmt::Display for DtError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Truncated => write!(f, "device tree truncated"),
            Self::BadMagic => write!(f, "not a device tree (bad magic)"),
            Self::BadVersion(v) => write!(f, "device tree version {v} (need 17)"),
            Self::BadHeader => write!(f, "device tree header points outside the blob"),
            Self::BadStructure { offset } => {
                write!(f, "malformed device tree structure at byte {offset:#x}")
            }
            Self::UnsupportedNop { offset } => {
                write!(f, "FDT_NOP at byte {offset:#x} is not supported")
            }
            Self::TooDeep => write!(f, "device tree nested too deep"),
            Self::PathTooLong => write!(f, "device tree node path too long"),
            Self::BadProperty(p) => write!(f, "bad device tree property `{p}`"),
            Self::TooMany(what) => write!(f, "too many {what} in the device tree"),
            Self::Missing(what) => write!(f, "device tree lacks {what}"),
            Self::OrphanModule(a) => write!(f, "module at {a} has no kernel module below it"),
            Self::DuplicateModule(a) => {
                write!(f, "module at {a} duplicates one its guest already has")
            }
            Self::UnknownModule(a) => write!(f, "module at {a} does not say what it is"),
            Self::InvalidParams(why) => write!(f, "guest device tree: {why}"),
            Self::Write(why) => write!(f, "writing the guest device tree: {why}"),
        }
    }
}
