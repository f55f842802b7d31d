//! The remote wake path: the one queue through which other OS threads hand
//! work to a reactor's thread, and the wake that ends its sleep.
//!
//! ```text
//!  foreign thread                          owner thread
//!  ──────────────                          ────────────
//!  Mailbox::push(owner, wake):             Reactor::turn()
//!    lock; owner gone? drop wake             sleeps (epoll_wait or futex) unless
//!    queue wake                                notified, or polls without sleeping
//!    state.notify(): what did it find?       state.resume() == notified?
//!  unlock                                      Remote::drain_into: take the queue
//!  owner asleep? ──────────────────────────▶  Run(f)      -> f.run(), in the turn
//!    eventfd write, or futex wake             Green, Task -> kept for the context,
//!                                                            which routes them
//! ```
//!
//! Each entry, a [`Wake`], names its target: a green thread (its
//! scheduler's id and a signal for it), a task (its executor's id and the
//! reference its waker gave up), or a closure to run in the turn
//! ([`Remote::inject`]: `Shard::spawn`, dumps). The reactor only carries
//! them; the thread's running context routes green and task entries to the
//! run queue they name (`context.rs`).
//!
//! The owner's state word (`remote/owner.rs`) says whether a push must
//! wake the owner, and how. Only the first push after a drain looks
//! further, and [`Remote::wakes_sent`] counts those: it makes a system
//! call only if the owner sleeps, an `eventfd` write if it sleeps in
//! `epoll_wait`, a futex wake if it sleeps on the word, which it does
//! when its reactor watches no I/O (a futex sleep and wake cost less than
//! `epoll_wait` and an `eventfd` write). A push while the owner runs
//! makes none: the owner reads the word at every turn.
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

use std::sync::{Arc, PoisonError};
use std::time::Duration;
use std::{fmt, io};

use super::ReactorId;
use crate::id::{ExecutorId, SchedulerId};
use crate::loom::{AtomicU64, Mutex, MutexGuard, Ordering};
use crate::task::RawTask;
pub(crate) use owner::Sleep;
use owner::{Found, OwnerState};

#[cfg(all(test, loom))]
mod loom_model;
mod owner;

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

/// The part of a reactor that other threads may touch: its mailbox, its
/// owner's state word (a futex), and the `mio::Waker` that interrupts
/// `epoll_wait`.
pub struct Remote {
    mailbox: &'static Mailbox,
    /// Whether the owner runs, is notified, or sleeps, and where (see
    /// `remote/owner.rs`).
    state: OwnerState,
    waker: mio::Waker,
    /// Notifications: pushes and notifies that found none pending, for
    /// tests and the lab.
    notifications: AtomicU64,
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
            state: OwnerState::new(),
            waker,
            notifications: AtomicU64::new(0),
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

    /// Makes the owner's next (or current) reactor turn return: wakes the
    /// owner if it sleeps, at most once per drain of its mailbox.
    pub fn notify(&self) {
        if let Found::Asleep(how) = self.note(self.state.notify()) {
            self.wake(how);
        }
    }

    /// Counts a notification that found none pending; returns `found`.
    #[inline]
    fn note(&self, found: Found) -> Found {
        if found != Found::Notified {
            self.notifications.fetch_add(1, Ordering::Relaxed);
        }
        found
    }

    /// Ends the owner's sleep in `how`.
    fn wake(&self, how: Sleep) {
        match how {
            Sleep::Futex => self.state.wake(),
            // A failed write means the owner's epoll instance is gone: the
            // owner has exited and nobody is left to wake.
            Sleep::Epoll => drop(self.waker.wake()),
        }
    }

    /// How many notifications reached the owner: the pushes and
    /// [`notify`](Remote::notify) calls that found none pending since its
    /// last drain. Each costs at most one system call (an `eventfd` write
    /// or a futex wake), and none if the owner was running.
    pub fn wakes_sent(&self) -> u64 {
        self.notifications.load(Ordering::Relaxed)
    }

    /// Owner side: announces a sleep in `how`; `false` if a notification
    /// is pending, and then the owner must not sleep (see
    /// `remote/owner.rs`).
    #[inline]
    pub(super) fn sleep(&self, how: Sleep) -> bool {
        self.state.sleep(how)
    }

    /// Owner side, after [`sleep`](Remote::sleep)`(Sleep::Futex)`: sleeps
    /// on the state word until woken or `timeout` passes.
    ///
    /// # Errors
    ///
    /// When the system has no futex (the call returned at once).
    pub(super) fn wait(&self, timeout: Option<Duration>) -> io::Result<()> {
        self.state.wait(timeout)
    }

    /// Owner side, at every turn: back to running; `true` if notified,
    /// and then the owner drains the mailbox ([`drain_into`](Remote::drain_into)).
    #[inline]
    pub(super) fn resume(&self) -> bool {
        self.state.resume()
    }

    /// Takes the queued wakes into `out` (owner side, after
    /// [`resume`](Remote::resume) reported a notification). Returns whether
    /// a closure (`Wake::Run`) came with them.
    pub(crate) fn drain_into(&self, out: &mut Vec<Wake>) -> bool {
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
        let mut guard = self.lock();
        let inner = &mut *guard;
        let Some(remote) = inner.remote.as_ref().filter(|_| inner.owner == Some(owner)) else {
            drop(guard);
            drop_wake(wake);
            return;
        };
        inner.runs |= matches!(wake, Wake::Run(_));
        inner.wakes.push(wake);
        // Queued first, then notified (see `remote/owner.rs`). Only a push
        // that finds the owner asleep wakes it, after unlocking, through a
        // clone of the `Remote` (the owner may close the mailbox meanwhile).
        let asleep = match remote.note(remote.state.notify()) {
            Found::Asleep(how) => Some((remote.clone(), how)),
            Found::Running | Found::Notified => None,
        };
        drop(guard);
        if let Some((remote, how)) = asleep {
            remote.wake(how);
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
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

impl fmt::Debug for Mailbox {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Mailbox").finish_non_exhaustive()
    }
}
