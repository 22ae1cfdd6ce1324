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
//! output only exists once guests run, long after the MMU is on.
//!
//! **How the line is driven.** Once the GIC is up, each UART runs through a
//! receive and a transmit ring (`drivers::uart::Port`). Where the device tree
//! gives the UART a GIC interrupt, that interrupt (routed to CPU 0, taken in the
//! IRQ exit and in the idle loop: [`interrupt`]) fills the receive ring and
//! refills the transmit FIFO; writers leave their bytes in the ring; the tick on
//! CPU 0 only looks whether a ring holds bytes ([`debug_input_waiting`],
//! [`guest_input_waiting`]) and touches no register otherwise. Where there is no
//! interrupt (or `hv.uart_irq=0`), every look polls the device as before; boot says
//! which once. The console, the GDB stub and a snapshot transfer read the ring
//! (servicing the device themselves when it is empty, so GDB and a transfer still
//! poll tightly while they own the line); input is never awaited in an exception
//! handler. Before the machine powers off, [`flush`] sends what waits.

use crate::arch::mmio::DeviceMmio;
use crate::drivers::uart::{Model, Port, PortStats, Uart};
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
/// The rings of each UART: a GDB packet's worth of input between two looks, a
/// screenful of output while the line is slow.
type ConsolePort = Port<1024, 4096>;
static DEBUG_PORT: ConsolePort = Port::new();
static GUEST_PORT: ConsolePort = Port::new();
/// One cable: bytes sorted into `HV_INPUT` and `VM_INPUT` and not read yet (the
/// tick's cheap test looks at it without their locks).
static QUEUED: AtomicUsize = AtomicUsize::new(0);
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

/// Writes `s` with each `\n` as `\r\n`, for terminals, through `port` (straight
/// to the device before the rings are in use).
fn write_crlf(port: &ConsolePort, u: &Uart<DeviceMmio>, s: &[u8]) {
    for (i, line) in s.split(|&b| b == b'\n').enumerate() {
        if i > 0 {
            port.write(u, b"\r\n");
        }
        port.write(u, line);
    }
}

/// [`write_crlf`] onto the debug UART.
fn debug_crlf(u: &Uart<DeviceMmio>, s: &[u8]) {
    write_crlf(&DEBUG_PORT, u, s)
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
            .write(Writer::Hypervisor, s.as_bytes(), |b| debug_crlf(u, b));
        Ok(())
    }
}

/// Straight to the device, no state: before the MMU is on, and when crashing.
struct Raw<'a>(&'a Uart<DeviceMmio>);

impl Write for Raw<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for (i, line) in s.as_bytes().split(|&b| b == b'\n').enumerate() {
            if i > 0 {
                self.0.write_all(b"\r\n");
            }
            self.0.write_all(line);
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

/// Hands the debug UART to GDB (messages, and guests' output on a shared line, are
/// held; typed bytes are all GDB's) or takes it back (the held output is printed,
/// with how many bytes did not fit).
pub fn set_gdb_mode(on: bool) {
    INPUT.lock().set_gdb(on);
    hold_debug(on);
    if on {
        GDB_MODE.store(true, Ordering::SeqCst);
        if let Some(u) = DEBUG.uart() {
            LINE.lock().set_gdb(true, b"", |b| debug_crlf(&u, b));
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
                debug_crlf(&u, b)
            });
    }
}

/// CPU 0 takes the debug line to poll it tightly (a console command such as a
/// snapshot transfer runs; GDB holds it while attached), or gives it back:
/// meanwhile its receive interrupt is masked and the tick polls it.
pub fn hold_line(on: bool) {
    hold_debug(on || GDB_MODE.load(Ordering::Relaxed));
}

fn hold_debug(on: bool) {
    if let Some(u) = DEBUG.uart() {
        DEBUG_PORT.hold(&u, on);
    }
}

/// Writes bytes to the debug UART as they are (the GDB stub's packets).
pub fn debug_write_raw(bytes: &[u8]) {
    if bytes.is_empty() {
        return;
    }
    let Some(u) = DEBUG.uart() else { return };
    LINE.lock()
        .write(Writer::Hypervisor, bytes, |b| DEBUG_PORT.write(&u, b));
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
        // What waits in the ring was written first: it goes first (unless whoever
        // holds the device's lock never lets go).
        DEBUG_PORT.drain_for_crash(&u);
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
            let Some(b) = DEBUG_PORT.read_byte(&u) else {
                break;
            };
            input.input(b, |e| match e {
                Event::Hypervisor(b) => {
                    if hv.push_back(b).is_ok() {
                        QUEUED.fetch_add(1, Ordering::Relaxed);
                    }
                }
                Event::Vm(n, b) => {
                    if vm.push_back((n, b)).is_ok() {
                        QUEUED.fetch_add(1, Ordering::Relaxed);
                    }
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
        return dequeued(HV_INPUT.lock().pop_front());
    }
    let u = DEBUG.uart()?;
    DEBUG_PORT.read_byte(&u)
}

/// One cable: counts a byte taken from `HV_INPUT` or `VM_INPUT`.
fn dequeued<T>(item: Option<T>) -> Option<T> {
    if item.is_some() {
        QUEUED.fetch_sub(1, Ordering::Relaxed);
    }
    item
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
                let Some(b) = dequeued(q.pop_front()) else {
                    break;
                };
                buf[n] = b;
                n += 1;
            }
        }
        return n;
    }
    let Some(u) = DEBUG.uart() else { return 0 };
    DEBUG_PORT.read_some(&u, buf)
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
            .write(Writer::Guest, bytes, |b| debug_crlf(&u, b));
        return;
    }
    let Some(u) = GUEST.uart() else { return };
    let _g = GUEST_LOCK.lock();
    write_crlf(&GUEST_PORT, &u, bytes);
}

/// A byte typed for a guest, and the VM it is for: with two UARTs, whatever was
/// typed on the guest console, for VM 0; with one cable, what was typed while
/// input went to a VM.
pub fn guest_input() -> Option<(usize, u8)> {
    if single_cable() {
        pump();
        return dequeued(VM_INPUT.lock().pop_front());
    }
    let u = GUEST.uart()?;
    GUEST_PORT.read_byte(&u).map(|b| (0, b))
}

/// A UART's interrupt as the device tree gives it: the GIC INTID and whether it
/// is level-sensitive.
#[derive(Clone, Copy)]
pub struct UartIrq {
    pub intid: u32,
    pub level: bool,
}

/// Why a UART is polled rather than driven by its interrupt (None: it is not).
fn polled_because(irq: Option<UartIrq>, allowed: bool) -> Option<&'static str> {
    match irq {
        _ if !allowed => Some("hv.uart_irq=0"),
        None => Some("its device-tree node gives it no GIC interrupt"),
        Some(i) if i.intid < 32 || i.intid >= 1020 => Some("its interrupt is not an SPI"),
        Some(_) => None,
    }
}

/// Puts the debug UART (and the guest console's, with two UARTs) on its rings:
/// driven by its interrupt, routed to this CPU (the boot CPU, CPU 0), where the
/// device tree gives one and `allowed`; else polled. Says which, once. Boot CPU,
/// after the GIC is initialised.
pub fn start_rings(debug_irq: Option<UartIrq>, guest_irq: Option<UartIrq>, allowed: bool) {
    let ports: [(&str, &Slot, &ConsolePort, Option<UartIrq>); 2] = [
        ("debug UART", &DEBUG, &DEBUG_PORT, debug_irq),
        ("guest console UART", &GUEST, &GUEST_PORT, guest_irq),
    ];
    for (i, (name, slot, port, irq)) in ports.into_iter().enumerate() {
        if i == 1 && single_cable() {
            continue;
        }
        let Some(u) = slot.uart() else { continue };
        let why = polled_because(irq, allowed);
        let intid = match (why, irq) {
            (None, Some(irq)) => {
                super::gic::enable_own_spi(irq.intid, irq.level, crate::arch::mpidr());
                Some(irq.intid)
            }
            _ => None,
        };
        // Started under the writers' lock: no write is half in the ring.
        if i == 0 {
            let _line = LINE.lock();
            port.start(&u, intid);
        } else {
            let _g = GUEST_LOCK.lock();
            port.start(&u, intid);
        }
        match (intid, why) {
            (Some(id), _) => print(format_args!(
                "hv: {name}: driven by its interrupt (INTID {id}, on CPU 0) through receive and transmit rings\n"
            )),
            (None, Some(why)) => print(format_args!(
                "hv: {name}: polled on CPU 0 ({why})\n"
            )),
            (None, None) => {}
        }
    }
}

/// An interrupt acknowledged at EL2: if it is a console UART's, services the
/// UART (received bytes into the ring, the ring's output into the FIFO) and says
/// so; the caller then lets the console read ([`debug_input_waiting`]).
#[inline(always)]
pub fn interrupt(intid: u32) -> bool {
    if DEBUG_PORT.intid() == Some(intid) {
        if let Some(u) = DEBUG.uart() {
            DEBUG_PORT.interrupt(&u);
        }
        return true;
    }
    if GUEST_PORT.intid() == Some(intid) {
        if let Some(u) = GUEST.uart() {
            GUEST_PORT.interrupt(&u);
        }
        return true;
    }
    false
}

/// Whether the debug console has anything to read or do: GDB owns the line
/// (polled tightly), the UART is polled, or a ring (or, one cable, the input
/// sorted for the console) holds bytes. A few loads: the tick's test.
#[inline(always)]
pub fn debug_input_waiting() -> bool {
    GDB_MODE.load(Ordering::Relaxed)
        || DEBUG_PORT.needs_service()
        || QUEUED.load(Ordering::Relaxed) != 0
}

/// Whether typed input for guests may wait: the guest console's UART is polled
/// or its ring holds bytes; one cable, the same for the debug UART.
#[inline(always)]
pub fn guest_input_waiting() -> bool {
    if GUEST.base.load(Ordering::Relaxed) == 0 {
        return false;
    }
    if single_cable() {
        return DEBUG_PORT.needs_service() || QUEUED.load(Ordering::Relaxed) != 0;
    }
    GUEST_PORT.needs_service()
}

/// Whether either console has input that may wait ([`debug_input_waiting`] or
/// [`guest_input_waiting`]): CPU 0's tick reads nothing when this is false.
#[inline(always)]
pub fn input_waiting() -> bool {
    debug_input_waiting() || guest_input_waiting()
}

/// Sends everything waiting in the transmit rings and waits for the UARTs to go
/// idle (bounded): before the machine powers off or stops, so the last lines of
/// the log are not lost.
pub fn flush() {
    if let Some(u) = DEBUG.uart() {
        DEBUG_PORT.drain(&u);
    }
    if !single_cable() {
        if let Some(u) = GUEST.uart() {
            GUEST_PORT.drain(&u);
        }
    }
}

/// The console's `uart`: how each UART is driven and what it did.
pub fn report(out: &mut dyn Write) -> fmt::Result {
    let ports: [(&str, &Slot, &ConsolePort); 2] = [
        ("debug UART", &DEBUG, &DEBUG_PORT),
        ("guest console UART", &GUEST, &GUEST_PORT),
    ];
    for (i, (name, slot, port)) in ports.into_iter().enumerate() {
        let Some(u) = slot.uart() else { continue };
        let base = slot.base.load(Ordering::Relaxed);
        if i == 1 && single_cable() {
            writeln!(out, "{name}: the debug UART's line (one cable)")?;
            continue;
        }
        let st: PortStats = port.stats();
        write!(out, "{name}: {} at {base:#x}, ", u.model())?;
        match (st.started, st.intid) {
            (false, _) => write!(out, "not started")?,
            (true, Some(id)) => write!(out, "interrupt-driven (INTID {id})")?,
            (true, None) => write!(out, "polled")?,
        }
        writeln!(
            out,
            ": {} interrupts, {} bytes received, {} bytes sent; waiting: {} received, {} to send",
            st.interrupts, st.received, st.sent, st.rx_waiting, st.tx_waiting
        )?;
    }
    Ok(())
}

#[macro_export]
macro_rules! println {
    () => { $crate::hv::console::print(format_args!("\n")) };
    ($($arg:tt)*) => { $crate::hv::console::print(format_args!("{}\n", format_args!($($arg)*))) };
}
