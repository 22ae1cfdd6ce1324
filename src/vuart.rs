//! The emulated PL011 each guest sees as its console (at the IPA of the host's first
//! PL011, DT alias `serial0`).
//!
//! Guests never touch a physical UART: with several VMs on one console, the
//! hypervisor must own the device and decide whose output goes where (as Xen's vpl011
//! does). This is the register model only (Arm PL011 TRM, DDI 0183): the runtime
//! forwards accesses from stage-2 data aborts here and sends the bytes it returns to
//! the physical console. Transmission is instantaneous, so the transmit FIFO is always
//! empty; received bytes queue in a small FIFO.
#![forbid(unsafe_code)]

use heapless::Deque;

/// Register offsets.
pub mod reg {
    pub const DR: u64 = 0x000;
    pub const RSR: u64 = 0x004;
    pub const FR: u64 = 0x018;
    pub const ILPR: u64 = 0x020;
    pub const IBRD: u64 = 0x024;
    pub const FBRD: u64 = 0x028;
    pub const LCR_H: u64 = 0x02c;
    pub const CR: u64 = 0x030;
    pub const IFLS: u64 = 0x034;
    pub const IMSC: u64 = 0x038;
    pub const RIS: u64 = 0x03c;
    pub const MIS: u64 = 0x040;
    pub const ICR: u64 = 0x044;
    pub const DMACR: u64 = 0x048;
}

const FR_TXFE: u32 = 1 << 7;
const FR_RXFF: u32 = 1 << 6;
const FR_RXFE: u32 = 1 << 4;
const INT_RX: u32 = 1 << 4;
const INT_TX: u32 = 1 << 5;
const INT_RT: u32 = 1 << 6;

/// PeriphID0-3 then PCellID0-3 at 0xfe0..0xffc: a PL011 r1p5, as QEMU reports.
const ID: [u32; 8] = [0x11, 0x10, 0x34, 0x00, 0x0d, 0xf0, 0x05, 0xb1];

/// The size of the register window.
pub const SIZE: u64 = 0x1000;

#[derive(Debug)]
pub struct VirtualPl011 {
    cr: u32,
    lcr_h: u32,
    ibrd: u32,
    fbrd: u32,
    ifls: u32,
    imsc: u32,
    ris: u32,
    dmacr: u32,
    ilpr: u32,
    rx: Deque<u8, 64>,
}

impl Default for VirtualPl011 {
    fn default() -> Self {
        Self::new()
    }
}

impl VirtualPl011 {
    /// The reset state (TRM table 3-1): UART, TX and RX enabled as firmware leaves it.
    pub const fn new() -> Self {
        Self {
            cr: 0x301,
            lcr_h: 0,
            ibrd: 0,
            fbrd: 0,
            ifls: 0x12,
            imsc: 0,
            ris: INT_TX,
            dmacr: 0,
            ilpr: 0,
            rx: Deque::new(),
        }
    }

    /// A guest read of `offset`. Unknown offsets read as zero (RAZ), as the TRM leaves
    /// reserved locations, so a probing guest cannot fault the hypervisor.
    pub fn read(&mut self, offset: u64) -> u32 {
        match offset {
            reg::DR => {
                let byte = self.rx.pop_front().map_or(0, u32::from);
                if self.rx.is_empty() {
                    self.ris &= !(INT_RX | INT_RT);
                }
                byte
            }
            reg::RSR => 0,
            reg::FR => {
                let mut fr = FR_TXFE;
                if self.rx.is_empty() {
                    fr |= FR_RXFE;
                }
                if self.rx.is_full() {
                    fr |= FR_RXFF;
                }
                fr
            }
            reg::ILPR => self.ilpr,
            reg::IBRD => self.ibrd,
            reg::FBRD => self.fbrd,
            reg::LCR_H => self.lcr_h,
            reg::CR => self.cr,
            reg::IFLS => self.ifls,
            reg::IMSC => self.imsc,
            reg::RIS => self.ris,
            reg::MIS => self.ris & self.imsc,
            reg::DMACR => self.dmacr,
            0xfe0..=0xffc if offset % 4 == 0 => ID[((offset - 0xfe0) / 4) as usize],
            _ => 0,
        }
    }

    /// A guest write; returns the byte to transmit, if any. Writes to read-only or
    /// unknown offsets are ignored (WI).
    pub fn write(&mut self, offset: u64, value: u32) -> Option<u8> {
        match offset {
            reg::DR => {
                // The FIFO drains at once, so the TX interrupt stays raised.
                self.ris |= INT_TX;
                let transmitting = self.cr & 1 != 0 && self.cr & (1 << 8) != 0;
                return transmitting.then_some(value as u8);
            }
            reg::RSR => {}
            reg::ILPR => self.ilpr = value & 0xff,
            reg::IBRD => self.ibrd = value & 0xffff,
            reg::FBRD => self.fbrd = value & 0x3f,
            reg::LCR_H => self.lcr_h = value & 0xff,
            reg::CR => self.cr = value & 0xff87,
            reg::IFLS => self.ifls = value & 0x3f,
            reg::IMSC => self.imsc = value & 0x7ff,
            reg::ICR => self.ris &= !(value & 0x7ff) | INT_TX,
            reg::DMACR => self.dmacr = value & 0x7,
            _ => {}
        }
        None
    }

    /// Input from the console for this guest. Returns false (byte dropped) when the
    /// FIFO is full, as a real UART overruns.
    pub fn receive(&mut self, byte: u8) -> bool {
        let ok = self.rx.push_back(byte).is_ok();
        if ok {
            self.ris |= INT_RX | INT_RT;
        }
        ok
    }

    /// An interrupt is asserted (for the virtual GIC).
    pub fn irq_pending(&self) -> bool {
        self.ris & self.imsc != 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transmits_and_reports_an_empty_fifo() {
        let mut u = VirtualPl011::new();
        assert_eq!(u.write(reg::DR, b'A' as u32), Some(b'A'));
        let fr = u.read(reg::FR);
        assert_ne!(fr & FR_TXFE, 0);
        assert_eq!(fr & (1 << 5), 0, "TXFF never set");
        assert_ne!(fr & FR_RXFE, 0);
    }

    #[test]
    fn disabled_uart_transmits_nothing() {
        let mut u = VirtualPl011::new();
        u.write(reg::CR, 0);
        assert_eq!(u.write(reg::DR, b'A' as u32), None);
    }

    #[test]
    fn receives_in_order_and_overruns_when_full() {
        let mut u = VirtualPl011::new();
        u.write(reg::IMSC, INT_RX);
        assert!(u.receive(b'h'));
        assert!(u.receive(b'i'));
        assert!(u.irq_pending());
        assert_eq!(u.read(reg::FR) & FR_RXFE, 0);
        assert_eq!(u.read(reg::DR), b'h' as u32);
        assert_eq!(u.read(reg::DR), b'i' as u32);
        assert!(!u.irq_pending());
        assert_ne!(u.read(reg::FR) & FR_RXFE, 0);
        for _ in 0..64 {
            assert!(u.receive(b'x'));
        }
        assert!(!u.receive(b'y'));
        assert_ne!(u.read(reg::FR) & FR_RXFF, 0);
    }

    #[test]
    fn identifies_as_a_pl011_and_ignores_unknown_registers() {
        let mut u = VirtualPl011::new();
        let id: Vec<u32> = (0..8).map(|i| u.read(0xfe0 + 4 * i)).collect();
        assert_eq!(id, ID);
        assert_eq!(u.read(0x800), 0);
        assert_eq!(u.write(0x800, 0xffff_ffff), None);
        assert_eq!(u.read(0xfe2), 0);
    }

    #[test]
    fn control_registers_keep_their_writable_bits() {
        let mut u = VirtualPl011::new();
        u.write(reg::IBRD, 0x1_0027);
        u.write(reg::LCR_H, 0x170);
        assert_eq!(u.read(reg::IBRD), 0x0027);
        assert_eq!(u.read(reg::LCR_H), 0x70);
        u.write(reg::IMSC, 0x50);
        assert_eq!(u.read(reg::IMSC), 0x50);
        assert_eq!(u.read(reg::MIS), INT_TX & 0x50);
    }
}
