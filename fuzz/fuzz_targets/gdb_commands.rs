//! The GDB command parser alone: any packet body gives a `Command` or `Malformed`,
//! never a panic (the framer in front of it limits bodies to `MAX_PACKET` bytes
//! but lets every byte value through).
#![no_main]

use hypervisor::gdb::command::{parse, Command};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|body: &[u8]| {
    if let Ok(cmd) = parse(body) {
        // Binary payloads are slices of the body, never copies past its end.
        match cmd {
            Command::WriteMemoryBinary(_, data) | Command::WriteRegisters(data) => {
                assert!(data.len() < body.len());
            }
            Command::WriteRegister(_, hex) => assert!(hex.len() < body.len()),
            _ => {}
        }
        // The derived Debug walks every field.
        let _ = format!("{cmd:?}");
    }
});
