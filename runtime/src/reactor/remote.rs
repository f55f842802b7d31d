//! The remote wake path: how another OS thread interrupts the owner's
//! `epoll_wait`, and hands it closures to run.
//!
//! ```text
//!  foreign thread                      owner thread
//!  ──────────────                      ────────────
//!  (push on a remote queue, or         Reactor::turn()
//!   Remote::inject(item))                epoll_wait returns (WAKE_TOKEN)
//!  Remote::notify():                     notified.store(false)
//!    if !notified.swap(true)             for item in injected: item.run()
//!        mio::Waker::wake() ───────────▶ (then the loop drains the
//!                                         green and task remote queues)
//! ```
//!
//! A green thread's or a task's waker woken on another thread pushes onto
//! its scheduler's remote queue (`green/thread.rs`, `task/executor.rs`) and
//! calls [`Remote::notify`]. `notified` coalesces a burst of wakes into one
//! `eventfd` write: only the first notify after a drain pays for the
//! syscall, and [`Remote::wakes_sent`] counts those writes.

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use super::ReactorId;

/// Work a foreign thread hands to the owner of a reactor, run there by
/// [`Reactor::turn`](super::Reactor::turn).
///
/// [`Shard::spawn`](crate::shard::Shard::spawn)'s closures implement it.
/// Wakes of green threads and tasks do not: they go to their scheduler's
/// remote queue and only [`notify`](Remote::notify) the reactor.
pub trait Inject: Send + Sync {
    /// Runs on the owner thread, inside the reactor turn that drained it.
    fn run(self: Arc<Self>);
}

/// The part of a reactor that other threads may touch: an injection queue
/// and the `mio::Waker` that interrupts `epoll_wait`.
pub struct Remote {
    queue: Mutex<Vec<Arc<dyn Inject>>>,
    notified: AtomicBool,
    waker: mio::Waker,
    /// `eventfd` writes made by `notify`, for tests and the lab.
    writes: AtomicU64,
    /// Unique id of the owning reactor (see [`Reactor::id`](super::Reactor::id)).
    id: ReactorId,
}

impl Remote {
    pub(super) fn new(waker: mio::Waker, id: ReactorId) -> Remote {
        Remote {
            queue: Mutex::new(Vec::new()),
            notified: AtomicBool::new(false),
            waker,
            writes: AtomicU64::new(0),
            id,
        }
    }

    /// The id of the reactor this handle wakes.
    pub fn id(&self) -> ReactorId {
        self.id
    }

    /// Queues `item` to run on the owner thread and wakes that thread.
    pub fn inject(&self, item: Arc<dyn Inject>) {
        self.queue.lock().unwrap_or_else(PoisonError::into_inner).push(item);
        self.notify();
    }

    /// Interrupts the owner's `epoll_wait` (at most one write per drain).
    pub fn notify(&self) {
        if !self.notified.swap(true, Ordering::AcqRel) {
            self.writes.fetch_add(1, Ordering::Relaxed);
            // A failed wake means the owner's epoll instance is gone: the
            // owner has exited and nobody is left to wake.
            let _ = self.waker.wake();
        }
    }

    /// How many times [`notify`](Remote::notify) wrote the owner's
    /// `eventfd`: the syscalls that cross-thread wakes cost this reactor.
    pub fn wakes_sent(&self) -> u64 {
        self.writes.load(Ordering::Relaxed)
    }

    /// Takes the queued items into `out` (owner side); re-arms `notify`.
    pub(super) fn drain_into(&self, out: &mut Vec<Arc<dyn Inject>>) {
        self.notified.store(false, Ordering::Release);
        let mut queue = self.queue.lock().unwrap_or_else(PoisonError::into_inner);
        out.append(&mut queue);
    }
}

impl fmt::Debug for Remote {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Remote")
            .field("id", &self.id)
            .field("notified", &self.notified.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}
