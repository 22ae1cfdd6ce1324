//! The initrd the boot loader passed: `/chosen/linux,initrd-start` and
//! `linux,initrd-end` (QEMU `-initrd`, U-Boot `booti`'s second argument, the
//! Raspberry Pi firmware's `initramfs` line).
//!
//! The hypervisor has no use for an initrd of its own: when one is passed, it
//! may be a guest bundle (DESIGN.md 4, `crate::bundle`). Read here, apart from
//! [`super::parse`], because it is a question about one node that only the
//! bundle path asks. Both properties are one or two cells, whatever
//! `#address-cells` says (the Pi firmware writes one, QEMU and U-Boot two), and
//! `-end` is exclusive.
#![forbid(unsafe_code)]

use super::props::{find_path, u64_prop};
use super::{blob, DtError};
use crate::addr::{PhysAddr, Range};

/// The boot loader's initrd, if the host DTB names one (an empty one counts
/// as none).
pub fn boot_initrd(dtb: &[u8]) -> Result<Option<Range<PhysAddr>>, DtError> {
    let dtb = blob::check(dtb)?;
    let fdt = fdt::Fdt::new(dtb).map_err(|_| DtError::BadHeader)?;
    let Some(chosen) = find_path(&fdt, "/chosen") else {
        return Ok(None);
    };
    let prop = |name| chosen.property(name).map(|p| p.value);
    let (start, end) = match (prop("linux,initrd-start"), prop("linux,initrd-end")) {
        (None, None) => return Ok(None),
        (Some(s), Some(e)) => (
            u64_prop(s).ok_or(DtError::BadProperty("linux,initrd-start"))?,
            u64_prop(e).ok_or(DtError::BadProperty("linux,initrd-end"))?,
        ),
        (None, Some(_)) => return Err(DtError::Missing("linux,initrd-start")),
        (Some(_), None) => return Err(DtError::Missing("linux,initrd-end")),
    };
    if end < start {
        return Err(DtError::BadProperty("linux,initrd-end"));
    }
    Ok((end > start).then(|| Range::new(PhysAddr(start), end - start)))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A minimal DTB whose `/chosen` has the given properties (name, value).
    fn dtb(props: &[(&str, &[u8])]) -> Vec<u8> {
        let mut w = vm_fdt::FdtWriter::new().unwrap();
        let root = w.begin_node("").unwrap();
        w.property_u32("#address-cells", 2).unwrap();
        w.property_u32("#size-cells", 2).unwrap();
        let chosen = w.begin_node("chosen").unwrap();
        for (name, value) in props {
            w.property(name, value).unwrap();
        }
        w.end_node(chosen).unwrap();
        w.end_node(root).unwrap();
        w.finish().unwrap()
    }

    #[test]
    fn qemus_two_cell_initrd() {
        let d = include_bytes!("../../tests/fixtures/virt-initrd.dtb");
        assert_eq!(
            boot_initrd(d).unwrap(),
            Some(Range::new(PhysAddr(0x4800_0000), 6))
        );
        let none = include_bytes!("../../tests/fixtures/virt-gicv3.dtb");
        assert_eq!(boot_initrd(none).unwrap(), None);
    }

    #[test]
    fn one_cell_values_as_the_pi_firmware_writes_them() {
        let d = dtb(&[
            ("linux,initrd-start", &0x0280_0000u32.to_be_bytes()),
            ("linux,initrd-end", &0x0290_0000u32.to_be_bytes()),
        ]);
        assert_eq!(
            boot_initrd(&d).unwrap(),
            Some(Range::new(PhysAddr(0x0280_0000), 0x10_0000))
        );
    }

    #[test]
    fn empty_missing_and_bad_values() {
        let four = 0x1000u32.to_be_bytes();
        assert_eq!(boot_initrd(&dtb(&[])).unwrap(), None);
        let empty = dtb(&[("linux,initrd-start", &four), ("linux,initrd-end", &four)]);
        assert_eq!(boot_initrd(&empty).unwrap(), None);
        let backwards = dtb(&[
            ("linux,initrd-start", &four),
            ("linux,initrd-end", &0x800u32.to_be_bytes()),
        ]);
        assert_eq!(
            boot_initrd(&backwards),
            Err(DtError::BadProperty("linux,initrd-end"))
        );
        let odd = dtb(&[
            ("linux,initrd-start", &[0, 0, 1]),
            ("linux,initrd-end", &four),
        ]);
        assert_eq!(
            boot_initrd(&odd),
            Err(DtError::BadProperty("linux,initrd-start"))
        );
        let half = dtb(&[("linux,initrd-start", &four)]);
        assert_eq!(
            boot_initrd(&half),
            Err(DtError::Missing("linux,initrd-end"))
        );
        assert_eq!(
            boot_initrd(b"not a dtb at all, but long enough to have a header"),
            Err(DtError::BadMagic)
        );
    }
}
