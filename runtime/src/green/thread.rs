//! The green thread's identity and parking: [`Thread`], [`ThreadId`],
//! [`park`], [`park_timeout`], [`current`], [`yield_now`], [`sleep`].
//!
//! Parking follows `std::thread`: each green thread has a token (its
//! `state`). [`Thread::unpark`] makes the token available; [`park`] consumes
//! it, suspending the green thread until it is available. An unpark before
//! the park is therefore never lost, and park may return spuriously.
//!
//! ```text
//!  state: NOTIFIED = 1, EMPTY = 0, PARKED = -1   (one atomic op per side)
//!
//!  park():   fetch_sub(1): was NOTIFIED -> token consumed, return
//!                          was EMPTY    -> now PARKED, suspend;
//!                                          on resume store EMPTY
//!  unpark(): swap(NOTIFIED): was PARKED -> schedule the thread (once)
//! ```
//!
//! Only the PARKED → NOTIFIED transition schedules, so a thread is queued
//! at most once per park, and a wake after it finished does nothing.

use std::fmt;
use std::num::NonZeroU64;
use std::sync::Arc;
use std::sync::atomic::{AtomicI8, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use super::scheduler::Scheduler;
use std::task::Waker;

use crate::reactor::{Inject, Remote};

/// A unique identifier of a green thread, never reused in the process.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ThreadId(NonZeroU64);

impl ThreadId {
    pub(super) fn next() -> ThreadId {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        let id = NEXT.fetch_add(1, Ordering::Relaxed);
        ThreadId(NonZeroU64::new(id).expect("green thread ids exhausted"))
    }

    /// The id as a number (for logs and metrics).
    pub fn as_u64(self) -> NonZeroU64 {
        self.0
    }
}

const EMPTY: i8 = 0;
const PARKED: i8 = -1;
const NOTIFIED: i8 = 1;

/// The non-generic part of a green thread, shared by its [`Thread`]
/// handles, its wakers and its scheduler slot.
#[derive(Debug)]
pub(crate) struct Control {
    state: AtomicI8,
    id: ThreadId,
    name: Option<String>,
    /// Key of the thread's slot in its scheduler.
    key: usize,
    /// Id of the owning scheduler; a wake that reaches another scheduler
    /// (the owner finished, a new one runs on the same OS thread) is dropped.
    scheduler: u64,
    remote: Arc<Remote>,
}

impl Control {
    pub(super) fn new(
        name: Option<String>,
        key: usize,
        scheduler: u64,
        remote: Arc<Remote>,
    ) -> Control {
        Control { state: AtomicI8::new(EMPTY), id: ThreadId::next(), name, key, scheduler, remote }
    }

    pub(super) fn id(&self) -> ThreadId {
        self.id
    }

    pub(super) fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }

    pub(super) fn key(&self) -> usize {
        self.key
    }

    /// Makes the token available; schedules the thread if it was parked.
    /// `this` gives the remote path an owned handle only when it needs one.
    pub(super) fn unpark(&self, this: impl FnOnce() -> Arc<dyn Inject>) {
        if self.state.swap(NOTIFIED, Ordering::AcqRel) != PARKED {
            return;
        }
        let queued = Scheduler::with(|s| match s {
            Some(s) if s.id() == self.scheduler => {
                s.schedule(self.key);
                true
            }
            _ => false,
        });
        if !queued {
            self.remote.inject(this());
        }
    }

    /// Owner side of a remote unpark: queue the thread if its scheduler
    /// is still the one running here.
    pub(super) fn run_injected(&self) {
        Scheduler::with(|s| {
            if let Some(s) = s.filter(|s| s.id() == self.scheduler) {
                s.schedule(self.key);
            }
        });
    }
}

/// A handle to a green thread: its id and name, and the way to unpark it.
///
/// It is the thread's `Waker` (see `join.rs`): cheap to clone (a reference
/// count) and `Send + Sync`, so any OS thread may unpark a green thread.
#[derive(Clone)]
pub struct Thread {
    waker: Waker,
}

impl Thread {
    /// Wraps a green thread's waker, which must come from `Shared::waker`.
    pub(super) fn from_waker(waker: Waker) -> Thread {
        Thread { waker }
    }

    fn control(&self) -> &Control {
        control_of(&self.waker)
    }

    /// The thread's unique id.
    pub fn id(&self) -> ThreadId {
        self.control().id()
    }

    /// The thread's name, if it was given one with
    /// [`Builder::name`](super::Builder::name).
    pub fn name(&self) -> Option<&str> {
        self.control().name()
    }

    /// Makes the thread's park token available, waking it if it is parked.
    /// Works from any OS thread.
    pub fn unpark(&self) {
        self.waker.wake_by_ref();
    }
}

/// The `Control` of a green thread's waker (one made by `Shared::waker`;
/// the scheduler and `Thread` hold no other kind).
pub(super) fn control_of(waker: &Waker) -> &Control {
    // SAFETY: the data pointer of a green thread's waker points at its
    // `repr(C)` `Shared<T>`, whose first field is the `Control`, and the
    // waker's strong count keeps it alive for the borrow (join.rs invariant).
    unsafe { &*waker.data().cast::<Control>() }
}

impl fmt::Debug for Thread {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Thread").field("id", &self.id()).field("name", &self.name()).finish()
    }
}

/// The green thread that calls it, or `None` outside a green thread.
pub fn try_current() -> Option<Thread> {
    Scheduler::with(|s| s.and_then(Scheduler::current_thread))
}

/// The green thread that calls it.
///
/// # Panics
///
/// Panics when called outside a green thread (use [`try_current`] there).
pub fn current() -> Thread {
    try_current().expect("green::current() called outside a green thread (see green::try_current)")
}

/// Blocks the current green thread until its token is available (see the
/// module docs); may return spuriously. Outside a green thread it is
/// `std::thread::park`.
#[inline]
pub fn park() {
    if !Scheduler::with(|s| s.is_some_and(Scheduler::park_current)) {
        std::thread::park();
    }
}

/// Like [`park`], but returns after `timeout` at the latest. Outside a green
/// thread it is `std::thread::park_timeout`.
pub fn park_timeout(timeout: Duration) {
    let Some(waker) = super::current_waker() else {
        return std::thread::park_timeout(timeout);
    };
    let reactor = crate::reactor::Reactor::current();
    let timer = reactor.insert_timer(Instant::now() + timeout, waker);
    park();
    reactor.cancel_timer(timer);
}

/// Puts the current green thread at the back of the run queue and runs the
/// others first. Outside a green thread it is `std::thread::yield_now`.
#[inline]
pub fn yield_now() {
    if !Scheduler::with(|s| s.is_some_and(Scheduler::yield_current)) {
        std::thread::yield_now();
    }
}

/// Parks the current green thread for at least `duration`; other green
/// threads run meanwhile. Outside a green thread it is `std::thread::sleep`.
pub fn sleep(duration: Duration) {
    if super::in_green_thread() {
        crate::block_on(crate::time::sleep(duration));
    } else {
        std::thread::sleep(duration);
    }
}

/// State transitions of [`park`], run by the scheduler on the current thread.
impl Control {
    /// Consumes the token if available; otherwise marks the thread parked
    /// and returns `true`: the caller must suspend.
    #[inline]
    pub(super) fn begin_park(&self) -> bool {
        // NOTIFIED -> EMPTY (token consumed) or EMPTY -> PARKED (suspend).
        self.state.fetch_sub(1, Ordering::Acquire) == EMPTY
    }

    /// After a resume: consume the token the unpark left.
    #[inline]
    pub(super) fn end_park(&self) {
        self.state.store(EMPTY, Ordering::Release);
    }
}
