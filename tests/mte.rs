//! Issue 13 item 3: memory tagging (FEAT_MTE2) for guests.
//!
//! The `mte` guest turns its MMU on with its RAM Tagged, tags a granule, and every
//! round reads the tag back (`LDG`), loads through a matching pointer and takes a
//! synchronous tag-check fault on a mismatched one, and checks GCR_EL1; it fails
//! itself on any surprise. These tests add what only the host side can check: a
//! snapshot restore brings back the tags (and GCR_EL1) of the moment it was taken,
//! a VM not offered MTE (`hv.mte`) and a CPU without tag storage see none.

use super::common::{guest, module, qemu};
use std::time::Duration;

/// `[vmN] mte: round R: tag T, ...` lines (`vm`: `None` when the VM is alone and
/// its lines carry no prefix): (round, tag).
fn rounds(text: &str, vm: Option<usize>) -> Vec<(u64, u64)> {
    let prefix = match vm {
        Some(n) => format!("[vm{n}] mte: round "),
        None => "mte: round ".to_string(),
    };
    text.lines()
        .filter_map(|l| {
            let rest = l.strip_prefix(&prefix)?;
            let (n, rest) = rest.split_once(": tag ")?;
            let tag = rest.split(',').next()?;
            Some((n.parse().ok()?, tag.parse().ok()?))
        })
        .collect()
}

/// On `virt,mte=on` a VM is offered MTE by default: it tags a granule, takes a
/// synchronous tag-check fault (DFSC 0x11) through a mismatched pointer, and
/// after an in-memory `snapshot save` (tag 5), a retag (9) and `snapshot
/// restore`, its granule has tag 5 again: the tags came back from the snapshot
/// (a restore clears every tag of the VM's RAM before the tag frames set them).
/// vm1, excluded by `hv.mte=vm0`, sees MTE 0 and GCR_EL1 UNDEFINED.
#[test]
fn a_guest_tags_memory_takes_tag_check_faults_and_gets_its_tags_back_from_a_snapshot() {
    let mut q = qemu()
        .machine("virt,virtualization=on,mte=on")
        .smp(1)
        .hv_args("hv.mte=vm0")
        .vm(module(guest("mte")).bootargs("console=ttyAMA0 rounds=0 ms=20 retag=8"))
        .vm(module(guest("mte")).bootargs("console=ttyAMA0 expect=none"))
        .start();
    q.expect_debug("vm0: memory tagging: FEAT_MTE")
        .expect_guest("[vm1] mte: no MTE: ID_AA64PFR1_EL1.MTE 0, GCR_EL1 is UNDEFINED")
        .expect_guest("[vm1] mte: PASS")
        .expect_guest("[vm0] mte: granule at ")
        .expect_guest(
            "[vm0] mte: round 1: tag 5, matching load 0x1111222233334444, mismatched load: tag check fault (EC 0x25 DFSC 0x11), GCR_EL1 0xaa",
        )
        .expect_guest("[vm0] mte: round 3:");
    q.debug.write(b"snapshot save vm0 m\r");
    q.expect_debug("vm0: saved to slot 'm'");
    let at_save = rounds(&q.guest.text(), Some(0)).last().map_or(0, |r| r.0);
    q.check(
        at_save < 8,
        &format!("saved at round {at_save}, after the retag"),
    );
    q.expect_guest("[vm0] mte: round 8: retagged 9")
        .expect_guest("[vm0] mte: round 9: tag 9,");
    let before = q.guest.text().len();
    let max_before = rounds(&q.guest.text(), Some(0)).last().map_or(0, |r| r.0);
    q.debug.write(b"snapshot restore vm0 m\r");
    q.expect_debug("vm0: restored from slot 'm'");
    // Rounds the guest finished before the restore took effect may still arrive:
    // they count on from `max_before`; the restored guest's count starts below.
    let start = std::time::Instant::now();
    let after = loop {
        let r: Vec<_> = rounds(&q.guest.text()[before..], Some(0))
            .into_iter()
            .skip_while(|r| r.0 >= max_before)
            .collect();
        if r.len() >= 2 {
            break r;
        }
        if start.elapsed() > super::common::DEADLINE {
            q.fail(&format!("2 rounds after the restore, not {r:?}"));
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    eprintln!("saved at round {at_save}, reached {max_before}, then {after:?}");
    q.check(
        after[0].0 < 8 && after[0].1 == 5,
        &format!("after the restore: {after:?} (round before 8 with tag 5 expected)"),
    );
    q.check(!q.guest.text().contains("FAIL"), "a guest failed");
}

/// QEMU `max` without `mte=on` has FEAT_MTE's instructions but no tag storage:
/// no VM is offered MTE, whatever `hv.mte` says.
#[test]
fn without_tag_storage_no_guest_is_offered_mte() {
    let mut q = qemu()
        .smp(1)
        .hv_args("hv.mte=all")
        .vm(module(guest("mte")).bootargs("console=ttyAMA0 expect=none"))
        .start();
    q.expect_debug("vm0: no memory tagging: this CPU has no FEAT_MTE2")
        .expect_guest("mte: no MTE: ID_AA64PFR1_EL1.MTE 0, GCR_EL1 is UNDEFINED")
        .expect_guest("mte: PASS");
}
