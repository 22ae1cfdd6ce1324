//! The debug console's portable half: a line editor over a byte stream and the
//! command language (names, numbers, help), host-tested. The runtime
//! (`hv::monitor`) feeds it the debug UART's bytes and carries the commands out.

pub mod command;
pub mod line;

#[cfg(test)]
mod tests;
