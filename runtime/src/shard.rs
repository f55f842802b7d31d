//! Shards: one reactor and one scheduler per OS thread, pinned to a core,
//! sharing nothing on the hot path (the thread-per-core model of seastar
//! and glommio).
//!
//! A shard is just an OS thread that runs a greenloop loop (any entry
//! point: each runs both models) on its own reactor; this module
//! adds the two things a set of them needs:
//!
//! * [`Shard`]: a `Send + Clone` handle to a shard's reactor, whose
//!   [`spawn`](Shard::spawn) runs a closure on that shard's thread, and
//!   [`spawn_green`](Shard::spawn_green) / [`spawn_task`](Shard::spawn_task)
//!   start a green thread or a task there; each returns a [`ShardHandle`]
//!   to wait on. The closure goes through the shard's mailbox, the one
//!   queue that cross-thread wakes of green threads and tasks take too
//!   (`reactor/remote.rs`), and runs inside a reactor turn of the shard's
//!   loop, with its context current, so nothing else is shared.
//! * [`cpus`] and [`pin_current_thread`]: which cores this thread may use,
//!   and `sched_setaffinity(2)` to keep a shard on its core (its caches,
//!   its memory, its interrupts).
//!
//! ```text
//!  shard 0 (CPU 0)                        shard 1 (CPU 1)
//!  reactor + scheduler                    reactor + scheduler
//!   shard1.spawn(f) ── mailbox: Run(f) ──▶  turn(): f() -> green::spawn / task::spawn_local
//!   handle.join()   ◀── oneshot ──────────  f's result
//!   waker.wake()    ── mailbox: Green/Task ▶ after turn(): routed to its run queue
//! ```
//!
//! # Why shards, not work stealing
//!
//! A work-stealing runtime (tokio's multi-thread scheduler, Go's) moves
//! runnable tasks to idle threads: it evens out load when some connections
//! are much busier than others, at the price of atomics on every wake and
//! queue operation, tasks that must be `Send`, and data that migrates
//! between cores' caches. Green threads cannot move at all (their stack
//! holds `Rc`s and thread-locals, see [`green`]). Shards keep
//! everything single-threaded and let the kernel balance *connections*
//! (`SO_REUSEPORT`) instead of tasks: right when connections cost about the
//! same, wrong when a few are hot (their shard saturates while others
//! idle). Stealing would add that rebalancing, for `Send` tasks only.

use std::future::Future;
use std::io;
use std::mem;
use std::panic::{self, AssertUnwindSafe, Location};
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::{error, fmt};

use crate::reactor::{Inject, Reactor, ReactorId, Remote};
use crate::sync::oneshot;
use crate::{green, task};

/// A handle to one shard: the reactor of an OS thread, reachable from any
/// thread. Cheap to clone; `Send + Sync`.
///
/// ```
/// use greenloop_runtime::shard::Shard;
/// use greenloop_runtime::sync::oneshot;
///
/// let here = Shard::current().unwrap();
/// let (tx, rx) = oneshot::channel();
/// std::thread::spawn(move || here.spawn(move || { let _ = tx.send(7); }));
/// // The closure runs on this thread, in a reactor turn of this block_on.
/// assert_eq!(greenloop_runtime::block_on(rx), Ok(7));
/// ```
#[derive(Clone)]
pub struct Shard {
    remote: Arc<Remote>,
}

impl Shard {
    /// The calling thread's shard (its reactor, created on first use).
    ///
    /// # Errors
    ///
    /// If the reactor cannot be created (see [`Reactor::try_current`]).
    pub fn current() -> io::Result<Shard> {
        Ok(Shard { remote: Reactor::try_current()?.remote().clone() })
    }

    /// The id of the shard's reactor (see [`Reactor::id`]).
    pub fn id(&self) -> ReactorId {
        self.remote.id()
    }

    /// Runs `f` on the shard's thread, inside its next reactor turn; from
    /// there `f` can [`green::spawn`] or
    /// [`task::spawn_local`] onto the runtime
    /// that thread runs. Returns at once, with a handle to `f`'s result.
    ///
    /// If `f` panics, the panic is caught there (the shard keeps running)
    /// and the handle gives [`Lost`]. If the shard's thread has exited, `f`
    /// never runs: it is dropped here, and the handle gives `Lost`.
    pub fn spawn<F, T>(&self, f: F) -> ShardHandle<T>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let (tx, rx) = oneshot::channel();
        self.inject(move || {
            let _ = tx.send(f());
        });
        ShardHandle { rx }
    }

    /// Starts `f` as a green thread on the shard's runtime; the handle
    /// gives its result, or the payload it panicked with. `Lost` if the
    /// shard runs no green runtime or its thread has exited.
    ///
    /// The thread's spawn site (in dumps and monitor reports) is the
    /// caller of this function.
    #[track_caller]
    pub fn spawn_green<F, T>(&self, f: F) -> ShardHandle<green::Result<T>>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let site = Location::caller();
        let (tx, rx) = oneshot::channel();
        self.inject(move || {
            let body = move || {
                let _ = tx.send(panic::catch_unwind(AssertUnwindSafe(f)));
            };
            // Outside a green runtime `tx` is dropped: the handle gives `Lost`.
            let _ = green::Builder::new().spawn_at(site, body);
        });
        ShardHandle { rx }
    }

    /// Starts the future `make` builds as a task on the shard's runtime
    /// (built there, so it need not be `Send`); the handle gives its output
    /// or its [`JoinError`](task::JoinError). `Lost` if the shard runs no
    /// runtime or its thread has exited. The task's spawn site is the
    /// caller of this function.
    #[track_caller]
    pub fn spawn_task<F, Fut>(&self, make: F) -> ShardHandle<Result<Fut::Output, task::JoinError>>
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future + 'static,
        Fut::Output: Send + 'static,
    {
        let site = Location::caller();
        let (tx, rx) = oneshot::channel();
        self.inject(move || {
            // Outside a runtime `tx` is dropped: the handle gives `Lost`.
            task::Executor::with(|e| {
                if let Some(e) = e {
                    let handle = e.spawn(make(), site);
                    e.spawn(async move { tx.send(handle.await) }, site);
                }
            });
        });
        ShardHandle { rx }
    }

    fn inject<F: FnOnce() + Send + 'static>(&self, f: F) {
        self.remote.inject(Arc::new(Once(Mutex::new(Some(f)))));
    }
}

/// The result of work started on a shard by [`Shard::spawn`],
/// [`Shard::spawn_green`] or [`Shard::spawn_task`]: a future, or
/// [`join`](ShardHandle::join) from blocking-style code. Dropping it
/// detaches the work.
pub struct ShardHandle<T> {
    rx: oneshot::Receiver<T>,
}

impl<T> ShardHandle<T> {
    /// Waits for the result: parks only the green thread inside a green
    /// runtime, blocks the OS thread elsewhere.
    ///
    /// # Errors
    ///
    /// [`Lost`] if the work was dropped before it gave a result.
    pub fn join(self) -> Result<T, Lost> {
        crate::block_on(self)
    }
}

impl<T> Future for ShardHandle<T> {
    type Output = Result<T, Lost>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<T, Lost>> {
        Pin::new(&mut self.rx).poll(cx).map(|result| result.map_err(|_| Lost(())))
    }
}

impl<T> fmt::Debug for ShardHandle<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ShardHandle").finish_non_exhaustive()
    }
}

/// The work sent to a shard was dropped before it gave a result.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Lost(());

impl fmt::Display for Lost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(
            "the shard dropped the work before it finished: it panicked, the shard runs no \
             runtime of that kind, or the shard's thread exited",
        )
    }
}

impl error::Error for Lost {}

impl fmt::Debug for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Shard").field("id", &self.id()).finish()
    }
}

/// A closure injected once into a reactor.
struct Once<F>(Mutex<Option<F>>);

impl<F: FnOnce() + Send + 'static> Inject for Once<F> {
    fn run(self: Arc<Self>) {
        let f = self.0.lock().unwrap_or_else(PoisonError::into_inner).take();
        if let Some(f) = f {
            // Unwinding out of a reactor turn would drop the other wakes
            // of that turn; the panic hook has already reported it.
            let _ = panic::catch_unwind(AssertUnwindSafe(f));
        }
    }
}

/// The CPUs the calling thread may run on (its affinity mask), ascending.
///
/// # Errors
///
/// The error of `sched_getaffinity(2)`.
pub fn cpus() -> io::Result<Vec<usize>> {
    // SAFETY: cpu_set_t is plain data; all-zero is the empty set.
    let mut set: libc::cpu_set_t = unsafe { mem::zeroed() };
    // SAFETY: `set` is a valid, writable cpu_set_t of the size passed
    // (sched_getaffinity(2)); pid 0 is the calling thread.
    crate::syscall!(unsafe {
        libc::sched_getaffinity(0, mem::size_of::<libc::cpu_set_t>(), &mut set)
    })?;
    Ok((0..libc::CPU_SETSIZE as usize)
        // SAFETY: `cpu` < CPU_SETSIZE, within the set (CPU_ISSET(3)).
        .filter(|&cpu| unsafe { libc::CPU_ISSET(cpu, &set) })
        .collect())
}

/// Pins the calling thread to `cpu` (`sched_setaffinity(2)`).
///
/// # Errors
///
/// `InvalidInput` if `cpu` is not below `CPU_SETSIZE`; otherwise the
/// error of `sched_setaffinity` (`EINVAL`: `cpu` is not allowed here).
pub fn pin_current_thread(cpu: usize) -> io::Result<()> {
    if cpu >= libc::CPU_SETSIZE as usize {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("cannot pin to CPU {cpu}: above CPU_SETSIZE"),
        ));
    }
    // SAFETY: cpu_set_t is plain data; all-zero is the empty set.
    let mut set: libc::cpu_set_t = unsafe { mem::zeroed() };
    // SAFETY: `cpu` < CPU_SETSIZE, within the set (CPU_SET(3)).
    unsafe { libc::CPU_SET(cpu, &mut set) };
    crate::sys::set_affinity(0, &set)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send_sync<T: Send + Sync>() {}

    #[test]
    fn a_shard_handle_is_send_and_sync() {
        assert_send_sync::<Shard>();
    }

    #[test]
    fn a_thread_can_be_pinned_to_each_allowed_cpu() {
        let allowed = cpus().unwrap();
        assert!(!allowed.is_empty());
        std::thread::spawn(move || {
            for &cpu in &allowed {
                pin_current_thread(cpu).unwrap();
                assert_eq!(cpus().unwrap(), [cpu]);
            }
        })
        .join()
        .unwrap();
        assert!(pin_current_thread(libc::CPU_SETSIZE as usize).is_err());
    }
}
