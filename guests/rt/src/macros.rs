//! The two macros every guest uses: [`guest!`](crate::guest) ties a binary to the
//! runtime, [`say!`](crate::say) prints one line of the stable output format
//! (`<name>: <text>`), and [`fail!`](crate::fail) builds a failure reason.

/// Declares a guest: its name (the prefix of every console line) and its main
/// function, `fn(&rt::Boot) -> Result<(), rt::Fail>`.
///
/// Expands to the `rt_main` symbol the start code calls with the DTB address.
#[macro_export]
macro_rules! guest {
    ($name:literal, $main:path) => {
        #[unsafe(no_mangle)]
        extern "C" fn rt_main(dtb: usize) -> ! {
            $crate::boot::run($name, dtb, $main)
        }
    };
}

/// Prints one console line `<name>: <formatted text>` (CRLF-terminated).
#[macro_export]
macro_rules! say {
    ($($arg:tt)*) => {
        $crate::console::line(::core::format_args!($($arg)*))
    };
}

/// Builds a [`Fail`](crate::Fail) from a format string: `return Err(rt::fail!("..."))`.
#[macro_export]
macro_rules! fail {
    ($($arg:tt)*) => {
        $crate::Fail::new(::core::format_args!($($arg)*))
    };
}
