//! Host tests of what a streamed save sends to make the line carry fewer bytes:
//! compressed data pages (`Z`) and pages as booted (`D`, `B`).

use super::frame::{self, KIND_BOOTED, KIND_DELTA, KIND_DEPENDS, KIND_PACKED};
use super::stream::BootImage;
use super::tests::{sample, RAM_IPA};
use super::*;

/// The boot image of these tests: pages 2-7 of the sample VM's 16.
const IMAGE_FIRST: usize = 2;
const IMAGE_PAGES: usize = 6;

/// The image's bytes (kept for the whole test run, as a hypervisor keeps its
/// originals).
fn image_bytes() -> &'static [u8] {
    static IMAGE: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    IMAGE.get_or_init(|| {
        (0..IMAGE_PAGES * PAGE)
            .map(|i| (i as u32).wrapping_mul(2_654_435_761).to_le_bytes()[3])
            .collect()
    })
}

fn image() -> BootImage {
    let bytes = image_bytes();
    BootImage {
        ipa: RAM_IPA + (IMAGE_FIRST * PAGE) as u64,
        size: bytes.len() as u64,
        crc: crate::crc32::hash(&bytes),
    }
}

/// Encodes `ram` as a streamed save does: compressed, and with `images` (none:
/// self-contained).
fn encode_line(ram: &[u8], images: &[BootImage]) -> Vec<u8> {
    let (h, cpus, _) = sample();
    let img = image_bytes();
    let original = |ipa: u64| {
        let off = usize::try_from(ipa.checked_sub(image().ipa)?).ok()?;
        img.get(off..off + PAGE)
    };
    let mut read = |ipa: u64, page: &mut [u8; PAGE]| {
        let off = (ipa - RAM_IPA) as usize;
        page.copy_from_slice(&ram[off..off + PAGE]);
    };
    let mut enc = Encoder::new(&h, &cpus, Some(b"gic-state"))
        .with_compression()
        .with_booted(Booted {
            images,
            original: &original,
        });
    let mut out = MAGIC.to_vec();
    let mut seq = 0;
    while enc.frames().is_none() {
        enc.frame(seq, &mut read, &mut out);
        seq += 1;
    }
    out
}

fn kinds(file: &[u8]) -> Vec<u8> {
    frame::split(&file[MAGIC.len()..], MAGIC.len())
        .map(|f| f.unwrap().1.kind)
        .collect()
}

/// The RAM a decoded snapshot gives back, pages as booted taken from `img`.
fn ram_of(p: &Parsed, img: &[u8]) -> Vec<u8> {
    let mut back = vec![0x55u8; p.header.ram_size as usize];
    p.for_each_page(|ipa, page| {
        let off = (ipa - RAM_IPA) as usize;
        match page {
            Some(d) => back[off..off + PAGE].copy_from_slice(d),
            None => back[off..off + PAGE].fill(0),
        }
    });
    p.for_each_booted(|ipa, delta| {
        let off = (ipa - RAM_IPA) as usize;
        let from = off - IMAGE_FIRST * PAGE;
        for i in 0..PAGE {
            back[off + i] = img[from + i] ^ delta.map_or(0, |d| d[i]);
        }
    });
    back
}

#[test]
fn compressible_pages_go_compressed_and_come_back() {
    let (_, _, mut ram) = sample();
    // Pages 3-5: text that compresses; page 9: noise that does not.
    for (i, b) in ram[3 * PAGE..6 * PAGE].iter_mut().enumerate() {
        *b = b"the quick brown fox "[i % 20];
    }
    let mut x = 0x9e37_79b9u32;
    for b in &mut ram[9 * PAGE..10 * PAGE] {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        *b = x as u8;
    }
    let file = encode_line(&ram, &[]);
    let k = kinds(&file);
    assert!(
        k.contains(&KIND_PACKED),
        "frames {:?}",
        String::from_utf8_lossy(&k)
    );
    assert!(!k.contains(&KIND_DEPENDS));
    let p = decode(&file).unwrap();
    assert!(p.depends.is_empty());
    assert_eq!(ram_of(&p, &[]), ram);
    // Smaller than the same snapshot uncompressed.
    let (h, cpus, _) = sample();
    let mut plain = Vec::new();
    encode(
        &h,
        &cpus,
        Some(b"gic-state"),
        |ipa, page| {
            let off = (ipa - RAM_IPA) as usize;
            page.copy_from_slice(&ram[off..off + PAGE]);
        },
        &mut plain,
    );
    assert!(
        file.len() + 2 * PAGE < plain.len(),
        "{} vs {}",
        file.len(),
        plain.len()
    );
}

#[test]
fn pages_that_still_hold_the_boot_image_go_as_booted_runs() {
    let (_, _, mut ram) = sample();
    let img = image_bytes();
    let at = IMAGE_FIRST * PAGE;
    ram[at..at + img.len()].copy_from_slice(&img);
    // The guest changed one page of its image (page 5).
    ram[5 * PAGE + 17] ^= 0xff;
    let file = encode_line(&ram, &[image()]);
    // H C C G D | R(0-1) B(2-4) X(5: its difference from the image) B(6-7) ...
    let k = kinds(&file);
    assert_eq!(&k[..9], b"HCCGDRBXB", "{}", String::from_utf8_lossy(&k));
    let p = decode(&file).unwrap();
    assert_eq!(p.depends, [image()]);
    let mut pages = Vec::new();
    p.for_each_booted(|ipa, d| {
        // The difference of page 5: one byte, all ones.
        let ones = d.map(|d| d.iter().map(|b| b.count_ones()).sum::<u32>());
        pages.push(((ipa - RAM_IPA) / PAGE as u64, ones))
    });
    assert_eq!(
        pages,
        [
            (2, None),
            (3, None),
            (4, None),
            (5, Some(8)),
            (6, None),
            (7, None)
        ]
    );
    assert_eq!(ram_of(&p, img), ram);
    // Self-contained: no D or B frame, and the same RAM.
    let whole = encode_line(&ram, &[]);
    assert!(!kinds(&whole).contains(&KIND_BOOTED));
    assert_eq!(ram_of(&decode(&whole).unwrap(), &[]), ram);
    assert!(!kinds(&whole).contains(&KIND_DELTA));
    assert!(whole.len() > file.len());
}

#[test]
fn every_line_frame_encoded_again_is_the_same_bytes() {
    let (_, _, mut ram) = sample();
    let img = image_bytes();
    ram[IMAGE_FIRST * PAGE..IMAGE_FIRST * PAGE + img.len()].copy_from_slice(&img);
    ram[10 * PAGE..12 * PAGE].fill(b'x');
    let file = encode_line(&ram, &[image()]);
    let frames: Vec<Vec<u8>> = frame::split(&file[MAGIC.len()..], MAGIC.len())
        .map(|f| {
            let (_, f) = f.unwrap();
            let mut v = Vec::new();
            frame::write(&mut v, f.kind, f.seq, f.payload);
            v
        })
        .collect();
    let (h, cpus, _) = sample();
    let original = |ipa: u64| {
        let off = usize::try_from(ipa.checked_sub(image().ipa)?).ok()?;
        img.get(off..off + PAGE)
    };
    let images = [image()];
    let mut read = |ipa: u64, page: &mut [u8; PAGE]| {
        let off = (ipa - RAM_IPA) as usize;
        page.copy_from_slice(&ram[off..off + PAGE]);
    };
    let mut enc = Encoder::new(&h, &cpus, Some(b"gic-state"))
        .with_compression()
        .with_booted(Booted {
            images: &images,
            original: &original,
        });
    // Backwards from the end (a go-back repeats frames in any order).
    for seq in (0..frames.len()).rev().chain(0..frames.len()) {
        let mut out = Vec::new();
        enc.frame(seq as u64, &mut read, &mut out);
        assert_eq!(out, frames[seq], "frame {seq}");
    }
}

/// The file with the frame of `kind` changed by `f`, checksums made right.
fn edited(file: &[u8], kind: u8, f: impl Fn(&mut [u8])) -> Vec<u8> {
    let mut file = file.to_vec();
    let (at, len) = frame::split(&file[MAGIC.len()..], MAGIC.len())
        .map(|x| x.unwrap())
        .find(|(_, fr)| fr.kind == kind)
        .map(|(at, fr)| (at, fr.payload.len()))
        .unwrap();
    f(&mut file[at + frame::HEADER_LEN..at + frame::HEADER_LEN + len]);
    frame::fix_checksums(&mut file[MAGIC.len()..]);
    file
}

#[test]
fn booted_pages_outside_the_images_and_bad_compressed_data_are_refused_by_name() {
    let (_, _, mut ram) = sample();
    let img = image_bytes();
    ram[IMAGE_FIRST * PAGE..IMAGE_FIRST * PAGE + img.len()].copy_from_slice(&img);
    for (i, b) in ram[10 * PAGE..12 * PAGE].iter_mut().enumerate() {
        *b = (i / 64) as u8;
    }
    let file = encode_line(&ram, &[image()]);
    // The image made one page shorter: its last booted run no longer fits.
    let short = edited(&file, KIND_DEPENDS, |p| {
        let size = u64::from_le_bytes(p[9..17].try_into().unwrap()) - PAGE as u64;
        p[9..17].copy_from_slice(&size.to_le_bytes());
    });
    assert_eq!(
        decode(&short).err(),
        Some(SnapshotError::Malformed(
            "booted pages outside the boot images",
            IMAGE_FIRST as u64
        ))
    );
    // An image outside RAM.
    let outside = edited(&file, KIND_DEPENDS, |p| {
        p[1..9].copy_from_slice(&0u64.to_le_bytes())
    });
    assert!(matches!(
        decode(&outside),
        Err(SnapshotError::Malformed("boot image's place", 0))
    ));
    // Compressed data that does not decompress to its pages.
    let bad = edited(&file, KIND_PACKED, |p| {
        for b in &mut p[11..] {
            *b = 0xff;
        }
    });
    assert!(matches!(
        decode(&bad),
        Err(SnapshotError::Malformed("compressed RAM frame's data", _))
    ));
}
