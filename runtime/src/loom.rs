//! The atomics and locks of the task and park state words and of the
//! remote wake queue, and the futex a reactor's thread sleeps on,
//! swappable for loom's.
//!
//! Normally these are std's. In the crate's unit tests built with
//! `RUSTFLAGS="--cfg loom"` they are loom's, so the models in
//! `task/loom_model.rs`, `green/park_state.rs` and `reactor/remote/loom_model.rs`
//! explore every interleaving of the real code (see README.md, "loom
//! models"). Only code the models exercise uses this module.
//!
//! Loom has no futex: under loom, [`Futex`] is a model of one, a loom
//! atomic word and a loom wake token. A sleeper checks the word, then
//! waits for the token; a wake gives the token, which a sleeper that has
//! not yet waited still finds. So, as with the kernel's futex, a wake made
//! after the word changed is never lost, and loom reports a sleep that no
//! wake ends as a deadlock.

#[cfg(all(test, loom))]
pub(crate) use loom::sync::atomic::{AtomicU8, AtomicU64, AtomicUsize, Ordering};
#[cfg(all(test, loom))]
pub(crate) use loom::sync::{Mutex, MutexGuard};
#[cfg(not(all(test, loom)))]
pub(crate) use std::sync::atomic::{AtomicU8, AtomicU64, AtomicUsize, Ordering};
#[cfg(not(all(test, loom)))]
pub(crate) use std::sync::{Mutex, MutexGuard};

#[cfg(not(all(test, loom)))]
pub(crate) use crate::sys::Futex;

/// The model of [`crate::sys::Futex`] (see the module docs).
#[cfg(all(test, loom))]
#[derive(Debug)]
pub(crate) struct Futex {
    word: loom::sync::atomic::AtomicU32,
    token: loom::sync::Notify,
    /// Wakes given, for the models' counts.
    wakes: std::sync::atomic::AtomicUsize,
}

#[cfg(all(test, loom))]
impl Futex {
    pub(crate) fn new(value: u32) -> Futex {
        Futex {
            word: loom::sync::atomic::AtomicU32::new(value),
            token: loom::sync::Notify::new(),
            wakes: std::sync::atomic::AtomicUsize::new(0),
        }
    }

    /// Sleeps until woken if the word holds `expected`; the model has no
    /// clock, so `timeout` is ignored (a sleep with one only ends sooner).
    pub(crate) fn wait(
        &self,
        expected: u32,
        _timeout: Option<std::time::Duration>,
    ) -> std::io::Result<()> {
        if self.word.load(Ordering::SeqCst) == expected {
            self.token.wait();
        }
        Ok(())
    }

    pub(crate) fn wake(&self) {
        self.wakes.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        self.token.notify();
    }

    /// How many times [`wake`](Futex::wake) was called.
    pub(crate) fn wakes(&self) -> usize {
        self.wakes.load(std::sync::atomic::Ordering::SeqCst)
    }
}

#[cfg(all(test, loom))]
impl std::ops::Deref for Futex {
    type Target = loom::sync::atomic::AtomicU32;

    fn deref(&self) -> &Self::Target {
        &self.word
    }
}

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
