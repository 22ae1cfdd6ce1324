//! From a cpio archive to the VMs of a bundle: one per `vmN/` directory.
//!
//! Entries may come in any order (`find` does not sort), so the walk files each
//! entry into its VM's slot, and the VMs are checked once the archive has been
//! read to its trailer. The result keeps a VM that is wrong apart from the
//! others: [`Bundle::vms`] holds, for each directory in numeric order, either the
//! VM or the reason it cannot start ([`VmError`], which names the directory), so
//! the hypervisor refuses one VM by name and starts the rest. Only a damaged
//! archive (truncated, bad header) fails as a whole: what belongs to which VM is
//! then unknowable.
#![forbid(unsafe_code)]

use super::config::{self, Config, ConfigError};
use super::cpio::{self, CpioError, Entry, S_IFDIR, S_IFLNK, S_IFREG};
use core::fmt;

/// The most VMs a bundle may hold (`vm0/` to `vm7/`), as many as the
/// hypervisor starts from any source.
pub const MAX_VMS: usize = crate::dt::MAX_GUESTS;
/// How many names of ignored entries [`Bundle::ignored`] keeps for messages.
pub const MAX_IGNORED: usize = 4;

/// A name from the archive, printed with anything unprintable escaped (names
/// are bytes, not necessarily text).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Name<'a>(pub &'a [u8]);

impl fmt::Display for Name<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const MAX: usize = 64;
        for &b in self.0.iter().take(MAX) {
            if b.is_ascii_graphic() || b == b' ' {
                write!(f, "{}", b as char)?;
            } else {
                write!(f, "\\x{b:02x}")?;
            }
        }
        if self.0.len() > MAX {
            write!(f, "...")?;
        }
        Ok(())
    }
}

/// A file of the bundle: its bytes, and where they lie in the archive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Member<'a> {
    /// Offset of the first byte from the start of the archive.
    pub offset: usize,
    /// The bytes.
    pub data: &'a [u8],
}

/// One VM of a bundle, as its `vmN/` directory describes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BundleVm<'a> {
    /// N of `vmN/`.
    pub index: u32,
    /// `vmN/kernel`: an arm64 Image (or a raw binary, or a 32-bit zImage).
    pub kernel: Member<'a>,
    /// `vmN/initrd`.
    pub initrd: Option<Member<'a>>,
    /// `vmN/cmdline`, its line end removed (`None` if absent or empty).
    pub cmdline: Option<&'a str>,
    /// `vmN/config`.
    pub config: Config<'a>,
}

/// The files a VM directory may hold.
pub const FILES: [&str; 4] = ["kernel", "initrd", "cmdline", "config"];

/// Why one VM directory cannot start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VmError<'a> {
    /// N of `vmN/`.
    pub index: u32,
    /// What is wrong.
    pub kind: VmErrorKind<'a>,
}

/// What is wrong with a VM directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VmErrorKind<'a> {
    /// No `vmN/kernel`.
    NoKernel,
    /// A file that is empty (kernel or initrd).
    Empty(&'static str),
    /// A name in the directory that is not one of [`FILES`] (the whole entry name).
    UnknownFile(Name<'a>),
    /// A file given twice.
    Duplicate(&'static str),
    /// One of [`FILES`] that is not a regular file (a directory, a link...).
    NotAFile(&'static str, u32),
    /// `vmN` itself is not a directory.
    NotADirectory,
    /// The `070702` checksum of a file does not match its data.
    BadChecksum(&'static str),
    /// `cmdline` is not one line of text.
    BadCmdline(&'static str),
    /// `config` has a mistake.
    Config(ConfigError<'a>),
    /// A lower-numbered directory is missing: VMs are numbered without gaps.
    Gap {
        /// The first missing number.
        missing: u32,
    },
    /// Beyond [`MAX_VMS`].
    TooMany,
}

impl fmt::Display for VmError<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.index;
        write!(f, "vm{n}/: ")?;
        match self.kind {
            VmErrorKind::NoKernel => write!(
                f,
                "no kernel (a VM directory needs its kernel image as vm{n}/kernel)"
            ),
            VmErrorKind::Empty(file) => write!(f, "vm{n}/{file} is empty"),
            VmErrorKind::UnknownFile(name) => write!(
                f,
                "unknown file '{name}' (a VM directory holds only kernel, initrd, cmdline and config)"
            ),
            VmErrorKind::Duplicate(file) => {
                write!(f, "vm{n}/{file} appears twice in the archive")
            }
            VmErrorKind::NotAFile(file, mode) => {
                let kind = match mode & cpio::S_IFMT {
                    S_IFDIR => "a directory",
                    S_IFLNK => "a symbolic link (archive the file itself: find -L ... | cpio)",
                    _ => "not a regular file",
                };
                write!(f, "vm{n}/{file} is {kind}")
            }
            VmErrorKind::NotADirectory => {
                write!(f, "vm{n} is a file: it must be a directory holding kernel, ...")
            }
            VmErrorKind::BadChecksum(file) => write!(
                f,
                "vm{n}/{file} does not match the checksum in its header (070702): the archive is damaged"
            ),
            VmErrorKind::BadCmdline(why) => write!(f, "vm{n}/cmdline {why}"),
            VmErrorKind::Config(e) => write!(f, "vm{n}/config {e}"),
            VmErrorKind::Gap { missing } => write!(
                f,
                "there is no vm{missing}/ before it (number the directories vm0/, vm1/, ... without gaps)"
            ),
            VmErrorKind::TooMany => write!(
                f,
                "a bundle holds at most {MAX_VMS} VMs (vm0/ to vm{}/)",
                MAX_VMS - 1
            ),
        }
    }
}

/// Why an archive is not a bundle that can be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BundleError<'a> {
    /// Not a newc cpio archive (what it looks like instead, when known).
    NotCpio(Option<&'static str>),
    /// A cpio archive, readable, without any `vmN/` entry (the first name in
    /// it, if any): an ordinary initramfs, not a bundle.
    NoVms(Option<Name<'a>>),
    /// A cpio archive that cannot be read to its end.
    Damaged(CpioError),
}

impl BundleError<'_> {
    /// Whether the archive is simply something else than a bundle (rather than a
    /// bundle that is broken).
    pub fn is_not_a_bundle(&self) -> bool {
        matches!(self, Self::NotCpio(_) | Self::NoVms(_))
    }
}

impl fmt::Display for BundleError<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotCpio(Some(what)) => write!(
                f,
                "not a guest bundle: it is {what}, and a bundle is an uncompressed newc cpio archive (cpio -H newc)"
            ),
            Self::NotCpio(None) => write!(
                f,
                "not a guest bundle: not a newc cpio archive (magic 070701)"
            ),
            Self::NoVms(Some(first)) => write!(
                f,
                "not a guest bundle: a cpio archive without vm0/ (its first entry is '{first}')"
            ),
            Self::NoVms(None) => write!(f, "not a guest bundle: an empty cpio archive"),
            Self::Damaged(e) => write!(f, "the guest bundle is damaged: {e}"),
        }
    }
}

/// Each VM directory in numeric order: the VM, or why it cannot start.
pub type VmEntry<'a> = Result<BundleVm<'a>, VmError<'a>>;

/// A parsed bundle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bundle<'a> {
    /// `vm0/` to the highest directory, in order (at most [`MAX_VMS`]).
    pub vms: heapless::Vec<VmEntry<'a>, MAX_VMS>,
    /// Directories numbered [`MAX_VMS`] or above: the lowest such number, and
    /// how many entries name one. They are refused ([`VmErrorKind::TooMany`]).
    pub beyond: Option<(u32, usize)>,
    /// The first few names outside any `vmN/` directory (ignored).
    pub ignored: heapless::Vec<Name<'a>, MAX_IGNORED>,
    /// How many entries were ignored in all.
    pub ignored_count: usize,
}

impl<'a> Bundle<'a> {
    /// The VMs that can start.
    pub fn ok_vms(&self) -> impl Iterator<Item = &BundleVm<'a>> {
        self.vms.iter().filter_map(|v| v.as_ref().ok())
    }

    /// The refusal of the directories beyond [`MAX_VMS`], if any.
    pub fn beyond_error(&self) -> Option<VmError<'a>> {
        self.beyond.map(|(index, _)| VmError {
            index,
            kind: VmErrorKind::TooMany,
        })
    }
}

/// What the walk gathers for one directory.
#[derive(Default, Clone, Copy)]
struct Slot<'a> {
    seen: bool,
    files: [Option<Member<'a>>; 4],
    error: Option<VmErrorKind<'a>>,
}

/// `vmN` (canonical decimal: `vm0`, `vm12`, not `vm01`) to N.
fn vm_number(dir: &[u8]) -> Option<u32> {
    let digits = dir.strip_prefix(b"vm")?;
    if digits.is_empty() || (digits.len() > 1 && digits[0] == b'0') || digits.len() > 9 {
        return None;
    }
    digits.iter().try_fold(0u32, |n, &d| {
        d.is_ascii_digit().then(|| n * 10 + (d - b'0') as u32)
    })
}

/// The name without `./` or `/` in front and `/` at the end.
fn clean(mut name: &[u8]) -> &[u8] {
    loop {
        if let Some(rest) = name.strip_prefix(b"./") {
            name = rest;
        } else if let Some(rest) = name.strip_prefix(b"/") {
            name = rest;
        } else {
            break;
        }
    }
    while let Some(rest) = name.strip_suffix(b"/") {
        name = rest;
    }
    name
}

fn file_entry<'a>(slot: &mut Slot<'a>, e: &Entry<'a>, file: &[u8]) {
    let Some(i) = FILES.iter().position(|f| f.as_bytes() == file) else {
        slot.error
            .get_or_insert(VmErrorKind::UnknownFile(Name(e.name)));
        return;
    };
    let name = FILES[i];
    if e.file_type() != S_IFREG {
        slot.error
            .get_or_insert(VmErrorKind::NotAFile(name, e.mode));
    } else if slot.files[i].is_some() {
        slot.error.get_or_insert(VmErrorKind::Duplicate(name));
    } else if !e.checksum_ok() {
        slot.error.get_or_insert(VmErrorKind::BadChecksum(name));
    } else {
        slot.files[i] = Some(Member {
            offset: e.data_offset,
            data: e.data,
        });
    }
}

fn cmdline(data: &[u8]) -> Result<Option<&str>, &'static str> {
    let text = core::str::from_utf8(data).map_err(|_| "is not UTF-8 text")?;
    let text = text.strip_suffix('\n').unwrap_or(text);
    let text = text.strip_suffix('\r').unwrap_or(text);
    if text.contains('\n') {
        return Err("has more than one line (the kernel command line is one line)");
    }
    if text.contains('\0') {
        return Err("contains a NUL byte");
    }
    let text = text.trim();
    Ok((!text.is_empty()).then_some(text))
}

fn finish<'a>(index: u32, slot: &Slot<'a>) -> VmEntry<'a> {
    let err = |kind| VmError { index, kind };
    if let Some(kind) = slot.error {
        return Err(err(kind));
    }
    let [kernel, initrd, cmd, cfg] = slot.files;
    let kernel = kernel.ok_or(err(VmErrorKind::NoKernel))?;
    if kernel.data.is_empty() {
        return Err(err(VmErrorKind::Empty("kernel")));
    }
    if initrd.is_some_and(|i| i.data.is_empty()) {
        return Err(err(VmErrorKind::Empty("initrd")));
    }
    let cmdline = match cmd {
        Some(c) => cmdline(c.data).map_err(|why| err(VmErrorKind::BadCmdline(why)))?,
        None => None,
    };
    let config = match cfg {
        Some(c) => config::parse(c.data).map_err(|e| err(VmErrorKind::Config(e)))?,
        None => Config::default(),
    };
    Ok(BundleVm {
        index,
        kernel,
        initrd,
        cmdline,
        config,
    })
}

/// Reads a bundle; see the module docs. Never panics, whatever `archive` holds.
pub fn parse(archive: &[u8]) -> Result<Bundle<'_>, BundleError<'_>> {
    if !cpio::is_newc(archive) {
        return Err(BundleError::NotCpio(cpio::what_else(archive)));
    }
    let mut slots = [Slot::default(); MAX_VMS];
    let mut bundle = Bundle {
        vms: heapless::Vec::new(),
        beyond: None,
        ignored: heapless::Vec::new(),
        ignored_count: 0,
    };
    let mut first: Option<Name<'_>> = None;
    for e in cpio::entries(archive) {
        let e = e.map_err(BundleError::Damaged)?;
        let name = clean(e.name);
        if name.is_empty() || name == b"." {
            continue; // The archive's root directory.
        }
        first.get_or_insert(Name(e.name));
        let (dir, file) = match name.iter().position(|&b| b == b'/') {
            Some(i) => (&name[..i], Some(&name[i + 1..])),
            None => (name, None),
        };
        let Some(n) = vm_number(dir) else {
            bundle.ignored_count += 1;
            let _ = bundle.ignored.push(Name(e.name));
            continue;
        };
        let Some(slot) = slots.get_mut(n as usize) else {
            let (lowest, count) = bundle.beyond.unwrap_or((n, 0));
            bundle.beyond = Some((lowest.min(n), count + 1));
            continue;
        };
        slot.seen = true;
        match file {
            None if e.file_type() != S_IFDIR => {
                slot.error.get_or_insert(VmErrorKind::NotADirectory);
            }
            None => {}
            Some(file) => file_entry(slot, &e, file),
        }
    }
    let Some(highest) = slots.iter().rposition(|s| s.seen) else {
        if bundle.beyond.is_some() {
            // Only directories beyond the limit: still a bundle, with no VM that
            // can start.
            return Ok(bundle);
        }
        return Err(BundleError::NoVms(first));
    };
    let mut missing = None;
    for (i, slot) in slots.iter().enumerate().take(highest + 1) {
        let index = i as u32;
        if !slot.seen {
            missing.get_or_insert(index);
            continue;
        }
        let entry = match missing {
            Some(missing) => Err(VmError {
                index,
                kind: VmErrorKind::Gap { missing },
            }),
            None => finish(index, slot),
        };
        // At most MAX_VMS slots: the push cannot fail.
        let _ = bundle.vms.push(entry);
    }
    Ok(bundle)
}
