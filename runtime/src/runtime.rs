//! [`Runtime`]: one loop on the current OS thread that runs green threads
//! and stackless tasks side by side.
//!
//! ```
//! use greenloop_runtime::{green, task};
//!
//! let five = greenloop_runtime::run(|| {
//!     // A green thread (here the main one) waits for a task...
//!     let t = task::spawn_local(async { 5 });
//!     let from_task = greenloop_runtime::block_on(t).unwrap();
//!     // ...and a task waits for a green thread.
//!     let t = task::spawn_local(async { green::spawn(|| 5).await.unwrap() });
//!     let from_green = greenloop_runtime::block_on(t).unwrap();
//!     assert_eq!(from_task, from_green);
//!     from_task
//! });
//! assert_eq!(five, 5);
//! ```
//!
//! Inside it, [`green::spawn`](crate::green::spawn),
//! [`task::spawn_local`](crate::task::spawn_local) and
//! [`task::spawn`](crate::task::spawn) all work, and a hand-off between
//! the two models on this thread is a push on a run queue: no syscall. See
//! `context.rs` for the loop.

use std::io;

use crate::context::Context;
use crate::green::Config;

/// A runtime for the current OS thread: green threads and stackless tasks
/// on one loop and one reactor. Configure it with [`Runtime::builder`].
///
/// ```
/// use greenloop_runtime::Runtime;
///
/// let rt = Runtime::builder().stack_size(64 * 1024).build();
/// assert_eq!(rt.run(|| 42), 42);
/// assert_eq!(rt.block_on(async { 7 }), 7);
/// ```
#[derive(Clone, Debug, Default)]
pub struct Runtime {
    config: Config,
}

/// Settings of a [`Runtime`], from [`Runtime::builder`].
#[derive(Clone, Debug, Default)]
pub struct Builder {
    config: Config,
}

impl Builder {
    /// Default usable stack size of the green threads, in bytes (default
    /// [`green::DEFAULT_STACK_SIZE`](crate::green::DEFAULT_STACK_SIZE)).
    pub fn stack_size(mut self, size: usize) -> Builder {
        self.config.stack_size = size;
        self
    }

    /// How many finished green threads' stacks this OS thread keeps for
    /// reuse (see [`green::Runtime::max_cached_stacks`](crate::green::Runtime::max_cached_stacks)).
    pub fn max_cached_stacks(mut self, count: usize) -> Builder {
        self.config.max_cached_stacks = count;
        self
    }

    /// Turns the blocked-loop monitor on for the process, reporting loops
    /// stuck in one green thread or task for `threshold` or longer (see
    /// [`monitor`](crate::monitor); same as `GREENLOOP_MONITOR_MS`).
    pub fn monitor(self, threshold: std::time::Duration) -> Builder {
        crate::monitor::enable(threshold);
        self
    }

    /// Turns on the monitor's best-effort backtrace of a blocked loop
    /// thread, for loops started from now on (see
    /// [`monitor::backtrace`](crate::monitor::backtrace); same as
    /// `GREENLOOP_MONITOR_BACKTRACE=1`). It signals the blocked thread.
    pub fn monitor_backtrace(self) -> Builder {
        crate::monitor::backtrace::enable();
        self
    }

    /// The runtime with these settings.
    pub fn build(self) -> Runtime {
        Runtime { config: self.config }
    }
}

impl Runtime {
    /// A runtime with default settings.
    pub fn new() -> Runtime {
        Runtime::default()
    }

    /// A builder with default settings.
    pub fn builder() -> Builder {
        Builder::default()
    }

    /// A builder with this runtime's settings.
    pub fn into_builder(self) -> Builder {
        Builder { config: self.config }
    }

    /// Runs `f` as the main green thread of a loop on the current OS
    /// thread, with tasks and other green threads beside it, and returns
    /// its result once it finishes. Green threads still alive then are
    /// unwound, and tasks still alive are cancelled.
    ///
    /// # Errors
    ///
    /// When a green runtime already runs on this thread, when the reactor
    /// cannot be created, when the main thread's stack cannot be mapped, or
    /// when `epoll_wait` fails.
    ///
    /// # Panics
    ///
    /// If `f` panics, the panic is resumed here after the runtime shut down.
    pub fn try_run<F: FnOnce() -> R, R>(&self, f: F) -> io::Result<R> {
        Context::run_green(&self.config, f)
    }

    /// Like [`try_run`](Runtime::try_run), panicking on runtime errors.
    ///
    /// # Panics
    ///
    /// On the errors of `try_run`, and if `f` panics.
    pub fn run<F: FnOnce() -> R, R>(&self, f: F) -> R {
        match self.try_run(f) {
            Ok(value) => value,
            Err(e) => panic!("green runtime failed: {e}"),
        }
    }

    /// Runs `future` to completion in the main green thread of a loop
    /// (see [`run`](Runtime::run)) and returns its output.
    ///
    /// # Panics
    ///
    /// As [`run`](Runtime::run).
    pub fn block_on<F: std::future::Future>(&self, future: F) -> F::Output {
        self.run(|| crate::block_on(future))
    }
}

/// Runs `f` as the main green thread of a [`Runtime`] with default
/// settings on the current OS thread, and returns its result.
///
/// # Panics
///
/// If the runtime cannot start (see [`Runtime::try_run`]) or `f` panics.
pub fn run<F: FnOnce() -> R, R>(f: F) -> R {
    Runtime::new().run(f)
}
