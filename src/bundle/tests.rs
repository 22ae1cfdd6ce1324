//! Host tests: archives written by GNU cpio (the fixtures), by the writer, and by
//! hand where a header must be wrong.
#![forbid(unsafe_code)]

use super::cpio::{self, CpioError, Writer, S_IFLNK, S_IFREG};
use super::*;

/// `find . | sort | cpio -o -H newc` over vm0/{kernel,cmdline,config} and
/// vm1/{kernel,initrd} (see tests/fixtures/README.md).
const GNU_NEWC: &[u8] = include_bytes!("../../tests/fixtures/bundle-newc.cpio");
/// The same tree with `-H crc` (magic 070702, data checksums).
const GNU_CRC: &[u8] = include_bytes!("../../tests/fixtures/bundle-crc.cpio");
/// An ordinary initramfs (`init`, `bin/`).
const GNU_PLAIN: &[u8] = include_bytes!("../../tests/fixtures/plain-initramfs.cpio");

const MIB: u64 = 1 << 20;

fn ok<'a>(b: &'a Bundle<'a>, i: usize) -> &'a BundleVm<'a> {
    match &b.vms[i] {
        Ok(vm) => vm,
        Err(e) => panic!("vm{i} refused: {e}"),
    }
}

fn err<'a>(b: &'a Bundle<'a>, i: usize) -> VmError<'a> {
    match &b.vms[i] {
        Ok(_) => panic!("vm{i} was accepted"),
        Err(e) => *e,
    }
}

/// Checks the GNU fixtures' content, and that every member is the archive's own
/// bytes at its offset (zero-copy, and the offset the hypervisor uses to name a
/// physical address).
fn check_two_vms(archive: &[u8]) {
    let b = parse(archive).unwrap();
    assert_eq!(b.vms.len(), 2);
    assert_eq!((b.beyond, b.ignored_count), (None, 0));
    let vm0 = ok(&b, 0);
    assert_eq!(vm0.index, 0);
    assert_eq!(vm0.kernel.data, b"KERNEL0-abc");
    assert_eq!(vm0.initrd, None);
    assert_eq!(vm0.cmdline, Some("console=ttyAMA0 vm=0"));
    assert_eq!(
        vm0.config,
        Config {
            cpus: Some(2),
            mem: Some(64 * MIB),
            passthrough: None
        }
    );
    let vm1 = ok(&b, 1);
    assert_eq!(vm1.index, 1);
    assert_eq!(vm1.kernel.data, b"K1");
    assert_eq!(vm1.initrd.unwrap().data, b"INITRD-one");
    assert_eq!((vm1.cmdline, vm1.config), (None, Config::default()));
    for m in [vm0.kernel, vm1.kernel, vm1.initrd.unwrap()] {
        assert_eq!(&archive[m.offset..m.offset + m.data.len()], m.data);
        assert_eq!(m.data.as_ptr(), archive[m.offset..].as_ptr());
        assert_eq!(m.offset % 4, 0);
    }
}

#[test]
fn a_two_vm_bundle_written_by_gnu_cpio() {
    check_two_vms(GNU_NEWC);
}

#[test]
fn the_070702_form_is_read_and_its_checksums_checked() {
    check_two_vms(GNU_CRC);
    // Damage one byte of vm1/kernel: vm1 is refused by name, vm0 still starts.
    let at = parse(GNU_CRC).unwrap().vms[1].unwrap().kernel.offset;
    let mut bad = GNU_CRC.to_vec();
    bad[at] ^= 0x20;
    let b = parse(&bad).unwrap();
    assert!(b.vms[0].is_ok());
    let e = err(&b, 1);
    assert_eq!(e.kind, VmErrorKind::BadChecksum("kernel"));
    assert_eq!(
        e.to_string(),
        "vm1/: vm1/kernel does not match the checksum in its header (070702): the archive is damaged"
    );
}

#[test]
fn an_ordinary_initramfs_or_other_data_is_not_a_bundle() {
    let e = parse(GNU_PLAIN).unwrap_err();
    assert!(e.is_not_a_bundle());
    assert!(matches!(e, BundleError::NoVms(Some(_))), "{e}");
    assert!(e
        .to_string()
        .starts_with("not a guest bundle: a cpio archive without vm0/"));

    let e = parse(&[0x1f, 0x8b, 8, 0, 0, 0]).unwrap_err();
    assert_eq!(e, BundleError::NotCpio(Some("gzip-compressed data")));
    assert_eq!(
        e.to_string(),
        "not a guest bundle: it is gzip-compressed data, and a bundle is an uncompressed newc cpio archive (cpio -H newc)"
    );
    assert_eq!(
        parse(b"070707000000").unwrap_err(),
        BundleError::NotCpio(Some("a cpio archive in the old odc format"))
    );
    for junk in [&b""[..], b"0", b"07070", b"hello world", &[0u8; 512]] {
        let e = parse(junk).unwrap_err();
        assert_eq!(e, BundleError::NotCpio(None));
        assert!(e.is_not_a_bundle());
    }
    // Only a trailer: a cpio archive, empty.
    let empty = Writer::new().finish();
    assert_eq!(parse(&empty).unwrap_err(), BundleError::NoVms(None));
}

#[test]
fn every_truncation_is_an_error_and_the_trailer_ends_the_archive() {
    let trailer_end = {
        let t = GNU_NEWC
            .windows(cpio::TRAILER.len())
            .position(|w| w == cpio::TRAILER)
            .unwrap();
        t + cpio::TRAILER.len() + 1
    };
    for cut in 0..trailer_end {
        let e = parse(&GNU_NEWC[..cut]).unwrap_err();
        match e {
            BundleError::NotCpio(None) => assert!(cut < 6, "cut {cut}"),
            BundleError::Damaged(CpioError::Truncated { .. } | CpioError::NoTrailer { .. }) => {
                assert!(e.to_string().contains("truncated"), "{e}")
            }
            other => panic!("cut at {cut}: {other}"),
        }
    }
    // From the trailer's NUL on, the rest (cpio's padding) is never read.
    let whole = parse(GNU_NEWC).unwrap();
    assert_eq!(parse(&GNU_NEWC[..trailer_end]).unwrap(), whole);
    let mut more = GNU_NEWC.to_vec();
    more.extend_from_slice(b"garbage after the trailer");
    assert_eq!(parse(&more).unwrap(), whole);
}

#[test]
fn a_damaged_header_names_its_offset_and_field() {
    let second = 112; // "." entry: 110 + 2 ("." and NUL), no data; then "vm0".
    let mut a = GNU_NEWC.to_vec();
    assert_eq!(&a[second..second + 6], b"070701");
    a[second] = b'X';
    let e = parse(&a).unwrap_err();
    assert_eq!(
        e,
        BundleError::Damaged(CpioError::BadMagic { offset: second })
    );
    assert_eq!(
        e.to_string(),
        "the guest bundle is damaged: no cpio header at byte 112 (expected the magic 070701): the archive is damaged"
    );

    let mut a = GNU_NEWC.to_vec();
    a[6 + 6 * 8 + 3] = b'g'; // filesize of the first entry
    assert_eq!(
        parse(&a).unwrap_err(),
        BundleError::Damaged(CpioError::BadField {
            offset: 0,
            field: "filesize"
        })
    );
    // A filesize past the end.
    let mut a = GNU_NEWC.to_vec();
    a[6 + 6 * 8..6 + 7 * 8].copy_from_slice(b"FFFFFFFF");
    assert_eq!(
        parse(&a).unwrap_err(),
        BundleError::Damaged(CpioError::Truncated {
            offset: 0,
            what: "data"
        })
    );
    // namesize 0, and a name with no NUL where namesize says.
    let mut a = GNU_NEWC.to_vec();
    a[6 + 11 * 8..6 + 12 * 8].copy_from_slice(b"00000000");
    assert_eq!(
        parse(&a).unwrap_err(),
        BundleError::Damaged(CpioError::BadName { offset: 0 })
    );
    let mut a = GNU_NEWC.to_vec();
    a[111] = b'x'; // "." 's NUL
    assert_eq!(
        parse(&a).unwrap_err(),
        BundleError::Damaged(CpioError::BadName { offset: 0 })
    );
}

#[test]
fn padding_is_honoured_for_every_name_and_data_length() {
    // Names of 1 to 8 bytes put the data at every alignment after the header;
    // data of 0 to 8 bytes ends at every alignment.
    for name_len in 1..=8 {
        for data_len in 0..=8 {
            let name = "k".repeat(name_len);
            let data: Vec<u8> = (1..=data_len as u8).collect();
            let mut w = Writer::new();
            w.file(&name, &data).file("vm0/kernel", b"KK");
            let a = w.finish();
            assert_eq!(a.len() % 512, 0);
            let entries: Vec<_> = cpio::entries(&a).collect::<Result<_, _>>().unwrap();
            assert_eq!(entries.len(), 2);
            assert_eq!(entries[0].name, name.as_bytes());
            assert_eq!(entries[0].data, &data[..]);
            assert_eq!(entries[0].data_offset % 4, 0);
            assert_eq!(entries[1].offset % 4, 0);
            assert_eq!(entries[1].data, b"KK");
            let b = parse(&a).unwrap();
            assert_eq!(ok(&b, 0).kernel.data, b"KK");
            assert_eq!(b.ignored_count, 1);
        }
    }
}

#[test]
fn names_may_start_with_dot_slash_and_directories_may_be_listed() {
    let mut w = Writer::new();
    w.dir(".")
        .dir("./vm0")
        .file("./vm0/kernel", b"K0")
        .file("./vm0/cmdline", b"console=ttyAMA0 root=/dev/ram\r\n")
        .file("/vm1/kernel", b"K1")
        .dir("vm1/");
    let a = w.finish();
    let b = parse(&a).unwrap();
    assert_eq!(ok(&b, 0).cmdline, Some("console=ttyAMA0 root=/dev/ram"));
    assert_eq!(ok(&b, 1).kernel.data, b"K1");
    assert_eq!(b.ignored_count, 0);
}

#[test]
fn entries_outside_vm_directories_are_ignored_and_named() {
    let mut w = Writer::new();
    w.file("README", b"x")
        .file("vm01/kernel", b"x")
        .file("vm0/kernel", b"K");
    let a = w.finish();
    let b = parse(&a).unwrap();
    assert!(b.vms[0].is_ok());
    assert_eq!(b.ignored_count, 2);
    assert_eq!(b.ignored[0].to_string(), "README");
    assert_eq!(b.ignored[1].to_string(), "vm01/kernel");
    assert_eq!(Name(b"a\x01\xffb").to_string(), "a\\x01\\xffb");
}

/// A bundle whose vm0 is good and whose vm1 is given by `vm1`.
fn with_vm1(vm1: impl FnOnce(&mut Writer)) -> Vec<u8> {
    let mut w = Writer::new();
    w.file("vm0/kernel", b"K0");
    vm1(&mut w);
    w.finish()
}

/// vm1's refusal, checking that vm0 still starts.
fn vm1_error(a: &[u8]) -> String {
    let b = parse(a).unwrap();
    assert!(b.vms[0].is_ok(), "vm0 should start");
    let e = err(&b, 1);
    assert_eq!(e.index, 1);
    e.to_string()
}

#[test]
fn a_bad_vm_directory_is_refused_by_name_and_the_others_start() {
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (
            with_vm1(|w| {
                w.file("vm1/cmdline", b"x");
            }),
            "vm1/: no kernel (a VM directory needs its kernel image as vm1/kernel)",
        ),
        (
            with_vm1(|w| {
                w.dir("vm1");
            }),
            "vm1/: no kernel (a VM directory needs its kernel image as vm1/kernel)",
        ),
        (
            with_vm1(|w| {
                w.file("vm1/kernel", b"K").file("vm1/notes.txt", b"x");
            }),
            "vm1/: unknown file 'vm1/notes.txt' (a VM directory holds only kernel, initrd, cmdline and config)",
        ),
        (
            with_vm1(|w| {
                w.file("vm1/kernel", b"K").file("./vm1/sub/kernel", b"x");
            }),
            "vm1/: unknown file './vm1/sub/kernel' (a VM directory holds only kernel, initrd, cmdline and config)",
        ),
        (
            with_vm1(|w| {
                w.file("vm1/kernel", b"K").file("vm1/kernel", b"K");
            }),
            "vm1/: vm1/kernel appears twice in the archive",
        ),
        (
            with_vm1(|w| {
                w.file("vm1/kernel", b"");
            }),
            "vm1/: vm1/kernel is empty",
        ),
        (
            with_vm1(|w| {
                w.file("vm1/kernel", b"K").file("vm1/initrd", b"");
            }),
            "vm1/: vm1/initrd is empty",
        ),
        (
            with_vm1(|w| {
                w.entry("vm1/kernel", S_IFLNK | 0o777, 1, b"../Image");
            }),
            "vm1/: vm1/kernel is a symbolic link (archive the file itself: find -L ... | cpio)",
        ),
        (
            with_vm1(|w| {
                w.dir("vm1/kernel");
            }),
            "vm1/: vm1/kernel is a directory",
        ),
        (
            with_vm1(|w| {
                w.file("vm1", b"K");
            }),
            "vm1/: vm1 is a file: it must be a directory holding kernel, ...",
        ),
        (
            with_vm1(|w| {
                w.file("vm1/kernel", b"K").file("vm1/cmdline", b"a\nb\n");
            }),
            "vm1/: vm1/cmdline has more than one line (the kernel command line is one line)",
        ),
        (
            with_vm1(|w| {
                w.file("vm1/kernel", b"K").file("vm1/cmdline", b"a\0b");
            }),
            "vm1/: vm1/cmdline contains a NUL byte",
        ),
        (
            with_vm1(|w| {
                w.file("vm1/kernel", b"K").file("vm1/cmdline", b"\xff");
            }),
            "vm1/: vm1/cmdline is not UTF-8 text",
        ),
        (
            with_vm1(|w| {
                w.file("vm1/kernel", b"K")
                    .file("vm1/config", b"cpus=2\ncpu=2\n");
            }),
            "vm1/: vm1/config line 2: unknown key 'cpu' (the keys are cpus, mem and passthrough)",
        ),
        (
            with_vm1(|w| {
                w.file("vm1/kernel", b"K").file("vm1/config", b"mem=3M");
            }),
            "vm1/: vm1/config line 1: mem=3M: must be a non-zero multiple of 2M (a VM's RAM is mapped in 2 MiB blocks)",
        ),
    ];
    for (archive, message) in cases {
        assert_eq!(vm1_error(&archive), message);
    }
}

#[test]
fn directories_are_numbered_without_gaps() {
    let mut w = Writer::new();
    w.file("vm0/kernel", b"K0")
        .file("vm2/kernel", b"K2")
        .file("vm3/kernel", b"K3");
    let a = w.finish();
    let b = parse(&a).unwrap();
    assert_eq!(b.vms.len(), 3);
    assert!(b.vms[0].is_ok());
    for (i, n) in [(1, 2), (2, 3)] {
        let e = err(&b, i);
        assert_eq!(e.index, n);
        assert_eq!(e.kind, VmErrorKind::Gap { missing: 1 });
    }
    assert_eq!(
        err(&b, 1).to_string(),
        "vm2/: there is no vm1/ before it (number the directories vm0/, vm1/, ... without gaps)"
    );
    // No vm0 at all: every VM is refused.
    let mut w = Writer::new();
    w.file("vm1/kernel", b"K1");
    let a = w.finish();
    let b = parse(&a).unwrap();
    assert_eq!(err(&b, 0).kind, VmErrorKind::Gap { missing: 0 });
    assert_eq!(b.ok_vms().count(), 0);
}

#[test]
fn at_most_eight_vms() {
    let mut w = Writer::new();
    for i in 0..10 {
        w.file(&format!("vm{i}/kernel"), b"K");
    }
    w.file("vm123456789/kernel", b"K");
    let a = w.finish();
    let b = parse(&a).unwrap();
    assert_eq!(b.ok_vms().count(), MAX_VMS);
    assert_eq!(b.beyond, Some((8, 3)));
    assert_eq!(
        b.beyond_error().unwrap().to_string(),
        "vm8/: a bundle holds at most 8 VMs (vm0/ to vm7/)"
    );
    // vm4294967296 does not fit a u32: not a VM directory at all.
    let mut w = Writer::new();
    w.file("vm0/kernel", b"K").file("vm4294967296/kernel", b"K");
    let a = w.finish();
    let b = parse(&a).unwrap();
    assert_eq!((b.beyond, b.ignored_count), (None, 1));
}

#[test]
fn config_files() {
    let c = config::parse(
        b"# a comment\r\n\r\n  cpus = 4  # trailing comment\r\nmem=1G\npassthrough=/pl031@9010000,/virtio_mmio@a003e00\n",
    )
    .unwrap();
    assert_eq!(
        c,
        Config {
            cpus: Some(4),
            mem: Some(1 << 30),
            passthrough: Some("/pl031@9010000,/virtio_mmio@a003e00")
        }
    );
    assert_eq!(config::parse(b"").unwrap(), Config::default());
    assert_eq!(config::parse(b"mem=2048K").unwrap().mem, Some(2 * MIB));
    assert_eq!(config::parse(b"mem=4194304").unwrap().mem, Some(4 * MIB));
    assert_eq!(config::parse(b"mem=2g").unwrap().mem, Some(2 << 30));
    assert_eq!(
        config::parse(b"passthrough=all").unwrap().passthrough,
        Some("all")
    );

    let bad = |text: &[u8]| config::parse(text).unwrap_err().to_string();
    assert_eq!(
        bad(b"cpus=0"),
        "line 1: cpus=0: expected a number from 1 to 256"
    );
    assert_eq!(
        bad(b"cpus=257"),
        "line 1: cpus=257: expected a number from 1 to 256"
    );
    assert_eq!(
        bad(b"cpus=two"),
        "line 1: cpus=two: expected a number from 1 to 256"
    );
    assert_eq!(
        bad(b"mem=1X"),
        "line 1: mem=1X: expected a size such as 256M or 1G (K, M or G; a multiple of 2M)"
    );
    assert_eq!(
        bad(b"mem=M"),
        "line 1: mem=M: expected a size such as 256M or 1G (K, M or G; a multiple of 2M)"
    );
    assert_eq!(
        bad(b"mem=99999999999999G"),
        "line 1: mem=99999999999999G: too large"
    );
    assert_eq!(
        bad(b"mem=99999999999999999999999"),
        "line 1: mem=99999999999999999999999: too large"
    );
    assert_eq!(
        bad(b"mem=0"),
        "line 1: mem=0: must be a non-zero multiple of 2M (a VM's RAM is mapped in 2 MiB blocks)"
    );
    assert_eq!(bad(b"cpus=1\ncpus=2"), "line 2: 'cpus' is given twice");
    assert_eq!(
        bad(b"\n\njust words"),
        "line 3: 'just words' is not key=value"
    );
    assert_eq!(
        bad(b"passthrough="),
        "line 1: passthrough=: expected device-tree paths separated by commas, or all"
    );
    assert_eq!(bad(b"\xff"), "not UTF-8 text");
    assert_eq!(
        bad(b"Cpus=1"),
        "line 1: unknown key 'Cpus' (the keys are cpus, mem and passthrough)"
    );
}

#[test]
fn cmdline_line_ends_and_blank_files() {
    for (text, want) in [
        (&b"a b\n"[..], Some("a b")),
        (b"a b\r\n", Some("a b")),
        (b"a b", Some("a b")),
        (b"\n", None),
        (b"", None),
    ] {
        let mut w = Writer::new();
        w.file("vm0/kernel", b"K").file("vm0/cmdline", text);
        let a = w.finish();
        assert_eq!(ok(&parse(&a).unwrap(), 0).cmdline, want);
    }
}

#[test]
fn the_writer_writes_what_gnu_cpio_reads() {
    // Field for field what the reader sees in GNU cpio's own archive.
    let gnu: Vec<_> = cpio::entries(GNU_NEWC).collect::<Result<_, _>>().unwrap();
    let mut w = Writer::new();
    for e in &gnu {
        let name = core::str::from_utf8(e.name).unwrap();
        if e.file_type() == S_IFREG {
            w.file(name, e.data);
        } else {
            w.dir(name);
        }
    }
    let ours = w.finish();
    let mine: Vec<_> = cpio::entries(&ours).collect::<Result<_, _>>().unwrap();
    assert_eq!(mine.len(), gnu.len());
    for (a, b) in mine.iter().zip(&gnu) {
        assert_eq!(
            (a.name, a.data, a.file_type()),
            (b.name, b.data, b.file_type())
        );
        assert_eq!((a.offset, a.data_offset), (b.offset, b.data_offset));
    }
    assert_eq!(ours.len(), GNU_NEWC.len());
}
