//! The Cadence UART (`cdns,uart-r1p12`; Zynq UltraScale+ TRM UG1085, chapter
//! 21, and its register reference UG1087). A 64-byte FIFO with "empty" and
//! "full" flags; the interrupt status register latches events and is cleared
//! by writing ones. Receive interrupts: the FIFO reached the watermark
//! (`RXWM`, set to 1) or the receive timeout fired; transmit: the FIFO emptied.
#![forbid(unsafe_code)]

use super::{write_burst, write_while, Mmio, Model, Pending};

pub const CR: usize = 0x00;
pub const IER: usize = 0x08;
pub const IDR: usize = 0x0c;
pub const IMR: usize = 0x10;
pub const ISR: usize = 0x14;
pub const RXTOUT: usize = 0x1c;
pub const RXWM: usize = 0x20;
pub const SR: usize = 0x2c;
pub const FIFO: usize = 0x30;

pub const CR_RXRST: u32 = 1 << 0;
pub const CR_TXRST: u32 = 1 << 1;
pub const CR_RX_EN: u32 = 1 << 2;
pub const CR_RX_DIS: u32 = 1 << 3;
pub const CR_TX_EN: u32 = 1 << 4;
pub const CR_TX_DIS: u32 = 1 << 5;
pub const CR_RSTTO: u32 = 1 << 6;
pub const CR_STTBRK: u32 = 1 << 7;
pub const CR_STPBRK: u32 = 1 << 8;
pub const SR_RXEMPTY: u32 = 1 << 1;
pub const SR_TXEMPTY: u32 = 1 << 3;
pub const SR_TXFULL: u32 = 1 << 4;
pub const SR_TACTIVE: u32 = 1 << 11;
pub const IXR_RXTRIG: u32 = 1 << 0;
pub const IXR_TXEMPTY: u32 = 1 << 3;
pub const IXR_TOUT: u32 = 1 << 8;
/// Every interrupt bit of r1p12 (through RBRK, bit 13).
pub const IXR_ALL: u32 = 0x3fff;

pub fn init<M: Mmio>(m: &M) {
    // Baud (BAUDGEN, BAUDDIV) and format (MR) stay the firmware's.
    m.write32(IDR, IXR_ALL);
    m.write32(ISR, IXR_ALL);
    m.write32(RXWM, 1);
    m.write32(RXTOUT, 10);
    let cr = m.read32(CR);
    let cr = (cr & !(CR_RX_DIS | CR_TX_DIS | CR_RXRST | CR_TXRST | CR_RSTTO | CR_STTBRK))
        | CR_RX_EN
        | CR_TX_EN
        | CR_STPBRK;
    m.write32(CR, cr);
}

pub fn write_some<M: Mmio>(m: &M, bytes: &[u8]) -> usize {
    let sr = m.read32(SR);
    if sr & SR_TXEMPTY != 0 {
        return write_burst(m, bytes, FIFO, Model::Cadence.fifo_depth());
    }
    if sr & SR_TXFULL != 0 {
        return 0;
    }
    m.write32(FIFO, u32::from(bytes[0]));
    1 + write_while(m, &bytes[1..], FIFO, |m| m.read32(SR) & SR_TXFULL == 0)
}

pub fn read_byte<M: Mmio>(m: &M) -> Option<u8> {
    (m.read32(SR) & SR_RXEMPTY == 0).then(|| m.read32(FIFO) as u8)
}

pub fn tx_idle<M: Mmio>(m: &M) -> bool {
    let sr = m.read32(SR);
    sr & SR_TXEMPTY != 0 && sr & SR_TACTIVE == 0
}

fn bits(which: Pending) -> u32 {
    (if which.rx { IXR_RXTRIG | IXR_TOUT } else { 0 }) | (if which.tx { IXR_TXEMPTY } else { 0 })
}

pub fn set_interrupts<M: Mmio>(m: &M, rx: bool, tx: bool) {
    let want = bits(Pending { rx, tx });
    let all = bits(Pending { rx: true, tx: true });
    m.write32(IDR, all & !want);
    if want != 0 {
        m.write32(IER, want);
    }
}

pub fn pending<M: Mmio>(m: &M) -> Pending {
    let active = m.read32(ISR) & m.read32(IMR);
    Pending {
        rx: active & (IXR_RXTRIG | IXR_TOUT) != 0,
        tx: active & IXR_TXEMPTY != 0,
    }
}

pub fn ack<M: Mmio>(m: &M, which: Pending) {
    let b = bits(which);
    if b != 0 {
        m.write32(ISR, b);
    }
}
