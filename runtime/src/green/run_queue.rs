//! The green run queue: a FIFO of runnable green threads in a power-of-two
//! ring. The scheduler queues each thread as a pointer to its coroutine
//! box (`scheduler.rs`); the queue itself only copies values of a `Copy`
//! type (keys, in the tests below).
//!
//! ```text
//!   slots  [ .  .  7  3  9  .  .  . ]    8 slots, mask 7
//!                  ^head    ^tail        head = pops so far, tail = pushes
//!                                        so far (both wrapping); a count
//!                                        c lives in slot c & mask
//! ```
//!
//! A pop reads `slots[head & mask]` and counts `head` up; a push writes
//! `slots[tail & mask]` and counts `tail` up; `tail - head` is the length.
//! A push into a full ring first moves the entries, in order, into a ring of
//! twice the size (at least [`MIN_SLOTS`]); the ring never shrinks, so a
//! scheduler's queue settles at its largest backlog and then never
//! allocates. Each of pop and push is a handful of plain loads and stores:
//! no borrow flag to set and clear (as a `RefCell` has) and no wrap-around
//! arithmetic on an arbitrary capacity (as `VecDeque` has). It is the
//! hottest structure of a switch.
//!
//! # Unsafe invariants
//!
//! The ring is empty or holds a power of two of slots, and `tail - head`
//! never exceeds their number, so a queue that holds an entry (or has room
//! for one) has slots, and a count masked by their number less one is an
//! index into them: `pop` and `push` index without a bounds check.
//!
//! The slots sit in an `UnsafeCell` because the queue is used through
//! `&self` (the scheduler is shared on its thread) and a full push replaces
//! them. A shared reference to the slots is made only by [`RunQueue::slots`],
//! and every caller drops it before anything could replace them: it calls
//! only `Cell` methods, arithmetic and allocation while it holds one. The
//! one writer is [`RunQueue::grow`], which holds no other reference to the
//! slots when it stores the new ones. The queue is `!Sync` (an
//! `UnsafeCell`), so all of this happens on one thread.

use std::cell::{Cell, UnsafeCell};
use std::fmt;

/// Slots of the first ring a push makes.
const MIN_SLOTS: usize = 64;

/// A FIFO of runnable green threads (module docs).
pub(super) struct RunQueue<T: Copy> {
    /// The ring: empty, or a power of two of slots (module invariants).
    slots: UnsafeCell<Box<[Cell<T>]>>,
    /// Pops so far, wrapping.
    head: Cell<usize>,
    /// Pushes so far, wrapping.
    tail: Cell<usize>,
}

impl<T: Copy> RunQueue<T> {
    /// An empty queue; its first push allocates.
    pub(super) fn new() -> RunQueue<T> {
        RunQueue { slots: UnsafeCell::new(Box::new([])), head: Cell::new(0), tail: Cell::new(0) }
    }

    /// The ring's slots; the reference must be dropped before anything
    /// that could call [`RunQueue::grow`] (module invariants).
    #[inline(always)]
    fn slots(&self) -> &[Cell<T>] {
        // SAFETY: only `grow` writes the box, and no reference from here
        // lives across it (module invariants).
        unsafe { &*self.slots.get() }
    }

    /// Number of queued entries.
    #[inline]
    pub(super) fn len(&self) -> usize {
        self.tail.get().wrapping_sub(self.head.get())
    }

    /// Whether nothing is queued.
    #[inline]
    pub(super) fn is_empty(&self) -> bool {
        self.head.get() == self.tail.get()
    }

    /// The oldest entry, taken out of the queue.
    #[inline(always)]
    pub(super) fn pop(&self) -> Option<T> {
        let head = self.head.get();
        if head == self.tail.get() {
            return None;
        }
        let slots = self.slots();
        // SAFETY: the queue holds an entry, so the ring has slots: a power of
        // two of them (module invariants), and the masked count is below it.
        let entry = unsafe { slots.get_unchecked(head & (slots.len() - 1)) }.get();
        self.head.set(head.wrapping_add(1));
        Some(entry)
    }

    /// Queues `entry` behind the others.
    #[inline(always)]
    pub(super) fn push(&self, entry: T) {
        let tail = self.tail.get();
        let slots = self.slots();
        if tail.wrapping_sub(self.head.get()) == slots.len() {
            return self.grow_and_push(entry);
        }
        // SAFETY: the ring is not full, so it has slots: a power of two of
        // them (module invariants), and the masked count is below it.
        unsafe { slots.get_unchecked(tail & (slots.len() - 1)) }.set(entry);
        self.tail.set(tail.wrapping_add(1));
    }

    /// `push` into a full ring: doubles it first.
    #[cold]
    #[inline(never)]
    fn grow_and_push(&self, entry: T) {
        self.grow(entry);
        self.push(entry);
    }

    /// Moves the entries, oldest first, into a ring twice as large (at
    /// least `MIN_SLOTS`); the free slots hold copies of `fill`.
    fn grow(&self, fill: T) {
        let len = self.len();
        let size = (2 * self.slots().len()).max(MIN_SLOTS);
        let mut slots = Vec::with_capacity(size);
        self.for_each(|entry| slots.push(Cell::new(entry)));
        slots.resize_with(size, || Cell::new(fill));
        let slots = slots.into_boxed_slice();
        // SAFETY: no reference from `slots()` lives here (module invariants):
        // `for_each` dropped its own, and this is the only writer.
        unsafe { *self.slots.get() = slots };
        self.head.set(0);
        self.tail.set(len);
    }

    /// Calls `f` with each queued entry, oldest first. `f` must not reach
    /// this queue: it runs while the ring is borrowed.
    pub(super) fn for_each(&self, mut f: impl FnMut(T)) {
        let slots = self.slots();
        let mask = slots.len().wrapping_sub(1);
        let head = self.head.get();
        for i in 0..self.len() {
            f(slots[head.wrapping_add(i) & mask].get());
        }
    }

    /// The queued entries, oldest first.
    fn entries(&self) -> Vec<T> {
        let mut entries = Vec::with_capacity(self.len());
        self.for_each(|entry| entries.push(entry));
        entries
    }

    /// Forgets every queued entry (the ring stays allocated).
    pub(super) fn clear(&self) {
        self.head.set(self.tail.get());
    }
}

impl<T: Copy + fmt::Debug> fmt::Debug for RunQueue<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.entries()).finish()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;

    use proptest::prelude::*;

    use super::{MIN_SLOTS, RunQueue};

    /// Keys come out in the order they went in, across growth and across
    /// the wrap of the counts inside a ring.
    #[test]
    fn fifo_across_growth_and_wrap() {
        let queue = RunQueue::<usize>::new();
        let mut model = VecDeque::new();
        assert_eq!(queue.pop(), None);
        for round in 0..3 * MIN_SLOTS {
            queue.push(round);
            queue.push(round + 1_000);
            model.push_back(round);
            model.push_back(round + 1_000);
            assert_eq!(queue.pop(), model.pop_front());
        }
        assert_eq!(queue.entries(), Vec::from(model));
    }

    /// The counts wrap around `usize::MAX` without losing a key.
    #[test]
    fn counts_wrap_around() {
        let queue = RunQueue::<usize>::new();
        queue.head.set(usize::MAX - 2);
        queue.tail.set(usize::MAX - 2);
        for key in 0..MIN_SLOTS + 5 {
            queue.push(key);
        }
        assert_eq!(queue.len(), MIN_SLOTS + 5);
        let popped: Vec<usize> = std::iter::from_fn(|| queue.pop()).collect();
        assert_eq!(popped, (0..MIN_SLOTS + 5).collect::<Vec<_>>());
        assert!(queue.is_empty());
    }

    proptest! {
        /// Any sequence of pushes, pops and clears matches a `VecDeque`.
        #[test]
        fn matches_a_vecdeque(ops in proptest::collection::vec(0u8..7, 0..600)) {
            let queue = RunQueue::<usize>::new();
            let mut model = VecDeque::new();
            for (i, op) in ops.into_iter().enumerate() {
                match op {
                    0..=3 => {
                        queue.push(i);
                        model.push_back(i);
                    }
                    4 | 5 => prop_assert_eq!(queue.pop(), model.pop_front()),
                    _ if i % 5 == 0 => {
                        queue.clear();
                        model.clear();
                    }
                    _ => {}
                }
                prop_assert_eq!(queue.len(), model.len());
                prop_assert_eq!(queue.is_empty(), model.is_empty());
            }
            prop_assert_eq!(queue.entries(), Vec::from(model));
        }
    }
}
