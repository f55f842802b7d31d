//! Time: [`sleep`], [`timeout`] and [`interval`] as futures, backed by the
//! reactor's timing wheel, with blocking-style forms for green threads.
//!
//! A [`Sleep`] arms its timer on first poll, in the reactor of the thread
//! that polls it, and cancels it when dropped. Timers have millisecond
//! resolution and never fire early: a deadline is rounded up to the next
//! millisecond tick.
//!
//! Only [`sleep`] reads the clock (its deadline is now plus the duration).
//! A poll reads none: it compares the deadline with the loop's clock
//! ([`Reactor::turn_time`], the instant of the last reactor turn) and arms
//! the timer if it is later; once armed, the timer's firing is what says
//! the deadline passed. So a deadline that passes between two turns
//! completes at the first turn after its tick, as if its timer had been
//! armed earlier; a `sleep(Duration::ZERO)` waits for the next tick (up to
//! 1 ms), as tokio's does. To give way without waiting, yield instead
//! ([`green::yield_now`](crate::green::yield_now),
//! [`task::yield_now`](crate::task::yield_now)).
//!
//! Blocking-style code uses [`green::sleep`](crate::green::sleep),
//! [`block_on_timeout`] and [`Interval::tick_blocking`], which park only the
//! calling green thread (or block a plain OS thread).

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

mod interval;
mod timeout;

pub use interval::{Interval, MissedTickBehavior, interval, interval_at};
pub use timeout::{Elapsed, Timeout, block_on_timeout, timeout, timeout_at};

use crate::reactor::wheel::TimerKey;
use crate::reactor::{Reactor, ReactorId};

/// A future that completes at (or after) a deadline.
///
/// Dropping it cancels its timer. Created by [`sleep`] and [`sleep_until`].
#[derive(Debug)]
#[must_use = "futures do nothing unless polled"]
pub struct Sleep {
    deadline: Instant,
    /// The reactor (by id) holding the armed timer, and the timer's key.
    timer: Option<(ReactorId, TimerKey)>,
}

/// Completes `duration` from now.
#[inline]
pub fn sleep(duration: Duration) -> Sleep {
    sleep_until(Instant::now().checked_add(duration).unwrap_or_else(far_future))
}

/// Completes at `deadline`.
#[inline]
pub fn sleep_until(deadline: Instant) -> Sleep {
    Sleep { deadline, timer: None }
}

/// About 30 years from now: "never" for timers.
fn far_future() -> Instant {
    Instant::now() + Duration::from_secs(86_400 * 365 * 30)
}

impl Sleep {
    /// The instant this sleep completes at.
    pub fn deadline(&self) -> Instant {
        self.deadline
    }

    /// Whether the deadline has passed.
    pub fn is_elapsed(&self) -> bool {
        Instant::now() >= self.deadline
    }

    /// Moves the deadline; the timer is re-armed on the next poll.
    pub fn reset(&mut self, deadline: Instant) {
        self.cancel();
        self.deadline = deadline;
    }

    /// Cancels the armed timer, if it lives in this thread's reactor. A
    /// timer armed on another thread fires there harmlessly and is freed.
    fn cancel(&mut self) {
        if let Some((reactor_id, key)) = self.timer.take() {
            Reactor::with_existing(|reactor| {
                if reactor.id() == reactor_id {
                    reactor.cancel_timer(key);
                }
            });
        }
    }

    /// [`Future::poll`] on this thread's reactor. It reads no clock: the
    /// timer's own state tells whether the deadline passed (see the module
    /// docs). Inlined, with `poll`, into the polling frame: a green thread
    /// sleeping in `block_on` then touches fewer stack lines per poll (see
    /// `block_on`).
    #[inline]
    fn poll_on(&mut self, reactor: &Reactor, cx: &mut Context<'_>) -> Poll<()> {
        if let Some((reactor_id, key)) = self.timer {
            if reactor_id == reactor.id() {
                if reactor.set_timer_waker(key, cx.waker()) {
                    crate::dump::note(crate::dump::Wait::Timer(self.deadline));
                    return Poll::Pending;
                }
                // Fired: the wheel's clock passed the deadline.
                self.timer = None;
                return Poll::Ready(());
            }
            // Armed on another thread, whose reactor fires it harmlessly.
            self.timer = None;
        }
        match reactor.arm_timer(self.deadline, cx.waker()) {
            Some(key) => {
                self.timer = Some((reactor.id(), key));
                crate::dump::note(crate::dump::Wait::Timer(self.deadline));
                Poll::Pending
            }
            None => Poll::Ready(()),
        }
    }
}

impl Future for Sleep {
    type Output = ();

    #[inline]
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = &mut *self;
        Reactor::with_current(|reactor| this.poll_on(reactor, cx))
    }
}

impl Drop for Sleep {
    fn drop(&mut self) {
        self.cancel();
    }
}
