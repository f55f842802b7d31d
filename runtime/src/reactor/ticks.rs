//! The timing wheel's clock: instants to whole-millisecond ticks and back.
//!
//! Tick `t` is the instant `start + t ms`. A deadline rounds up to the
//! first tick at or after it, so a timer never fires early; the present
//! rounds down, so a tick is reached only once it has fully passed.
//!
//! Converting a deadline costs a `Timespec` subtraction and a division,
//! some fifty instructions, and timers come in bursts that share a tick
//! (a batch of `sleep(1 ms)`, a timeout armed per request). So the clock
//! keeps the span of instants that round up to the last tick it computed,
//! `(start + (t - 1) ms, start + t ms]`, and answers a deadline inside it
//! with two comparisons.

use std::cell::Cell;
use std::time::{Duration, Instant};

/// The largest tick: later deadlines saturate here (far beyond any wheel
/// level, so they wait in its overflow list).
const MAX_TICK: u64 = u64::MAX / 2;

/// Instants that round up to `tick`: those in `(after, upto]`.
#[derive(Clone, Copy, Debug)]
struct Span {
    after: Instant,
    upto: Instant,
    tick: u64,
}

/// Converts instants to ticks of one millisecond after `start`.
#[derive(Debug)]
pub(crate) struct Ticks {
    start: Instant,
    /// The span of the last deadline converted (empty at first).
    last: Cell<Span>,
}

impl Ticks {
    /// A clock whose tick 0 is `start`.
    pub(crate) fn new(start: Instant) -> Self {
        Self { start, last: Cell::new(Span { after: start, upto: start, tick: 0 }) }
    }

    /// The tick of `deadline`, rounded up: a timer never fires early.
    #[inline]
    pub(crate) fn ceil(&self, deadline: Instant) -> u64 {
        let last = self.last.get();
        if last.after < deadline && deadline <= last.upto {
            return last.tick;
        }
        self.ceil_and_remember(deadline)
    }

    /// [`ceil`](Ticks::ceil) computed, and its span kept for the next call.
    fn ceil_and_remember(&self, deadline: Instant) -> u64 {
        let since = deadline.saturating_duration_since(self.start);
        let ms = since.as_secs().saturating_mul(1_000);
        let tick = ms.saturating_add(u64::from(since.subsec_nanos().div_ceil(1_000_000)));
        let tick = tick.min(MAX_TICK);
        if (1..MAX_TICK).contains(&tick) {
            let after = self.start.checked_add(Duration::from_millis(tick - 1));
            let upto = self.start.checked_add(Duration::from_millis(tick));
            if let (Some(after), Some(upto)) = (after, upto) {
                self.last.set(Span { after, upto, tick });
            }
        }
        tick
    }

    /// The tick of `now`, rounded down: the last tick that has passed.
    pub(crate) fn floor(&self, now: Instant) -> u64 {
        let since = now.saturating_duration_since(self.start);
        let ms = since.as_secs().saturating_mul(1_000);
        ms.saturating_add(u64::from(since.subsec_millis())).min(MAX_TICK)
    }

    /// The instant of `tick`.
    pub(crate) fn instant(&self, tick: u64) -> Instant {
        self.start + Duration::from_millis(tick)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `ceil` without the remembered span: the definition.
    fn ceil_by_nanos(start: Instant, deadline: Instant) -> u64 {
        let nanos = deadline.saturating_duration_since(start).as_nanos();
        u64::try_from(nanos.div_ceil(1_000_000)).unwrap_or(u64::MAX).min(MAX_TICK)
    }

    #[test]
    fn ceil_matches_the_definition_at_and_around_tick_boundaries() {
        let start = Instant::now();
        let ticks = Ticks::new(start);
        let mut checked = 0;
        for ms in [0u64, 1, 2, 3, 999, 1_000, 1_001, 86_400_000] {
            for nanos in [0i64, -1_000_000, -999_999, -1, 1, 2, 500_000, 999_999] {
                let base = start + Duration::from_millis(ms);
                let deadline = match u64::try_from(nanos) {
                    Ok(after) => base + Duration::from_nanos(after),
                    Err(_) => match base.checked_sub(Duration::from_nanos(nanos.unsigned_abs())) {
                        Some(deadline) => deadline,
                        None => continue,
                    },
                };
                // Twice: the first call computes, the second may hit the span.
                for _ in 0..2 {
                    assert_eq!(
                        ticks.ceil(deadline),
                        ceil_by_nanos(start, deadline),
                        "{ms} ms {nanos} ns"
                    );
                    checked += 1;
                }
            }
        }
        assert!(checked > 100);
    }

    #[test]
    fn a_burst_in_one_tick_then_the_next() {
        let start = Instant::now();
        let ticks = Ticks::new(start);
        let first = start + Duration::from_micros(4_200);
        assert_eq!(ticks.ceil(first), 5);
        assert_eq!(ticks.ceil(first + Duration::from_micros(700)), 5);
        assert_eq!(ticks.ceil(start + Duration::from_millis(5)), 5, "the span's end is in it");
        assert_eq!(ticks.ceil(start + Duration::from_millis(4)), 4, "its start is not");
        assert_eq!(ticks.ceil(start + Duration::from_nanos(5_000_001)), 6);
        assert_eq!(ticks.ceil(start), 0);
        assert_eq!(ticks.ceil(start + Duration::from_secs(1 << 62)), MAX_TICK);
    }

    #[test]
    fn floor_and_instant() {
        let start = Instant::now();
        let ticks = Ticks::new(start);
        assert_eq!(ticks.floor(start + Duration::from_micros(4_999)), 4);
        assert_eq!(ticks.floor(start + Duration::from_millis(5)), 5);
        assert_eq!(ticks.instant(7), start + Duration::from_millis(7));
        assert_eq!(ticks.floor(ticks.instant(7)), 7);
        assert_eq!(ticks.ceil(ticks.instant(7)), 7);
    }
}
