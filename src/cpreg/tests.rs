//! Whole-table tests: the invariants of DESIGN.md section 5 over every entry, and the
//! emulation paths through the in-memory hardware fake.
//!
//! Every assertion names the entry it is about, so a bad row reads as
//! "<NAME>: <rule>".
#![forbid(unsafe_code)]

extern crate std;
use std::collections::{BTreeMap, BTreeSet};
use std::vec::Vec;

use super::table::{
    COUNT, DEBUG_SET, EL1_SET, FP_SET, KVM_ORDER, MTE_SET, NUM_A32, NUM_A64, PMU_SET,
};
use super::*;
use crate::esr::{Conditional, CpRrtIss, CpRtIss, Esr, ExceptionClass, SysRegIss};

fn ctx_all() -> SysRegFile {
    let mut c = SysRegFile::new(
        &GuestIds::sanitise(&HostIds::zeroed(), &IdPolicy::default()),
        0,
    );
    c.set_features(Features::ALL);
    c
}

fn owner_of(reg: Reg) -> Option<(Reg, u8, u8)> {
    match reg.entry().state {
        State::Alias { owner, lsb, width } => Some((owner, lsb, width)),
        _ => None,
    }
}

/// The bits of a register's value that are state: all, except PMCR_EL0's P and C
/// (actions, dropped by a raw write so a restore never resets the counters).
fn raw_state_bits(reg: Reg) -> u64 {
    if reg == Reg::PMCR_EL0 {
        !super::table::PMCR_ACTIONS
    } else {
        u64::MAX
    }
}

fn mask(width: u8) -> u64 {
    if width >= 64 {
        u64::MAX
    } else {
        (1 << width) - 1
    }
}

/// A value with every byte distinct, so a wrong bit mapping cannot go unnoticed.
const PATTERN: u64 = 0x8967_4523_f1e2_d3c4;

// ---------------------------------------------------------------------------------
// Structure.

#[test]
fn every_entry_has_a_name_and_an_encoding_and_reg_indexes_agree() {
    let mut names = BTreeSet::new();
    for (i, e) in entries().enumerate() {
        assert_eq!(Reg::ALL[i] as usize, i);
        assert!(!e.name.is_empty());
        assert!(names.insert(e.name), "{}: duplicate name", e.name);
        assert!(
            e.a64.is_some() || e.a32.is_some(),
            "{}: no encoding",
            e.name
        );
    }
}

#[test]
fn no_encoding_appears_twice() {
    let mut a64 = BTreeMap::new();
    let mut a32 = BTreeMap::new();
    let mut kvm = BTreeMap::new();
    for e in entries() {
        if let Some(x) = e.a64 {
            assert!(
                a64.insert(x, e.name).is_none(),
                "{}: AArch64 {} twice",
                e.name,
                x
            );
        }
        if let Some(x) = e.a32 {
            assert!(
                a32.insert(x, e.name).is_none(),
                "{}: AArch32 {} twice",
                e.name,
                x
            );
        }
        assert!(
            kvm.insert(e.kvm_index(), e.name).is_none(),
            "{}: KVM index twice",
            e.name
        );
    }
    assert_eq!(a64.len(), NUM_A64);
    assert_eq!(a32.len(), NUM_A32);
}

#[test]
fn lookup_finds_every_entry_by_each_of_its_encodings() {
    for &r in Reg::ALL.iter() {
        let e = r.entry();
        if let Some(x) = e.a64 {
            assert_eq!(lookup_a64(x), Some(r), "{}", e.name);
        }
        if let Some(x) = e.a32 {
            assert_eq!(lookup_a32(x), Some(r), "{}", e.name);
        }
        assert_eq!(lookup_kvm(e.kvm_index()), Some(r), "{}", e.name);
    }
    assert_eq!(lookup_a64(Sys64::new(3, 0, 15, 0, 0)), None);
    assert_eq!(lookup_a32(Cp::new32(15, 0, 15, 0, 0)), None);
    assert_eq!(lookup_kvm(0x6030_0000_0013_0000 | 0xffff), None);
}

#[test]
fn no_two_non_alias_entries_own_the_same_slot_and_every_slot_is_owned() {
    let mut owners = BTreeMap::new();
    for &r in Reg::ALL.iter() {
        let e = r.entry();
        match (e.state, r.slot()) {
            (State::Own, Some(s)) => {
                assert!(!e.is(Flags::ALIAS), "{}", e.name);
                if let Some(o) = owners.insert(s, e.name) {
                    panic!("{}: slot {s} already owned by {o}", e.name);
                }
            }
            (State::Own, None) => panic!("{}: own state without a slot", e.name),
            (_, Some(_)) => panic!("{}: slot without own state", e.name),
            (_, None) => {}
        }
    }
    assert_eq!(owners.len(), NUM_SLOTS);
    assert_eq!(
        owners.keys().copied().collect::<Vec<_>>(),
        (0..NUM_SLOTS).collect::<Vec<_>>()
    );
}

#[test]
fn every_alias_resolves_to_a_non_alias_owner_with_state() {
    for &r in Reg::ALL.iter() {
        let e = r.entry();
        assert_eq!(e.is(Flags::ALIAS), owner_of(r).is_some(), "{}", e.name);
        if let Some((owner, lsb, width)) = owner_of(r) {
            let o = owner.entry();
            assert!(
                !o.is(Flags::ALIAS),
                "{}: owner {} is an alias",
                e.name,
                o.name
            );
            assert!(
                !o.is(Flags::NO_RAW),
                "{}: owner {} is NO_RAW",
                e.name,
                o.name
            );
            assert!(
                owner.slot().is_some(),
                "{}: owner {} has no slot",
                e.name,
                o.name
            );
            assert!(width > 0 && lsb as u32 + width as u32 <= 64, "{}", e.name);
        }
    }
}

#[test]
fn flags_follow_the_state() {
    for e in entries() {
        let no_raw = matches!(e.state, State::Volatile | State::Func(_) | State::Op(_));
        assert_eq!(e.is(Flags::NO_RAW), no_raw, "{}: NO_RAW", e.name);
        let konst = matches!(e.state, State::Const(_)) || e.is(Flags::ID);
        assert_eq!(e.is(Flags::CONST), konst, "{}: CONST", e.name);
        if matches!(e.state, State::Op(_)) {
            assert!(!e.access.readable(), "{}: readable operation", e.name);
            assert!(e.access.writable(), "{}: unusable operation", e.name);
        }
        if e.a64.is_some() && e.a32.is_some() {
            assert!(e.is(Flags::EL2_VIEW), "{}: two encodings", e.name);
        }
        // What EL0 may do, EL1 may do.
        assert!(
            !e.access.can_read(true) || e.access.can_read(false),
            "{}",
            e.name
        );
        assert!(
            !e.access.can_write(true) || e.access.can_write(false),
            "{}",
            e.name
        );
    }
}

// ---------------------------------------------------------------------------------
// Raw accessors, reset.

#[test]
fn every_non_no_raw_entry_has_working_raw_read_and_write() {
    let mut c = ctx_all();
    for &r in Reg::ALL.iter() {
        let e = r.entry();
        if e.is(Flags::NO_RAW) {
            assert_eq!(c.raw_read(r), Err(RawError::NoRaw), "{}", e.name);
            assert_eq!(c.raw_write(r, 0), Err(RawError::NoRaw), "{}", e.name);
            continue;
        }
        let v = c
            .raw_read(r)
            .unwrap_or_else(|err| panic!("{}: raw read {err:?}", e.name));
        c.raw_write(r, v)
            .unwrap_or_else(|err| panic!("{}: raw write {err:?}", e.name));
        assert_eq!(c.raw_read(r), Ok(v), "{}", e.name);
        if e.is(Flags::CONST) || owner_of(r).is_some_and(|(o, ..)| o.entry().is(Flags::CONST)) {
            // A constant accepts only its value.
            assert!(
                matches!(c.raw_write(r, v ^ 1), Err(RawError::ConstMismatch { .. })),
                "{}: constant accepted another value",
                e.name
            );
            assert_eq!(c.raw_read(r), Ok(v), "{}", e.name);
        } else {
            // Stored state takes any value of its width (but PMCR's P and C, which
            // are actions: see `raw_state_bits`).
            let p = PATTERN & mask(e.width()) & raw_state_bits(r.owner());
            c.raw_write(r, PATTERN & mask(e.width())).unwrap();
            assert_eq!(c.raw_read(r), Ok(p), "{}: raw write then read", e.name);
            c.raw_write(r, v).unwrap();
        }
    }
}

#[test]
fn every_reset_value_round_trips_through_the_raw_accessors() {
    let mut c = ctx_all();
    for &r in Reg::ALL.iter() {
        let e = r.entry();
        if e.is(Flags::NO_RAW) {
            continue;
        }
        let v = c.raw_read(r).unwrap();
        match e.state {
            State::Own if !e.is(Flags::CONST) => assert_eq!(v, e.reset, "{}", e.name),
            State::Const(k) => assert_eq!(v, k, "{}", e.name),
            State::Alias { owner, lsb, width } => {
                let o = owner.entry();
                let own = if o.is(Flags::CONST) {
                    c.raw_read(owner).unwrap()
                } else {
                    o.reset
                };
                assert_eq!(v, (own >> lsb) & mask(width), "{}", e.name)
            }
            _ => {}
        }
        c.raw_write(r, v).unwrap();
        assert_eq!(c.raw_read(r), Ok(v), "{}", e.name);
    }
}

fn snapshot(c: &SysRegFile) -> Vec<(Reg, u64)> {
    Reg::ALL
        .iter()
        .filter_map(|&r| c.raw_read(r).ok().map(|v| (r, v)))
        .collect()
}

#[test]
fn reset_twice_gives_the_same_state_and_restores_a_dirty_context() {
    let fresh = ctx_all();
    let mut c = fresh.clone();
    for &r in Reg::ALL.iter() {
        if r.slot().is_some() && !r.entry().is(Flags::CONST) {
            c.raw_write(r, PATTERN ^ r as u64).unwrap();
        }
    }
    assert_ne!(snapshot(&c), snapshot(&fresh));
    c.reset();
    let once = snapshot(&c);
    c.reset();
    assert_eq!(snapshot(&c), once);
    assert_eq!(once, snapshot(&fresh));
}

#[test]
fn raw_write_through_every_alias_changes_the_right_bits_of_its_owner() {
    for &r in Reg::ALL.iter() {
        let Some((owner, lsb, width)) = owner_of(r) else {
            continue;
        };
        let name = r.name();
        let mut c = ctx_all();
        if owner.entry().is(Flags::CONST) {
            let own = c.raw_read(owner).unwrap();
            assert_eq!(c.raw_read(r), Ok((own >> lsb) & mask(width)), "{name}");
            continue;
        }
        let before = 0x5555_5555_5555_5555u64 & raw_state_bits(owner);
        c.raw_write(owner, before).unwrap();
        let p = PATTERN & mask(width) & (raw_state_bits(owner) >> lsb);
        c.raw_write(r, PATTERN & mask(width)).unwrap();
        let after = c.raw_read(owner).unwrap();
        let m = mask(width) << lsb;
        assert_eq!((after & m) >> lsb, p, "{name}: bits written");
        assert_eq!(
            after & !m,
            before & !m,
            "{name}: other bits of {}",
            owner.name()
        );
        assert_eq!(c.raw_read(r), Ok(p), "{name}");
        // The inverse of the owner's bits: the owner must change.
        c.raw_write(owner, before).unwrap();
        let inv = !(before >> lsb) & mask(width) & (raw_state_bits(owner) >> lsb);
        c.raw_write(r, inv).unwrap();
        let after = c.raw_read(owner).unwrap();
        assert_ne!(after, before, "{name}: owner unchanged");
        assert_eq!((after & m) >> lsb, inv, "{name}: inverse bits");
    }
}

#[test]
fn aarch32_views_map_the_documented_bits() {
    let expect: &[(Reg, Reg, u8, u8)] = &[
        (Reg::SCTLR, Reg::SCTLR_EL1, 0, 32),
        (Reg::TTBR0, Reg::TTBR0_EL1, 0, 32),
        (Reg::TTBR1, Reg::TTBR1_EL1, 0, 32),
        (Reg::TTBR0_64, Reg::TTBR0_EL1, 0, 64),
        (Reg::TTBR1_64, Reg::TTBR1_EL1, 0, 64),
        (Reg::TTBCR, Reg::TCR_EL1, 0, 32),
        (Reg::TTBCR2, Reg::TCR_EL1, 32, 32),
        (Reg::DFSR, Reg::ESR_EL1, 0, 32),
        (Reg::DFAR, Reg::FAR_EL1, 0, 32),
        (Reg::IFAR, Reg::FAR_EL1, 32, 32),
        (Reg::PRRR, Reg::MAIR_EL1, 0, 32),
        (Reg::NMRR, Reg::MAIR_EL1, 32, 32),
        (Reg::PAR, Reg::PAR_EL1, 0, 32),
        (Reg::PAR_64, Reg::PAR_EL1, 0, 64),
        (Reg::CONTEXTIDR, Reg::CONTEXTIDR_EL1, 0, 32),
        (Reg::TPIDRURW, Reg::TPIDR_EL0, 0, 32),
        (Reg::TPIDRURO, Reg::TPIDRRO_EL0, 0, 32),
        (Reg::TPIDRPRW, Reg::TPIDR_EL1, 0, 32),
        (Reg::VBAR, Reg::VBAR_EL1, 0, 32),
        (Reg::DBGBXVR3, Reg::DBGBVR3_EL1, 32, 32),
    ];
    for &(a, o, lsb, width) in expect {
        assert_eq!(owner_of(a), Some((o, lsb, width)), "{}", a.name());
    }
    // Own-state AArch32 registers are not aliases.
    for r in [
        Reg::DACR32_EL2,
        Reg::IFSR32_EL2,
        Reg::FPEXC32_EL2,
        Reg::DBGVCR32_EL2,
    ] {
        assert!(!r.entry().is(Flags::ALIAS), "{}", r.name());
        assert!(r.slot().is_some(), "{}", r.name());
    }
    assert_eq!(lookup_a32(Cp::new32(15, 0, 3, 0, 0)), Some(Reg::DACR32_EL2));
    assert_eq!(lookup_a32(Cp::new32(15, 0, 5, 0, 1)), Some(Reg::IFSR32_EL2));
}

// ---------------------------------------------------------------------------------
// Indexes and lists.

#[test]
fn kvm_indexes() {
    assert_eq!(Reg::SCTLR_EL1.entry().kvm_index(), 0x6030_0000_0013_c080);
    assert_eq!(Reg::SCTLR.entry().kvm_index(), 0x4020_0000_000f_0800);
    assert_eq!(Reg::TTBR1_64.entry().kvm_index(), 0x4030_0000_000f_0108);
    // DACR32_EL2 is indexed by its AArch64 (EL2) name, as KVM lists it.
    assert_eq!(
        Reg::DACR32_EL2.entry().kvm_index(),
        0x6030_0000_0013_0000 | (3 << 14) | (4 << 11) | (3 << 7)
    );
    let kvm: Vec<u64> = KVM_ORDER.iter().map(|r| r.kvm_index()).collect();
    assert!(kvm.windows(2).all(|w| w[0] < w[1]));
    assert!(KVM_ORDER
        .iter()
        .all(|r| r.kvm_index() == r.entry().kvm_index()));
}

#[test]
fn saved_list_is_sorted_and_holds_only_state() {
    let all: Vec<_> = saved_list(Features::ALL).collect();
    assert!(all.windows(2).all(|w| w[0].0 < w[1].0), "not sorted");
    for &(i, r) in &all {
        let e = r.entry();
        assert!(!e.is(Flags::ALIAS) && !e.is(Flags::NO_RAW), "{}", e.name);
        assert_eq!(i, e.kvm_index(), "{}", e.name);
    }
    // Everything that is neither ALIAS nor NO_RAW is in the full list.
    let n = entries()
        .filter(|e| !e.is(Flags::ALIAS) && !e.is(Flags::NO_RAW))
        .count();
    assert_eq!(all.len(), n);
    let names: BTreeSet<_> = all.iter().map(|(_, r)| r.name()).collect();
    for want in [
        "SCTLR_EL1",
        "TCR_EL1",
        "MIDR_EL1",
        "ID_AA64PFR0_EL1",
        "DBGBVR15_EL1",
        "DACR32_EL2",
    ] {
        assert!(names.contains(want), "{want} missing");
    }
    for absent in ["SCTLR", "TLBI_VMALLE1IS", "CNTVCT_EL0", "CCSIDR_EL1"] {
        assert!(!names.contains(absent), "{absent} listed");
    }
    // Features filter optional registers.
    let f = Features {
        aarch32_el1: false,
        pmu: false,
        brps: 6,
        wrps: 4,
        ..Features::ALL
    };
    let some: Vec<_> = saved_list(f).map(|(_, r)| r).collect();
    assert!(some.contains(&Reg::DBGBVR5_EL1) && !some.contains(&Reg::DBGBVR6_EL1));
    assert!(some.contains(&Reg::DBGWCR3_EL1) && !some.contains(&Reg::DBGWCR4_EL1));
    assert!(!some.contains(&Reg::DACR32_EL2) && !some.contains(&Reg::PMCR_EL0));
}

/// Issue 13: the import rules for the PMU and the EL1 physical timer. State
/// (counters, their types, the enables, CNTP_CTL/CVAL) imports; an AArch32 view or
/// a CLR register imports by writing through to its owner; operations (PMSWINC,
/// the PMXEV* windows, CNTP_TVAL) are NO_RAW and refused; the saved list holds
/// owners only, each present exactly when the VM has a PMU with that counter.
#[test]
fn import_rules_for_the_pmu_and_the_physical_timer() {
    let mut c = ctx_all();
    let idx = |r: Reg| r.entry().kvm_index();
    // CNTP: CVAL and CTL are state (ISTATUS, bit 2, is the hardware's: the wmask
    // keeps it out of guest writes, a raw import keeps what it is given).
    c.import(idx(Reg::CNTP_CVAL_EL0), 0x1234_5678_9abc).unwrap();
    c.import(idx(Reg::CNTP_CTL_EL0), 0b001).unwrap();
    assert_eq!(c.raw_read(Reg::CNTP_CVAL_EL0), Ok(0x1234_5678_9abc));
    // The AArch32 views: CNTP_CVAL (MCRR, 64 bits) and CNTP_CTL write the owners.
    c.import(idx(Reg::CNTP_CVAL), 0x42).unwrap();
    assert_eq!(c.raw_read(Reg::CNTP_CVAL_EL0), Ok(0x42));
    c.import(idx(Reg::CNTP_CTL), 0b011).unwrap();
    assert_eq!(c.raw_read(Reg::CNTP_CTL_EL0), Ok(0b011));
    for op in [Reg::CNTP_TVAL_EL0, Reg::CNTP_TVAL, Reg::CNTPCT] {
        assert_eq!(
            c.import(idx(op), 0),
            Err(ImportError::NotState(op)),
            "{}",
            op.name()
        );
    }
    // PMU state.
    c.import(idx(Reg::PMCCNTR_EL0), 0xffff_0000_1234).unwrap();
    c.import(idx(Reg::PMEVCNTR5_EL0), 77).unwrap();
    c.import(idx(Reg::PMEVTYPER5_EL0), 0x08).unwrap();
    c.import(idx(Reg::PMCNTENSET_EL0), (1 << 31) | 0b10_0001)
        .unwrap();
    c.import(idx(Reg::PMOVSSET_EL0), 0b1).unwrap();
    // PMCR: P and C (bits 1, 2) are actions, never state: an import carrying them
    // does not read back.
    c.import(idx(Reg::PMCR_EL0), 0x41).unwrap();
    assert!(matches!(
        c.import(idx(Reg::PMCR_EL0), 0x47),
        Err(ImportError::Mismatch {
            wrote: 0x47,
            read: 0x41,
            ..
        })
    ));
    // Aliases write through: the CLR registers and the AArch32 views are views of
    // the SET registers' and the AArch64 counters' state.
    c.import(idx(Reg::PMOVSCLR_EL0), 0b110).unwrap();
    assert_eq!(c.raw_read(Reg::PMOVSSET_EL0), Ok(0b110));
    c.import(idx(Reg::PMCNTENCLR_EL0), 0b1).unwrap();
    assert_eq!(c.raw_read(Reg::PMCNTENSET_EL0), Ok(0b1));
    c.import(idx(Reg::PMEVCNTR3), 0x5555).unwrap();
    assert_eq!(c.raw_read(Reg::PMEVCNTR3_EL0), Ok(0x5555));
    c.import(idx(Reg::PMCCNTR_64), 0x1_0000_0002).unwrap();
    assert_eq!(c.raw_read(Reg::PMCCNTR_EL0), Ok(0x1_0000_0002));
    c.import(idx(Reg::PMCCNTR), 7).unwrap();
    assert_eq!(c.raw_read(Reg::PMCCNTR_EL0), Ok(0x1_0000_0007));
    c.import(idx(Reg::PMINTENSET), 0b11).unwrap();
    assert_eq!(c.raw_read(Reg::PMINTENSET_EL1), Ok(0b11));
    // A 32-bit view refuses what does not fit (read back differs).
    assert!(matches!(
        c.import(idx(Reg::PMEVTYPER3), 0x1_0000_0000),
        Err(ImportError::Mismatch { .. })
    ));
    // Operations are not state.
    for op in [
        Reg::PMSWINC_EL0,
        Reg::PMSWINC,
        Reg::PMXEVCNTR_EL0,
        Reg::PMXEVTYPER_EL0,
        Reg::PMXEVCNTR,
        Reg::PMXEVTYPER,
    ] {
        assert!(op.entry().is(Flags::NO_RAW), "{}", op.name());
        assert_eq!(
            c.import(idx(op), 1),
            Err(ImportError::NotState(op)),
            "{}",
            op.name()
        );
    }
    // The saved list: owners only; with a PMU of 2 counters, counters 0-1 and
    // not 2-7; without a PMU, none of it.
    let names =
        |f: Features| -> BTreeSet<&'static str> { saved_list(f).map(|(_, r)| r.name()).collect() };
    let two = names(Features {
        pmu_counters: 2,
        ..Features::ALL
    });
    for want in [
        "PMCR_EL0",
        "PMCNTENSET_EL0",
        "PMINTENSET_EL1",
        "PMOVSSET_EL0",
        "PMSELR_EL0",
        "PMUSERENR_EL0",
        "PMCCNTR_EL0",
        "PMCCFILTR_EL0",
        "PMEVCNTR0_EL0",
        "PMEVTYPER1_EL0",
        "CNTP_CTL_EL0",
        "CNTP_CVAL_EL0",
    ] {
        assert!(two.contains(want), "{want} not saved");
    }
    for gone in [
        "PMEVCNTR2_EL0",
        "PMEVTYPER7_EL0",
        "PMCNTENCLR_EL0",
        "PMOVSCLR_EL0",
        "PMINTENCLR_EL1",
        "PMSWINC_EL0",
        "PMXEVCNTR_EL0",
        "PMCR",
        "PMEVCNTR0",
        "CNTP_TVAL_EL0",
        "CNTP_CTL",
    ] {
        assert!(!two.contains(gone), "{gone} saved");
    }
    let none = names(Features {
        pmu: false,
        pmu_counters: 0,
        ..Features::ALL
    });
    assert!(none.iter().all(|n| !n.starts_with("PM")), "{none:?}");
    assert!(none.contains("CNTP_CVAL_EL0"));
}

#[test]
fn import_writes_through_aliases_and_checks_every_index() {
    let mut c = ctx_all();
    // An alias's index writes its owner.
    let ifar = Reg::IFAR.entry().kvm_index();
    c.import(ifar, 0xdead_beef).unwrap();
    assert_eq!(c.raw_read(Reg::FAR_EL1), Ok(0xdead_beef_0000_0000));
    // Wider than the view: read back differs.
    assert!(matches!(
        c.import(ifar, 0x1_0000_0000),
        Err(ImportError::Mismatch { .. })
    ));
    assert_eq!(
        c.import(Reg::TLBI_VMALLE1.entry().kvm_index(), 0),
        Err(ImportError::NotState(Reg::TLBI_VMALLE1))
    );
    assert_eq!(
        c.import(0x6030_0000_0013_ffff, 0),
        Err(ImportError::UnknownIndex(0x6030_0000_0013_ffff))
    );
    let midr = c.raw_read(Reg::MIDR_EL1).unwrap();
    assert!(matches!(
        c.import(Reg::MIDR_EL1.entry().kvm_index(), midr + 1),
        Err(ImportError::Raw(
            Reg::MIDR_EL1,
            RawError::ConstMismatch { .. }
        ))
    ));
    // Export then import into a fresh context reproduces the state.
    c.raw_write(Reg::TTBR0_EL1, 0x1234_5000).unwrap();
    let list: Vec<_> = c.export().collect();
    let mut d = ctx_all();
    for &(i, v) in &list {
        d.import(i, v).unwrap();
    }
    assert_eq!(snapshot(&d), snapshot(&c));
}

// ---------------------------------------------------------------------------------
// World switch.

#[test]
fn el1_switch_set_is_the_hardware_backed_state() {
    for &r in EL1_SET
        .iter()
        .chain(&DEBUG_SET)
        .chain(&FP_SET)
        .chain(&PMU_SET)
        .chain(&MTE_SET)
    {
        let e = r.entry();
        assert!(e.is(Flags::HW), "{}", e.name);
        for f in [Flags::ALIAS, Flags::NO_RAW, Flags::CONST] {
            assert!(!e.is(f), "{}: {:?}", e.name, f);
        }
    }
    // Every hw-backed writable register is switched.
    for &r in Reg::ALL.iter() {
        let e = r.entry();
        if e.is(Flags::HW) && matches!(e.state, State::Own) && !e.is(Flags::CONST) {
            assert!(
                EL1_SET.contains(&r)
                    || DEBUG_SET.contains(&r)
                    || FP_SET.contains(&r)
                    || PMU_SET.contains(&r)
                    || MTE_SET.contains(&r),
                "{}",
                e.name
            );
        }
    }
    let names: BTreeSet<_> = EL1_SET.iter().chain(&DEBUG_SET).map(|r| r.name()).collect();
    for want in [
        "SCTLR_EL1",
        "TTBR0_EL1",
        "TTBR1_EL1",
        "TCR_EL1",
        "MAIR_EL1",
        "AMAIR_EL1",
        "ESR_EL1",
        "FAR_EL1",
        "AFSR0_EL1",
        "AFSR1_EL1",
        "VBAR_EL1",
        "CONTEXTIDR_EL1",
        "TPIDR_EL0",
        "TPIDR_EL1",
        "TPIDRRO_EL0",
        "SP_EL0",
        "SP_EL1",
        "ELR_EL1",
        "SPSR_EL1",
        "PAR_EL1",
        "CNTKCTL_EL1",
        "CSSELR_EL1",
        "CPACR_EL1",
        "MDSCR_EL1",
        "CNTV_CTL_EL0",
        "CNTV_CVAL_EL0",
        "DACR32_EL2",
        "IFSR32_EL2",
        "SPSR_abt",
        "DBGBCR0_EL1",
    ] {
        assert!(names.contains(want), "{want} not switched");
    }
    assert!(
        !names.contains("ACTLR_EL1"),
        "ACTLR_EL1 is emulated, not switched"
    );
    assert_eq!(FP_SET, [Reg::FPEXC32_EL2]);
    // The lazily switched debug group: exactly MDCCINT and the 16 breakpoint and
    // 16 watchpoint pairs (Arm ARM D24.3); MDSCR_EL1, which says whether they
    // matter, is switched every time.
    assert_eq!(DEBUG_SET.len(), 1 + 4 * 16);
    assert!(EL1_SET.contains(&Reg::MDSCR_EL1));
    for r in DEBUG_SET {
        let n = r.name();
        assert!(
            n == "MDCCINT_EL1" || n.starts_with("DBGB") || n.starts_with("DBGW"),
            "{n}"
        );
        assert!(!EL1_SET.contains(&r), "{n} in two groups");
    }
}

#[test]
fn save_and_restore_move_exactly_the_present_registers() {
    let mut c = ctx_all();
    c.set_features(Features {
        aarch32_el1: false,
        brps: 2,
        wrps: 2,
        ..Features::ALL
    });
    let mut hw = FakeHw::new();
    for (i, &r) in EL1_SET.iter().chain(&DEBUG_SET).enumerate() {
        hw.values[r as usize] = 0x1000 + i as u64;
    }
    save_el1_with(&mut c, &mut hw);
    save_debug_with(&mut c, &mut hw);
    assert_eq!(c.raw_read(Reg::SCTLR_EL1), Ok(0x1000));
    assert_eq!(
        c.raw_read(Reg::DACR32_EL2),
        Ok(0),
        "absent AArch32 state read"
    );
    assert_eq!(
        c.raw_read(Reg::DBGBVR2_EL1),
        Ok(0),
        "absent breakpoint read"
    );
    let present = EL1_SET
        .iter()
        .chain(&DEBUG_SET)
        .filter(|&&r| c.present(r))
        .count();
    assert_eq!(hw.reads, present);
    let mut hw2 = FakeHw::new();
    restore_el1_with(&c, &mut hw2);
    restore_debug_with(&c, &mut hw2);
    assert_eq!(hw2.writes, present);
    for &r in EL1_SET.iter().chain(&DEBUG_SET) {
        let want = if c.present(r) {
            hw.values[r as usize]
        } else {
            0
        };
        assert_eq!(hw2.values[r as usize], want, "{}", r.name());
    }
}

// ---------------------------------------------------------------------------------
// AArch64 emulation.

fn msr(op0: u64, op1: u64, crn: u64, crm: u64, op2: u64, rt: u64) -> SysRegIss {
    SysRegIss((op0 << 20) | (op2 << 17) | (op1 << 14) | (crn << 10) | (rt << 5) | (crm << 1))
}

fn mrs(op0: u64, op1: u64, crn: u64, crm: u64, op2: u64, rt: u64) -> SysRegIss {
    SysRegIss(msr(op0, op1, crn, crm, op2, rt).0 | 1)
}

fn undef_reason(e: Emulation) -> Option<UndefReason> {
    match e {
        Emulation::Undef(u) => Some(u.reason),
        _ => None,
    }
}

#[test]
fn msr_and_mrs_update_context_and_hardware() {
    let mut c = ctx_all();
    let mut hw = FakeHw::new();
    let mut x = [0u64; 31];
    x[3] = 0x30d5_183d;
    let r = emulate_msr_mrs(&mut c, &mut hw, msr(3, 0, 1, 0, 0, 3), &mut x, false);
    assert_eq!(
        r,
        Emulation::Done {
            reg: Reg::SCTLR_EL1,
            write: true
        }
    );
    assert_eq!(hw.values[Reg::SCTLR_EL1 as usize], 0x30d5_183d);
    assert_eq!(c.raw_read(Reg::SCTLR_EL1), Ok(0x30d5_183d));
    let r = emulate_msr_mrs(&mut c, &mut hw, mrs(3, 0, 1, 0, 0, 7), &mut x, false);
    assert_eq!(
        r,
        Emulation::Done {
            reg: Reg::SCTLR_EL1,
            write: false
        }
    );
    assert_eq!(x[7], 0x30d5_183d);
    // The live value is the hardware's (the CPU changed ESR_EL1 on an exception).
    hw.values[Reg::ESR_EL1 as usize] = 0x9600_0045;
    emulate_msr_mrs(&mut c, &mut hw, mrs(3, 0, 5, 2, 0, 1), &mut x, false);
    assert_eq!(x[1], 0x9600_0045);
    assert_eq!(c.raw_read(Reg::ESR_EL1), Ok(0x9600_0045));
}

#[test]
fn rt_31_is_xzr() {
    let mut c = ctx_all();
    let mut hw = FakeHw::new();
    let mut x = [0xffu64; 31];
    c.raw_write(Reg::TTBR0_EL1, 0x1234).unwrap();
    hw.values[Reg::TTBR0_EL1 as usize] = 0x1234;
    let r = emulate_msr_mrs(&mut c, &mut hw, msr(3, 0, 2, 0, 0, 31), &mut x, false);
    assert_eq!(
        r,
        Emulation::Done {
            reg: Reg::TTBR0_EL1,
            write: true
        }
    );
    assert_eq!(c.raw_read(Reg::TTBR0_EL1), Ok(0), "XZR writes zero");
    let before = x;
    emulate_msr_mrs(&mut c, &mut hw, mrs(3, 0, 2, 0, 0, 31), &mut x, false);
    assert_eq!(x, before, "a read into XZR is discarded");
}

#[test]
fn undef_cases() {
    let mut c = ctx_all();
    c.set_features(Features {
        brps: 6,
        ..Features::ALL
    });
    let mut hw = FakeHw::new();
    let mut x = [0u64; 31];
    let mut run = |iss, el0| emulate_msr_mrs(&mut c, &mut hw, iss, &mut x, el0);
    // Read-only written.
    assert_eq!(
        undef_reason(run(msr(3, 0, 0, 0, 0, 1), false)),
        Some(UndefReason::ReadOnly)
    );
    assert_eq!(
        undef_reason(run(msr(3, 0, 0, 4, 0, 1), false)),
        Some(UndefReason::ReadOnly)
    );
    // Write-only read.
    assert_eq!(
        undef_reason(run(mrs(2, 0, 1, 0, 4, 1), false)),
        Some(UndefReason::WriteOnly)
    );
    assert_eq!(
        undef_reason(run(mrs(1, 0, 8, 7, 0, 1), false)),
        Some(UndefReason::WriteOnly)
    );
    // Implementation defined, EL2, EL3 registers: unknown.
    assert_eq!(
        undef_reason(run(mrs(3, 0, 15, 0, 0, 1), false)),
        Some(UndefReason::Unknown)
    );
    assert_eq!(
        undef_reason(run(mrs(3, 4, 1, 1, 0, 1), false)),
        Some(UndefReason::Unknown)
    );
    assert_eq!(
        undef_reason(run(mrs(3, 6, 1, 0, 0, 1), false)),
        Some(UndefReason::Unknown)
    );
    // The EL2 name of EL1 state.
    assert_eq!(
        undef_reason(run(mrs(3, 4, 4, 1, 0, 1), false)),
        Some(UndefReason::El2Register)
    );
    assert_eq!(
        undef_reason(run(msr(3, 4, 3, 0, 0, 1), false)),
        Some(UndefReason::El2Register)
    );
    // EL0 rights.
    assert_eq!(
        undef_reason(run(mrs(3, 0, 1, 0, 0, 1), true)),
        Some(UndefReason::Privilege)
    );
    assert_eq!(
        undef_reason(run(msr(3, 3, 13, 0, 3, 1), true)),
        Some(UndefReason::Privilege)
    );
    assert_eq!(
        run(msr(3, 3, 13, 0, 2, 1), true),
        Emulation::Done {
            reg: Reg::TPIDR_EL0,
            write: true
        }
    );
    assert_eq!(
        undef_reason(run(msr(1, 0, 8, 7, 0, 1), true)),
        Some(UndefReason::Privilege)
    );
    // A breakpoint above the count.
    assert_eq!(
        undef_reason(run(mrs(2, 0, 0, 6, 4, 1), false)),
        Some(UndefReason::NotPresent)
    );
    assert!(undef_reason(run(mrs(2, 0, 0, 5, 4, 1), false)).is_none());
}

#[test]
fn undef_leaves_registers_and_state_alone() {
    let mut c = ctx_all();
    let mut hw = FakeHw::new();
    let mut x = [7u64; 31];
    let before = snapshot(&c);
    let r = emulate_msr_mrs(&mut c, &mut hw, mrs(3, 0, 15, 2, 0, 4), &mut x, false);
    assert!(matches!(
        r,
        Emulation::Undef(Undef {
            encoding: Some(Encoding::A64(_)),
            is_read: true,
            ..
        })
    ));
    assert_eq!(x, [7; 31]);
    let r = emulate_msr_mrs(&mut c, &mut hw, msr(3, 0, 0, 0, 0, 4), &mut x, false);
    assert!(matches!(r, Emulation::Undef(_)));
    assert_eq!(snapshot(&c), before);
    assert_eq!(hw.writes, 0);
}

#[test]
fn id_registers_read_the_sanitised_values() {
    let mut h = HostIds::zeroed();
    h.set(Reg::ID_AA64PFR0_EL1, 0x1111_2222);
    h.set(Reg::MIDR_EL1, 0x410f_d083);
    let g = GuestIds::sanitise(&h, &IdPolicy::default());
    let mut c = SysRegFile::new(&g, 5);
    let mut hw = FakeHw::new();
    let mut x = [0u64; 31];
    emulate_msr_mrs(&mut c, &mut hw, mrs(3, 0, 0, 4, 0, 2), &mut x, false);
    assert_eq!(x[2], g.get(Reg::ID_AA64PFR0_EL1));
    assert_eq!(x[2] & 0xff00, 0, "EL2/EL3 hidden");
    emulate_msr_mrs(&mut c, &mut hw, mrs(3, 0, 0, 0, 5, 2), &mut x, false);
    assert_eq!(x[2], 0x8000_0005, "MPIDR of vCPU 5");
    emulate_msr_mrs(&mut c, &mut hw, mrs(3, 0, 0, 3, 3, 2), &mut x, false);
    assert_eq!(x[2], 0, "reserved ID encoding is RAZ");
    assert_eq!(hw.reads, 0, "ID values come from the context");
}

#[test]
fn operations_are_returned_with_their_operand() {
    let mut c = ctx_all();
    let mut hw = FakeHw::new();
    let mut x = [0u64; 31];
    x[9] = 0x0040_0002;
    let r = emulate_msr_mrs(&mut c, &mut hw, msr(1, 0, 7, 14, 2, 9), &mut x, false);
    assert_eq!(
        r,
        Emulation::Operation(Operation {
            reg: Reg::DC_CISW,
            kind: OpKind::DcSetWay,
            operand: 0x0040_0002
        })
    );
    // ICC_SGI1R_EL1 (trapped with HCR_EL2.IMO): the runtime sends the SGI.
    x[9] = 0x0001_0000_0300_0003;
    let r = emulate_msr_mrs(&mut c, &mut hw, msr(3, 0, 12, 11, 5, 9), &mut x, false);
    assert_eq!(
        r,
        Emulation::Operation(Operation {
            reg: Reg::ICC_SGI1R_EL1,
            kind: OpKind::Sgi1,
            operand: 0x0001_0000_0300_0003
        })
    );
    // AArch32: MCRR p15, 0, r1, r2, c12 carries the same 64-bit value.
    x[1] = 0x0300_0003;
    x[2] = 0x0001_0000;
    let r = emulate_cp(
        &mut c,
        &mut hw,
        mcrr(0x04, 0, 12, 1, 2, false, AL),
        &mut x,
        0,
        false,
    );
    assert_eq!(
        r,
        Emulation::Operation(Operation {
            reg: Reg::ICC_SGI1R,
            kind: OpKind::Sgi1,
            operand: 0x0001_0000_0300_0003
        })
    );
    // Without the GICv3 system-register interface (GICv2 hosts) it UNDEFs.
    c.set_features(Features {
        gicv3: false,
        ..Features::ALL
    });
    let r = emulate_msr_mrs(&mut c, &mut hw, msr(3, 0, 12, 11, 5, 9), &mut x, false);
    assert_eq!(undef_reason(r), Some(UndefReason::NotPresent));
    x[9] = 0x0040_0002;
    let r = emulate_msr_mrs(&mut c, &mut hw, msr(1, 3, 7, 10, 1, 9), &mut x, true);
    assert!(
        matches!(
            r,
            Emulation::Operation(Operation {
                kind: OpKind::DcVa,
                ..
            })
        ),
        "DC CVAC at EL0"
    );
}

#[test]
fn write_semantics_masks_set_clear_and_views() {
    let mut c = ctx_all();
    let mut hw = FakeHw::new();
    let mut x = [0u64; 31];
    // CNTV_CTL: ISTATUS (bit 2) is read-only.
    hw.values[Reg::CNTV_CTL_EL0 as usize] = 0b100;
    x[1] = 0b011;
    emulate_msr_mrs(&mut c, &mut hw, msr(3, 3, 14, 3, 1, 1), &mut x, false);
    assert_eq!(hw.values[Reg::CNTV_CTL_EL0 as usize], 0b111);
    x[1] = 0;
    emulate_msr_mrs(&mut c, &mut hw, msr(3, 3, 14, 3, 1, 1), &mut x, false);
    assert_eq!(hw.values[Reg::CNTV_CTL_EL0 as usize], 0b100);
    // PMCNTENSET/CLR: set and clear the same state.
    x[1] = 0b1010;
    emulate_msr_mrs(&mut c, &mut hw, msr(3, 3, 9, 12, 1, 1), &mut x, false);
    x[1] = 0b0001;
    emulate_msr_mrs(&mut c, &mut hw, msr(3, 3, 9, 12, 1, 1), &mut x, false);
    x[1] = 0b1000;
    emulate_msr_mrs(&mut c, &mut hw, msr(3, 3, 9, 12, 2, 1), &mut x, false);
    assert_eq!(c.raw_read(Reg::PMCNTENSET_EL0), Ok(0b0011));
    emulate_msr_mrs(&mut c, &mut hw, mrs(3, 3, 9, 12, 2, 4), &mut x, false);
    assert_eq!(x[4], 0b0011, "PMCNTENCLR reads the enables");
    // OS lock: OSLAR_EL1.OSLK (bit 0) shows in OSLSR_EL1 bit 1.
    x[1] = 1;
    emulate_msr_mrs(&mut c, &mut hw, msr(2, 0, 1, 0, 4, 1), &mut x, false);
    emulate_msr_mrs(&mut c, &mut hw, mrs(2, 0, 1, 1, 4, 2), &mut x, false);
    assert_eq!(x[2], 0b1010);
    // Claim tags: set through DBGCLAIMSET, clear through DBGCLAIMCLR.
    x[1] = 0x1ff;
    emulate_msr_mrs(&mut c, &mut hw, msr(2, 0, 7, 8, 6, 1), &mut x, false);
    x[1] = 0x0f;
    emulate_msr_mrs(&mut c, &mut hw, msr(2, 0, 7, 9, 6, 1), &mut x, false);
    emulate_msr_mrs(&mut c, &mut hw, mrs(2, 0, 7, 9, 6, 2), &mut x, false);
    assert_eq!(x[2], 0xf0);
    emulate_msr_mrs(&mut c, &mut hw, mrs(2, 0, 7, 8, 6, 2), &mut x, false);
    assert_eq!(x[2], 0xff, "DBGCLAIMSET reads the implemented tags");
    // ACTLR_EL1: writes ignored.
    x[1] = 0xffff;
    emulate_msr_mrs(&mut c, &mut hw, msr(3, 0, 1, 0, 1, 1), &mut x, false);
    assert_eq!(c.raw_read(Reg::ACTLR_EL1), Ok(0));
}

#[test]
fn timer_tval_is_computed_from_cval_and_the_counter() {
    let mut c = ctx_all();
    let mut hw = FakeHw::new();
    let mut x = [0u64; 31];
    hw.values[Reg::CNTVCT_EL0 as usize] = 1_000_000;
    x[1] = (-100i32) as u32 as u64;
    emulate_msr_mrs(&mut c, &mut hw, msr(3, 3, 14, 3, 0, 1), &mut x, false);
    assert_eq!(hw.values[Reg::CNTV_CVAL_EL0 as usize], 1_000_000 - 100);
    hw.values[Reg::CNTVCT_EL0 as usize] = 999_800;
    emulate_msr_mrs(&mut c, &mut hw, mrs(3, 3, 14, 3, 0, 2), &mut x, false);
    assert_eq!(x[2], 100);
}

#[test]
fn ccsidr_follows_csselr() {
    let mut h = HostIds::zeroed();
    h.ccsidr[0] = 0x700f_e01a;
    h.ccsidr[1] = 0x201f_e00a;
    let mut c = SysRegFile::new(&GuestIds::sanitise(&h, &IdPolicy::default()), 0);
    let mut hw = FakeHw::new();
    let mut x = [0u64; 31];
    x[1] = 1;
    emulate_msr_mrs(&mut c, &mut hw, msr(3, 2, 0, 0, 0, 1), &mut x, false);
    emulate_msr_mrs(&mut c, &mut hw, mrs(3, 1, 0, 0, 0, 2), &mut x, false);
    assert_eq!(x[2], 0x201f_e00a);
    // CCSIDR2 (FEAT_CCIDX) gives NumSets of the 64-bit format.
    c.set_features(Features::ALL);
    let mut h = HostIds::zeroed();
    h.ccsidr[2] = (0x1ff << 32) | (0xf << 3) | 2;
    let ids = GuestIds::sanitise(&h, &IdPolicy::default());
    let mut c = SysRegFile::new(&ids, 0);
    assert!(
        !c.present(Reg::CCSIDR2_EL1),
        "no CCIDX without the ID field"
    );
    c.set_features(Features::ALL);
    x[1] = 2;
    emulate_msr_mrs(&mut c, &mut hw, msr(3, 2, 0, 0, 0, 1), &mut x, false);
    emulate_msr_mrs(&mut c, &mut hw, mrs(3, 1, 0, 0, 2, 2), &mut x, false);
    assert_eq!(x[2], 0x1ff);
    // AArch32 CCSIDR: the low 32 bits.
    emulate_cp(
        &mut c,
        &mut hw,
        mcr(0x03, 1, 0, 0, 0, 3, true, AL),
        &mut x,
        0,
        false,
    );
    assert_eq!(x[3], (0xf << 3) | 2);
}

/// Counts go to the hardware handle's counters (the fake's own), so this test sees
/// exactly its own accesses whatever runs in parallel.
#[test]
fn trap_counters_count_reads_and_writes() {
    let mut c = ctx_all();
    let mut hw = FakeHw::new();
    let mut x = [0u64; 31];
    for _ in 0..3 {
        emulate_msr_mrs(&mut c, &mut hw, msr(3, 0, 13, 0, 1, 1), &mut x, false);
    }
    emulate_msr_mrs(&mut c, &mut hw, mrs(3, 0, 13, 0, 1, 1), &mut x, false);
    // An UNDEF (EL0) does not count.
    emulate_msr_mrs(&mut c, &mut hw, mrs(3, 0, 13, 0, 1, 1), &mut x, true);
    // The AArch32 view counts as itself: MRC p15, 0, r1, c13, c0, 1 (CONTEXTIDR).
    emulate_cp(
        &mut c,
        &mut hw,
        mcr(0x03, 0, 13, 0, 1, 1, true, AL),
        &mut x,
        0,
        false,
    );
    let t = hw.counters.get(Reg::CONTEXTIDR_EL1);
    assert_eq!((t.reads, t.writes), (1, 3));
    assert_eq!(t.name, "CONTEXTIDR_EL1");
    assert_eq!(t.encoding, Encoding::A64(Sys64::new(3, 0, 13, 0, 1)));
    let listed: Vec<_> = hw
        .counters
        .iter()
        .map(|t| (t.reg, t.reads, t.writes))
        .collect();
    assert_eq!(
        listed,
        [(Reg::CONTEXTIDR_EL1, 1, 3), (Reg::CONTEXTIDR, 1, 0)],
        "only what was accessed, in table order"
    );
    hw.counters.reset();
    assert_eq!(hw.counters.iter().count(), 0);
}

/// Rights from `tests/arm-arm-rights.txt`, the Arm ARM's list written apart from the
/// table: encoding -> (name, EL1 read, EL1 write, EL0 read, EL0 write).
fn arm_arm_rights() -> BTreeMap<Sys64, (&'static str, [bool; 4])> {
    let mut out = BTreeMap::new();
    for (n, line) in include_str!("../../tests/arm-arm-rights.txt")
        .lines()
        .enumerate()
    {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let w: Vec<&str> = line.split_whitespace().collect();
        assert!(w.len() >= 8, "arm-arm-rights.txt:{}: '{line}'", n + 1);
        let f: Vec<u8> = w[1..6]
            .iter()
            .map(|x| {
                x.parse()
                    .unwrap_or_else(|_| panic!("arm-arm-rights.txt:{}", n + 1))
            })
            .collect();
        let enc = Sys64::new(f[0], f[1], f[2], f[3], f[4]);
        let rw = |s: &str| match s {
            "rw" => (true, true),
            "r" => (true, false),
            "w" => (false, true),
            "-" => (false, false),
            _ => panic!("arm-arm-rights.txt:{}: '{s}' is not rw, r, w or -", n + 1),
        };
        let ((r1, w1), (r0, w0)) = (rw(w[6]), rw(w[7]));
        assert!(
            out.insert(enc, (w[0], [r1, w1, r0, w0])).is_none(),
            "arm-arm-rights.txt:{}: {enc} twice",
            n + 1
        );
    }
    out
}

/// The table's AArch64 side is the Arm ARM list: the same registers by name and
/// encoding, the same rights. EL2 views are the only AArch64 entries outside it,
/// and they have EL2 encodings.
#[test]
fn table_rights_agree_with_the_arm_arm_list() {
    let list = arm_arm_rights();
    for (&enc, &(name, [r1, w1, r0, w0])) in &list {
        let r = lookup_a64(enc).unwrap_or_else(|| panic!("{name} ({enc}): not in the table"));
        assert_eq!(r.name(), name, "{enc}");
        let a = r.entry().access;
        assert_eq!(
            [
                a.can_read(false),
                a.can_write(false),
                a.can_read(true),
                a.can_write(true)
            ],
            [r1, w1, r0, w0],
            "{name}: table rights [EL1 r, EL1 w, EL0 r, EL0 w] vs the Arm ARM"
        );
    }
    for e in entries() {
        let Some(enc) = e.a64 else { continue };
        if e.is(Flags::EL2_VIEW) {
            assert_eq!(
                enc.op1, 4,
                "{}: an EL2 view with a non-EL2 encoding",
                e.name
            );
        } else {
            assert!(
                list.contains_key(&enc),
                "{} ({enc}): missing from arm-arm-rights.txt",
                e.name
            );
        }
    }
}

/// Every AArch64 system-register and system-instruction encoding (op0 0 to 3, all
/// 65,536, both directions, EL0 and EL1) through the emulation: no panic, and UNDEF
/// exactly where the Arm ARM list says (an encoding it does not list must UNDEF).
#[test]
fn sweep_of_every_sysreg_encoding_never_panics_and_agrees_with_the_arm_arm() {
    let list = arm_arm_rights();
    let mut c = ctx_all();
    let mut hw = FakeHw::new();
    let mut x = [0u64; 31];
    for op0 in 0..4u64 {
        for rest in 0..(1u64 << 14) {
            let (op1, crn, crm, op2) = (
                (rest >> 11) & 7,
                (rest >> 7) & 15,
                (rest >> 3) & 15,
                rest & 7,
            );
            let enc = Sys64::new(op0 as u8, op1 as u8, crn as u8, crm as u8, op2 as u8);
            let rights = list.get(&enc).map_or([false; 4], |&(_, r)| r);
            for read in [true, false] {
                for el0 in [false, true] {
                    let iss = if read {
                        mrs(op0, op1, crn, crm, op2, 5)
                    } else {
                        msr(op0, op1, crn, crm, op2, 5)
                    };
                    let r = emulate_msr_mrs(&mut c, &mut hw, iss, &mut x, el0);
                    let allowed = rights[(el0 as usize) * 2 + (!read) as usize];
                    assert_eq!(
                        !matches!(r, Emulation::Undef(_)),
                        allowed,
                        "{enc} read={read} el0={el0}"
                    );
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------
// AArch32 emulation.

#[allow(clippy::too_many_arguments)]
fn mcr(
    ec: u64,
    opc1: u64,
    crn: u64,
    crm: u64,
    opc2: u64,
    rt: u64,
    read: bool,
    cond: Option<u8>,
) -> Esr {
    let cv = cond.map_or(0, |c| (1 << 24) | ((c as u64) << 20));
    Esr((ec << 26)
        | Esr::IL
        | cv
        | (opc2 << 17)
        | (opc1 << 14)
        | (crn << 10)
        | (rt << 5)
        | (crm << 1)
        | read as u64)
}

fn mcrr(ec: u64, opc1: u64, crm: u64, rt: u64, rt2: u64, read: bool, cond: Option<u8>) -> Esr {
    let cv = cond.map_or(0, |c| (1 << 24) | ((c as u64) << 20));
    Esr((ec << 26)
        | Esr::IL
        | cv
        | (opc1 << 16)
        | (rt2 << 10)
        | (rt << 5)
        | (crm << 1)
        | read as u64)
}

const AL: Option<u8> = Some(0xe);

#[test]
fn aarch32_mcr_mrc_reach_the_aarch64_state() {
    let mut c = ctx_all();
    let mut hw = FakeHw::new();
    let mut x = [0u64; 31];
    hw.values[Reg::TCR_EL1 as usize] = 0xaaaa_aaaa_0000_0000;
    x[2] = 0xffff_ffff_8000_3500; // upper half ignored
                                  // MCR p15, 0, r2, c2, c0, 2 (TTBCR)
    let r = emulate_cp(
        &mut c,
        &mut hw,
        mcr(0x03, 0, 2, 0, 2, 2, false, AL),
        &mut x,
        0,
        false,
    );
    assert_eq!(
        r,
        Emulation::Done {
            reg: Reg::TTBCR,
            write: true
        }
    );
    assert_eq!(hw.values[Reg::TCR_EL1 as usize], 0xaaaa_aaaa_8000_3500);
    assert_eq!(c.raw_read(Reg::TCR_EL1), Ok(0xaaaa_aaaa_8000_3500));
    // MRC p15, 0, r4, c2, c0, 3 (TTBCR2) reads the high half.
    emulate_cp(
        &mut c,
        &mut hw,
        mcr(0x03, 0, 2, 0, 3, 4, true, AL),
        &mut x,
        0,
        false,
    );
    assert_eq!(x[4], 0xaaaa_aaaa);
    // DACR is own state.
    x[1] = 0x5555_5555;
    emulate_cp(
        &mut c,
        &mut hw,
        mcr(0x03, 0, 3, 0, 0, 1, false, AL),
        &mut x,
        0,
        false,
    );
    assert_eq!(hw.values[Reg::DACR32_EL2 as usize], 0x5555_5555);
    // cp14: DBGBVR2 (p14,0,c0,c2,4) and DBGBXVR2 (p14,0,c1,c2,1).
    x[1] = 0x1000;
    x[3] = 0x2;
    emulate_cp(
        &mut c,
        &mut hw,
        mcr(0x05, 0, 0, 2, 4, 1, false, AL),
        &mut x,
        0,
        false,
    );
    emulate_cp(
        &mut c,
        &mut hw,
        mcr(0x05, 0, 1, 2, 1, 3, false, AL),
        &mut x,
        0,
        false,
    );
    assert_eq!(hw.values[Reg::DBGBVR2_EL1 as usize], 0x2_0000_1000);
}

#[test]
fn aarch32_mcrr_mrrc_use_both_registers() {
    let mut c = ctx_all();
    let mut hw = FakeHw::new();
    let mut x = [0u64; 31];
    x[4] = 0x8000_1000;
    x[5] = 0x00ab_0000;
    // MCRR p15, 1, r4, r5, c2 (TTBR1, 64-bit).
    let r = emulate_cp(
        &mut c,
        &mut hw,
        mcrr(0x04, 1, 2, 4, 5, false, AL),
        &mut x,
        0,
        false,
    );
    assert_eq!(
        r,
        Emulation::Done {
            reg: Reg::TTBR1_64,
            write: true
        }
    );
    assert_eq!(hw.values[Reg::TTBR1_EL1 as usize], 0x00ab_0000_8000_1000);
    // MRRC p15, 0, r6, r7, c7 (PAR, 64-bit).
    hw.values[Reg::PAR_EL1 as usize] = 0x1122_3344_5566_7788;
    emulate_cp(
        &mut c,
        &mut hw,
        mcrr(0x04, 0, 7, 6, 7, true, AL),
        &mut x,
        0,
        false,
    );
    assert_eq!((x[6], x[7]), (0x5566_7788, 0x1122_3344));
    // MRRC p15, 1, r0, r1, c14 (CNTVCT) reads the counter.
    hw.values[Reg::CNTVCT_EL0 as usize] = 0x0000_0007_0000_0009;
    emulate_cp(
        &mut c,
        &mut hw,
        mcrr(0x04, 1, 14, 0, 1, true, AL),
        &mut x,
        0,
        true,
    );
    assert_eq!((x[0], x[1]), (9, 7));
    // Unknown 64-bit encoding.
    let r = emulate_cp(
        &mut c,
        &mut hw,
        mcrr(0x04, 9, 9, 0, 1, true, AL),
        &mut x,
        0,
        false,
    );
    assert_eq!(undef_reason(r), Some(UndefReason::Unknown));
    // LDC/STC to cp14: UNDEF.
    let r = emulate_cp(
        &mut c,
        &mut hw,
        Esr((0x06 << 26) | Esr::IL),
        &mut x,
        0,
        false,
    );
    assert_eq!(undef_reason(r), Some(UndefReason::Unsupported));
}

#[test]
fn condition_codes() {
    // NZCV in bits 31:28.
    let n = 1u64 << 31;
    let z = 1u64 << 30;
    let cf = 1u64 << 29;
    let v = 1u64 << 28;
    let cases: &[(u8, u64, bool)] = &[
        (0x0, z, true),
        (0x0, 0, false), // EQ
        (0x1, 0, true),
        (0x1, z, false), // NE
        (0x2, cf, true),
        (0x2, 0, false), // CS
        (0x3, 0, true),
        (0x3, cf, false), // CC
        (0x4, n, true),
        (0x4, 0, false), // MI
        (0x5, 0, true),
        (0x5, n, false), // PL
        (0x6, v, true),
        (0x6, 0, false), // VS
        (0x7, 0, true),
        (0x7, v, false), // VC
        (0x8, cf, true),
        (0x8, cf | z, false), // HI
        (0x9, z, true),
        (0x9, cf, false), // LS
        (0xa, n | v, true),
        (0xa, n, false), // GE
        (0xb, n, true),
        (0xb, 0, false), // LT
        (0xc, 0, true),
        (0xc, z, false),
        (0xc, v, false), // GT
        (0xd, z, true),
        (0xd, 0, false), // LE
        (0xe, 0, true),
        (0xf, 0, true), // AL, unconditional
    ];
    for &(cond, flags, want) in cases {
        assert_eq!(
            condition_holds(cond, flags),
            want,
            "cond {cond:#x} flags {flags:#x}"
        );
    }
}

#[test]
fn a_failed_condition_skips_the_instruction() {
    let mut c = ctx_all();
    let mut hw = FakeHw::new();
    let mut x = [0u64; 31];
    x[2] = 0x1234;
    // MCR{EQ} with Z clear: skipped, nothing written.
    let esr = mcr(0x03, 0, 13, 0, 1, 2, false, Some(0x0));
    assert_eq!(
        emulate_cp(&mut c, &mut hw, esr, &mut x, 0, false),
        Emulation::Skipped
    );
    assert_eq!(hw.writes, 0);
    // Same with Z set: performed.
    let r = emulate_cp(&mut c, &mut hw, esr, &mut x, 1 << 30, false);
    assert_eq!(
        r,
        Emulation::Done {
            reg: Reg::CONTEXTIDR,
            write: true
        }
    );
    assert_eq!(hw.values[Reg::CONTEXTIDR_EL1 as usize], 0x1234);
    // A failed condition is skipped even for an unknown encoding.
    let esr = mcrr(0x04, 9, 9, 0, 1, true, Some(0x1));
    assert_eq!(
        emulate_cp(&mut c, &mut hw, esr, &mut x, 1 << 30, false),
        Emulation::Skipped
    );
    // CV clear: T32 IT block, condition from ITSTATE (IT[7:4] = SPSR[15:12]).
    let esr = mcr(0x03, 0, 13, 0, 1, 2, false, None);
    let it_eq = 0x8 << 8; // firstcond EQ (SPSR[15:12] = 0), mask != 0
    assert_eq!(
        emulate_cp(&mut c, &mut hw, esr, &mut x, it_eq, false),
        Emulation::Skipped
    );
    assert!(matches!(
        emulate_cp(&mut c, &mut hw, esr, &mut x, it_eq | 1 << 30, false),
        Emulation::Done { .. }
    ));
    assert!(
        matches!(
            emulate_cp(&mut c, &mut hw, esr, &mut x, 0, false),
            Emulation::Done { .. }
        ),
        "outside IT"
    );
}

/// Every alias reachable from AArch32: a write through the guest path lands in the
/// owner's bits (context and hardware), a read returns them.
#[test]
fn every_aarch32_alias_maps_onto_its_owner_through_emulation() {
    for &r in Reg::ALL.iter() {
        let (Some((owner, lsb, width)), Some(cp)) = (owner_of(r), r.entry().a32) else {
            continue;
        };
        let e = r.entry();
        let name = e.name;
        let mut c = ctx_all();
        let mut hw = FakeHw::new();
        let mut x = [0u64; 31];
        let ec = match (cp.cp, cp.wide) {
            (15, false) => 0x03,
            (15, true) => 0x04,
            (14, false) => 0x05,
            _ => 0x0c,
        };
        let esr = |read| {
            if cp.wide {
                mcrr(ec, cp.opc1 as u64, cp.crm as u64, 1, 2, read, AL)
            } else {
                mcr(
                    ec,
                    cp.opc1 as u64,
                    cp.crn as u64,
                    cp.crm as u64,
                    cp.opc2 as u64,
                    1,
                    read,
                    AL,
                )
            }
        };
        let o = owner.entry();
        let owner_value = |c: &SysRegFile, hw: &FakeHw| {
            if o.is(Flags::HW) && !o.is(Flags::CONST) {
                hw.values[owner as usize]
            } else {
                c.raw_read(owner).unwrap()
            }
        };
        let m = mask(width);
        if e.access.writable() && !e.is(Flags::WI) {
            let before = 0x5555_5555_5555_5555u64;
            c.raw_write(owner, before).unwrap();
            if o.is(Flags::HW) {
                hw.values[owner as usize] = before;
            }
            let p = PATTERN & m & e.wmask;
            x[1] = p & 0xffff_ffff;
            x[2] = p >> 32;
            let res = emulate_cp(&mut c, &mut hw, esr(false), &mut x, 0, false);
            assert_eq!(
                res,
                Emulation::Done {
                    reg: r,
                    write: true
                },
                "{name}"
            );
            let after = owner_value(&c, &hw);
            let view = (after >> lsb) & m;
            let expect = e.write_op.apply((before >> lsb) & m, p, e.wmask & m);
            assert_eq!(view, expect, "{name}: bits of {}", o.name);
            assert_eq!(
                after & !(m << lsb),
                before & !(m << lsb),
                "{name}: other bits"
            );
            assert_eq!(
                c.raw_read(owner).unwrap(),
                after,
                "{name}: context follows hardware"
            );
        }
        if e.access.readable() {
            let own = owner_value(&c, &hw);
            let res = emulate_cp(&mut c, &mut hw, esr(true), &mut x, 0, false);
            assert_eq!(
                res,
                Emulation::Done {
                    reg: r,
                    write: false
                },
                "{name}"
            );
            let got = if cp.wide { (x[2] << 32) | x[1] } else { x[1] };
            assert_eq!(got, (own >> lsb) & m, "{name}: read");
        }
    }
}

/// Every entry by each of its encodings, read and write from EL0 and EL1, through the
/// fake: never a panic (the fake asserts on writes to read-only hardware), and UNDEF
/// exactly when the rights say so.
#[test]
fn every_entry_by_every_encoding_emulates_per_its_rights() {
    let mut c = ctx_all();
    let mut hw = FakeHw::new();
    let mut x = [0x5au64; 31];
    for &r in Reg::ALL.iter() {
        let e = r.entry();
        for read in [true, false] {
            for el0 in [false, true] {
                let allowed = if read {
                    e.access.can_read(el0)
                } else {
                    e.access.can_write(el0)
                };
                if let Some(s) = e.a64 {
                    let (a, b, cc, d, f) = (
                        s.op0 as u64,
                        s.op1 as u64,
                        s.crn as u64,
                        s.crm as u64,
                        s.op2 as u64,
                    );
                    let iss = if read {
                        mrs(a, b, cc, d, f, 3)
                    } else {
                        msr(a, b, cc, d, f, 3)
                    };
                    let res = emulate_msr_mrs(&mut c, &mut hw, iss, &mut x, el0);
                    let want = allowed && !e.is(Flags::EL2_VIEW);
                    assert_eq!(
                        !matches!(res, Emulation::Undef(_)),
                        want,
                        "{} a64 read={read} el0={el0}",
                        e.name
                    );
                }
                if let Some(cp) = e.a32 {
                    let esr = match (cp.cp, cp.wide) {
                        (15, false) | (14, false) => mcr(
                            if cp.cp == 15 { 3 } else { 5 },
                            cp.opc1 as u64,
                            cp.crn as u64,
                            cp.crm as u64,
                            cp.opc2 as u64,
                            3,
                            read,
                            AL,
                        ),
                        _ => mcrr(
                            if cp.cp == 15 { 4 } else { 0xc },
                            cp.opc1 as u64,
                            cp.crm as u64,
                            3,
                            4,
                            read,
                            AL,
                        ),
                    };
                    let res = emulate_cp(&mut c, &mut hw, esr, &mut x, 0, el0);
                    assert_eq!(
                        !matches!(res, Emulation::Undef(_)),
                        allowed,
                        "{} a32 read={read} el0={el0}",
                        e.name
                    );
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------
// Coverage.

#[test]
fn coverage_of_the_issue_list() {
    let names: BTreeSet<_> = entries().map(|e| e.name).collect();
    let required = [
        "SCTLR_EL1",
        "ACTLR_EL1",
        "CPACR_EL1",
        "TTBR0_EL1",
        "TTBR1_EL1",
        "TCR_EL1",
        "MAIR_EL1",
        "AMAIR_EL1",
        "ESR_EL1",
        "FAR_EL1",
        "AFSR0_EL1",
        "AFSR1_EL1",
        "VBAR_EL1",
        "CONTEXTIDR_EL1",
        "TPIDR_EL0",
        "TPIDR_EL1",
        "TPIDRRO_EL0",
        "SP_EL0",
        "SP_EL1",
        "ELR_EL1",
        "SPSR_EL1",
        "SPSR_abt",
        "SPSR_und",
        "SPSR_irq",
        "SPSR_fiq",
        "PAR_EL1",
        "CNTKCTL_EL1",
        "CSSELR_EL1",
        "MDSCR_EL1",
        "MDCCINT_EL1",
        "DBGBVR15_EL1",
        "DBGBCR15_EL1",
        "DBGWVR15_EL1",
        "DBGWCR15_EL1",
        "PMCR_EL0",
        "ID_AA64PFR0_EL1",
        "ID_AA64MMFR2_EL1",
        "ID_PFR0_EL1",
        "ID_ISAR6_EL1",
        "MVFR2_EL1",
        "MIDR_EL1",
        "REVIDR_EL1",
        "MPIDR_EL1",
        "AIDR_EL1",
        "CTR_EL0",
        "CLIDR_EL1",
        "CCSIDR_EL1",
        "CNTV_CTL_EL0",
        "CNTV_CVAL_EL0",
        "CNTV_TVAL_EL0",
        "CNTP_CTL_EL0",
        "CNTP_CVAL_EL0",
        "CNTP_TVAL_EL0",
        "CNTFRQ_EL0",
        "CNTVCT_EL0",
        "CNTPCT_EL0",
        "TLBI_VMALLE1IS",
        "DC_CISW",
        "IC_IALLU",
        "AT_S1E1R",
        "SCTLR",
        "TTBR0",
        "TTBR1",
        "TTBR0_64",
        "TTBR1_64",
        "TTBCR",
        "DACR32_EL2",
        "DFSR",
        "IFSR32_EL2",
        "DFAR",
        "IFAR",
        "PRRR",
        "NMRR",
        "CONTEXTIDR",
        "TPIDRURW",
        "TPIDRURO",
        "TPIDRPRW",
        "VBAR",
        "PAR",
        "PAR_64",
        "FPEXC32_EL2",
        "TLBIALLIS",
        "DCCISW",
        "ATS1CPR",
        "DBGBVR0",
        "DBGDSCRext",
    ];
    for want in required {
        assert!(names.contains(want), "{want} missing");
    }
    // And its AArch32 counterpart (cp15, opc1=0, CRn=c0, CRm=c1..c7).
    for crm in 1..8 {
        for op2 in 0..8 {
            let r = lookup_a32(Cp::new32(15, 0, 0, crm, op2));
            assert!(
                r.is_some_and(|r| !r.entry().access.writable()),
                "p15,0,c0,c{crm},{op2}"
            );
        }
    }
    // The whole ID space op0=3, op1=0, CRn=0, CRm=1..7 is covered (reserved encodings
    // read as zero instead of UNDEF, as on hardware).
    for crm in 1..8 {
        for op2 in 0..8 {
            let r = lookup_a64(Sys64::new(3, 0, 0, crm, op2));
            assert!(
                r.is_some_and(|r| r.entry().is(Flags::CONST)),
                "S3_0_C0_C{crm}_{op2}"
            );
        }
    }
}

/// Prints the table's figures (`cargo test -- --nocapture counts`), each checked
/// against a count made another way: the encoding counts by sweeping every
/// encoding through the lookups (not the `const fn` that sizes the indexes), the
/// saved list by asking a context which registers it can read raw.
#[test]
fn counts() {
    let a64 = entries().filter(|e| e.a64.is_some()).count();
    let a32_only = entries().filter(|e| e.a64.is_none()).count();
    let saved = saved_list(Features::ALL).count();
    std::println!(
        "entries {} (AArch64 encodings {}, AArch32 encodings {}, AArch32-only entries {}), \
         slots {}, saved list {} (all features), EL1 switch set {}, ops {}",
        COUNT,
        a64,
        NUM_A32,
        a32_only,
        NUM_SLOTS,
        saved,
        EL1_SET.len(),
        entries()
            .filter(|e| matches!(e.state, State::Op(_)))
            .count()
    );
    // A Cortex-A72-like VM: AArch32 EL1, 6 breakpoints, 4 watchpoints, no PMU.
    let a72 = Features {
        pmu: false,
        brps: 6,
        wrps: 4,
        tlbi_os: false,
        tlbi_range: false,
        pan2: false,
        dpb: false,
        dpb2: false,
        ..Features::ALL
    };
    let saved_a72 = saved_list(a72).count();
    let a64_saved = saved_list(a72)
        .filter(|(_, r)| r.entry().a64.is_some())
        .count();
    std::println!(
        "saved list for an A72-like VM {saved_a72} ({a64_saved} AArch64 indexes, {} AArch32)",
        saved_a72 - a64_saved
    );

    // Every AArch64 encoding (op0..op2: 16 bits) through the lookup.
    let mut found64 = BTreeSet::new();
    for key in 0..(1u32 << 16) {
        let enc = Sys64::new(
            (key >> 14) as u8,
            ((key >> 11) & 7) as u8,
            ((key >> 7) & 15) as u8,
            ((key >> 3) & 15) as u8,
            (key & 7) as u8,
        );
        if let Some(r) = lookup_a64(enc) {
            assert_eq!(
                r.entry().a64,
                Some(enc),
                "{}: found by another encoding",
                r.name()
            );
            found64.insert(r);
        }
    }
    assert_eq!(
        a64,
        found64.len(),
        "AArch64 encodings in the table vs found by lookup"
    );
    assert_eq!(NUM_A64, found64.len(), "NUM_A64 vs the lookup sweep");
    // Every AArch32 encoding of cp14 and cp15, MCR/MRC and MCRR/MRRC.
    let mut found32 = BTreeSet::new();
    for cp in [14u8, 15] {
        for opc1 in 0..8 {
            for crn in 0..16 {
                for crm in 0..16 {
                    for opc2 in 0..8 {
                        if let Some(r) = lookup_a32(Cp::new32(cp, opc1, crn, crm, opc2)) {
                            found32.insert(r);
                        }
                    }
                }
            }
        }
        for opc1 in 0..16 {
            for crm in 0..16 {
                if let Some(r) = lookup_a32(Cp::new64(cp, opc1, crm)) {
                    found32.insert(r);
                }
            }
        }
    }
    assert_eq!(NUM_A32, found32.len(), "NUM_A32 vs the lookup sweep");
    assert_eq!(
        a32_only,
        found32.iter().filter(|r| !found64.contains(r)).count(),
        "AArch32-only entries"
    );
    // The saved list is what a context holds as state: readable raw, not a view.
    let c = ctx_all();
    let state: BTreeSet<Reg> = Reg::ALL
        .iter()
        .copied()
        .filter(|&r| c.raw_read(r).is_ok() && r.owner() == r)
        .collect();
    let listed: BTreeSet<Reg> = saved_list(Features::ALL).map(|(_, r)| r).collect();
    assert_eq!(listed, state, "saved list vs the context's raw state");
    assert_eq!(saved, state.len());
}

/// The syndromes the AArch32 paths decode, written out as numbers (Arm ARM D24.2.40
/// ESR_EL2: EC 0x03 `MCR`/`MRC` ISS = CV[24] COND[23:20] Opc2[19:17] Opc1[16:14]
/// CRn[13:10] Rt[9:5] CRm[4:1] Direction[0]; EC 0x04 `MCRR`/`MRRC` ISS = CV[24]
/// COND[23:20] Opc1[19:16] Rt2[14:10] Rt[9:5] CRm[4:1] Direction[0]), with a
/// different value in every field so a field read from the wrong bits shows.
#[test]
fn exception_class_helpers_used_by_the_runtime() {
    // MRC p15, 2, r7, c13, c9, 5 (AL): 0x03 << 26 | IL | 1 << 24 | 0xe << 20 |
    // 5 << 17 | 2 << 14 | 13 << 10 | 7 << 5 | 9 << 1 | 1.
    let mrc = Esr(0x0fea_b4f3);
    assert_eq!(mrc.ec(), ExceptionClass::Cp15Rt);
    assert_eq!(mrc.instruction_len(), 4);
    let i: CpRtIss = mrc.cp_rt();
    assert_eq!(
        (i.opc1(), i.crn(), i.crm(), i.opc2(), i.rt(), i.is_read()),
        (2, 13, 9, 5, 7, true)
    );
    assert!(i.cond_valid());
    assert_eq!(i.cond(), 0xe);
    // MCRR p15, 3, r4, r11, c2 (EQ): 0x04 << 26 | IL | 1 << 24 | 0 << 20 |
    // 3 << 16 | 11 << 10 | 4 << 5 | 2 << 1 | 0.
    let mcrr = Esr(0x1303_2c84);
    assert_eq!(mcrr.ec(), ExceptionClass::Cp15RRt);
    let i: CpRrtIss = mcrr.cp_rrt();
    assert_eq!(
        (i.opc1(), i.crm(), i.rt(), i.rt2(), i.is_read()),
        (3, 2, 4, 11, false)
    );
    assert!(i.cond_valid());
    assert_eq!(i.cond(), 0);
    // A 16-bit T32 encoding (IL clear) with no valid condition: MRC p14 (EC 0x05).
    let t32 = Esr((0x05 << 26) | (1 << 10) | 1);
    assert_eq!(t32.ec(), ExceptionClass::Cp14Rt);
    assert_eq!(t32.instruction_len(), 2);
    assert!(!t32.cp_rt().cond_valid());
    assert_eq!((t32.cp_rt().crn(), t32.cp_rt().is_read()), (1, true));
}

#[test]
fn emulate_dispatches_on_the_exception_class() {
    let mut c = ctx_all();
    let mut hw = FakeHw::new();
    let mut x = [0u64; 31];
    x[1] = 0x77;
    let esr = Esr((0x18 << 26) | Esr::IL | msr(3, 0, 13, 0, 4, 1).0);
    assert_eq!(
        emulate(&mut c, &mut hw, esr, &mut x, 0, false),
        Emulation::Done {
            reg: Reg::TPIDR_EL1,
            write: true
        }
    );
    let esr = mcr(0x03, 0, 13, 0, 4, 2, true, AL);
    assert_eq!(
        emulate(&mut c, &mut hw, esr, &mut x, 0, false),
        Emulation::Done {
            reg: Reg::TPIDRPRW,
            write: false
        }
    );
    assert_eq!(x[2], 0x77);
    let r = emulate(
        &mut c,
        &mut hw,
        Esr((0x24 << 26) | Esr::IL),
        &mut x,
        0,
        false,
    );
    assert_eq!(undef_reason(r), Some(UndefReason::Unsupported));
}

#[test]
fn debugger_view_shows_state_and_aliases_but_no_operations() {
    let v: Vec<_> = debugger_view(Features::ALL).collect();
    assert!(v.contains(&(Reg::SCTLR_EL1, 64)));
    assert!(v.contains(&(Reg::DFAR, 32)));
    assert!(v.iter().all(|(r, _)| !r.entry().is(Flags::NO_RAW)));
    assert!(!v
        .iter()
        .any(|(r, _)| *r == Reg::TLBI_VMALLE1IS || *r == Reg::CNTVCT_EL0));
    let f = Features {
        brps: 2,
        ..Features::ALL
    };
    assert!(!debugger_view(f).any(|(r, _)| r == Reg::DBGBVR2_EL1 || r == Reg::DBGBVR2));
}

/// A present alias must never reach an absent owner (its hardware register would
/// UNDEF at EL2): for every feature combination that matters, presence of the alias
/// implies presence of the owner.
#[test]
fn an_alias_is_present_only_where_its_owner_is() {
    let mut combos = Vec::new();
    for aarch32_el1 in [false, true] {
        for pmu in [false, true] {
            for n in 1..=16u8 {
                combos.push(Features {
                    aarch32_el1,
                    pmu,
                    brps: n,
                    wrps: 17 - n,
                    ..Features::ALL
                });
            }
        }
    }
    for &r in Reg::ALL.iter() {
        let Some((owner, ..)) = owner_of(r) else {
            continue;
        };
        for f in &combos {
            if f.has(r.entry().presence) {
                assert!(
                    f.has(owner.entry().presence),
                    "{} present without {} ({f:?})",
                    r.name(),
                    owner.name()
                );
            }
        }
    }
}

#[test]
fn vmrs_of_mvfr_reads_the_sanitised_value() {
    let mut h = HostIds::zeroed();
    h.set(Reg::ID_AA64PFR0_EL1, 0x22); // AArch32 at EL0 and EL1
    h.set(Reg::MVFR0_EL1, 0x1022_2222);
    h.set(Reg::MVFR1_EL1, 0x1211_1111);
    let mut c = SysRegFile::new(&GuestIds::sanitise(&h, &IdPolicy::default()), 0);
    let mut hw = FakeHw::new();
    let mut x = [0u64; 31];
    let vmrs = |crn: u64, rt: u64, read: bool, cond: Option<u8>| {
        let e = mcr(0x08, 7, crn, 0, 0, rt, read, cond);
        Esr(e.0)
    };
    let r = emulate(&mut c, &mut hw, vmrs(7, 3, true, AL), &mut x, 0, false);
    assert_eq!(
        r,
        Emulation::Done {
            reg: Reg::MVFR0_EL1,
            write: false
        }
    );
    assert_eq!(x[3], 0x1022_2222);
    emulate(&mut c, &mut hw, vmrs(6, 4, true, AL), &mut x, 0, false);
    assert_eq!(x[4], 0x1211_1111);
    // FPSID (reg 0) and writes UNDEF; a failed condition skips.
    assert!(matches!(
        emulate(&mut c, &mut hw, vmrs(0, 4, true, AL), &mut x, 0, false),
        Emulation::Undef(_)
    ));
    assert_eq!(
        undef_reason(emulate(
            &mut c,
            &mut hw,
            vmrs(7, 4, false, AL),
            &mut x,
            0,
            false
        )),
        Some(UndefReason::ReadOnly)
    );
    assert_eq!(
        emulate(&mut c, &mut hw, vmrs(7, 4, true, Some(0)), &mut x, 0, false),
        Emulation::Skipped
    );
}

#[test]
fn owner_of_an_alias_is_its_state() {
    assert_eq!(Reg::SCTLR.owner(), Reg::SCTLR_EL1);
    assert_eq!(Reg::IFAR.owner(), Reg::FAR_EL1);
    assert_eq!(Reg::SCTLR_EL1.owner(), Reg::SCTLR_EL1);
    assert_eq!(Reg::DACR32_EL2.owner(), Reg::DACR32_EL2);
}

#[test]
fn timers_are_restored_compare_value_first() {
    let pos = |r: Reg| EL1_SET.iter().position(|&x| x == r).unwrap();
    assert!(pos(Reg::CNTV_CVAL_EL0) < pos(Reg::CNTV_CTL_EL0));
    assert!(pos(Reg::CNTP_CVAL_EL0) < pos(Reg::CNTP_CTL_EL0));
}

/// Issue 13 item 3: the memory-tagging registers. Each is state (saved, imported
/// and read back), in the saved list exactly when the VM has MTE, and switched in
/// its own group (only for VMs with MTE), not with EL1. A raw import keeps what
/// it is given, as for every register the guest reaches directly (the write
/// masks are the architected bits, for the emulation).
#[test]
fn import_rules_for_the_mte_registers() {
    let mut c = ctx_all();
    let idx = |r: Reg| r.entry().kvm_index();
    for (r, v) in [
        (Reg::GCR_EL1, 0x1_00aa),
        (Reg::RGSR_EL1, 0xab_cd07),
        (Reg::TFSR_EL1, 0b11),
        (Reg::TFSRE0_EL1, 0b1),
    ] {
        c.import(idx(r), v).unwrap();
        assert_eq!(c.raw_read(r), Ok(v), "{}", r.name());
        assert!(
            MTE_SET.contains(&r) && !EL1_SET.contains(&r),
            "{}",
            r.name()
        );
    }
    let names =
        |f: Features| -> BTreeSet<&'static str> { saved_list(f).map(|(_, r)| r.name()).collect() };
    let with = names(Features::ALL);
    let without = names(Features {
        mte: false,
        ..Features::ALL
    });
    for r in ["GCR_EL1", "RGSR_EL1", "TFSR_EL1", "TFSRE0_EL1"] {
        assert!(with.contains(r) && !without.contains(r), "{r}");
    }
    // SCTLR_EL1's tag controls (ATA, ATA0, TCF, TCF0) are plain SCTLR_EL1 state.
    let tag_bits = (1 << 43) | (1 << 42) | (0b11 << 40) | (0b11 << 38);
    c.import(idx(Reg::SCTLR_EL1), 0x30d5_0839 | tag_bits)
        .unwrap();
}
