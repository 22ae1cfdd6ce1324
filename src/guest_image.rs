//! Guest kernel placement per the arm64 Linux boot protocol (DESIGN.md section 4).
//!
//! A kernel module with the arm64 Image header is placed at a 2 MiB-aligned base plus
//! its `text_offset`, and needs `image_size` bytes there (its .bss included). A
//! 32-bit Linux zImage (magic 0x016F2818 at offset 0x24) is an AArch32 guest, placed
//! where QEMU puts one: RAM base + 0x10000. Anything else is a raw AArch64 binary,
//! placed where QEMU `-kernel` puts one: RAM base + 0x80000.
//! Everything else a loader must decide (where the DTB and the initrd go) is here too,
//! so it is tested on the host.
//!
//! The header is input: a kernel module can say anything. With the Image magic,
//! `text_offset` and `image_size` are believed only as far as they make sense:
//! a `text_offset + image_size` that overflows is refused as an absurd header,
//! and a kernel that claims more than the VM's RAM is refused as too large
//! (both in words, with the numbers). Without the magic the file is a raw
//! binary (DESIGN.md 4), whatever its bytes. All arithmetic is checked.
#![forbid(unsafe_code)]

use core::fmt;

/// The Image header magic, "ARM\x64", at offset 56.
pub const MAGIC: u32 = 0x644d_5241;
/// Where QEMU `-kernel` loads a raw (headerless) AArch64 binary.
pub const RAW_OFFSET: u64 = 0x8_0000;
/// The zImage magic at offset 0x24 (arch/arm/boot/compressed/head.S).
pub const ZIMAGE_MAGIC: u32 = 0x016f_2818;
/// Where QEMU loads a 32-bit ARM kernel.
pub const ZIMAGE_OFFSET: u64 = 0x1_0000;
/// The arm64 boot protocol's limit for the device tree.
pub const DTB_MAX: u64 = 2 << 20;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Kind {
    /// An arm64 Linux-style Image.
    Image,
    /// A 32-bit ARM zImage: the VM runs AArch32 at EL1.
    ZImage,
    /// A raw AArch64 binary.
    Raw,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Placement {
    pub kind: Kind,
    /// Offset from the (2 MiB-aligned) RAM base to the first byte of the image.
    pub offset: u64,
    /// Bytes of RAM the kernel claims from `offset` (at least its file size).
    pub footprint: u64,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum LayoutError {
    /// The kernel is empty.
    Empty,
    /// The Image header says it must be big-endian, which this hypervisor does not run.
    BigEndian,
    /// The Image header's `text_offset + image_size` does not fit 64 bits.
    AbsurdHeader { text_offset: u64, image_size: u64 },
    /// The kernel alone (from the RAM base to the end of what it claims) is larger
    /// than the VM's RAM.
    KernelTooLarge { kind: Kind, end: u64, ram: u64 },
    /// Kernel, initrd and device tree together do not fit into the VM's RAM.
    TooLarge {
        kernel_end: u64,
        initrd: u64,
        ram: u64,
    },
    /// The guest's device tree is larger than the boot protocol allows.
    DtbTooLarge { size: u64 },
}

/// Bytes as MiB, rounded up (a size that does not fit is never shown as fitting).
fn mib(n: u64) -> u64 {
    n.div_ceil(1 << 20)
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Kind::Image => "arm64 Image",
            Kind::ZImage => "32-bit zImage",
            Kind::Raw => "raw binary",
        })
    }
}

impl fmt::Display for LayoutError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::Empty => write!(f, "the kernel is empty"),
            Self::BigEndian => write!(
                f,
                "the kernel's Image header says it is big-endian, and guests here are little-endian"
            ),
            Self::AbsurdHeader {
                text_offset,
                image_size,
            } => write!(
                f,
                "the kernel's Image header is absurd: text_offset {text_offset:#x} plus image_size {image_size:#x} is beyond any memory; is the file damaged?"
            ),
            Self::KernelTooLarge { kind, end, ram } => write!(
                f,
                "the kernel ({kind}) needs {} MiB from the start of RAM and the VM has {} MiB: give the VM more memory or use a smaller kernel",
                mib(end),
                mib(ram)
            ),
            Self::TooLarge {
                kernel_end,
                initrd,
                ram,
            } => write!(
                f,
                "the kernel (up to {} MiB into RAM), the initrd ({} MiB) and the device tree (2 MiB) need {} MiB and the VM has {} MiB: give the VM more memory or use a smaller initrd",
                mib(kernel_end),
                mib(initrd),
                mib(kernel_end).saturating_add(mib(initrd)).saturating_add(2),
                mib(ram)
            ),
            Self::DtbTooLarge { size } => write!(
                f,
                "its device tree is {} KiB, more than the 2 MiB the arm64 boot protocol allows",
                size.div_ceil(1024)
            ),
        }
    }
}

fn le64(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().unwrap())
}

/// Decides where a kernel goes, from its first bytes (at least 64 for an Image).
pub fn place(kernel: &[u8]) -> Result<Placement, LayoutError> {
    if kernel.is_empty() {
        return Err(LayoutError::Empty);
    }
    let size = kernel.len() as u64;
    if kernel.len() >= 64 && u32::from_le_bytes(kernel[56..60].try_into().unwrap()) == MAGIC {
        let text_offset = le64(kernel, 8);
        let image_size = le64(kernel, 16);
        let flags = le64(kernel, 24);
        if flags & 1 != 0 {
            return Err(LayoutError::BigEndian);
        }
        // image_size 0 means an old kernel: assume text_offset 0x80000 (booting.rst).
        let (offset, footprint) = if image_size == 0 {
            (RAW_OFFSET, size)
        } else {
            (text_offset, image_size.max(size))
        };
        if offset.checked_add(footprint).is_none() {
            return Err(LayoutError::AbsurdHeader {
                text_offset,
                image_size,
            });
        }
        Ok(Placement {
            kind: Kind::Image,
            offset,
            footprint,
        })
    } else if kernel.len() >= 0x30
        && u32::from_le_bytes(kernel[0x24..0x28].try_into().unwrap()) == ZIMAGE_MAGIC
    {
        // The zImage's own start/end words say how much it occupies.
        let start = u32::from_le_bytes(kernel[0x28..0x2c].try_into().unwrap()) as u64;
        let end = u32::from_le_bytes(kernel[0x2c..0x30].try_into().unwrap()) as u64;
        let footprint = end
            .checked_sub(start)
            .filter(|&n| n >= size)
            .unwrap_or(size);
        Ok(Placement {
            kind: Kind::ZImage,
            offset: ZIMAGE_OFFSET,
            footprint,
        })
    } else {
        Ok(Placement {
            kind: Kind::Raw,
            offset: RAW_OFFSET,
            footprint: size,
        })
    }
}

/// Where everything goes in a VM's RAM, as offsets from its (2 MiB-aligned) base.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Layout {
    pub kernel: u64,
    pub initrd: Option<u64>,
    pub dtb: u64,
}

/// Kernel low, the DTB in the top 2 MiB, the initrd right below the DTB: the layout
/// keeps the largest gap between kernel and initrd for the kernel's own early use.
pub fn layout(
    kernel: &Placement,
    initrd_size: Option<u64>,
    ram_size: u64,
) -> Result<Layout, LayoutError> {
    const PAGE: u64 = 4096;
    let kernel_end = kernel
        .offset
        .checked_add(kernel.footprint)
        .filter(|&end| end <= ram_size)
        .ok_or(LayoutError::KernelTooLarge {
            kind: kernel.kind,
            end: kernel.offset.saturating_add(kernel.footprint),
            ram: ram_size,
        })?;
    let initrd_pages = initrd_size.map_or(Some(0), |s| s.checked_next_multiple_of(PAGE));
    let needed = initrd_pages
        .and_then(|i| kernel_end.checked_add(i))
        .and_then(|n| n.checked_add(DTB_MAX));
    if needed.is_none_or(|n| n > ram_size) {
        return Err(LayoutError::TooLarge {
            kernel_end,
            initrd: initrd_size.unwrap_or(0),
            ram: ram_size,
        });
    }
    // needed <= ram_size: none of these can wrap.
    let dtb = ram_size - DTB_MAX;
    let initrd = initrd_size.map(|s| (dtb - s) & !(PAGE - 1));
    Ok(Layout {
        kernel: kernel.offset,
        initrd,
        dtb,
    })
}

/// Refuses a guest device tree larger than the boot protocol's limit ([`DTB_MAX`],
/// the space [`layout`] leaves for it).
pub fn check_dtb(size: usize) -> Result<(), LayoutError> {
    let size = size as u64;
    if size > DTB_MAX {
        return Err(LayoutError::DtbTooLarge { size });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image(text_offset: u64, image_size: u64, flags: u64, len: usize) -> Vec<u8> {
        let mut v = vec![0u8; len];
        v[8..16].copy_from_slice(&text_offset.to_le_bytes());
        v[16..24].copy_from_slice(&image_size.to_le_bytes());
        v[24..32].copy_from_slice(&flags.to_le_bytes());
        v[56..60].copy_from_slice(&MAGIC.to_le_bytes());
        v
    }

    #[test]
    fn an_image_goes_at_text_offset_and_claims_image_size() {
        let p = place(&image(0, 0x200_0000, 0xa, 4096)).unwrap();
        assert_eq!(
            p,
            Placement {
                kind: Kind::Image,
                offset: 0,
                footprint: 0x200_0000
            }
        );
        let p = place(&image(0x8_0000, 0x10_0000, 0xa, 4096)).unwrap();
        assert_eq!(p.offset, 0x8_0000);
    }

    #[test]
    fn an_old_image_without_size_uses_the_legacy_offset() {
        let p = place(&image(0x1234, 0, 0, 8192)).unwrap();
        assert_eq!(
            p,
            Placement {
                kind: Kind::Image,
                offset: RAW_OFFSET,
                footprint: 8192
            }
        );
    }

    #[test]
    fn raw_binaries_go_where_qemu_puts_them() {
        let p = place(&[0x14, 0, 0, 0]).unwrap();
        assert_eq!(
            p,
            Placement {
                kind: Kind::Raw,
                offset: 0x8_0000,
                footprint: 4
            }
        );
    }

    #[test]
    fn a_zimage_is_an_aarch32_guest_placed_as_qemu_does() {
        let mut z = vec![0u8; 0x1000];
        z[0x24..0x28].copy_from_slice(&ZIMAGE_MAGIC.to_le_bytes());
        z[0x28..0x2c].copy_from_slice(&0u32.to_le_bytes());
        z[0x2c..0x30].copy_from_slice(&0x2000u32.to_le_bytes());
        let p = place(&z).unwrap();
        assert_eq!(
            p,
            Placement {
                kind: Kind::ZImage,
                offset: 0x1_0000,
                footprint: 0x2000
            }
        );
        // A nonsensical end word falls back to the file size.
        z[0x2c..0x30].copy_from_slice(&0x10u32.to_le_bytes());
        assert_eq!(place(&z).unwrap().footprint, 0x1000);
    }

    #[test]
    fn rejects_empty_and_big_endian() {
        assert_eq!(place(&[]), Err(LayoutError::Empty));
        assert_eq!(place(&image(0, 0x1000, 1, 64)), Err(LayoutError::BigEndian));
    }

    #[test]
    fn layout_puts_dtb_on_top_and_initrd_below_it() {
        let k = Placement {
            kind: Kind::Image,
            offset: 0,
            footprint: 0x100_0000,
        };
        let l = layout(&k, Some(0x12345), 0x1000_0000).unwrap();
        assert_eq!(l.dtb, 0x1000_0000 - DTB_MAX);
        let initrd = l.initrd.unwrap();
        assert_eq!(initrd % 4096, 0);
        assert!(initrd + 0x12345 <= l.dtb);
        assert!(initrd >= 0x100_0000);
        assert_eq!(layout(&k, None, 0x1000_0000).unwrap().initrd, None);
    }

    #[test]
    fn layout_refuses_what_does_not_fit() {
        let k = Placement {
            kind: Kind::Image,
            offset: 0,
            footprint: 0x100_0000,
        };
        assert!(matches!(
            layout(&k, Some(0x100_0000), 0x200_0000),
            Err(LayoutError::TooLarge { .. })
        ));
        assert!(layout(&k, None, 0x11f_f000).is_err());
        assert!(layout(&k, None, 0x120_0000).is_ok());
        assert_eq!(
            layout(&k, Some(0x100_0000), 0x200_0000).unwrap_err().to_string(),
            "the kernel (up to 16 MiB into RAM), the initrd (16 MiB) and the device tree (2 MiB) need 34 MiB and the VM has 32 MiB: give the VM more memory or use a smaller initrd"
        );
        // An initrd of absurd size never wraps the arithmetic.
        assert!(matches!(
            layout(&k, Some(u64::MAX - 10), 0x200_0000),
            Err(LayoutError::TooLarge { .. })
        ));
    }

    #[test]
    fn absurd_image_headers_are_refused_in_words_never_overflowing() {
        // text_offset + image_size past 2^64.
        let e = place(&image(u64::MAX - 0xfff, 0x10_0000, 0xa, 64)).unwrap_err();
        assert_eq!(
            e,
            LayoutError::AbsurdHeader {
                text_offset: u64::MAX - 0xfff,
                image_size: 0x10_0000
            }
        );
        assert_eq!(
            e.to_string(),
            "the kernel's Image header is absurd: text_offset 0xfffffffffffff000 plus image_size 0x100000 is beyond any memory; is the file damaged?"
        );
        // image_size beyond the VM's RAM: placed, then refused by the layout.
        let p = place(&image(0, 0x4000_0000_0000, 0xa, 64)).unwrap();
        let e = layout(&p, None, 512 << 20).unwrap_err();
        assert_eq!(
            e,
            LayoutError::KernelTooLarge {
                kind: Kind::Image,
                end: 0x4000_0000_0000,
                ram: 512 << 20
            }
        );
        assert_eq!(
            e.to_string(),
            "the kernel (arm64 Image) needs 67108864 MiB from the start of RAM and the VM has 512 MiB: give the VM more memory or use a smaller kernel"
        );
        // text_offset alone beyond the RAM.
        let p = place(&image(0x8000_0000, 0x1000, 0xa, 64)).unwrap();
        assert!(matches!(
            layout(&p, None, 512 << 20),
            Err(LayoutError::KernelTooLarge { .. })
        ));
        // The largest sane values still work.
        let p = place(&image(0, 64 << 20, 0xa, 64)).unwrap();
        assert_eq!(layout(&p, None, 128 << 20).unwrap().kernel, 0);
    }

    #[test]
    fn a_wrong_magic_makes_a_raw_binary_whatever_the_header_says() {
        let mut v = image(u64::MAX, u64::MAX, 1, 4096);
        v[56] ^= 0xff;
        let p = place(&v).unwrap();
        assert_eq!(
            p,
            Placement {
                kind: Kind::Raw,
                offset: RAW_OFFSET,
                footprint: 4096
            }
        );
    }

    #[test]
    fn guest_device_trees_are_limited_to_2_mib() {
        assert!(check_dtb(2 << 20).is_ok());
        assert_eq!(
            check_dtb((2 << 20) + 1).unwrap_err().to_string(),
            "its device tree is 2049 KiB, more than the 2 MiB the arm64 boot protocol allows"
        );
    }
}
