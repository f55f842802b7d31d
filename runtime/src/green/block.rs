//! Allocations of green threads' control blocks (`join.rs`'s `Shared<T>`),
//! recycled per OS thread.
//!
//! Every spawn allocates one control block and the last reference frees
//! it. With thousands of threads alive, the allocator's per-thread cache
//! holds too few blocks of one size and each allocation and free walks its
//! bins (about 200 instructions each, measured with callgrind). So freed
//! blocks go on this OS thread's free list, the most recently freed reused
//! first (its cache lines are likely still warm), up to [`MAX_FREE`]
//! blocks; beyond that, and for a type too big for a block, the global
//! allocator serves as usual.
//!
//! All pooled blocks have one layout, [`BLOCK`], so a block freed as one
//! type is reused as another and on any thread.
//!
//! # Unsafe invariants
//!
//! * A pointer on a free list is an allocation of the global allocator
//!   with layout [`BLOCK`], owned by the list alone (no value lives in it).
//! * [`alloc::<T>`] allocates with [`layout_of::<T>`], and [`free::<T>`]
//!   gives back with it, for the same `T`: a pure function of `T`, so the
//!   two always agree.

use std::alloc::{self, Layout};
use std::cell::RefCell;
use std::ptr::NonNull;

/// The layout of a pooled block: room for any control block of a result
/// type up to about 100 bytes.
const BLOCK: Layout = match Layout::from_size_align(256, 16) {
    Ok(layout) => layout,
    Err(_) => panic!("256 bytes at 16 is a valid layout"),
};

/// Most free blocks kept per OS thread: 4 MiB, as many as a burst of
/// spawns that the stack cache keeps stacks for.
const MAX_FREE: usize = 16 * 1024;

/// Free blocks of one OS thread (first invariant); given back to the
/// allocator when the thread exits.
struct FreeList(RefCell<Vec<NonNull<u8>>>);

impl Drop for FreeList {
    fn drop(&mut self) {
        for block in self.0.get_mut().drain(..) {
            // SAFETY: a free block was allocated with BLOCK and is owned by
            // the list alone (first invariant), which forgets it here.
            unsafe { alloc::dealloc(block.as_ptr(), BLOCK) };
        }
    }
}

thread_local! {
    static FREE: FreeList = const { FreeList(RefCell::new(Vec::new())) };
}

/// The layout a `T` is allocated with: [`BLOCK`] if it fits in one.
fn layout_of<T>() -> Layout {
    let own = Layout::new::<T>();
    if own.size() <= BLOCK.size() && own.align() <= BLOCK.align() { BLOCK } else { own }
}

/// Uninitialised memory for one `T`, pooled if it fits a block. `T` must
/// not be zero-sized.
///
/// # Panics
///
/// If `T` is zero-sized; aborts if the allocator fails.
pub(super) fn alloc<T>() -> NonNull<T> {
    let layout = layout_of::<T>();
    assert!(layout.size() > 0, "block::alloc of a zero-sized type");
    if layout == BLOCK
        && let Ok(Some(block)) = FREE.try_with(|free| free.0.borrow_mut().pop())
    {
        return block.cast();
    }
    // SAFETY: `layout` has a non-zero size (asserted above).
    let raw = unsafe { alloc::alloc(layout) };
    match NonNull::new(raw) {
        Some(raw) => raw.cast(),
        None => alloc::handle_alloc_error(layout),
    }
}

/// Gives back the memory of a `T` whose value was already dropped (or
/// never written).
///
/// # Safety
///
/// `ptr` came from [`alloc::<T>`] with the same `T`, holds no live value,
/// and is not used afterwards.
pub(super) unsafe fn free<T>(ptr: NonNull<T>) {
    let layout = layout_of::<T>();
    let block = ptr.cast::<u8>();
    if layout == BLOCK {
        let kept = FREE.try_with(|free| {
            let mut free = free.0.borrow_mut();
            let keep = free.len() < MAX_FREE;
            if keep {
                free.push(block);
            }
            keep
        });
        if kept == Ok(true) {
            return;
        }
    }
    // SAFETY: allocated by `alloc::<T>` with `layout_of::<T>()` (second
    // invariant), unused now (the caller's contract), not on a list.
    unsafe { alloc::dealloc(block.as_ptr(), layout) };
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A freed block is the next one handed out, for another type too;
    /// a type bigger than a block gets its own allocation.
    #[test]
    fn blocks_are_reused_most_recent_first() {
        let a = alloc::<[u64; 4]>();
        let b = alloc::<[u64; 4]>();
        assert_ne!(a.cast::<u8>(), b.cast::<u8>());
        // SAFETY: both from `alloc::<[u64; 4]>`, never written, not used again.
        unsafe {
            free(a);
            free(b);
        }
        let c = alloc::<u128>();
        assert_eq!(c.cast::<u8>(), b.cast::<u8>(), "the most recently freed block first");
        assert_eq!(c.as_ptr() as usize % 16, 0);
        let big = alloc::<[u8; 1024]>();
        assert_eq!(layout_of::<[u8; 1024]>().size(), 1024);
        // SAFETY: each from `alloc` with its own type, unused.
        unsafe {
            free(c);
            free(big);
        }
        let before = FREE.with(|f| f.0.borrow().len());
        assert!((2..=MAX_FREE).contains(&before), "{before} free blocks");
    }

    /// The free list stops growing at `MAX_FREE`.
    #[test]
    fn free_list_is_bounded() {
        std::thread::spawn(|| {
            let blocks: Vec<_> = (0..MAX_FREE + 10).map(|_| alloc::<u64>()).collect();
            for block in blocks {
                // SAFETY: from `alloc::<u64>`, never written, not used again.
                unsafe { free(block) };
            }
            assert_eq!(FREE.with(|f| f.0.borrow().len()), MAX_FREE);
        })
        .join()
        .unwrap();
    }
}
