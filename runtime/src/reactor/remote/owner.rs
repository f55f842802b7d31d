//! The owner thread's state as its wakers see it: one word that says
//! whether a waker must make a system call to wake it, and which.
//!
//! ```text
//!                 owner: sleep(how)                 the owner sleeps
//!     RUNNING ─────────────────────────▶ ASLEEP_EPOLL  in epoll_wait
//!        ▲ │                             ASLEEP_FUTEX  on this word (futex)
//!        │ │ waker: notify                  │
//!        │ ▼                                │ waker: notify, then writes
//!     NOTIFIED ◀────────────────────────────┘ the eventfd or wakes the futex
//!        │
//!        └─ owner: resume (drains the mailbox) ─▶ RUNNING
//! ```
//!
//! A waker (a push on the mailbox, or `Remote::notify`) swaps the word to
//! `NOTIFIED` and acts on what it held: nothing if the owner runs (it
//! looks at the word at every turn, and before it sleeps) or was already
//! notified; a wake of the one sleep the owner chose otherwise. The owner
//! enters a sleep only from `RUNNING`, by a compare-exchange that fails
//! once a notification is pending, and after any sleep (or turn) swaps
//! the word back to `RUNNING`, draining the mailbox if it was `NOTIFIED`.
//!
//! No wake is lost: a notification either comes before the owner's
//! compare-exchange, which then fails and the owner does not sleep, or
//! after it, and the waker then sees the sleep and ends it. A futex sleep
//! is entered only while the word still holds `ASLEEP_FUTEX` (the kernel
//! checks it atomically with going to sleep); an `epoll_wait` sees an
//! eventfd written before it began. The loom model
//! (`remote/loom_model.rs`) checks both sleeps against two wakers.
//!
//! Only the owner thread sleeps, so at most one thread waits on the word.

use std::time::Duration;

use crate::loom::{Futex, Ordering};

/// The owner runs, and no notification is pending: a waker swaps in
/// [`NOTIFIED`] and makes no system call.
const RUNNING: u32 = 0;
/// A waker came since the owner last drained its mailbox; set by a
/// waker, cleared by the owner only (`resume`). Later wakers do nothing.
const NOTIFIED: u32 = 1;
/// The owner sleeps (or is about to) in `epoll_wait`: a waker writes the
/// eventfd. Set by the owner only, from [`RUNNING`].
const ASLEEP_EPOLL: u32 = 2;
/// The owner sleeps (or is about to) on this word's futex: a waker wakes
/// it. Set by the owner only, from [`RUNNING`], and only while the
/// reactor watches no I/O (nothing else could end its sleep).
const ASLEEP_FUTEX: u32 = 3;

/// Where the owner thread sleeps when it has nothing to run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Sleep {
    /// In `epoll_wait`, woken by a write of the reactor's eventfd.
    Epoll,
    /// On the state word's futex: the reactor watches no I/O.
    Futex,
}

/// What a notification found (see [`OwnerState::notify`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Found {
    /// The owner runs: it sees the notification before it sleeps.
    Running,
    /// A notification was already pending: nothing to do.
    Notified,
    /// The owner sleeps there: the waker must wake it.
    Asleep(Sleep),
}

/// The owner thread's state word, which is also its futex.
pub(crate) struct OwnerState {
    word: Futex,
}

impl OwnerState {
    /// A running owner with nothing pending.
    pub(crate) fn new() -> OwnerState {
        OwnerState { word: Futex::new(RUNNING) }
    }

    /// Waker side: records a notification and says what it found; on
    /// [`Found::Asleep`] the caller wakes the owner from that sleep.
    #[inline]
    pub(crate) fn notify(&self) -> Found {
        // AcqRel: the caller's queued work (published by the mailbox's
        // lock, or the caller's own flag) comes before the notification.
        match self.word.swap(NOTIFIED, Ordering::AcqRel) {
            RUNNING => Found::Running,
            ASLEEP_EPOLL => Found::Asleep(Sleep::Epoll),
            ASLEEP_FUTEX => Found::Asleep(Sleep::Futex),
            _ => Found::Notified,
        }
    }

    /// Owner side: announces a sleep in `how`; `false` if a notification
    /// is pending, and then the owner must not sleep.
    #[inline]
    pub(crate) fn sleep(&self, how: Sleep) -> bool {
        let asleep = match how {
            Sleep::Epoll => ASLEEP_EPOLL,
            Sleep::Futex => ASLEEP_FUTEX,
        };
        // RUNNING -> ASLEEP_*; fails on NOTIFIED, the only other state the
        // word holds while the owner runs.
        self.word.compare_exchange(RUNNING, asleep, Ordering::AcqRel, Ordering::Acquire).is_ok()
    }

    /// Owner side, after [`sleep`](OwnerState::sleep)`(Sleep::Futex)`:
    /// sleeps until a waker wakes it or `timeout` passes (or spuriously).
    ///
    /// # Errors
    ///
    /// When the system has no futex: the call returned at once, and the
    /// owner should sleep in `epoll_wait` from now on.
    pub(crate) fn wait(&self, timeout: Option<Duration>) -> std::io::Result<()> {
        self.word.wait(ASLEEP_FUTEX, timeout)
    }

    /// Waker side, after [`Found::Asleep`]`(Sleep::Futex)`: ends the
    /// owner's futex sleep.
    pub(crate) fn wake(&self) {
        self.word.wake();
    }

    /// Owner side, at every turn, after sleeping or not: back to
    /// `RUNNING`; `true` if a notification was pending, and then the owner
    /// drains its mailbox.
    #[inline]
    pub(crate) fn resume(&self) -> bool {
        // The plain load spares the swap in the common case of a turn with
        // no notification: RUNNING is only left by the owner's own sleep or
        // by a notification, which a later turn sees if this load misses it.
        self.word.load(Ordering::Relaxed) != RUNNING
            && self.word.swap(RUNNING, Ordering::AcqRel) == NOTIFIED
    }

    /// The futex model, for the loom models' counts of wakes.
    #[cfg(all(test, loom))]
    pub(crate) fn futex(&self) -> &Futex {
        &self.word
    }
}

impl std::fmt::Debug for OwnerState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = match self.word.load(Ordering::Relaxed) {
            RUNNING => "RUNNING",
            NOTIFIED => "NOTIFIED",
            ASLEEP_EPOLL => "ASLEEP_EPOLL",
            ASLEEP_FUTEX => "ASLEEP_FUTEX",
            _ => "?",
        };
        f.write_str(state)
    }
}
