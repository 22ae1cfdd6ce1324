//! The real [`Mmio`] for the portable drivers (`crate::drivers`): volatile
//! 32-bit loads and stores at a device's physical address, which the EL2
//! identity map covers as Device-nGnRE memory (or the MMU is still off, when
//! every access is Device-nGnRnE).

use crate::drivers::uart::Mmio;

/// A device's register window at a fixed physical address.
#[derive(Clone, Copy)]
pub struct DeviceMmio {
    base: usize,
}

impl DeviceMmio {
    /// # Safety
    /// `base` must be the physical address of a device's registers, mapped as
    /// device memory in the EL2 map (or the MMU off), covering every offset the
    /// driver uses ([`crate::drivers::uart::Model::window`]); and accesses must
    /// be serialised by the caller where the device needs it.
    pub const unsafe fn new(base: usize) -> Self {
        Self { base }
    }

    pub fn base(&self) -> usize {
        self.base
    }
}

impl Mmio for DeviceMmio {
    fn read32(&self, offset: usize) -> u32 {
        // SAFETY: `new`'s contract: base + offset is a register of the device,
        // mapped as device memory; a 32-bit aligned access is what it expects.
        unsafe { core::ptr::read_volatile((self.base + offset) as *const u32) }
    }

    fn write32(&self, offset: usize, value: u32) {
        // SAFETY: as in `read32`.
        unsafe { core::ptr::write_volatile((self.base + offset) as *mut u32, value) }
    }
}
