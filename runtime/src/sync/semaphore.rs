//! [`Semaphore`]: a count of permits with a FIFO of waiters; the core the
//! [`Mutex`](super::Mutex) is built on.
//!
//! # Mechanism
//!
//! One atomic word holds the available permits and two flags; the waiters
//! live in a [`WaitList`] under a short spin lock (`spin.rs`):
//!
//! ```text
//!   state: [ permits ........................ | WAITERS | CLOSED ]
//!            bits 2..                            bit 1     bit 0
//! ```
//!
//! * **Fast paths** touch only the word. An acquire with `WAITERS` clear and
//!   enough permits takes them with one compare-exchange; a release with
//!   `WAITERS` clear adds them with one compare-exchange. Neither locks nor
//!   allocates.
//! * `WAITERS` is set and cleared only under the lock, and mirrors "the list
//!   is non-empty". While it is set, no fast path moves permits: acquirers
//!   queue behind the waiters (FIFO, no barging) and releasers take the lock
//!   and **hand the permits directly** to the waiters at the head, in order,
//!   waking them after the lock is dropped. A waiter asking for `n` permits
//!   blocks those behind it until `n` are free.
//! * A slow acquirer sets `WAITERS` with a compare-exchange on the whole
//!   word, so a concurrent fast release either lands first (and the acquirer
//!   sees the permits) or sees the flag and serves it: no lost wake-up.
//!
//! # Cancel safety
//!
//! Dropping a pending [`Acquire`] removes its waiter. If it had already been
//! handed its permits (served, not yet polled), they are released again and
//! go to the next waiters; if it was waiting at the head, the waiters behind
//! it are re-checked, since they may fit in the free permits now.

mod permit;

pub use permit::{Acquire, AcquireOwned, OwnedSemaphorePermit, SemaphorePermit};

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};

use super::error::{AcquireError, TryAcquireError};
use super::spin::SpinLock;
use super::waiters::{Phase, WaitList, Wakes};

const CLOSED: usize = 1;
const WAITERS: usize = 2;
const SHIFT: u32 = 2;

/// What a queued acquirer asked for and how it was served.
#[derive(Debug)]
struct Waiter {
    need: usize,
    /// Set when unlinked by `close` rather than handed permits.
    closed: bool,
}

/// A counting semaphore with FIFO fairness, usable from green threads,
/// stackless tasks and plain OS threads.
///
/// Permits are returned when the [`SemaphorePermit`] (or
/// [`OwnedSemaphorePermit`]) is dropped. Waiters are served strictly in
/// arrival order: a `try_acquire` fails while anyone waits, and a waiter
/// asking for many permits holds back the ones behind it.
///
/// # Examples
///
/// ```
/// use greenloop_runtime::{green, sync::Semaphore};
/// use std::{rc::Rc, cell::Cell, time::Duration};
///
/// // At most two of the five workers run the guarded section at once.
/// let peak = green::run(|| {
///     let sem = Rc::new(Semaphore::new(2));
///     let (now, peak) = (Rc::new(Cell::new(0)), Rc::new(Cell::new(0)));
///     let workers: Vec<_> = (0..5)
///         .map(|_| {
///             let (sem, now, peak) = (sem.clone(), now.clone(), peak.clone());
///             green::spawn(move || {
///                 let _permit = sem.acquire_blocking().unwrap();
///                 now.set(now.get() + 1);
///                 peak.set(peak.get().max(now.get()));
///                 green::sleep(Duration::from_millis(1));
///                 now.set(now.get() - 1);
///             })
///         })
///         .collect();
///     workers.into_iter().for_each(|w| w.join().unwrap());
///     peak.get()
/// });
/// assert_eq!(peak, 2);
/// ```
pub struct Semaphore {
    state: AtomicUsize,
    waiters: SpinLock<WaitList<Waiter>>,
}

impl Semaphore {
    /// The largest number of permits a semaphore can hold.
    pub const MAX_PERMITS: usize = usize::MAX >> SHIFT;

    /// A semaphore with `permits` permits.
    ///
    /// # Panics
    ///
    /// If `permits` exceeds [`MAX_PERMITS`](Semaphore::MAX_PERMITS).
    pub const fn new(permits: usize) -> Semaphore {
        assert!(permits <= Semaphore::MAX_PERMITS, "Semaphore::new: too many permits");
        Semaphore {
            state: AtomicUsize::new(permits << SHIFT),
            waiters: SpinLock::new(WaitList::new()),
        }
    }

    /// Permits available right now (a snapshot).
    pub fn available_permits(&self) -> usize {
        self.state.load(Ordering::Acquire) >> SHIFT
    }

    /// Whether [`close`](Semaphore::close) was called.
    pub fn is_closed(&self) -> bool {
        self.state.load(Ordering::Acquire) & CLOSED != 0
    }

    /// Closes the semaphore: pending and future acquires fail with
    /// [`AcquireError`]. Permits already held stay valid and may still be
    /// released.
    pub fn close(&self) {
        let mut wakes = Wakes::new();
        {
            let mut list = self.waiters.lock();
            self.state.fetch_or(CLOSED, Ordering::AcqRel);
            list.drain(|w| w.closed = true, &mut wakes);
            self.state.fetch_and(!WAITERS, Ordering::AcqRel);
        }
        wakes.wake_all();
    }

    /// Adds `n` permits, serving waiters first.
    ///
    /// # Panics
    ///
    /// If the count would exceed [`MAX_PERMITS`](Semaphore::MAX_PERMITS).
    pub fn add_permits(&self, n: usize) {
        self.release(n);
    }

    /// Takes one permit if one is free and nobody waits.
    ///
    /// # Errors
    ///
    /// [`TryAcquireError::NoPermits`] if none is free or others wait;
    /// [`TryAcquireError::Closed`] if the semaphore is closed.
    pub fn try_acquire(&self) -> Result<SemaphorePermit<'_>, TryAcquireError> {
        self.try_acquire_many(1)
    }

    /// Takes `n` permits at once if they are free and nobody waits.
    ///
    /// # Errors
    ///
    /// As [`try_acquire`](Semaphore::try_acquire).
    pub fn try_acquire_many(&self, n: usize) -> Result<SemaphorePermit<'_>, TryAcquireError> {
        self.try_take(n)?;
        Ok(SemaphorePermit { sem: self, permits: n })
    }

    /// [`try_acquire_many`](Semaphore::try_acquire_many) with a permit that
    /// owns a reference to the semaphore.
    ///
    /// # Errors
    ///
    /// As [`try_acquire`](Semaphore::try_acquire).
    pub fn try_acquire_many_owned(
        self: Arc<Self>,
        n: usize,
    ) -> Result<OwnedSemaphorePermit, TryAcquireError> {
        self.try_take(n)?;
        Ok(OwnedSemaphorePermit { sem: self, permits: n })
    }

    /// Waits for one permit. The future's output is `Err` only if the
    /// semaphore is closed. Dropping it gives up its place in the queue
    /// (and any permit it was already handed).
    pub fn acquire(&self) -> Acquire<'_> {
        self.acquire_many(1)
    }

    /// Waits for `n` permits, taken all at once (see
    /// [`acquire`](Semaphore::acquire)). Waiting for more than
    /// [`MAX_PERMITS`](Semaphore::MAX_PERMITS) never ends.
    pub fn acquire_many(&self, n: usize) -> Acquire<'_> {
        Acquire { sem: self, waiter: AcquireState::new(n) }
    }

    /// Like [`acquire`](Semaphore::acquire), with a permit that owns a
    /// reference to the semaphore (for moving into spawned work).
    pub fn acquire_owned(self: Arc<Self>) -> AcquireOwned {
        self.acquire_many_owned(1)
    }

    /// Like [`acquire_many`](Semaphore::acquire_many), with an owned permit.
    pub fn acquire_many_owned(self: Arc<Self>, n: usize) -> AcquireOwned {
        AcquireOwned { sem: Some(self), waiter: AcquireState::new(n) }
    }

    /// Blocking-style [`acquire`](Semaphore::acquire): parks only the green
    /// thread inside the green runtime, blocks the OS thread elsewhere.
    ///
    /// # Errors
    ///
    /// [`AcquireError`] if the semaphore is closed.
    pub fn acquire_blocking(&self) -> Result<SemaphorePermit<'_>, AcquireError> {
        crate::block_on(self.acquire())
    }

    /// Blocking-style [`acquire_many`](Semaphore::acquire_many).
    ///
    /// # Errors
    ///
    /// [`AcquireError`] if the semaphore is closed.
    pub fn acquire_many_blocking(&self, n: usize) -> Result<SemaphorePermit<'_>, AcquireError> {
        crate::block_on(self.acquire_many(n))
    }

    /// Blocking-style [`acquire_owned`](Semaphore::acquire_owned).
    ///
    /// # Errors
    ///
    /// [`AcquireError`] if the semaphore is closed.
    pub fn acquire_owned_blocking(self: Arc<Self>) -> Result<OwnedSemaphorePermit, AcquireError> {
        crate::block_on(self.acquire_owned())
    }

    /// Blocking-style [`acquire_many_owned`](Semaphore::acquire_many_owned).
    ///
    /// # Errors
    ///
    /// [`AcquireError`] if the semaphore is closed.
    pub fn acquire_many_owned_blocking(
        self: Arc<Self>,
        n: usize,
    ) -> Result<OwnedSemaphorePermit, AcquireError> {
        crate::block_on(self.acquire_many_owned(n))
    }

    /// Fast path: takes `n` permits if `WAITERS` is clear and they are free.
    pub(super) fn try_take(&self, n: usize) -> Result<(), TryAcquireError> {
        let mut state = self.state.load(Ordering::Acquire);
        loop {
            if state & CLOSED != 0 {
                return Err(TryAcquireError::Closed);
            }
            if state & WAITERS != 0 || state >> SHIFT < n {
                return Err(TryAcquireError::NoPermits);
            }
            // permits -= n
            let next = state - (n << SHIFT);
            match self.state.compare_exchange_weak(state, next, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => return Ok(()),
                Err(actual) => state = actual,
            }
        }
    }

    /// Returns `n` permits: with one compare-exchange if nobody waits,
    /// otherwise under the lock, handing them to the waiters.
    pub(super) fn release(&self, n: usize) {
        if n == 0 {
            return;
        }
        let mut state = self.state.load(Ordering::Acquire);
        while state & WAITERS == 0 {
            // permits += n (nobody waits)
            let next = added(state, n);
            match self.state.compare_exchange_weak(state, next, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => return,
                Err(actual) => state = actual,
            }
        }
        let mut wakes = Wakes::new();
        {
            let mut list = self.waiters.lock();
            self.release_locked(n, &mut list, &mut wakes);
        }
        wakes.wake_all();
    }

    /// Adds `n` permits and serves the waiters (lock held).
    fn release_locked(&self, n: usize, list: &mut WaitList<Waiter>, wakes: &mut Wakes) {
        let mut state = self.state.load(Ordering::Acquire);
        loop {
            // permits += n (fast acquirers may race while WAITERS is clear)
            let next = added(state, n);
            match self.state.compare_exchange_weak(state, next, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => break,
                Err(actual) => state = actual,
            }
        }
        self.serve_locked(list, wakes);
    }

    /// Hands permits to the waiters at the head while they fit; clears
    /// `WAITERS` once the list is empty (lock held).
    fn serve_locked(&self, list: &mut WaitList<Waiter>, wakes: &mut Wakes) {
        while let Some(front) = list.front() {
            let need = front.need;
            // With WAITERS set only the lock holder moves permits, so the
            // load and the subtraction below cannot be interleaved.
            if self.state.load(Ordering::Acquire) >> SHIFT < need {
                break;
            }
            self.state.fetch_sub(need << SHIFT, Ordering::AcqRel);
            wakes.push(list.pop_front(|_| {}).flatten());
        }
        if list.is_empty() {
            self.state.fetch_and(!WAITERS, Ordering::AcqRel);
        }
    }
}

/// `state` with `n` more permits.
///
/// # Panics
///
/// If the count would exceed [`Semaphore::MAX_PERMITS`].
fn added(state: usize, n: usize) -> usize {
    match (state >> SHIFT).checked_add(n) {
        Some(permits) if permits <= Semaphore::MAX_PERMITS => state + (n << SHIFT),
        _ => panic!("Semaphore: number of permits overflows MAX_PERMITS"),
    }
}

impl fmt::Debug for Semaphore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.state.load(Ordering::Acquire);
        f.debug_struct("Semaphore")
            .field("permits", &(state >> SHIFT))
            .field("waiters", &(state & WAITERS != 0))
            .field("closed", &(state & CLOSED != 0))
            .finish()
    }
}

/// The state machine shared by every acquiring future (the semaphore's own
/// and the mutex's): poll it with the semaphore, cancel it on drop.
#[derive(Debug)]
pub(super) struct AcquireState {
    need: usize,
    phase: Phase,
}

impl AcquireState {
    pub(super) const fn new(need: usize) -> AcquireState {
        AcquireState { need, phase: Phase::Idle }
    }

    /// Polls for the permits; `Ready(Ok)` means they are now held.
    ///
    /// # Panics
    ///
    /// If polled again after it returned `Ready`.
    pub(super) fn poll(
        &mut self,
        sem: &Semaphore,
        cx: &mut Context<'_>,
    ) -> Poll<Result<(), AcquireError>> {
        match self.phase {
            Phase::Idle => match sem.try_take(self.need) {
                Ok(()) => self.finish(Ok(())),
                Err(TryAcquireError::Closed) => self.finish(Err(AcquireError(()))),
                Err(TryAcquireError::NoPermits) => self.enqueue(sem, cx),
            },
            Phase::Waiting(key) => {
                let mut list = sem.waiters.lock();
                if list.is_linked(key) {
                    let displaced = list.register(key, cx.waker());
                    drop(list);
                    drop(displaced);
                    return Poll::Pending;
                }
                let (waiter, _, _) = list.remove(key);
                drop(list);
                self.finish(if waiter.closed { Err(AcquireError(())) } else { Ok(()) })
            }
            Phase::Done => panic!("semaphore acquire polled after completion"),
        }
    }

    /// Slow path: under the lock, take the permits if they became free and
    /// nobody waits, else set `WAITERS` and queue.
    fn enqueue(&mut self, sem: &Semaphore, cx: &mut Context<'_>) -> Poll<Result<(), AcquireError>> {
        let mut list = sem.waiters.lock();
        let mut state = sem.state.load(Ordering::Acquire);
        loop {
            if state & CLOSED != 0 {
                drop(list);
                return self.finish(Err(AcquireError(())));
            }
            if state & WAITERS != 0 {
                break;
            }
            let (next, took) = if state >> SHIFT >= self.need {
                // permits -= need
                (state - (self.need << SHIFT), true)
            } else {
                // announce a waiter: from now on releases take the lock
                (state | WAITERS, false)
            };
            match sem.state.compare_exchange_weak(state, next, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) if took => {
                    drop(list);
                    return self.finish(Ok(()));
                }
                Ok(_) => break,
                Err(actual) => state = actual,
            }
        }
        let key = list.push_back(Waiter { need: self.need, closed: false }, cx.waker());
        self.phase = Phase::Waiting(key);
        Poll::Pending
    }

    fn finish(&mut self, result: Result<(), AcquireError>) -> Poll<Result<(), AcquireError>> {
        self.phase = Phase::Done;
        Poll::Ready(result)
    }

    /// Called on drop: leaves the queue, passing on permits already handed
    /// over, or letting the waiters behind re-check the free permits.
    pub(super) fn cancel(&mut self, sem: &Semaphore) {
        let Phase::Waiting(key) = self.phase else { return };
        self.phase = Phase::Done;
        let mut wakes = Wakes::new();
        let own_waker = {
            let mut list = sem.waiters.lock();
            let (waiter, was_waiting, waker) = list.remove(key);
            if was_waiting {
                sem.serve_locked(&mut list, &mut wakes);
            } else if !waiter.closed {
                sem.release_locked(self.need, &mut list, &mut wakes);
            }
            waker
        };
        drop(own_waker);
        wakes.wake_all();
    }

    pub(super) fn need(&self) -> usize {
        self.need
    }
}
