//! The stackless executor: futures polled by a small, hand-written,
//! single-threaded executor (the asyncio model), on the same reactor as
//! green threads.
//!
//! The API follows tokio's `current_thread` runtime: [`Runtime::block_on`]
//! drives a main future and every task [`spawn`]ed meanwhile; a task's
//! [`JoinHandle`] is a future of its output.
//!
//! ```
//! use greenloop_runtime::task;
//! use std::time::Duration;
//!
//! let rt = task::Runtime::new().unwrap();
//! let total = rt.block_on(async {
//!     let tasks: Vec<_> = (1..=3u64)
//!         .map(|i| task::spawn(async move {
//!             greenloop_runtime::time::sleep(Duration::from_millis(i)).await;
//!             i * 10
//!         }))
//!         .collect();
//!     let mut total = 0;
//!     for t in tasks {
//!         total += t.await.unwrap();
//!     }
//!     total
//! });
//! assert_eq!(total, 60);
//! ```
//!
//! # How a task runs
//!
//! A spawned future lives in one heap cell with its state word and its
//! output slot (`raw`). Its `Waker` is a pointer to that cell with a
//! hand-written vtable: waking an idle task pushes it on its executor's run
//! queue — directly on the executor's thread, through the reactor's remote
//! path from any other — and a wake while it is queued or running never
//! queues it twice. A panic in a task is caught and returned to its
//! `JoinHandle`; the executor keeps going.
//!
//! Blocking inside a task (a `std::thread::sleep`, a blocking read, a
//! [`block_on`](crate::block_on)) blocks the executor's thread and every
//! task on it: that is the anti-pattern the lab measures. Offload such work
//! with [`spawn_blocking`](crate::blocking::spawn_blocking).

mod executor;
mod join;
#[cfg(all(test, loom))]
mod loom_model;
mod raw;
mod state;
#[cfg(test)]
mod tests;

pub use join::{JoinError, JoinHandle};
pub(crate) use raw::RawTask;
pub(crate) use raw::is_task_waker;
pub(crate) use state::check_ref_overflow;

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

pub(crate) use executor::Executor;

/// A single-threaded stackless executor bound to the current OS thread.
///
/// Tasks spawned on it run while [`block_on`](Runtime::block_on) runs.
/// Dropping the runtime cancels the tasks still alive, dropping their
/// futures on this thread.
///
/// It is `!Send`: its tasks (and their `!Send` futures) stay on the thread
/// that made it, so it cannot move to another.
///
/// ```compile_fail,E0277
/// let rt = greenloop_runtime::task::Runtime::new().unwrap();
/// std::thread::spawn(move || drop(rt));
/// ```
#[derive(Debug)]
pub struct Runtime {
    executor: Rc<Executor>,
}

impl Runtime {
    /// Creates a runtime on the current thread's reactor.
    ///
    /// # Errors
    ///
    /// If the thread's reactor cannot be created (out of descriptors).
    pub fn new() -> io::Result<Runtime> {
        Ok(Runtime { executor: Rc::new(Executor::new()?) })
    }

    /// Runs `future` to completion on this thread, running spawned tasks
    /// while it waits, and returns its output.
    ///
    /// # Panics
    ///
    /// If an executor is already running on this thread (nested
    /// `block_on`), or if `epoll_wait` fails.
    pub fn block_on<F: Future>(&self, future: F) -> F::Output {
        crate::context::Context::block_on(&self.executor, future)
    }

    /// Spawns a `Send` task on this runtime.
    #[track_caller]
    pub fn spawn<F>(&self, future: F) -> JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.executor.spawn(future, std::panic::Location::caller())
    }

    /// Spawns a task that need not be `Send` on this runtime.
    #[track_caller]
    pub fn spawn_local<F>(&self, future: F) -> JoinHandle<F::Output>
    where
        F: Future + 'static,
        F::Output: 'static,
    {
        self.executor.spawn(future, std::panic::Location::caller())
    }

    /// Number of tasks spawned and not yet finished.
    pub fn live_tasks(&self) -> usize {
        self.executor.live_tasks()
    }
}

/// Spawns a `Send` task on the executor running on this thread: that of
/// [`Runtime::block_on`], or the one of a [`green::run`](crate::green::run)
/// / [`crate::run`] loop.
///
/// The bound keeps tasks movable between executors (shards); a wake from
/// any thread reaches the task through its reactor's mailbox.
///
/// # Panics
///
/// When called outside a runtime.
#[track_caller]
pub fn spawn<F>(future: F) -> JoinHandle<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    spawn_local(future)
}

/// Spawns a task that need not be `Send` on the executor running on this
/// thread (see [`spawn`]); it is polled and dropped on this thread only.
///
/// # Panics
///
/// When called outside a runtime.
#[track_caller]
pub fn spawn_local<F>(future: F) -> JoinHandle<F::Output>
where
    F: Future + 'static,
    F::Output: 'static,
{
    let site = std::panic::Location::caller();
    Executor::with(|e| match e {
        Some(e) => e.spawn(future, site),
        None => panic!("task::spawn called outside a task runtime; use Runtime::spawn or block_on"),
    })
}

/// Tasks spawned and not yet finished on the executor running on this
/// thread (the caller's task included), or `None` outside an executor. A
/// cheap counter for leak checks, like [`green::stats`](crate::green::stats).
pub fn live_tasks() -> Option<usize> {
    Executor::with(|e| e.map(Executor::live_tasks))
}

/// Yields to the executor once: the task goes to the back of the run
/// queue and the others run first.
pub fn yield_now() -> YieldNow {
    YieldNow { yielded: false }
}

/// The future of [`yield_now`].
#[derive(Debug)]
#[must_use = "futures do nothing unless polled"]
pub struct YieldNow {
    yielded: bool,
}

impl Future for YieldNow {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.yielded {
            return Poll::Ready(());
        }
        self.yielded = true;
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}
