//! [`interval`]: a tick every period, with a policy for missed ticks.

use std::future::{Future, poll_fn};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use super::{Sleep, sleep_until};

/// What an [`Interval`] does when ticks were missed (the consumer was
/// late by more than a period).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum MissedTickBehavior {
    /// Fire the missed ticks back to back until caught up (the schedule
    /// stays `start + n × period`).
    #[default]
    Burst,
    /// Restart the schedule from now: the next tick is a period after the
    /// late one.
    Delay,
    /// Skip the missed ticks: the next tick is the next point of the
    /// original schedule that lies in the future.
    Skip,
}

/// Ticks every `period`, the first tick immediately.
///
/// # Panics
///
/// If `period` is zero.
///
/// ```
/// use greenloop_runtime::{block_on, time};
/// use std::time::Duration;
///
/// let mut ticks = time::interval(Duration::from_millis(2));
/// block_on(async {
///     for _ in 0..3 {
///         ticks.tick().await;
///     }
/// });
/// ```
pub fn interval(period: Duration) -> Interval {
    interval_at(Instant::now(), period)
}

/// Ticks every `period`, the first tick at `start`.
///
/// # Panics
///
/// If `period` is zero.
pub fn interval_at(start: Instant, period: Duration) -> Interval {
    assert!(!period.is_zero(), "interval period must be non-zero");
    Interval { sleep: sleep_until(start), period, missed: MissedTickBehavior::default() }
}

/// A stream of ticks; see [`interval`].
#[derive(Debug)]
pub struct Interval {
    sleep: Sleep,
    period: Duration,
    missed: MissedTickBehavior,
}

impl Interval {
    /// Sets the missed-tick policy (default [`MissedTickBehavior::Burst`]).
    pub fn set_missed_tick_behavior(&mut self, behavior: MissedTickBehavior) {
        self.missed = behavior;
    }

    /// The period.
    pub fn period(&self) -> Duration {
        self.period
    }

    /// Waits for the next tick and returns its scheduled instant.
    pub async fn tick(&mut self) -> Instant {
        poll_fn(|cx| self.poll_tick(cx)).await
    }

    /// Blocking-style [`tick`](Interval::tick), for green threads.
    pub fn tick_blocking(&mut self) -> Instant {
        crate::block_on(self.tick())
    }

    /// Polls for the next tick.
    ///
    /// It reads the clock, so a tick that is due is ready at once, also
    /// when the loop has not turned since it fell due (a missed tick, or a
    /// caller late by more than a period): a [`Sleep`] alone would complete
    /// only at the next turn.
    pub fn poll_tick(&mut self, cx: &mut Context<'_>) -> Poll<Instant> {
        let scheduled = self.sleep.deadline();
        let now = Instant::now();
        if now < scheduled && Pin::new(&mut self.sleep).poll(cx).is_pending() {
            return Poll::Pending;
        }
        let next = match self.missed {
            _ if now < scheduled + self.period => scheduled + self.period,
            MissedTickBehavior::Burst => scheduled + self.period,
            MissedTickBehavior::Delay => now + self.period,
            MissedTickBehavior::Skip => {
                let late = now.duration_since(scheduled).as_nanos();
                let periods = late / self.period.as_nanos() + 1;
                let periods = u32::try_from(periods).unwrap_or(u32::MAX);
                scheduled + self.period.saturating_mul(periods)
            }
        };
        self.sleep.reset(next);
        Poll::Ready(scheduled)
    }
}

/// The ticks as a futures-core `Stream` of their scheduled instants; it
/// never ends. `poll_next` is [`Interval::poll_tick`].
impl futures_core::Stream for Interval {
    type Item = Instant;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Instant>> {
        self.get_mut().poll_tick(cx).map(Some)
    }
}
