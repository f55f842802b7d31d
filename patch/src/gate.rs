//! The one question every interposed call asks first: may this call park
//! a green thread instead of blocking the OS thread? ([`route`])
//!
//! It parks only when the caller is a green thread that may park now (see
//! [`state`](greenloop_runtime::green::hooks::state)), the patch is
//! installed, this process is not the child of a `fork`, and the call is
//! not nested inside a signal handler. Off green threads the answer costs
//! one thread-local load, and the call goes to libc as it is.
//!
//! # Parked at shutdown
//!
//! When a green runtime shuts down, it unwinds the green threads still
//! parked, with a panic that must reach the thread's root. A thread parked
//! inside an interposed call cannot let it pass: the call is an `extern
//! "C"` function, which aborts the process on unwind. So every park here
//! goes through [`park`], which catches that unwind, marks the thread
//! *cancelled* and returns; the interposed call then fails (`ECANCELED`),
//! and so does every later call of that thread, at once, until its code
//! returns and the thread ends. Other threads' destructors at shutdown
//! call libc as usual.

use std::cell::Cell;
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};

use greenloop_runtime::green::{self, hooks::GreenState};

/// Set by [`install`](crate::install); cleared in the child of a `fork`.
static ACTIVE: AtomicBool = AtomicBool::new(false);

thread_local! {
    /// Depth of signal handlers running on this thread (see `signal`).
    static IN_HANDLER: Cell<u32> = const { Cell::new(0) };
    /// The id of the green thread of this OS thread that a shutdown
    /// unwound while it was parked in the patch (0: none).
    static CANCELLED: Cell<u64> = const { Cell::new(0) };
}

/// How an interposed call proceeds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Route {
    /// libc's call, as it is.
    Libc,
    /// The green path: park instead of blocking.
    Green,
    /// The calling green thread was cancelled at shutdown: fail at once.
    Cancelled,
}

/// How the caller's interposed call proceeds (see the module docs).
#[inline]
pub(crate) fn route() -> Route {
    match green::hooks::state() {
        GreenState::Outside => Route::Libc,
        GreenState::Running
            if ACTIVE.load(Ordering::Relaxed) && IN_HANDLER.with(Cell::get) == 0 =>
        {
            Route::Green
        }
        GreenState::Running => Route::Libc,
        GreenState::TearingDown if CANCELLED.with(Cell::get) == current_id() => Route::Cancelled,
        GreenState::TearingDown => Route::Libc,
    }
}

/// Whether the caller is outside any green thread, where every call is
/// libc's: the first half of [`route`], cheap enough to inline into each
/// interposed call.
#[inline(always)]
pub(crate) fn off_green() -> bool {
    green::hooks::state() == GreenState::Outside
}

/// The current green thread's id, 0 outside one.
fn current_id() -> u64 {
    green::try_current().map_or(0, |thread| thread.id().as_u64().get())
}

/// Runs `wait`, which parks the current green thread; `None` if the
/// runtime's shutdown unwound it meanwhile (see the module docs).
pub(crate) fn park<R>(wait: impl FnOnce() -> R) -> Option<R> {
    match panic::catch_unwind(AssertUnwindSafe(wait)) {
        Ok(value) => Some(value),
        Err(_) if green::hooks::state() == GreenState::TearingDown => {
            CANCELLED.with(|id| id.set(current_id()));
            None
        }
        // A panic inside the patch's own wait: it cannot unwind through
        // the interposed `extern "C"` function.
        Err(_) => crate::fatal(b"greenloop-patch: panic while parked in an interposed call\n"),
    }
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
