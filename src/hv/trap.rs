//! Exceptions taken to EL2: dispatched by exception class (Bao `aborts.c`, Hafnium
//! `handler.c`). Anything a guest does ends in a defined architectural result (the
//! access emulated, or an exception injected into the guest), never a halt. An
//! exception from EL2 itself is a hypervisor bug: its state goes to the console and
//! that CPU stops.

use super::{gic, inject, sched, sysreg, vgic, vm::Vm, vpsci};
use crate::arch::trap_frame::{kind, TrapFrame};
use crate::esr::{Esr, ExceptionClass};
use crate::vuart;
use core::arch::asm;

fn read_esr_far_hpfar() -> (Esr, u64, u64) {
    let (esr, far, hpfar): (u64, u64, u64);
    // SAFETY: reading the syndrome registers has no side effects.
    unsafe {
        asm!("mrs {}, esr_el2", out(reg) esr, options(nomem, nostack));
        asm!("mrs {}, far_el2", out(reg) far, options(nomem, nostack));
        asm!("mrs {}, hpfar_el2", out(reg) hpfar, options(nomem, nostack));
    }
    (Esr(esr), far, hpfar)
}

fn read_esr() -> Esr {
    let esr: u64;
    // SAFETY: reading the syndrome register has no side effects.
    unsafe { asm!("mrs {}, esr_el2", out(reg) esr, options(nomem, nostack)) };
    Esr(esr)
}

/// Called by `vectors.S` first for every synchronous exception from a guest: the
/// exits that change no interrupt or scheduling state (a trapped access to plain
/// system-register state, a PSCI call that only answers) are finished here and
/// the guest is re-entered at once: the vGIC's list registers stay live in the
/// hardware, no lock of the scheduler is taken and no scheduling decision is made.
/// False: nothing was changed, and [`hv_exception`] takes the exit.
///
/// The split is safe because whatever another CPU does to this vCPU (an interrupt
/// made pending, a pause) comes with a kick SGI, which is pending at EL2 while this
/// runs and is taken as soon as the guest is re-entered.
#[no_mangle]
extern "C" fn hv_fast_sync(frame: &mut TrapFrame) -> bool {
    let Some(vcpu) = sched::current_vcpu() else {
        return false;
    };
    let done = fast_sync(vcpu, frame);
    if done {
        use core::sync::atomic::Ordering::Relaxed;
        vcpu.fast_exits
            .store(vcpu.fast_exits.load(Relaxed).wrapping_add(1), Relaxed);
    }
    done
}

#[inline(always)]
fn fast_sync(vcpu: &super::vcpu::Vcpu, frame: &mut TrapFrame) -> bool {
    let esr = read_esr();
    let class = esr.0 >> 26;
    if class == ec::FP {
        // The lazy FP/SIMD switch: load the vCPU's state and run the instruction
        // again.
        sched::fp_first_use(vcpu);
        return true;
    }
    if vcpu
        .debug_override
        .load(core::sync::atomic::Ordering::Relaxed)
    {
        // The debugger's registers are loaded: see `sysreg::trapped`.
        return false;
    }
    if class == ec::SYSREG {
        sysreg::emulate_fast(vcpu, frame, esr)
    } else {
        fast_call(vcpu, frame, class)
    }
}

/// The fast path's PSCI calls (out of line, so the system-register path keeps a
/// small frame). ELR already points past an HVC; a trapped SMC returns to the SMC
/// itself.
#[inline(never)]
fn fast_call(vcpu: &super::vcpu::Vcpu, frame: &mut TrapFrame, class: u64) -> bool {
    if !matches!(class, ec::HVC64 | ec::HVC32 | ec::SMC64 | ec::SMC32) {
        return false;
    }
    let done = vpsci::answer(vcpu.vm, frame);
    if done && matches!(class, ec::SMC64 | ec::SMC32) {
        frame.elr += 4;
    }
    done
}

/// ESR_EL2.EC values the fast path looks at (Arm ARM D24.2.40).
mod ec {
    /// FP/SIMD access trapped by CPTR_EL2.TFP.
    pub const FP: u64 = 0x07;
    pub const HVC32: u64 = 0x12;
    pub const SMC32: u64 = 0x13;
    pub const HVC64: u64 = 0x16;
    pub const SMC64: u64 = 0x17;
    pub const SYSREG: u64 = 0x18;
}

/// Called by `vectors.S` for every exception [`hv_fast_sync`] did not finish: fold
/// the list registers into the vGIC model, handle the exit, schedule, refill.
#[no_mangle]
extern "C" fn hv_exception(frame: &mut TrapFrame, k: u64) {
    let start = crate::arch::timer::now();
    if !kind::from_lower_el(k) {
        el2_crash(frame, k);
    }
    // Passthrough: EL2 exits, for exits per forwarded interrupt.
    super::passthrough::count_exit(kind::class(k));
    // vGIC: the list registers go back into the model on every full exit...
    vgic::on_exit();
    match kind::class(k) {
        0 => guest_sync(frame),
        1 => irq(frame),
        2 => sched::schedule(frame, false),
        _ => serror(frame),
    }
    // ...and are refilled for whichever vCPU runs next (vGIC).
    vgic::on_entry();
    sched::account_switch(start);
}

fn guest_sync(frame: &mut TrapFrame) {
    let Some((vm, vcpu)) = sched::current() else {
        // An exception from a lower EL with no vCPU loaded cannot happen.
        panic!("guest exception with no vCPU loaded");
    };
    let (esr, far, hpfar) = read_esr_far_hpfar();
    let mut yield_cpu = false;
    let pc = frame.elr;
    match esr.ec() {
        ExceptionClass::Brk64
        | ExceptionClass::BreakpointLower
        | ExceptionClass::SoftwareStepLower => {
            super::debug::exception(vm, vcpu, frame, esr);
            sched::schedule(frame, false);
            return;
        }
        ExceptionClass::Hvc64 | ExceptionClass::Hvc32 => {
            // ELR already points past the HVC.
            if let vpsci::After::Reschedule = vpsci::call(vm, vcpu, frame) {
                yield_cpu = true;
            }
        }
        ExceptionClass::Smc64 | ExceptionClass::Smc32 => {
            // A trapped SMC returns to the SMC itself: step over it.
            frame.elr += 4;
            if let vpsci::After::Reschedule = vpsci::call(vm, vcpu, frame) {
                yield_cpu = true;
            }
        }
        ExceptionClass::WfiWfe => {
            frame.elr += esr.instruction_len();
            if !esr.is_wfe() {
                // vGIC: WFI blocks the vCPU until an interrupt is pending for it.
                vgic::wfi(vm, vcpu);
            }
            yield_cpu = true;
        }
        // The first access to a block of untouched RAM: zero it, set its access
        // flag, and let the guest retry.
        ExceptionClass::DataAbortLower | ExceptionClass::InstrAbortLower
            if esr.is_access_flag_fault() && super::guest_mem::touch(vm, (hpfar >> 4) << 12) => {}
        ExceptionClass::DataAbortLower => {
            let ipa = ((hpfar >> 4) << 12) | (far & 0xfff);
            data_abort(vm, vcpu, frame, esr, ipa, far);
        }
        ExceptionClass::InstrAbortLower => {
            let ipa = ((hpfar >> 4) << 12) | (far & 0xfff);
            if vm.note_abort() {
                crate::println!(
                    "vm{}: instruction fetch from unmapped IPA {:#x} (pc {:#x}): external abort injected",
                    vm.id, ipa, frame.elr
                );
            }
            inject::instruction_abort(frame, far);
        }
        ExceptionClass::SysReg
        | ExceptionClass::Cp15Rt
        | ExceptionClass::Cp15RRt
        | ExceptionClass::Cp14Rt
        | ExceptionClass::Cp14Ls
        | ExceptionClass::Cp14RRt
        | ExceptionClass::Other(0x08) => sysreg::trapped(vm, vcpu, frame, esr),
        other => {
            let mut what = heapless::String::<96>::new();
            let _ = core::fmt::write(
                &mut what,
                format_args!("trapped {} (EC {:#04x})", other, other.bits()),
            );
            vm.note_undef(&what, false, frame.elr);
            inject::undef(frame, esr);
        }
    }
    if frame.elr != pc {
        // An instruction emulated here, or an exception entered for the guest,
        // completes a single step (debug).
        super::debug::emulated_instruction(vm, vcpu, frame);
    }
    sched::schedule(frame, yield_cpu);
}

/// A stage-2 fault: an emulated device, or an access to nothing.
fn data_abort(
    vm: &Vm,
    vcpu: &super::vcpu::Vcpu,
    frame: &mut TrapFrame,
    esr: Esr,
    ipa: u64,
    far: u64,
) {
    // vGIC: the guest's distributor and redistributors.
    if vgic::mmio(vm, vcpu, frame, esr, ipa) {
        return;
    }
    let da = esr.data_abort();
    if ipa >= vm.uart_ipa && ipa < vm.uart_ipa + vuart::SIZE && da.isv() {
        let offset = ipa - vm.uart_ipa;
        let rt = da.srt();
        if da.is_write() {
            let value = if rt == 31 { 0 } else { frame.x[rt] as u32 };
            let out = vm.uart.lock().write(offset, value);
            if let Some(b) = out {
                vm.output(b);
            }
        } else {
            let value = vm.uart.lock().read(offset) as u64;
            if rt != 31 {
                frame.x[rt] = value;
            }
        }
        // vGIC: the UART's interrupt line may have changed.
        vgic::uart_changed(vm);
        frame.elr += esr.instruction_len();
        return;
    }
    if vm.note_abort() {
        crate::println!(
            "vm{}: data abort: {} of unmapped IPA {:#x} (pc {:#x}): external abort injected",
            vm.id,
            if da.is_write() { "write" } else { "read" },
            ipa,
            frame.elr
        );
    }
    inject::data_abort(frame, esr, far);
}

fn irq(frame: &mut TrapFrame) {
    let mut tick = false;
    let mut console = false;
    // Bounded: a device that re-asserts at once cannot keep this CPU here for ever.
    for _ in 0..16 {
        let Some(acked) = gic::acknowledge() else {
            break;
        };
        let intid = acked.id.raw_value();
        if intid == super::boot::hyp_timer_intid() {
            // The timer's line is level: quiet it before EOI, or it fires again at
            // once. `sched::timer_fired` arms it again.
            crate::arch::timer::disarm();
            tick = true;
        } else if super::console::interrupt(intid) {
            // A console UART's (CPU 0): serviced into its rings; the console
            // reads them below.
            console = true;
        }
        // A kick (control::KICK_SGI) needs nothing but this exit: `schedule` below
        // sees why it was sent.
        // vGIC: an EL1 timer's PPI or the maintenance interrupt.
        vgic::physical_irq(intid);
        gic::end(acked);
    }
    if console || (tick && crate::arch::cpu_index() == 0) {
        if console || super::console::input_waiting() {
            super::boot::poll_input();
            super::monitor::poll(Some(frame));
        } else {
            // Interrupt-driven UARTs with empty rings: nothing to read; only
            // a restart a guest asked for is carried out here (CPU 0).
            super::reset::service(Some(frame));
        }
    }
    if tick {
        // The slice's end, or a deadline: a vCPU to wake (see `sched`).
        sched::timer_fired(frame);
    } else {
        sched::schedule(frame, false);
    }
}

fn serror(frame: &mut TrapFrame) {
    if let Some((vm, _)) = sched::current() {
        crate::println!(
            "vm{}: SError (pc {:#x}): the VM is stopped",
            vm.id,
            frame.elr
        );
        vm.power_off("SError");
    }
    sched::schedule(frame, true);
}

/// A fault in the hypervisor itself: everything a developer needs, then this CPU stops.
fn el2_crash(frame: &TrapFrame, k: u64) -> ! {
    let (esr, far, _) = read_esr_far_hpfar();
    let p = crate::hv::console::print_unlocked;
    p(format_args!(
        "\nhv: CRASH on cpu {}: {} exception at EL2\n  ESR_EL2 {:#018x} (EC {:#04x})  FAR_EL2 {:#018x}\n  ELR_EL2 {:#018x}  SPSR_EL2 {:#018x}\n",
        crate::arch::cpu_index(),
        kind::NAMES[k as usize & 15],
        esr.0,
        esr.ec().bits(),
        far,
        frame.elr,
        frame.spsr
    ));
    for (i, pair) in frame.x.chunks(2).enumerate() {
        match pair {
            [a, b] => p(format_args!(
                "  x{:<2} {:#018x}  x{:<2} {:#018x}\n",
                2 * i,
                a,
                2 * i + 1,
                b
            )),
            [a] => p(format_args!("  x{:<2} {:#018x}\n", 2 * i, a)),
            _ => {}
        }
    }
    p(format_args!(
        "hv: cpu {} stopped\n",
        crate::arch::cpu_index()
    ));
    crate::arch::halt()
}
