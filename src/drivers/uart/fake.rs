//! Host fakes of the four UARTs: registers in memory, a transmit FIFO of the
//! model's depth, a receive queue, and the status bits each device derives
//! from them. Every access is logged, so tests assert register sequences and
//! count status reads; bytes written to a full FIFO are counted as lost, so
//! tests prove `write_some` never overruns.
#![forbid(unsafe_code)]

use super::{bcm2835_aux as aux, cadence as cdns, imx, pl011, Mmio, Model};
use std::cell::RefCell;
use std::collections::{HashMap, VecDeque};

/// One register access.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    Read(usize),
    Write(usize, u32),
}

#[derive(Default)]
pub struct State {
    /// Plain (latched) registers: whatever was last written, or preset.
    pub regs: HashMap<usize, u32>,
    pub log: Vec<Access>,
    /// Bytes in the transmit FIFO, oldest first.
    pub tx_fifo: VecDeque<u8>,
    /// Bytes that left the transmitter.
    pub sent: Vec<u8>,
    /// Bytes written to a full FIFO (lost on hardware).
    pub lost: usize,
    /// Bytes written while the transmitter was disabled (lost too).
    pub dropped: usize,
    /// Received bytes waiting.
    pub rx: VecDeque<u8>,
    /// The shift register is still sending.
    pub busy: bool,
    /// Latched interrupt status (PL011 RIS, Cadence ISR).
    pub latched: u32,
    /// On every status read, this many FIFO bytes go out first (a line
    /// that drains while the CPU polls).
    pub drain_per_poll: usize,
}

pub struct Fake {
    pub model: Model,
    pub st: RefCell<State>,
}

impl Fake {
    pub fn new(model: Model) -> Self {
        Fake {
            model,
            st: RefCell::new(State::default()),
        }
    }

    /// A fake whose transmitter is already enabled, as firmware leaves it.
    pub fn enabled(model: Model) -> Self {
        let f = Fake::new(model);
        {
            let mut s = f.st.borrow_mut();
            match model {
                Model::Pl011 => {
                    s.regs
                        .insert(pl011::CR, pl011::CR_UARTEN | pl011::CR_TXE | pl011::CR_RXE);
                }
                Model::Bcm2835Aux => {
                    s.regs.insert(aux::CNTL, aux::CNTL_RX_TX);
                }
                Model::Cadence => {
                    s.regs.insert(cdns::CR, cdns::CR_TX_EN | cdns::CR_RX_EN);
                }
                Model::Imx => {
                    s.regs.insert(imx::UCR1, imx::UCR1_UARTEN);
                    s.regs
                        .insert(imx::UCR2, imx::UCR2_SRST | imx::UCR2_TXEN | imx::UCR2_RXEN);
                }
            }
        }
        f
    }

    pub fn reg(&self, offset: usize) -> u32 {
        self.st.borrow().regs.get(&offset).copied().unwrap_or(0)
    }

    pub fn set_reg(&self, offset: usize, v: u32) {
        self.st.borrow_mut().regs.insert(offset, v);
    }

    pub fn fill_tx(&self, n: usize) {
        self.st
            .borrow_mut()
            .tx_fifo
            .extend(std::iter::repeat_n(b'.', n));
    }

    pub fn receive(&self, bytes: &[u8]) {
        self.st.borrow_mut().rx.extend(bytes.iter().copied());
    }

    pub fn take_log(&self) -> Vec<Access> {
        std::mem::take(&mut self.st.borrow_mut().log)
    }

    /// The writes in the log, in order.
    pub fn writes(&self) -> Vec<(usize, u32)> {
        self.st
            .borrow()
            .log
            .iter()
            .filter_map(|a| match *a {
                Access::Write(o, v) => Some((o, v)),
                Access::Read(_) => None,
            })
            .collect()
    }

    /// How many times `offset` was read.
    pub fn reads_of(&self, offset: usize) -> usize {
        self.st
            .borrow()
            .log
            .iter()
            .filter(|a| **a == Access::Read(offset))
            .count()
    }

    /// Bytes written to the data register (sent or still queued).
    pub fn transmitted(&self) -> Vec<u8> {
        let s = self.st.borrow();
        s.sent.iter().chain(s.tx_fifo.iter()).copied().collect()
    }

    fn tx_enabled(&self, s: &State) -> bool {
        let r = |o| s.regs.get(&o).copied().unwrap_or(0);
        match self.model {
            Model::Pl011 => {
                r(pl011::CR) & (pl011::CR_UARTEN | pl011::CR_TXE)
                    == pl011::CR_UARTEN | pl011::CR_TXE
            }
            Model::Bcm2835Aux => r(aux::CNTL) & 2 != 0,
            Model::Cadence => {
                r(cdns::CR) & cdns::CR_TX_EN != 0 && r(cdns::CR) & cdns::CR_TX_DIS == 0
            }
            Model::Imx => {
                r(imx::UCR1) & imx::UCR1_UARTEN != 0
                    && r(imx::UCR2) & (imx::UCR2_TXEN | imx::UCR2_SRST)
                        == imx::UCR2_TXEN | imx::UCR2_SRST
            }
        }
    }

    fn data_reg(&self) -> (usize, usize) {
        match self.model {
            Model::Pl011 => (pl011::DR, pl011::DR),
            Model::Bcm2835Aux => (aux::IO, aux::IO),
            Model::Cadence => (cdns::FIFO, cdns::FIFO),
            Model::Imx => (imx::URXD, imx::UTXD),
        }
    }

    fn is_status(&self, offset: usize) -> bool {
        match self.model {
            Model::Pl011 => offset == pl011::FR,
            Model::Bcm2835Aux => offset == aux::STAT || offset == aux::LSR,
            Model::Cadence => offset == cdns::SR,
            Model::Imx => offset == imx::UTS || offset == imx::USR2,
        }
    }

    fn status(&self, s: &State, offset: usize) -> u32 {
        let depth = self.model.fifo_depth();
        let len = s.tx_fifo.len();
        let (empty, full, idle) = (len == 0, len >= depth, len == 0 && !s.busy);
        let bit = |c: bool, b: u32| if c { b } else { 0 };
        let reg = |o| s.regs.get(&o).copied().unwrap_or(0);
        match (self.model, offset) {
            (Model::Pl011, pl011::FR) => {
                bit(empty, pl011::FR_TXFE)
                    | bit(full, pl011::FR_TXFF)
                    | bit(s.rx.is_empty(), pl011::FR_RXFE)
                    | bit(!idle, pl011::FR_BUSY)
            }
            (Model::Pl011, pl011::MIS) => {
                (s.latched | bit(!s.rx.is_empty(), pl011::INT_RX)) & reg(pl011::IMSC)
            }
            (Model::Bcm2835Aux, aux::STAT) => {
                bit(!s.rx.is_empty(), 1)
                    | bit(!full, aux::STAT_SPACE)
                    | ((s.rx.len() as u32) << 16)
                    | ((len as u32) << aux::STAT_TX_LEVEL_SHIFT)
            }
            (Model::Bcm2835Aux, aux::LSR) => {
                bit(!s.rx.is_empty(), aux::LSR_DATA_READY)
                    | bit(!full, aux::LSR_TX_EMPTY)
                    | bit(idle, aux::LSR_TX_IDLE)
            }
            (Model::Cadence, cdns::SR) => {
                bit(s.rx.is_empty(), cdns::SR_RXEMPTY)
                    | bit(empty, cdns::SR_TXEMPTY)
                    | bit(full, cdns::SR_TXFULL)
                    | bit(s.busy, cdns::SR_TACTIVE)
            }
            (Model::Cadence, cdns::ISR) => s.latched | bit(!s.rx.is_empty(), cdns::IXR_RXTRIG),
            (Model::Imx, imx::UTS) => bit(empty, imx::UTS_TXEMPTY) | bit(full, imx::UTS_TXFULL),
            (Model::Imx, imx::USR2) => {
                bit(!s.rx.is_empty(), imx::USR2_RDR) | bit(idle, imx::USR2_TXDC)
            }
            (Model::Imx, imx::USR1) => {
                bit(!s.rx.is_empty(), imx::USR1_RRDY) | bit(len < 2, imx::USR1_TRDY)
            }
            _ => reg(offset),
        }
    }
}

impl Mmio for Fake {
    fn read32(&self, offset: usize) -> u32 {
        let mut s = self.st.borrow_mut();
        s.log.push(Access::Read(offset));
        if self.is_status(offset) && s.drain_per_poll > 0 {
            for _ in 0..s.drain_per_poll {
                if let Some(b) = s.tx_fifo.pop_front() {
                    s.sent.push(b);
                }
            }
        }
        let (rx_reg, _) = self.data_reg();
        if offset == rx_reg {
            let b = s.rx.pop_front();
            return match (self.model, b) {
                (Model::Imx, Some(b)) => imx::URXD_CHARRDY | u32::from(b),
                (_, b) => u32::from(b.unwrap_or(0)),
            };
        }
        self.status(&s, offset)
    }

    fn write32(&self, offset: usize, value: u32) {
        let mut s = self.st.borrow_mut();
        s.log.push(Access::Write(offset, value));
        let (_, tx_reg) = self.data_reg();
        if offset == tx_reg {
            if !self.tx_enabled(&s) {
                s.dropped += 1;
            } else if s.tx_fifo.len() >= self.model.fifo_depth() {
                s.lost += 1;
            } else {
                s.tx_fifo.push_back(value as u8);
            }
            return;
        }
        match (self.model, offset) {
            (Model::Pl011, pl011::ICR) | (Model::Cadence, cdns::ISR) => s.latched &= !value,
            (Model::Cadence, cdns::IER) => {
                let v = s.regs.get(&cdns::IMR).copied().unwrap_or(0) | value;
                s.regs.insert(cdns::IMR, v);
            }
            (Model::Cadence, cdns::IDR) => {
                let v = s.regs.get(&cdns::IMR).copied().unwrap_or(0) & !value;
                s.regs.insert(cdns::IMR, v);
            }
            _ => {
                s.regs.insert(offset, value);
            }
        }
    }
}
