//! Arm PrimeCell UART PL011 (Arm DDI 0183, "PrimeCell UART (PL011) Technical
//! Reference Manual"). The flag register tells "FIFO empty" and "FIFO full"
//! but no level, so [`write_some`] bursts a FIFO's worth only after seeing it
//! empty. The transmit interrupt fires when the FIFO drains to the trigger
//! level (`IFLS`), not while it merely is empty: a ring-buffered writer primes
//! it by writing.
#![forbid(unsafe_code)]

use super::{write_burst, write_while, Mmio, Model, Pending, IDLE_POLLS};

pub const DR: usize = 0x000;
pub const FR: usize = 0x018;
pub const LCR_H: usize = 0x02c;
pub const CR: usize = 0x030;
pub const IFLS: usize = 0x034;
pub const IMSC: usize = 0x038;
pub const MIS: usize = 0x040;
pub const ICR: usize = 0x044;

pub const FR_BUSY: u32 = 1 << 3;
pub const FR_RXFE: u32 = 1 << 4;
pub const FR_TXFF: u32 = 1 << 5;
pub const FR_TXFE: u32 = 1 << 7;
pub const LCR_H_FEN: u32 = 1 << 4;
pub const CR_UARTEN: u32 = 1 << 0;
pub const CR_TXE: u32 = 1 << 8;
pub const CR_RXE: u32 = 1 << 9;
/// Receive, transmit and receive-timeout interrupts (IMSC/MIS/ICR bits).
pub const INT_RX: u32 = 1 << 4;
pub const INT_TX: u32 = 1 << 5;
pub const INT_RT: u32 = 1 << 6;
/// Every interrupt bit (modem, receive, transmit, timeout, errors).
pub const INT_ALL: u32 = 0x7ff;

pub fn init<M: Mmio>(m: &M) {
    // LCR_H must not change while the UART is enabled or transmitting
    // (TRM 3.3.7): let the firmware's last bytes go, disable, set FEN (the
    // read-modify-write keeps word length, stop bits and parity, and the
    // write latches the untouched IBRD/FBRD), enable again.
    let _ = (0..IDLE_POLLS).any(|_| m.read32(FR) & FR_BUSY == 0);
    m.write32(CR, 0);
    m.write32(LCR_H, m.read32(LCR_H) | LCR_H_FEN);
    m.write32(IMSC, 0);
    m.write32(ICR, INT_ALL);
    // Trigger levels: both at 1/8 (receive early, refill early).
    m.write32(IFLS, 0);
    m.write32(CR, CR_UARTEN | CR_TXE | CR_RXE);
}

pub fn write_some<M: Mmio>(m: &M, bytes: &[u8]) -> usize {
    let fr = m.read32(FR);
    if fr & FR_TXFE != 0 {
        return write_burst(m, bytes, DR, Model::Pl011.fifo_depth());
    }
    if fr & FR_TXFF != 0 {
        return 0;
    }
    // Room for at least one: write it, then ask again per byte.
    m.write32(DR, u32::from(bytes[0]));
    1 + write_while(m, &bytes[1..], DR, |m| m.read32(FR) & FR_TXFF == 0)
}

pub fn read_byte<M: Mmio>(m: &M) -> Option<u8> {
    (m.read32(FR) & FR_RXFE == 0).then(|| m.read32(DR) as u8)
}

pub fn tx_idle<M: Mmio>(m: &M) -> bool {
    let fr = m.read32(FR);
    fr & FR_BUSY == 0 && fr & FR_TXFE != 0
}

pub fn set_interrupts<M: Mmio>(m: &M, rx: bool, tx: bool) {
    let mut mask = 0;
    if rx {
        mask |= INT_RX | INT_RT;
    }
    if tx {
        mask |= INT_TX;
    }
    m.write32(IMSC, mask);
}

pub fn pending<M: Mmio>(m: &M) -> Pending {
    let mis = m.read32(MIS);
    Pending {
        rx: mis & (INT_RX | INT_RT) != 0,
        tx: mis & INT_TX != 0,
    }
}

pub fn ack<M: Mmio>(m: &M, which: Pending) {
    let mut bits = 0;
    if which.rx {
        bits |= INT_RX | INT_RT;
    }
    if which.tx {
        bits |= INT_TX;
    }
    if bits != 0 {
        m.write32(ICR, bits);
    }
}
