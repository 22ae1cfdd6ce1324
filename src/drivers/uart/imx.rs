//! The i.MX UART (`fsl,imx21-uart` and its descendants; i.MX 8M Plus
//! Applications Processor Reference Manual, chapter "UART"). A 32-byte FIFO
//! each way; the test register `UTS` tells "transmit FIFO empty/full", the
//! status registers `USR1`/`USR2` the trigger-level and transmit-complete
//! conditions, which follow the FIFOs' state (nothing to acknowledge).
#![forbid(unsafe_code)]

use super::{write_burst, write_while, Mmio, Model, Pending};

pub const URXD: usize = 0x00;
pub const UTXD: usize = 0x40;
pub const UCR1: usize = 0x80;
pub const UCR2: usize = 0x84;
pub const UCR3: usize = 0x88;
pub const UCR4: usize = 0x8c;
pub const UFCR: usize = 0x90;
pub const USR1: usize = 0x94;
pub const USR2: usize = 0x98;
pub const UTS: usize = 0xb4;

pub const URXD_CHARRDY: u32 = 1 << 15;
pub const UCR1_UARTEN: u32 = 1 << 0;
pub const UCR1_ATDMAEN: u32 = 1 << 2;
pub const UCR1_TXDMAEN: u32 = 1 << 3;
pub const UCR1_RTSDEN: u32 = 1 << 5;
pub const UCR1_TXMPTYEN: u32 = 1 << 6;
pub const UCR1_RXDMAEN: u32 = 1 << 8;
pub const UCR1_RRDYEN: u32 = 1 << 9;
pub const UCR1_IDEN: u32 = 1 << 12;
pub const UCR1_TRDYEN: u32 = 1 << 13;
pub const UCR1_ADEN: u32 = 1 << 15;
/// UCR1 interrupt and DMA enables, all cleared by `init`.
pub const UCR1_INTS: u32 = UCR1_ATDMAEN
    | UCR1_TXDMAEN
    | UCR1_RTSDEN
    | UCR1_TXMPTYEN
    | UCR1_RXDMAEN
    | UCR1_RRDYEN
    | UCR1_IDEN
    | UCR1_TRDYEN
    | UCR1_ADEN;
/// UCR2: not in software reset (the bit is active low), receiver, transmitter,
/// ignore RTS.
pub const UCR2_SRST: u32 = 1 << 0;
pub const UCR2_RXEN: u32 = 1 << 1;
pub const UCR2_TXEN: u32 = 1 << 2;
pub const UCR2_IRTS: u32 = 1 << 14;
/// UCR3: the receiver's input is the muxed RXD (must be set on i.MX6 and later).
pub const UCR3_RXDMUXSEL: u32 = 1 << 2;
/// UCR4 interrupt enables: receive data ready, overrun, break, transmit complete.
pub const UCR4_INTS: u32 = 0xf;
/// UFCR fields kept from the firmware: the reference-clock divider (bits 7-9,
/// part of the baud rate) and DCE/DTE mode (bit 6).
pub const UFCR_KEEP: u32 = 0x7 << 7 | 1 << 6;
/// UFCR trigger levels: transmit ready below 2 bytes, receive ready at 1.
pub const UFCR_TXTL_2: u32 = 2 << 10;
pub const UFCR_RXTL_1: u32 = 1;
pub const USR1_RRDY: u32 = 1 << 9;
pub const USR1_TRDY: u32 = 1 << 13;
pub const USR2_RDR: u32 = 1 << 0;
pub const USR2_TXDC: u32 = 1 << 3;
pub const UTS_TXFULL: u32 = 1 << 4;
pub const UTS_TXEMPTY: u32 = 1 << 6;

pub fn init<M: Mmio>(m: &M) {
    // Baud (UBIR/UBMR and UFCR's divider) and format (UCR2's WS, STPB, PREN)
    // stay the firmware's.
    m.write32(UCR1, (m.read32(UCR1) & !UCR1_INTS) | UCR1_UARTEN);
    m.write32(
        UCR2,
        m.read32(UCR2) | UCR2_SRST | UCR2_RXEN | UCR2_TXEN | UCR2_IRTS,
    );
    m.write32(UCR3, m.read32(UCR3) | UCR3_RXDMUXSEL);
    m.write32(UCR4, m.read32(UCR4) & !UCR4_INTS);
    m.write32(
        UFCR,
        (m.read32(UFCR) & UFCR_KEEP) | UFCR_TXTL_2 | UFCR_RXTL_1,
    );
}

pub fn write_some<M: Mmio>(m: &M, bytes: &[u8]) -> usize {
    let uts = m.read32(UTS);
    if uts & UTS_TXEMPTY != 0 {
        return write_burst(m, bytes, UTXD, Model::Imx.fifo_depth());
    }
    if uts & UTS_TXFULL != 0 {
        return 0;
    }
    m.write32(UTXD, u32::from(bytes[0]));
    1 + write_while(m, &bytes[1..], UTXD, |m| m.read32(UTS) & UTS_TXFULL == 0)
}

pub fn read_byte<M: Mmio>(m: &M) -> Option<u8> {
    if m.read32(USR2) & USR2_RDR == 0 {
        return None;
    }
    let rx = m.read32(URXD);
    (rx & URXD_CHARRDY != 0).then_some(rx as u8)
}

pub fn tx_idle<M: Mmio>(m: &M) -> bool {
    m.read32(USR2) & USR2_TXDC != 0
}

pub fn set_interrupts<M: Mmio>(m: &M, rx: bool, tx: bool) {
    let mut ucr1 = m.read32(UCR1) & !(UCR1_RRDYEN | UCR1_TRDYEN);
    if rx {
        ucr1 |= UCR1_RRDYEN;
    }
    if tx {
        ucr1 |= UCR1_TRDYEN;
    }
    m.write32(UCR1, ucr1);
}

pub fn pending<M: Mmio>(m: &M) -> Pending {
    let ucr1 = m.read32(UCR1);
    let usr1 = m.read32(USR1);
    Pending {
        rx: ucr1 & UCR1_RRDYEN != 0 && usr1 & USR1_RRDY != 0,
        tx: ucr1 & UCR1_TRDYEN != 0 && usr1 & USR1_TRDY != 0,
    }
}
