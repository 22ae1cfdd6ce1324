//! The BCM2835 auxiliary mini-UART (BCM2835 ARM Peripherals, section 2.2; the
//! BCM2711's is the same), the Raspberry Pi's console on GPIO 14/15. Its
//! registers follow the 16550's shape at a 4-byte stride from the device
//! tree's `reg` (the `AUX_MU_IO_REG` at aux + 0x40). The extra status
//! register tells the transmit FIFO's fill level, so [`write_some`] writes
//! exactly the free space after one read. The baud rate derives from the
//! core clock and is the firmware's (`enable_uart=1`); so is the aux block's
//! enable bit, which lies outside this window.
#![forbid(unsafe_code)]

use super::{write_burst, Mmio, Model, Pending};

pub const IO: usize = 0x00;
pub const IER: usize = 0x04;
pub const LSR: usize = 0x14;
pub const CNTL: usize = 0x20;
pub const STAT: usize = 0x24;

/// IER: receive-data interrupt. Bits 3:2 must be set too for receive
/// interrupts to be raised (the datasheet's errata; Linux's 8250 core sets
/// them as `UART_IER_RLSI | UART_IER_MSI`-like bits).
pub const IER_RX: u32 = 0x1 | 0xc;
/// IER: transmit-FIFO-empty interrupt.
pub const IER_TX: u32 = 0x2;
pub const LSR_DATA_READY: u32 = 1 << 0;
pub const LSR_TX_EMPTY: u32 = 1 << 5;
pub const LSR_TX_IDLE: u32 = 1 << 6;
/// CNTL: receiver and transmitter enabled, no automatic flow control.
pub const CNTL_RX_TX: u32 = 0x3;
pub const STAT_SPACE: u32 = 1 << 1;
pub const STAT_TX_LEVEL_SHIFT: u32 = 24;

pub fn init<M: Mmio>(m: &M) {
    // Baud (AUX_MU_BAUD) and data size (AUX_MU_LCR) stay the firmware's; the
    // FIFOs are always on. Interrupts off, receiver and transmitter on.
    m.write32(IER, 0);
    m.write32(CNTL, CNTL_RX_TX);
}

pub fn write_some<M: Mmio>(m: &M, bytes: &[u8]) -> usize {
    let stat = m.read32(STAT);
    if stat & STAT_SPACE == 0 {
        return 0;
    }
    let depth = Model::Bcm2835Aux.fifo_depth();
    let level = ((stat >> STAT_TX_LEVEL_SHIFT) & 0xf) as usize;
    write_burst(m, bytes, IO, depth.saturating_sub(level).max(1))
}

pub fn read_byte<M: Mmio>(m: &M) -> Option<u8> {
    (m.read32(LSR) & LSR_DATA_READY != 0).then(|| m.read32(IO) as u8)
}

pub fn tx_idle<M: Mmio>(m: &M) -> bool {
    m.read32(LSR) & LSR_TX_IDLE != 0
}

pub fn set_interrupts<M: Mmio>(m: &M, rx: bool, tx: bool) {
    m.write32(
        IER,
        if rx { IER_RX } else { 0 } | if tx { IER_TX } else { 0 },
    );
}

/// The interrupt identification register reports one cause at a time, so the
/// state is read instead: an enabled condition whose line status holds.
pub fn pending<M: Mmio>(m: &M) -> Pending {
    let ier = m.read32(IER);
    let lsr = m.read32(LSR);
    Pending {
        rx: ier & 1 != 0 && lsr & LSR_DATA_READY != 0,
        tx: ier & IER_TX != 0 && lsr & LSR_TX_EMPTY != 0,
    }
}
