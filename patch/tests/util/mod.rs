//! Helpers shared by the patch's integration tests.

#![allow(dead_code, reason = "each test binary uses a part")]

use std::sync::atomic::{AtomicUsize, Ordering};

#[path = "../../../runtime/tests/watchdog/mod.rs"]
mod watchdog_impl;
pub use watchdog_impl::watchdog;

/// Counts how many callers are inside a section at once, and the most.
#[derive(Debug, Default)]
pub struct InFlight {
    now: AtomicUsize,
    max: AtomicUsize,
}

impl InFlight {
    /// Runs `f` counted as in flight.
    pub fn run<R>(&self, f: impl FnOnce() -> R) -> R {
        let now = self.now.fetch_add(1, Ordering::SeqCst) + 1;
        self.max.fetch_max(now, Ordering::SeqCst);
        let result = f();
        self.now.fetch_sub(1, Ordering::SeqCst);
        result
    }

    /// The most in flight at once so far.
    pub fn max(&self) -> usize {
        self.max.load(Ordering::SeqCst)
    }
}
