use super::*;
use crate::cpreg::{lookup_kvm, Cp, GuestIds, HostIds, IdPolicy, Reg, Sys64};

const MIDR: u64 = 0x410f_d083;
pub(super) const RAM_IPA: u64 = 0x4000_0000;
const RAM_SIZE: u64 = 16 * PAGE as u64;

fn ids() -> GuestIds {
    let mut host = HostIds::zeroed();
    host.set(Reg::MIDR_EL1, MIDR);
    GuestIds::sanitise(&host, &IdPolicy::default())
}

fn files(n: usize) -> Vec<SysRegFile> {
    (0..n).map(|i| SysRegFile::new(&ids(), i)).collect()
}

/// A VM with distinct register values and a RAM image with zero and data pages.
pub(super) fn sample() -> (Header, Vec<CpuState>, Vec<u8>) {
    let mut cpus = Vec::new();
    for (i, mut f) in files(2).into_iter().enumerate() {
        f.raw_write(Reg::SCTLR_EL1, 0x30d5_0839 + i as u64).unwrap();
        f.raw_write(Reg::CONTEXTIDR_EL1, 0x1234 + i as u64).unwrap();
        f.raw_write(Reg::TTBR1_EL1, 0xffff_0000_4000_0000 + i as u64 * 0x1000)
            .unwrap();
        let mut x = [0u64; 31];
        for (j, r) in x.iter_mut().enumerate() {
            *r = (i * 100 + j) as u64;
        }
        let mut q = [0u128; 32];
        q[3] = 0xdead_beef_0000_0000_1111_2222_3333_4444;
        cpus.push(CpuState {
            powered_on: i == 0,
            x,
            pc: 0x4008_0000 + i as u64 * 4,
            pstate: 0x3c5,
            regs: f.export().collect(),
            q,
            fpsr: 0x10,
            fpcr: 0x0300_0000,
        });
    }
    let mut ram = vec![0u8; RAM_SIZE as usize];
    ram[PAGE * 3..PAGE * 3 + 5].copy_from_slice(b"hello");
    ram[PAGE * 4 + 100] = 7;
    ram[RAM_SIZE as usize - 1] = 0xaa;
    let header = Header {
        version: VERSION,
        midr: MIDR,
        vcpus: 2,
        reg_encoding: REG_ENCODING_KVM,
        ram_ipa: RAM_IPA,
        ram_size: RAM_SIZE,
        cntvct: 0x55,
    };
    (header, cpus, ram)
}

pub(super) fn encode_sample() -> (Vec<u8>, Vec<CpuState>, Vec<u8>) {
    let (h, cpus, ram) = sample();
    let mut bytes = Vec::new();
    let read = |ipa: u64, page: &mut [u8; PAGE]| {
        let off = (ipa - RAM_IPA) as usize;
        page.copy_from_slice(&ram[off..off + PAGE]);
    };
    encode(&h, &cpus, Some(b"gic-state"), read, &mut bytes);
    (bytes, cpus, ram)
}

/// The sample as format 1 wrote it.
fn encode_sample_v1() -> Vec<u8> {
    let (h, cpus, ram) = sample();
    let mut bytes = Vec::new();
    let read = |ipa: u64, page: &mut [u8; PAGE]| {
        let off = (ipa - RAM_IPA) as usize;
        page.copy_from_slice(&ram[off..off + PAGE]);
    };
    v1::encode(&h, &cpus, Some(b"gic-state"), read, &mut bytes);
    bytes
}

fn target(files: &[SysRegFile]) -> Target<'_> {
    Target {
        midr: MIDR,
        ram_ipa: RAM_IPA,
        ram_size: RAM_SIZE,
        sysregs: files,
    }
}

#[test]
fn encode_then_decode_gives_back_every_field_and_page() {
    let (bytes, cpus, ram) = encode_sample();
    let p = decode(&bytes).unwrap();
    assert_eq!(p.header.midr, MIDR);
    assert_eq!(p.header.cntvct, 0x55);
    assert_eq!(p.cpus, cpus);
    assert_eq!(p.gic, Some(&b"gic-state"[..]));
    let mut back = vec![0xffu8; RAM_SIZE as usize];
    p.for_each_page(|ipa, page| {
        let off = (ipa - RAM_IPA) as usize;
        match page {
            Some(d) => back[off..off + PAGE].copy_from_slice(d),
            None => back[off..off + PAGE].fill(0),
        }
    });
    assert_eq!(back, ram);
    // Zero pages cost nothing: 13 of the 16 pages are zero, so the file is the 3 data
    // pages, the registers (fixed part and 16 bytes per listed register) and framing.
    let regs: usize = cpus
        .iter()
        .map(|c| 31 * 8 + 16 + 32 * 16 + 16 + 16 * c.regs.len())
        .sum();
    assert!(
        bytes.len() <= 3 * PAGE + regs + 256,
        "{} bytes, {} expected",
        bytes.len(),
        3 * PAGE + regs
    );
}

#[test]
fn export_then_import_gives_identical_state() {
    let (bytes, cpus, _) = encode_sample();
    let p = decode(&bytes).unwrap();
    let fresh = files(2);
    let restored = prepare_restore(&p, &target(&fresh)).unwrap();
    for (file, cpu) in restored.iter().zip(&cpus) {
        assert_eq!(file.export().collect::<Vec<_>>(), cpu.regs);
    }
    assert_eq!(restored[1].raw_read(Reg::CONTEXTIDR_EL1).unwrap(), 0x1235);
}

#[test]
fn the_saved_list_has_no_alias_or_no_raw_and_every_state_owner() {
    let f = &files(1)[0];
    let list: Vec<(u64, u64)> = f.export().collect();
    assert!(!list.is_empty());
    for &(index, _) in &list {
        let reg = lookup_kvm(index).unwrap();
        let e = reg.entry();
        assert!(!e.is(crate::cpreg::Flags::ALIAS), "{}", reg.name());
        assert!(!e.is(crate::cpreg::Flags::NO_RAW), "{}", reg.name());
    }
    assert!(list.windows(2).all(|w| w[0].0 < w[1].0), "ascending");
    let wanted = [
        ("SCTLR_EL1", Sys64::new(3, 0, 1, 0, 0)),
        ("TTBR0_EL1", Sys64::new(3, 0, 2, 0, 0)),
        ("TCR_EL1", Sys64::new(3, 0, 2, 0, 2)),
        ("VBAR_EL1", Sys64::new(3, 0, 12, 0, 0)),
        ("SP_EL1", Sys64::new(3, 4, 4, 1, 0)),
    ];
    for (name, enc) in wanted {
        assert!(
            list.iter().any(|&(i, _)| i == enc.kvm_index()),
            "{name} missing"
        );
    }
}

/// Replaces a register's entry in vCPU 0's list.
fn edit(cpus: &mut [CpuState], from: u64, to: Option<(u64, u64)>) {
    let regs = &mut cpus[0].regs;
    regs.retain(|&(i, _)| i != from);
    if let Some(p) = to {
        regs.push(p);
        regs.sort_unstable();
    }
}

fn encode_cpus(cpus: &[CpuState]) -> Vec<u8> {
    let (h, _, ram) = sample();
    let mut out = Vec::new();
    let read = |ipa: u64, page: &mut [u8; PAGE]| {
        let off = (ipa - RAM_IPA) as usize;
        page.copy_from_slice(&ram[off..off + PAGE]);
    };
    encode(&h, cpus, None, read, &mut out);
    out
}

#[test]
fn sctlr_imported_through_its_aarch32_alias_sets_sctlr_el1() {
    let (_, mut cpus, _) = sample();
    let sctlr64 = Sys64::new(3, 0, 1, 0, 0).kvm_index();
    let sctlr32 = Cp::new32(15, 0, 1, 0, 0).kvm_index();
    // Another system exposed the AArch32 view (32 bits) instead of SCTLR_EL1.
    edit(&mut cpus, sctlr64, Some((sctlr32, 0x30c5_0878)));
    let bytes = encode_cpus(&cpus);
    let p = decode(&bytes).unwrap();
    let restored = prepare_restore(&p, &target(&files(2))).unwrap();
    assert_eq!(
        restored[0].raw_read(Reg::SCTLR_EL1).unwrap() & 0xffff_ffff,
        0x30c5_0878
    );
}

#[test]
fn a_no_raw_index_is_rejected_by_name_and_nothing_changes() {
    let (_, mut cpus, _) = sample();
    // TLBI VMALLE1IS (SYS 1, C8, C3, 0) is an operation, not state.
    let tlbi = Sys64::new(1, 0, 8, 3, 0).kvm_index();
    edit(&mut cpus, 0, Some((tlbi, 0)));
    let bytes = encode_cpus(&cpus);
    let p = decode(&bytes).unwrap();
    let current = files(2);
    let before: Vec<Vec<(u64, u64)>> = current.iter().map(|f| f.export().collect()).collect();
    let err = prepare_restore(&p, &target(&current))
        .err()
        .expect("must fail");
    assert!(matches!(
        err,
        SnapshotError::Register {
            vcpu: 0,
            error: ImportError::NotState(_)
        }
    ));
    let msg = alloc::format!("{err}");
    assert!(msg.contains("TLBI") && msg.contains("NO_RAW"), "{msg}");
    let after: Vec<Vec<(u64, u64)>> = current.iter().map(|f| f.export().collect()).collect();
    assert_eq!(before, after);
}

#[test]
fn an_unknown_index_is_rejected() {
    let (_, mut cpus, _) = sample();
    edit(&mut cpus, 0, Some((0x6030_0000_0013_ffff, 1)));
    let bytes = encode_cpus(&cpus);
    let p = decode(&bytes).unwrap();
    let err = prepare_restore(&p, &target(&files(2)))
        .err()
        .expect("must fail");
    assert_eq!(
        err,
        SnapshotError::Register {
            vcpu: 0,
            error: ImportError::UnknownIndex(0x6030_0000_0013_ffff)
        }
    );
    assert!(alloc::format!("{err}").contains("0x60300000001"));
}

#[test]
fn a_missing_state_register_is_rejected() {
    let (_, mut cpus, _) = sample();
    edit(&mut cpus, Sys64::new(3, 0, 13, 0, 1).kvm_index(), None); // CONTEXTIDR_EL1
    let bytes = encode_cpus(&cpus);
    let p = decode(&bytes).unwrap();
    let err = prepare_restore(&p, &target(&files(2)))
        .err()
        .expect("must fail");
    assert_eq!(
        err,
        SnapshotError::MissingRegister {
            vcpu: 0,
            reg: Reg::CONTEXTIDR_EL1
        }
    );
}

#[test]
fn a_constant_that_differs_fails_the_import() {
    let (_, mut cpus, _) = sample();
    let midr = Sys64::new(3, 0, 0, 0, 0).kvm_index();
    // MIDR_EL1 is state the list must carry (a constant, checked on import): its
    // absence is a failure here, never a reason to skip the check.
    let saved = cpus[0].regs.iter().find(|&&(i, _)| i == midr).copied();
    assert_eq!(
        saved,
        Some((midr, MIDR)),
        "MIDR_EL1 missing from the saved list"
    );
    edit(&mut cpus, midr, Some((midr, 0x1234)));
    let bytes = encode_cpus(&cpus);
    let p = decode(&bytes).unwrap();
    let err = prepare_restore(&p, &target(&files(2)))
        .err()
        .expect("a different MIDR_EL1 must fail the import");
    assert!(
        matches!(
            err,
            SnapshotError::Register {
                vcpu: 0,
                error: ImportError::Raw(Reg::MIDR_EL1, _)
            }
        ),
        "{err:?}"
    );
    let msg = alloc::format!("{err}");
    assert!(msg.contains("MIDR_EL1"), "{msg}");
    // In words: the expected value, no Rust debug output.
    assert!(msg.contains("only 0x410fd083 is accepted"), "{msg}");
    assert!(!msg.contains('{'), "{msg}");
}

#[test]
fn corrupt_truncated_and_foreign_v1_files_are_rejected() {
    let bytes = encode_sample_v1();
    // One flipped bit anywhere after the header is a checksum error.
    let mut bad = bytes.clone();
    let n = bad.len();
    bad[n / 2] ^= 1;
    assert!(matches!(
        decode(&bad),
        Err(SnapshotError::BadChecksum { .. })
    ));
    // Truncation, at every length.
    for len in (0..bytes.len()).step_by(97).chain([bytes.len() - 1]) {
        assert!(decode(&bytes[..len]).is_err(), "length {len}");
    }
    assert_eq!(
        decode(b"hello world").err().expect("must fail"),
        SnapshotError::BadMagic
    );
    // A section tag is shown as found, escaped where it is not printable.
    let mut odd = bytes.clone();
    odd[MAGIC.len()..MAGIC.len() + 4].copy_from_slice(b"H\x1b'}");
    let n = odd.len();
    let crc = crc32fast::hash(&odd[..n - 4]);
    odd[n - 4..].copy_from_slice(&crc.to_le_bytes());
    let msg = decode(&odd).expect_err("must fail").to_string();
    assert_eq!(msg, "expected section 'HEAD', found 'H\\x1b\\x27}'");
    // A version this build does not know (the checksum is not even looked at).
    let mut v3 = bytes.clone();
    v3[MAGIC.len() + 12] = 3;
    assert_eq!(
        decode(&v3).err().expect("must fail"),
        SnapshotError::UnsupportedVersion(3)
    );
}

#[test]
fn the_snapshot_must_fit_the_vm() {
    let (bytes, _, _) = encode_sample();
    let p = decode(&bytes).unwrap();
    let one = files(1);
    assert_eq!(
        prepare_restore(&p, &target(&one)).err().expect("must fail"),
        SnapshotError::VcpuCount { snapshot: 2, vm: 1 }
    );
    let two = files(2);
    let mut t = target(&two);
    t.ram_size *= 2;
    assert!(matches!(
        prepare_restore(&p, &t),
        Err(SnapshotError::RamLayout { .. })
    ));
    let mut t = target(&two);
    t.midr = 0x1;
    assert!(matches!(
        prepare_restore(&p, &t),
        Err(SnapshotError::CpuModel { .. })
    ));
}

/// Random corruption (with the checksum fixed so the structure checks run): no
/// panic; an accepted file re-encodes into one that decodes to the same snapshot,
/// page for page; a refused one is refused in words (no Rust debug output).
#[test]
fn decoding_arbitrary_bytes_never_panics() {
    let (v2, _, _) = encode_sample();
    let v1 = encode_sample_v1();
    let mut seed = 0x1234_5678u32;
    let (mut accepted, mut refused) = (0, 0);
    for round in 0..600 {
        let bytes = if round % 2 == 0 { &v1 } else { &v2 };
        let mut b = bytes.clone();
        for _ in 0..4 {
            seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12345);
            let at = seed as usize % b.len();
            b[at] = (seed >> 16) as u8;
        }
        // Fix the checksums so the structure checks run too.
        if round % 2 == 0 {
            let n = b.len();
            let crc = crc32fast::hash(&b[..n - 4]);
            b[n - 4..].copy_from_slice(&crc.to_le_bytes());
        } else {
            frame::fix_checksums(&mut b[MAGIC.len()..]);
        }
        match decode(&b) {
            Ok(p) => {
                accepted += 1;
                let mut pages = Vec::new();
                p.for_each_page(|ipa, d| pages.push((ipa, d.map(<[u8]>::to_vec))));
                let mut again = Vec::new();
                encode(
                    &p.header,
                    &p.cpus,
                    p.gic,
                    |ipa, page| {
                        let i = ((ipa - p.header.ram_ipa) / PAGE as u64) as usize;
                        match &pages[i].1 {
                            Some(d) => page.copy_from_slice(d),
                            None => page.fill(0),
                        }
                    },
                    &mut again,
                );
                let q = decode(&again).expect("a re-encoded snapshot decodes");
                // A version-1 file re-encodes as version 2; nothing else changes.
                assert_eq!(q.header.version, VERSION);
                let qh = Header {
                    version: p.header.version,
                    ..q.header
                };
                assert!(
                    (qh, &q.cpus, q.gic) == (p.header, &p.cpus, p.gic),
                    "a re-encoded snapshot differs"
                );
                let mut pages2 = Vec::new();
                q.for_each_page(|ipa, d| pages2.push((ipa, d.map(<[u8]>::to_vec))));
                // A data page that became all zeros comes back as a zero page.
                let norm = |v: Vec<(u64, Option<Vec<u8>>)>| -> Vec<(u64, Vec<u8>)> {
                    v.into_iter()
                        .map(|(a, d)| (a, d.unwrap_or_else(|| vec![0; PAGE])))
                        .collect()
                };
                assert_eq!(norm(pages2), norm(pages));
            }
            Err(e) => {
                refused += 1;
                let msg = alloc::format!("{e}");
                assert!(!msg.contains('{') && !msg.contains("Some("), "{msg}");
            }
        }
    }
    assert!(
        accepted > 20 && refused > 20,
        "{accepted} accepted, {refused} refused"
    );
}

/// Snapshots a VM of this CPU model could produce: two vCPUs with a virtual GIC
/// (v3 and v2), one vCPU with an AArch32 view in its list, and a bare one. Each
/// must import into a VM built as the `snapshot` fuzz target builds one (the
/// `line-` ones as a streamed save writes them: compressed, and with pages as
/// booted and against a boot image, which that target decodes and then refuses
/// as `hv::snapshot::restore` does). With
/// `HV_FUZZ_SEEDS=1` they are (re)written as that target's seed corpus,
/// `fuzz/corpus/snapshot/`.
#[test]
fn fuzz_seeds_import_cleanly() {
    use crate::vgic::{Version, Vgic};
    let (_, cpus, ram) = sample();
    let with = |cpus: &[CpuState], gic: Option<&[u8]>| {
        let (mut h, _, _) = sample();
        h.vcpus = cpus.len() as u32;
        let mut out = Vec::new();
        encode(
            &h,
            cpus,
            gic,
            |ipa: u64, page: &mut [u8; PAGE]| {
                let off = (ipa - RAM_IPA) as usize;
                page.copy_from_slice(&ram[off..off + PAGE]);
            },
            &mut out,
        );
        out
    };
    let gic = |version| {
        let mpidrs: Vec<u64> = (0..2)
            .map(|i| crate::cpreg::mpidr_for_vcpu(i) & 0xff_00ff_ffff)
            .collect();
        let mut g = Vgic::new(version, &mpidrs, 64);
        g.dist_write(0, 0, 4, 3); // GICD_CTLR: both groups on
        g.inject_edge(0, 33);
        g.export()
    };
    let mut view = cpus[..1].to_vec();
    edit(
        &mut view,
        Sys64::new(3, 0, 1, 0, 0).kvm_index(),
        Some((Cp::new32(15, 0, 1, 0, 0).kvm_index(), 0x30c5_0878)),
    );
    let seeds = [
        ("two-vcpus-gicv3", with(&cpus, Some(&gic(Version::V3)))),
        ("two-vcpus-gicv2", with(&cpus, Some(&gic(Version::V2)))),
        ("aarch32-view", with(&view, None)),
        ("one-vcpu", with(&cpus[..1], None)),
        ("line-compressed", line_seed(&cpus[..1], false)),
        ("line-boot-images", line_seed(&cpus[..1], true)),
    ];
    for (name, bytes) in &seeds {
        let p = decode(bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
        let vm = files(p.cpus.len());
        prepare_restore(&p, &target(&vm)).unwrap_or_else(|e| panic!("{name}: {e}"));
    }
    if std::env::var_os("HV_FUZZ_SEEDS").is_some() {
        let dir = format!("{}/fuzz/corpus/snapshot", env!("CARGO_MANIFEST_DIR"));
        std::fs::create_dir_all(&dir).unwrap();
        for (name, bytes) in &seeds {
            std::fs::write(format!("{dir}/{name}"), bytes).unwrap();
        }
    }
}

/// A boot image of two pages at page 6 of the sample VM, for the line seeds.
static SEED_IMAGE: [u8; 2 * PAGE] = {
    let mut a = [0u8; 2 * PAGE];
    let mut i = 0;
    while i < a.len() {
        a[i] = (i % 251) as u8;
        i += 1;
    }
    a
};

/// The sample VM as a streamed save encodes it: text that compresses in pages
/// 8-9; with `images`, the seed image in pages 6-7 (page 7 changed by a byte:
/// `B`, then `X`).
fn line_seed(cpus: &[CpuState], images: bool) -> Vec<u8> {
    let (mut h, _, mut ram) = sample();
    h.vcpus = cpus.len() as u32;
    for (i, b) in ram[8 * PAGE..10 * PAGE].iter_mut().enumerate() {
        *b = b"snapshot "[i % 9];
    }
    ram[6 * PAGE..8 * PAGE].copy_from_slice(&SEED_IMAGE);
    ram[7 * PAGE + 9] ^= 1;
    let image = stream::BootImage {
        ipa: RAM_IPA + 6 * PAGE as u64,
        size: SEED_IMAGE.len() as u64,
        crc: crate::crc32::hash(&SEED_IMAGE),
    };
    let original = |ipa: u64| {
        let off = usize::try_from(ipa.checked_sub(image.ipa)?).ok()?;
        SEED_IMAGE.get(off..off + PAGE)
    };
    let list = [image];
    let mut enc = Encoder::new(&h, cpus, None).with_compression();
    if images {
        enc = enc.with_booted(Booted {
            images: &list,
            original: &original,
        });
    }
    let mut read = |ipa: u64, page: &mut [u8; PAGE]| {
        let off = (ipa - RAM_IPA) as usize;
        page.copy_from_slice(&ram[off..off + PAGE]);
    };
    let mut out = MAGIC.to_vec();
    let mut seq = 0;
    while enc.frames().is_none() {
        enc.frame(seq, &mut read, &mut out);
        seq += 1;
    }
    out
}

#[test]
fn a_single_non_zero_byte_anywhere_makes_a_page_non_zero() {
    let mut page = [0u8; PAGE];
    assert!(crate::snapshot::stream::is_zero(&page));
    for at in [0, 1, 7, 8, 2049, PAGE - 1] {
        for bit in [0x01, 0x80] {
            page[at] = bit;
            assert!(
                !crate::snapshot::stream::is_zero(&page),
                "byte {at} = {bit:#x}"
            );
            page[at] = 0;
        }
    }
    assert!(crate::snapshot::stream::is_zero(&page));
}

/// A big VM's RAM, read page by page without holding it: zero but for a few data
/// pages and a run of 0xff pages.
fn sparse_page(ipa: u64, page: &mut [u8; PAGE]) {
    let n = (ipa - RAM_IPA) / PAGE as u64;
    page.fill(0);
    match n {
        // A kernel-like block of data pages, one zero page inside it.
        100..=139 if n != 120 => page[..8].copy_from_slice(&n.to_le_bytes()),
        // 0xff pages (a run frame of another byte).
        5000..=5999 => page.fill(0xff),
        // A lone data page far up, and one right at the end.
        200_000 => page[PAGE - 1] = 1,
        _ if n == (1 << 30) / PAGE as u64 - 1 => page[0] = 9,
        _ => {}
    }
}

fn sparse_header(ram_size: u64) -> Header {
    let (mut h, _, _) = sample();
    h.ram_size = ram_size;
    h
}

#[test]
fn a_mostly_zero_vm_of_1_gib_is_a_few_frames_and_round_trips() {
    let h = sparse_header(1 << 30);
    let (_, cpus, _) = sample();
    let mut bytes = Vec::new();
    encode(&h, &cpus, None, sparse_page, &mut bytes);
    let frames = frame::split(&bytes[MAGIC.len()..], MAGIC.len()).count();
    // 42 data pages: 3 RAM frames of them (16, 16 and 8 pages) and a lone one at
    // 200000 and at the end; runs between them of at most 16384 pages each: about
    // 16 run frames, where one frame per 16 pages was 16384 frames (610 KB).
    assert!(frames < 40, "{frames} frames");
    let data = 42 * PAGE;
    assert!(
        bytes.len() < data + 8 * 1024,
        "{} bytes for {data} bytes of data",
        bytes.len()
    );
    let p = decode(&bytes).unwrap();
    let (mut seen, mut data_pages) = (0u64, 0);
    let mut want = [0u8; PAGE];
    p.for_each_page(|ipa, page| {
        let n = (ipa - RAM_IPA) / PAGE as u64;
        assert_eq!(n, seen, "pages out of order");
        seen += 1;
        // Zero pages are None: only the others are compared.
        if let Some(d) = page {
            sparse_page(ipa, &mut want);
            assert_eq!(d, &want[..], "page {n}");
            data_pages += 1;
        } else {
            assert!(
                !(100..140).contains(&n) || n == 120,
                "page {n} came as zeros"
            );
            assert!(!(5000..6000).contains(&n), "page {n} came as zeros");
        }
    });
    assert_eq!(seen, (1 << 30) / PAGE as u64);
    assert_eq!(data_pages, 39 + 1000 + 2);
}

#[test]
fn pages_known_to_be_zero_are_not_read_and_the_file_is_the_same() {
    let h = sparse_header(1 << 30);
    let (_, cpus, _) = sample();
    let mut plain = Vec::new();
    encode(&h, &cpus, None, sparse_page, &mut plain);
    // 2 MiB blocks (512 pages): those with a non-zero page are touched (0, 9 to
    // 11, 390 and the last); every other one is known to be zero.
    const BLOCK: u64 = 2 << 20;
    let touched = |ipa: u64| matches!((ipa - RAM_IPA) / BLOCK, 0 | 9..=11 | 390 | 511);
    let known_zero = |ipa: u64| {
        if touched(ipa) {
            0
        } else {
            BLOCK - (ipa - RAM_IPA) % BLOCK
        }
    };
    let mut reads = 0u64;
    let mut hinted = MAGIC.to_vec();
    let mut e = Encoder::new(&h, &cpus, None).with_known_zero(&known_zero);
    let mut read = |ipa: u64, page: &mut [u8; PAGE]| {
        assert!(touched(ipa), "page {:#x} was read", ipa);
        reads += 1;
        sparse_page(ipa, page);
    };
    let mut seq = 0;
    while e.frames().is_none() {
        e.frame(seq, &mut read, &mut hinted);
        seq += 1;
    }
    assert_eq!(hinted, plain);
    // Only touched blocks are read (a page that ends a frame is read again as
    // the first of the next): 6 blocks of 512 pages, where without the hint it
    // is all 262,144.
    assert!(reads <= 6 * 512 + 32, "{reads} pages read");
    // A hint that is 0 everywhere changes nothing either.
    let mut none = MAGIC.to_vec();
    let nothing = |_| 0;
    let mut e = Encoder::new(&h, &cpus, None).with_known_zero(&nothing);
    let mut seq = 0;
    while e.frames().is_none() {
        e.frame(seq, &mut sparse_page, &mut none);
        seq += 1;
    }
    assert_eq!(none, plain);
}

#[test]
fn every_frame_encoded_again_in_any_order_is_the_same_bytes() {
    // 256 MiB: the lone page at 200000 and the page at the end are outside it.
    let h = sparse_header(256 << 20);
    let (_, cpus, _) = sample();
    let mut file = Vec::new();
    encode(&h, &cpus, Some(b"gic"), sparse_page, &mut file);
    let frames: Vec<&[u8]> = frame::split(&file[MAGIC.len()..], MAGIC.len())
        .map(|f| {
            let (at, f) = f.unwrap();
            &file[at..at + frame::HEADER_LEN + f.payload.len() + 4]
        })
        .collect();
    let mut read = sparse_page;
    let mut enc = Encoder::new(&h, &cpus, Some(b"gic"));
    let n = frames.len() as u64;
    // Forward, back by a window (a go-back-N), far back (a walk from the start),
    // and past the end (nothing).
    let order: Vec<u64> = (0..n)
        .chain((n - 9..n).rev())
        .chain([4, n - 1, 5, 3, 0])
        .collect();
    for seq in order {
        let mut out = Vec::new();
        enc.frame(seq, &mut read, &mut out);
        assert_eq!(out, frames[seq as usize], "frame {seq}");
    }
    assert_eq!(enc.frames(), Some(n));
    let mut out = Vec::new();
    enc.frame(n + 3, &mut read, &mut out);
    assert!(out.is_empty());
}

/// Format 2 as written before run frames: every RAM frame 16 pages, zero pages
/// only in the map (files of that kind are on users' disks).
fn encode_fixed_16(h: &Header, cpus: &[CpuState], ram: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    encode(h, cpus, None, |_, p| p.fill(0), &mut out);
    // The same header and vCPU frames, then RAM frames of 16 pages each.
    let prelude: Vec<_> = frame::split(&out[MAGIC.len()..], MAGIC.len())
        .map(|f| f.unwrap().1)
        .filter(|f| f.kind == frame::KIND_HEAD || f.kind == frame::KIND_VCPU)
        .map(|f| (f.kind, f.payload.to_vec()))
        .collect();
    let mut file = MAGIC.to_vec();
    for (seq, (kind, payload)) in prelude.iter().enumerate() {
        frame::write(&mut file, *kind, seq as u32, payload);
    }
    let mut seq = prelude.len() as u32;
    for (i, chunk) in ram.chunks(16 * PAGE).enumerate() {
        let mut payload = ((i * 16) as u64).to_le_bytes().to_vec();
        payload.push((chunk.len() / PAGE) as u8);
        let mut map = 0u16;
        let mut data = Vec::new();
        for (j, page) in chunk.chunks(PAGE).enumerate() {
            if page.iter().any(|&b| b != 0) {
                map |= 1 << j;
                data.extend_from_slice(page);
            }
        }
        payload.extend_from_slice(&map.to_le_bytes());
        payload.extend_from_slice(&data);
        frame::write(&mut file, frame::KIND_PAGES, seq, &payload);
        seq += 1;
    }
    let mut end = ((ram.len() / PAGE) as u64).to_le_bytes().to_vec();
    end.extend_from_slice(&(seq + 1).to_le_bytes());
    frame::write(&mut file, frame::KIND_END, seq, &end);
    file
}

#[test]
fn a_format_2_file_without_run_frames_still_imports() {
    let (h, cpus, mut ram) = sample();
    ram.resize(64 * PAGE, 0);
    let h = Header {
        ram_size: ram.len() as u64,
        ..h
    };
    let old = encode_fixed_16(&h, &cpus, &ram);
    let p = decode(&old).unwrap();
    assert_eq!(p.cpus, cpus);
    let mut back = vec![0x55u8; ram.len()];
    p.for_each_page(|ipa, page| {
        let off = (ipa - RAM_IPA) as usize;
        match page {
            Some(d) => back[off..off + PAGE].copy_from_slice(d),
            None => back[off..off + PAGE].fill(0),
        }
    });
    assert_eq!(back, ram);
    // The same snapshot written now is smaller (the 48 zero pages at the end are
    // one run frame) and holds the same RAM.
    let mut new = Vec::new();
    let read = |ipa: u64, page: &mut [u8; PAGE]| {
        let off = (ipa - RAM_IPA) as usize;
        page.copy_from_slice(&ram[off..off + PAGE]);
    };
    encode(&h, &cpus, None, read, &mut new);
    assert!(new.len() < old.len(), "{} vs {}", new.len(), old.len());
}

/// The sample's frames, split (start, end in the file).
fn frames_of(file: &[u8]) -> Vec<(u8, usize, usize)> {
    frame::split(&file[MAGIC.len()..], MAGIC.len())
        .map(|f| {
            let (at, f) = f.unwrap();
            (f.kind, at, at + frame::HEADER_LEN + f.payload.len() + 4)
        })
        .collect()
}

#[test]
fn a_run_frame_that_does_not_fit_is_refused_by_name() {
    let (file, _, _) = encode_sample();
    let frames = frames_of(&file);
    let &(_, at, _) = frames
        .iter()
        .find(|f| f.0 == frame::KIND_RUN)
        .expect("the sample starts its RAM with zero pages");
    let edit = |f: &dyn Fn(&mut Vec<u8>)| {
        let mut bad = file.clone();
        f(&mut bad);
        frame::fix_checksums(&mut bad[MAGIC.len()..]);
        decode(&bad).unwrap_err().to_string()
    };
    let p = at + frame::HEADER_LEN;
    // The sample's first run: pages 0-2 of zeros.
    assert_eq!(file[p + 8..p + 13], [3, 0, 0, 0, 0]);
    assert_eq!(edit(&|b| b[p] = 1), "malformed run frame's first page: 0x1");
    assert_eq!(
        edit(&|b| b[p + 8] = 0),
        "malformed run frame's page count: 0x0"
    );
    // More pages than the VM has, and more than a run frame may hold.
    assert_eq!(
        edit(&|b| b[p + 8] = 17),
        "malformed run frame's page count: 0x11"
    );
    assert_eq!(
        edit(&|b| b[p + 9..p + 12].copy_from_slice(&[0x40, 0, 0])),
        "malformed run frame's page count: 0x4003"
    );
    // Covering one page too many or too few: the next frame does not fit.
    assert_eq!(
        edit(&|b| b[p + 8] = 2),
        "malformed RAM frame's first page: 0x3"
    );
    // A byte too many, or a damaged run frame.
    let mut long = file[..at].to_vec();
    let payload = &file[p..p + 13];
    let mut extra = payload.to_vec();
    extra.push(0);
    frame::write(&mut long, frame::KIND_RUN, file[at + 3] as u32, &extra);
    long.extend_from_slice(&file[at + frame::HEADER_LEN + 13 + 4..]);
    assert_eq!(
        decode(&long).unwrap_err().to_string(),
        "unexpected bytes at 13"
    );
    let mut damaged = file.clone();
    damaged[p + 12] ^= 0xff;
    let seq = u32::from_le_bytes(file[at + 3..at + 7].try_into().unwrap());
    assert_eq!(
        decode(&damaged).unwrap_err(),
        SnapshotError::FrameDamaged { seq }
    );
    // A run frame before the registers are in.
    let mut d = Decoder::new();
    assert_eq!(
        d.feed(frame::Frame {
            kind: frame::KIND_RUN,
            seq: 0,
            payload: &[],
        })
        .unwrap_err()
        .to_string(),
        "frame 0 is a RAM run frame where a header frame was expected"
    );
}

#[test]
fn pages_of_one_byte_are_a_run_and_come_back() {
    let (h, cpus, mut ram) = sample();
    // Pages 6-9 all 0xff, page 10 all 0x01: two runs between data frames.
    ram[6 * PAGE..10 * PAGE].fill(0xff);
    ram[10 * PAGE..11 * PAGE].fill(1);
    let read = |ipa: u64, page: &mut [u8; PAGE]| {
        let off = (ipa - RAM_IPA) as usize;
        page.copy_from_slice(&ram[off..off + PAGE]);
    };
    let mut bytes = Vec::new();
    encode(&h, &cpus, None, read, &mut bytes);
    let kinds: Vec<u8> = frames_of(&bytes).iter().map(|f| f.0).collect();
    // H C C | R(0-2) P(3-5: 5 is zero) R(6-9 0xff) R(10 0x01) R(11-14) P(15) | E
    assert_eq!(kinds, b"HCCRPRRRPE");
    let p = decode(&bytes).unwrap();
    let mut back = vec![0x55u8; ram.len()];
    p.for_each_page(|ipa, page| {
        let off = (ipa - RAM_IPA) as usize;
        match page {
            Some(d) => back[off..off + PAGE].copy_from_slice(d),
            None => back[off..off + PAGE].fill(0),
        }
    });
    assert_eq!(back, ram);
}
