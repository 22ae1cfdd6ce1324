//! Trapped system-register accesses, dispatched through the cpreg table.
//!
//! AArch64 `MRS`/`MSR`/`SYS` (EC 0x18), AArch32 `MCR`/`MRC`/`MCRR`/`MRRC`/`LDC`/`STC`
//! on cp15 and cp14 (EC 0x03-0x06, 0x0C) and AArch32 `VMRS` of the MVFR ID registers
//! (EC 0x08) all end in [`crate::cpreg`]'s
//! emulation; this module only applies its verdict to the vCPU: advance the PC,
//! perform an operation, or inject UNDEF (logged once per encoding and VM).

use super::{inject, vcpu::Vcpu, vm::Vm};
use crate::arch::trap_frame::TrapFrame;
use crate::cpreg::{self, Emulation, OpKind, Operation, Reg};
use crate::esr::{Esr, ExceptionClass};
use core::arch::asm;

/// A trapped system-register access: AArch64 `MRS`/`MSR`/`SYS` (EC 0x18), AArch32
/// cp15/cp14 (EC 0x03-0x06, 0x0C) or `VMRS` of an ID register (EC 0x08).
pub fn trapped(vm: &Vm, vcpu: &Vcpu, frame: &mut TrapFrame, esr: Esr) {
    let el0 = is_el0(frame.spsr);
    if is_debug_space(esr) {
        // Lazily switched debug registers: the vCPU's own into the hardware first.
        super::sched::ensure_debug_loaded(vcpu);
    }
    let result = {
        let mut ctx = vcpu.ctx.lock();
        // With the debugger's breakpoint registers loaded, the guest still sees
        // its own (see `debug`).
        let debugged = super::debug::suspend(vcpu, &ctx.sysregs);
        let r = cpreg::emulate(
            &mut ctx.sysregs,
            &mut cpreg::Hw,
            esr,
            &mut frame.x,
            frame.spsr,
            el0,
        );
        if debugged {
            super::debug::reapply(vm, vcpu, &ctx.sysregs);
        }
        r
    };
    finish(vm, vcpu, frame, esr, result);
}

/// The trap fast path's share: a trapped AArch64 access at EL1 to plain state
/// (`cpreg::quick`), completed and stepped over. False, with nothing changed, for
/// anything else ([`trapped`] on the full path). Not with the debugger's registers
/// loaded (`Vcpu::debug_override`).
#[inline(always)]
pub fn emulate_fast(vcpu: &Vcpu, frame: &mut TrapFrame, esr: Esr) -> bool {
    // EL1 in AArch64 (an AArch32 EL1 traps with other classes); AArch64 executes
    // no IT blocks, so stepping over is +4.
    let done = frame.spsr & 0b11100 == 0b00100
        && cpreg::emulate_quick(
            &mut vcpu.ctx.lock().sysregs,
            &mut cpreg::Hw,
            esr.0,
            &mut frame.x,
        );
    if done {
        frame.elr += 4;
    }
    done
}

/// A trapped access to the debug register space (AArch64 op0 = 2, or cp14), where
/// the lazily switched debug group lives.
fn is_debug_space(esr: Esr) -> bool {
    match esr.ec() {
        ExceptionClass::SysReg => esr.sysreg().op0() == 2,
        ExceptionClass::Cp14Rt | ExceptionClass::Cp14RRt | ExceptionClass::Cp14Ls => true,
        _ => false,
    }
}

/// EL0: EL0t in AArch64, User mode in AArch32.
fn is_el0(spsr: u64) -> bool {
    if spsr & (1 << 4) != 0 {
        spsr & 0x1f == 0b10000
    } else {
        spsr & 0xf == 0
    }
}

/// Applies an emulation's verdict to the vCPU (the full path).
fn finish(vm: &Vm, vcpu: &Vcpu, frame: &mut TrapFrame, esr: Esr, result: Emulation) {
    match result {
        Emulation::Done { reg, write } => {
            if write && reg.owner() == Reg::SCTLR_EL1 {
                sctlr_written(vm, vcpu);
            }
            advance(frame, esr);
        }
        Emulation::Skipped => advance(frame, esr),
        Emulation::Operation(op) => {
            if perform(vm, vcpu, op) {
                advance(frame, esr);
            } else {
                vm.note_undef(op.reg.name(), esr.ec() == ExceptionClass::SysReg, frame.elr);
                inject::undef(frame, esr);
            }
        }
        Emulation::Undef(u) => {
            let mut name = heapless::String::<96>::new();
            match u.encoding {
                Some(e) => {
                    let _ = core::fmt::write(
                        &mut name,
                        format_args!(
                            "{} {} ({})",
                            if u.is_read { "read of" } else { "write to" },
                            e,
                            u.reason
                        ),
                    );
                }
                None => {
                    let _ =
                        core::fmt::write(&mut name, format_args!("{} ({})", esr.ec(), u.reason));
                }
            }
            vm.note_undef(&name, true, frame.elr);
            inject::undef(frame, esr);
        }
    }
}

/// Steps over the trapped instruction; in an AArch32 Thumb IT block, also advances
/// the IT state as executing it would have (ITAdvance).
fn advance(frame: &mut TrapFrame, esr: Esr) {
    frame.elr += esr.instruction_len();
    let aarch32 = frame.spsr & (1 << 4) != 0;
    if aarch32 {
        frame.elr &= 0xffff_ffff;
        let it = ((frame.spsr >> 8) & 0xfc) | ((frame.spsr >> 25) & 0x3);
        if it != 0 {
            let it = if it & 0x7 == 0 {
                0
            } else {
                (it & 0xe0) | ((it << 1) & 0x1f)
            };
            frame.spsr &= !((0x3f << 10) | (0x3 << 25));
            frame.spsr |= ((it & 0xfc) << 8) | ((it & 0x3) << 25);
        }
    }
}

/// Whether the guest's MMU and data cache are both on (SCTLR_EL1.M and .C, live).
fn caches_on() -> bool {
    use crate::cpreg::SysRegHw;
    cpreg::Hw.read(Reg::SCTLR_EL1) & 0b101 == 0b101
}

fn flush_vm(vm: &Vm) {
    for c in &vm.ram.chunks {
        crate::arch::cache::clean_inval_dcache(c.start.0 as usize, c.size as usize);
    }
}

/// HCR_EL2 for the loaded vCPU after its TVM need changed.
fn reload_hcr(vm: &Vm, vcpu: &Vcpu) {
    // SAFETY: HCR_EL2 configures the loaded guest; only its TVM bit changes here.
    unsafe { asm!("msr hcr_el2, {}", "isb", in(reg) vcpu.hcr(vm), options(nostack)) };
}

/// Set/way maintenance cannot be virtualised (the caches are shared with other VMs
/// and the guest cannot know their geometry), so do as KVM does
/// (`kvm_set_way_flush`): the first such operation cleans and invalidates all of the
/// VM's memory by VA and starts trapping the memory controls (TVM), so the guest's
/// next cache change is seen ([`sctlr_written`]); until then the rest are no-ops.
fn set_way(vm: &Vm, vcpu: &Vcpu) {
    use core::sync::atomic::Ordering::Relaxed;
    if !vcpu.sw_tvm.swap(true, Relaxed) {
        flush_vm(vm);
        vcpu.caches_on.store(caches_on(), Relaxed);
        reload_hcr(vm, vcpu);
    }
}

/// A trapped SCTLR write (`kvm_toggle_cache`): when the MMU and caches went on or
/// off, clean and invalidate the VM's memory; once they are on, set/way emulation
/// stops trapping the memory controls (unless the VM is traced, which keeps TVM).
fn sctlr_written(vm: &Vm, vcpu: &Vcpu) {
    use core::sync::atomic::Ordering::Relaxed;
    let now = caches_on();
    if vcpu.caches_on.swap(now, Relaxed) != now {
        flush_vm(vm);
    }
    if now && vcpu.sw_tvm.swap(false, Relaxed) {
        reload_hcr(vm, vcpu);
    }
}

/// Performs a system instruction for the guest. False if it cannot be done safely
/// here (the guest then gets UNDEF).
fn perform(vm: &Vm, vcpu: &Vcpu, op: Operation) -> bool {
    match op.kind {
        OpKind::Nop => true,
        OpKind::DcSetWay => {
            set_way(vm, vcpu);
            true
        }
        OpKind::Tlbi => {
            // Not trapped with this HCR_EL2; if it ever is, invalidating all of this
            // VM's stage-1 entries is a correct superset.
            // SAFETY: invalidates TLB entries of the current VMID only.
            unsafe { asm!("tlbi vmalle1is", "dsb ish", "isb", options(nostack)) };
            true
        }
        OpKind::IcAll | OpKind::IcVa => {
            crate::arch::cache::invalidate_icache_all();
            true
        }
        // vGIC: GICv3 SGI generation.
        OpKind::Sgi1 | OpKind::Asgi1 => super::vgic::sgi(vm, vcpu, op.operand, true),
        OpKind::Sgi0 => super::vgic::sgi(vm, vcpu, op.operand, false),
        // By-VA data maintenance and address translation are not trapped by this
        // HCR_EL2 and cannot be replayed at EL2 (another translation regime).
        // Whatever the runtime cannot perform is UNDEF to the guest.
        _ => false,
    }
}
