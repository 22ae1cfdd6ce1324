//! Allocation-tag frames (`T`, MTE) of format 2: what a VM with tagged pages
//! writes, what a reader accepts, and that a snapshot without them is unchanged.

use super::frame::{self, KIND_PAGES, KIND_TAGS};
use super::stream::{Tags, TAGGED_PER_FRAME, TAG_BYTES};
use super::tests::sample;
use super::*;

/// 48 pages of RAM (3 RAM frames), for more tagged pages than one tag frame holds.
fn big() -> (Header, Vec<CpuState>) {
    let (mut h, cpus, _) = sample();
    h.ram_size = 48 * PAGE as u64;
    (h, cpus)
}

fn page_of(ipa: u64, h: &Header) -> u64 {
    (ipa - h.ram_ipa) / PAGE as u64
}

/// Tags of page `p`: distinct per page, never all zero.
fn tags_of(p: u64) -> [u8; TAG_BYTES] {
    core::array::from_fn(|i| (p as u8).wrapping_mul(31) ^ (i as u8) | 1)
}

fn encode_with(h: &Header, cpus: &[CpuState], tagged: Option<&[u64]>) -> Vec<u8> {
    let read_tags = |ipa: u64, t: &mut [u8; TAG_BYTES]| *t = tags_of(page_of(ipa, h));
    let mut e = Encoder::new(h, cpus, None);
    if let Some(pages) = tagged {
        e = e.with_tags(Tags {
            pages,
            read: &read_tags,
        });
    }
    let mut out = MAGIC.to_vec();
    // Pages of data (not all one byte, which would make run frames).
    let mut read = |ipa: u64, p: &mut [u8; PAGE]| {
        p.fill((ipa >> 12) as u8 | 1);
        p[PAGE - 1] = 0;
    };
    let mut seq = 0;
    while e.frames().is_none() {
        e.frame(seq, &mut read, &mut out);
        seq += 1;
    }
    out
}

#[test]
fn tagged_pages_come_back_with_their_tags_after_the_ram() {
    let (h, cpus) = big();
    // More than a frame's worth (two tag frames), ascending, first and last page.
    let tagged: Vec<u64> = (0..48).filter(|p| p % 7 != 3).collect();
    assert!(tagged.len() > TAGGED_PER_FRAME);
    let bytes = encode_with(&h, &cpus, Some(&tagged));
    let kinds: Vec<u8> = frame::split(&bytes[MAGIC.len()..], MAGIC.len())
        .map(|f| f.unwrap().1.kind)
        .collect();
    let t_at = kinds.iter().position(|&k| k == KIND_TAGS).unwrap();
    assert_eq!(kinds[t_at - 1], KIND_PAGES, "tags follow the RAM");
    assert_eq!(&kinds[t_at..], &[KIND_TAGS, KIND_TAGS, frame::KIND_END]);
    let p = decode(&bytes).unwrap();
    let mut back = Vec::new();
    p.for_each_tagged(|ipa, t| back.push((page_of(ipa, &h), *t)));
    let want: Vec<_> = tagged.iter().map(|&p| (p, tags_of(p))).collect();
    assert_eq!(back, want);
    assert_eq!(p.tagged_pages(), tagged.len() as u64);
    // The RAM is unchanged by them.
    let mut pages = 0;
    p.for_each_page(|ipa, d| {
        assert_eq!(d.unwrap()[0], (ipa >> 12) as u8 | 1);
        pages += 1;
    });
    assert_eq!(pages, 48);
}

/// A VM with MTE and no tagged page, and a VM without MTE, write the same bytes
/// as before tag frames existed; such a snapshot has no tags.
#[test]
fn no_tagged_page_means_no_tag_frame_and_the_same_bytes() {
    let (h, cpus) = big();
    let plain = encode_with(&h, &cpus, None);
    assert_eq!(encode_with(&h, &cpus, Some(&[])), plain);
    let p = decode(&plain).unwrap();
    assert_eq!(p.tagged_pages(), 0);
}

/// Rewrites the first tag frame's payload (and renumbers nothing: same seq).
fn with_tag_payload(bytes: &[u8], payload: &[u8]) -> Vec<u8> {
    let mut out = MAGIC.to_vec();
    for f in frame::split(&bytes[MAGIC.len()..], MAGIC.len()) {
        let (_, f) = f.unwrap();
        let body = if f.kind == KIND_TAGS {
            payload
        } else {
            f.payload
        };
        frame::write(&mut out, f.kind, f.seq, body);
    }
    out
}

fn entry(page: u64) -> Vec<u8> {
    let mut e = page.to_le_bytes().to_vec();
    e.extend_from_slice(&tags_of(page));
    e
}

#[test]
fn a_tag_frame_out_of_order_outside_ram_or_misshapen_is_refused() {
    let (h, cpus) = big();
    let good = encode_with(&h, &cpus, Some(&[2, 5]));
    assert!(decode(&good).is_ok());
    let frame_of = |entries: &[u64], count: u8| {
        let mut p = vec![count];
        for &e in entries {
            p.extend(entry(e));
        }
        p
    };
    for (payload, what) in [
        (frame_of(&[5, 2], 2), "tag frame's page"),
        (frame_of(&[2, 2], 2), "tag frame's page"),
        (frame_of(&[48], 1), "tag frame's page"),
        (frame_of(&[], 0), "tag frame's page count"),
        (frame_of(&[2, 5], 3), "tag frame's length"),
        (frame_of(&[2, 5], 1), "tag frame's length"),
        (vec![TAGGED_PER_FRAME as u8 + 1], "tag frame's page count"),
    ] {
        match decode(&with_tag_payload(&good, &payload)) {
            Err(SnapshotError::Malformed(w, _)) => assert_eq!(w, what),
            other => panic!("{what}: {other:?}"),
        }
    }
    // In the wrong place: a tag frame before the RAM is complete, a RAM frame
    // after a tag frame.
    let mut d = Decoder::new();
    let frames: Vec<_> = frame::split(&good[MAGIC.len()..], MAGIC.len())
        .map(|f| f.unwrap().1)
        .collect();
    let first_ram = frames.iter().position(|f| f.kind == KIND_PAGES).unwrap();
    for f in &frames[..first_ram] {
        d.feed(*f).unwrap();
    }
    let t = *frames.iter().find(|f| f.kind == KIND_TAGS).unwrap();
    let early = frame::Frame {
        seq: d.next_seq(),
        ..t
    };
    assert!(matches!(
        d.feed(early),
        Err(SnapshotError::FrameKind {
            found: KIND_TAGS,
            ..
        })
    ));
    let mut d = Decoder::new();
    let t_at = frames.iter().position(|f| f.kind == KIND_TAGS).unwrap();
    for f in &frames[..=t_at] {
        d.feed(*f).unwrap();
    }
    assert_eq!(d.tagged(), 2);
    let late = frame::Frame {
        seq: d.next_seq(),
        ..frames[first_ram]
    };
    assert!(matches!(
        d.feed(late),
        Err(SnapshotError::FrameKind {
            found: KIND_PAGES,
            expected: "tags or end",
            ..
        })
    ));
}

#[test]
fn tags_follow_run_frames_too() {
    let (h, cpus) = big();
    let tagged = [0u64, 5, 47];
    let read_tags = |ipa: u64, t: &mut [u8; TAG_BYTES]| *t = tags_of(page_of(ipa, &h));
    let e = Encoder::new(&h, &cpus, None).with_tags(Tags {
        pages: &tagged,
        read: &read_tags,
    });
    // Zero RAM: one run frame covers it.
    let bytes = encode_frames(e, |_, p| p.fill(0));
    let kinds: Vec<u8> = frame::split(&bytes[MAGIC.len()..], MAGIC.len())
        .map(|f| f.unwrap().1.kind)
        .collect();
    let t_at = kinds.iter().position(|&k| k == KIND_TAGS).unwrap();
    assert_eq!(kinds[t_at - 1], frame::KIND_RUN, "tags follow the RAM");
    assert_eq!(&kinds[t_at..], &[KIND_TAGS, frame::KIND_END]);
    let p = decode(&bytes).unwrap();
    let mut back = Vec::new();
    p.for_each_tagged(|ipa, t| back.push((page_of(ipa, &h), *t)));
    let want: Vec<_> = tagged.iter().map(|&p| (p, tags_of(p))).collect();
    assert_eq!(back, want);
}

/// Every frame of `e`, after the magic.
fn encode_frames(mut e: Encoder, mut read: impl FnMut(u64, &mut [u8; PAGE])) -> Vec<u8> {
    let mut out = MAGIC.to_vec();
    let mut seq = 0;
    while e.frames().is_none() {
        e.frame(seq, &mut read, &mut out);
        seq += 1;
    }
    out
}
