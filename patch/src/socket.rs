//! The interposed waits that are not transfers: `connect` (a green thread
//! parks until the handshake ends) and `poll` (a green thread parks until
//! one of its fds is ready, or its timeout).
//!
//! `poll` parks on the reactor when every fd it watches is a socket the
//! patch can register; with any other fd (a pipe, a socket another library
//! registered) it falls back to polling with `timeout` 0 between short
//! green sleeps (1 ms, doubling up to 16 ms), so it never blocks the OS
//! thread either way.

use std::time::{Duration, Instant};

use greenloop_runtime::green;
use greenloop_runtime::reactor::Direction;
use libc::{c_int, nfds_t, pollfd, sockaddr, socklen_t};

use crate::gate::Route;
use crate::manage::{Green, route};
use crate::wait::{Woken, deadline_of, poll_one, wait_any};
use crate::{errno, fds, gate, real};

/// `connect(2)`: a green thread parks until the connection is made or
/// fails; libc's errors (`ECONNREFUSED`, ...) come back as they are.
///
/// # Safety
///
/// As for `connect(2)`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn connect(fd: c_int, addr: *const sockaddr, len: socklen_t) -> c_int {
    // SAFETY: the caller's contract is connect(2)'s.
    let start = || unsafe { real::connect(fd, addr, len) };
    match gate::route() {
        Route::Libc => {}
        Route::Green => {
            if let Some(green) = route(fd, Direction::Write, false) {
                return green.connect(start);
            }
        }
        Route::Cancelled => return errno::fail(libc::ECANCELED),
    }
    let result = start();
    if result < 0 && errno::get() == libc::EINPROGRESS {
        return os_connect(fd);
    }
    result
}

impl Green {
    /// Starts a connect and parks until it completes.
    fn connect(&self, start: impl FnOnce() -> c_int) -> c_int {
        let mut event = self.reactor.ready_event(self.key, Direction::Write);
        if start() == 0 {
            return 0;
        }
        let error = errno::get();
        if error != libc::EINPROGRESS && error != libc::EAGAIN {
            return -1;
        }
        let deadline = self.timeout.and_then(|timeout| Instant::now().checked_add(timeout));
        loop {
            // Readiness from before the connect (an unconnected socket is
            // writable) or from a check that found it still in progress.
            if let Some(event) = event {
                self.reactor.clear_ready(self.key, event);
            }
            match wait_any(&[(self, Direction::Write)], deadline) {
                Woken::Ready => {}
                Woken::TimedOut => return errno::fail(libc::EINPROGRESS),
                Woken::Closed => return errno::fail(libc::EBADF),
                Woken::Cancelled => return errno::fail(libc::ECANCELED),
            }
            event = self.reactor.ready_event(self.key, Direction::Write);
            match outcome(self.fd) {
                Some(result) => return result,
                None => continue,
            }
        }
    }
}

/// The end of a connect on an OS thread, for a managed fd its user
/// believes blocking (libc's `EINPROGRESS` answer otherwise).
fn os_connect(fd: c_int) -> c_int {
    let Some(slot) = fds::managed(fd).filter(|slot| slot.parks()) else {
        return -1;
    };
    let deadline = deadline_of(slot, Direction::Write);
    loop {
        match poll_one(fd, Direction::Write, deadline) {
            Ok(true) => {}
            Ok(false) => return errno::fail(libc::EINPROGRESS),
            Err(()) => return -1,
        }
        if let Some(result) = outcome(fd) {
            return result;
        }
    }
}

/// The outcome of a connect in progress on `fd`: `Some(0)` connected,
/// `Some(-1)` failed (errno set to its error), `None` still in progress.
fn outcome(fd: c_int) -> Option<c_int> {
    let mut error: c_int = 0;
    let mut len = size_of::<c_int>() as socklen_t;
    // SAFETY: `error` and `len` describe a writable int.
    let r = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_ERROR,
            (&raw mut error).cast(),
            &raw mut len,
        )
    };
    if r < 0 {
        return Some(-1);
    }
    if error != 0 {
        return Some(errno::fail(error));
    }
    let mut addr = std::mem::MaybeUninit::<libc::sockaddr_storage>::uninit();
    let mut len = size_of::<libc::sockaddr_storage>() as socklen_t;
    // SAFETY: `addr` and `len` describe a writable sockaddr_storage.
    match unsafe { libc::getpeername(fd, addr.as_mut_ptr().cast(), &raw mut len) } {
        0 => Some(0),
        _ if errno::get() == libc::ENOTCONN => None,
        _ => Some(-1),
    }
}

/// `poll(2)`: a green thread parks instead of blocking (see the module
/// docs); a zero timeout, and every call off green threads, go to libc.
///
/// # Safety
///
/// As for `poll(2)`: `fds` points at `nfds` pollfds.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn poll(fds: *mut pollfd, nfds: nfds_t, timeout: c_int) -> c_int {
    match gate::route() {
        Route::Green if timeout != 0 && nfds != 0 => {}
        Route::Cancelled => return errno::fail(libc::ECANCELED),
        // SAFETY: the caller's contract is poll(2)'s.
        _ => return unsafe { real::poll(fds, nfds, timeout) },
    }
    let Ok(count) = usize::try_from(nfds) else {
        return errno::fail(libc::EINVAL);
    };
    // SAFETY: the caller passes `nfds` valid, exclusive pollfds.
    green_poll(unsafe { std::slice::from_raw_parts_mut(fds, count) }, timeout)
}

/// `poll` on a green thread.
fn green_poll(fds: &mut [pollfd], timeout: c_int) -> c_int {
    let deadline = u64::try_from(timeout)
        .ok()
        .and_then(|ms| Instant::now().checked_add(Duration::from_millis(ms)));
    let routes = routes(fds);
    let mut backoff = Duration::from_millis(1);
    loop {
        let events: Vec<_> = routes
            .iter()
            .flatten()
            .map(|(green, dir)| green.reactor.ready_event(green.key, *dir))
            .collect();
        // SAFETY: `fds` is a valid, exclusive slice of pollfds.
        let ready = unsafe { real::poll(fds.as_mut_ptr(), fds.len() as nfds_t, 0) };
        if ready != 0 {
            return ready;
        }
        let left = deadline.map(|deadline| deadline.saturating_duration_since(Instant::now()));
        if left.is_some_and(|left| left.is_zero()) {
            return 0;
        }
        match &routes {
            Some(routes) => {
                for ((green, _), event) in routes.iter().zip(events) {
                    if let Some(event) = event {
                        green.reactor.clear_ready(green.key, event);
                    }
                }
                let waits: Vec<_> = routes.iter().map(|(green, dir)| (green, *dir)).collect();
                // A close shows as POLLNVAL in the next round.
                if wait_any(&waits, deadline) == Woken::Cancelled {
                    return errno::fail(libc::ECANCELED);
                }
            }
            None => {
                let nap = left.map_or(backoff, |left| left.min(backoff));
                if gate::park(|| green::sleep(nap)).is_none() {
                    return errno::fail(libc::ECANCELED);
                }
                backoff = (backoff * 2).min(Duration::from_millis(16));
            }
        }
    }
}

/// The green routes of every (fd, direction) `fds` watches, or `None` if
/// one of them has none, or there are none (see the module docs).
fn routes(fds: &[pollfd]) -> Option<Vec<(Green, Direction)>> {
    let mut routes = Vec::new();
    for pollfd in fds.iter().filter(|pollfd| pollfd.fd >= 0) {
        for (bits, dir) in [(libc::POLLIN, Direction::Read), (libc::POLLOUT, Direction::Write)] {
            if pollfd.events & bits != 0 {
                routes.push((route(pollfd.fd, dir, true)?, dir));
            }
        }
    }
    (!routes.is_empty()).then_some(routes)
}
