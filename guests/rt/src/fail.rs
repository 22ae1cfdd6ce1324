//! The reason a guest fails, printed as `<name>: FAIL <reason>`.
//!
//! A fixed-size buffer rather than `&'static str` so reasons can carry the values
//! that went wrong (an exception class, an address); longer text is truncated.

#![forbid(unsafe_code)]

use core::fmt::{self, Write};

/// Capacity of a failure reason in bytes.
pub const REASON_CAPACITY: usize = 200;

/// Why a guest failed.
pub struct Fail(heapless::String<REASON_CAPACITY>);

impl Fail {
    /// Formats a reason (truncated to [`REASON_CAPACITY`] bytes).
    pub fn new(args: fmt::Arguments<'_>) -> Self {
        let mut reason = Truncating(heapless::String::new());
        // Truncation is the only possible error and is acceptable here.
        let _ = reason.write_fmt(args);
        Self(reason.0)
    }

    /// The reason text.
    pub fn reason(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Fail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A writer that keeps what fits and drops the rest, at a character boundary.
struct Truncating(heapless::String<REASON_CAPACITY>);

impl Write for Truncating {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for c in s.chars() {
            if self.0.push(c).is_err() {
                return Err(fmt::Error);
            }
        }
        Ok(())
    }
}
