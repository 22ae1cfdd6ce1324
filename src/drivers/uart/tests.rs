//! The drivers against the fakes: lookup by `compatible`, each model's init
//! sequence, FIFO-respecting writes, reads, flush and interrupts.
#![forbid(unsafe_code)]

use super::fake::{Access, Fake};
use super::{bcm2835_aux as aux, cadence as cdns, imx, lookup, pl011, Model, Pending, Uart};

const ALL: [Model; 4] = [Model::Pl011, Model::Bcm2835Aux, Model::Cadence, Model::Imx];

fn uart(model: Model) -> Uart<Fake> {
    Uart::new(Fake::enabled(model), model)
}

/// The status register `write_some` reads first.
fn status_reg(model: Model) -> usize {
    match model {
        Model::Pl011 => pl011::FR,
        Model::Bcm2835Aux => aux::STAT,
        Model::Cadence => cdns::SR,
        Model::Imx => imx::UTS,
    }
}

#[test]
fn lookup_follows_the_nodes_compatible_lists_of_each_board() {
    // As the boards' device trees write them (QEMU virt, bcm2711-rpi-4-b,
    // zynqmp-zcu102-rev1.0, imx8mp-evk), most specific first.
    let cases: [(&[&str], Option<Model>); 8] = [
        (&["arm,pl011", "arm,primecell"], Some(Model::Pl011)),
        (&["brcm,bcm2835-aux-uart"], Some(Model::Bcm2835Aux)),
        (
            &["xlnx,zynqmp-uart", "cdns,uart-r1p12"],
            Some(Model::Cadence),
        ),
        (&["xlnx,xuartps", "cdns,uart-r1p8"], Some(Model::Cadence)),
        (&["fsl,imx8mp-uart", "fsl,imx6q-uart"], Some(Model::Imx)),
        (&["fsl,imx8mm-uart", "fsl,imx6q-uart"], Some(Model::Imx)),
        (&["fsl,imx53-uart", "fsl,imx21-uart"], Some(Model::Imx)),
        (&["ns16550a", "fsl,imx1-uart", "brcm,bcm2835-aux"], None),
    ];
    for (compatible, want) in cases {
        assert_eq!(lookup(compatible.iter().copied()), want, "{compatible:?}");
    }
    assert_eq!(lookup([]), None);
}

#[test]
fn every_table_entry_is_unique_and_found() {
    for (i, (c, m)) in super::DRIVERS.iter().enumerate() {
        assert_eq!(lookup([*c]), Some(*m), "{c}");
        assert!(
            super::DRIVERS[i + 1..].iter().all(|(o, _)| o != c),
            "{c} twice"
        );
    }
}

#[test]
fn pl011_init_keeps_baud_and_format_and_enables_fifos() {
    let u = uart(Model::Pl011);
    let f = u.mmio();
    f.set_reg(0x24, 26); // IBRD
    f.set_reg(0x28, 3); // FBRD
    f.set_reg(pl011::LCR_H, 0x60); // 8 bits, no FIFO
    f.set_reg(pl011::IMSC, 0x50);
    u.init();
    assert_eq!(
        f.writes(),
        [
            (pl011::CR, 0),
            (pl011::LCR_H, 0x60 | pl011::LCR_H_FEN),
            (pl011::IMSC, 0),
            (pl011::ICR, pl011::INT_ALL),
            (pl011::IFLS, 0),
            (pl011::CR, pl011::CR_UARTEN | pl011::CR_TXE | pl011::CR_RXE),
        ]
    );
    assert_eq!((f.reg(0x24), f.reg(0x28)), (26, 3));
    // It waited for the firmware's last bytes before disabling.
    assert_eq!(f.take_log()[0], Access::Read(pl011::FR));
}

#[test]
fn pl011_init_waits_for_the_transmitter_before_disabling_it() {
    let u = uart(Model::Pl011);
    let f = u.mmio();
    f.fill_tx(3);
    f.st.borrow_mut().drain_per_poll = 1;
    u.init();
    assert!(f.st.borrow().tx_fifo.is_empty());
    let log = f.take_log();
    let first_write = log
        .iter()
        .position(|a| matches!(a, Access::Write(..)))
        .unwrap();
    assert!(first_write >= 3, "disabled after {first_write} reads");
}

#[test]
fn mini_uart_init_keeps_baud_and_enables_rx_tx() {
    let u = Uart::new(Fake::new(Model::Bcm2835Aux), Model::Bcm2835Aux);
    u.mmio().set_reg(0x28, 270); // AUX_MU_BAUD
    u.init();
    assert_eq!(
        u.mmio().writes(),
        [(aux::IER, 0), (aux::CNTL, aux::CNTL_RX_TX)]
    );
    assert_eq!(u.write_some(b"ok"), 2);
    assert_eq!(u.mmio().transmitted(), b"ok");
}

#[test]
fn cadence_init_masks_interrupts_and_enables_from_reset_state() {
    // Reset value of CR: both directions disabled, break stopped.
    let u = Uart::new(Fake::new(Model::Cadence), Model::Cadence);
    let f = u.mmio();
    f.set_reg(
        cdns::CR,
        cdns::CR_TX_DIS | cdns::CR_RX_DIS | cdns::CR_STPBRK,
    );
    f.set_reg(cdns::IMR, 0x1ff);
    f.set_reg(0x04, 0x20); // MR: 8N1, kept
    u.init();
    assert_eq!(
        f.writes(),
        [
            (cdns::IDR, cdns::IXR_ALL),
            (cdns::ISR, cdns::IXR_ALL),
            (cdns::RXWM, 1),
            (cdns::RXTOUT, 10),
            (cdns::CR, cdns::CR_RX_EN | cdns::CR_TX_EN | cdns::CR_STPBRK),
        ]
    );
    assert_eq!(f.reg(cdns::IMR), 0);
    assert_eq!(f.reg(0x04), 0x20);
    assert_eq!(u.write_some(b"x"), 1);
    assert_eq!(f.st.borrow().dropped, 0);
}

#[test]
fn imx_init_enables_from_reset_state_and_keeps_the_clock_divider() {
    let u = Uart::new(Fake::new(Model::Imx), Model::Imx);
    let f = u.mmio();
    // Before init nothing is transmitted: QEMU's and the hardware's reset state.
    assert_eq!(u.write_some(b"a"), 1);
    assert_eq!(f.st.borrow().dropped, 1);
    f.set_reg(imx::UCR1, imx::UCR1_RRDYEN | imx::UCR1_TRDYEN);
    f.set_reg(imx::UCR2, 1 << 5); // WS: 8-bit words, kept
    f.set_reg(imx::UCR4, imx::UCR4_INTS | 1 << 8);
    f.set_reg(imx::UFCR, 5 << 7 | 0x3f << 10 | 0x3f);
    f.take_log();
    u.init();
    assert_eq!(f.reg(imx::UCR1), imx::UCR1_UARTEN);
    assert_eq!(
        f.reg(imx::UCR2),
        1 << 5 | imx::UCR2_SRST | imx::UCR2_RXEN | imx::UCR2_TXEN | imx::UCR2_IRTS
    );
    assert_eq!(f.reg(imx::UCR3), imx::UCR3_RXDMUXSEL);
    assert_eq!(f.reg(imx::UCR4), 1 << 8);
    assert_eq!(f.reg(imx::UFCR), 5 << 7 | 2 << 10 | 1);
    assert_eq!(u.write_some(b"b"), 1);
    assert_eq!(f.transmitted(), b"b");
}

#[test]
fn write_some_fills_an_empty_fifo_with_one_status_read() {
    for model in ALL {
        let u = uart(model);
        let data = [b'z'; 100];
        let n = u.write_some(&data);
        assert_eq!(n, model.fifo_depth(), "{model}");
        assert_eq!(u.fifo_depth(), model.fifo_depth());
        let f = u.mmio();
        assert_eq!(f.reads_of(status_reg(model)), 1, "{model}: status reads");
        assert_eq!(f.st.borrow().lost, 0, "{model}");
        assert_eq!(f.transmitted().len(), n);
    }
}

#[test]
fn write_some_takes_exactly_the_free_space_of_a_partly_full_fifo() {
    for model in ALL {
        for queued in [1, model.fifo_depth() / 2, model.fifo_depth() - 1] {
            let u = uart(model);
            u.mmio().fill_tx(queued);
            let n = u.write_some(&[b'q'; 200]);
            let f = u.mmio();
            assert_eq!(
                n,
                model.fifo_depth() - queued,
                "{model} with {queued} queued"
            );
            assert_eq!(f.st.borrow().lost, 0, "{model}: overran the FIFO");
            assert_eq!(f.st.borrow().tx_fifo.len(), model.fifo_depth());
            if model == Model::Bcm2835Aux {
                // It tells its level: one read, whatever the space.
                assert_eq!(f.reads_of(aux::STAT), 1);
            }
        }
    }
}

#[test]
fn write_some_on_a_full_fifo_writes_nothing_and_reads_status_once() {
    for model in ALL {
        let u = uart(model);
        u.mmio().fill_tx(model.fifo_depth());
        u.mmio().take_log();
        assert_eq!(u.write_some(b"abc"), 0, "{model}");
        assert_eq!(u.mmio().take_log(), [Access::Read(status_reg(model))]);
        assert_eq!(u.write_some(b""), 0);
    }
}

#[test]
fn write_all_waits_for_room_and_keeps_the_order() {
    for model in ALL {
        let u = uart(model);
        u.mmio().st.borrow_mut().drain_per_poll = 3;
        let text: Vec<u8> = (0..500u32).map(|i| b'a' + (i % 26) as u8).collect();
        u.write_all(&text);
        let f = u.mmio();
        assert_eq!(f.transmitted(), text, "{model}");
        assert_eq!(f.st.borrow().lost, 0, "{model}");
    }
}

#[test]
fn read_byte_returns_received_bytes_then_none() {
    for model in ALL {
        let u = uart(model);
        assert_eq!(u.read_byte(), None, "{model}");
        u.mmio().receive(b"hi");
        assert_eq!(u.read_byte(), Some(b'h'), "{model}");
        assert_eq!(u.read_byte(), Some(b'i'), "{model}");
        assert_eq!(u.read_byte(), None, "{model}");
    }
}

#[test]
fn flush_waits_for_idle_and_gives_up_on_a_stuck_transmitter() {
    for model in ALL {
        let u = uart(model);
        u.mmio().fill_tx(4);
        u.mmio().st.borrow_mut().drain_per_poll = 1;
        assert!(u.flush(), "{model}");
        assert!(u.tx_idle());
        let stuck = uart(model);
        stuck.mmio().fill_tx(1);
        assert!(!stuck.flush(), "{model}: a UART that never drains");
        assert!(!stuck.tx_idle());
    }
}

#[test]
fn interrupts_are_enabled_reported_and_acknowledged() {
    for model in ALL {
        let u = uart(model);
        u.init();
        let f = u.mmio();
        f.receive(b"x");
        // Masked: nothing pending whatever the state.
        assert_eq!(u.pending_interrupts(), Pending::default(), "{model}");
        u.set_interrupts(true, false);
        assert_eq!(
            u.pending_interrupts(),
            Pending {
                rx: true,
                tx: false
            },
            "{model}"
        );
        assert_eq!(u.read_byte(), Some(b'x'));
        u.ack_interrupts(Pending {
            rx: true,
            tx: false,
        });
        assert!(!u.pending_interrupts().rx, "{model}: rx after reading");
        // Transmit: the FIFO is empty, so "room" holds (latched where the
        // device latches it).
        if matches!(model, Model::Pl011 | Model::Cadence) {
            f.st.borrow_mut().latched |= match model {
                Model::Pl011 => pl011::INT_TX,
                _ => cdns::IXR_TXEMPTY,
            };
        }
        u.set_interrupts(true, true);
        assert!(u.pending_interrupts().tx, "{model}: tx room");
        u.ack_interrupts(Pending {
            rx: false,
            tx: true,
        });
        if matches!(model, Model::Pl011 | Model::Cadence) {
            assert!(!u.pending_interrupts().tx, "{model}: tx acknowledged");
        }
        u.set_interrupts(false, false);
        f.receive(b"y");
        assert_eq!(u.pending_interrupts(), Pending::default(), "{model}");
    }
}

#[test]
fn interrupt_enable_bits_per_model() {
    let u = uart(Model::Pl011);
    u.set_interrupts(true, true);
    assert_eq!(
        u.mmio().reg(pl011::IMSC),
        pl011::INT_RX | pl011::INT_RT | pl011::INT_TX
    );
    let u = uart(Model::Bcm2835Aux);
    u.set_interrupts(true, false);
    assert_eq!(u.mmio().reg(aux::IER), 0xd);
    u.set_interrupts(false, true);
    assert_eq!(u.mmio().reg(aux::IER), 0x2);
    let u = uart(Model::Cadence);
    u.set_interrupts(true, false);
    assert_eq!(u.mmio().reg(cdns::IMR), cdns::IXR_RXTRIG | cdns::IXR_TOUT);
    u.set_interrupts(false, true);
    assert_eq!(u.mmio().reg(cdns::IMR), cdns::IXR_TXEMPTY);
    let u = uart(Model::Imx);
    u.set_interrupts(true, true);
    assert_eq!(
        u.mmio().reg(imx::UCR1) & (imx::UCR1_RRDYEN | imx::UCR1_TRDYEN),
        imx::UCR1_RRDYEN | imx::UCR1_TRDYEN
    );
    assert_eq!(u.mmio().reg(imx::UCR1) & imx::UCR1_UARTEN, imx::UCR1_UARTEN);
}

/// The receive and transmit interrupts enabled at the device, as its
/// registers say.
fn enabled(model: Model, f: &Fake) -> (bool, bool) {
    match model {
        Model::Pl011 => {
            let m = f.reg(pl011::IMSC);
            (m & pl011::INT_RX != 0, m & pl011::INT_TX != 0)
        }
        Model::Bcm2835Aux => {
            let m = f.reg(aux::IER);
            (m & 1 != 0, m & 2 != 0)
        }
        Model::Cadence => {
            let m = f.reg(cdns::IMR);
            (m & cdns::IXR_RXTRIG != 0, m & cdns::IXR_TXEMPTY != 0)
        }
        Model::Imx => {
            let m = f.reg(imx::UCR1);
            (m & imx::UCR1_RRDYEN != 0, m & imx::UCR1_TRDYEN != 0)
        }
    }
}

/// The line sends what its FIFO holds (as the wire would, between interrupts).
fn drain(f: &Fake) {
    let mut s = f.st.borrow_mut();
    while let Some(b) = s.tx_fifo.pop_front() {
        s.sent.push(b);
    }
}

#[test]
fn rings_polled_move_bytes_both_ways_and_enable_no_interrupt() {
    for model in ALL {
        let u = uart(model);
        u.init();
        let rings = super::Rings::<64, 256>::new();
        rings.set_interrupt_driven(&u, false);
        let f = u.mmio();
        f.receive(b"$m0,4#fd");
        let text: Vec<u8> = (0..200u8).collect();
        assert_eq!(rings.tx.push(&text), 200);
        let mut received = 0;
        while f.st.borrow().sent.len() < text.len() {
            received += rings.service(&u);
            drain(f);
        }
        assert_eq!(received, 8, "{model}");
        assert_eq!(f.st.borrow().sent, text, "{model}: order kept");
        assert_eq!(f.st.borrow().lost, 0, "{model}: never overran the FIFO");
        let mut got = [0u8; 16];
        assert_eq!(rings.rx.pop(&mut got), 8);
        assert_eq!(&got[..8], b"$m0,4#fd");
        assert_eq!(enabled(model, f), (false, false), "{model}");
    }
}

#[test]
fn rings_enable_transmit_interrupts_only_while_bytes_wait() {
    for model in ALL {
        let u = uart(model);
        u.init();
        let f = u.mmio();
        let rings = super::Rings::<64, 256>::new();
        rings.set_interrupt_driven(&u, true);
        assert!(rings.interrupt_driven());
        assert_eq!(enabled(model, f), (true, false), "{model}: idle line");
        let text: Vec<u8> = (0..100u8).map(|i| b'a' + i % 26).collect();
        rings.tx.push(&text);
        // The writer's own service fills the FIFO; the rest waits for the
        // transmit interrupt, which is enabled now.
        rings.service(&u);
        assert_eq!(f.st.borrow().tx_fifo.len(), model.fifo_depth(), "{model}");
        assert_eq!(enabled(model, f), (true, true), "{model}: bytes wait");
        let mut interrupts = 0;
        while !rings.tx.is_empty() {
            drain(f);
            rings.service(&u);
            interrupts += 1;
            assert!(interrupts <= 100, "{model}: the ring never drained");
        }
        drain(f);
        assert_eq!(f.st.borrow().sent, text, "{model}");
        assert_eq!(f.st.borrow().lost, 0, "{model}");
        assert_eq!(
            interrupts,
            (100 - model.fifo_depth()).div_ceil(model.fifo_depth()),
            "{model}: a FIFO's worth per interrupt"
        );
        assert_eq!(enabled(model, f), (true, false), "{model}: ring empty");
        // The mask is written only when it changes.
        f.take_log();
        rings.service(&u);
        assert!(
            f.writes().is_empty(),
            "{model}: an idle service writes nothing: {:?}",
            f.writes()
        );
    }
}

#[test]
fn rings_stop_receive_interrupts_while_the_receive_ring_is_full() {
    for model in ALL {
        let u = uart(model);
        u.init();
        let f = u.mmio();
        let rings = super::Rings::<16, 16>::new();
        rings.set_interrupt_driven(&u, true);
        let input: Vec<u8> = (0..40u8).collect();
        f.receive(&input);
        assert_eq!(rings.service(&u), 16, "{model}");
        assert_eq!(
            enabled(model, f),
            (false, false),
            "{model}: full ring: the device holds the rest"
        );
        assert_eq!(f.st.borrow().rx.len(), 24, "{model}: nothing read and lost");
        let mut got = Vec::new();
        let mut buf = [0u8; 10];
        while got.len() < input.len() {
            let n = rings.rx.pop(&mut buf);
            got.extend_from_slice(&buf[..n]);
            rings.service(&u);
        }
        assert_eq!(got, input, "{model}");
        assert_eq!(enabled(model, f), (true, false), "{model}");
    }
}

#[test]
fn rings_acknowledge_latched_interrupts() {
    for model in [Model::Pl011, Model::Cadence] {
        let u = uart(model);
        u.init();
        let f = u.mmio();
        let rings = super::Rings::<64, 64>::new();
        rings.set_interrupt_driven(&u, true);
        f.st.borrow_mut().latched |= match model {
            Model::Pl011 => pl011::INT_TX | pl011::INT_RT,
            _ => cdns::IXR_TXEMPTY | cdns::IXR_TOUT,
        };
        f.receive(b"x");
        rings.tx.push(b"hello");
        rings.service(&u);
        assert_eq!(rings.rx.pop_byte(), Some(b'x'));
        assert_eq!(f.transmitted(), b"hello");
        assert_eq!(
            u.pending_interrupts(),
            Pending::default(),
            "{model}: latched conditions acknowledged"
        );
    }
}

#[test]
fn ring_keeps_order_across_the_wrap_and_refuses_what_does_not_fit() {
    let r = super::Ring::<8>::new();
    assert_eq!(r.push(b"abcdef"), 6);
    let mut out = [0u8; 4];
    assert_eq!(r.pop(&mut out), 4);
    assert_eq!(&out, b"abcd");
    assert_eq!(r.push(b"ghijklmn"), 6, "room for 6 of 8");
    assert_eq!(r.len(), 8);
    assert_eq!(r.free(), 0);
    assert_eq!(r.push(b"z"), 0);
    let mut all = [0u8; 16];
    assert_eq!(r.peek(&mut all), 8);
    assert_eq!(&all[..8], b"efghijkl");
    r.consume(3);
    assert_eq!(r.pop(&mut all), 5);
    assert_eq!(&all[..5], b"hijkl");
    assert!(r.is_empty());
    assert_eq!(r.pop_byte(), None);
}

type TestPort = super::Port<64, 256>;

#[test]
fn port_before_start_goes_straight_to_the_device() {
    for model in ALL {
        let u = uart(model);
        u.init();
        let port = TestPort::new();
        port.write(&u, b"early");
        assert_eq!(u.mmio().transmitted(), b"early", "{model}");
        u.mmio().receive(b"k");
        assert_eq!(port.read_byte(&u), Some(b'k'), "{model}");
        let st = port.stats();
        assert!(!st.started && st.sent == 0 && st.received == 0, "{model}");
        assert!(port.needs_service(), "{model}: not started is polled");
    }
}

#[test]
fn port_interrupt_driven_writer_leaves_the_rest_to_the_transmit_interrupt() {
    for model in ALL {
        let u = uart(model);
        u.init();
        let f = u.mmio();
        let port = TestPort::new();
        port.start(&u, Some(40));
        assert_eq!(port.intid(), Some(40));
        assert!(!port.needs_service(), "{model}: idle, nothing to poll");
        let text: Vec<u8> = (0..200u8).map(|i| b'a' + i % 26).collect();
        port.write(&u, &text);
        // Returned at once: a FIFO's worth went out, the rest waits in the ring.
        assert_eq!(f.st.borrow().tx_fifo.len(), model.fifo_depth(), "{model}");
        assert_eq!(port.stats().tx_waiting, 200 - model.fifo_depth(), "{model}");
        assert!(port.needs_service(), "{model}: bytes wait to be sent");
        assert_eq!(enabled(model, f), (true, true), "{model}");
        let mut taken = 0;
        while port.stats().tx_waiting > 0 {
            drain(f);
            port.interrupt(&u);
            taken += 1;
            assert!(taken <= 200, "{model}: the ring never drained");
        }
        drain(f);
        assert_eq!(f.st.borrow().sent, text, "{model}");
        assert_eq!(f.st.borrow().lost, 0, "{model}");
        assert_eq!(port.stats().interrupts, taken, "{model}");
        assert_eq!(port.stats().sent, 200, "{model}");
        assert_eq!(enabled(model, f), (true, false), "{model}: nothing to send");
        assert!(!port.needs_service(), "{model}");
    }
}

#[test]
fn port_polled_writer_returns_once_its_bytes_are_in_the_fifo() {
    for model in ALL {
        let u = uart(model);
        u.init();
        let f = u.mmio();
        f.st.borrow_mut().drain_per_poll = 4;
        let port = TestPort::new();
        port.start(&u, None);
        let text: Vec<u8> = (0..600u16).map(|i| (i % 251) as u8).collect();
        port.write(&u, &text);
        assert_eq!(port.stats().tx_waiting, 0, "{model}");
        assert_eq!(f.transmitted(), text, "{model}: all of it, in order");
        assert_eq!(f.st.borrow().lost, 0, "{model}");
        assert_eq!(enabled(model, f), (false, false), "{model}: polled");
        assert!(port.needs_service(), "{model}: polled: every look polls");
    }
}

#[test]
fn port_reader_takes_the_ring_then_polls_the_device_itself() {
    for model in ALL {
        let u = uart(model);
        u.init();
        let f = u.mmio();
        let port = TestPort::new();
        port.start(&u, Some(33));
        // The interrupt fills the ring; the console is told by needs_service.
        f.receive(b"help\r");
        assert_eq!(port.interrupt(&u), 5, "{model}");
        assert!(port.needs_service(), "{model}: received bytes wait");
        let mut buf = [0u8; 16];
        assert_eq!(port.read_some(&u, &mut buf), 5, "{model}");
        assert_eq!(&buf[..5], b"help\r");
        assert!(!port.needs_service(), "{model}: all read");
        // A reader that owns the line (GDB, a snapshot transfer) with interrupts
        // masked: an empty ring makes it poll the device.
        f.receive(b"$g#67");
        assert_eq!(port.read_some(&u, &mut buf), 5, "{model}");
        assert_eq!(&buf[..5], b"$g#67");
        // More than the ring holds: the receive interrupt is masked while it is
        // full and the device keeps the rest; reading re-enables it.
        let input: Vec<u8> = (0..100u8).collect();
        f.receive(&input);
        port.interrupt(&u);
        assert_eq!(port.stats().rx_waiting, 64, "{model}");
        assert_eq!(enabled(model, f).0, false, "{model}: full ring");
        let mut got = Vec::new();
        while got.len() < input.len() {
            let n = port.read_some(&u, &mut buf);
            assert!(n > 0, "{model}: bytes lost");
            got.extend_from_slice(&buf[..n]);
        }
        assert_eq!(got, input, "{model}");
        assert_eq!(port.read_byte(&u), None, "{model}");
        assert_eq!(enabled(model, f).0, true, "{model}: room again");
        assert_eq!(port.stats().received, 110, "{model}");
    }
}

#[test]
fn port_drain_sends_everything_before_the_power_goes() {
    for model in ALL {
        let u = uart(model);
        u.init();
        let f = u.mmio();
        let port = TestPort::new();
        port.start(&u, Some(40));
        let log = b"vm0: powered off (system-off)\nhv: 2 world switches, 1409 counter ticks each\nhv: no VM is left: powering off\n";
        port.write(&u, log);
        assert!(port.stats().tx_waiting > 0, "{model}: more than a FIFO");
        // The line drains while the CPU polls, as a real one does.
        f.st.borrow_mut().drain_per_poll = 2;
        assert!(port.drain(&u), "{model}");
        drain(f);
        assert_eq!(f.st.borrow().sent, log, "{model}");
        assert_eq!(port.stats().tx_waiting, 0, "{model}");
    }
}

#[test]
fn port_crash_drain_writes_what_waits_unless_the_lock_is_held() {
    let u = uart(Model::Pl011);
    u.init();
    let port = TestPort::new();
    port.start(&u, Some(40));
    port.write(&u, &[b'x'; 40]);
    u.mmio().st.borrow_mut().drain_per_poll = 16;
    assert!(port.drain_for_crash(&u));
    assert_eq!(port.stats().tx_waiting, 0);
    assert_eq!(u.mmio().transmitted(), [b'x'; 40]);
}

#[test]
fn port_tight_reader_costs_one_status_read_on_an_idle_line() {
    for model in ALL {
        let u = uart(model);
        u.init();
        let f = u.mmio();
        let port = TestPort::new();
        port.start(&u, Some(40));
        f.take_log();
        let mut buf = [0u8; 8];
        assert_eq!(port.read_some(&u, &mut buf), 0, "{model}");
        assert_eq!(
            f.take_log().len(),
            1,
            "{model}: one status read, nothing else"
        );
        // Output waiting in the ring is sent by the reader's poll too (the
        // reader keeps interrupts masked while it owns the line).
        f.fill_tx(model.fifo_depth());
        port.write(&u, b"ack");
        assert_eq!(port.stats().tx_waiting, 3, "{model}: FIFO full");
        drain(f);
        port.read_some(&u, &mut buf);
        assert_eq!(
            port.stats().tx_waiting,
            0,
            "{model}: sent by the reader's poll"
        );
    }
}

#[test]
fn port_held_by_a_reader_masks_the_receive_interrupt_until_given_back() {
    for model in ALL {
        let u = uart(model);
        u.init();
        let f = u.mmio();
        let port = TestPort::new();
        port.start(&u, Some(40));
        assert_eq!(enabled(model, f), (true, false), "{model}");
        port.hold(&u, true);
        assert_eq!(enabled(model, f), (false, false), "{model}: held: masked");
        assert!(port.needs_service(), "{model}: held: the tick polls");
        // The holder polls: bytes arrive without an interrupt, cheaply.
        f.receive(b"frame");
        f.take_log();
        let mut buf = [0u8; 8];
        assert_eq!(port.read_some(&u, &mut buf), 5, "{model}");
        assert!(
            f.writes().is_empty(),
            "{model}: a held poll writes no register: {:?}",
            f.writes()
        );
        port.hold(&u, false);
        assert_eq!(enabled(model, f), (true, false), "{model}: given back");
        assert!(!port.needs_service(), "{model}");
    }
}
