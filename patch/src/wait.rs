//! How an interposed blocking call waits: [`blocking`] is the one helper
//! that every socket call goes through, unless [`passes`] found that the
//! call is libc's and nothing more (no green thread, no managed socket).
//!
//! ```text
//!  blocking(fd, dir, op)
//!    green thread, fd parks here -> loop { op(); EAGAIN? park this green thread on
//!                                   the reactor until dir is ready (or the
//!                                   socket timeout, or close) }
//!    anywhere else               -> op(); EAGAIN on a managed fd the user
//!                                   believes blocking? loop { poll(2); op() }
//! ```
//!
//! The second line keeps a managed socket blocking, as its user expects, on
//! every OS thread that shares it, in stackless tasks, and in the child of
//! a `fork`.

use std::future::{Future, poll_fn};
use std::pin::Pin;
use std::task::Poll;
use std::time::Instant;

use greenloop_runtime::block_on;
use greenloop_runtime::reactor::Direction;
use greenloop_runtime::time::sleep_until;
use libc::{c_int, ssize_t};

use crate::fds::Slot;
use crate::gate::Route;
use crate::manage::{self, Green};
use crate::{errno, fds, gate, owned, real};

/// Why a park ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Woken {
    /// A direction waited on became ready.
    Ready,
    /// The deadline passed.
    TimedOut,
    /// The fd was closed (by another green or OS thread).
    Closed,
    /// The runtime's shutdown unwound the thread (see `gate`).
    Cancelled,
}

/// Whether a call on `fd` is libc's and nothing more, so that the
/// interposed call can jump to libc's: the caller is no green thread, and
/// `fd` is no socket the patch made non-blocking under a user who believes
/// it blocking (whose `EAGAIN` [`blocking`] must turn into a wait).
///
/// A call that starts on another OS thread in the instant a green thread
/// first takes its socket over (between this check and the system call)
/// can see that socket non-blocking once, and answer `EAGAIN`.
#[inline(always)]
pub(crate) fn passes(fd: c_int) -> bool {
    gate::off_green() && !fds::existing(fd).is_some_and(Slot::parks)
}

/// Runs the blocking socket call `op` on `fd` as its caller expects (see
/// the module docs), when [`passes`] said it may wait. `op` returns what
/// libc's call returns, `-1` with `errno` on failure.
#[inline]
pub(crate) fn blocking(fd: c_int, dir: Direction, op: impl FnMut() -> ssize_t) -> ssize_t {
    if gate::off_green() { libc_way(fd, dir, op) } else { in_green(fd, dir, op) }
}

/// [`blocking`] in a green thread: the green route if it has one.
#[inline]
fn in_green(fd: c_int, dir: Direction, op: impl FnMut() -> ssize_t) -> ssize_t {
    match gate::route() {
        Route::Libc => {}
        Route::Green => {
            if let Some(green) = manage::route(fd, dir, false) {
                return green.run(dir, op);
            }
        }
        Route::Cancelled => return errno::fail(libc::ECANCELED),
    }
    libc_way(fd, dir, op)
}

/// `op` as libc runs it, with the OS-thread wait of a managed fd after it.
#[inline(always)]
fn libc_way(fd: c_int, dir: Direction, mut op: impl FnMut() -> ssize_t) -> ssize_t {
    let result = op();
    if result < 0 {
        return failed(fd, dir, result, op);
    }
    result
}

/// After `op` failed with `result` off the green path: a managed fd whose
/// user believes it blocking waits for `dir` in `poll(2)` and retries.
#[cold]
#[inline(never)]
fn failed(fd: c_int, dir: Direction, result: ssize_t, op: impl FnMut() -> ssize_t) -> ssize_t {
    if errno::get() == libc::EAGAIN { os_wait(fd, dir, result, op) } else { result }
}

impl Green {
    /// The green loop: try `op`, park on `WouldBlock`, retry.
    pub(crate) fn run(&self, dir: Direction, mut op: impl FnMut() -> ssize_t) -> ssize_t {
        let deadline = self.timeout.and_then(|timeout| Instant::now().checked_add(timeout));
        loop {
            let event = self.reactor.ready_event(self.key, dir);
            let result = op();
            if result >= 0 || errno::get() != libc::EAGAIN {
                return result;
            }
            if let Some(event) = event {
                self.reactor.clear_ready(self.key, event);
            }
            match wait_any(&[(self, dir)], deadline) {
                Woken::Ready => {}
                Woken::TimedOut => return errno::fail(libc::EAGAIN),
                Woken::Closed => return errno::fail(libc::EBADF),
                Woken::Cancelled => return errno::fail(libc::ECANCELED),
            }
        }
    }
}

/// Parks the current green thread until one of `waits` is ready, the
/// deadline passes, or one of the fds is closed.
pub(crate) fn wait_any(waits: &[(&Green, Direction)], deadline: Option<Instant>) -> Woken {
    let mut timer = deadline.map(sleep_until);
    let woken = gate::park(|| {
        block_on(poll_fn(|cx| {
            for (green, dir) in waits {
                if !owned::set_waiter(green.fd, green.generation, *dir, cx.waker())
                    || green.slot.generation() != green.generation
                {
                    return Poll::Ready(Woken::Closed);
                }
                if green.reactor.poll_ready(green.key, *dir, cx).is_ready() {
                    return Poll::Ready(Woken::Ready);
                }
            }
            match timer.as_mut().map(|timer| Pin::new(timer).poll(cx)) {
                Some(Poll::Ready(())) => Poll::Ready(Woken::TimedOut),
                _ => Poll::Pending,
            }
        }))
    })
    .unwrap_or(Woken::Cancelled);
    for (green, dir) in waits {
        owned::clear_waiter(green.fd, green.generation, *dir);
    }
    woken
}

/// The OS-thread wait of a managed fd whose user believes it blocking:
/// `poll(2)` for `dir`, then `op` again, within the socket's timeout.
/// `result` is `op`'s failed first answer, returned as it is for fds the
/// patch does not manage.
fn os_wait(fd: c_int, dir: Direction, result: ssize_t, mut op: impl FnMut() -> ssize_t) -> ssize_t {
    let Some(slot) = fds::managed(fd).filter(|slot| slot.parks()) else {
        return result;
    };
    let deadline = deadline_of(slot, dir);
    loop {
        match poll_one(fd, dir, deadline) {
            Ok(true) => {}
            Ok(false) => return errno::fail(libc::EAGAIN),
            Err(()) => return -1,
        }
        let result = op();
        if result >= 0 || errno::get() != libc::EAGAIN || !slot.parks() {
            return result;
        }
    }
}

/// The deadline of a call that starts now on `slot` in `dir`.
pub(crate) fn deadline_of(slot: &Slot, dir: Direction) -> Option<Instant> {
    slot.timeout(dir).and_then(|timeout| Instant::now().checked_add(timeout))
}

/// Blocks the OS thread in `poll(2)` until `fd` is ready for `dir`:
/// `Ok(false)` once `deadline` passed, `Err` with `errno` set on failure
/// (`EINTR` included, as a blocking call reports it).
pub(crate) fn poll_one(fd: c_int, dir: Direction, deadline: Option<Instant>) -> Result<bool, ()> {
    let events = match dir {
        Direction::Read => libc::POLLIN,
        Direction::Write => libc::POLLOUT,
    };
    let mut pollfd = libc::pollfd { fd, events, revents: 0 };
    let timeout = match deadline {
        None => -1,
        Some(deadline) => {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(false);
            }
            c_int::try_from(left.as_millis().max(1)).unwrap_or(c_int::MAX)
        }
    };
    // SAFETY: one valid pollfd.
    match unsafe { real::poll(&raw mut pollfd, 1, timeout) } {
        n if n > 0 => Ok(true),
        0 => Ok(false),
        _ => Err(()),
    }
}
