//! UART drivers chosen by `compatible` (STYLE.md item 15): the PL011, the
//! BCM2835 auxiliary mini-UART, the Cadence UART and the i.MX UART.
//!
//! A board adds no code path here, only a device tree: [`DRIVERS`] maps
//! `compatible` strings to a [`Model`] the way Linux's `of_device_id` tables do,
//! and [`lookup`] takes a node's `compatible` list, most specific first, as
//! Linux's `of_match_node` does. [`Uart`] is one API over all four models:
//!
//! * [`Uart::init`] keeps the firmware's baud rate and frame format (a board's
//!   boot firmware set them for the line the user's terminal expects; QEMU
//!   ignores them), enables the transmitter, the receiver and the FIFOs, and
//!   masks every interrupt.
//! * [`Uart::write_some`] never waits: it writes as many bytes as the transmit
//!   FIFO takes now. Where the device says the FIFO is empty (all four can) it
//!   writes a FIFO's worth after one status read; where it tells the fill level
//!   (the mini-UART) it writes exactly the free space; only a partly full FIFO
//!   on a device that has no level register costs a status read per byte.
//!   [`Uart::write_all`] loops over it for the polled console.
//! * [`Uart::set_interrupts`], [`Uart::pending_interrupts`] and
//!   [`Uart::ack_interrupts`] are the interrupt side a ring-buffered console
//!   needs: receive (data or receive timeout) and transmit (FIFO has room).
//!
//! * [`Rings`] drives a UART through a receive and a transmit [`Ring`]: its
//!   [`Rings::service`] (the interrupt handler's body, or a poll where the
//!   device tree gives no interrupt) moves what arrived into one and what the
//!   FIFO takes from the other, and enables exactly the interrupts there is
//!   work for.
//! * [`Port`] is one UART as the consoles use it: the rings, the lock over its
//!   registers, interrupt-driven or polled (chosen once at boot), and counters.
//!
//! Registers are reached through [`Mmio`]: the arch layer implements it with
//! volatile accesses, the host tests with fakes that model each device's
//! status bits and FIFOs (`fake.rs`), so every register sequence is tested on
//! the host.
#![forbid(unsafe_code)]

mod bcm2835_aux;
mod cadence;
mod imx;
mod pl011;
mod port;
mod ring;

pub use port::{Port, Stats as PortStats};
pub use ring::Ring;

#[cfg(test)]
mod fake;
#[cfg(test)]
mod tests;

/// 32-bit register access at a byte offset from the device's base.
pub trait Mmio {
    /// Reads the register at `offset`.
    fn read32(&self, offset: usize) -> u32;
    /// Writes `value` to the register at `offset`.
    fn write32(&self, offset: usize, value: u32);
}

/// The UART models the hypervisor drives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Model {
    /// Arm PrimeCell PL011 (QEMU `virt`, the Raspberry Pi's `uart0`).
    Pl011,
    /// The BCM2835 auxiliary mini-UART (the Raspberry Pi's GPIO 14/15 console).
    Bcm2835Aux,
    /// The Cadence UART (Zynq UltraScale+: ZCU102).
    Cadence,
    /// The i.MX UART (i.MX 6/7/8, the i.MX 8M Plus EVK).
    Imx,
}

impl Model {
    /// How people call it, for the console (`hv: debug console: ... at 0x...`).
    pub fn name(self) -> &'static str {
        match self {
            Model::Pl011 => "PL011",
            Model::Bcm2835Aux => "bcm2835 mini-UART",
            Model::Cadence => "Cadence UART",
            Model::Imx => "i.MX UART",
        }
    }

    /// Depth of the transmit (and receive) FIFO in bytes: the most
    /// [`Uart::write_some`] writes after seeing the FIFO empty. The PL011's is
    /// 16 (32 from r1p5 on, which we do not rely on); the mini-UART's 8; the
    /// Cadence UART's 64; the i.MX UART's 32.
    pub fn fifo_depth(self) -> usize {
        match self {
            Model::Pl011 => 16,
            Model::Bcm2835Aux => 8,
            Model::Cadence => 64,
            Model::Imx => 32,
        }
    }

    /// The size of the register window the driver uses (for the EL2 map).
    pub fn window(self) -> usize {
        match self {
            Model::Pl011 => 0x1000,
            Model::Bcm2835Aux => 0x40,
            Model::Cadence => 0x1000,
            Model::Imx => 0x1000,
        }
    }
}

impl core::fmt::Display for Model {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.name())
    }
}

/// `compatible` strings and the model that drives them, as Linux's drivers
/// list them (`amba-pl011.c` matches the PrimeCell `arm,pl011`;
/// `8250_bcm2835aux.c`; `xilinx_uartps.c`; `imx.c`). The i.MX UARTs of later
/// SoCs (`fsl,imx8mp-uart`, `fsl,imx8mm-uart`, `fsl,imx7d-uart`, ...) list
/// `fsl,imx6q-uart` or `fsl,imx21-uart` after their own string, so the
/// fallbacks find them; the i.MX 8M Plus's own string is listed too. The
/// i.MX1's UART (`fsl,imx1-uart`) has another register layout and is not here.
pub const DRIVERS: &[(&str, Model)] = &[
    ("arm,pl011", Model::Pl011),
    ("brcm,bcm2835-aux-uart", Model::Bcm2835Aux),
    ("cdns,uart-r1p12", Model::Cadence),
    ("cdns,uart-r1p8", Model::Cadence),
    ("xlnx,xuartps", Model::Cadence),
    ("xlnx,zynqmp-uart", Model::Cadence),
    ("fsl,imx21-uart", Model::Imx),
    ("fsl,imx53-uart", Model::Imx),
    ("fsl,imx6q-uart", Model::Imx),
    ("fsl,imx8mp-uart", Model::Imx),
];

/// The model for a node whose `compatible` list is `compatible` (most
/// specific first): the first string of the list that [`DRIVERS`] knows.
pub fn lookup<'a>(compatible: impl IntoIterator<Item = &'a str>) -> Option<Model> {
    compatible
        .into_iter()
        .find_map(|c| DRIVERS.iter().find(|(s, _)| *s == c).map(|&(_, m)| m))
}

/// Which interrupt conditions are pending (or to acknowledge).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Pending {
    /// Received data waits (or the receive timeout fired).
    pub rx: bool,
    /// The transmit FIFO has room (fell to its trigger level or emptied).
    pub tx: bool,
}

/// How many status reads [`Uart::flush`] and [`Uart::init`] spend waiting for
/// the transmitter before giving up: a UART that never reports idle (absent,
/// unclocked) must not hang the hypervisor. At 115200 baud a full 64-byte
/// FIFO drains in under 6 ms, far fewer reads than this.
pub const IDLE_POLLS: usize = 1 << 20;

/// One UART of a known model.
pub struct Uart<M: Mmio> {
    mmio: M,
    model: Model,
}

impl<M: Mmio> Uart<M> {
    /// A driver for the `model` UART behind `mmio`. Touches no register.
    pub const fn new(mmio: M, model: Model) -> Self {
        Self { mmio, model }
    }

    /// The model.
    pub fn model(&self) -> Model {
        self.model
    }

    /// The register access (the fakes' logs in tests).
    pub fn mmio(&self) -> &M {
        &self.mmio
    }

    /// Depth of the transmit FIFO in bytes.
    pub fn fifo_depth(&self) -> usize {
        self.model.fifo_depth()
    }

    /// Keeps the firmware's baud rate and format; enables transmitter,
    /// receiver and FIFOs; masks and clears every interrupt.
    pub fn init(&self) {
        let m = &self.mmio;
        match self.model {
            Model::Pl011 => pl011::init(m),
            Model::Bcm2835Aux => bcm2835_aux::init(m),
            Model::Cadence => cadence::init(m),
            Model::Imx => imx::init(m),
        }
    }

    /// Writes as many of `bytes` as the transmit FIFO takes now; returns how
    /// many. Never waits.
    pub fn write_some(&self, bytes: &[u8]) -> usize {
        if bytes.is_empty() {
            return 0;
        }
        let m = &self.mmio;
        match self.model {
            Model::Pl011 => pl011::write_some(m, bytes),
            Model::Bcm2835Aux => bcm2835_aux::write_some(m, bytes),
            Model::Cadence => cadence::write_some(m, bytes),
            Model::Imx => imx::write_some(m, bytes),
        }
    }

    /// Writes all of `bytes`, waiting for FIFO room as needed (the polled console).
    pub fn write_all(&self, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            let n = self.write_some(bytes);
            bytes = &bytes[n..];
            if n == 0 {
                core::hint::spin_loop();
            }
        }
    }

    /// A received byte, if one waits.
    pub fn read_byte(&self) -> Option<u8> {
        let m = &self.mmio;
        match self.model {
            Model::Pl011 => pl011::read_byte(m),
            Model::Bcm2835Aux => bcm2835_aux::read_byte(m),
            Model::Cadence => cadence::read_byte(m),
            Model::Imx => imx::read_byte(m),
        }
    }

    /// Whether everything written has left the transmitter (FIFO empty and
    /// the shift register idle).
    pub fn tx_idle(&self) -> bool {
        let m = &self.mmio;
        match self.model {
            Model::Pl011 => pl011::tx_idle(m),
            Model::Bcm2835Aux => bcm2835_aux::tx_idle(m),
            Model::Cadence => cadence::tx_idle(m),
            Model::Imx => imx::tx_idle(m),
        }
    }

    /// Waits until the transmitter is idle (bounded by [`IDLE_POLLS`]);
    /// returns whether it got there.
    pub fn flush(&self) -> bool {
        (0..IDLE_POLLS).any(|_| self.tx_idle())
    }

    /// Enables exactly the receive and/or transmit interrupts.
    pub fn set_interrupts(&self, rx: bool, tx: bool) {
        let m = &self.mmio;
        match self.model {
            Model::Pl011 => pl011::set_interrupts(m, rx, tx),
            Model::Bcm2835Aux => bcm2835_aux::set_interrupts(m, rx, tx),
            Model::Cadence => cadence::set_interrupts(m, rx, tx),
            Model::Imx => imx::set_interrupts(m, rx, tx),
        }
    }

    /// The enabled interrupt conditions that are asserted now.
    pub fn pending_interrupts(&self) -> Pending {
        let m = &self.mmio;
        match self.model {
            Model::Pl011 => pl011::pending(m),
            Model::Bcm2835Aux => bcm2835_aux::pending(m),
            Model::Cadence => cadence::pending(m),
            Model::Imx => imx::pending(m),
        }
    }

    /// Acknowledges the given conditions where the device latches them (the
    /// PL011's and the Cadence UART's interrupt status is sticky). On the
    /// mini-UART and the i.MX UART the conditions follow the FIFOs' state and
    /// clear by reading data or writing the FIFO above its trigger level; this
    /// writes nothing there.
    pub fn ack_interrupts(&self, which: Pending) {
        let m = &self.mmio;
        match self.model {
            Model::Pl011 => pl011::ack(m, which),
            Model::Cadence => cadence::ack(m, which),
            Model::Bcm2835Aux | Model::Imx => {}
        }
    }
}

/// Writes `bytes` one at a time while `has_room` says the FIFO takes one more
/// (a status read per byte): for a partly full FIFO on a device that does not
/// tell its fill level.
fn write_while<M: Mmio>(m: &M, bytes: &[u8], data: usize, has_room: impl Fn(&M) -> bool) -> usize {
    let mut n = 0;
    while n < bytes.len() && has_room(m) {
        m.write32(data, u32::from(bytes[n]));
        n += 1;
    }
    n
}

/// Writes up to `depth` of `bytes` without reading status: the FIFO was seen empty.
fn write_burst<M: Mmio>(m: &M, bytes: &[u8], data: usize, depth: usize) -> usize {
    let n = bytes.len().min(depth);
    for &b in &bytes[..n] {
        m.write32(data, u32::from(b));
    }
    n
}

/// A UART driven through rings: received bytes wait in `rx` for the console,
/// written bytes in `tx` for room in the FIFO. The producers of `tx` and the
/// consumers of `rx` are the callers' (each side serialised by them); the
/// other side of each is [`Rings::service`], which the caller serialises with
/// every other access to the device's registers.
pub struct Rings<const RX: usize, const TX: usize> {
    pub rx: Ring<RX>,
    pub tx: Ring<TX>,
    /// Interrupt-driven (the device tree gave the UART an interrupt and it is
    /// enabled at the interrupt controller); else every service is a poll.
    irq: core::sync::atomic::AtomicBool,
    /// The interrupts enabled at the device: bit 0 receive, bit 1 transmit.
    enabled: core::sync::atomic::AtomicU8,
    /// A reader holds the line and polls it tightly: the receive interrupt
    /// stays masked (it could not be taken anyway, and on an emulator each
    /// byte would still cost an interrupt update).
    held: core::sync::atomic::AtomicBool,
}

impl<const RX: usize, const TX: usize> Default for Rings<RX, TX> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const RX: usize, const TX: usize> Rings<RX, TX> {
    pub const fn new() -> Self {
        Self {
            rx: Ring::new(),
            tx: Ring::new(),
            irq: core::sync::atomic::AtomicBool::new(false),
            enabled: core::sync::atomic::AtomicU8::new(0),
            held: core::sync::atomic::AtomicBool::new(false),
        }
    }

    /// Whether the device's interrupt drives the rings.
    pub fn interrupt_driven(&self) -> bool {
        self.irq.load(core::sync::atomic::Ordering::Acquire)
    }

    /// Switches to interrupt-driven service (the interrupt is routed and
    /// enabled at the interrupt controller) or back to polling (every device
    /// interrupt masked), and services once.
    pub fn set_interrupt_driven<M: Mmio>(&self, uart: &Uart<M>, on: bool) {
        self.irq.store(on, core::sync::atomic::Ordering::Release);
        // Force the mask to be written.
        self.enabled
            .store(0xff, core::sync::atomic::Ordering::Relaxed);
        self.service(uart);
    }

    /// A reader's look at the device while it polls tightly (GDB or a transfer
    /// owns the line, interrupts masked): takes what arrived while `rx` has
    /// room, and nothing else, so an idle line costs one status read. Where
    /// that would not do, it is a full [`Rings::service`]: bytes wait in `tx`
    /// (they must not wait for an interrupt the reader keeps masked), or the
    /// receive interrupt was masked for a full `rx` (to enable it again).
    pub fn poll<M: Mmio>(&self, uart: &Uart<M>) -> usize {
        use core::sync::atomic::Ordering;
        let rx_masked = self.interrupt_driven()
            && !self.held()
            && self.enabled.load(Ordering::Relaxed) & 1 == 0;
        if rx_masked || !self.tx.is_empty() {
            return self.service(uart);
        }
        let mut received = 0;
        while self.rx.free() > 0 {
            let Some(b) = uart.read_byte() else { break };
            self.rx.push(&[b]);
            received += 1;
        }
        received
    }

    /// Whether a reader holds the line ([`Rings::set_held`]).
    pub fn held(&self) -> bool {
        self.held.load(core::sync::atomic::Ordering::Relaxed)
    }

    /// A reader takes the line to poll it tightly (GDB, a console command such
    /// as a snapshot transfer): the receive interrupt is masked until it gives
    /// the line back, when the mask is written again and the device serviced.
    pub fn set_held<M: Mmio>(&self, uart: &Uart<M>, on: bool) {
        use core::sync::atomic::Ordering;
        if self.held.swap(on, Ordering::Relaxed) == on {
            return;
        }
        self.enabled.store(0xff, Ordering::Relaxed);
        self.service(uart);
    }

    /// Moves bytes between the device and the rings: acknowledges what the
    /// device latched, takes received bytes while `rx` has room, gives the
    /// transmit FIFO what it takes from `tx`, then (interrupt-driven) enables
    /// the receive interrupt while `rx` has room and the transmit interrupt
    /// while `tx` holds bytes, writing the mask only when it changes. Returns
    /// how many bytes were received.
    pub fn service<M: Mmio>(&self, uart: &Uart<M>) -> usize {
        let irq = self.interrupt_driven();
        if irq {
            let pending = uart.pending_interrupts();
            if pending != Pending::default() {
                uart.ack_interrupts(pending);
            }
        }
        let mut received = 0;
        while self.rx.free() > 0 {
            let Some(b) = uart.read_byte() else { break };
            self.rx.push(&[b]);
            received += 1;
        }
        self.fill_fifo(uart);
        self.update_mask(uart);
        received
    }

    /// A writer's service: gives the transmit FIFO what it takes from `tx`,
    /// and (interrupt-driven) enables the transmit interrupt while bytes
    /// remain. The receive side is left to its interrupt or to readers, so a
    /// write costs the status reads a polled write did, no more.
    pub fn transmit<M: Mmio>(&self, uart: &Uart<M>) {
        self.fill_fifo(uart);
        self.update_mask(uart);
    }

    /// Moves bytes from `tx` into the FIFO while it takes them.
    fn fill_fifo<M: Mmio>(&self, uart: &Uart<M>) {
        let mut chunk = [0u8; 64];
        loop {
            let n = self.tx.peek(&mut chunk[..uart.fifo_depth().min(64)]);
            if n == 0 {
                break;
            }
            let w = uart.write_some(&chunk[..n]);
            self.tx.consume(w);
            if w < n {
                break;
            }
        }
    }

    /// Interrupt-driven: the receive interrupt while `rx` has room and no
    /// reader holds the line, the
    /// transmit interrupt while `tx` holds bytes; polled: none. Writes the
    /// mask only when it changes.
    fn update_mask<M: Mmio>(&self, uart: &Uart<M>) {
        use core::sync::atomic::Ordering;
        let want = if self.interrupt_driven() {
            u8::from(self.rx.free() > 0 && !self.held()) | u8::from(!self.tx.is_empty()) << 1
        } else {
            0
        };
        if self.enabled.swap(want, Ordering::Relaxed) != want {
            uart.set_interrupts(want & 1 != 0, want & 2 != 0);
        }
    }
}
