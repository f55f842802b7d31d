//! Cancelling a green thread from outside: [`JoinHandle::cancel`],
//! [`shield`], and the [`Cancelled`] payload its joiner gets.
//!
//! A cancel is a request stored in the thread's control block, plus a wake.
//! The thread acts on it at its next *interruption point*, any park or
//! yield (the rules users see are on [`Cancelled`]): there it unwinds with
//! a private payload that only its own spawn wrapper catches (so no panic
//! message is printed) and turns into [`Cancelled`].
//!
//! The unwind is a Rust unwind started by `panic::resume_unwind` on the
//! thread's own stack, caught by the `catch_unwind` at its root, so it never
//! leaves the coroutine and never crosses the scheduler's or the reactor's
//! frames: the interruption point is in the thread's frame that called the
//! park, after the switch back returned. A thread that parks inside an
//! `extern "C"` callback or a destructor that must not unwind would abort
//! there; greenloop parks in neither.
//!
//! Why not corosensei's forced unwind (dropping the suspended coroutine)?
//! It runs from outside the thread, so it cannot reach a running thread at
//! its next park, cannot be caught inside the thread (which `timeout` and
//! `scope` need), and ends the coroutine without its normal completion
//! path; the runtime uses it only at shutdown.
//!
//! # The cancel word
//!
//! ```text
//!  bit 31        KILL      a cancel was requested
//!  bit 30        THROWN    the unwind was started (delivered once)
//!  bits 16..30   LEVEL     the outermost green::timeout that fired (0: none)
//!  bits 0..16    SHIELD    depth of shield() sections (no delivery while > 0)
//! ```
//!
//! Any thread sets KILL or LEVEL; only the green thread itself touches
//! THROWN and SHIELD, so plain `fetch_*` operations suffice.

use std::any::Any;
use std::fmt;
use std::panic;
use std::sync::atomic::{AtomicU32, Ordering};

use super::thread::{Control, UNPARK, WAKE};

const KILL: u32 = 1 << 31;
const THROWN: u32 = 1 << 30;
const LEVEL_SHIFT: u32 = 16;
const LEVEL: u32 = ((1 << 14) - 1) << LEVEL_SHIFT;
const SHIELD: u32 = (1 << 16) - 1;

/// The payload of a cancelled green thread's `Err` from
/// [`JoinHandle::join`](super::JoinHandle::join).
///
/// [`JoinHandle::cancel`](super::JoinHandle::cancel) makes the thread
/// unwind from its next park: [`park`](super::park), [`sleep`](super::sleep),
/// a join, [`block_on`](crate::block_on) of a pending future (so every
/// greenloop socket, channel, lock and semaphore wait), or
/// [`yield_now`](super::yield_now). Its destructors run; the future it
/// waited for is dropped, which takes it off the primitive's waiter list;
/// the `Mutex` guards and `Semaphore` permits it held are released.
///
/// * A thread that is running (computing, not parked) is not interrupted:
///   it unwinds at its next park.
/// * A thread inside `block_on` of a foreign future unwinds from the park
///   between two polls; the future is dropped without being polled again.
///   A future that blocks its OS thread (a non-greenloop blocking call) is
///   not interrupted until it returns.
/// * A thread that has not started yet never runs its closure.
/// * A cancel after the thread finished does nothing.
/// * The unwind is delivered once: destructors that park on the way out
///   park normally. A `catch_unwind` in the thread can stop it, as it can
///   stop a panic; the thread then runs on, uncancelled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cancelled;

impl fmt::Display for Cancelled {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("green thread was cancelled")
    }
}

impl std::error::Error for Cancelled {}

/// Whether a green thread's `Err` payload says it was cancelled (rather
/// than that it panicked).
pub fn is_cancelled(payload: &(dyn Any + Send)) -> bool {
    payload.is::<Cancelled>()
}

/// Why a thread unwinds from an interruption point: the private payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Interrupt {
    /// [`JoinHandle::cancel`](super::JoinHandle::cancel).
    Killed,
    /// The `green::timeout` at this nesting depth elapsed.
    Elapsed(u32),
}

/// A green thread's cancel word (see the module docs), in its `Control`.
#[derive(Debug, Default)]
pub(crate) struct CancelState {
    word: AtomicU32,
    /// Nesting depth of the thread's `green::timeout` calls (thread-only).
    depth: AtomicU32,
}

impl CancelState {
    /// Requests the unwind; `true` if it was not requested before.
    fn request_kill(&self) -> bool {
        self.word.fetch_or(KILL, Ordering::AcqRel) & KILL == 0
    }

    /// Whether an unwind is requested and not yet delivered.
    pub(super) fn is_pending(&self) -> bool {
        let word = self.word.load(Ordering::Acquire);
        word & (KILL | LEVEL) != 0 && word & THROWN == 0
    }

    /// Whether a kill was requested.
    pub(super) fn is_killed(&self) -> bool {
        self.word.load(Ordering::Acquire) & KILL != 0
    }

    /// Records that the timeout at `level` fired; an outer one (smaller
    /// level) that fired takes precedence.
    pub(super) fn fire(&self, level: u32) {
        let _ = self.word.fetch_update(Ordering::AcqRel, Ordering::Acquire, |word| {
            let current = (word & LEVEL) >> LEVEL_SHIFT;
            (current == 0 || level < current).then_some(word & !LEVEL | level << LEVEL_SHIFT)
        });
    }

    /// Forgets the firing of the timeout at `level` (it returned); an outer
    /// one's firing stays.
    pub(super) fn clear(&self, level: u32) {
        let _ = self.word.fetch_update(Ordering::AcqRel, Ordering::Acquire, |word| {
            ((word & LEVEL) >> LEVEL_SHIFT == level).then_some(word & !LEVEL)
        });
    }

    /// Allows a new delivery after an unwind was caught at its target.
    pub(super) fn rearm(&self) {
        self.word.fetch_and(!THROWN, Ordering::AcqRel);
    }

    /// Enters a timeout: its level (1 for the outermost).
    pub(super) fn enter_timeout(&self) -> u32 {
        let level = self.depth.fetch_add(1, Ordering::Relaxed) + 1;
        assert!(level < LEVEL >> LEVEL_SHIFT, "green::timeout nested too deeply");
        level
    }

    /// Leaves the innermost timeout.
    pub(super) fn leave_timeout(&self) {
        self.depth.fetch_sub(1, Ordering::Relaxed);
    }

    /// The interrupt to deliver now, if one is pending, unshielded and not
    /// yet delivered; marks it delivered.
    ///
    /// Every park and yield asks, and nearly always nothing was requested:
    /// that answer is one load and one test, inlined; the rest is cold.
    #[inline]
    fn take(&self) -> Option<Interrupt> {
        let word = self.word.load(Ordering::Acquire);
        if word & (KILL | LEVEL) == 0 {
            return None;
        }
        self.take_requested(word)
    }

    /// `take` once a kill or an elapsed timeout is recorded in `word`.
    #[cold]
    #[inline(never)]
    fn take_requested(&self, word: u32) -> Option<Interrupt> {
        if word & (THROWN | SHIELD) != 0 {
            return None;
        }
        if std::thread::panicking() {
            // A destructor parks during an unwind (a panic, or the runtime's
            // shutdown): a second unwind would abort. Deliver later.
            return None;
        }
        self.word.fetch_or(THROWN, Ordering::AcqRel);
        let level = (word & LEVEL) >> LEVEL_SHIFT;
        // An elapsed timeout is delivered first: it is caught inside the
        // thread, and the kill is delivered at the next park after it.
        Some(if level != 0 { Interrupt::Elapsed(level) } else { Interrupt::Killed })
    }
}

/// Requests that the thread of `control` unwinds at its next interruption
/// point, and wakes it if it is parked.
pub(super) fn cancel(control: &Control) {
    if control.cancel_state().request_kill() {
        interrupt(control);
    }
}

/// Wakes the thread of `control` out of whatever it is parked in; if it is
/// not parked, leaves tokens so that its next park returns at once.
pub(super) fn interrupt(control: &Control) {
    control.signal(UNPARK);
    control.signal(WAKE);
}

/// The interruption point: unwinds the running thread of `control` if an
/// interrupt is pending for it.
#[inline]
pub(super) fn check(control: &Control) {
    if let Some(interrupt) = control.cancel_state().take() {
        panic::resume_unwind(Box::new(interrupt));
    }
}

/// What a thread's root does with the payload of its unwind: a cancel
/// becomes [`Cancelled`], a panic stays itself.
pub(super) fn into_join_error(payload: Box<dyn Any + Send>) -> Box<dyn Any + Send> {
    if payload.is::<Interrupt>() { Box::new(Cancelled) } else { payload }
}

/// Runs `f` shielded from cancellation: a cancel or an elapsed
/// [`timeout`](super::timeout) requested meanwhile is delivered at the
/// first park after `f` returned. Shields nest. Outside a green thread it
/// just runs `f`.
///
/// ```
/// use greenloop_runtime::green;
/// use std::time::Duration;
///
/// green::run(|| {
///     let (tx, rx) = std::sync::mpsc::channel();
///     let worker = green::spawn(move || {
///         green::shield(|| green::sleep(Duration::from_millis(5)));
///         tx.send("shielded part done").unwrap();
///         green::sleep(Duration::from_secs(60)); // unwinds here
///     });
///     green::yield_now();
///     worker.cancel();
///     let payload = worker.join().unwrap_err();
///     assert!(green::is_cancelled(&*payload));
///     assert_eq!(rx.try_recv(), Ok("shielded part done"));
/// });
/// ```
pub fn shield<R>(f: impl FnOnce() -> R) -> R {
    struct Unshield(Option<*const Control>);
    impl Drop for Unshield {
        fn drop(&mut self) {
            if let Some(control) = self.0 {
                // SAFETY: the running thread's control block, alive while
                // the thread runs, and this guard lives on its stack.
                unsafe { &*control }.cancel_state().word.fetch_sub(1, Ordering::AcqRel);
            }
        }
    }
    let control = super::current_control();
    if let Some(control) = control {
        // SAFETY: as in `Unshield::drop`.
        unsafe { &*control }.cancel_state().word.fetch_add(1, Ordering::AcqRel);
    }
    let _unshield = Unshield(control);
    f()
}
