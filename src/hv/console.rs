//! The hypervisor's physical UARTs: the debug console (boot log, errors, the
//! monitor and GDB) and the guest console, which carries every VM's emulated UART
//! output. Each is whatever UART the device tree gives (PL011, BCM2835 mini-UART,
//! Cadence, i.MX), driven through the portable drivers in `crate::drivers::uart`
//! (chosen by `compatible`); the two may be different models.
//!
//! On a board with one serial cable (the guest console's UART is the debug UART)
//! both share the line through `crate::serial_mux`: guest output passes through,
//! three `Ctrl-]` switch where typed input goes (the hypervisor's console, where
//! GDB can still take the line, or a VM), and while GDB owns the line guest output
//! is held. With two UARTs, the split stays as it was.
//!
//! Before the MMU is on, no lock can be taken (exclusives need cacheable memory), so
//! early output goes straight to the device; only the boot CPU runs then. Guest
//! output only exists once guests run, long after the MMU is on. The console stays
//! polled, and never waits for input in an exception handler: CPU 0 reads what has
//! arrived on each tick and in its idle loop (tightly while GDB owns the line and
//! CPU 0 has nothing else to run); the drivers' interrupt side is there for a
//! ring-buffered console.

use crate::arch::mmio::DeviceMmio;
use crate::drivers::uart::{Model, Uart};
use crate::serial_mux::{Event, InputMux, OutputMux, Target, Writer};
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

    #[inline(always)]
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
/// The debug line: its lock, and who wrote last (a line break goes between a
/// guest's half line and a hypervisor message when both share it).
static LINE: Mutex<OutputMux> = Mutex::new(OutputMux::new());
static GUEST_LOCK: Mutex<()> = Mutex::new(());
/// One cable: where typed input goes, and what was typed for whom.
static INPUT: Mutex<InputMux> = Mutex::new(InputMux::new());
static HV_INPUT: Mutex<heapless::Deque<u8, 64>> = Mutex::new(heapless::Deque::new());
static VM_INPUT: Mutex<heapless::Deque<(usize, u8), 64>> = Mutex::new(heapless::Deque::new());

/// Sets and initialises the debug UART (its registers: the firmware's baud rate
/// and format kept, FIFOs on, interrupts masked).
pub fn set_debug_uart(base: usize, model: Model) {
    DEBUG.set(base, model);
    if let Some(u) = DEBUG.uart() {
        u.init();
    }
}

/// Sets the guest console's UART; initialises it unless it is the debug UART (one
/// serial cable: guests' output and input then share the debug line).
pub fn set_guest_uart(base: usize, model: Model) {
    GUEST.set(base, model);
    if !single_cable() {
        if let Some(u) = GUEST.uart() {
            u.init();
        }
    }
}

/// How many VMs typed input can be switched to (one serial cable).
pub fn set_vms(vms: usize) {
    INPUT.lock().set_vms(vms);
}

/// The guests' consoles share the debug UART's line.
pub fn single_cable() -> bool {
    let g = GUEST.base.load(Ordering::Relaxed);
    g != 0 && g == DEBUG.base.load(Ordering::Relaxed)
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

/// The debug line as a `fmt::Write`, for a writer, with the line's state.
struct Line<'a> {
    uart: &'a Uart<DeviceMmio>,
    mux: &'a mut OutputMux,
}

impl Write for Line<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let u = self.uart;
        self.mux
            .write(Writer::Hypervisor, s.as_bytes(), |b| write_crlf(u, b));
        Ok(())
    }
}

/// Straight to the device, no state: before the MMU is on, and when crashing.
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

/// Hands the debug UART to GDB (messages, and guests' output on a shared line, are
/// held; typed bytes are all GDB's) or takes it back (the held output is printed,
/// with how many bytes did not fit).
pub fn set_gdb_mode(on: bool) {
    INPUT.lock().set_gdb(on);
    if on {
        GDB_MODE.store(true, Ordering::SeqCst);
        if let Some(u) = DEBUG.uart() {
            LINE.lock().set_gdb(true, b"", |b| write_crlf(&u, b));
        }
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
    if let Some(u) = DEBUG.uart() {
        LINE.lock()
            .set_gdb(false, b"hv: guest output while GDB was attached:\n", |b| {
                write_crlf(&u, b)
            });
    }
}

/// Writes bytes to the debug UART as they are (the GDB stub's packets).
pub fn debug_write_raw(bytes: &[u8]) {
    if bytes.is_empty() {
        return;
    }
    let Some(u) = DEBUG.uart() else { return };
    LINE.lock()
        .write(Writer::Hypervisor, bytes, |b| u.write_all(b));
}

/// Prints to the debug console; the `println!` macro lands here.
pub fn print(args: fmt::Arguments) {
    let Some(u) = DEBUG.uart() else { return };
    if GDB_MODE.load(Ordering::Relaxed) {
        let _ = Hold(&mut HELD.lock()).write_fmt(args);
        return;
    }
    if crate::arch::mmu::is_on() {
        let mut mux = LINE.lock();
        let _ = Line {
            uart: &u,
            mux: &mut mux,
        }
        .write_fmt(args);
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

/// One cable: reads what was typed and sorts it by target (the hypervisor's
/// console or a VM), saying so when three `Ctrl-]` switch the target.
fn pump() {
    let Some(u) = DEBUG.uart() else { return };
    let mut switched = None;
    let vms;
    {
        let mut input = INPUT.lock();
        vms = input.vms();
        let (mut hv, mut vm) = (HV_INPUT.lock(), VM_INPUT.lock());
        while !hv.is_full() && !vm.is_full() {
            let Some(b) = u.read_byte() else { break };
            input.input(b, |e| match e {
                Event::Hypervisor(b) => {
                    let _ = hv.push_back(b);
                }
                Event::Vm(n, b) => {
                    let _ = vm.push_back((n, b));
                }
                Event::Switched(t) => switched = Some(t),
            });
        }
    }
    match switched {
        Some(Target::Vm(n)) => print(format_args!(
            "\nhv: typed input goes to vm{n} now (Ctrl-] three times: the next one)\n"
        )),
        Some(Target::Hypervisor) if vms == 0 => print(format_args!(
            "\nhv: no VM to switch typed input to: it stays with the hypervisor console\n"
        )),
        Some(Target::Hypervisor) => print(format_args!(
            "\nhv: typed input goes to the hypervisor console now (Ctrl-] three times: the next one)\n"
        )),
        None => {}
    }
}

/// A byte typed on the debug console, if any (one cable: if input goes there).
pub fn debug_read() -> Option<u8> {
    if single_cable() {
        pump();
        return HV_INPUT.lock().pop_front();
    }
    let u = DEBUG.uart()?;
    let _g = INPUT.lock();
    u.read_byte()
}

/// Reads every byte typed on the debug console that fits in `buf` (one cable: that
/// went to the hypervisor's console), taking each lock once; returns how many. The
/// GDB stub's input: a packet is not a lock per byte.
pub fn debug_read_some(buf: &mut [u8]) -> usize {
    let mut n = 0;
    if single_cable() {
        while n < buf.len() {
            pump();
            let mut q = HV_INPUT.lock();
            if q.is_empty() {
                break;
            }
            while n < buf.len() {
                let Some(b) = q.pop_front() else { break };
                buf[n] = b;
                n += 1;
            }
        }
        return n;
    }
    let Some(u) = DEBUG.uart() else { return 0 };
    let _g = INPUT.lock();
    while n < buf.len() {
        let Some(b) = u.read_byte() else { break };
        buf[n] = b;
        n += 1;
    }
    n
}

/// Runs `f` with the debug console to itself: nothing else is printed in between
/// (a snapshot transfer must not be interleaved with other output).
pub fn with_debug_locked(f: impl FnOnce(&mut dyn Write) -> fmt::Result) -> fmt::Result {
    let Some(u) = DEBUG.uart() else {
        return Ok(());
    };
    let mut mux = LINE.lock();
    f(&mut Line {
        uart: &u,
        mux: &mut mux,
    })
}

/// A byte from the debug console, waiting up to `ticks` counter ticks.
pub fn debug_read_wait(ticks: u64) -> Option<u8> {
    let deadline = crate::arch::timer::now() + ticks;
    loop {
        if let Some(b) = debug_read() {
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

/// Writes guest output bytes to the guest console (one cable: onto the shared
/// line, held while GDB owns it).
pub fn guest_write(bytes: &[u8]) {
    if single_cable() {
        let Some(u) = DEBUG.uart() else { return };
        LINE.lock()
            .write(Writer::Guest, bytes, |b| write_crlf(&u, b));
        return;
    }
    let Some(u) = GUEST.uart() else { return };
    let _g = GUEST_LOCK.lock();
    write_crlf(&u, bytes);
}

/// A byte typed for a guest, and the VM it is for: with two UARTs, whatever was
/// typed on the guest console, for VM 0; with one cable, what was typed while
/// input went to a VM.
pub fn guest_input() -> Option<(usize, u8)> {
    if single_cable() {
        pump();
        return VM_INPUT.lock().pop_front();
    }
    let u = GUEST.uart()?;
    let _g = GUEST_LOCK.lock();
    u.read_byte().map(|b| (0, b))
}

#[macro_export]
macro_rules! println {
    () => { $crate::hv::console::print(format_args!("\n")) };
    ($($arg:tt)*) => { $crate::hv::console::print(format_args!("{}\n", format_args!($($arg)*))) };
}
