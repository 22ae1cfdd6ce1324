//! The global allocator: page tables and guest device trees come from a fixed heap
//! the linker script reserves inside the image.
//!
//! The boot CPU allocates the hypervisor's own page tables before the MMU is on,
//! when no lock can be taken (exclusives need cacheable memory). So the allocator
//! takes its lock only once the MMU is on; before that, only the boot CPU runs and
//! interrupts are masked, so there is no one to exclude.

use core::alloc::{GlobalAlloc, Layout};
use core::cell::UnsafeCell;
use core::ptr::NonNull;
use linked_list_allocator::Heap;
use spin::Mutex;

struct HvHeap {
    heap: UnsafeCell<Heap>,
    lock: Mutex<()>,
}

// SAFETY: all access to `heap` is serialised: by `lock` once the MMU is on, and by
// there being a single CPU with interrupts masked before.
unsafe impl Sync for HvHeap {}

impl HvHeap {
    fn with<R>(&self, f: impl FnOnce(&mut Heap) -> R) -> R {
        let _guard = crate::arch::mmu::is_on().then(|| self.lock.lock());
        // SAFETY: exclusive access as argued on the `Sync` impl.
        f(unsafe { &mut *self.heap.get() })
    }
}

#[global_allocator]
static HEAP: HvHeap = HvHeap {
    heap: UnsafeCell::new(Heap::empty()),
    lock: Mutex::new(()),
};

// SAFETY: delegates to linked_list_allocator's Heap, which returns blocks of at least
// the requested size and alignment, or null.
unsafe impl GlobalAlloc for HvHeap {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        self.with(|h| {
            h.allocate_first_fit(layout)
                .map_or(core::ptr::null_mut(), |p| p.as_ptr())
        })
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if let Some(p) = NonNull::new(ptr) {
            // SAFETY: the caller passes a pointer this allocator returned, with its layout.
            self.with(|h| unsafe { h.deallocate(p, layout) })
        }
    }
}

pub fn init() {
    let (start, end) = crate::arch::heap_range();
    // SAFETY: the linker script reserves [start, end) for the heap alone; init runs
    // once, on the boot CPU, before anything allocates.
    HEAP.with(|h| unsafe { h.init(start as *mut u8, end - start) });
}

/// Bytes in use and free.
pub fn usage() -> (usize, usize) {
    HEAP.with(|h| (h.used(), h.free()))
}
