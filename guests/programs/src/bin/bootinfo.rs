//! `bootinfo`: prints what the loader handed over in the DTB, so a test can check
//! that bootargs and an initrd reach the guest intact: the bootargs, the initrd's
//! range and its first line of text, memory and CPU count.

#![no_std]
#![no_main]
#![deny(unsafe_op_in_unsafe_fn)]
#![deny(clippy::undocumented_unsafe_blocks)]

use core::fmt;

use rt::{Boot, Fail, fail, say};

rt::guest!("bootinfo", main);

/// Longest first line printed (the rest is cut).
const MAX_LINE: usize = 200;

fn main(boot: &Boot) -> Result<(), Fail> {
    say!("bootargs={}", boot.bootargs());
    match boot.initrd() {
        None => say!("initrd=none"),
        Some(initrd) => {
            say!(
                "initrd 0x{:x}..0x{:x} ({} bytes)",
                initrd.base,
                initrd.end(),
                initrd.size
            );
            if !boot
                .memory()
                .any(|r| r.base <= initrd.base && initrd.end() <= r.end())
            {
                return Err(fail!(
                    "initrd 0x{:x}..0x{:x} is not in RAM",
                    initrd.base,
                    initrd.end()
                ));
            }
            let len = (initrd.size as usize).min(MAX_LINE + 1);
            // SAFETY: the DTB says these bytes are the initrd, inside RAM (checked
            // above); the MMU is off, so the address is the physical one, and nothing
            // writes the initrd while we read it.
            let bytes = unsafe { core::slice::from_raw_parts(initrd.base as *const u8, len) };
            let line = bytes.split(|&b| b == b'\n').next().unwrap_or(&[]);
            let line = &line[..line.len().min(MAX_LINE)];
            say!("initrd={}", Printable(line));
        }
    }
    let memory = boot.memory_size();
    say!("memory={} MiB (0x{:x} bytes)", memory >> 20, memory);
    say!("cpus={}", boot.cpus().count());
    Ok(())
}

/// Bytes shown as text: printable ASCII as is, anything else as `.`.
struct Printable<'a>(&'a [u8]);

impl fmt::Display for Printable<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for &b in self.0 {
            let c = if b == b' ' || b.is_ascii_graphic() {
                b as char
            } else {
                '.'
            };
            fmt::Write::write_char(f, c)?;
        }
        Ok(())
    }
}
