//! The binary transfer end to end on the host: an encoder, a line that damages,
//! drops or reorders bytes, a receiver with a decoder.
use super::frame::{self, Frame, FrameReader, Got};
use super::link::{message, MessageReader, Receiver, Rx, Sender, ABORT, ACK, FIN, NAK, WINDOW};
use super::tests::{encode_sample, sample, RAM_IPA};
use super::*;

/// Runs a transfer of the sample over a line that applies `damage` to the n-th
/// frame sent (counting repeats); returns the bytes received and the sender's
/// repeat count.
fn transfer(mut damage: impl FnMut(u64, &mut Vec<u8>)) -> Result<(Vec<u8>, u64), SnapshotError> {
    let (h, cpus, ram) = sample();
    let gic = b"gic-state".to_vec();
    let mut enc = Encoder::new(&h, &cpus, Some(&gic));
    let mut read = |ipa: u64, page: &mut [u8; PAGE]| {
        let off = (ipa - RAM_IPA) as usize;
        page.copy_from_slice(&ram[off..off + PAGE]);
    };
    let mut tx = Sender::new(u32::MAX as u64);
    let mut rx = Receiver::new();
    let mut dec = Decoder::new();
    let mut acks = MessageReader::new();
    let mut out = MAGIC.to_vec();
    let mut sent = 0u64;
    let mut rounds = 0;
    while !tx.done() {
        rounds += 1;
        assert!(rounds < 10_000, "the transfer does not finish");
        let mut back = Vec::new();
        while let Some(seq) = tx.next() {
            let mut buf = b"noise\r\n".to_vec();
            enc.frame(seq, &mut read, &mut buf);
            if let Some(total) = enc.frames() {
                tx.set_total(total);
            }
            damage(sent, &mut buf);
            sent += 1;
            for b in buf {
                match rx.push(b) {
                    Rx::None => {}
                    Rx::Reply(m) => back.extend_from_slice(&m),
                    Rx::Frame => {
                        let f = rx.frame();
                        let start = out.len();
                        frame::write(&mut out, f.kind, f.seq, f.payload);
                        if let Err(e) = dec.feed(f) {
                            out.truncate(start);
                            return Err(e);
                        }
                        back.extend_from_slice(&rx.accept());
                    }
                }
            }
        }
        let mut heard = false;
        for b in back {
            if let Some((k, n)) = acks.push(b) {
                heard = true;
                assert!(tx.on_message(k, n));
            }
        }
        if !heard {
            tx.on_silence();
        }
    }
    assert!(dec.ended());
    Ok((out, tx.repeated))
}

#[test]
fn a_clean_transfer_gives_the_file_byte_for_byte() {
    let (file, _, _) = encode_sample();
    let (got, repeated) = transfer(|_, _| {}).unwrap();
    assert_eq!(got, file);
    assert_eq!(repeated, 0);
}

#[test]
fn a_damaged_frame_is_asked_for_again_and_the_file_is_whole() {
    let (file, _, _) = encode_sample();
    // Frame 4 (the first RAM frame's neighbourhood) damaged once, in its payload.
    let (got, repeated) = transfer(|n, buf| {
        if n == 4 {
            let at = buf.len() - 10;
            buf[at] ^= 0x40;
        }
    })
    .unwrap();
    assert_eq!(got, file);
    assert!(repeated >= 1, "nothing was sent again");
    // A damaged header: the receiver skips to the next frame, sees a gap, asks again.
    let (got, _) = transfer(|n, buf| {
        if n == 2 {
            buf[7 + 5] ^= 1; // the seq field, after "noise\r\n"
        }
    })
    .unwrap();
    assert_eq!(got, file);
    // A frame lost entirely.
    let (got, _) = transfer(|n, buf| {
        if n == 3 {
            buf.clear();
        }
    })
    .unwrap();
    assert_eq!(got, file);
}

#[test]
fn the_reader_reports_a_damaged_frame_by_number_and_finds_the_next() {
    let mut bytes = b"hv> junk \xf5 more".to_vec();
    frame::write(&mut bytes, frame::KIND_HEAD, 0, b"abc");
    let damaged_at = bytes.len();
    frame::write(&mut bytes, frame::KIND_VCPU, 1, b"defg");
    bytes[damaged_at + frame::HEADER_LEN + 1] ^= 1;
    frame::write(&mut bytes, frame::KIND_VCPU, 2, b"hij");
    let mut r = FrameReader::new();
    let mut got = Vec::new();
    for b in bytes {
        match r.push(b) {
            Some(Got::Frame) => got.push(Ok(r.frame().seq)),
            Some(Got::Damaged { seq }) => got.push(Err(seq)),
            None => {}
        }
    }
    assert_eq!(got, [Ok(0), Err(1), Ok(2)]);
    let msg = SnapshotError::FrameDamaged { seq: 1 }.to_string();
    assert_eq!(
        msg,
        "frame 1 is damaged: its contents do not match its CRC-32"
    );
}

#[test]
fn truncated_reordered_and_misplaced_frames_are_refused_by_name() {
    let (file, _, _) = encode_sample();
    // Truncated: at any length, a clear error, never a panic.
    for len in (MAGIC.len()..file.len()).step_by(101) {
        let e = decode(&file[..len]).expect_err("a truncated file decodes");
        assert!(!e.to_string().contains('{'), "{e}");
    }
    // Frames: split them, then swap two.
    let frames: Vec<(usize, usize)> = frame::split(&file[MAGIC.len()..], MAGIC.len())
        .map(|f| {
            let (at, f) = f.unwrap();
            (at, at + frame::HEADER_LEN + f.payload.len() + 4)
        })
        .collect();
    let mut swapped = MAGIC.to_vec();
    let order = [0usize, 2, 1];
    for &i in order.iter().chain(&[3, 4, 5]) {
        swapped.extend_from_slice(&file[frames[i].0..frames[i].1]);
    }
    assert_eq!(
        decode(&swapped).unwrap_err().to_string(),
        "frame 2 arrived where frame 1 was expected"
    );
    // A frame of the right number but the wrong kind.
    let mut d = Decoder::new();
    let e = d
        .feed(Frame {
            kind: frame::KIND_PAGES,
            seq: 0,
            payload: &[],
        })
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "frame 0 is a RAM frame where a header frame was expected"
    );
    // One damaged byte in a file: the frame is named.
    let mut bad = file.clone();
    let (at, end) = frames[4];
    bad[(at + end) / 2] ^= 4;
    assert_eq!(
        decode(&bad).unwrap_err(),
        SnapshotError::FrameDamaged { seq: 4 }
    );
}

#[test]
fn messages_survive_noise_and_the_window_is_bounded() {
    let mut r = MessageReader::new();
    let mut line = b"\xf5\xac\xf5junk".to_vec();
    line.extend_from_slice(&message(ACK, 7));
    let mut bad = message(NAK, 3);
    bad[4] ^= 1;
    line.extend_from_slice(&bad);
    line.extend_from_slice(&message(NAK, 5));
    let got: Vec<_> = line.into_iter().filter_map(|b| r.push(b)).collect();
    assert_eq!(got, [(ACK, 7), (NAK, 5)]);
    let mut tx = Sender::new(100);
    let first: Vec<u64> = core::iter::from_fn(|| tx.next()).collect();
    assert_eq!(first.len() as u64, WINDOW);
    assert!(tx.on_message(ACK, 3));
    assert_eq!(tx.next(), Some(WINDOW));
    assert!(!tx.on_message(ABORT, 0));
}

#[test]
fn a_fin_is_found_behind_frames_sent_again() {
    // What the receiver discards after the end frame: repeated frames (their
    // payload may hold the message sync bytes), then the sender's FIN.
    let mut line = Vec::new();
    for seq in 40..45u32 {
        let mut payload = vec![0xf5, 0xac, b'F'];
        payload.extend((0..300u32).map(|i| (i * seq) as u8));
        frame::write(&mut line, frame::KIND_PAGES, seq, &payload);
    }
    line.extend_from_slice(&message(FIN, 45));
    let mut r = MessageReader::new();
    let got: Vec<_> = line.into_iter().filter_map(|b| r.push(b)).collect();
    assert_eq!(got, [(FIN, 45)]);
}
