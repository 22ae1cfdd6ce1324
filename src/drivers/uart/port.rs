//! One UART as the hypervisor's consoles use it: its [`Rings`], the lock that
//! serialises its registers, whether its interrupt drives it, and what it has
//! done (for the console's `uart` command).
//!
//! **Two modes, chosen once at boot** ([`Port::start`]). With an interrupt
//! (the device tree gives one and the interrupt controller delivers it), the
//! interrupt handler's [`Port::interrupt`] moves what arrived into the receive
//! ring and refills the transmit FIFO from the transmit ring; readers take
//! bytes from the ring, writers leave them in the ring and return as soon as
//! they fit (the transmit interrupt sends the rest). Without one, every read
//! polls the device when the ring is empty and every write waits until its
//! bytes are in the FIFO, as a polled console always did. Before `start`
//! (the MMU still off: no lock can be taken) reads and writes go straight to
//! the device.
//!
//! **Who calls what.** Readers (the console, the GDB stub, a snapshot transfer:
//! all on CPU 0) are one consumer of the receive ring; writers are serialised
//! by the caller's own lock (the console's line). Everything that touches the
//! registers (the interrupt's full [`Port::service`], a writer's transmit, a
//! reader's poll) runs under `regs`, which makes its holder the one producer
//! of the receive ring and the one consumer of the transmit ring. A packet costs one ring operation per chunk, never a lock
//! per byte. The lock is never held while waiting for another one, and EL2
//! runs with interrupts masked, so the handler cannot deadlock against a
//! writer.
//!
//! **Holding the line.** While GDB is attached or a console command runs (a
//! snapshot transfer), CPU 0 polls the line tightly with interrupts masked:
//! [`Port::hold`] masks the receive interrupt meanwhile (on an emulator every
//! received byte would otherwise still cost an interrupt update, which made a
//! transfer several times slower) and the port counts as polled.
//!
//! **Nothing lost.** A reader that finds the ring empty polls the device
//! itself (a snapshot transfer or GDB polls tightly that way while it owns the
//! line): one status read when nothing came, a full service when output waits
//! in the ring or a full ring had masked the receive interrupt. [`Port::needs_service`] is the scheduler tick's cheap test: false
//! only while the interrupt drives the port and both rings are empty. Before
//! the machine powers off, [`Port::drain`] sends whatever waits.
#![forbid(unsafe_code)]

use super::{Mmio, Rings, Uart, IDLE_POLLS};
use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};

/// How a port is driven, and what it did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Stats {
    /// The rings are in use ([`Port::start`] ran).
    pub started: bool,
    /// The GIC INTID of the interrupt that drives it (None: polled).
    pub intid: Option<u32>,
    /// Interrupts taken.
    pub interrupts: u64,
    /// Bytes received through the rings.
    pub received: u64,
    /// Bytes written through the rings.
    pub sent: u64,
    /// Bytes waiting in the receive ring and the transmit ring now.
    pub rx_waiting: usize,
    pub tx_waiting: usize,
}

/// A UART driven through a receive ring of `RX` bytes and a transmit ring of
/// `TX` bytes.
pub struct Port<const RX: usize, const TX: usize> {
    rings: Rings<RX, TX>,
    /// Serialises every register access once started.
    regs: spin::Mutex<()>,
    started: AtomicBool,
    /// The interrupt that drives the port (0: none, polled).
    intid: AtomicU32,
    /// Interrupt-driven and no reader holds the line: a look needs to poll
    /// only when a ring holds bytes (one load for [`Port::needs_service`];
    /// false at first, so the statics stay in .bss, out of the Image file).
    quiet: AtomicBool,
    interrupts: AtomicU64,
    received: AtomicU64,
    sent: AtomicU64,
}

impl<const RX: usize, const TX: usize> Default for Port<RX, TX> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const RX: usize, const TX: usize> Port<RX, TX> {
    pub const fn new() -> Self {
        Self {
            rings: Rings::new(),
            regs: spin::Mutex::new(()),
            started: AtomicBool::new(false),
            intid: AtomicU32::new(0),
            quiet: AtomicBool::new(false),
            interrupts: AtomicU64::new(0),
            received: AtomicU64::new(0),
            sent: AtomicU64::new(0),
        }
    }

    /// Puts the rings in use: driven by interrupt `intid` (already routed and
    /// enabled at the interrupt controller; 0 is no interrupt) or polled. The
    /// caller serialises this with the port's writers.
    pub fn start<M: Mmio>(&self, uart: &Uart<M>, intid: Option<u32>) {
        let _g = self.regs.lock();
        self.intid.store(intid.unwrap_or(0), Ordering::Relaxed);
        self.quiet.store(intid.is_some(), Ordering::Relaxed);
        self.rings.set_interrupt_driven(uart, intid.is_some());
        self.started.store(true, Ordering::Release);
    }

    /// The interrupt that drives the port, if one does.
    #[inline(always)]
    pub fn intid(&self) -> Option<u32> {
        match self.intid.load(Ordering::Relaxed) {
            0 => None,
            i => Some(i),
        }
    }

    /// Whether its interrupt drives the port.
    #[inline(always)]
    pub fn interrupt_driven(&self) -> bool {
        self.intid.load(Ordering::Relaxed) != 0
    }

    /// Moves bytes between the device and the rings (under the register lock);
    /// returns how many arrived. Not inlined: the drivers' code exists once.
    #[inline(never)]
    pub fn service<M: Mmio>(&self, uart: &Uart<M>) -> usize {
        let _g = self.regs.lock();
        let n = self.rings.service(uart);
        if n > 0 {
            self.received.fetch_add(n as u64, Ordering::Relaxed);
        }
        n
    }

    /// A reader's poll of the device (its receive side only, unless that would
    /// not do: [`Rings::poll`]), under the register lock; returns how many bytes
    /// arrived.
    fn poll<M: Mmio>(&self, uart: &Uart<M>) -> usize {
        let _g = self.regs.lock();
        let n = self.rings.poll(uart);
        if n > 0 {
            self.received.fetch_add(n as u64, Ordering::Relaxed);
        }
        n
    }

    /// The interrupt handler's body: one interrupt taken, the device serviced.
    /// Returns how many bytes arrived.
    pub fn interrupt<M: Mmio>(&self, uart: &Uart<M>) -> usize {
        self.interrupts.fetch_add(1, Ordering::Relaxed);
        self.service(uart)
    }

    /// Whether a poll has anything to do: the port is polled (or held by a
    /// reader), or a ring holds bytes (received and not read yet, or waiting for the FIFO). The
    /// scheduler tick's test: a few loads, no lock, no register.
    #[inline(always)]
    pub fn needs_service(&self) -> bool {
        !self.quiet.load(Ordering::Relaxed)
            || !self.rings.rx.is_empty()
            || !self.rings.tx.is_empty()
    }

    /// A reader takes the line to poll it tightly, or gives it back
    /// ([`Rings::set_held`]): while held, the receive interrupt is masked and
    /// the port counts as polled ([`Port::needs_service`]).
    pub fn hold<M: Mmio>(&self, uart: &Uart<M>, on: bool) {
        if !self.started.load(Ordering::Acquire) {
            return;
        }
        let _g = self.regs.lock();
        self.quiet
            .store(!on && self.interrupt_driven(), Ordering::Relaxed);
        self.rings.set_held(uart, on);
    }

    /// Writes all of `bytes`. Interrupt-driven: returns once they are in the
    /// ring (the transmit interrupt sends what the FIFO does not take now),
    /// waiting only while the ring is full. Polled: returns once they are in
    /// the FIFO. Not started: straight to the device.
    pub fn write<M: Mmio>(&self, uart: &Uart<M>, mut bytes: &[u8]) {
        if !self.started.load(Ordering::Acquire) {
            uart.write_all(bytes);
            return;
        }
        self.sent.fetch_add(bytes.len() as u64, Ordering::Relaxed);
        loop {
            let n = self.rings.tx.push(bytes);
            bytes = &bytes[n..];
            self.transmit(uart);
            if bytes.is_empty() {
                break;
            }
            core::hint::spin_loop();
        }
        if !self.interrupt_driven() {
            while !self.rings.tx.is_empty() {
                core::hint::spin_loop();
                self.transmit(uart);
            }
        }
    }

    /// A writer's share: the transmit ring into the FIFO ([`Rings::transmit`]),
    /// under the register lock.
    fn transmit<M: Mmio>(&self, uart: &Uart<M>) {
        let _g = self.regs.lock();
        self.rings.transmit(uart);
    }

    /// A received byte, if one waits (the device is serviced when the ring is
    /// empty). One consumer at a time.
    pub fn read_byte<M: Mmio>(&self, uart: &Uart<M>) -> Option<u8> {
        let mut b = [0];
        (self.read_some(uart, &mut b) == 1).then_some(b[0])
    }

    /// Takes what was received, up to `buf.len()` bytes (the device is
    /// serviced when the ring is empty); returns how many. One consumer at a
    /// time.
    pub fn read_some<M: Mmio>(&self, uart: &Uart<M>, buf: &mut [u8]) -> usize {
        if buf.is_empty() {
            return 0;
        }
        if !self.started.load(Ordering::Acquire) {
            let mut n = 0;
            while n < buf.len() {
                let Some(b) = uart.read_byte() else { break };
                buf[n] = b;
                n += 1;
            }
            return n;
        }
        let n = self.rings.rx.pop(buf);
        if n > 0 {
            return n;
        }
        self.poll(uart);
        self.rings.rx.pop(buf)
    }

    /// Sends everything that waits in the transmit ring and waits for the
    /// transmitter to go idle (bounded by [`IDLE_POLLS`] each): before the
    /// machine powers off or stops. Returns whether everything left.
    pub fn drain<M: Mmio>(&self, uart: &Uart<M>) -> bool {
        if self.started.load(Ordering::Acquire) {
            let _ = (0..IDLE_POLLS).any(|_| {
                self.service(uart);
                self.rings.tx.is_empty()
            });
        }
        self.rings.tx.is_empty() && uart.flush()
    }

    /// For a crash: sends what waits in the transmit ring without waiting
    /// for the lock for ever (the failing code may hold it). Returns whether
    /// the ring could be emptied.
    pub fn drain_for_crash<M: Mmio>(&self, uart: &Uart<M>) -> bool {
        if !self.started.load(Ordering::Acquire) {
            return true;
        }
        let Some(_g) = (0..IDLE_POLLS).find_map(|_| self.regs.try_lock()) else {
            return false;
        };
        let mut chunk = [0u8; 64];
        loop {
            let n = self.rings.tx.peek(&mut chunk);
            if n == 0 {
                return true;
            }
            uart.write_all(&chunk[..n]);
            self.rings.tx.consume(n);
        }
    }

    /// How the port is driven, and what it did.
    pub fn stats(&self) -> Stats {
        Stats {
            started: self.started.load(Ordering::Acquire),
            intid: self.intid(),
            interrupts: self.interrupts.load(Ordering::Relaxed),
            received: self.received.load(Ordering::Relaxed),
            sent: self.sent.load(Ordering::Relaxed),
            rx_waiting: self.rings.rx.len(),
            tx_waiting: self.rings.tx.len(),
        }
    }
}
