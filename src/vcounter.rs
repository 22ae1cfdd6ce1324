//! A VM's virtual counter: the offset (CNTVOFF_EL2) between the machine's counter
//! and the one the VM's guests read, and the timer arithmetic that depends on it.
//!
//! Every VM has one offset, shared by all its vCPUs and loaded with each of them
//! (the world switch), so a guest's virtual count is `physical - offset` (mod 2^64,
//! as the hardware computes it). It is 0 from boot and changes only when a snapshot
//! is restored: the restored VM's count then goes on from the count it had when the
//! snapshot was taken ([`offset_for`]), on any machine, however long the snapshot
//! waited, so a guest restored into a machine that has run for less time never sees
//! its clock go back. Pausing a VM (and saving it) leaves the offset alone: time
//! passes for a paused VM, as under KVM by default.
//!
//! The EL1 physical timer (CNTP) compares with the machine's counter, which no
//! offset changes (FEAT_ECV's CNTPOFF is not used). A snapshot therefore carries
//! its CNTP_CVAL on the VM's virtual time line ([`cntp_cval_to_snapshot`]), and a
//! restore moves it onto the new machine's ([`cntp_cval_from_snapshot`]): the
//! deadline stays as far ahead of the VM's count as it was when saved. With an
//! offset of 0 both conversions are the identity, so a snapshot of a VM never
//! restored holds the register as the hardware had it.
//!
//! Everything here is wrap-safe (wrapping arithmetic, as the hardware's), and
//! compares counts unsigned, as the generic timer does (CNTx_CVAL <= count fires).
#![forbid(unsafe_code)]

/// The VM's virtual count when the machine's counter reads `physical`.
#[inline(always)]
pub const fn virtual_count(physical: u64, offset: u64) -> u64 {
    physical.wrapping_sub(offset)
}

/// What a snapshot records as the VM's virtual count at save time: the count, but
/// never 0, which stands for "not recorded" (files written before offsets were
/// applied). A count of 0 is written as 1, one tick off.
pub const fn saved_count(physical: u64, offset: u64) -> u64 {
    match virtual_count(physical, offset) {
        0 => 1,
        c => c,
    }
}

/// The offset that makes a VM restored when the machine's counter reads `physical`
/// go on from `saved`, the virtual count its snapshot recorded. `saved` 0 (not
/// recorded): offset 0, the virtual count is the machine's, as before offsets.
pub const fn offset_for(physical: u64, saved: u64) -> u64 {
    if saved == 0 {
        0
    } else {
        physical.wrapping_sub(saved)
    }
}

/// A CNTP_CVAL_EL0 (on the machine's counter) as a snapshot carries it: on the
/// VM's virtual time line.
#[inline]
pub const fn cntp_cval_to_snapshot(cval: u64, offset: u64) -> u64 {
    cval.wrapping_sub(offset)
}

/// A snapshot's CNTP_CVAL_EL0 back on the machine's counter, for a VM whose offset
/// is now `offset`.
#[inline]
pub const fn cntp_cval_from_snapshot(cval: u64, offset: u64) -> u64 {
    cval.wrapping_add(offset)
}

/// Whether a timer whose compare value is `cval` has fired at count `count` (of
/// the counter it compares with).
#[inline(always)]
pub const fn fired(cval: u64, count: u64) -> bool {
    count >= cval
}

/// When (the machine's counter value) a timer that compares `cval` with a count
/// `offset` behind the machine's fires, seen at machine count `physical`:
/// `physical` itself if it already has, at most `u64::MAX`. With `offset` 0 this is
/// `cval` when still ahead. Never wraps: a deadline the offset would carry past
/// 2^64 is `u64::MAX` (later than any wait), one already reached is now.
#[inline]
pub const fn physical_deadline(cval: u64, offset: u64, physical: u64) -> u64 {
    let count = virtual_count(physical, offset);
    if fired(cval, count) {
        physical
    } else {
        physical.saturating_add(cval - count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_virtual_count_is_the_physical_one_less_the_offset_modulo_2_64() {
        assert_eq!(virtual_count(1_000, 0), 1_000);
        assert_eq!(virtual_count(1_000, 400), 600);
        // An offset "below zero" (a VM restored into a machine that has run for
        // less time): the count is ahead of the machine's.
        assert_eq!(virtual_count(1_000, 0u64.wrapping_sub(500)), 1_500);
        assert_eq!(virtual_count(5, 10), u64::MAX - 4);
    }

    #[test]
    fn a_restore_makes_the_count_go_on_from_the_saved_one_on_any_machine() {
        // Saved at virtual count 9_000 (machine A at 10_000 with offset 1_000).
        let saved = saved_count(10_000, 1_000);
        assert_eq!(saved, 9_000);
        // Restored on a machine that has run for less time (3_000) and for more
        // (50_000): either way the VM reads 9_000 then, and counts on from there.
        for now in [3_000u64, 50_000, u64::MAX - 2] {
            let off = offset_for(now, saved);
            assert_eq!(virtual_count(now, off), 9_000, "restored at {now}");
            assert_eq!(
                virtual_count(now.wrapping_add(250), off),
                9_250,
                "250 ticks after a restore at {now}"
            );
        }
    }

    #[test]
    fn a_snapshot_without_a_recorded_count_restores_with_the_machines_counter() {
        // Files written before offsets were applied hold 0: offset 0, as then.
        assert_eq!(offset_for(123_456, 0), 0);
        assert_eq!(virtual_count(123_456, offset_for(123_456, 0)), 123_456);
        // And a count of exactly 0 is never written as "not recorded".
        assert_eq!(saved_count(700, 700), 1);
        assert_eq!(saved_count(701, 700), 1);
        assert_eq!(saved_count(702, 700), 2);
    }

    #[test]
    fn save_then_restore_on_the_same_machine_at_once_keeps_the_offset() {
        for off in [0u64, 77, u64::MAX - 3] {
            let now = 1_000_000u64;
            assert_eq!(offset_for(now, saved_count(now, off)), off);
        }
    }

    #[test]
    fn cntp_keeps_its_distance_ahead_of_the_count_across_a_restore() {
        // Saved on machine A (counter 10_000, offset 1_000): CNTP due in 400.
        let (a_now, a_off) = (10_000u64, 1_000u64);
        let cval = a_now + 400;
        let saved = saved_count(a_now, a_off);
        let in_file = cntp_cval_to_snapshot(cval, a_off);
        // Restored on B at 2_000 (less time than A) and at u64::MAX - 100 (the
        // deadline wraps past 2^64 on B's counter, as the hardware's would).
        for b_now in [2_000u64, u64::MAX - 100] {
            let b_off = offset_for(b_now, saved);
            let back = cntp_cval_from_snapshot(in_file, b_off);
            assert_eq!(back.wrapping_sub(b_now), 400, "restored at {b_now}");
        }
        // Offset 0 both sides: the register as the hardware had it.
        assert_eq!(cntp_cval_to_snapshot(cval, 0), cval);
        assert_eq!(cntp_cval_from_snapshot(cval, 0), cval);
        // Saving again right after a restore writes the same value.
        let b_off = offset_for(2_000, saved);
        let back = cntp_cval_from_snapshot(in_file, b_off);
        assert_eq!(cntp_cval_to_snapshot(back, b_off), in_file);
    }

    #[test]
    fn a_timer_fires_when_its_count_reaches_the_compare_value() {
        assert!(!fired(100, 99));
        assert!(fired(100, 100));
        assert!(fired(100, 101));
        assert!(fired(0, 0));
        assert!(!fired(u64::MAX, u64::MAX - 1));
    }

    #[test]
    fn a_virtual_deadline_becomes_a_machine_counter_deadline_without_wrapping() {
        // Offset 0: the compare value itself while ahead, now once reached.
        assert_eq!(physical_deadline(500, 0, 100), 500);
        assert_eq!(physical_deadline(500, 0, 500), 500);
        assert_eq!(physical_deadline(500, 0, 900), 900);
        // The VM's count 1_000 behind the machine's: due 1_000 later.
        assert_eq!(physical_deadline(1_500, 1_000, 2_000), 2_500);
        // (At machine count 100 that VM's count has wrapped below zero, to
        // 2^64 - 900: past any compare value, as the hardware sees it.)
        assert_eq!(physical_deadline(1_500, 1_000, 100), 100);
        // Ahead of the machine's ("negative" offset): due earlier, or now.
        let ahead = 0u64.wrapping_sub(300);
        assert_eq!(physical_deadline(500, ahead, 100), 200);
        assert_eq!(physical_deadline(500, ahead, 250), 250);
        assert_eq!(physical_deadline(1_000, ahead, 100), 700);
        // Passed, where cval + offset would wrap to a huge value: now, not never.
        assert_eq!(physical_deadline(10, u64::MAX - 5, 100), 100);
        // Far ahead past 2^64 on the machine's counter: the latest, not early.
        assert_eq!(physical_deadline(u64::MAX, 1_000, u64::MAX - 10), u64::MAX);
        // "Never" (u64::MAX) with offset 0 stays never.
        assert_eq!(physical_deadline(u64::MAX, 0, 5), u64::MAX);
    }
}
