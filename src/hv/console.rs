//! The hypervisor's physical UARTs: the debug console (boot log, errors, the
//! monitor and GDB) and the guest console, which carries every VM's emulated UART
//! output. Each is whatever UART the device tree gives (PL011, BCM2835 mini-UART,
//! Cadence, i.MX), driven through the portable drivers in `crate::drivers::uart`
//! (chosen by `compatible`); the two may be different models.
//!
//! Before the MMU is on, no lock can be taken (exclusives need cacheable memory), so
//! early output goes straight to the device; only the boot CPU runs then. Guest
//! output only exists once guests run, long after the MMU is on. The console stays
//! polled; the drivers' interrupt side is there for a ring-buffered console.

use crate::arch::mmio::DeviceMmio;
use crate::drivers::uart::{Model, Uart};
use core::fmt::{self, Write};
use core::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use spin::Mutex;

/// One console slot: the UART's base (0: none) and its model, stored as plain
/// atomics (set once by the boot CPU, read by everyone; no lock needed before
/// the MMU is on).
struct Slot {
    base: AtomicUsize,
    model: AtomicUsize,
}

impl Slot {
    const fn new() -> Self {
        Self {
            base: AtomicUsize::new(0),
            model: AtomicUsize::new(0),
        }
    }

    fn set(&self, base: usize, model: Model) {
        self.model.store(model as usize, Ordering::SeqCst);
        self.base.store(base, Ordering::SeqCst);
    }

    fn uart(&self) -> Option<Uart<DeviceMmio>> {
        let base = self.base.load(Ordering::Relaxed);
        if base == 0 {
            return None;
        }
        let model = MODELS[self.model.load(Ordering::Relaxed) % MODELS.len()];
        // SAFETY: the address came from the DTB's UART node whose `compatible`
        // chose `model`; boot maps its window as device memory before the MMU is
        // on (before that every access is device memory anyway); output is
        // serialised by the locks below.
        Some(Uart::new(unsafe { DeviceMmio::new(base) }, model))
    }
}

/// `Model as usize` back to the model.
const MODELS: [Model; 4] = [Model::Pl011, Model::Bcm2835Aux, Model::Cadence, Model::Imx];

static DEBUG: Slot = Slot::new();
static GUEST: Slot = Slot::new();
static DEBUG_LOCK: Mutex<()> = Mutex::new(());
static GUEST_LOCK: Mutex<()> = Mutex::new(());

/// Sets and initialises the debug UART (its registers: the firmware's baud rate
/// and format kept, FIFOs on, interrupts masked).
pub fn set_debug_uart(base: usize, model: Model) {
    DEBUG.set(base, model);
    if let Some(u) = DEBUG.uart() {
        u.init();
    }
}

/// Sets the guest console's UART; initialises it unless it is the debug UART.
pub fn set_guest_uart(base: usize, model: Model) {
    GUEST.set(base, model);
    if base != DEBUG.base.load(Ordering::Relaxed) {
        if let Some(u) = GUEST.uart() {
            u.init();
        }
    }
}

/// Writes `s` with each `\n` as `\r\n`, for terminals.
fn write_crlf(u: &Uart<DeviceMmio>, s: &[u8]) {
    for (i, line) in s.split(|&b| b == b'\n').enumerate() {
        if i > 0 {
            u.write_all(b"\r\n");
        }
        u.write_all(line);
    }
}

struct Raw<'a>(&'a Uart<DeviceMmio>);

impl Write for Raw<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        write_crlf(self.0, s.as_bytes());
        Ok(())
    }
}

/// While GDB owns the debug UART, the hypervisor's own messages are held here
/// (so they never land inside the packet stream) and printed when it detaches.
static GDB_MODE: AtomicBool = AtomicBool::new(false);
static HELD: Mutex<(heapless::String<2048>, usize)> = Mutex::new((heapless::String::new(), 0));

struct Hold<'a>(&'a mut (heapless::String<2048>, usize));

impl Write for Hold<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for c in s.chars() {
            if self.0 .0.push(c).is_err() {
                self.0 .1 += 1;
            }
        }
        Ok(())
    }
}

/// Hands the debug UART to GDB (messages are held) or takes it back (the held
/// messages are printed, with how many bytes did not fit).
pub fn set_gdb_mode(on: bool) {
    if on {
        GDB_MODE.store(true, Ordering::SeqCst);
        return;
    }
    GDB_MODE.store(false, Ordering::SeqCst);
    let (text, lost) = {
        let mut h = HELD.lock();
        let t = core::mem::take(&mut h.0);
        let lost = core::mem::take(&mut h.1);
        (t, lost)
    };
    if !text.is_empty() {
        print(format_args!("hv: while GDB was attached:\n{text}"));
    }
    if lost > 0 {
        print(format_args!(
            "hv: ({lost} more bytes of messages were dropped)\n"
        ));
    }
}

/// Writes bytes to the debug UART as they are (the GDB stub's packets).
pub fn debug_write_raw(bytes: &[u8]) {
    let Some(u) = DEBUG.uart() else { return };
    let _g = DEBUG_LOCK.lock();
    u.write_all(bytes);
}

/// Prints to the debug console; the `println!` macro lands here.
pub fn print(args: fmt::Arguments) {
    let Some(u) = DEBUG.uart() else { return };
    if GDB_MODE.load(Ordering::Relaxed) {
        let _ = Hold(&mut HELD.lock()).write_fmt(args);
        return;
    }
    if crate::arch::mmu::is_on() {
        let _g = DEBUG_LOCK.lock();
        let _ = Raw(&u).write_fmt(args);
    } else {
        let _ = Raw(&u).write_fmt(args);
    }
}

/// Prints without taking the lock: for the panic and crash paths, where the lock may
/// be held by the very code that failed. Output may interleave; it is never lost.
pub fn print_unlocked(args: fmt::Arguments) {
    if let Some(u) = DEBUG.uart() {
        let _ = Raw(&u).write_fmt(args);
    }
}

/// A byte typed on the debug console, if any.
pub fn debug_read() -> Option<u8> {
    let u = DEBUG.uart()?;
    let _g = DEBUG_LOCK.lock();
    u.read_byte()
}

/// Runs `f` with the debug console to itself: nothing else is printed in between
/// (a snapshot transfer must not be interleaved with other output).
pub fn with_debug_locked(f: impl FnOnce(&mut dyn Write) -> fmt::Result) -> fmt::Result {
    let Some(u) = DEBUG.uart() else {
        return Ok(());
    };
    let _g = DEBUG_LOCK.lock();
    f(&mut Raw(&u))
}

/// A byte from the debug console, waiting up to `ticks` counter ticks.
pub fn debug_read_wait(ticks: u64) -> Option<u8> {
    let u = DEBUG.uart()?;
    let deadline = crate::arch::timer::now() + ticks;
    loop {
        if let Some(b) = u.read_byte() {
            return Some(b);
        }
        if crate::arch::timer::now() > deadline {
            return None;
        }
        core::hint::spin_loop();
    }
}

/// A `core::fmt::Write` onto the debug console (each piece serialised).
pub struct DebugOut;

impl Write for DebugOut {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        print(format_args!("{s}"));
        Ok(())
    }
}

/// Writes guest output bytes to the guest console.
pub fn guest_write(bytes: &[u8]) {
    let Some(u) = GUEST.uart() else { return };
    let _g = GUEST_LOCK.lock();
    write_crlf(&u, bytes);
}

/// A byte typed on the guest console, if any.
pub fn guest_read() -> Option<u8> {
    let u = GUEST.uart()?;
    let _g = GUEST_LOCK.lock();
    u.read_byte()
}

#[macro_export]
macro_rules! println {
    () => { $crate::hv::console::print(format_args!("\n")) };
    ($($arg:tt)*) => { $crate::hv::console::print(format_args!("{}\n", format_args!($($arg)*))) };
}
