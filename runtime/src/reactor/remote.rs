//! The remote wake path: the one queue through which other OS threads hand
//! work to a reactor's thread, and the `eventfd` that interrupts its
//! `epoll_wait`.
//!
//! ```text
//!  foreign thread                          owner thread
//!  ──────────────                          ────────────
//!  Mailbox::push(owner, wake):             Reactor::turn()
//!    lock; owner gone? drop wake             epoll_wait returns (WAKE_TOKEN)
//!    queue wake                              Remote::drain_into: notified = false,
//!    first since the last drain?               take the queue
//!      (notified.swap(true) == false)         Run(f)      -> f.run(), in the turn
//!  unlock                                     Green, Task -> kept for the context,
//!  first? eventfd write ───────────────────▶                 which routes them
//! ```
//!
//! Each entry, a [`Wake`], names its target: a green thread (its
//! scheduler's id and a signal for it), a task (its executor's id and the
//! reference its waker gave up), or a closure to run in the turn
//! ([`Remote::inject`]: `Shard::spawn`, dumps). The reactor only carries
//! them; the thread's running context routes green and task entries to the
//! run queue they name (`context.rs`). `notified` coalesces a burst of
//! pushes into one `eventfd` write: only the first push after a drain pays
//! for the syscall, and [`Remote::wakes_sent`] counts those writes.
//!
//! A wake woken on the owner thread while its scheduler or executor runs
//! there never comes here: it is a push on the local run queue.
//!
//! # When the target is gone
//!
//! One rule, for every entry: **a wake whose target no longer exists is
//! dropped, and counted** ([`dropped_wakes`]).
//!
//! * *The owner thread is gone* (its reactor dropped): the reactor closes
//!   its mailbox as it drops, on the owner thread, dropping what was
//!   queued there; a later push finds the mailbox no longer owned by that
//!   reactor and drops its entry on the pushing thread. That is sound for
//!   a task reference: every executor holds the reactor, so all of them
//!   were shut down before, and a task's future is dropped at its
//!   executor's shutdown, on the owner thread; what a late reference frees
//!   is the cell alone. A closure injected too late is dropped unrun.
//! * *The owner thread lives, the target does not*: a green scheduler lives
//!   exactly as long as the context that runs it, and an executor until it
//!   shuts down. The context routing the entry drops it, on the owner
//!   thread. A task whose executor lives but runs in no loop right now (a
//!   `task::Runtime` between two `block_on`s) is kept on the reactor until
//!   a context runs that executor, and dropped if the executor shuts down
//!   first.
//!
//! # Mailboxes are pooled
//!
//! Green thread handles and task wakers may outlive their thread, so they
//! hold a [`MailboxRef`]: a `&'static` mailbox and the id of the reactor
//! that owned it when they were made. Mailboxes are never freed but reused:
//! a reactor takes one from a pool and returns it, emptied and unowned, as
//! it drops; a push whose reactor id does not own the mailbox is dropped
//! (checked under the lock the reactor takes to close it). So a spawn
//! clones no `Arc`, and the memory kept is one mailbox per reactor that
//! ever lived at the same time as others.

use std::fmt;
use std::sync::{Arc, PoisonError};

use super::ReactorId;
use crate::id::{ExecutorId, SchedulerId};
use crate::loom::{AtomicBool, AtomicU64, Mutex, MutexGuard, Ordering};
use crate::task::RawTask;

#[cfg(all(test, loom))]
mod loom_model;

/// Work a foreign thread hands to the owner of a reactor, run there by
/// [`Reactor::turn`](super::Reactor::turn).
///
/// [`Shard::spawn`](crate::shard::Shard::spawn)'s closures implement it.
/// Wakes of green threads and tasks do not: they go through the same
/// queue, but are routed by the thread's context.
pub trait Inject: Send + Sync {
    /// Runs on the owner thread, inside the reactor turn that drained it.
    fn run(self: Arc<Self>);
}

/// One entry of a reactor's mailbox: what to wake or run on its thread.
pub(crate) enum Wake {
    /// A token for a green thread of this scheduler.
    Green(SchedulerId, crate::green::Signal),
    /// This task (the queue's reference to it), of this executor.
    Task(ExecutorId, RawTask),
    /// A closure, run inside the reactor turn that drains it.
    Run(Arc<dyn Inject>),
}

/// The part of a reactor that other threads may touch: its mailbox and the
/// `mio::Waker` that interrupts `epoll_wait`.
pub struct Remote {
    mailbox: &'static Mailbox,
    /// Set by the first push or notify after a drain: later ones skip the
    /// `eventfd` write.
    notified: AtomicBool,
    waker: mio::Waker,
    /// `eventfd` writes made by `notify`, for tests and the lab.
    writes: AtomicU64,
    /// Unique id of the owning reactor (see [`Reactor::id`](super::Reactor::id)).
    id: ReactorId,
}

/// The queue of wakes for one reactor's thread (see the module docs).
pub(crate) struct Mailbox {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    /// The owning reactor's id; `None` while the mailbox is in the pool.
    owner: Option<ReactorId>,
    wakes: Vec<Wake>,
    /// Whether `wakes` holds a `Run` entry, so that the owner looks for
    /// closures only when some came.
    runs: bool,
    /// The owner's `Remote`, to notify after a push; `None` once closed.
    remote: Option<Arc<Remote>>,
}

/// A reactor's mailbox as its green threads and tasks hold it: pushes
/// through it are dropped once that reactor is gone.
#[derive(Clone, Copy, Debug)]
pub(crate) struct MailboxRef {
    mailbox: &'static Mailbox,
    owner: ReactorId,
}

/// Mailboxes of dropped reactors, for reuse.
static POOL: std::sync::Mutex<Vec<&'static Mailbox>> = std::sync::Mutex::new(Vec::new());

/// Wakes dropped because their target was gone (see the module docs).
static DROPPED: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// How many remote wakes (of green threads and tasks) and injected
/// closures the process dropped because their target was gone: the
/// reactor, green scheduler or executor they named no longer existed.
/// Such a wake is dropped, never run elsewhere; this counts them.
pub fn dropped_wakes() -> u64 {
    DROPPED.load(std::sync::atomic::Ordering::Relaxed)
}

/// Drops `wake`, whose target is gone, and counts it.
pub(crate) fn drop_wake(wake: Wake) {
    DROPPED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    drop(wake);
}

impl Remote {
    /// The handle of the reactor `id`, woken through `waker`, with a
    /// mailbox from the pool.
    pub(super) fn new(waker: mio::Waker, id: ReactorId) -> Arc<Remote> {
        let pooled = POOL.lock().unwrap_or_else(PoisonError::into_inner).pop();
        let mailbox = pooled.unwrap_or_else(|| Box::leak(Box::new(Mailbox::new())));
        Remote::with_mailbox(mailbox, waker, id)
    }

    /// The handle of the reactor `id`, owning `mailbox`.
    fn with_mailbox(mailbox: &'static Mailbox, waker: mio::Waker, id: ReactorId) -> Arc<Remote> {
        let remote = Arc::new(Remote {
            mailbox,
            notified: AtomicBool::new(false),
            waker,
            writes: AtomicU64::new(0),
            id,
        });
        mailbox.open(id, remote.clone());
        remote
    }

    /// The id of the reactor this handle wakes.
    pub fn id(&self) -> ReactorId {
        self.id
    }

    /// The mailbox, as green threads and tasks of this reactor hold it.
    pub(crate) fn mailbox(&self) -> MailboxRef {
        MailboxRef { mailbox: self.mailbox, owner: self.id }
    }

    /// Queues `item` to run on the owner thread and wakes that thread. If
    /// the owner thread is gone, `item` is dropped here, unrun.
    pub fn inject(&self, item: Arc<dyn Inject>) {
        self.mailbox().push(Wake::Run(item));
    }

    /// Interrupts the owner's `epoll_wait` (at most one write per drain).
    pub fn notify(&self) {
        if !self.notified.swap(true, Ordering::AcqRel) {
            self.write();
        }
    }

    /// Writes the owner's `eventfd`.
    fn write(&self) {
        self.writes.fetch_add(1, Ordering::Relaxed);
        // A failed wake means the owner's epoll instance is gone: the
        // owner has exited and nobody is left to wake.
        let _ = self.waker.wake();
    }

    /// How many times [`notify`](Remote::notify) wrote the owner's
    /// `eventfd`: the syscalls that cross-thread wakes cost this reactor.
    pub fn wakes_sent(&self) -> u64 {
        self.writes.load(Ordering::Relaxed)
    }

    /// Takes the queued wakes into `out` (owner side); re-arms `notify`.
    /// Returns whether a closure (`Wake::Run`) came with them.
    pub(crate) fn drain_into(&self, out: &mut Vec<Wake>) -> bool {
        self.notified.store(false, Ordering::Release);
        let mut inner = self.mailbox.lock();
        if out.is_empty() {
            std::mem::swap(out, &mut inner.wakes); // buffers go round, no copy
        } else {
            out.append(&mut inner.wakes);
        }
        std::mem::take(&mut inner.runs)
    }

    /// Closes the mailbox as the reactor drops (owner side): drops what is
    /// queued, makes later pushes drop theirs, and returns the mailbox to
    /// the pool.
    pub(super) fn close(&self) {
        self.mailbox.close();
        POOL.lock().unwrap_or_else(PoisonError::into_inner).push(self.mailbox);
    }
}

impl Mailbox {
    fn new() -> Mailbox {
        Mailbox { inner: Mutex::new(Inner::default()) }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Makes `owner`, reached through `remote`, the mailbox's owner.
    fn open(&self, owner: ReactorId, remote: Arc<Remote>) {
        *self.lock() =
            Inner { owner: Some(owner), wakes: Vec::new(), runs: false, remote: Some(remote) };
    }

    /// Unowns the mailbox; drops (and counts) what was queued.
    fn close(&self) {
        let Inner { wakes, remote, .. } = std::mem::take(&mut *self.lock());
        drop(remote);
        for wake in wakes {
            drop_wake(wake);
        }
    }

    /// Queues `wake` for `owner` and wakes its thread, unless `owner` no
    /// longer owns the mailbox: then drops it (module docs).
    fn push(&self, owner: ReactorId, wake: Wake) {
        let mut inner = self.lock();
        let Some(remote) = inner.remote.as_ref().filter(|_| inner.owner == Some(owner)) else {
            drop(inner);
            drop_wake(wake);
            return;
        };
        // Only the first push after a drain writes the eventfd; it clones
        // the `Remote` to write after unlocking (the owner may close the
        // mailbox meanwhile).
        let first = !remote.notified.swap(true, Ordering::AcqRel);
        let remote = first.then(|| remote.clone());
        inner.runs |= matches!(wake, Wake::Run(_));
        inner.wakes.push(wake);
        drop(inner);
        if let Some(remote) = remote {
            remote.write();
        }
    }
}

impl MailboxRef {
    /// Queues `wake` on the reactor this names (see [`Mailbox::push`]).
    pub(crate) fn push(self, wake: Wake) {
        self.mailbox.push(self.owner, wake);
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

impl fmt::Debug for Mailbox {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Mailbox").finish_non_exhaustive()
    }
}
