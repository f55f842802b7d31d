//! The one question every interposed call asks first: may this call park
//! a green thread instead of blocking the OS thread?
//!
//! Yes only when the caller is a green thread that may park now (see
//! [`may_park`](greenloop_runtime::green::hooks::may_park)), the patch is
//! installed, this process is not the child of a `fork`, and the call is
//! not nested inside a signal handler. Off green threads the answer costs
//! one thread-local load, and the call goes to libc as it is.

use std::cell::Cell;
use std::sync::atomic::{AtomicBool, Ordering};

use greenloop_runtime::green::hooks::may_park;

/// Set by [`install`](crate::install); cleared in the child of a `fork`.
static ACTIVE: AtomicBool = AtomicBool::new(false);

thread_local! {
    /// Depth of signal handlers running on this thread (see `signal`).
    static IN_HANDLER: Cell<u32> = const { Cell::new(0) };
}

/// Whether the caller may park its green thread instead of blocking.
#[inline]
pub(crate) fn green() -> bool {
    may_park() && ACTIVE.load(Ordering::Relaxed) && IN_HANDLER.with(Cell::get) == 0
}

/// Turns the green paths on for this process.
pub(crate) fn activate() {
    ACTIVE.store(true, Ordering::Relaxed);
}

/// Whether [`activate`] ran (and no `fork` since).
pub(crate) fn is_active() -> bool {
    ACTIVE.load(Ordering::Relaxed)
}

/// The `pthread_atfork` child hook: the child of a fork has a copy of its
/// parent's reactor (the same epoll instance), so it must never park.
pub(crate) extern "C" fn after_fork_in_child() {
    ACTIVE.store(false, Ordering::Relaxed);
}

/// Runs `handler` as a signal handler: interposed calls inside it pass
/// through to libc, even when it interrupted a green thread.
pub(crate) fn in_signal_handler(handler: impl FnOnce()) {
    IN_HANDLER.with(|depth| depth.set(depth.get() + 1));
    handler();
    IN_HANDLER.with(|depth| depth.set(depth.get() - 1));
}
