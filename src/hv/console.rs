//! The hypervisor's two physical UARTs: the debug console (the board's `debug_uart`
//! alias: boot log, errors, later the monitor and GDB) and the guest console (the
//! first PL011, `serial0`), which carries every VM's emulated UART output.
//!
//! Before the MMU is on, no lock can be taken (exclusives need cacheable memory), so
//! early output goes straight to the device; only the boot CPU runs then. Guest
//! output only exists once guests run, long after the MMU is on.

use crate::arch::pl011::Pl011;
use core::fmt::{self, Write};
use core::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use spin::Mutex;

static DEBUG_BASE: AtomicUsize = AtomicUsize::new(0);
static GUEST_BASE: AtomicUsize = AtomicUsize::new(0);
static DEBUG_LOCK: Mutex<()> = Mutex::new(());
static GUEST_LOCK: Mutex<()> = Mutex::new(());

/// Sets the debug UART (physical address of a PL011).
pub fn set_debug_uart(base: usize) {
    DEBUG_BASE.store(base, Ordering::SeqCst);
}

pub fn set_guest_uart(base: usize) {
    GUEST_BASE.store(base, Ordering::SeqCst);
}

fn uart(base: &AtomicUsize) -> Option<Pl011> {
    match base.load(Ordering::Relaxed) {
        0 => None,
        // SAFETY: the address came from the DTB's PL011 node and is identity-mapped as
        // device memory (or the MMU is off); output is serialised by the locks below.
        b => Some(unsafe { Pl011::new(b) }),
    }
}

struct Raw<'a>(&'a Pl011);

impl Write for Raw<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for b in s.bytes() {
            if b == b'\n' {
                self.0.write_byte(b'\r');
            }
            self.0.write_byte(b);
        }
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
    let Some(u) = uart(&DEBUG_BASE) else { return };
    let _g = DEBUG_LOCK.lock();
    for &b in bytes {
        u.write_byte(b);
    }
}

/// Prints to the debug console; the `println!` macro lands here.
pub fn print(args: fmt::Arguments) {
    let Some(u) = uart(&DEBUG_BASE) else { return };
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
    if let Some(u) = uart(&DEBUG_BASE) {
        let _ = Raw(&u).write_fmt(args);
    }
}

/// A byte typed on the debug console, if any.
pub fn debug_read() -> Option<u8> {
    let u = uart(&DEBUG_BASE)?;
    let _g = DEBUG_LOCK.lock();
    u.read_byte()
}

/// Runs `f` with the debug console to itself: nothing else is printed in between
/// (a snapshot transfer must not be interleaved with other output).
pub fn with_debug_locked(f: impl FnOnce(&mut dyn Write) -> fmt::Result) -> fmt::Result {
    let Some(u) = uart(&DEBUG_BASE) else {
        return Ok(());
    };
    let _g = DEBUG_LOCK.lock();
    f(&mut Raw(&u))
}

/// A byte from the debug console, waiting up to `ticks` counter ticks.
pub fn debug_read_wait(ticks: u64) -> Option<u8> {
    let u = uart(&DEBUG_BASE)?;
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
    let Some(u) = uart(&GUEST_BASE) else { return };
    let _g = GUEST_LOCK.lock();
    for &b in bytes {
        if b == b'\n' {
            u.write_byte(b'\r');
        }
        u.write_byte(b);
    }
}

/// A byte typed on the guest console, if any.
pub fn guest_read() -> Option<u8> {
    let u = uart(&GUEST_BASE)?;
    let _g = GUEST_LOCK.lock();
    u.read_byte()
}

#[macro_export]
macro_rules! println {
    () => { $crate::hv::console::print(format_args!("\n")) };
    ($($arg:tt)*) => { $crate::hv::console::print(format_args!("{}\n", format_args!($($arg)*))) };
}
