//! Format version 2: the snapshot as a stream of frames (`frame.rs`), so it is
//! written and read a page at a time and never needs to be whole in memory.
//!
//! ```text
//! magic "HVSNAP\r\n", then frames numbered from 0:
//!   H       the header (the v1 HEAD payload, version 2)
//!   C ...   one per vCPU, in index order (the v1 VCPU payload)
//!   G       the vGIC state (optional)
//!   D       the boot images B frames refer to (optional): count u8 | (IPA u64 | size u64 | CRC-32 u32)...
//!   P|Z|R|B RAM in order, each frame from where the one before ended:
//!     P     up to 16 pages: first page u64 | count u8 | map u16 | data of the set bits
//!     Z     as P, the data of the set bits compressed (one LZ4 block)
//!     R     a run of pages all of one byte: first page u64 | count u32 | byte u8
//!     B     a run of pages that hold what a boot image put there: first page u64 | count u32
//!   T ...   allocation tags (MTE) of the pages with any: count u8 | (page u64 | 128 bytes)...
//!   E       pages u64 | frames u32
//! ```
//!
//! A run frame makes the zero (or 0xff, ...) RAM of a big VM nearly free: a 1 GiB
//! VM that is mostly zero is a few hundred frames, not 16384.
//!
//! What a serial line carries sets the pace of a transfer (QEMU's PL011 hands the
//! hypervisor one byte per turn of its main loop), so a streamed save sends fewer
//! bytes two ways: pages that still hold what the VM's kernel or initrd put there
//! at boot (most of a kernel's text) go as `B` runs, which the receiving
//! hypervisor copies from its own kept originals, once the `D` frame has shown
//! they are the same images (IPA, size, CRC-32); and data pages are compressed
//! (`Z`) when that makes them smaller. A snapshot with `B` frames is not
//! self-contained: it restores only into a VM booted with the same images.
//!
//! Frame `n` is a pure function of the paused VM ([`Encoder::frame`]), so a sender
//! that must repeat a frame (a damaged one on the line) encodes it again from guest
//! RAM instead of keeping what it sent. [`Decoder`] checks each frame's number and
//! place as it arrives, so a receiver applies RAM frames as they come.
#![forbid(unsafe_code)]

use super::fields::{read_cpu, read_head, write_cpu, write_head};
use super::frame::{
    self, Frame, KIND_BOOTED, KIND_DELTA, KIND_DEPENDS, KIND_END, KIND_GIC, KIND_HEAD, KIND_PACKED,
    KIND_PAGES, KIND_RUN, KIND_TAGS, KIND_VCPU,
};
use super::wire::{Reader, Writer};
use super::{CpuState, Header, Parsed, Ram, SnapshotError, MAGIC, PAGE};
use alloc::vec::Vec;

pub const VERSION: u32 = 2;
/// Pages per RAM frame (a frame is at most 64 KiB of data).
pub const PAGES_PER_FRAME: u64 = 16;
/// RAM frame payload: first page, count, map.
const PAGES_HEAD: usize = 8 + 1 + 2;
/// Allocation-tag bytes of a page: a 4-bit tag per 16-byte granule, the
/// granule at the lower address in the low nibble.
pub const TAG_BYTES: usize = PAGE / 32;
/// Tagged pages per tag frame.
pub const TAGGED_PER_FRAME: usize = 32;

/// The pages with allocation tags (MTE) of the VM being encoded: their indexes
/// from the RAM base, ascending, and how to read a page's tags by IPA.
#[derive(Clone, Copy)]
pub struct Tags<'a> {
    pub pages: &'a [u64],
    pub read: &'a dyn Fn(u64, &mut [u8; TAG_BYTES]),
}

/// A boot image (a kernel, an initrd) in the VM's RAM: where the boot put it, its
/// size and CRC-32. `B` frames name pages that still hold its bytes.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct BootImage {
    pub ipa: u64,
    pub size: u64,
    pub crc: u32,
}

/// Boot images a `D` frame may list.
pub const BOOT_IMAGES_MAX: usize = 8;
/// A `D` frame's bytes per image.
const BOOT_IMAGE_LEN: usize = 20;

impl BootImage {
    /// Whether `pages` whole pages from `ipa` lie inside the image.
    pub fn holds(&self, ipa: u64, pages: u64) -> bool {
        ipa >= self.ipa
            && (ipa - self.ipa)
                .checked_add(pages.saturating_mul(PAGE as u64))
                .is_some_and(|end| end <= self.size)
    }
}

/// The boot images of the VM being encoded, and their bytes.
#[derive(Clone, Copy)]
pub struct Booted<'a> {
    pub images: &'a [BootImage],
    /// `original(ipa)`: the 4 KiB of a boot image at `ipa` (a page wholly inside
    /// one of `images`), as the boot put them there (memory kept as long as the
    /// VM lives: a hypervisor's kept originals).
    pub original: &'a dyn Fn(u64) -> Option<&'static [u8]>,
}

impl Booted<'_> {
    /// The image's bytes for the page at `ipa`, if it lies in one.
    fn original(&self, ipa: u64) -> Option<&'static [u8]> {
        if self.images.iter().any(|i| i.holds(ipa, 1)) {
            (self.original)(ipa).filter(|o| o.len() == PAGE)
        } else {
            None
        }
    }

    /// Whether the page at `ipa` still holds what the boot put there.
    fn holds(&self, ipa: u64, page: &[u8; PAGE]) -> bool {
        self.original(ipa).is_some_and(|o| o == page)
    }
}

/// Writes a VM's snapshot frame by frame.
pub struct Encoder<'a> {
    pub header: Header,
    pub cpus: &'a [CpuState],
    pub gic: Option<&'a [u8]>,
    /// Where recent RAM frames start, (frame number, page), at `seq % STARTS`: a
    /// frame repeated within the transfer window is found without a walk.
    starts: [(u64, u64); STARTS],
    /// The number of frames, once the end frame has been encoded.
    total: Option<u64>,
    /// The pages covered by the frames encoded so far.
    reached: u64,
    /// The first frame after the RAM frames, once known.
    ram_end: Option<u64>,
    scratch: Vec<u8>,
    /// Allocation tags, for a VM with MTE (none: no tag frames).
    pub tags: Option<Tags<'a>>,
    /// Boot images (none: a self-contained snapshot, no `D` or `B` frames).
    booted: Option<Booted<'a>>,
    /// Data pages are compressed (`Z`) where that makes them smaller.
    compress: bool,
    packed: Vec<u8>,
    /// `known_zero(ipa)`: how many bytes from `ipa` are zero without reading them
    /// (RAM the VM never touched), 0 where unknown.
    known_zero: Option<&'a dyn Fn(u64) -> u64>,
}

/// Frame starts remembered (more than the transfer's window of 8).
const STARTS: usize = 32;
/// The most pages one run frame covers (64 MiB): a receiver writes them all before
/// it acknowledges the frame, so a frame's work stays short of the sender's timeout.
pub const MAX_RUN: u64 = 16384;

/// A page whose 4096 bytes are all the same: that byte.
pub fn uniform(page: &[u8; PAGE]) -> Option<u8> {
    let b = page[0];
    let pattern = u64::from_ne_bytes([b; 8]);
    page.chunks_exact(8)
        .all(|w| u64::from_ne_bytes([w[0], w[1], w[2], w[3], w[4], w[5], w[6], w[7]]) == pattern)
        .then_some(b)
}

impl<'a> Encoder<'a> {
    pub fn new(header: &Header, cpus: &'a [CpuState], gic: Option<&'a [u8]>) -> Self {
        Self {
            header: *header,
            cpus,
            gic,
            starts: [(u64::MAX, 0); STARTS],
            total: None,
            reached: 0,
            ram_end: None,
            scratch: alloc::vec![0; PAGE],
            tags: None,
            booted: None,
            compress: false,
            packed: Vec::new(),
            known_zero: None,
        }
    }

    /// Pages `known_zero` vouches for are encoded as zero without being read:
    /// `known_zero(ipa)` is how many bytes from `ipa` are zero (0: unknown).
    pub fn with_known_zero(mut self, known_zero: &'a dyn Fn(u64) -> u64) -> Self {
        self.known_zero = Some(known_zero);
        self
    }

    /// Pages that hold what `booted.images` (at most [`BOOT_IMAGES_MAX`]; none:
    /// no effect) put there go as `B` frames, after a `D` frame that lists them.
    pub fn with_booted(mut self, mut booted: Booted<'a>) -> Self {
        booted.images = &booted.images[..booted.images.len().min(BOOT_IMAGES_MAX)];
        self.booted = (!booted.images.is_empty()).then_some(booted);
        self
    }

    /// Data pages go compressed (`Z`) where that makes them smaller.
    pub fn with_compression(mut self) -> Self {
        self.compress = true;
        self
    }

    /// Adds tag frames for `tags.pages` after the RAM frames.
    pub fn with_tags(mut self, tags: Tags<'a>) -> Self {
        self.tags = Some(tags);
        self
    }

    /// The number of tag frames.
    fn tag_frames(&self) -> u64 {
        self.tags
            .map_or(0, |t| t.pages.len().div_ceil(TAGGED_PER_FRAME) as u64)
    }

    /// Pages of RAM.
    pub fn pages(&self) -> u64 {
        self.header.ram_size / PAGE as u64
    }

    /// The number of the first RAM frame.
    fn first_ram_frame(&self) -> u64 {
        1 + self.cpus.len() as u64 + self.gic.is_some() as u64 + self.booted.is_some() as u64
    }

    /// Frames in the snapshot, the end frame included: known once the end frame
    /// has been encoded (how many RAM frames there are depends on the RAM).
    pub fn frames(&self) -> Option<u64> {
        self.total
    }

    /// RAM pages covered by the frames encoded so far.
    pub fn pages_reached(&self) -> u64 {
        self.reached
    }

    /// The page RAM frame `seq` starts at (`pages()` for the end frame), walking
    /// from the nearest frame before it whose start is known; `None` past the end.
    fn start_of(
        &mut self,
        seq: u64,
        read_page: &mut impl FnMut(u64, &mut [u8; PAGE]),
    ) -> Option<u64> {
        let ram = self.first_ram_frame();
        let (mut s, mut page) = self
            .starts
            .iter()
            .copied()
            .filter(|&(s, _)| s != u64::MAX && s <= seq)
            .max()
            .unwrap_or((ram, 0));
        while s < seq {
            if page >= self.pages() {
                self.ram_end = Some(s);
                return None;
            }
            page += self.ram_frame(page, read_page, None).0;
            s += 1;
            self.starts[s as usize % STARTS] = (s, page);
        }
        Some(page)
    }

    /// The RAM frame that starts at page `first`: a run of pages all of one byte
    /// (`R`), or up to 16 pages of which the zero ones carry no data (`P`), ending
    /// before a page of another single byte. Appends it to `out` if given; returns
    /// (pages covered, data pages).
    fn ram_frame(
        &mut self,
        first: u64,
        read_page: &mut impl FnMut(u64, &mut [u8; PAGE]),
        out: Option<(&mut Vec<u8>, u32)>,
    ) -> (u64, u64) {
        let pages = self.pages();
        let ipa = self.header.ram_ipa;
        let at = |p: u64| ipa + p * PAGE as u64;
        let booted = self.booted;
        let compress = self.compress;
        // Pages known to be zero from page `p` on, without reading them.
        let known_zero = self.known_zero;
        let zeros_at = |p: u64| known_zero.map_or(0, |f| f(at(p)) / PAGE as u64);
        let page: &mut [u8; PAGE] = (&mut self.scratch[..]).try_into().unwrap();
        let zeros = zeros_at(first);
        let first_byte = if zeros > 0 {
            Some(0)
        } else {
            read_page(at(first), page);
            uniform(page)
        };
        if let Some(byte) = first_byte {
            let mut count = 1;
            while count < MAX_RUN && first + count < pages {
                let known = if byte == 0 {
                    zeros_at(first + count)
                } else {
                    0
                };
                if known > 0 {
                    count += known.min(MAX_RUN - count).min(pages - first - count);
                    continue;
                }
                read_page(at(first + count), page);
                if uniform(page) != Some(byte) {
                    break;
                }
                count += 1;
            }
            if let Some((out, seq)) = out {
                let f = frame::begin(out, KIND_RUN, seq);
                out.extend_from_slice(&first.to_le_bytes());
                out.extend_from_slice(&(count as u32).to_le_bytes());
                out.push(byte);
                frame::finish(out, f);
            }
            return (count, 0);
        }
        if let Some(b) = booted.filter(|b| b.holds(at(first), page)) {
            let mut count = 1;
            while count < MAX_RUN
                && first + count < pages
                && b.images.iter().any(|i| i.holds(at(first), count + 1))
            {
                read_page(at(first + count), page);
                if !b.holds(at(first + count), page) {
                    break;
                }
                count += 1;
            }
            if let Some((out, seq)) = out {
                let f = frame::begin(out, KIND_BOOTED, seq);
                out.extend_from_slice(&first.to_le_bytes());
                out.extend_from_slice(&(count as u32).to_le_bytes());
                frame::finish(out, f);
            }
            return (count, 0);
        }
        let mut out = out.map(|(out, seq)| {
            let f = frame::begin(out, KIND_PAGES, seq);
            out.extend_from_slice(&first.to_le_bytes());
            out.extend_from_slice(&[0; 3]);
            out.extend_from_slice(page);
            (out, f)
        });
        let (mut count, mut data, mut map) = (1, 1, 1u16);
        while count < PAGES_PER_FRAME && first + count < pages {
            let byte = if zeros_at(first + count) > 0 {
                Some(0)
            } else {
                read_page(at(first + count), page);
                uniform(page)
            };
            match byte {
                Some(0) => {}
                Some(_) => break,
                None if booted.is_some_and(|b| b.holds(at(first + count), page)) => break,
                None => {
                    map |= 1 << count;
                    data += 1;
                    if let Some((out, _)) = &mut out {
                        out.extend_from_slice(page);
                    }
                }
            }
            count += 1;
        }
        if let Some((out, f)) = out {
            let head = f + frame::HEADER_LEN + 8;
            out[head] = count as u8;
            out[head + 1..head + 3].copy_from_slice(&map.to_le_bytes());
            // Data pages inside a boot image go as their difference from it
            // (mostly zeros: a kernel's text with its boot-time patches).
            let mut delta = false;
            if let Some(b) = booted {
                let mut d = f + frame::HEADER_LEN + PAGES_HEAD;
                for i in (0..count).filter(|i| map & (1 << i) != 0) {
                    if let Some(o) = b.original(at(first + i)) {
                        for (x, y) in out[d..d + PAGE].iter_mut().zip(o) {
                            *x ^= y;
                        }
                        delta = true;
                    }
                    d += PAGE;
                }
            }
            if delta {
                pack(out, f, &mut self.packed, KIND_DELTA, true);
            } else if compress {
                pack(out, f, &mut self.packed, KIND_PACKED, false);
            }
            frame::finish(out, f);
        }
        (count, data)
    }

    /// Appends tag frame `k` (counted from the first after the RAM frames).
    fn tag_frame(&self, k: u64, w: &mut Writer, n: u32) {
        let Some(t) = self.tags else { return };
        let k = k as usize * TAGGED_PER_FRAME;
        let pages = &t.pages[k..t.pages.len().min(k + TAGGED_PER_FRAME)];
        let at = frame::begin(&mut w.buf, KIND_TAGS, n);
        w.u8(pages.len() as u8);
        let mut tags = [0; TAG_BYTES];
        for &p in pages {
            w.u64(p);
            (t.read)(self.header.ram_ipa + p * PAGE as u64, &mut tags);
            w.bytes(&tags);
        }
        frame::finish(&mut w.buf, at);
    }

    /// Appends frame `seq` to `out`; returns how many data pages it carries.
    /// `read_page(ipa, buf)` fills `buf` with the guest page at `ipa`. Frame `seq`
    /// is the same bytes whenever it is asked for (the VM is paused), so a frame
    /// to repeat is encoded again. Past the end frame, nothing is appended.
    pub fn frame(
        &mut self,
        seq: u64,
        read_page: &mut impl FnMut(u64, &mut [u8; PAGE]),
        out: &mut Vec<u8>,
    ) -> u64 {
        let ram = self.first_ram_frame();
        let n = seq as u32;
        let mut w = Writer {
            buf: core::mem::take(out),
        };
        let mut data = 0;
        if seq == 0 {
            let at = frame::begin(&mut w.buf, KIND_HEAD, n);
            write_head(&mut w, VERSION, &self.header, self.cpus.len() as u32);
            frame::finish(&mut w.buf, at);
        } else if seq <= self.cpus.len() as u64 {
            let i = seq as usize - 1;
            let at = frame::begin(&mut w.buf, KIND_VCPU, n);
            write_cpu(&mut w, i as u32, &self.cpus[i]);
            frame::finish(&mut w.buf, at);
        } else if seq < ram {
            match (self.gic, self.booted) {
                (Some(gic), _) if seq == 1 + self.cpus.len() as u64 => {
                    frame::write(&mut w.buf, KIND_GIC, n, gic)
                }
                (_, Some(b)) => {
                    let at = frame::begin(&mut w.buf, KIND_DEPENDS, n);
                    w.u8(b.images.len() as u8);
                    for i in b.images {
                        w.u64(i.ipa);
                        w.u64(i.size);
                        w.u32(i.crc);
                    }
                    frame::finish(&mut w.buf, at);
                }
                _ => {}
            }
        } else {
            let past_ram = self.ram_end.is_some_and(|e| seq >= e);
            match if past_ram {
                None
            } else {
                self.start_of(seq, read_page)
            } {
                Some(first) if first < self.pages() => {
                    let (count, d) = self.ram_frame(first, read_page, Some((&mut w.buf, n)));
                    data = d;
                    self.reached = self.reached.max(first + count);
                    self.starts[(seq + 1) as usize % STARTS] = (seq + 1, first + count);
                }
                Some(_) => self.ram_end = Some(seq),
                None => {}
            }
            // After the RAM: the tag frames (a VM with MTE), then the end frame.
            if let Some(k) = self.ram_end.and_then(|e| seq.checked_sub(e)) {
                if k < self.tag_frames() {
                    self.tag_frame(k, &mut w, n);
                } else if k == self.tag_frames() {
                    let at = frame::begin(&mut w.buf, KIND_END, n);
                    w.u64(self.pages());
                    w.u32(seq as u32 + 1);
                    frame::finish(&mut w.buf, at);
                    self.total = Some(seq + 1);
                }
            }
        }
        *out = w.buf;
        data
    }
}

/// Compresses the data of the `P` frame begun at `f` (not yet finished) in
/// place, making it a frame of `kind`: if that makes it smaller, or `always`.
fn pack(out: &mut Vec<u8>, f: usize, packed: &mut Vec<u8>, kind: u8, always: bool) {
    let data = f + frame::HEADER_LEN + PAGES_HEAD;
    let raw = out.len() - data;
    if raw == 0 {
        return;
    }
    packed.clear();
    packed.resize(lz4_flex::block::get_maximum_output_size(raw), 0);
    match lz4_flex::block::compress_into(&out[data..], packed) {
        Ok(n) if n < raw || always => {
            out.truncate(data);
            out.extend_from_slice(&packed[..n]);
            out[f + 2] = kind;
        }
        _ => {}
    }
}

/// Decompresses a `Z` frame's data into `into`: exactly `len` bytes, or `None`.
pub fn unpack(packed: &[u8], len: usize, into: &mut Vec<u8>) -> Option<()> {
    into.clear();
    into.try_reserve_exact(len).ok()?;
    into.resize(len, 0);
    match lz4_flex::block::decompress_into(packed, into) {
        Ok(n) if n == len => Some(()),
        _ => None,
    }
}

/// Whether a page is all zeros (compared 8 bytes at a time: most of a big VM's
/// RAM is zero pages, and each is read once per save).
pub fn is_zero(page: &[u8; PAGE]) -> bool {
    uniform(page) == Some(0)
}

/// Encodes a whole snapshot into `out` (the magic, then every frame).
pub fn encode(
    header: &Header,
    cpus: &[CpuState],
    gic: Option<&[u8]>,
    mut read_page: impl FnMut(u64, &mut [u8; PAGE]),
    out: &mut Vec<u8>,
) {
    out.clear();
    out.extend_from_slice(&MAGIC);
    let mut e = Encoder::new(header, cpus, gic);
    let mut seq = 0;
    while e.frames().is_none() {
        e.frame(seq, &mut read_page, out);
        seq += 1;
    }
}

/// A frame's contents, checked against the frames before it.
#[derive(Debug, PartialEq, Eq)]
pub enum Item<'f> {
    Head(Header),
    Cpu(CpuState),
    Gic(&'f [u8]),
    /// RAM pages from `ipa`: `count` of them, those whose bit is set in `map` with
    /// their 4 KiB in `data` in order, the others zero.
    Pages {
        ipa: u64,
        count: u32,
        map: u16,
        data: &'f [u8],
    },
    /// As `Pages`, the data compressed ([`unpack`] gives `map.count_ones()` pages);
    /// `delta` (an `X` frame): each data page inside a boot image is its XOR
    /// with the image's bytes there ([`Item::for_each_page_from`]).
    Packed {
        ipa: u64,
        count: u32,
        map: u16,
        packed: &'f [u8],
        delta: bool,
    },
    /// `count` RAM pages from `ipa` that hold what the boot images listed by the
    /// `D` frame ([`Decoder::depends`]) put there: the receiver copies them from
    /// its own.
    Booted {
        ipa: u64,
        count: u32,
    },
    /// The boot images (`D`): [`Decoder::depends`].
    Depends,
    /// `count` RAM pages from `ipa`, every byte of them `byte`.
    Run {
        ipa: u64,
        count: u32,
        byte: u8,
    },
    /// Allocation tags: `data` is `(page index u64 | TAG_BYTES)` repeated, the
    /// indexes ascending and inside RAM ([`Item::for_each_tagged`]).
    Tags {
        ram_ipa: u64,
        data: &'f [u8],
    },
    End,
}

/// Calls `write(ipa, page)` for each of `count` pages from `ipa`: those whose bit
/// is set in `map` from `data` in order, the others `None` (zeros).
fn map_pages(
    ipa: u64,
    count: u32,
    map: u16,
    data: &[u8],
    write: &mut impl FnMut(u64, Option<&[u8]>),
) {
    let mut at = 0;
    for i in 0..count as u64 {
        let page = (map & (1 << i) != 0).then(|| {
            at += PAGE;
            data.get(at - PAGE..at).unwrap_or(&[])
        });
        write(ipa + i * PAGE as u64, page);
    }
}

impl Item<'_> {
    /// As [`Item::for_each_page`], and pages that refer to the boot images too
    /// (`Booted`, `Packed` with `delta`): `original(ipa)` gives the boot image's
    /// page at `ipa` (`Some` exactly for pages inside the images of the `D`
    /// frame, which the receiver checked are its own).
    pub fn for_each_page_from<'o>(
        &self,
        original: impl Fn(u64) -> Option<&'o [u8]>,
        mut write: impl FnMut(u64, Option<&[u8]>),
    ) {
        match *self {
            Item::Booted { ipa, count } => {
                for i in 0..count as u64 {
                    let ipa = ipa + i * PAGE as u64;
                    write(ipa, original(ipa));
                }
            }
            Item::Packed {
                ipa,
                count,
                map,
                packed,
                delta: true,
            } => {
                let mut data = Vec::new();
                if unpack(packed, map.count_ones() as usize * PAGE, &mut data).is_none() {
                    return;
                }
                let mut page = [0u8; PAGE];
                map_pages(
                    ipa,
                    count,
                    map,
                    &data,
                    &mut |ipa, d| match (d, original(ipa)) {
                        (Some(d), Some(o)) if d.len() == PAGE && o.len() == PAGE => {
                            for ((p, x), y) in page.iter_mut().zip(d).zip(o) {
                                *p = x ^ y;
                            }
                            write(ipa, Some(&page));
                        }
                        (d, _) => write(ipa, d),
                    },
                );
            }
            _ => self.for_each_page(write),
        }
    }

    /// Calls `write(ipa, page)` for each page of a `Pages`, `Packed` (not
    /// `delta`) or `Run` item (`None`: zeros); pages that refer to the boot
    /// images are [`Item::for_each_page_from`]'s.
    pub fn for_each_page(&self, mut write: impl FnMut(u64, Option<&[u8]>)) {
        if let Item::Packed {
            ipa,
            count,
            map,
            packed,
            delta: false,
        } = *self
        {
            let mut data = Vec::new();
            if unpack(packed, map.count_ones() as usize * PAGE, &mut data).is_some() {
                map_pages(ipa, count, map, &data, &mut write);
            }
        }
        if let Item::Run { ipa, count, byte } = *self {
            let fill = (byte != 0).then(|| alloc::vec![byte; PAGE]);
            for i in 0..count as u64 {
                write(ipa + i * PAGE as u64, fill.as_deref());
            }
        }
        if let Item::Pages {
            ipa,
            count,
            map,
            data,
        } = *self
        {
            map_pages(ipa, count, map, data, &mut write);
        }
    }
}

impl Item<'_> {
    /// Calls `write(ipa, tags)` for each page of a `Tags` item.
    pub fn for_each_tagged(&self, mut write: impl FnMut(u64, &[u8; TAG_BYTES])) {
        if let Item::Tags { ram_ipa, data } = *self {
            for e in data.chunks_exact(8 + TAG_BYTES) {
                let page = u64::from_le_bytes(e[..8].try_into().unwrap());
                write(ram_ipa + page * PAGE as u64, e[8..].try_into().unwrap());
            }
        }
    }
}

/// Checks frames in order as they arrive: numbers, kinds, places, contents.
#[derive(Default)]
pub struct Decoder {
    next: u32,
    header: Option<Header>,
    cpus: u32,
    gic: bool,
    /// The next RAM page expected (index from the RAM base).
    page: u64,
    data_pages: u64,
    /// Tag frames: the lowest page index the next one may name, and pages tagged.
    tag_page: u64,
    tagged: u64,
    ended: bool,
    /// The boot images of the `D` frame, once it arrived.
    depends: Option<Vec<BootImage>>,
    booted_pages: u64,
    /// Where a `Z` frame is decompressed to be checked.
    unpacked: Vec<u8>,
}

impl Decoder {
    pub const fn new() -> Self {
        Self {
            next: 0,
            header: None,
            cpus: 0,
            gic: false,
            page: 0,
            data_pages: 0,
            tag_page: 0,
            tagged: 0,
            ended: false,
            depends: None,
            booted_pages: 0,
            unpacked: Vec::new(),
        }
    }

    /// The boot images the snapshot's `B` frames refer to (none: self-contained).
    pub fn depends(&self) -> &[BootImage] {
        self.depends.as_deref().unwrap_or(&[])
    }

    /// RAM pages received as booted (`B`).
    pub fn booted_pages(&self) -> u64 {
        self.booted_pages
    }

    /// Pages whose allocation tags arrived (tag frames).
    pub fn tagged(&self) -> u64 {
        self.tagged
    }

    /// The number of the frame expected next.
    pub fn next_seq(&self) -> u32 {
        self.next
    }

    pub fn header(&self) -> Option<&Header> {
        self.header.as_ref()
    }

    /// RAM pages received so far, and how many of them carried data.
    pub fn pages(&self) -> (u64, u64) {
        (self.page, self.data_pages)
    }

    /// The end frame has been accepted.
    pub fn ended(&self) -> bool {
        self.ended
    }

    /// Everything before RAM has arrived (header, every vCPU).
    pub fn prelude_done(&self) -> bool {
        self.header.is_some_and(|h| self.cpus == h.vcpus)
    }

    /// Checks `f` as the next frame. On an error nothing is counted: the same frame
    /// number is expected again.
    pub fn feed<'f>(&mut self, f: Frame<'f>) -> Result<Item<'f>, SnapshotError> {
        if self.ended {
            return Err(SnapshotError::FrameAfterEnd { seq: f.seq });
        }
        if f.seq != self.next {
            return Err(SnapshotError::FrameOrder {
                seq: f.seq,
                expected: self.next,
            });
        }
        let expected: &'static str = match self.header {
            None => "header",
            Some(h) if self.cpus < h.vcpus => "vCPU",
            Some(_) if self.page == 0 && !self.gic && self.depends.is_none() => {
                "GIC, boot images, RAM or end"
            }
            Some(_) if self.page == 0 && self.depends.is_none() => "boot images, RAM or end",
            Some(h) if self.page == h.ram_size / PAGE as u64 => "tags or end",
            Some(_) if self.tagged > 0 => "tags or end",
            Some(_) => "RAM or end",
        };
        let wrong = || SnapshotError::FrameKind {
            seq: f.seq,
            found: f.kind,
            expected,
        };
        let mut r = Reader::new(f.payload);
        let item = match (f.kind, self.header) {
            (KIND_HEAD, None) => {
                let version = r.u32()?;
                if version != VERSION {
                    return Err(SnapshotError::UnsupportedVersion(version));
                }
                let h = read_head(&mut r, version)?;
                if r.remaining() != 0 {
                    return Err(SnapshotError::TrailingBytes { at: r.pos() });
                }
                Item::Head(h)
            }
            (KIND_VCPU, Some(h)) if self.cpus < h.vcpus => Item::Cpu(read_cpu(&mut r, self.cpus)?),
            (KIND_GIC, Some(h))
                if self.cpus == h.vcpus
                    && self.page == 0
                    && !self.gic
                    && self.depends.is_none() =>
            {
                Item::Gic(f.payload)
            }
            (KIND_DEPENDS, Some(h))
                if self.cpus == h.vcpus && self.page == 0 && self.depends.is_none() =>
            {
                let count = r.u8()? as usize;
                if count == 0 || count > BOOT_IMAGES_MAX || r.remaining() != count * BOOT_IMAGE_LEN
                {
                    return Err(SnapshotError::Malformed(
                        "boot image frame's count",
                        count as u64,
                    ));
                }
                let mut images = Vec::new();
                for _ in 0..count {
                    let image = BootImage {
                        ipa: r.u64()?,
                        size: r.u64()?,
                        crc: r.u32()?,
                    };
                    let inside = image.ipa >= h.ram_ipa
                        && image.size > 0
                        && (image.ipa - h.ram_ipa)
                            .checked_add(image.size)
                            .is_some_and(|end| end <= h.ram_size);
                    if !inside {
                        return Err(SnapshotError::Malformed("boot image's place", image.ipa));
                    }
                    images.push(image);
                }
                self.depends = Some(images);
                Item::Depends
            }
            (KIND_BOOTED, Some(h)) if self.cpus == h.vcpus && self.tagged == 0 => {
                let first = r.u64()?;
                let count = r.u32()? as u64;
                let total = h.ram_size / PAGE as u64;
                if first != self.page {
                    return Err(SnapshotError::Malformed("booted frame's first page", first));
                }
                if count == 0 || count > MAX_RUN || count > total - first {
                    return Err(SnapshotError::Malformed("booted frame's page count", count));
                }
                if r.remaining() != 0 {
                    return Err(SnapshotError::TrailingBytes { at: r.pos() });
                }
                let ipa = h.ram_ipa + first * PAGE as u64;
                if !self.depends().iter().any(|i| i.holds(ipa, count)) {
                    return Err(SnapshotError::Malformed(
                        "booted pages outside the boot images",
                        first,
                    ));
                }
                Item::Booted {
                    ipa,
                    count: count as u32,
                }
            }
            (KIND_TAGS, Some(h))
                if self.cpus == h.vcpus && self.page == h.ram_size / PAGE as u64 =>
            {
                let count = r.u8()? as usize;
                if count == 0 || count > TAGGED_PER_FRAME {
                    return Err(SnapshotError::Malformed(
                        "tag frame's page count",
                        count as u64,
                    ));
                }
                if r.remaining() != count * (8 + TAG_BYTES) {
                    return Err(SnapshotError::Malformed(
                        "tag frame's length",
                        (1 + r.remaining()) as u64,
                    ));
                }
                let data = r.take(count * (8 + TAG_BYTES))?;
                let mut next = self.tag_page;
                for e in data.chunks_exact(8 + TAG_BYTES) {
                    let page = u64::from_le_bytes(e[..8].try_into().unwrap());
                    if page < next || page >= self.page {
                        return Err(SnapshotError::Malformed("tag frame's page", page));
                    }
                    next = page + 1;
                }
                Item::Tags {
                    ram_ipa: h.ram_ipa,
                    data,
                }
            }
            (KIND_PAGES | KIND_PACKED | KIND_DELTA, Some(h))
                if self.cpus == h.vcpus
                    && self.tagged == 0
                    && (f.kind != KIND_DELTA || self.depends.is_some()) =>
            {
                let first = r.u64()?;
                let count = r.u8()? as u64;
                let map = u16::from_le_bytes([r.u8()?, r.u8()?]);
                let total = h.ram_size / PAGE as u64;
                if first != self.page {
                    return Err(SnapshotError::Malformed("RAM frame's first page", first));
                }
                if count == 0 || count > PAGES_PER_FRAME || count > total - first {
                    return Err(SnapshotError::Malformed("RAM frame's page count", count));
                }
                if (map as u64) >> count != 0 {
                    return Err(SnapshotError::Malformed("RAM frame's page map", map as u64));
                }
                let data = map.count_ones() as usize * PAGE;
                let ipa = h.ram_ipa + first * PAGE as u64;
                if f.kind != KIND_PAGES {
                    let packed = r.take(r.remaining())?;
                    if data == 0 || unpack(packed, data, &mut self.unpacked).is_none() {
                        return Err(SnapshotError::Malformed(
                            "compressed RAM frame's data",
                            first,
                        ));
                    }
                    Item::Packed {
                        ipa,
                        count: count as u32,
                        map,
                        packed,
                        delta: f.kind == KIND_DELTA,
                    }
                } else {
                    if r.remaining() != data {
                        return Err(SnapshotError::Malformed(
                            "RAM frame's length",
                            (PAGES_HEAD + r.remaining()) as u64,
                        ));
                    }
                    Item::Pages {
                        ipa,
                        count: count as u32,
                        map,
                        data: r.take(data)?,
                    }
                }
            }
            (KIND_RUN, Some(h)) if self.cpus == h.vcpus => {
                let first = r.u64()?;
                let count = r.u32()? as u64;
                let byte = r.u8()?;
                let total = h.ram_size / PAGE as u64;
                if first != self.page {
                    return Err(SnapshotError::Malformed("run frame's first page", first));
                }
                if count == 0 || count > MAX_RUN || count > total - first {
                    return Err(SnapshotError::Malformed("run frame's page count", count));
                }
                if r.remaining() != 0 {
                    return Err(SnapshotError::TrailingBytes { at: r.pos() });
                }
                Item::Run {
                    ipa: h.ram_ipa + first * PAGE as u64,
                    count: count as u32,
                    byte,
                }
            }
            (KIND_END, Some(h)) if self.cpus == h.vcpus => {
                let pages = r.u64()?;
                let frames = r.u32()?;
                let total = h.ram_size / PAGE as u64;
                if self.page != total || pages != total {
                    return Err(SnapshotError::Malformed("RAM page count", self.page));
                }
                if frames != f.seq + 1 || r.remaining() != 0 {
                    return Err(SnapshotError::Malformed("end frame", frames as u64));
                }
                Item::End
            }
            _ => return Err(wrong()),
        };
        match &item {
            Item::Head(h) => self.header = Some(*h),
            Item::Cpu(_) => self.cpus += 1,
            Item::Gic(_) => self.gic = true,
            Item::Pages { count, map, .. } | Item::Packed { count, map, .. } => {
                self.page += *count as u64;
                self.data_pages += map.count_ones() as u64;
            }
            Item::Booted { count, .. } => {
                self.page += *count as u64;
                self.booted_pages += *count as u64;
            }
            Item::Depends => {}
            Item::Run { count, .. } => self.page += *count as u64,
            Item::Tags { data, .. } => {
                let last = data.len() - (8 + TAG_BYTES);
                self.tag_page = u64::from_le_bytes(data[last..last + 8].try_into().unwrap()) + 1;
                self.tagged += (data.len() / (8 + TAG_BYTES)) as u64;
            }
            Item::End => self.ended = true,
        }
        self.next += 1;
        Ok(item)
    }
}

/// Decodes a whole version-2 snapshot (the magic checked by the caller): every
/// frame is checked, RAM included, so a restore from it cannot fail half-way.
pub fn decode(data: &[u8]) -> Result<Parsed<'_>, SnapshotError> {
    let mut d = Decoder::new();
    let mut header = None;
    let mut cpus = Vec::new();
    let mut gic = None;
    let mut ram_at = None;
    for f in frame::split(&data[MAGIC.len()..], MAGIC.len()) {
        let (at, f) = f.map_err(SnapshotError::from)?;
        match d.feed(f)? {
            Item::Head(h) => header = Some(h),
            Item::Cpu(c) => cpus.push(c),
            Item::Gic(g) => gic = Some(g),
            Item::Depends => {}
            Item::Pages { .. }
            | Item::Packed { .. }
            | Item::Booted { .. }
            | Item::Run { .. }
            | Item::Tags { .. }
            | Item::End => {
                ram_at.get_or_insert(at);
            }
        }
    }
    let (Some(header), Some(at), true) = (header, ram_at, d.ended()) else {
        return Err(SnapshotError::Truncated { at: data.len() });
    };
    Ok(Parsed {
        header,
        cpus,
        gic,
        depends: d.depends().to_vec(),
        ram: Ram::V2(&data[at..]),
    })
}

/// Every page of a checked version-2 RAM (`frames`: from the first RAM frame on).
/// Pages that refer to the boot images `images` are left out: see
/// [`for_each_booted`].
pub fn for_each_page(
    ram_ipa: u64,
    frames: &[u8],
    images: &[BootImage],
    mut write: impl FnMut(u64, Option<&[u8]>),
) {
    let inside = |ipa| images.iter().any(|i: &BootImage| i.holds(ipa, 1));
    for_each_ram_item(ram_ipa, frames, |item| match item {
        Item::Packed { delta: true, .. } => item.for_each_page_from(
            |ipa| inside(ipa).then_some(&[][..]),
            |ipa, d| {
                if d.is_none() || !inside(ipa) {
                    write(ipa, d)
                }
            },
        ),
        _ => item.for_each_page(&mut write),
    });
}

/// Every RAM item of a checked version-2 RAM (`frames`: from the first RAM frame on).
fn for_each_ram_item(ram_ipa: u64, frames: &[u8], mut each: impl FnMut(Item)) {
    // Already checked by `decode`: only the RAM frames' layout is read again.
    for (_, f) in frame::split(frames, 0).flatten() {
        let mut r = Reader::new(f.payload);
        let item = match f.kind {
            KIND_BOOTED => {
                let (Ok(first), Ok(count)) = (r.u64(), r.u32()) else {
                    continue;
                };
                Item::Booted {
                    ipa: ram_ipa + first * PAGE as u64,
                    count,
                }
            }
            KIND_PAGES | KIND_PACKED | KIND_DELTA => {
                let (Ok(first), Ok(count), Ok(m0), Ok(m1)) = (r.u64(), r.u8(), r.u8(), r.u8())
                else {
                    continue;
                };
                let (ipa, count, map) = (
                    ram_ipa + first * PAGE as u64,
                    count as u32,
                    u16::from_le_bytes([m0, m1]),
                );
                let data = r.take(r.remaining()).unwrap_or(&[]);
                if f.kind != KIND_PAGES {
                    Item::Packed {
                        ipa,
                        count,
                        map,
                        packed: data,
                        delta: f.kind == KIND_DELTA,
                    }
                } else {
                    Item::Pages {
                        ipa,
                        count,
                        map,
                        data,
                    }
                }
            }
            KIND_RUN => {
                let (Ok(first), Ok(count), Ok(byte)) = (r.u64(), r.u32(), r.u8()) else {
                    continue;
                };
                Item::Run {
                    ipa: ram_ipa + first * PAGE as u64,
                    count,
                    byte,
                }
            }
            _ => continue,
        };
        each(item);
    }
}

/// The pages of a checked version-2 RAM (`frames`: from the first RAM frame on)
/// that refer to the boot images `images`, as `page(ipa, data)`: `None` for a
/// page as booted (`B`), its XOR with the image for a data page of an `X` frame.
pub fn for_each_booted(
    ram_ipa: u64,
    frames: &[u8],
    images: &[BootImage],
    mut page: impl FnMut(u64, Option<&[u8]>),
) {
    for_each_ram_item(ram_ipa, frames, |item| match item {
        Item::Booted { ipa, count } => {
            for i in 0..count as u64 {
                page(ipa + i * PAGE as u64, None);
            }
        }
        Item::Packed { delta: true, .. } => {
            // The images' bytes left out: what the frame carries.
            item.for_each_page_from(
                |ipa| images.iter().any(|i| i.holds(ipa, 1)).then_some(&[][..]),
                |ipa, d| {
                    if images.iter().any(|i| i.holds(ipa, 1)) && d.is_some() {
                        page(ipa, d)
                    }
                },
            );
        }
        _ => {}
    });
}

/// The allocation tags of a checked version-2 RAM (`frames`: from the first RAM
/// frame on), page by page: `write(ipa, tags)`.
pub fn for_each_tagged(ram_ipa: u64, frames: &[u8], mut write: impl FnMut(u64, &[u8; TAG_BYTES])) {
    // Already checked by `decode`.
    for (_, f) in frame::split(frames, 0).flatten() {
        if f.kind == KIND_TAGS && !f.payload.is_empty() {
            Item::Tags {
                ram_ipa,
                data: &f.payload[1..],
            }
            .for_each_tagged(&mut write);
        }
    }
}
