//! # greenloop
//!
//! A Rust runtime written from scratch to settle, with measurements, the
//! sync-vs-async argument: green threads (stackful coroutines, the
//! gevent model) and a stackless future executor (the asyncio model) side
//! by side on one reactor, next to plain OS threads.
//!
//! This crate is the facade: it re-exports the runtime
//! ([`greenloop_runtime`]) and the sockets and services ([`greenloop_net`]).
//! With the `lab` feature (on by default), [`lab`] holds the measurement
//! machinery: closed-loop load generators, the server under test as a
//! pinned child process, `/proc` accounting.
//!
//! ```
//! use std::time::Duration;
//!
//! let answer = greenloop::green::run(|| {
//!     let child = greenloop::green::spawn(|| {
//!         greenloop::green::sleep(Duration::from_millis(1));
//!         21
//!     });
//!     child.join().unwrap() * 2
//! });
//! assert_eq!(answer, 42);
//! ```

#![deny(missing_docs, missing_debug_implementations, unsafe_op_in_unsafe_fn)]

#[cfg(feature = "lab")]
pub mod lab;

pub use greenloop_net as net;
pub use greenloop_runtime::{Builder, Runtime, run};
pub use greenloop_runtime::{block_on, blocking, green, reactor, sync, task, time};
pub use greenloop_runtime::{dump, monitor};
