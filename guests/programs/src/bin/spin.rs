//! `spin`: a guest that only computes, for scheduling tests.
//!
//! Counts to `count=N` from the bootargs (default 1 000 000), printing progress
//! every `every=M` iterations (default 100 000) with the virtual counter's value
//! then (so a test can take the guest's progress per tick of its own clock), then
//! PASS.

#![no_std]
#![no_main]
#![deny(unsafe_op_in_unsafe_fn)]
#![deny(clippy::undocumented_unsafe_blocks)]

use rt::{Boot, Fail, fail, say};

rt::guest!("spin", main);

const DEFAULT_COUNT: u64 = 1_000_000;
const DEFAULT_EVERY: u64 = 100_000;

fn number(boot: &Boot, key: &str, default: u64) -> Result<u64, Fail> {
    match boot.bootarg(key) {
        None => Ok(default),
        Some(text) => text.parse().map_err(|_| fail!("bad {key}={text}")),
    }
}

fn main(boot: &Boot) -> Result<(), Fail> {
    let count = number(boot, "count", DEFAULT_COUNT)?;
    let every = number(boot, "every", DEFAULT_EVERY)?.max(1);
    say!("counting to {count}, progress every {every}");
    let start = rt::sysreg::counter();
    let mut i: u64 = 0;
    while i < count {
        i = core::hint::black_box(i) + 1;
        if i.is_multiple_of(every) {
            say!("progress {i}/{count} counter={}", rt::sysreg::counter());
        }
    }
    let ticks = rt::sysreg::counter().wrapping_sub(start);
    say!("done count={i} ticks={ticks}");
    Ok(())
}
