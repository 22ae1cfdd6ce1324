//! Guest memory as the debug monitor and the GDB stub see it: by IPA through the
//! VM's own RAM mapping (so hypervisor memory and other VMs' memory are
//! unreachable), and by virtual address through a vCPU's live stage-1 controls.
//!
//! Also which of a VM's RAM has been touched. A VM whose RAM no device can DMA
//! into has it mapped untouched ([`crate::stage2::RAM_UNTOUCHED`]): the first
//! access to a block, by a vCPU (an access-flag fault) or by the hypervisor
//! writing or showing it, zeroes the block and sets its access flag
//! ([`touch`]). So an untouched block reads as zeros whatever the memory held
//! before (on a board: the firmware's leftovers, another VM's images), and a
//! snapshot skips it without reading it ([`untouched`]).

use super::vm::Vm;
use crate::addr::Ipa;
use crate::cpreg::{self, SysRegFile};
use crate::stage2::Stage2Tables;

/// Makes the block of RAM that holds `ipa` touched: zeroes it (and, with MTE, its
/// allocation tags) and sets its access flag. False where `ipa` is not mapped.
pub fn touch_in(s2: &mut Stage2Tables, mte: bool, ipa: u64) -> bool {
    let Some(leaf) = s2.leaf(Ipa(ipa)) else {
        return false;
    };
    if leaf.touched {
        return true;
    }
    // Only tracked RAM is mapped without the access flag.
    crate::arch::cache::zero_to_poc(leaf.pa.0 as usize, leaf.size as usize);
    if mte {
        for page in (0..leaf.size).step_by(4096) {
            crate::arch::mte::clear_page((leaf.pa.0 + page) as usize);
        }
    }
    s2.set_touched(&leaf)
}

/// [`touch_in`] for every block of `[ipa, ipa + len)`.
pub fn touch_range_in(s2: &mut Stage2Tables, mte: bool, ipa: u64, len: u64) {
    let end = ipa.saturating_add(len);
    let mut at = ipa;
    while at < end {
        let Some(leaf) = s2.leaf(Ipa(at)) else {
            at = (at | 0xfff).saturating_add(1);
            continue;
        };
        touch_in(s2, mte, at);
        at = leaf.ipa.saturating_add(leaf.size);
    }
}

/// [`touch_in`] on `vm`'s stage 2: its first access to a block (an access-flag
/// fault), or the hypervisor about to read or write guest RAM there.
pub fn touch(vm: &Vm, ipa: u64) -> bool {
    touch_in(&mut vm.stage2.lock().0, vm.mte, ipa)
}

/// [`touch_range_in`] on `vm`'s stage 2.
pub fn touch_range(vm: &Vm, ipa: u64, len: u64) {
    touch_range_in(&mut vm.stage2.lock().0, vm.mte, ipa, len)
}

/// How many bytes from `ipa` are known to be zero without reading them: the
/// rest of an untouched block (0 where the block is touched or not RAM).
pub fn untouched(vm: &Vm, ipa: u64) -> u64 {
    match vm.stage2.lock().0.leaf(Ipa(ipa)) {
        Some(l) if !l.touched => l.ipa + l.size - ipa,
        _ => 0,
    }
}

/// Guest RAM by IPA, through the VM's stage 2: nothing outside the VM's own RAM
/// (the hypervisor's memory, other VMs') can be read this way.
pub struct VmMemory<'a>(pub &'a Vm);

impl crate::stage1::GuestMemory for VmMemory<'_> {
    fn read_u64(&self, ipa: u64) -> Option<u64> {
        if ipa % 8 != 0 {
            return None;
        }
        let (pa, _) = self.0.ram.translate(crate::addr::Ipa(ipa))?;
        touch(self.0, ipa);
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
