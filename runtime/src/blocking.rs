//! [`spawn_blocking`]: run blocking code on a bounded pool of OS threads.
//!
//! This is the "thread-pool offload" of the debate (asyncio's
//! `run_in_executor`, FastAPI's `def` endpoints): a task or a green thread
//! hands a blocking closure to the pool and waits for its result without
//! blocking its own thread. The pool grows on demand up to `max_threads`;
//! a thread idle for `idle_timeout` exits. When all threads are busy, jobs
//! queue (FIFO): throughput is then bounded by the pool size, which is what
//! the lab's `C4_offload_rescues` measures.
//!
//! # Back-pressure
//!
//! The queue is bounded too (`max_queued`, [`DEFAULT_MAX_QUEUED`] unless
//! the pool is built with [`Pool::bounded`]). Past the bound,
//! [`Pool::try_spawn`] returns a [`WouldBlock`](io::ErrorKind::WouldBlock)
//! error, and [`Pool::spawn`] (so [`spawn_blocking`]) waits until a pool
//! thread takes a job off the queue: that parks only the calling green
//! thread, but blocks a task's whole executor thread, which stops it
//! accepting more work; a task awaits [`Pool::spawn_async`] instead. The
//! spawns waiting for room are served in order; one dropped while waiting
//! leaves the line and passes on a wake it took. [`Pool::stats`] reports
//! the queue's length and the spawns waiting for room.

use std::collections::VecDeque;
use std::fmt;
use std::future::Future;
use std::io;
use std::panic::{self, AssertUnwindSafe};
use std::pin::Pin;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock, PoisonError};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use crate::completion::Completion;
use crate::task::JoinError;

type Job = Box<dyn FnOnce() + Send>;

/// Default cap of the global pool used by [`spawn_blocking`].
pub const DEFAULT_MAX_THREADS: usize = 64;

/// Default idle time after which a pool thread exits.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(10);

/// Default bound on the jobs queued for a thread (1,024 per thread of the
/// default pool): a burst past it waits, or fails with `try_spawn`.
pub const DEFAULT_MAX_QUEUED: usize = 64 * 1024;

/// A bounded pool of OS threads for blocking work. Cheap to clone (shared).
#[derive(Clone)]
pub struct Pool {
    inner: Arc<Inner>,
}

struct Inner {
    state: Mutex<State>,
    available: Condvar,
    max_threads: usize,
    max_queued: usize,
    idle_timeout: Duration,
}

struct State {
    queue: VecDeque<Job>,
    /// Spawns waiting for room in a full queue, FIFO, each under its
    /// ticket; a pool thread that takes a job wakes the first.
    room_waiters: VecDeque<(u64, Waker)>,
    /// The ticket of the next spawn that waits for room.
    next_ticket: u64,
    threads: usize,
    idle: usize,
}

/// A snapshot of a [`Pool`]'s counters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PoolStats {
    /// Threads alive (busy or idle).
    pub threads: usize,
    /// Threads waiting for a job.
    pub idle: usize,
    /// Jobs queued, not yet taken by a thread (at most the pool's bound).
    pub queued: usize,
    /// [`Pool::spawn`] and [`Pool::spawn_async`] calls waiting for room in a
    /// full queue.
    pub waiting_spawns: usize,
}

impl Pool {
    /// A pool of at most `max_threads` threads (at least 1), each exiting
    /// after `idle_timeout` without work, queueing up to
    /// [`DEFAULT_MAX_QUEUED`] jobs. Threads start on demand.
    pub fn new(max_threads: usize, idle_timeout: Duration) -> Pool {
        Pool::bounded(max_threads, idle_timeout, DEFAULT_MAX_QUEUED)
    }

    /// Like [`new`](Pool::new), queueing up to `max_queued` jobs (at least
    /// 1) before spawns wait or fail (see the module docs).
    pub fn bounded(max_threads: usize, idle_timeout: Duration, max_queued: usize) -> Pool {
        let state = State {
            queue: VecDeque::new(),
            room_waiters: VecDeque::new(),
            next_ticket: 0,
            threads: 0,
            idle: 0,
        };
        Pool {
            inner: Arc::new(Inner {
                state: Mutex::new(state),
                available: Condvar::new(),
                max_threads: max_threads.max(1),
                max_queued: max_queued.max(1),
                idle_timeout,
            }),
        }
    }

    /// The process-wide pool of [`spawn_blocking`]
    /// ([`DEFAULT_MAX_THREADS`], [`DEFAULT_IDLE_TIMEOUT`]).
    pub fn global() -> &'static Pool {
        static GLOBAL: OnceLock<Pool> = OnceLock::new();
        GLOBAL.get_or_init(|| Pool::new(DEFAULT_MAX_THREADS, DEFAULT_IDLE_TIMEOUT))
    }

    /// The cap on threads.
    pub fn max_threads(&self) -> usize {
        self.inner.max_threads
    }

    /// Threads alive now (busy or idle).
    pub fn threads(&self) -> usize {
        self.inner.lock().threads
    }

    /// The bound on queued jobs.
    pub fn max_queued(&self) -> usize {
        self.inner.max_queued
    }

    /// The pool's counters now.
    pub fn stats(&self) -> PoolStats {
        let state = self.inner.lock();
        PoolStats {
            threads: state.threads,
            idle: state.idle,
            queued: state.queue.len(),
            waiting_spawns: state.room_waiters.len(),
        }
    }

    /// Runs `f` on a pool thread; the handle gives its result.
    ///
    /// # Errors
    ///
    /// [`WouldBlock`](io::ErrorKind::WouldBlock) if the queue holds
    /// [`max_queued`](Pool::max_queued) jobs already; the OS's error if the
    /// pool has no thread and the OS refuses to start one.
    pub fn try_spawn<F, T>(&self, f: F) -> io::Result<BlockingHandle<T>>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let (job, handle) = job(f);
        match self.inner.queue(job, None)? {
            None => Ok(handle),
            Some(_) => Err(io::Error::new(
                io::ErrorKind::WouldBlock,
                format!(
                    "blocking pool full: {} jobs queued for {} threads; retry later, \
                     use Pool::spawn to wait for room, or raise the bound with Pool::bounded",
                    self.inner.max_queued, self.inner.max_threads
                ),
            )),
        }
    }

    /// Like [`try_spawn`](Pool::try_spawn), but waits for room while the
    /// queue is full: parks the current green thread, or blocks the OS
    /// thread, which for a task is its whole executor (see the module docs;
    /// a task should use [`spawn_async`](Pool::spawn_async)).
    ///
    /// # Panics
    ///
    /// If no thread can be started at all.
    pub fn spawn<F, T>(&self, f: F) -> BlockingHandle<T>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let (job, handle) = job(f);
        if let Some(job) = self.queue(job, None) {
            crate::block_on(self.room_for(job));
        }
        handle
    }

    /// Like [`spawn`](Pool::spawn), but waits for room in a full queue by
    /// awaiting, so a task on an executor leaves its thread to the others
    /// meanwhile. The job is queued once this future completes.
    ///
    /// # Panics
    ///
    /// If no thread can be started at all.
    ///
    /// ```
    /// use greenloop_runtime::blocking::Pool;
    /// use greenloop_runtime::block_on;
    ///
    /// let len = block_on(async {
    ///     Pool::global().spawn_async(|| "four".len()).await.await.unwrap()
    /// });
    /// assert_eq!(len, 4);
    /// ```
    pub async fn spawn_async<F, T>(&self, f: F) -> BlockingHandle<T>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let (job, handle) = job(f);
        if let Some(job) = self.queue(job, None) {
            self.room_for(job).await;
        }
        handle
    }

    /// Queues `job`, or gives it back if the queue is full.
    fn queue(&self, job: Job, waiter: Option<(u64, &Waker)>) -> Option<Job> {
        self.inner
            .queue(job, waiter)
            .unwrap_or_else(|e| panic!("spawn_blocking: cannot start a pool thread: {e}"))
    }

    /// Waits until the queue has room for `job`, and queues it.
    fn room_for(&self, job: Job) -> RoomFor<'_> {
        let ticket = {
            let mut state = self.inner.lock();
            state.next_ticket += 1;
            state.next_ticket
        };
        RoomFor { pool: self, job: Some(job), ticket }
    }
}

/// [`Pool::room_for`]'s future. Its waker waits in the pool's
/// `room_waiters` under its ticket; dropped before it queued its job, it
/// leaves the line, and passes on the wake it took if it was woken.
struct RoomFor<'a> {
    pool: &'a Pool,
    job: Option<Job>,
    ticket: u64,
}

impl Future for RoomFor<'_> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        let Some(job) = this.job.take() else { return Poll::Ready(()) };
        this.job = this.pool.queue(job, Some((this.ticket, cx.waker())));
        if this.job.is_none() { Poll::Ready(()) } else { Poll::Pending }
    }
}

impl Drop for RoomFor<'_> {
    fn drop(&mut self) {
        if self.job.is_none() {
            return;
        }
        let mut state = self.pool.inner.lock();
        let before = state.room_waiters.len();
        state.room_waiters.retain(|(ticket, _)| *ticket != self.ticket);
        let woken = state.room_waiters.len() == before;
        let next = if woken { state.room_waiters.pop_front() } else { None };
        drop(state);
        if let Some((_, waker)) = next {
            waker.wake();
        }
    }
}

/// Wraps `f` into a job that stores its result, and the handle to it.
fn job<F, T>(f: F) -> (Job, BlockingHandle<T>)
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    let slot = Arc::new(Completion::new());
    let done = slot.clone();
    let job: Job = Box::new(move || {
        let result = panic::catch_unwind(AssertUnwindSafe(f)).map_err(JoinError::Panicked);
        done.complete(result);
    });
    (job, BlockingHandle { slot })
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Queues `job` and makes sure a thread will run it. A full queue gives
    /// the job back (`Ok(Some)`), after putting `waiter` in line to be woken
    /// when a thread takes a job off the queue (a waiter already in line
    /// keeps its place, with its new waker); a queued job's waiter leaves
    /// the line.
    fn queue(self: &Arc<Self>, job: Job, waiter: Option<(u64, &Waker)>) -> io::Result<Option<Job>> {
        let mut state = self.lock();
        if state.queue.len() >= self.max_queued {
            if let Some((ticket, waker)) = waiter {
                match state.room_waiters.iter_mut().find(|(t, _)| *t == ticket) {
                    Some((_, registered)) => registered.clone_from(waker),
                    None => state.room_waiters.push_back((ticket, waker.clone())),
                }
            }
            return Ok(Some(job));
        }
        if let Some((ticket, _)) = waiter {
            state.room_waiters.retain(|(t, _)| *t != ticket);
        }
        state.queue.push_back(job);
        if state.idle >= state.queue.len() {
            self.available.notify_one();
        } else if state.threads < self.max_threads {
            state.threads += 1;
            let inner = Arc::clone(self);
            let started = std::thread::Builder::new()
                .name("greenloop-blocking".into())
                .spawn(move || inner.work());
            if let Err(e) = started {
                state.threads -= 1;
                if state.threads == 0 {
                    state.queue.pop_back();
                    return Err(e);
                }
            }
        }
        Ok(None)
    }

    /// A pool thread: run jobs; exit after `idle_timeout` without one.
    fn work(&self) {
        let mut state = self.lock();
        loop {
            if let Some(job) = state.queue.pop_front() {
                let room_waiter = state.room_waiters.pop_front();
                drop(state);
                if let Some((_, waker)) = room_waiter {
                    waker.wake();
                }
                job();
                state = self.lock();
                continue;
            }
            state.idle += 1;
            let (next, timeout) = self
                .available
                .wait_timeout(state, self.idle_timeout)
                .unwrap_or_else(PoisonError::into_inner);
            state = next;
            state.idle -= 1;
            if timeout.timed_out() && state.queue.is_empty() {
                state.threads -= 1;
                return;
            }
        }
    }
}

/// Runs `f` on the global blocking pool ([`Pool::global`]).
///
/// Await the handle from a task, or [`join`](BlockingHandle::join) it from
/// a green thread (parks only that thread) or a plain thread.
///
/// ```
/// use greenloop_runtime::blocking::spawn_blocking;
///
/// let handle = spawn_blocking(|| std::fs::metadata("/").is_ok());
/// assert!(handle.join().unwrap());
/// ```
pub fn spawn_blocking<F, T>(f: F) -> BlockingHandle<T>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    Pool::global().spawn(f)
}

/// The result of a [`spawn_blocking`] job: a future, or
/// [`join`](BlockingHandle::join) blocking-style.
pub struct BlockingHandle<T> {
    slot: Arc<Completion<Result<T, JoinError>>>,
}

impl<T> BlockingHandle<T> {
    /// Waits for the job: parks only the current green thread inside the
    /// green runtime, blocks the OS thread elsewhere. `Err` if it panicked.
    pub fn join(self) -> Result<T, JoinError> {
        crate::block_on(self)
    }

    /// Whether the job finished.
    pub fn is_finished(&self) -> bool {
        self.slot.is_done()
    }
}

impl<T> Future for BlockingHandle<T> {
    type Output = Result<T, JoinError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        crate::dump::noting(self.slot.poll_take(cx), || crate::dump::Wait::Blocking)
    }
}

impl fmt::Debug for Pool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.inner.lock();
        f.debug_struct("Pool")
            .field("max_threads", &self.inner.max_threads)
            .field("threads", &state.threads)
            .field("idle", &state.idle)
            .field("queued", &state.queue.len())
            .field("max_queued", &self.inner.max_queued)
            .field("waiting_spawns", &state.room_waiters.len())
            .finish()
    }
}

impl<T> fmt::Debug for BlockingHandle<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BlockingHandle").field("finished", &self.is_finished()).finish()
    }
}
