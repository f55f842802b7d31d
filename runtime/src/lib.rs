//! greenloop's runtime: one reactor per OS thread, and on it two ways to
//! wait without blocking the thread.
//!
//! * [`green`]: stackful green threads (corosensei coroutines). Code is
//!   written blocking-style; every call that would block parks only the
//!   current green thread.
//! * [`task`]: stackless futures on a small hand-written executor, written
//!   with `.await`.
//! * [`sync`]: channels, `Mutex`, `Semaphore`, `Notify`, `WaitGroup` and
//!   `select`, built on wakers so each works from all of the above and from
//!   plain OS threads.
//! * [`shard`]: several such threads, one per core, and how to hand work
//!   from one to another.
//!
//! Both wait on [`std::task::Waker`]s stored in the same [`reactor`], so
//! anything that can wake one can wake the other: a green thread can
//! [`block_on`] a future, and a future can await a green thread's
//! [`JoinHandle`](green::JoinHandle).

#![deny(missing_docs, missing_debug_implementations, unsafe_op_in_unsafe_fn)]
#![warn(clippy::undocumented_unsafe_blocks)]

mod block_on;
pub mod blocking;
mod completion;
mod context;
pub mod dump;
pub mod green;
mod id;
mod loom;
pub mod monitor;
mod panic;
pub mod reactor;
mod runtime;
pub mod shard;
mod slab;
pub mod sync;
pub mod sys;
pub mod task;
pub mod time;

pub use block_on::block_on;
pub use dump::dump;
pub use runtime::{Builder, Runtime, run};
