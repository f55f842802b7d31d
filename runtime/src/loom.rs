//! The atomics of the task state machine, swappable for loom's.
//!
//! Normally these are std's. In the crate's unit tests built with
//! `RUSTFLAGS="--cfg loom"` they are loom's, so the models in
//! `task/loom_model.rs` explore every interleaving of the real state-word
//! code (see README.md, "loom models"). Only code the models exercise uses
//! this module.

#[cfg(all(test, loom))]
pub(crate) use loom::sync::atomic::{AtomicUsize, Ordering};
#[cfg(not(all(test, loom)))]
pub(crate) use std::sync::atomic::{AtomicUsize, Ordering};
