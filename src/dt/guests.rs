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
#![forbid(unsafe_code)]

use super::machine::{MachineInfo, Module, ModuleKind, MAX_MODULES};
use super::DtError;
use crate::addr::{PhysAddr, Range};

/// The most guests [`guests`] returns.
pub const MAX_GUESTS: usize = 8;

/// One VM to start, as the boot modules describe it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GuestSpec<'a> {
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
}

impl<'a> GuestSpec<'a> {
    fn new(kernel: &Module<'a>) -> Self {
        Self {
            kernel: kernel.range,
            ramdisk: None,
            dtb: None,
            bootargs: kernel.bootargs,
            vcpus: None,
            memory: None,
            name: None,
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
        out.push(g).map_err(too_many)?;
    }
    Ok(out)
}
