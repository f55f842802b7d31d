//! The atomics of the task and park state words, swappable for loom's.
//!
//! Normally these are std's. In the crate's unit tests built with
//! `RUSTFLAGS="--cfg loom"` they are loom's, so the models in
//! `task/loom_model.rs` and `green/park_state.rs` explore every interleaving
//! of the real state-word code (see README.md, "loom models"). Only code
//! the models exercise uses this module.

#[cfg(all(test, loom))]
pub(crate) use loom::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
#[cfg(not(all(test, loom)))]
pub(crate) use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
