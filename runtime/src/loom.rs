//! The atomics and locks of the task and park state words and of the
//! remote wake queue, swappable for loom's.
//!
//! Normally these are std's. In the crate's unit tests built with
//! `RUSTFLAGS="--cfg loom"` they are loom's, so the models in
//! `task/loom_model.rs`, `green/park_state.rs` and `reactor/remote/loom_model.rs`
//! explore every interleaving of the real code (see README.md, "loom
//! models"). Only code the models exercise uses this module.

#[cfg(all(test, loom))]
pub(crate) use loom::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, AtomicUsize, Ordering};
#[cfg(all(test, loom))]
pub(crate) use loom::sync::{Mutex, MutexGuard};
#[cfg(not(all(test, loom)))]
pub(crate) use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, AtomicUsize, Ordering};
#[cfg(not(all(test, loom)))]
pub(crate) use std::sync::{Mutex, MutexGuard};

/// Preemptions per loom execution: enough for the races the models check
/// (each needs one or two), small enough that a model runs in seconds.
#[cfg(all(test, loom))]
const PREEMPTIONS: usize = 3;

/// Runs `f` under loom, every interleaving up to [`PREEMPTIONS`]
/// preemptions: the one set-up every model uses.
#[cfg(all(test, loom))]
pub(crate) fn model(f: impl Fn() + Send + Sync + 'static) {
    let mut builder = loom::model::Builder::new();
    builder.preemption_bound = Some(PREEMPTIONS);
    builder.check(f);
}
