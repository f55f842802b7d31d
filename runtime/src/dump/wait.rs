//! What a parked green thread or task waits on, as it recorded it.
//!
//! A wait site notes its kind with [`note`] when its poll returns
//! `Pending`: a plain write into the running green thread's slot or the
//! polled task's cell (no atomic), with the loop's clock
//! ([`Reactor::turn_time`](crate::reactor::Reactor::turn_time)) and, for a green
//! thread, an approximate stack pointer for its stack use.

use std::fmt;
use std::os::fd::RawFd;
use std::task::Poll;
use std::time::Instant;

use super::Model;
use crate::context::Context;
use crate::reactor::Direction;

/// What a green thread or task waits on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Wait {
    /// Readiness of a socket in one direction.
    Io {
        /// The registration's key in its reactor.
        key: usize,
        /// The socket's fd, when its registration named it (the net
        /// crate's sockets and the patch layer's fds do).
        fd: Option<RawFd>,
        /// Which readiness.
        dir: Direction,
    },
    /// A timer, until this deadline.
    Timer(Instant),
    /// A channel: a message (mpsc, oneshot, select) or room to send one.
    Channel,
    /// A `sync::Mutex`.
    Mutex,
    /// Permits of a `sync::Semaphore`.
    Semaphore,
    /// A `sync::Notify`.
    Notify,
    /// A `sync::WaitGroup` reaching zero.
    WaitGroup,
    /// The end of a green thread or a task: the join of that one.
    Join {
        /// Green thread or task.
        model: Model,
        /// Its id.
        id: u64,
    },
    /// The result of a job on the `spawn_blocking` pool.
    Blocking,
    /// Something that recorded no kind: a foreign future, or a green
    /// thread's own `park` (`park_timeout` shows its timer).
    Future,
}

impl Wait {
    /// The kind's name, for counts.
    pub fn kind(&self) -> &'static str {
        match self {
            Wait::Io { .. } => "io",
            Wait::Timer(_) => "timer",
            Wait::Channel => "channel",
            Wait::Mutex => "mutex",
            Wait::Semaphore => "semaphore",
            Wait::Notify => "notify",
            Wait::WaitGroup => "wait group",
            Wait::Join { .. } => "join",
            Wait::Blocking => "blocking pool",
            Wait::Future => "future",
        }
    }
}

impl fmt::Display for Wait {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Wait::Io { fd: Some(fd), dir, .. } => write!(f, "fd {fd} {dir:?}"),
            Wait::Io { key, fd: None, dir } => write!(f, "io registration {key} {dir:?}"),
            Wait::Timer(deadline) => {
                let left = deadline.saturating_duration_since(Instant::now());
                write!(f, "timer, {:.1} ms left", left.as_secs_f64() * 1e3)
            }
            Wait::Join { model: Model::Green, id } => write!(f, "join of green thread {id}"),
            Wait::Join { model: Model::Task, id } => write!(f, "join of task {id}"),
            Wait::Future => f.write_str("a future"),
            other => f.write_str(other.kind()),
        }
    }
}

/// A recorded wait: what, since when, and the stack pointer then.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Noted {
    pub(crate) wait: Wait,
    pub(crate) since: Instant,
    pub(crate) sp: usize,
}

/// Records that the running green thread or task waits on `wait`. Out of
/// line: the wait sites' ready paths stay small enough to inline.
///
/// A green thread's record is cleared at each resume, and a timer noted
/// after another wait of the same resume (a timeout around that wait)
/// does not replace it. A task's record lasts until its next note: a task
/// that last waited on a primitive and now awaits a foreign future shows
/// that older wait.
///
/// The clock is read only once a record takes the note: the main future
/// of a `block_on`, which the loop polls as neither a green thread nor a
/// task, has none, and its notes (one per pending join in
/// `spawn_join/stackless`) stop at the two checks.
#[inline(never)]
pub(crate) fn note(wait: Wait) {
    // `wait` lies in the caller's frame (an argument this size is passed
    // by address): its address approximates the stack pointer, and takes
    // no stack slot of this function's own.
    let sp = std::ptr::addr_of!(wait) as usize;
    Context::with(|c| {
        if let Some(c) = c {
            // The loop's clock, not a read of its own: at most one turn
            // early, and free.
            let noted = || Noted { wait, since: c.reactor().turn_time(), sp };
            if !c.green().note_wait(noted) {
                c.executor().note_wait(noted);
            }
        }
    });
}

/// `Pending`, after noting `wait`: what a wait site returns.
#[inline]
pub(crate) fn pending<T>(wait: Wait) -> Poll<T> {
    note(wait);
    Poll::Pending
}

/// `poll`, after noting `wait` if it is `Pending`.
#[inline]
pub(crate) fn noting<T>(poll: Poll<T>, wait: impl FnOnce() -> Wait) -> Poll<T> {
    if poll.is_pending() {
        note(wait());
    }
    poll
}
