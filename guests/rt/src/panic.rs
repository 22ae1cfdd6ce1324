//! A panic prints `<name>: FAIL panic: <message> at <file>:<line>` and powers off.

use core::panic::PanicInfo;

#[panic_handler]
fn panic(info: &PanicInfo<'_>) -> ! {
    match info.location() {
        Some(at) => crate::boot::fatal(crate::fail!(
            "panic: {} at {}:{}",
            info.message(),
            at.file(),
            at.line()
        )),
        None => crate::boot::fatal(crate::fail!("panic: {}", info.message())),
    }
}
