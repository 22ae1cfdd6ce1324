//! The debug UART and the guest console's UART driven by their interrupts through
//! receive and transmit rings (`drivers::uart::Port`), and the polled fallback.

use crate::common::{guest, module, qemu, Qemu};
use std::time::{Duration, Instant};

/// The interrupt count of the `n`-th (from 1) complete `uart` line of `name`
/// ("debug UART", "guest console UART"), waiting for it: a slow UART (the
/// mini-UART) delivers a line in pieces.
fn interrupts(q: &Qemu, name: &str, n: usize) -> u64 {
    let deadline = Instant::now() + Duration::from_secs(60);
    let line = loop {
        let text = q.debug.text();
        let found = text
            .lines()
            .filter(|l| l.starts_with(&format!("{name}: ")) && l.ends_with(" to send"))
            .nth(n - 1)
            .map(str::to_owned);
        if let Some(l) = found {
            break l;
        }
        if Instant::now() > deadline {
            q.fail(&format!(
                "no complete `uart` line number {n} for the {name}"
            ));
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    line.split(": ")
        .nth(2)
        .and_then(|r| r.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| q.fail(&format!("cannot read the interrupt count in {line:?}")))
}

/// Issue 12 item 4: with every CPU busy in guests (a VM of two spinning vCPUs on
/// two CPUs), the console answers and typed guest input arrives, and the `uart`
/// command shows that the UARTs' interrupts carried them: the scheduling tick no
/// longer reads the UARTs when their interrupts drive them.
#[test]
fn the_debug_console_answers_by_interrupt_while_every_cpu_runs_guests() {
    let spin =
        module(guest("spin")).bootargs("console=ttyAMA0 count=1000000000000 every=100000000");
    let mut q = qemu().smp(2).vm(module(guest("echo"))).vm(spin).start();
    q.expect_debug("hv: debug UART: driven by its interrupt (INTID 40, on CPU 0)")
        .expect_debug("hv: guest console UART: driven by its interrupt (INTID 33, on CPU 0)")
        .expect_debug("hv: debug console: type 'help' for commands")
        .expect_guest("echo: waiting for input")
        .expect_guest("spin: progress 100000000/");
    q.debug.write(b"uart\r");
    q.expect_debug("debug UART: PL011 at 0x9040000, interrupt-driven (INTID 40): ")
        .expect_debug("guest console UART: PL011 at 0x9000000, interrupt-driven (INTID 33): ");
    let first = interrupts(&q, "debug UART", 1);
    q.check(
        first > 0,
        "the console answered, but no UART interrupt was counted",
    );
    // Typed input for the guest: the guest console UART's interrupt.
    q.guest.write(b"a");
    q.expect_guest("echo: got 'a'");
    q.debug.write(b"vms\r");
    q.expect_debug("vm1: running, 2 vCPU(s)");
    q.debug.write(b"uart\r");
    q.check(
        interrupts(&q, "debug UART", 2) > first,
        "typing more took no more debug UART interrupts",
    );
    q.check(
        interrupts(&q, "guest console UART", 2) > 0,
        "guest input arrived without a guest console UART interrupt",
    );
    q.check(
        !q.debug.contains("PANIC") && !q.debug.contains("CRASH"),
        "the hypervisor failed",
    );
}

/// Without an interrupt (`hv.uart_irq=0` stands for a device tree that gives
/// none), both UARTs are polled as before, said once at boot, and everything
/// still works; a guest's last lines and the power-off message are not lost.
#[test]
fn the_debug_console_is_polled_without_its_interrupt() {
    let mut q = qemu()
        .smp(2)
        .append("hv.uart_irq=0")
        .vm(module(guest("echo")))
        .start();
    q.expect_debug("hv: debug UART: polled on CPU 0 (hv.uart_irq=0)")
        .expect_debug("hv: guest console UART: polled on CPU 0 (hv.uart_irq=0)")
        .expect_guest("echo: waiting for input");
    q.debug.write(b"uart\r");
    q.expect_debug("debug UART: PL011 at 0x9040000, polled: 0 interrupts, ");
    q.guest.write(b"a");
    q.expect_guest("echo: got 'a'");
    q.check(
        q.debug.text().matches("driven by its interrupt").count() == 0,
        "a UART was driven by its interrupt with hv.uart_irq=0",
    );
}

/// On a board's QEMU model, with no guest (`hv.stay=1`): the debug UART's
/// interrupt (the mini-UART's, the Cadence UART's, the i.MX UART's SPI from the
/// board's own device tree) is what brings typed commands in, since an idle CPU 0
/// reads no UART register while the rings are empty.
fn board_uart_by_interrupt(board: &str, uart: &str) {
    let mut q = qemu().board(board).append("hv.stay=1").start();
    q.expect_debug("hv: debug UART: driven by its interrupt (INTID ")
        .expect_debug("hv: no VM is left; staying up for the debug console (hv.stay=1)");
    q.debug.write(b"uart\r");
    q.expect_debug(&format!("debug UART: {uart} at 0x"));
    let n = interrupts(&q, "debug UART", 1);
    q.check(n > 0, "the console answered without a UART interrupt");
    q.debug.write(b"vms\r");
    q.expect_debug("no VMs");
    q.check(
        !q.debug.contains("PANIC") && !q.debug.contains("CRASH"),
        "the hypervisor failed",
    );
}

#[test]
fn rpi4_board_mini_uart_is_driven_by_its_interrupt() {
    board_uart_by_interrupt("rpi4", "bcm2835 mini-UART");
}

#[test]
fn zcu102_board_cadence_uart_is_driven_by_its_interrupt() {
    board_uart_by_interrupt("zcu102", "Cadence UART");
}

#[test]
fn imx8mp_board_imx_uart_is_driven_by_its_interrupt() {
    board_uart_by_interrupt("imx8mp", "i.MX UART");
}
