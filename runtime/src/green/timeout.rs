//! [`timeout`]: a deadline around blocking-style code, as `gevent.Timeout`.
//!
//! The deadline is a reactor timer whose waker records, in the thread's
//! cancel word (see `cancel.rs`), that the timeout at this nesting level
//! fired, and wakes the thread. The thread unwinds from its next park, like
//! a cancel, and the `timeout` call at that level catches the unwind and
//! returns `Err(Elapsed)`. When several nested timeouts fired, the
//! outermost wins: the inner ones let its unwind pass.
//!
//! # Unsafe invariants
//!
//! 1. The timer's waker points at the [`Alarm`] in `timeout`'s frame and
//!    owns no count; the frame's `Armed` guard cancels the timer (dropping
//!    the waker) before the alarm goes out of scope, on return and on
//!    unwind alike (runtime shutdown unwinds every green thread). The wheel
//!    holds the waker only; a clone made of it owns its own copy.

use std::mem::ManuallyDrop;
use std::panic::{self, AssertUnwindSafe};
use std::ptr;
use std::sync::Arc;
use std::task::{RawWaker, RawWakerVTable, Wake, Waker};
use std::time::{Duration, Instant};

use super::cancel::{self, Interrupt};
use super::thread::{Control, control_of};
use crate::reactor::Reactor;
use crate::reactor::wheel::TimerKey;
use crate::time::Elapsed;

/// Runs `f` in the current green thread for at most `duration`: its result,
/// or `Err(Elapsed)` if the deadline passed before it finished.
///
/// `f` is interrupted at its first park after the deadline (a sleep, a
/// socket read, a lock, a join...): it unwinds from there, its destructors
/// run, and what it waited for is left intact, so a socket whose read timed
/// out is still usable. Code that computes without parking is not
/// interrupted; if it finishes after the deadline without parking, its
/// result is returned. Timeouts nest; a [`shield`](super::shield) delays
/// the interruption to its end.
///
/// ```
/// use greenloop_runtime::green;
/// use std::time::Duration;
///
/// green::run(|| {
///     let slow = green::timeout(Duration::from_millis(5), || green::sleep(Duration::from_secs(60)));
///     assert!(slow.is_err());
///     assert_eq!(green::timeout(Duration::from_secs(60), || 7), Ok(7));
/// });
/// ```
///
/// # Panics
///
/// Outside a green thread, or with more than 16,000 nested timeouts. A
/// panic of `f` passes through.
pub fn timeout<R>(duration: Duration, f: impl FnOnce() -> R) -> Result<R, Elapsed> {
    let thread = super::current_waker_ref()
        .expect("green::timeout called outside a green thread (use time::block_on_timeout)");
    let Some(deadline) = Instant::now().checked_add(duration) else { return Ok(f()) };
    // SAFETY: the running thread's waker is a green thread's.
    let level = unsafe { control_of(&thread) }.cancel_state().enter_timeout();
    let alarm = Alarm { thread, level };
    // SAFETY: as above.
    let control = unsafe { control_of(&alarm.thread) };
    let state = control.cancel_state();
    let reactor = Reactor::current();
    // SAFETY: `armed` below takes the timer out of the wheel before `alarm`
    // goes out of scope (invariant 1).
    let timer = reactor.insert_timer(deadline, unsafe { alarm.waker() });
    let armed = Armed { _timer: TimerGuard { reactor: &reactor, timer }, level, control };
    let result = panic::catch_unwind(AssertUnwindSafe(f));
    drop(armed);
    match result {
        Ok(value) => Ok(value),
        Err(payload) if payload.downcast_ref() == Some(&Interrupt::Elapsed(level)) => {
            state.rearm();
            Err(Elapsed::new())
        }
        Err(payload) => panic::resume_unwind(payload),
    }
}

/// What the timer wakes: marks the timeout at `level` fired and interrupts
/// the thread. It lives in `timeout`'s frame, and the timer's waker points
/// at it without a count (invariant 1).
struct Alarm {
    /// The green thread's slot waker, borrowed (it outlives the thread's
    /// frames, see `Scheduler::current_waker_ref`).
    thread: ManuallyDrop<Waker>,
    level: u32,
}

impl Alarm {
    const VTABLE: RawWakerVTable =
        RawWakerVTable::new(Self::clone_raw, Self::wake_raw, Self::wake_raw, Self::drop_raw);

    /// A waker that points at this alarm without owning it.
    ///
    /// # Safety
    ///
    /// The waker must be gone before the alarm: only the reactor's timer
    /// may hold it, and the timer must be cancelled or fired by then.
    unsafe fn waker(&self) -> Waker {
        // SAFETY: the vtable treats `data` as a borrowed `Alarm`, which
        // our caller keeps alive as long as the waker.
        unsafe { Waker::from_raw(RawWaker::new(ptr::from_ref(self).cast(), &Self::VTABLE)) }
    }

    /// A clone owns what it needs: the thread's waker (a count) and the
    /// level, on the heap.
    unsafe fn clone_raw(data: *const ()) -> RawWaker {
        // SAFETY: `data` is a live `Alarm` (invariant 1).
        let alarm = unsafe { &*data.cast::<Alarm>() };
        let owned = Waker::from(Arc::new(OwnedAlarm {
            thread: (*alarm.thread).clone(),
            level: alarm.level,
        }));
        let raw = RawWaker::new(owned.data(), owned.vtable());
        std::mem::forget(owned);
        raw
    }

    unsafe fn wake_raw(data: *const ()) {
        // SAFETY: `data` is a live `Alarm` (invariant 1).
        let alarm = unsafe { &*data.cast::<Alarm>() };
        fire(&alarm.thread, alarm.level);
    }

    unsafe fn drop_raw(_: *const ()) {}
}

/// An [`Alarm`] that owns its parts, made when the timer's waker is cloned.
struct OwnedAlarm {
    thread: Waker,
    level: u32,
}

impl Wake for OwnedAlarm {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        fire(&self.thread, self.level);
    }
}

/// Marks the timeout at `level` of the green thread of `thread` (its waker)
/// fired, and interrupts the thread.
fn fire(thread: &Waker, level: u32) {
    // SAFETY: the alarms hold green threads' wakers only.
    let control = unsafe { control_of(thread) };
    control.cancel_state().fire(level);
    cancel::interrupt(control);
}

/// The armed deadline; on drop (return or unwind) cancels the timer and
/// forgets a firing that was not delivered.
struct Armed<'a> {
    /// Cancelled when the guard drops, before `timeout`'s `Alarm` does.
    _timer: TimerGuard<'a>,
    level: u32,
    control: &'a Control,
}

/// A timer cancelled when the guard drops (return or unwind).
pub(super) struct TimerGuard<'a> {
    pub(super) reactor: &'a Reactor,
    pub(super) timer: TimerKey,
}

impl Drop for TimerGuard<'_> {
    fn drop(&mut self) {
        self.reactor.cancel_timer(self.timer);
    }
}

impl Drop for Armed<'_> {
    fn drop(&mut self) {
        let state = self.control.cancel_state();
        state.clear(self.level);
        state.leave_timeout();
    }
}
