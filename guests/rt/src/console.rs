//! The console: polled writes to the PL011 the DTB names as stdout.
//!
//! No interrupts and no baud-rate setup: whoever booted us (QEMU, firmware, the
//! hypervisor's emulated or passed-through UART) configured it, as Linux's
//! `earlycon` assumes too. Only if the UART or its transmitter is disabled (QEMU
//! leaves it so for a bare `-kernel`, and complains per byte) do we enable them. Every line is `<name>: <text>` followed by CRLF, so the
//! tests can match a guest's lines whatever else shares the console.
//!
//! There is no lock (with the MMU off there are no dependable exclusives): the
//! guests let one CPU print at a time (the demo hands its secondaries a turn).

use core::fmt::{self, Write};
use core::sync::atomic::{AtomicPtr, AtomicUsize, Ordering};

use tock_registers::interfaces::{ReadWriteable, Readable, Writeable};
use tock_registers::registers::{ReadOnly, ReadWrite};
use tock_registers::{register_bitfields, register_structs};

register_bitfields![u32,
    FR [
        /// Transmit FIFO full.
        TXFF OFFSET(5) NUMBITS(1) []
    ],
    CR [
        /// UART enable.
        UARTEN OFFSET(0) NUMBITS(1) [],
        /// Transmit enable.
        TXE OFFSET(8) NUMBITS(1) []
    ]
];

register_structs! {
    /// The part of a PL011 we use.
    Pl011Registers {
        (0x00 => dr: ReadWrite<u32>),
        (0x04 => _reserved),
        (0x18 => fr: ReadOnly<u32, FR::Register>),
        (0x1c => _reserved1),
        (0x30 => cr: ReadWrite<u32, CR::Register>),
        (0x34 => @END),
    }
}

/// The PL011's base address; 0 until [`init`] (then output is dropped).
static BASE: AtomicUsize = AtomicUsize::new(0);
static NAME_PTR: AtomicPtr<u8> = AtomicPtr::new(core::ptr::null_mut());
static NAME_LEN: AtomicUsize = AtomicUsize::new(0);

/// Sets the guest name that prefixes every line.
pub fn set_name(name: &'static str) {
    NAME_LEN.store(name.len(), Ordering::SeqCst);
    NAME_PTR.store(name.as_ptr().cast_mut(), Ordering::SeqCst);
}

/// The guest name given to [`set_name`] ("guest" before that).
pub fn name() -> &'static str {
    let ptr = NAME_PTR.load(Ordering::SeqCst);
    if ptr.is_null() {
        return "guest";
    }
    let len = NAME_LEN.load(Ordering::SeqCst);
    // SAFETY: `set_name` stored the pointer and length of a `&'static str`.
    unsafe { core::str::from_utf8_unchecked(core::slice::from_raw_parts(ptr, len)) }
}

/// Directs output to the PL011 at physical address `base`.
///
/// # Safety
/// `base` must be the address of a PL011's registers, mapped (MMU off: always),
/// and not used by anything else in this guest.
pub unsafe fn init(base: u64) {
    // SAFETY: the caller guarantees `base` is a PL011's register block.
    let regs = unsafe { &*(base as usize as *const Pl011Registers) };
    if !(regs.cr.is_set(CR::UARTEN) && regs.cr.is_set(CR::TXE)) {
        regs.cr.modify(CR::UARTEN::SET + CR::TXE::SET);
    }
    BASE.store(base as usize, Ordering::SeqCst);
}

/// Whether a console is set up.
pub fn present() -> bool {
    BASE.load(Ordering::SeqCst) != 0
}

/// Prints `<name>: <args>` and CRLF.
pub fn line(args: fmt::Arguments<'_>) {
    let mut out = Console;
    // The console never fails; a formatting error only truncates the line.
    let _ = write!(out, "{}: {}\r\n", name(), args);
}

/// A `fmt::Write` to the console, for output that is not one line.
pub struct Console;

impl Write for Console {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let base = BASE.load(Ordering::SeqCst);
        if base == 0 {
            return Ok(());
        }
        // SAFETY: `init`'s contract: `base` is a PL011's register block, which
        // stays valid (MMU off, identity) for the life of the guest.
        let regs = unsafe { &*(base as *const Pl011Registers) };
        for byte in s.bytes() {
            while regs.fr.is_set(FR::TXFF) {
                core::hint::spin_loop();
            }
            regs.dr.set(u32::from(byte));
        }
        Ok(())
    }
}
