//! [`timeout`]: a deadline around blocking-style code, as `gevent.Timeout`.
//!
//! The deadline is a reactor timer whose waker records, in the thread's
//! cancel word (see `cancel.rs`), that the timeout at this nesting level
//! fired, and wakes the thread. The thread unwinds from its next park, like
//! a cancel, and the `timeout` call at that level catches the unwind and
//! returns `Err(Elapsed)`. When several nested timeouts fired, the
//! outermost wins: the inner ones let its unwind pass.

use std::panic::{self, AssertUnwindSafe};
use std::rc::Rc;
use std::sync::Arc;
use std::task::{Wake, Waker};
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
    let control = super::current_control()
        .expect("green::timeout called outside a green thread (use time::block_on_timeout)");
    let Some(deadline) = Instant::now().checked_add(duration) else { return Ok(f()) };
    let waker = super::current_waker().expect("inside a green thread");
    // SAFETY: the running thread's control block, alive while it runs, and
    // `Armed` below lives on its stack.
    let state = unsafe { &*control }.cancel_state();
    let level = state.enter_timeout();
    let reactor = Reactor::current();
    let alarm = Waker::from(Arc::new(Alarm { thread: waker, level }));
    let timer = reactor.insert_timer(deadline, alarm);
    let armed = Armed { reactor, timer, level, control };
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

/// The timer's waker: marks the timeout at `level` fired and interrupts the
/// thread.
struct Alarm {
    /// The green thread's own waker (keeps its control block alive).
    thread: Waker,
    level: u32,
}

impl Wake for Alarm {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        // SAFETY: `thread` is the green thread's waker, from `current_waker`.
        let control = unsafe { control_of(&self.thread) };
        control.cancel_state().fire(self.level);
        cancel::interrupt(control);
    }
}

/// The armed deadline; on drop (return or unwind) cancels the timer and
/// forgets a firing that was not delivered.
struct Armed {
    reactor: Rc<Reactor>,
    timer: TimerKey,
    level: u32,
    control: *const Control,
}

impl Drop for Armed {
    fn drop(&mut self) {
        self.reactor.cancel_timer(self.timer);
        // SAFETY: as in `timeout`: the guard lives on the thread's stack.
        let state = unsafe { &*self.control }.cancel_state();
        state.clear(self.level);
        state.leave_timeout();
    }
}
