//! The green thread's identity and parking: [`Thread`], [`ThreadId`],
//! [`park`], [`park_timeout`], [`current`], [`yield_now`], [`sleep`].
//!
//! Parking follows `std::thread`: each green thread has a token (its
//! `state`). [`Thread::unpark`] makes the token available; [`park`] consumes
//! it, suspending the green thread until it is available. An unpark before
//! the park is therefore never lost, and park may return spuriously.
//!
//! ```text
//!            park()                        unpark()
//!   EMPTY ──────────▶ PARKED ──(suspend)    any ──swap──▶ NOTIFIED
//!     ▲                                     if the old state was PARKED,
//!     └──── resumed: NOTIFIED → EMPTY        schedule the thread (once)
//! ```
//!
//! Only the PARKED → NOTIFIED transition schedules, so a thread is queued
//! at most once per park, and a wake after it finished does nothing.

use std::fmt;
use std::num::NonZeroU64;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use super::scheduler::Scheduler;
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

const EMPTY: u8 = 0;
const PARKED: u8 = 1;
const NOTIFIED: u8 = 2;

/// The non-generic part of a green thread, shared by its [`Thread`]
/// handles, its wakers and its scheduler slot.
#[derive(Debug)]
pub(crate) struct Control {
    state: AtomicU8,
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
        Control { state: AtomicU8::new(EMPTY), id: ThreadId::next(), name, key, scheduler, remote }
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

/// What every green thread's shared block provides, whatever its result
/// type: its [`Control`], and (through [`Inject`]) the remote wake path.
pub(crate) trait GreenRef: Inject + Send + Sync + 'static {
    fn control(&self) -> &Control;
}

/// A handle to a green thread: its id and name, and the way to unpark it.
///
/// Cheap to clone (a reference count), `Send + Sync`: any OS thread may
/// unpark a green thread.
#[derive(Clone)]
pub struct Thread {
    pub(super) inner: Arc<dyn GreenRef>,
}

impl Thread {
    /// The thread's unique id.
    pub fn id(&self) -> ThreadId {
        self.inner.control().id()
    }

    /// The thread's name, if it was given one with
    /// [`Builder::name`](super::Builder::name).
    pub fn name(&self) -> Option<&str> {
        self.inner.control().name()
    }

    /// Makes the thread's park token available, waking it if it is parked.
    /// Works from any OS thread.
    pub fn unpark(&self) {
        self.inner.control().unpark(|| self.inner.clone());
    }
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
    pub(super) fn begin_park(&self) -> bool {
        if self.state.compare_exchange(NOTIFIED, EMPTY, Ordering::AcqRel, Ordering::Acquire).is_ok()
        {
            return false;
        }
        if self.state.compare_exchange(EMPTY, PARKED, Ordering::AcqRel, Ordering::Acquire).is_err()
        {
            // An unpark landed in between: consume it.
            self.state.store(EMPTY, Ordering::Release);
            return false;
        }
        true
    }

    /// After a resume: consume the token the unpark left.
    pub(super) fn end_park(&self) {
        self.state.store(EMPTY, Ordering::Release);
    }
}
