//! What a parked green thread or task waits on, as it recorded it.
//!
//! A wait site notes its kind with [`note`] when its poll returns
//! `Pending`: a plain write into the running green thread's slot or the
//! running task's entry (no atomic), with the loop's clock
//! ([`Reactor::turn_time`](crate::reactor::Reactor::turn_time)) and, for a green
//! thread, an approximate stack pointer for its stack use.

use std::fmt;
use std::time::Instant;

use crate::context::Context;
use crate::reactor::Direction;

/// What a green thread or task waits on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wait {
    /// Readiness of a reactor registration (the reactor's key; the fd is
    /// not known to the reactor) in one direction.
    Io {
        /// The registration's key in its reactor.
        key: usize,
        /// Which readiness.
        dir: Direction,
    },
    /// A timer, until this deadline.
    Timer(Instant),
    /// A message on a channel.
    Channel,
    /// Something that recorded no kind: a foreign future, or a primitive
    /// without a wait record yet (mutex, semaphore, notify, join).
    Future,
}

impl Wait {
    /// The kind's name, for counts.
    pub fn kind(&self) -> &'static str {
        match self {
            Wait::Io { .. } => "io",
            Wait::Timer(_) => "timer",
            Wait::Channel => "channel",
            Wait::Future => "future",
        }
    }
}

impl fmt::Display for Wait {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Wait::Io { key, dir } => write!(f, "io registration {key} {dir:?}"),
            Wait::Timer(deadline) => {
                let left = deadline.saturating_duration_since(Instant::now());
                write!(f, "timer, {:.1} ms left", left.as_secs_f64() * 1e3)
            }
            Wait::Channel => f.write_str("channel"),
            Wait::Future => f.write_str("a future"),
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

/// Records that the running green thread or task waits on `wait`.
#[inline]
pub(crate) fn note(wait: Wait) {
    let marker = 0u8;
    let sp = std::ptr::addr_of!(marker) as usize;
    Context::with(|c| {
        if let Some(c) = c {
            // The loop's clock, not a read of its own: at most one turn
            // early, and free.
            let noted = Noted { wait, since: c.reactor().turn_time(), sp };
            if !c.green().note_wait(noted) {
                c.executor().note_wait(noted);
            }
        }
    });
}
