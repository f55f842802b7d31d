//! Green threads: stackful coroutines scheduled on the reactor.
//!
//! Code in a green thread is written blocking-style, and every call that
//! would block — [`park`], [`sleep`], [`JoinHandle::join`],
//! [`block_on`](crate::block_on) of a pending future, a socket read that
//! returns `WouldBlock` — suspends only the current green thread and
//! switches to the next runnable one. This is the greenlet/gevent model.
//!
//! The API follows `std::thread`: [`run`] starts a scheduler on the current
//! OS thread and returns its closure's result; inside it, [`spawn`] and
//! [`Builder`] start green threads, whose [`JoinHandle`] gives their result
//! or their panic.
//!
//! ```
//! use greenloop_runtime::green;
//! use std::time::Duration;
//!
//! let total = green::run(|| {
//!     let workers: Vec<_> = (1..=3u64)
//!         .map(|i| {
//!             green::Builder::new()
//!                 .name(format!("worker-{i}"))
//!                 .spawn(move || {
//!                     green::sleep(Duration::from_millis(i));
//!                     i * 10
//!                 })
//!                 .unwrap()
//!         })
//!         .collect();
//!     workers.into_iter().map(|w| w.join().unwrap()).sum::<u64>()
//! });
//! assert_eq!(total, 60);
//! ```
//!
//! # Design
//!
//! * A green thread never leaves the OS thread that spawned it, so `Rc`
//!   and `RefCell` stay sound inside it and the closure needs no `Send`
//!   bound.
//! * **std's `thread_local!` is per OS thread, not per green thread:** every
//!   green thread of the OS thread sees the same value, and a value set
//!   before a park may be changed by another green thread when it returns.
//!   Accessing one is memory-safe (each access is a short borrow on one OS
//!   thread) but it is shared state. For per-green-thread values use
//!   [`green_local!`](crate::green_local) ([`Local`]).
//! * Every green thread has a `Send + Sync` [`Waker`] that
//!   unparks it: timers, sockets, channels and foreign OS threads all wake it
//!   the same way. A wake from another OS thread goes through the
//!   reactor's mailbox, which wakes the loop if it sleeps.
//! * The scheduler is the green half of the thread's loop (see
//!   [`crate::Runtime`]): tasks run beside green threads, in every entry
//!   point, so a green thread can spawn and wait for tasks and back.
//! * Stacks are lazily committed, with a guard page below each, and cached
//!   per OS thread across runtimes; an overflow prints which green thread
//!   overflowed and aborts.
//! * When `run`'s closure returns, green threads still alive are unwound
//!   (their destructors run) and freed; their joiners get `Err`.
//!
//! # Control
//!
//! * [`JoinHandle::cancel`] unwinds a thread from its next park, at once if
//!   it is parked; its joiner gets `Err` with a [`Cancelled`] payload
//!   ([`is_cancelled`]). [`shield`] defers it. What happens to a running
//!   thread, or one inside a foreign future, is told on [`Cancelled`].
//! * [`timeout`] bounds blocking-style code, and nests.
//! * [`scope`] spawns threads that borrow from the caller's stack.
//! * [`Local`] ([`green_local!`](crate::green_local)) holds per-thread
//!   values.
//! * [`Group`] joins or cancels many threads; [`Pool`] bounds how many run.

mod block;
mod cancel;
mod group;
pub mod hooks;
mod join;
mod local;
mod overflow;
mod park_state;
mod run_queue;
pub(crate) mod scheduler;
mod scope;
mod stack;
mod thread;
mod timeout;

pub use cancel::{Cancelled, is_cancelled, shield};
pub use group::{Group, Pool};
pub(crate) use join::is_green_waker;
pub use join::{Builder, JoinHandle, Result, spawn};
pub use local::Local;
pub(crate) use overflow::running_stack;
pub use scope::{Scope, ScopedJoinHandle, scope};
pub(crate) use thread::Signal;
pub use thread::{Thread, ThreadId, current, park, park_timeout, sleep, try_current, yield_now};
pub use timeout::timeout;

use scheduler::Scheduler;
use std::io;
use std::mem::ManuallyDrop;
use std::task::Waker;

/// The default usable stack size of a green thread: 128 KiB of address
/// space, committed page by page as it is touched.
pub const DEFAULT_STACK_SIZE: usize = 128 * 1024;

/// Settings of a context's green scheduler.
#[derive(Clone, Debug)]
pub(crate) struct Config {
    /// Default usable stack size of a green thread.
    pub(crate) stack_size: usize,
    /// Most stacks the thread keeps for reuse.
    pub(crate) max_cached_stacks: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config { stack_size: DEFAULT_STACK_SIZE, max_cached_stacks: stack::DEFAULT_MAX_CACHED }
    }
}

/// A green runtime: configure it, then [`run`](Runtime::run) a closure in it.
///
/// It is [`crate::Runtime`] under its green-thread name: the closure runs
/// as the main green thread of the thread's loop, which runs stackless
/// tasks too.
///
/// ```
/// use greenloop_runtime::green::Runtime;
///
/// let answer = Runtime::new().stack_size(64 * 1024).run(|| 42);
/// assert_eq!(answer, 42);
/// ```
#[derive(Clone, Debug, Default)]
pub struct Runtime {
    runtime: crate::Runtime,
}

impl Runtime {
    /// A runtime with default settings.
    pub fn new() -> Runtime {
        Runtime::default()
    }

    /// Default usable stack size of its green threads, in bytes.
    pub fn stack_size(self, size: usize) -> Runtime {
        Runtime { runtime: self.runtime.into_builder().stack_size(size).build() }
    }

    /// How many finished threads' stacks this OS thread keeps for reuse
    /// (default 16,384; 0 disables the cache).
    ///
    /// The cache belongs to the OS thread and outlives this runtime, so the
    /// next one on the thread starts with its stacks. Up to 12,288 of them
    /// keep their touched pages resident; the rest are handed back to the
    /// kernel with `madvise(MADV_FREE)` and keep only address space. At most
    /// 16,384 stacks are cached in the whole process (where the kernel lacks
    /// guard markers, each holds two of its `vm.max_map_count` mappings).
    pub fn max_cached_stacks(self, count: usize) -> Runtime {
        Runtime { runtime: self.runtime.into_builder().max_cached_stacks(count).build() }
    }

    /// Runs `f` as the main green thread on the current OS thread and
    /// returns its result once it finishes.
    ///
    /// # Errors
    ///
    /// When called inside a green runtime, when the reactor cannot be
    /// created, when the main thread's stack cannot be mapped, or when
    /// `epoll_wait` fails.
    ///
    /// # Panics
    ///
    /// If `f` panics, the panic is resumed here after the runtime shut down.
    pub fn try_run<F: FnOnce() -> R, R>(&self, f: F) -> io::Result<R> {
        self.runtime.try_run(f)
    }

    /// Like [`try_run`](Runtime::try_run), panicking on runtime errors.
    ///
    /// # Panics
    ///
    /// On the errors of `try_run`, and if `f` panics.
    pub fn run<F: FnOnce() -> R, R>(&self, f: F) -> R {
        self.runtime.run(f)
    }
}

/// Runs `f` as the main green thread of a new runtime on the current OS
/// thread and returns its result. See [`Runtime`] to configure it.
///
/// # Panics
///
/// If the runtime cannot start (see [`Runtime::try_run`]) or `f` panics.
pub fn run<F: FnOnce() -> R, R>(f: F) -> R {
    crate::run(f)
}

/// Counters of the running green runtime (for tests and the lab).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stats {
    /// Green threads alive (spawned, not yet finished), the caller included.
    pub live_threads: usize,
    /// Stacks kept for reuse by the pool.
    pub cached_stacks: usize,
}

/// Counters of the green runtime on this OS thread, `None` outside one.
///
/// A green runtime is a loop started by a green entry point ([`run`],
/// [`crate::run`]); in the loop of `task::Runtime::block_on` only green
/// threads see one (its tasks count with [`task::live_tasks`](crate::task::live_tasks)).
pub fn stats() -> Option<Stats> {
    crate::context::Context::with(|c| {
        let c = c?;
        let s = c.green();
        (c.green_entered() || s.is_running_thread())
            .then(|| Stats { live_threads: s.live_threads(), cached_stacks: s.cached_stacks() })
    })
}

/// Whether the caller runs inside a green thread.
pub fn in_green_thread() -> bool {
    Scheduler::with(|s| s.is_some_and(Scheduler::is_running_thread))
}

/// The running green thread's control block, `None` outside a green
/// thread; valid while that thread runs.
fn current_control() -> Option<*const thread::Control> {
    Scheduler::with(|s| s.and_then(Scheduler::current_control))
}

/// The current green thread's waker, `None` outside a green thread.
pub(crate) fn current_waker() -> Option<Waker> {
    Scheduler::with(|s| s.and_then(Scheduler::current_waker))
}

/// `block_on`'s wait in a green thread: until the thread's waker fires;
/// yields first if it already fired. `false` outside a green thread.
#[inline(always)]
pub(crate) fn wait_for_wake() -> bool {
    crate::context::Context::switch_green(scheduler::Switch::WaitWake)
}

/// The current green thread's waker without taking a reference count, for
/// `block_on`: valid only in a frame of the current green thread, never
/// stored (see `Scheduler::current_waker_ref`). Inlined into `block_on`,
/// which is generic and so compiled in the caller's crate.
#[inline]
pub(crate) fn current_waker_ref() -> Option<ManuallyDrop<Waker>> {
    Scheduler::with(|s| s.and_then(Scheduler::current_waker_ref))
}
