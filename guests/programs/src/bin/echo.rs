//! `echo`: reads what is typed on its console and says what it got, for the
//! console-input tests (the one-serial-cable mode switches typed input to it).
//!
//! Prints `echo: waiting for input`, then `echo: got 'c'` for each printable byte
//! (`echo: got 0xNN` otherwise) until it reads `q`, then PASS. The console is the
//! PL011 of `/chosen/stdout-path`, polled (flag register RXFE, data register).

#![no_std]
#![no_main]
#![deny(unsafe_op_in_unsafe_fn)]
#![deny(clippy::undocumented_unsafe_blocks)]

use rt::{Boot, Fail, fail, say};

rt::guest!("echo", main);

const DR: usize = 0x00;
const FR: usize = 0x18;
const FR_RXFE: u32 = 1 << 4;

fn main(boot: &Boot) -> Result<(), Fail> {
    let base = rt::dt::console_uart(boot.fdt()).ok_or_else(|| fail!("no PL011 console"))? as usize;
    say!("waiting for input");
    loop {
        // SAFETY: `base` is the console PL011 the device tree names (the runtime
        // writes to it too); reading FR has no side effects.
        let fr = unsafe { core::ptr::read_volatile((base + FR) as *const u32) };
        if fr & FR_RXFE != 0 {
            core::hint::spin_loop();
            continue;
        }
        // SAFETY: as above; reading DR takes the received byte.
        let b = unsafe { core::ptr::read_volatile((base + DR) as *const u32) } as u8;
        if b.is_ascii_graphic() || b == b' ' {
            say!("got '{}'", b as char);
        } else {
            say!("got {b:#04x}");
        }
        if b == b'q' {
            return Ok(());
        }
    }
}
