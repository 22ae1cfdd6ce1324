//! The saved register list, blessed per CPU model, in the spirit of KVM's
//! `get-reg-list` selftest: the list a snapshot holds for a Cortex-A72-class and a
//! QEMU `max`-class CPU is compared with a checked-in list (`tests/blessed/`). A
//! register that disappears fails the test (a snapshot taken before could no longer
//! be restored), and so does a new one until it is blessed: the failure prints the
//! exact lines to add to (or remove from) the file. A deliberate change is blessed
//! by adding those lines, or by rewriting the files with `HV_BLESS=1 cargo test
//! --lib blessed`; the diff of `tests/blessed/` then shows it in review. Every
//! listed register must survive a raw read then a raw write of the same value. The CPU models' ID registers are fixtures read from bare QEMU
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
    check_with(model, fixture, blessed, IdPolicy::default())
}

fn check_with(model: &str, fixture: &str, blessed: &str, policy: IdPolicy) {
    let ids = GuestIds::sanitise(&host_ids(fixture), &policy);
    let list: Vec<(u64, Reg)> = saved_list(ids.features()).collect();
    let actual: BTreeSet<String> = list
        .iter()
        .map(|(i, r)| format!("{i:#018x} {}", r.name()))
        .collect();
    let path = format!("tests/blessed/{model}.txt");
    if std::env::var_os("HV_BLESS").is_some() {
        let full = format!("{}/{path}", env!("CARGO_MANIFEST_DIR"));
        let body: Vec<String> = actual.iter().cloned().collect();
        std::fs::write(&full, body.join("\n") + "\n").unwrap();
        eprintln!("blessed {} registers into {full}", actual.len());
        return;
    }
    // The file itself: one `INDEX NAME` line per register, ascending, each name
    // the table's name for that index (a hand edit cannot smuggle in a typo).
    let lines: Vec<&str> = blessed.lines().collect();
    for w in lines.windows(2) {
        assert!(
            w[0] < w[1],
            "{path}: not sorted or duplicated: '{}' then '{}'",
            w[0],
            w[1]
        );
    }
    for line in &lines {
        let (index, name) = line
            .split_once(' ')
            .unwrap_or_else(|| panic!("{path}: '{line}' is not 'INDEX NAME'"));
        let index = u64::from_str_radix(index.trim_start_matches("0x"), 16)
            .unwrap_or_else(|_| panic!("{path}: '{line}': the index is not hex"));
        let known = crate::cpreg::lookup_kvm(index).map(|r| r.name());
        assert!(
            known.is_none() || known == Some(name),
            "{path}: '{line}': index {index:#018x} is {} in the table",
            known.unwrap_or("?")
        );
    }
    let expected: BTreeSet<String> = lines.iter().map(|l| String::from(*l)).collect();
    let missing: Vec<&String> = expected.difference(&actual).collect();
    let new: Vec<&String> = actual.difference(&expected).collect();
    if !missing.is_empty() || !new.is_empty() {
        let mut msg = format!("{model}: the saved register list differs from {path}.\n");
        if !new.is_empty() {
            msg += &format!(
                "{} new register(s): a snapshot would carry them, but nothing has \
                 blessed them. If that is intended, add these lines to {path}:\n",
                new.len()
            );
            for l in &new {
                msg += &format!("{l}\n");
            }
        }
        if !missing.is_empty() {
            msg += &format!(
                "{} register(s) left the list: a snapshot taken before could no longer \
                 be restored. If that is intended, remove these lines from {path}:\n",
                missing.len()
            );
            for l in &missing {
                msg += &format!("{l}\n");
            }
        }
        msg += "(or rewrite both files with `HV_BLESS=1 cargo test --lib blessed`, \
                then review the diff of tests/blessed/)";
        panic!("{msg}");
    }
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

/// A QEMU `max` VM given a virtual PMU (`hv.pmu`) with QEMU's 6 event counters: the
/// `max` list plus the PMU's state (PMCR, the enables, overflow flags, the cycle
/// counter and its filter, counters 0-5 and their types; PMCEID0/1 as constants),
/// never its operations (PMSWINC) or its aliases (the CLR registers, the AArch32
/// views).
#[test]
fn blessed_saved_list_max_with_a_pmu() {
    check_with(
        "max-pmu",
        include_str!("../../tests/fixtures/ids-max.txt"),
        include_str!("../../tests/blessed/max-pmu.txt"),
        IdPolicy {
            pmu_counters: 6,
            ..IdPolicy::default()
        },
    );
}

/// A QEMU `max` VM offered MTE (`-M virt,mte=on`, where `max` reports FEAT_MTE3:
/// the `max` fixture with ID_AA64PFR1_EL1.MTE = 3): the `max` list plus GCR_EL1,
/// RGSR_EL1, TFSR_EL1 and TFSRE0_EL1.
#[test]
fn blessed_saved_list_max_with_mte() {
    let fixture = include_str!("../../tests/fixtures/ids-max.txt");
    let fixture: String = fixture
        .lines()
        .map(|l| match l.strip_prefix("ID_AA64PFR1_EL1=0x") {
            Some(v) => {
                let v = u64::from_str_radix(v, 16).unwrap();
                format!("ID_AA64PFR1_EL1={:#x}\n", (v & !(0xf << 8)) | (3 << 8))
            }
            None => format!("{l}\n"),
        })
        .collect();
    check_with(
        "max-mte",
        &fixture,
        include_str!("../../tests/blessed/max-mte.txt"),
        IdPolicy {
            mte: true,
            ..IdPolicy::default()
        },
    );
}
