//! Grouping `/chosen` modules into guests (DESIGN.md section 4).
//!
//! QEMU's `guest-loader` adds one `module@ADDR` per `-device`, and lists them in
//! reverse order of the command line, so DT order means nothing: we sort by
//! load address. Walking upwards, each kernel module opens a VM, and a ramdisk
//! or device-tree module joins the nearest kernel below it (the command line
//! `kernel=A @0x50000000, initrd=B @0x58000000, kernel=C @0x60000000` gives two
//! VMs, the first with the initrd). A ramdisk with no kernel below it is an
//! error rather than a guess: it means the addresses are not what the user
//! meant.
//!
//! A Xen dom0less domain is explicit: its modules are its own, and its `cpus`
//! and `memory` size the VM. Guest-loader VMs come first (by address), then
//! domains in DT order.
//!
//! A guest bundle's VM (`crate::bundle`) becomes a [`GuestSpec`] too
//! ([`bundle_guest`]): its files are ranges of the boot loader's initrd, so
//! every VM, whatever its source, is started the same way. Each spec says
//! where it came from ([`Source`]) so that messages can name it before it has
//! a VM number.
#![forbid(unsafe_code)]

use super::machine::{MachineInfo, Module, ModuleKind, MAX_MODULES};
use super::DtError;
use crate::addr::{PhysAddr, Range};
use crate::bundle::BundleVm;
use core::fmt;

/// The most guests [`guests`] returns.
pub const MAX_GUESTS: usize = 8;

/// Where a VM's description came from, for messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source<'a> {
    /// A guest-loader (or Xen multiboot) kernel module in `/chosen`.
    Module {
        /// The kernel module's address.
        kernel: PhysAddr,
    },
    /// A Xen dom0less domain node.
    Domain {
        /// Its node name (`domU1`).
        name: &'a str,
    },
    /// A guest bundle's `vmN/` directory.
    Bundle {
        /// N.
        index: u32,
    },
}

impl fmt::Display for Source<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Module { kernel } => write!(f, "the kernel module at {kernel}"),
            Self::Domain { name } => write!(f, "dom0less domain {name}"),
            Self::Bundle { index } => write!(f, "bundle vm{index}/"),
        }
    }
}

/// One VM to start, as the boot modules describe it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GuestSpec<'a> {
    /// Where it came from.
    pub source: Source<'a>,
    /// The kernel image (an arm64 Image or a raw binary).
    pub kernel: Range<PhysAddr>,
    /// Its initrd.
    pub ramdisk: Option<Range<PhysAddr>>,
    /// A device tree module given with it.
    pub dtb: Option<Range<PhysAddr>>,
    /// Its command line (the kernel module's `bootargs`).
    pub bootargs: Option<&'a str>,
    /// vCPUs (dom0less `cpus`); `None`: as many as the machine has CPUs.
    pub vcpus: Option<usize>,
    /// RAM in bytes (dom0less `memory`); `None`: an equal share of the free RAM.
    pub memory: Option<u64>,
    /// The dom0less domain's node name, if it came from one.
    pub name: Option<&'a str>,
    /// Devices to pass through, as the bundle's `passthrough=` says (raw, for
    /// device assignment to interpret).
    pub passthrough: Option<&'a str>,
}

impl<'a> GuestSpec<'a> {
    fn new(kernel: &Module<'a>) -> Self {
        Self {
            source: Source::Module {
                kernel: kernel.range.start,
            },
            kernel: kernel.range,
            ramdisk: None,
            dtb: None,
            bootargs: kernel.bootargs,
            vcpus: None,
            memory: None,
            name: None,
            passthrough: None,
        }
    }

    /// Attaches a ramdisk or device-tree module.
    fn attach(&mut self, m: &Module<'a>) -> Result<(), DtError> {
        let slot = match m.kind {
            ModuleKind::Ramdisk => &mut self.ramdisk,
            ModuleKind::DeviceTree => &mut self.dtb,
            ModuleKind::Kernel => return Err(DtError::DuplicateModule(m.range.start)),
            ModuleKind::Unknown => return Err(DtError::UnknownModule(m.range.start)),
        };
        if slot.is_some() {
            return Err(DtError::DuplicateModule(m.range.start));
        }
        *slot = Some(m.range);
        Ok(())
    }
}

/// Groups the machine's boot modules into VMs; see the module docs.
pub fn guests<'a>(
    info: &MachineInfo<'a>,
) -> Result<heapless::Vec<GuestSpec<'a>, MAX_GUESTS>, DtError> {
    let mut out: heapless::Vec<GuestSpec<'a>, MAX_GUESTS> = heapless::Vec::new();
    let too_many = |_| DtError::TooMany("guests");

    let mut sorted: heapless::Vec<Module<'a>, MAX_MODULES> = info.modules.clone();
    sorted.sort_unstable_by_key(|m| m.range.start);
    let mut current: Option<GuestSpec<'a>> = None;
    for m in &sorted {
        match m.kind {
            ModuleKind::Kernel => {
                if let Some(done) = current.replace(GuestSpec::new(m)) {
                    out.push(done).map_err(too_many)?;
                }
            }
            ModuleKind::Unknown => return Err(DtError::UnknownModule(m.range.start)),
            _ => current
                .as_mut()
                .ok_or(DtError::OrphanModule(m.range.start))?
                .attach(m)?,
        }
    }
    if let Some(done) = current {
        out.push(done).map_err(too_many)?;
    }

    for d in &info.domains {
        let mut kernels = d.modules.iter().filter(|m| m.kind == ModuleKind::Kernel);
        let kernel = kernels
            .next()
            .ok_or(DtError::Missing("dom0less kernel module"))?;
        if let Some(extra) = kernels.next() {
            return Err(DtError::DuplicateModule(extra.range.start));
        }
        let mut g = GuestSpec::new(kernel);
        for m in d.modules.iter().filter(|m| m.kind != ModuleKind::Kernel) {
            g.attach(m)?;
        }
        g.bootargs = kernel.bootargs.or(d.bootargs);
        g.vcpus = d.vcpus.map(|n| n as usize);
        g.memory = d.memory;
        g.name = Some(d.name);
        g.source = Source::Domain { name: d.name };
        out.push(g).map_err(too_many)?;
    }
    Ok(out)
}

/// The spec of a bundle's VM whose archive the boot loader put at `archive`.
/// `None` if a file's address would not fit 64 bits (the archive's own range
/// was checked first, so this only guards the arithmetic).
pub fn bundle_guest<'a>(vm: &BundleVm<'a>, archive: PhysAddr) -> Option<GuestSpec<'a>> {
    let range = |m: crate::bundle::Member<'_>| {
        let start = archive.checked_add(m.offset as u64)?;
        start.checked_add(m.data.len() as u64)?;
        Some(Range::new(start, m.data.len() as u64))
    };
    Some(GuestSpec {
        source: Source::Bundle { index: vm.index },
        kernel: range(vm.kernel)?,
        ramdisk: match vm.initrd {
            Some(i) => Some(range(i)?),
            None => None,
        },
        dtb: None,
        bootargs: vm.cmdline,
        vcpus: vm.config.cpus.map(|n| n as usize),
        memory: vm.config.mem,
        name: None,
        passthrough: vm.config.passthrough,
    })
}

#[cfg(test)]
mod bundle_tests {
    use super::*;
    use crate::bundle::{self, cpio::Writer};

    #[test]
    fn a_bundle_vm_becomes_a_spec_whose_files_are_ranges_of_the_initrd() {
        let mut w = Writer::new();
        w.file("vm0/kernel", b"KERNEL")
            .file("vm0/initrd", b"INITRD!")
            .file("vm0/cmdline", b"console=ttyAMA0 x=1\n")
            .file("vm0/config", b"cpus=3\nmem=128M\npassthrough=all\n");
        let a = w.finish();
        let b = bundle::parse(&a).unwrap();
        let vm = b.vms[0].as_ref().unwrap();
        let base = PhysAddr(0x4800_0000);
        let g = bundle_guest(vm, base).unwrap();
        assert_eq!(g.source, Source::Bundle { index: 0 });
        assert_eq!(g.source.to_string(), "bundle vm0/");
        assert_eq!(g.kernel, Range::new(base.add(vm.kernel.offset as u64), 6));
        let r = g.ramdisk.unwrap();
        assert_eq!(r.size, 7);
        let off = (r.start.0 - base.0) as usize;
        assert_eq!(&a[off..off + 7], b"INITRD!");
        assert_eq!(g.bootargs, Some("console=ttyAMA0 x=1"));
        assert_eq!((g.vcpus, g.memory), (Some(3), Some(128 << 20)));
        assert_eq!(g.passthrough, Some("all"));
        // An archive at the top of the address space: refused, not wrapped.
        assert_eq!(bundle_guest(vm, PhysAddr(u64::MAX - 8)), None);
    }

    #[test]
    fn sources_name_themselves() {
        assert_eq!(
            Source::Module {
                kernel: PhysAddr(0x5000_0000)
            }
            .to_string(),
            "the kernel module at 0x50000000"
        );
        assert_eq!(
            Source::Domain { name: "domU1" }.to_string(),
            "dom0less domain domU1"
        );
    }
}
