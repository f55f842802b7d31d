//! [`Mutex`]: a [`Semaphore`] of one permit guarding an `UnsafeCell`.
//!
//! # Mechanism
//!
//! Locking is acquiring the single permit; unlocking (dropping the guard) is
//! releasing it. Everything else comes from the semaphore:
//!
//! * uncontended `lock` and unlock are one compare-exchange each;
//! * contended lockers queue in FIFO order, and unlock **hands the lock over**
//!   to the first of them (the permit never returns to the pool, so a thread
//!   that unlocks and immediately locks again cannot barge in);
//! * dropping a pending [`Lock`] leaves the queue, and if the lock had
//!   already been handed to it, passes it to the next waiter.
//!
//! The guard may be held across `.await` points and green-thread switches,
//! and may be sent to another thread (it is not tied to the locking thread).

use std::cell::UnsafeCell;
use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::ops::{Deref, DerefMut};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use super::error::TryLockError;
use super::semaphore::{AcquireState, Semaphore};

/// A mutual-exclusion lock with FIFO handoff, usable from green threads,
/// stackless tasks and plain OS threads.
///
/// [`lock`](Mutex::lock) is a future; [`lock_blocking`](Mutex::lock_blocking)
/// parks only the calling green thread (or blocks an OS thread). Unlike
/// `std::sync::Mutex`, the guard may be held while waiting on anything.
///
/// # Examples
///
/// ```
/// use greenloop_runtime::{green, sync::Mutex};
/// use std::rc::Rc;
///
/// let total = green::run(|| {
///     let counter = Rc::new(Mutex::new(0u32));
///     let workers: Vec<_> = (0..4)
///         .map(|_| {
///             let counter = counter.clone();
///             green::spawn(move || {
///                 for _ in 0..100 {
///                     let mut n = counter.lock_blocking();
///                     green::yield_now(); // others queue up meanwhile
///                     *n += 1;
///                 }
///             })
///         })
///         .collect();
///     workers.into_iter().for_each(|w| w.join().unwrap());
///     *counter.lock_blocking()
/// });
/// assert_eq!(total, 400);
/// ```
pub struct Mutex<T: ?Sized> {
    sem: Semaphore,
    value: UnsafeCell<T>,
}

// SAFETY: the value is reached only through a guard, and a guard exists only
// while its holder owns the semaphore's single permit, so at most one thread
// at a time touches it; `T: Send` because that thread may be any thread.
unsafe impl<T: ?Sized + Send> Sync for Mutex<T> {}

impl<T> Mutex<T> {
    /// An unlocked mutex holding `value`.
    pub const fn new(value: T) -> Mutex<T> {
        Mutex { sem: Semaphore::new(1), value: UnsafeCell::new(value) }
    }

    /// The value, consuming the mutex.
    pub fn into_inner(self) -> T {
        self.value.into_inner()
    }
}

impl<T: ?Sized> Mutex<T> {
    /// Waits for the lock. Dropping the future gives up its place in the
    /// queue (and the lock, if it was already handed over).
    pub fn lock(&self) -> Lock<'_, T> {
        Lock { mutex: self, waiter: AcquireState::new(1) }
    }

    /// Blocking-style [`lock`](Mutex::lock): parks only the green thread
    /// inside the green runtime, blocks the OS thread elsewhere.
    pub fn lock_blocking(&self) -> MutexGuard<'_, T> {
        crate::block_on(self.lock())
    }

    /// Locks if the mutex is free and nobody waits for it.
    ///
    /// # Errors
    ///
    /// [`TryLockError`] if it is locked or others wait.
    pub fn try_lock(&self) -> Result<MutexGuard<'_, T>, TryLockError> {
        match self.sem.try_take(1) {
            Ok(()) => Ok(MutexGuard { mutex: self, _marker: PhantomData }),
            Err(_) => Err(TryLockError(())),
        }
    }

    /// Like [`lock`](Mutex::lock), with a guard that owns a reference to the
    /// mutex (for moving into spawned work).
    pub fn lock_owned(self: Arc<Self>) -> LockOwned<T> {
        LockOwned { mutex: Some(self), waiter: AcquireState::new(1) }
    }

    /// Blocking-style [`lock_owned`](Mutex::lock_owned).
    pub fn lock_owned_blocking(self: Arc<Self>) -> OwnedMutexGuard<T> {
        crate::block_on(self.lock_owned())
    }

    /// Like [`try_lock`](Mutex::try_lock), with an owned guard.
    ///
    /// # Errors
    ///
    /// [`TryLockError`] if it is locked or others wait.
    pub fn try_lock_owned(self: Arc<Self>) -> Result<OwnedMutexGuard<T>, TryLockError> {
        match self.sem.try_take(1) {
            Ok(()) => Ok(OwnedMutexGuard { mutex: self, _marker: PhantomData }),
            Err(_) => Err(TryLockError(())),
        }
    }

    /// The value, through an exclusive borrow (no locking needed).
    pub fn get_mut(&mut self) -> &mut T {
        self.value.get_mut()
    }
}

impl<T: Default> Default for Mutex<T> {
    fn default() -> Self {
        Mutex::new(T::default())
    }
}

impl<T> From<T> for Mutex<T> {
    fn from(value: T) -> Self {
        Mutex::new(value)
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for Mutex<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Mutex");
        match self.try_lock() {
            Ok(guard) => d.field("data", &&*guard),
            Err(_) => d.field("data", &format_args!("<locked>")),
        };
        d.finish()
    }
}

/// The future of [`Mutex::lock`]; cancel-safe (see [`Mutex::lock`]).
#[must_use = "futures do nothing unless polled"]
pub struct Lock<'a, T: ?Sized> {
    mutex: &'a Mutex<T>,
    waiter: AcquireState,
}

impl<'a, T: ?Sized> Future for Lock<'a, T> {
    type Output = MutexGuard<'a, T>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<MutexGuard<'a, T>> {
        let this = self.get_mut();
        let mutex = this.mutex;
        match this.waiter.poll(&mutex.sem, cx) {
            Poll::Pending => crate::dump::pending(crate::dump::Wait::Mutex),
            Poll::Ready(Ok(())) => Poll::Ready(MutexGuard { mutex, _marker: PhantomData }),
            Poll::Ready(Err(_)) => unreachable!("a mutex's semaphore is never closed"),
        }
    }
}

impl<T: ?Sized> Drop for Lock<'_, T> {
    fn drop(&mut self) {
        self.waiter.cancel(&self.mutex.sem);
    }
}

impl<T: ?Sized> fmt::Debug for Lock<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Lock").field("waiter", &self.waiter).finish_non_exhaustive()
    }
}

/// The future of [`Mutex::lock_owned`]; cancel-safe like [`Lock`].
#[must_use = "futures do nothing unless polled"]
pub struct LockOwned<T: ?Sized> {
    /// Taken when the guard is handed out.
    mutex: Option<Arc<Mutex<T>>>,
    waiter: AcquireState,
}

impl<T: ?Sized> Future for LockOwned<T> {
    type Output = OwnedMutexGuard<T>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<OwnedMutexGuard<T>> {
        let this = self.get_mut();
        let mutex = this.mutex.as_ref().expect("LockOwned polled after completion");
        match this.waiter.poll(&mutex.sem, cx) {
            Poll::Pending => crate::dump::pending(crate::dump::Wait::Mutex),
            Poll::Ready(Ok(())) => {
                let mutex = this.mutex.take().expect("checked above");
                Poll::Ready(OwnedMutexGuard { mutex, _marker: PhantomData })
            }
            Poll::Ready(Err(_)) => unreachable!("a mutex's semaphore is never closed"),
        }
    }
}

impl<T: ?Sized> Drop for LockOwned<T> {
    fn drop(&mut self) {
        if let Some(mutex) = &self.mutex {
            self.waiter.cancel(&mutex.sem);
        }
    }
}

impl<T: ?Sized> fmt::Debug for LockOwned<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LockOwned").field("waiter", &self.waiter).finish_non_exhaustive()
    }
}

/// Exclusive access to a [`Mutex`]'s value; unlocks (handing the lock to the
/// next waiter, if any) when dropped.
///
/// `Send` when `T: Send`, `Sync` when `T: Send + Sync`.
#[must_use = "dropping the guard unlocks the mutex at once"]
pub struct MutexGuard<'a, T: ?Sized> {
    mutex: &'a Mutex<T>,
    /// Makes the guard `Sync` only if `T: Sync` (`&Mutex<T>` alone would be
    /// `Sync` for any `T: Send`, yet a shared guard lends `&T`).
    _marker: PhantomData<&'a mut T>,
}

impl<T: ?Sized> Deref for MutexGuard<'_, T> {
    type Target = T;

    fn deref(&self) -> &T {
        // SAFETY: this guard holds the mutex's only permit (see `Mutex`'s
        // `Sync` impl), so no `&mut T` exists elsewhere.
        unsafe { &*self.mutex.value.get() }
    }
}

impl<T: ?Sized> DerefMut for MutexGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: as in `deref`, and `&mut self` makes this borrow unique.
        unsafe { &mut *self.mutex.value.get() }
    }
}

impl<T: ?Sized> Drop for MutexGuard<'_, T> {
    fn drop(&mut self) {
        self.mutex.sem.release(1);
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for MutexGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

impl<T: ?Sized + fmt::Display> fmt::Display for MutexGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&**self, f)
    }
}

/// Like [`MutexGuard`], holding an `Arc` of the mutex, so it is `'static`.
#[must_use = "dropping the guard unlocks the mutex at once"]
pub struct OwnedMutexGuard<T: ?Sized> {
    mutex: Arc<Mutex<T>>,
    /// As in [`MutexGuard`]: `Sync` only if `T: Sync`.
    _marker: PhantomData<T>,
}

impl<T: ?Sized> OwnedMutexGuard<T> {
    /// The mutex this guard locks.
    pub fn mutex(&self) -> &Arc<Mutex<T>> {
        &self.mutex
    }
}

impl<T: ?Sized> Deref for OwnedMutexGuard<T> {
    type Target = T;

    fn deref(&self) -> &T {
        // SAFETY: this guard holds the mutex's only permit, so no `&mut T`
        // exists elsewhere.
        unsafe { &*self.mutex.value.get() }
    }
}

impl<T: ?Sized> DerefMut for OwnedMutexGuard<T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: as in `deref`, and `&mut self` makes this borrow unique.
        unsafe { &mut *self.mutex.value.get() }
    }
}

impl<T: ?Sized> Drop for OwnedMutexGuard<T> {
    fn drop(&mut self) {
        self.mutex.sem.release(1);
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for OwnedMutexGuard<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

impl<T: ?Sized + fmt::Display> fmt::Display for OwnedMutexGuard<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&**self, f)
    }
}
