//! A global allocator that wraps the system's and counts: allocations and held bytes per thread
//! (what a piece of code on this thread asked for less what it freed), and live heap bytes for
//! the whole process. Tests and benches install it with `#[global_allocator]` to measure memory
//! exactly instead of from RSS. It only counts; it never changes what is allocated, and
//! promfetcher itself never links it.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicUsize, Ordering};

/// The counting allocator; install it with
/// `#[global_allocator] static ALLOCATOR: CountingAllocator = CountingAllocator;`.
pub struct CountingAllocator;

static LIVE: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
    static HELD: Cell<isize> = const { Cell::new(0) };
}

/// Allocations and reallocations made by the current thread so far.
pub fn thread_allocations() -> usize {
    ALLOCATIONS.with(Cell::get)
}

/// Bytes the current thread's allocations asked for, less what it freed (a block freed by
/// another thread counts there).
pub fn thread_held_bytes() -> isize {
    HELD.with(Cell::get)
}

/// Heap bytes live in the whole process.
pub fn live_bytes() -> usize {
    LIVE.load(Ordering::Relaxed)
}

fn count(asked: usize, freed: usize) {
    ALLOCATIONS.with(|count| count.set(count.get() + 1));
    held(asked as isize - freed as isize);
    LIVE.fetch_add(asked, Ordering::Relaxed);
    LIVE.fetch_sub(freed, Ordering::Relaxed);
}

fn held(bytes: isize) {
    HELD.with(|held| held.set(held.get() + bytes));
}

// SAFETY: every call is passed on unchanged to the system allocator; counting only touches an
// atomic and const-initialised thread-locals, neither of which allocates.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count(layout.size(), 0);
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        held(-(layout.size() as isize));
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count(new_size, layout.size());
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}
