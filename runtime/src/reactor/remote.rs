//! The remote wake path: how a `Waker` woken on another OS thread reaches
//! the thread that owns the waiting green thread or task.
//!
//! ```text
//!  foreign thread                      owner thread
//!  ──────────────                      ────────────
//!  Remote::inject(item)                Reactor::turn()
//!    queue.lock().push(item)             epoll_wait returns (WAKE_TOKEN)
//!    if !notified.swap(true)             notified.store(false)
//!        mio::Waker::wake() ───────────▶ for item in queue.drain(): item.run()
//! ```
//!
//! `notified` coalesces a burst of wakes into one `eventfd` write: only the
//! first inject after a drain pays for the syscall.

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

/// Work a foreign thread hands to the owner of a reactor, run there by
/// [`Reactor::turn`](super::Reactor::turn).
///
/// Schedulers implement it for their wake targets: a green thread's control
/// block pushes itself on the local run queue.
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
    /// Unique id of the owning reactor (see [`Reactor::id`](super::Reactor::id)).
    id: u64,
}

impl Remote {
    pub(super) fn new(waker: mio::Waker, id: u64) -> Remote {
        Remote { queue: Mutex::new(Vec::new()), notified: AtomicBool::new(false), waker, id }
    }

    /// The id of the reactor this handle wakes.
    pub fn id(&self) -> u64 {
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
            // A failed wake means the owner's epoll instance is gone: the
            // owner has exited and nobody is left to wake.
            let _ = self.waker.wake();
        }
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
