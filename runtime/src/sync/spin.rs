//! [`SpinLock`]: the short lock every primitive of [`sync`](super) keeps its
//! state and its waiter queue under.
//!
//! # The rule: no foreign code under the lock
//!
//! A critical section is a handful of instructions of this crate (push or
//! pop a message, link or unlink a waiter) and never suspends or parks.
//! Code that comes from elsewhere runs after the lock is released:
//!
//! * wakers are *taken* under the lock and woken after it
//!   ([`Wakes`](super::waiters::Wakes), `WakerSlot::wake`): a waker may be
//!   another executor's, whose `wake` polls inline or uses this very
//!   primitive (`try_send` from a `wake`), and would spin forever on the
//!   lock its own thread holds;
//! * displaced or removed wakers, and messages the primitive discards, are
//!   dropped after it: a drop may run any code.
//!
//! Two calls that leave this module stay under the lock. `Waker::clone`,
//! when a waiter registers a new waker, as in async-io and tokio: a clone
//! that blocks or touches the primitive it waits on would break this lock.
//! And the wake of this crate's own wakers, a task's (`task::is_task_waker`)
//! or a green thread's (`green::is_green_waker`), which only queue their
//! task or thread (`Schedule::schedule` and `Control::signal` promise it):
//! woken in place, they stay registered and a wait takes no reference
//! count.
//!
//! # Why not `std::sync::Mutex`
//!
//! For such short sections the cost is the
//! atomic read-modify-write instructions, and `std::sync::Mutex` pays two
//! per section (a compare-exchange to lock, a swap to unlock, since unlock
//! must learn whether to wake a sleeper). This lock pays one: it never puts
//! a thread to sleep, so unlocking is a plain release store. Measured on the
//! channel round trip, that is a third of the channel's cost.
//!
//! # Contention
//!
//! A contended `lock` spins with exponential backoff (test-and-test-and-set,
//! so spinners only read the shared line), then falls back to
//! `std::thread::yield_now`, so a holder that was preempted gets the CPU
//! back. The holder is always a running OS thread: a green thread never
//! switches while it holds the lock (nothing under it parks, and no foreign
//! code runs that could), so spinning never waits for a green thread of its
//! own OS thread.

use std::cell::UnsafeCell;
use std::fmt;
use std::hint;
use std::marker::PhantomData;
use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicBool, Ordering};

/// Spins before the contended path starts yielding the OS thread
/// (each spin round doubles, up to `1 << SPIN_ROUNDS` pause instructions).
const SPIN_ROUNDS: u32 = 6;

/// A spin lock for short critical sections that never suspend.
pub(crate) struct SpinLock<T> {
    locked: AtomicBool,
    value: UnsafeCell<T>,
}

// SAFETY: the value is reached only through a guard, and `locked` admits one
// guard at a time (acquire on lock, release on unlock order the accesses), so
// sharing the lock shares `T` between threads only by moving access, which
// needs `T: Send`.
unsafe impl<T: Send> Sync for SpinLock<T> {}

impl<T> SpinLock<T> {
    /// An unlocked lock holding `value`.
    pub(crate) const fn new(value: T) -> SpinLock<T> {
        SpinLock { locked: AtomicBool::new(false), value: UnsafeCell::new(value) }
    }

    /// Locks, spinning (then yielding) while another thread holds it.
    #[inline]
    pub(crate) fn lock(&self) -> SpinGuard<'_, T> {
        if self
            .locked
            .compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            self.lock_contended();
        }
        SpinGuard { lock: self, _marker: PhantomData }
    }

    #[cold]
    fn lock_contended(&self) {
        let mut round = 0;
        loop {
            while self.locked.load(Ordering::Relaxed) {
                if round < SPIN_ROUNDS {
                    for _ in 0..1u32 << round {
                        hint::spin_loop();
                    }
                    round += 1;
                } else {
                    std::thread::yield_now();
                }
            }
            // false -> true: taken
            if self
                .locked
                .compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed)
                .is_ok()
            {
                return;
            }
        }
    }
}

impl<T: Default> Default for SpinLock<T> {
    fn default() -> Self {
        SpinLock::new(T::default())
    }
}

impl<T> fmt::Debug for SpinLock<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SpinLock").field("locked", &self.locked.load(Ordering::Relaxed)).finish()
    }
}

/// Access to a [`SpinLock`]'s value; unlocks when dropped (also when
/// unwinding).
pub(crate) struct SpinGuard<'a, T> {
    lock: &'a SpinLock<T>,
    /// `Sync` only if `T: Sync`, as the guard lends `&T`.
    _marker: PhantomData<&'a mut T>,
}

impl<T> Deref for SpinGuard<'_, T> {
    type Target = T;

    #[inline]
    fn deref(&self) -> &T {
        // SAFETY: the guard exists only while `locked` is held by it, so no
        // other reference to the value exists (see the `Sync` impl).
        unsafe { &*self.lock.value.get() }
    }
}

impl<T> DerefMut for SpinGuard<'_, T> {
    #[inline]
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: as in `deref`; `&mut self` makes this borrow unique.
        unsafe { &mut *self.lock.value.get() }
    }
}

impl<T> Drop for SpinGuard<'_, T> {
    #[inline]
    fn drop(&mut self) {
        self.lock.locked.store(false, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::SpinLock;
    use std::sync::Arc;

    #[test]
    fn excludes_across_threads() {
        let lock = Arc::new(SpinLock::new(0u64));
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let lock = lock.clone();
                std::thread::spawn(move || {
                    for _ in 0..10_000 {
                        let mut n = lock.lock();
                        let read = *n;
                        std::hint::black_box(&mut *n);
                        *n = read + 1;
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(*lock.lock(), 40_000);
    }
}
