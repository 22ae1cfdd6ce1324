//! A byte ring between one producer and one consumer, without a lock: the
//! debug UART's receive ring (filled by its interrupt or by a poll, emptied by
//! the console, the GDB stub and the snapshot transfer) and its transmit ring
//! (filled by writers, emptied into the FIFO when it has room).
//!
//! Each side is one party at a time (the caller serialises producers among
//! themselves, and consumers among themselves); the two sides run concurrently
//! on different CPUs. Positions are free-running counters: `head - tail` is
//! the fill level, the slot is the counter modulo `N` (a power of two). The
//! bytes are atomics stored and loaded relaxed (plain byte accesses on
//! AArch64), published by the release store of `head` (producer) or `tail`
//! (consumer), so the module needs no `unsafe`.
#![forbid(unsafe_code)]

use core::sync::atomic::{AtomicU8, AtomicUsize, Ordering};

/// A ring of `N` bytes (`N` a power of two).
pub struct Ring<const N: usize> {
    buf: [AtomicU8; N],
    /// Bytes ever pushed (the producer's).
    head: AtomicUsize,
    /// Bytes ever taken (the consumer's).
    tail: AtomicUsize,
}

impl<const N: usize> Default for Ring<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> Ring<N> {
    const POWER_OF_TWO: () = assert!(N.is_power_of_two());

    pub const fn new() -> Self {
        #[allow(clippy::let_unit_value)]
        let () = Self::POWER_OF_TWO;
        Self {
            buf: [const { AtomicU8::new(0) }; N],
            head: AtomicUsize::new(0),
            tail: AtomicUsize::new(0),
        }
    }

    /// Bytes waiting.
    pub fn len(&self) -> usize {
        let tail = self.tail.load(Ordering::Acquire);
        self.head.load(Ordering::Acquire).wrapping_sub(tail)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Room left.
    pub fn free(&self) -> usize {
        N - self.len()
    }

    /// Producer: appends as many of `bytes` as fit; returns how many.
    pub fn push(&self, bytes: &[u8]) -> usize {
        let head = self.head.load(Ordering::Relaxed);
        let tail = self.tail.load(Ordering::Acquire);
        let n = bytes.len().min(N - head.wrapping_sub(tail));
        for (i, &b) in bytes[..n].iter().enumerate() {
            self.buf[head.wrapping_add(i) % N].store(b, Ordering::Relaxed);
        }
        self.head.store(head.wrapping_add(n), Ordering::Release);
        n
    }

    /// Consumer: copies up to `out.len()` of the oldest bytes into `out`
    /// without taking them; returns how many. [`Ring::consume`] takes them.
    pub fn peek(&self, out: &mut [u8]) -> usize {
        let tail = self.tail.load(Ordering::Relaxed);
        let head = self.head.load(Ordering::Acquire);
        let n = out.len().min(head.wrapping_sub(tail));
        for (i, o) in out[..n].iter_mut().enumerate() {
            *o = self.buf[tail.wrapping_add(i) % N].load(Ordering::Relaxed);
        }
        n
    }

    /// Consumer: drops the `n` oldest bytes (at most what waits).
    pub fn consume(&self, n: usize) {
        let tail = self.tail.load(Ordering::Relaxed);
        let n = n.min(self.head.load(Ordering::Acquire).wrapping_sub(tail));
        self.tail.store(tail.wrapping_add(n), Ordering::Release);
    }

    /// Consumer: takes up to `out.len()` of the oldest bytes; returns how many.
    pub fn pop(&self, out: &mut [u8]) -> usize {
        let n = self.peek(out);
        self.consume(n);
        n
    }

    /// Consumer: takes the oldest byte.
    pub fn pop_byte(&self) -> Option<u8> {
        let mut b = [0];
        (self.pop(&mut b) == 1).then_some(b[0])
    }
}
