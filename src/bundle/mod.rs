//! Guest bundles (DESIGN.md section 4): several guests in the one initrd a
//! board's firmware can load.
//!
//! A bundle is an uncompressed newc cpio archive (`cpio -H newc`, the format of
//! Linux initramfs) holding one directory per VM:
//!
//! ```text
//! vm0/kernel     required: an arm64 Image (or a raw binary, or a 32-bit zImage)
//! vm0/initrd     optional: the guest's initrd
//! vm0/cmdline    optional: one line, the guest's bootargs
//! vm0/config     optional: key=value lines: cpus, mem, passthrough (see `config`)
//! vm1/...
//! ```
//!
//! Names may start with `./` (what `find . | cpio -o -H newc` writes).
//! Directories are numbered from `vm0` without gaps, at most [`MAX_VMS`] of
//! them. Everything is zero-copy: the parsed bundle points into the archive,
//! which stays where the boot loader put it.
//!
//! **What is not a bundle.** An initrd that is not a newc cpio archive, or is
//! one without any `vmN/` entry, is [`BundleError::is_not_a_bundle`]: an
//! ordinary initramfs. The hypervisor says so and ignores it rather than
//! guessing which guest it was meant for (it has no kernel to go with it; a
//! guest's initrd is given with the guest, as a module or as `vmN/initrd`).
//! A damaged archive is refused as a whole; a wrong VM directory is refused by
//! its name while the others start (see [`Bundle::vms`]).
//!
//! * [`cpio`]: the archive format, reader and writer.
//! * [`config`]: a VM's `config` file.
//! * `parse`: directories to VMs.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod config;
pub mod cpio;
mod parse;
#[cfg(test)]
mod tests;

pub use config::{Config, ConfigError, ConfigErrorKind};
pub use parse::{
    parse, Bundle, BundleError, BundleVm, Member, Name, VmEntry, VmError, VmErrorKind, FILES,
    MAX_IGNORED, MAX_VMS,
};
