//! How a turn blocks in `epoll_wait`: to the microsecond, not rounded up
//! to the millisecond. (A loop with no I/O registered sleeps on its futex
//! instead, whose timeout is exact already: `remote/owner.rs`.)
//!
//! `epoll_wait` takes whole milliseconds and mio rounds a timeout up, so a
//! turn bounded by a timer 0.3 ms away would sleep a full millisecond, and
//! every timer would fire up to a millisecond after its wheel tick. A 1 ms
//! [`Interval`](crate::time::Interval) then falls a little further behind
//! at each tick until it misses one. So a wait is split:
//!
//! - whole milliseconds go to `epoll_wait`, rounded down: the turn ends
//!   early by less than a millisecond, and the next turn waits the rest;
//! - a rest under a millisecond is waited with `ppoll(2)` on the epoll
//!   descriptor, which is readable when an event is pending and takes
//!   nanoseconds. If it times out there is nothing to fetch; if it reports
//!   readiness, `epoll_wait` fetches the events without blocking.
//!
//! A wait of whole milliseconds, zero or none is one `epoll_wait`: the
//! split costs a second system call only on waits that end on a timer's
//! sub-millisecond deadline.

use std::io;
use std::os::fd::AsRawFd;
use std::time::Duration;

use crate::syscall;

const MILLI: Duration = Duration::from_millis(1);

/// What a turn blocks in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Wait {
    /// `epoll_wait` with this timeout (whole milliseconds, zero or none).
    Epoll(Option<Duration>),
    /// `ppoll` on the epoll descriptor for this long (under 1 ms).
    Precise(Duration),
}

impl Wait {
    /// The wait for a turn bounded by `timeout`: never longer than it, and
    /// ending less than a millisecond before it only when it is longer
    /// than a millisecond.
    pub(super) fn bounded_by(timeout: Option<Duration>) -> Wait {
        match timeout {
            Some(t) if t >= MILLI => Wait::Epoll(Some(Duration::from_millis(
                u64::try_from(t.as_millis()).unwrap_or(u64::MAX),
            ))),
            Some(t) if !t.is_zero() => Wait::Precise(t),
            other => Wait::Epoll(other),
        }
    }
}

/// Blocks for `wait`, then fetches the pending events into `events`.
pub(super) fn epoll(poll: &mut mio::Poll, events: &mut mio::Events, wait: Wait) -> io::Result<()> {
    match wait {
        Wait::Epoll(timeout) => poll.poll(events, timeout),
        Wait::Precise(timeout) => {
            if ready_within(poll, timeout)? {
                poll.poll(events, Some(Duration::ZERO))
            } else {
                events.clear();
                Ok(())
            }
        }
    }
}

/// Whether the epoll descriptor of `poll` becomes readable (an event is
/// pending) within `timeout`.
fn ready_within(poll: &mio::Poll, timeout: Duration) -> io::Result<bool> {
    let mut fd = libc::pollfd { fd: poll.as_raw_fd(), events: libc::POLLIN, revents: 0 };
    debug_assert!(timeout < MILLI);
    let timeout = libc::timespec { tv_sec: 0, tv_nsec: timeout.subsec_nanos() as libc::c_long };
    // SAFETY: `fd` and `timeout` are valid for the call, which writes only
    // `fd.revents`; a null signal mask leaves the thread's mask alone.
    let ready = syscall!(unsafe { libc::ppoll(&mut fd, 1, &timeout, std::ptr::null()) })?;
    Ok(ready > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wait_is_never_longer_than_its_bound_nor_early_by_a_millisecond() {
        let micros = [1, 300, 999, 1_000, 1_001, 1_999, 2_000, 2_300, 30_000_123];
        for us in micros {
            let bound = Duration::from_micros(us);
            match Wait::bounded_by(Some(bound)) {
                Wait::Epoll(Some(t)) => {
                    assert!(t <= bound && bound - t < MILLI, "{bound:?} -> epoll {t:?}");
                    assert_eq!(t.subsec_nanos() % 1_000_000, 0, "whole milliseconds");
                    assert!(!t.is_zero(), "{bound:?} must not spin");
                }
                Wait::Precise(t) => assert!(t == bound && t < MILLI, "{bound:?} -> ppoll {t:?}"),
                Wait::Epoll(None) => panic!("{bound:?} -> unbounded"),
            }
        }
        assert_eq!(Wait::bounded_by(None), Wait::Epoll(None));
        assert_eq!(Wait::bounded_by(Some(Duration::ZERO)), Wait::Epoll(Some(Duration::ZERO)));
    }

    #[test]
    fn a_precise_wait_times_out_empty_and_wakes_on_an_event() {
        let mut poll = mio::Poll::new().unwrap();
        let mut events = mio::Events::with_capacity(8);
        epoll(&mut poll, &mut events, Wait::Precise(Duration::from_micros(200))).unwrap();
        assert!(events.is_empty());
        let waker = mio::Waker::new(poll.registry(), mio::Token(7)).unwrap();
        waker.wake().unwrap();
        epoll(&mut poll, &mut events, Wait::Precise(Duration::from_micros(200))).unwrap();
        let tokens: Vec<_> = events.iter().map(|e| e.token()).collect();
        assert_eq!(tokens, [mio::Token(7)]);
    }
}
