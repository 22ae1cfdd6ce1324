//! Xen dom0less partial device trees (`multiboot,device-tree` modules), as Xen
//! documents them (`docs/misc/arm/device-tree/booting.txt`, "Device
//! Assignment", and `docs/misc/arm/passthrough.txt`):
//!
//! ```text
//! / {
//!     #address-cells = <2>; #size-cells = <2>;
//!     passthrough {
//!         compatible = "simple-bus"; ranges;
//!         #address-cells = <2>; #size-cells = <2>;
//!         ethernet@ff0e0000 {
//!             compatible = "cdns,zynqmp-gem";
//!             reg = <0x0 0xff0e0000 0x0 0x1000>;          // as the guest sees it
//!             interrupts = <0 63 4>;                        // SPIs, VIRQ = IRQ
//!             xen,reg = <0x0 0xff0e0000 0x0 0x1000 0x0 0xff0e0000>; // host, size, guest
//!             xen,path = "/amba/ethernet@ff0e0000";       // the host node
//!             xen,force-assign-without-iommu;
//!         };
//!     };
//! };
//! ```
//!
//! Every node under `/passthrough` with `xen,reg` is a device: each `xen,reg`
//! entry (in its parent's cell sizes) maps host MMIO at a guest address, its
//! `interrupts` are routed 1:1. `xen,path`, when present, names the host node,
//! which then counts as assigned (conflicts and the hypervisor's own nodes are
//! checked against it). The `/passthrough` node itself, minus the `xen,*`
//! properties, becomes part of the guest's device tree
//! ([`super::guest_dt`]). `xen,force-assign-without-iommu` is accepted and
//! changes nothing: without an SMMU every assigned device is trusted (see
//! the README).
#![forbid(unsafe_code)]

use alloc::string::String;
use alloc::vec::Vec;

use crate::dt::props::{self, str_prop};
use crate::dt::{blob, DtError, Irq};

/// One device of a partial tree.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PartialDevice<'a> {
    /// Its path in the partial tree (`/passthrough/ethernet@ff0e0000`).
    pub path: String,
    /// `compatible`'s first string.
    pub compatible: Option<&'a str>,
    /// `xen,path`: the host node.
    pub host_path: Option<&'a str>,
    /// `xen,reg` entries: (host address, size, guest address).
    pub regs: Vec<(u64, u64, u64)>,
    /// `interrupts`, as GIC specifiers.
    pub irqs: Vec<Irq>,
}

/// Why a partial device tree cannot be used.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PartialError {
    /// Not a well-formed device tree.
    Blob(DtError),
    /// No `/passthrough` node.
    NoPassthrough,
    /// A node's property is unusable (node path, property).
    BadProperty(String, &'static str),
}

impl core::fmt::Display for PartialError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Blob(e) => write!(f, "the partial device tree is unreadable: {e}"),
            Self::NoPassthrough => write!(f, "the partial device tree has no /passthrough node"),
            Self::BadProperty(node, p) => {
                write!(f, "the partial device tree's {node} has a malformed `{p}`")
            }
        }
    }
}

/// The devices of a partial tree, in DT order.
pub fn devices(partial: &[u8]) -> Result<Vec<PartialDevice<'_>>, PartialError> {
    let blob = blob::check(partial).map_err(PartialError::Blob)?;
    let fdt = fdt::Fdt::new(blob).map_err(|_| PartialError::Blob(DtError::BadHeader))?;
    if props::find_path(&fdt, "/passthrough").is_none() {
        return Err(PartialError::NoPassthrough);
    }
    let mut out = Vec::new();
    let mut err = None;
    props::walk(&fdt, &mut |v| {
        if err.is_some() {
            return Ok(false);
        }
        let within = v.path == "/passthrough" || v.path.starts_with("/passthrough/");
        if v.path == "/" {
            return Ok(true);
        }
        if !within {
            return Ok(false);
        }
        let Some(xen_reg) = v.prop("xen,reg") else {
            return Ok(true);
        };
        let bad = |p| PartialError::BadProperty(String::from(v.path), p);
        let (ac, sc) = v.reg_cells();
        let stride = (2 * ac + sc) as usize;
        if ac == 0 || ac > 2 || sc == 0 || sc > 2 || !xen_reg.len().is_multiple_of(stride * 4) {
            err = Some(bad("xen,reg"));
            return Ok(false);
        }
        let mut regs = Vec::new();
        for e in 0..xen_reg.len() / (stride * 4) {
            let i = e * stride;
            let host = props::cells_u64(xen_reg, i, ac);
            let size = props::cells_u64(xen_reg, i + ac as usize, sc);
            let guest = props::cells_u64(xen_reg, i + (ac + sc) as usize, ac);
            match (host, size, guest) {
                (Some(h), Some(s), Some(g)) => regs.push((h, s, g)),
                _ => {
                    err = Some(bad("xen,reg"));
                    return Ok(false);
                }
            }
        }
        let mut irqs = Vec::new();
        if let Some(ints) = v.prop("interrupts") {
            // The GIC binding (Xen routes VIRQ = IRQ): <type number flags>.
            if ints.is_empty() || !ints.len().is_multiple_of(12) {
                err = Some(bad("interrupts"));
                return Ok(false);
            }
            for spec in ints.chunks(12) {
                let c = |i| props::cell(spec, i).unwrap_or(u32::MAX);
                match Irq::from_gic_cells(c(0), c(1), c(2)) {
                    Some(irq) => irqs.push(irq),
                    None => {
                        err = Some(bad("interrupts"));
                        return Ok(false);
                    }
                }
            }
        }
        out.push(PartialDevice {
            path: String::from(v.path),
            compatible: v.compatible().first(),
            host_path: v.prop("xen,path").and_then(str_prop),
            regs,
            irqs,
        });
        Ok(true)
    })
    .map_err(PartialError::Blob)?;
    match err {
        Some(e) => Err(e),
        None => Ok(out),
    }
}
