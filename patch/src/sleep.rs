//! The interposed sleeps: `nanosleep`, `clock_nanosleep`, `usleep` and
//! `sleep` park a green thread on a reactor timer (`green::sleep`), so
//! `std::thread::sleep` in a green thread lets the others run.
//!
//! Timers have millisecond resolution and never fire early: a green sleep
//! of 1 µs lasts about 1 ms. A zero sleep yields to the other green
//! threads. A green sleep is never interrupted by a signal (`EINTR`).

use std::time::Duration;

use greenloop_runtime::green;
use libc::{c_int, c_uint, clockid_t, timespec, useconds_t};

use crate::gate::Route;
use crate::{errno, gate, real};

/// Parks the current green thread for `duration` (yields if it is zero).
/// A thread cancelled at shutdown meanwhile returns at once (see `gate`).
fn park_for(duration: Duration) {
    gate::park(|| {
        if duration.is_zero() {
            green::yield_now();
        } else {
            green::sleep(duration);
        }
    });
}

/// Whether a sleep parks: `Some(true)` on the green route, `Some(false)`
/// for a thread cancelled at shutdown (the sleep returns at once), `None`
/// for libc's sleep.
fn parks() -> Option<bool> {
    match gate::route() {
        Route::Green => Some(true),
        Route::Cancelled => Some(false),
        Route::Libc => None,
    }
}

/// A valid `timespec` as a duration (`None`: `EINVAL`).
fn duration_of(time: &timespec) -> Option<Duration> {
    let secs = u64::try_from(time.tv_sec).ok()?;
    let nanos = u32::try_from(time.tv_nsec).ok().filter(|&n| n < 1_000_000_000)?;
    Some(Duration::new(secs, nanos))
}

/// `nanosleep(2)`: parks a green thread instead of the OS thread.
///
/// # Safety
///
/// As for `nanosleep(2)`: `req` points at a timespec.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nanosleep(req: *const timespec, rem: *mut timespec) -> c_int {
    match parks() {
        Some(true) if !req.is_null() => {}
        Some(false) => return 0,
        // SAFETY: the caller's contract is nanosleep(2)'s.
        _ => return unsafe { real::nanosleep(req, rem) },
    }
    // SAFETY: `req` is non-null and points at a timespec (contract).
    match duration_of(unsafe { &*req }) {
        Some(duration) => {
            park_for(duration);
            0
        }
        None => errno::fail(libc::EINVAL),
    }
}

/// `clock_nanosleep(2)`: parks a green thread instead of the OS thread,
/// until `req` on `clock` with `TIMER_ABSTIME`. Returns the error number,
/// as libc's does.
///
/// # Safety
///
/// As for `clock_nanosleep(2)`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn clock_nanosleep(
    clock: clockid_t,
    flags: c_int,
    req: *const timespec,
    rem: *mut timespec,
) -> c_int {
    match parks() {
        Some(true) if !req.is_null() => {}
        Some(false) => return 0,
        // SAFETY: the caller's contract is clock_nanosleep(2)'s.
        _ => return unsafe { real::clock_nanosleep(clock, flags, req, rem) },
    }
    // SAFETY: `req` is non-null and points at a timespec (contract).
    let Some(mut duration) = duration_of(unsafe { &*req }) else {
        return libc::EINVAL;
    };
    if flags & libc::TIMER_ABSTIME != 0 {
        let mut now = timespec { tv_sec: 0, tv_nsec: 0 };
        // SAFETY: `now` is a writable timespec.
        if unsafe { libc::clock_gettime(clock, &raw mut now) } != 0 {
            return errno::get();
        }
        let Some(now) = duration_of(&now) else { return libc::EINVAL };
        duration = duration.saturating_sub(now);
    }
    park_for(duration);
    0
}

/// `usleep(3)`: parks a green thread instead of the OS thread.
///
/// # Safety
///
/// None beyond libc's; `unsafe` as every interposed function.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn usleep(usec: useconds_t) -> c_int {
    match parks() {
        Some(true) => {}
        Some(false) => return 0,
        // SAFETY: usleep has no pointer arguments.
        None => return unsafe { real::usleep(usec) },
    }
    park_for(Duration::from_micros(usec.into()));
    0
}

/// `sleep(3)`: parks a green thread instead of the OS thread.
///
/// # Safety
///
/// None beyond libc's; `unsafe` as every interposed function.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sleep(seconds: c_uint) -> c_uint {
    match parks() {
        Some(true) => {}
        Some(false) => return 0,
        // SAFETY: sleep has no pointer arguments.
        None => return unsafe { real::sleep(seconds) },
    }
    park_for(Duration::from_secs(seconds.into()));
    0
}
