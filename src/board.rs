//! Boards as data (STYLE.md item 4): what a device tree cannot tell about a
//! board, compiled from `boards/<name>/board.toml` by `build.rs` into
//! [`BOARDS`]. One Image serves every board: at boot, [`select`] picks the board
//! whose `compatible` list shares a string with the DTB's root `compatible`, or
//! else [`GENERIC`], whose rule is the one any well-formed DTB supports: the
//! hypervisor's console is the UART `/chosen/stdout-path` names.
//!
//! [`consoles`] then resolves the board's choices against the parsed machine:
//! which UART the hypervisor keeps, and which one carries the guests' consoles
//! (the same one on a board with one serial cable).
#![forbid(unsafe_code)]

use crate::dt::{EmulatedUart, MachineInfo, UartInfo};

/// How a board names a UART.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UartChoice {
    /// `/aliases/<name>` (`serial1`).
    Alias(&'static str),
    /// The UART `/chosen/stdout-path` names (`"stdout"` in a board file).
    StdoutPath,
}

/// One board file, as the hypervisor needs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Board {
    /// The directory name under `boards/` (`rpi4`).
    pub name: &'static str,
    /// Root `compatible` strings that identify it (any one matches).
    pub compatible: &'static [&'static str],
    /// The UART the hypervisor keeps for its console and GDB.
    pub debug_uart: Option<UartChoice>,
    /// The UART that carries the guests' consoles; `None`: the debug UART
    /// (one serial cable).
    pub guest_uart: Option<UartChoice>,
    /// The GIC's virtual IRQ/FIQ outputs reach no CPU (QEMU's `imx8mp-evk`): the
    /// hypervisor raises a guest's virtual interrupts through HCR_EL2.VI/VF
    /// (`virtual_irq_by_hcr` in the board file; `hv::vgic`).
    pub virq_by_hcr: bool,
}

include!(concat!(env!("OUT_DIR"), "/boards.rs"));

/// The board of a DTB no board file recognises: console on stdout-path's
/// UART, one serial cable.
pub const GENERIC: Board = Board {
    name: "generic",
    compatible: &[],
    debug_uart: Some(UartChoice::StdoutPath),
    guest_uart: None,
    virq_by_hcr: false,
};

/// The board whose `compatible` matches the DTB's root `compatible` (the
/// root's strings in order, most specific first), or [`GENERIC`]. Returns the
/// matching root string too, for the console.
pub fn select<'a>(
    root_compatible: impl IntoIterator<Item = &'a str>,
) -> (&'static Board, Option<&'a str>) {
    for c in root_compatible {
        if let Some(b) = BOARDS.iter().find(|b| b.compatible.contains(&c)) {
            return (b, Some(c));
        }
    }
    (&GENERIC, None)
}

fn resolve<'m, 'a>(info: &'m MachineInfo<'a>, choice: UartChoice) -> Option<&'m UartInfo<'a>> {
    match choice {
        UartChoice::Alias(a) => info.resolve_alias(a),
        UartChoice::StdoutPath => info.stdout_uart(),
    }
    .filter(|u| u.enabled)
}

/// Which physical UARTs the hypervisor uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Consoles<'m, 'a> {
    /// The hypervisor's console (and GDB's line).
    pub debug: Option<&'m UartInfo<'a>>,
    /// The guests' consoles' line; the same UART as `debug` with one cable.
    pub guest: Option<&'m UartInfo<'a>>,
}

impl Consoles<'_, '_> {
    /// Hypervisor and guests share one line.
    pub fn single_cable(&self) -> bool {
        match (self.debug, self.guest) {
            (Some(d), Some(g)) => d.base == g.base,
            _ => false,
        }
    }
}

/// Resolves `board`'s UART choices on `info`. The debug UART is the board's
/// choice if it names an enabled UART, else stdout-path's (a DTB from another
/// firmware version may lack the alias). The guests' line is the board's
/// `guest_uart` if it names another enabled UART, else the debug UART.
pub fn consoles<'m, 'a>(board: &Board, info: &'m MachineInfo<'a>) -> Consoles<'m, 'a> {
    let debug = board
        .debug_uart
        .and_then(|c| resolve(info, c))
        .or_else(|| resolve(info, UartChoice::StdoutPath));
    let guest = board
        .guest_uart
        .and_then(|c| resolve(info, c))
        .filter(|g| debug.is_none_or(|d| d.base != g.base))
        .or(debug);
    Consoles { debug, guest }
}

/// Where every guest's emulated PL011 sits, and its interrupt: **the 4 KiB page
/// of the physical UART that carries the guests' consoles, and that UART's
/// SPI** (QEMU `virt`: `0x09000000`, SPI 1, so programs built for `virt` run
/// unchanged; rpi4: `0xfe215000`, the mini-UART's page, SPI 93; zcu102:
/// `0xff000000`, SPI 21; imx8mp: `0x30890000`, SPI 27). That page is a device
/// the hypervisor keeps for itself, so it is never guest RAM (RAM is not
/// there), never another host device a guest could be given (the hypervisor
/// keeps the whole page, so devices sharing it, like the Pi's SPI1/SPI2 beside
/// the mini-UART, are not assignable), and the SPI is one no device of a guest
/// raises.
pub fn emulated_uart(consoles: &Consoles) -> Option<EmulatedUart> {
    let u = consoles.guest?;
    Some(EmulatedUart {
        ipa: u.base.0 & !0xfff,
        intid: u.irq.map(|i| i.intid).filter(|&i| i >= 32),
    })
}

#[cfg(test)]
mod tests;
