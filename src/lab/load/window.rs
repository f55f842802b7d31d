//! When a run measures: its [`Window`], and the [`Timeline`] that fixes
//! the window while the clients run.
//!
//! ```text
//!  start ── warm-up ──┬── (keep-alive: until every connection answered) ──┐
//!                     │                           at most the answer wait  │
//!                     └────────── measure_from ── duration ── stop ── linger ── give_up
//! ```
//!
//! On a keep-alive load that asks for it (its
//! [`answer_wait`](super::LoadSpec::answer_wait); the lab's claims do), the
//! warm-up lasts until every connection has had its first answer: a server
//! that is still accepting or still answering its first requests when the
//! window opens (a thread per connection starting 1,000 threads on a
//! loaded CPU) would be measured in its ramp, not its pace. The clients run meanwhile, unrecorded, and the window is
//! fixed the moment the last connection answers, or at the latest the
//! answer wait after the planned warm-up; the run says how many
//! connections had not answered then.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// The answer wait of the lab's claims
/// ([`LoadSpec::answer_wait`](super::LoadSpec::answer_wait)): the longest
/// a keep-alive load's warm-up waits, past the planned one, for every
/// connection's first answer: long enough for a thread per connection to
/// answer 1,000 connections on a loaded 2-CPU machine (it took over 2 s),
/// short enough that a server which never answers some (10,000 threads)
/// costs its run only this much.
pub const ANSWER_LIMIT: Duration = Duration::from_secs(10);

/// The timeline of one run, shared by all clients (and by whoever samples
/// the server alongside it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Window {
    /// Clients start connecting.
    pub start: Instant,
    /// End of the warm-up: requests completed from here on are recorded.
    pub measure_from: Instant,
    /// End of the measurement: no request starts from here on.
    pub stop: Instant,
    /// Requests still in flight are abandoned (counted as unfinished).
    pub give_up: Instant,
}

impl Window {
    /// A window starting now.
    pub fn starting_now(warmup: Duration, duration: Duration, linger: Duration) -> Window {
        Window::measuring_from(Instant::now(), warmup, duration, linger)
    }

    /// A window that started at `start` and measures after `warmup`.
    fn measuring_from(
        start: Instant,
        warmup: Duration,
        duration: Duration,
        linger: Duration,
    ) -> Window {
        let stop = start + warmup + duration;
        Window { start, measure_from: start + warmup, stop, give_up: stop + linger }
    }

    /// The measured part's length.
    pub fn measured(&self) -> Duration {
        self.stop.saturating_duration_since(self.measure_from)
    }

    /// The share of `from..to` that lies in the measured part, `0.0 ..=
    /// 1.0`; an empty span counts whole when `to` lies in it.
    pub fn share(&self, from: Instant, to: Instant) -> f64 {
        let len = to.saturating_duration_since(from);
        if len.is_zero() {
            return if (self.measure_from..self.stop).contains(&to) { 1.0 } else { 0.0 };
        }
        let inside = to.min(self.stop).saturating_duration_since(from.max(self.measure_from));
        inside.as_secs_f64() / len.as_secs_f64()
    }
}

/// A run's [`Window`], fixed during the run (see the module docs): the
/// clients report each connection's first answer, [`fix`](Timeline::fix)
/// waits for them, the clients and the sampler read the result.
#[derive(Debug)]
pub struct Timeline {
    /// The window if the warm-up ends on time (no later than this).
    planned: Window,
    /// The latest the warm-up may end.
    latest: Instant,
    /// Connections to wait for (0: none).
    conns: usize,
    /// Connections that have had their first answer.
    answered: AtomicUsize,
    window: OnceLock<Window>,
}

impl Timeline {
    /// A timeline starting now: a `warmup`, then `duration` measured, then
    /// `linger`. With `wait_for` connections, the warm-up lasts until each
    /// has had its first answer, at most `limit` more (the lab's loads:
    /// [`ANSWER_LIMIT`]).
    pub fn starting_now(
        warmup: Duration,
        duration: Duration,
        linger: Duration,
        wait_for: usize,
        limit: Duration,
    ) -> Timeline {
        let planned = Window::starting_now(warmup, duration, linger);
        let latest = planned.measure_from + if wait_for > 0 { limit } else { Duration::ZERO };
        Timeline {
            planned,
            latest,
            conns: wait_for,
            answered: AtomicUsize::new(0),
            window: OnceLock::new(),
        }
    }

    /// Clients start connecting.
    pub fn start(&self) -> Instant {
        self.planned.start
    }

    /// The window, once fixed.
    pub fn window(&self) -> Option<Window> {
        self.window.get().copied()
    }

    /// Blocks the calling OS thread until the window is fixed (never from
    /// a green thread: it would block its siblings).
    pub fn wait(&self) -> Window {
        *self.window.wait()
    }

    /// The latest any request of the run may still be answered: the
    /// window's `give_up`, or before the window is fixed, the latest it
    /// can be.
    pub fn give_up(&self) -> Instant {
        let late = self.latest.saturating_duration_since(self.planned.measure_from);
        self.window().map_or(self.planned.give_up + late, |w| w.give_up)
    }

    /// One connection had its first answer.
    pub fn answered(&self) {
        self.answered.fetch_add(1, Ordering::Relaxed);
    }

    /// Connections still without an answer.
    pub fn unanswered(&self) -> usize {
        self.conns.saturating_sub(self.answered.load(Ordering::Relaxed))
    }

    /// Fixes the window as planned, at once: for a run that does not go
    /// ahead, so that whoever waits for the window is released.
    pub fn abandon(&self) {
        self.window.get_or_init(|| self.planned);
    }

    /// Fixes the window (see the module docs), waiting for the warm-up,
    /// and returns it. Called once, by the thread that runs the load.
    pub fn fix(&self) -> Window {
        let planned = self.planned;
        loop {
            let now = Instant::now();
            let ready = now >= planned.measure_from && self.unanswered() == 0;
            if ready || now >= self.latest {
                let warmup = now.max(planned.measure_from) - planned.start;
                let window = Window::measuring_from(
                    planned.start,
                    warmup,
                    planned.measured(),
                    planned.give_up - planned.stop,
                );
                return *self.window.get_or_init(|| window);
            }
            let next = if now < planned.measure_from { planned.measure_from } else { self.latest };
            std::thread::sleep((next - now).min(Duration::from_millis(2)));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_are_ordered() {
        let w = Window::starting_now(
            Duration::from_secs(1),
            Duration::from_secs(3),
            Duration::from_secs(2),
        );
        assert!(w.start <= w.measure_from && w.measure_from <= w.stop && w.stop <= w.give_up);
        assert_eq!(w.measured(), Duration::from_secs(3));
        assert_eq!(w.give_up - w.stop, Duration::from_secs(2));
    }

    #[test]
    fn shares_of_a_span_in_the_window() {
        let w = Window::starting_now(
            Duration::from_secs(1),
            Duration::from_secs(2),
            Duration::from_secs(1),
        );
        let at = |ms: u64| w.start + Duration::from_millis(ms);
        assert_eq!(w.share(at(1500), at(2500)), 1.0, "inside");
        assert_eq!(w.share(at(500), at(900)), 0.0, "in the warm-up");
        assert_eq!(w.share(at(3000), at(3500)), 0.0, "in the linger");
        assert!((w.share(at(800), at(1200)) - 0.5).abs() < 1e-9, "across the start");
        assert!((w.share(at(2900), at(3300)) - 0.25).abs() < 1e-9, "across the stop");
        assert!((w.share(at(0), at(4000)) - 0.5).abs() < 1e-9, "around the window");
        assert_eq!(w.share(at(2000), at(2000)), 1.0, "an empty span inside");
        assert_eq!(w.share(at(3000), at(3000)), 0.0, "an empty span at the stop");
    }

    /// Connections in step, each completing a request every `cycle`, all
    /// at the same phase: counted by completions, the window sees 6 or 7
    /// per connection depending on the phase; counted by cycles, always
    /// window / cycle.
    #[test]
    fn cycles_count_connections_in_step_whatever_their_phase() {
        let w = Window::starting_now(
            Duration::from_millis(300),
            Duration::from_millis(700),
            Duration::from_millis(300),
        );
        let cycle = Duration::from_millis(102);
        let mut counts = Vec::new();
        for phase_ms in (0..102).step_by(17) {
            let (mut completed, mut cycles) = (0u32, 0.0);
            let mut from = w.start + Duration::from_millis(phase_ms);
            while from < w.give_up {
                let done = from + cycle;
                completed += u32::from(done >= w.measure_from && done < w.stop);
                cycles += w.share(from, done);
                from = done;
            }
            let expected = w.measured().as_secs_f64() / cycle.as_secs_f64();
            assert!((cycles - expected).abs() < 1e-6, "phase {phase_ms} ms: {cycles}");
            counts.push(completed);
        }
        assert!(counts.contains(&6) && counts.contains(&7), "{counts:?}");
        let fewest = counts.iter().min().map_or(0.0, |&n| f64::from(n));
        let pace = w.measured().as_secs_f64() / cycle.as_secs_f64();
        assert!(fewest < 0.9 * pace, "the count reads more than 10% short at some phase");
    }

    #[test]
    fn the_window_opens_after_every_first_answer_or_at_the_limit() {
        let ms = Duration::from_millis;
        let timeline = Timeline::starting_now(ms(20), ms(100), ms(50), 2, ms(20));
        assert_eq!(timeline.window(), None);
        let before = timeline.give_up();
        assert!(before >= timeline.start() + ms(20 + 20 + 100 + 50), "the latest it can be");
        std::thread::scope(|s| {
            s.spawn(|| {
                std::thread::sleep(ms(25));
                timeline.answered();
                timeline.answered();
            });
            let w = timeline.fix();
            assert!(w.measure_from >= timeline.planned.measure_from, "a whole warm-up");
            assert!(
                timeline.unanswered() == 0 || w.measure_from >= timeline.latest,
                "opened early with {} unanswered",
                timeline.unanswered()
            );
            assert_eq!((w.measured(), w.give_up - w.stop), (ms(100), ms(50)));
            assert_eq!(timeline.window(), Some(w));
            assert_eq!((timeline.wait(), timeline.give_up()), (w, w.give_up));
        });
    }

    #[test]
    fn a_connection_that_never_answers_delays_the_window_by_the_limit_at_most() {
        let ms = Duration::from_millis;
        let timeline = Timeline::starting_now(ms(10), ms(10), ms(10), 1, ms(15));
        let w = timeline.fix();
        assert_eq!(timeline.unanswered(), 1);
        assert!(w.measure_from >= timeline.latest, "{:?}", w.measure_from - w.start);
        assert_eq!(timeline.latest - w.start, ms(25));
    }

    #[test]
    fn without_connections_to_wait_for_the_warm_up_is_as_planned() {
        let ms = Duration::from_millis;
        let timeline = Timeline::starting_now(ms(10), ms(10), ms(10), 0, ms(15));
        let w = timeline.fix();
        assert!(w.measure_from - w.start >= ms(10));
        assert_eq!(w.give_up, timeline.give_up());
    }
}
