//! Restarting a VM (PSCI `SYSTEM_RESET`/`SYSTEM_RESET2`, the console's
//! `reset vmN`): the two decisions that need no hardware.
//!
//! * [`Reload`]: what goes back into the VM's RAM and where. A restart reloads
//!   the VM's kernel, initrd and device tree exactly as its first boot placed
//!   them. The kernel and initrd are not copied anywhere at boot: they stay
//!   where the boot loader put them (a guest-loader module, a bundle file),
//!   memory the hypervisor already keeps out of every VM's RAM; only the guest
//!   device tree, which the hypervisor wrote, is kept (a few KiB of heap).
//!   [`Reload::check`] makes sure no original lies in the VM's own RAM (the
//!   guest could have changed it) and that each lands inside that RAM.
//! * [`Limiter`]: a VM that resets in a loop must not keep the machine busy
//!   reloading it: at most [`BURST`] resets within a window, then the next one
//!   waits until the window allows it (the VM stays stopped meanwhile, with a
//!   message; other VMs and the console go on).
#![forbid(unsafe_code)]

use crate::addr::{Ipa, PhysAddr, Range};
use crate::memplan::GuestRam;
use alloc::vec::Vec;
use core::fmt;

/// One original to copy back: `from` (host memory kept out of every VM) to the
/// VM's RAM at `to`.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Piece {
    pub from: Range<PhysAddr>,
    pub to: Ipa,
}

/// Everything a restart needs to boot the VM again as it first booted.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Reload {
    /// The kernel, then the initrd if any.
    pub pieces: Vec<Piece>,
    /// The guest device tree the hypervisor wrote at boot, and where it goes.
    pub dtb: Vec<u8>,
    pub dtb_ipa: Ipa,
    /// vCPU 0's entry point and x0-x2 (r0-r2 for AArch32).
    pub entry: u64,
    pub args: [u64; 3],
    pub aarch32: bool,
}

/// Why a reload plan cannot be used.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum ReloadError {
    /// An original lies in the VM's own RAM: the guest may have changed it.
    SourceInGuestRam { from: PhysAddr },
    /// A piece (or the device tree) would land outside the VM's RAM.
    OutsideRam { to: Ipa, size: u64 },
}

impl fmt::Display for ReloadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::SourceInGuestRam { from } => write!(
                f,
                "its original image at {from} lies in the VM's own RAM, where the guest may have changed it"
            ),
            Self::OutsideRam { to, size } => write!(
                f,
                "{size} bytes at IPA {:#x} would land outside the VM's RAM",
                to.0
            ),
        }
    }
}

impl Reload {
    /// Checks the plan against the VM's RAM: no original inside any of its
    /// physical memory, every destination wholly inside its main RAM range.
    pub fn check(&self, ram: &GuestRam) -> Result<(), ReloadError> {
        let physical = ram.chunks.iter().chain(ram.extra.iter());
        for p in &self.pieces {
            if p.from.size > 0 && physical.clone().any(|c| c.overlaps(&p.from)) {
                return Err(ReloadError::SourceInGuestRam { from: p.from.start });
            }
        }
        let dests = self
            .pieces
            .iter()
            .map(|p| (p.to, p.from.size))
            .chain(core::iter::once((self.dtb_ipa, self.dtb.len() as u64)));
        for (to, size) in dests {
            if !ram.ipa.contains_range(to, size) {
                return Err(ReloadError::OutsideRam { to, size });
            }
        }
        Ok(())
    }

    /// Bytes copied by one restart (kernel, initrd, device tree).
    pub fn bytes(&self) -> u64 {
        self.pieces.iter().map(|p| p.from.size).sum::<u64>() + self.dtb.len() as u64
    }
}

/// Resets allowed within one window before the next has to wait.
pub const BURST: usize = 4;

/// Remembers when a VM was last reset, to rate-limit a reset loop. Times are
/// counter values (any monotonic unit; the window is in the same unit).
#[derive(Clone, Debug, Default)]
pub struct Limiter {
    /// The times of the last [`BURST`] resets, oldest first (fewer at the start).
    recent: heapless::Deque<u64, BURST>,
}

impl Limiter {
    pub const fn new() -> Self {
        Self {
            recent: heapless::Deque::new(),
        }
    }

    /// `None` if a reset may happen at `now`; otherwise the earliest time it may:
    /// [`BURST`] resets already happened within `window` before `now`.
    pub fn next_allowed(&self, now: u64, window: u64) -> Option<u64> {
        if !self.recent.is_full() {
            return None;
        }
        let oldest = *self.recent.front()?;
        let at = oldest.saturating_add(window);
        (now < at).then_some(at)
    }

    /// Records a reset done at `now`.
    pub fn record(&mut self, now: u64) {
        if self.recent.is_full() {
            self.recent.pop_front();
        }
        let _ = self.recent.push_back(now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1 << 20;

    fn ram() -> GuestRam {
        // 64 MiB at IPA 0x40000000, backed by two 32 MiB chunks far apart.
        GuestRam {
            ipa: Range::new(Ipa(0x4000_0000), 64 * MIB),
            chunks: alloc::vec![
                Range::new(PhysAddr(0x4400_0000), 32 * MIB),
                Range::new(PhysAddr(0x6000_0000), 32 * MIB),
            ],
            extra: Vec::new(),
        }
    }

    fn plan() -> Reload {
        Reload {
            pieces: alloc::vec![
                Piece {
                    from: Range::new(PhysAddr(0x5000_0000), 30 * MIB),
                    to: Ipa(0x4000_0000),
                },
                Piece {
                    from: Range::new(PhysAddr(0x5800_0000), 2 * MIB),
                    to: Ipa(0x43b0_0000),
                },
            ],
            dtb: alloc::vec![0xd0; 4096],
            dtb_ipa: Ipa(0x43e0_0000),
            entry: 0x4000_0000,
            args: [0x43e0_0000, 0, 0],
            aarch32: false,
        }
    }

    #[test]
    fn a_plan_from_kept_memory_into_the_vms_ram_is_accepted() {
        assert_eq!(plan().check(&ram()), Ok(()));
        assert_eq!(plan().bytes(), 32 * MIB + 4096);
    }

    #[test]
    fn an_original_inside_the_vms_own_ram_is_refused() {
        let mut p = plan();
        // The initrd's original overlaps the second chunk by one page.
        p.pieces[1].from = Range::new(PhysAddr(0x6000_0000 - 4096), 8192);
        assert_eq!(
            p.check(&ram()),
            Err(ReloadError::SourceInGuestRam {
                from: PhysAddr(0x6000_0000 - 4096)
            })
        );
        // ... and inside a 1:1 VM's further RAM too.
        let mut r = ram();
        r.extra.push(Range::new(PhysAddr(0x5000_0000), MIB));
        assert!(matches!(
            plan().check(&r),
            Err(ReloadError::SourceInGuestRam { .. })
        ));
    }

    #[test]
    fn a_destination_outside_the_vms_ram_is_refused() {
        let mut p = plan();
        p.dtb_ipa = Ipa(0x4400_0000 - 2048);
        assert_eq!(
            p.check(&ram()),
            Err(ReloadError::OutsideRam {
                to: Ipa(0x4400_0000 - 2048),
                size: 4096
            })
        );
        let mut p = plan();
        p.pieces[0].to = Ipa(0x3fff_f000);
        assert!(matches!(
            p.check(&ram()),
            Err(ReloadError::OutsideRam { .. })
        ));
        // The message is for people.
        let text = alloc::format!("{}", p.check(&ram()).unwrap_err());
        assert!(text.contains("outside the VM's RAM"), "{text}");
        assert!(!text.contains("Ipa("), "{text}");
    }

    #[test]
    fn resets_up_to_the_burst_are_never_delayed() {
        let mut l = Limiter::new();
        for t in 0..BURST as u64 {
            assert_eq!(l.next_allowed(t, 1000), None, "reset {t}");
            l.record(t);
        }
    }

    #[test]
    fn a_reset_loop_waits_for_the_window() {
        let mut l = Limiter::new();
        let window = 1000;
        for t in [10, 20, 30, 40] {
            l.record(t);
        }
        // The fifth within the window waits until the first leaves it.
        assert_eq!(l.next_allowed(50, window), Some(1010));
        assert_eq!(l.next_allowed(1009, window), Some(1010));
        assert_eq!(l.next_allowed(1010, window), None);
        l.record(1010);
        // Then one per window's worth of the oldest: the loop is slowed to
        // BURST resets per window, never stopped for good.
        assert_eq!(l.next_allowed(1011, window), Some(1020));
        assert_eq!(l.next_allowed(5000, window), None);
    }

    #[test]
    fn resets_spaced_out_more_than_window_over_burst_are_never_delayed() {
        let window = 100;
        // BURST resets span 4 * 26 = 104 ticks > the window: none waits.
        let mut l = Limiter::new();
        for t in (0..50u64).map(|i| i * 26) {
            assert_eq!(l.next_allowed(t, window), None, "at {t}");
            l.record(t);
        }
        // 4 * 24 = 96 < 100: from the fifth on, each waits 4 ticks.
        let mut l = Limiter::new();
        let mut waited = 0;
        for t in (0..50u64).map(|i| i * 24) {
            if let Some(at) = l.next_allowed(t, window) {
                assert!(at > t && at - t <= 4, "at {t}: waits until {at}");
                waited += 1;
            }
            l.record(t);
        }
        assert!(waited > 0);
    }

    #[test]
    fn a_time_near_the_end_of_the_counter_does_not_wrap() {
        let mut l = Limiter::new();
        for _ in 0..BURST {
            l.record(u64::MAX - 5);
        }
        assert_eq!(l.next_allowed(u64::MAX - 1, 100), Some(u64::MAX));
    }
}
