//! Guest memory as the debug monitor and the GDB stub see it: by IPA through the
//! VM's own RAM mapping (so hypervisor memory and other VMs' memory are
//! unreachable), and by virtual address through a vCPU's live stage-1 controls.

use super::vm::Vm;
use crate::cpreg::{self, SysRegFile};

/// Guest RAM by IPA, through the VM's stage 2: nothing outside the VM's own RAM
/// (the hypervisor's memory, other VMs') can be read this way.
pub struct VmMemory<'a>(pub &'a Vm);

impl crate::stage1::GuestMemory for VmMemory<'_> {
    fn read_u64(&self, ipa: u64) -> Option<u64> {
        if ipa % 8 != 0 {
            return None;
        }
        let (pa, _) = self.0.ram.translate(crate::addr::Ipa(ipa))?;
        // SAFETY: `pa` is this VM's RAM (identity-mapped at EL2), aligned.
        Some(unsafe { core::ptr::read_volatile(pa.0 as *const u64) })
    }
}

/// The stage-1 translation controls held in a vCPU's (synchronised) register file.
pub fn stage1_regs(
    vm: &Vm,
    file: &SysRegFile,
) -> Result<crate::stage1::Regs, alloc::string::String> {
    // An AArch32 EL1 uses the same registers through their AArch32 views (SCTLR,
    // TTBCR, TTBR0/1): the walker reads them that way when `aarch32` is set.
    let r = |reg| file.raw_read(reg).unwrap_or(0);
    Ok(crate::stage1::Regs {
        sctlr: r(cpreg::Reg::SCTLR_EL1),
        tcr: r(cpreg::Reg::TCR_EL1),
        ttbr0: r(cpreg::Reg::TTBR0_EL1),
        ttbr1: r(cpreg::Reg::TTBR1_EL1),
        aarch32: vm.aarch32,
    })
}
