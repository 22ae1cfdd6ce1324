//! The saved register list, blessed per CPU model, in the spirit of KVM's
//! `get-reg-list` selftest: the list a snapshot holds for a Cortex-A72-class and a
//! QEMU `max`-class CPU is compared with a checked-in list (`tests/blessed/`). A
//! register that disappears fails the test (a snapshot taken before could no longer
//! be restored); a new one is printed, to be blessed with `BLESS=1 cargo test
//! blessed`. Every listed register must survive a raw read then a raw write of the
//! same value. The CPU models' ID registers are fixtures read from bare QEMU
//! (`tests/fixtures/ids-*.txt`, by the `sysregs` guest), sanitised as the hypervisor
//! does at boot.

use crate::cpreg::{saved_list, GuestIds, HostIds, IdPolicy, Reg, SysRegFile};
use std::collections::BTreeSet;
use std::string::String;
use std::vec::Vec;

fn host_ids(fixture: &str) -> HostIds {
    let mut h = HostIds::zeroed();
    for line in fixture.lines() {
        let (name, value) = line.split_once('=').expect("NAME=0xVALUE");
        let value = u64::from_str_radix(value.trim_start_matches("0x"), 16).expect("hex value");
        let reg = Reg::ALL
            .iter()
            .copied()
            .find(|r| r.name() == name)
            .unwrap_or_else(|| panic!("unknown register {name}"));
        h.set(reg, value);
    }
    h
}

fn check(model: &str, fixture: &str, blessed: &str) {
    let ids = GuestIds::sanitise(&host_ids(fixture), &IdPolicy::default());
    let list: Vec<(u64, Reg)> = saved_list(ids.features()).collect();
    let actual: BTreeSet<String> = list
        .iter()
        .map(|(i, r)| format!("{i:#018x} {}", r.name()))
        .collect();
    if std::env::var_os("BLESS").is_some() {
        let path = format!("{}/tests/blessed/{model}.txt", env!("CARGO_MANIFEST_DIR"));
        let body: Vec<String> = actual.iter().cloned().collect();
        std::fs::write(&path, body.join("\n") + "\n").unwrap();
        eprintln!("blessed {} registers into {path}", actual.len());
        return;
    }
    let expected: BTreeSet<String> = blessed.lines().map(str::to_owned).collect();
    let missing: Vec<&String> = expected.difference(&actual).collect();
    for new in actual.difference(&expected) {
        eprintln!("{model}: new register in the saved list (bless it): {new}");
    }
    assert!(
        missing.is_empty(),
        "{model}: registers left the saved list: {missing:#?}"
    );
    // Each survives a raw read, then a raw write of the same value.
    let mut file = SysRegFile::new(&ids, 0);
    for (i, r) in list {
        let v = file
            .raw_read(r)
            .unwrap_or_else(|e| panic!("{model}: {} ({i:#x}) raw read: {e:?}", r.name()));
        file.raw_write(r, v)
            .unwrap_or_else(|e| panic!("{model}: {} raw write of its own value: {e:?}", r.name()));
        assert_eq!(
            file.raw_read(r).unwrap(),
            v,
            "{model}: {} changed on a raw write of its own value",
            r.name()
        );
    }
}

#[test]
fn blessed_saved_list_cortex_a72() {
    check(
        "cortex-a72",
        include_str!("../../tests/fixtures/ids-cortex-a72.txt"),
        include_str!("../../tests/blessed/cortex-a72.txt"),
    );
}

#[test]
fn blessed_saved_list_max() {
    check(
        "max",
        include_str!("../../tests/fixtures/ids-max.txt"),
        include_str!("../../tests/blessed/max.txt"),
    );
}
