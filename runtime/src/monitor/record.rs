//! What a loop publishes for the monitor: which green thread or task it
//! runs, since when, and a counter of units run.
//!
//! The loop writes its [`LoopRecord`] at the start of every resume or poll
//! and around its blocking `epoll_wait`; the monitor thread copies it out
//! under the same short lock, so a copy is never torn. The loop is generic
//! over [`Watch`]: unmonitored, the hooks are empty functions and the loop
//! compiles to what it was without a monitor (no atomic, no branch).

use std::panic::Location;
use std::sync::{Mutex, PoisonError};
use std::time::Instant;

/// What a loop runs, as a monitor report names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Culprit {
    /// A green thread: its id, its name, where it was spawned.
    Green {
        /// The thread's id (`ThreadId::as_u64`).
        id: u64,
        /// The thread's name, if it was given one.
        name: Option<String>,
        /// Where the thread was spawned.
        site: &'static Location<'static>,
    },
    /// A task: its id and where it was spawned.
    Task {
        /// The task's id.
        id: u64,
        /// Where the task was spawned.
        site: &'static Location<'static>,
    },
    /// The loop's main future (`block_on`'s argument).
    Main,
    /// The loop itself, between units (reactor turn, queue drains).
    Loop,
    /// Waiting in `epoll_wait` with nothing runnable: not blocked.
    Idle,
}

/// The loop's state as last published.
#[derive(Debug, Clone)]
pub(crate) struct Snapshot {
    /// Units started so far; unchanged while one unit runs.
    pub(crate) seq: u64,
    /// What runs now.
    pub(crate) culprit: Culprit,
    /// When it started.
    pub(crate) since: Instant,
}

/// One loop's published state, shared with the monitor thread.
#[derive(Debug)]
pub(crate) struct LoopRecord {
    /// The OS thread's name and id, for reports.
    pub(crate) thread: String,
    state: Mutex<Published>,
}

/// The snapshot as the loop keeps it, with a spare buffer for green
/// thread names, so that publishing allocates nothing once warm.
#[derive(Debug)]
struct Published {
    now: Snapshot,
    spare: String,
}

impl LoopRecord {
    pub(crate) fn new(thread: String) -> LoopRecord {
        let now = Snapshot { seq: 0, culprit: Culprit::Loop, since: Instant::now() };
        LoopRecord { thread, state: Mutex::new(Published { now, spare: String::new() }) }
    }

    /// A consistent copy of the record.
    pub(crate) fn snapshot(&self) -> Snapshot {
        self.state.lock().unwrap_or_else(PoisonError::into_inner).now.clone()
    }

    /// Publishes the culprit `make` builds; a name's buffer comes from
    /// `spare`, where the previous culprit's name goes back.
    fn publish(&self, make: impl FnOnce(&mut String) -> Culprit) {
        let now = Instant::now();
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let Published { now: snapshot, spare } = &mut *state;
        snapshot.seq = snapshot.seq.wrapping_add(1);
        snapshot.since = now;
        if let Culprit::Green { name: Some(name), .. } = &mut snapshot.culprit {
            *spare = std::mem::take(name);
        }
        snapshot.culprit = make(spare);
    }
}

/// The loop's hooks; `()` is the unmonitored loop.
pub(crate) trait Watch {
    /// A green thread is about to be resumed.
    fn green(&self, id: u64, name: Option<&str>, site: &'static Location<'static>);
    /// A task is about to be polled.
    fn task(&self, id: u64, site: &'static Location<'static>);
    /// The main future is about to be polled.
    fn main(&self);
    /// The loop is about to wait in `epoll_wait` until an event.
    fn idle(&self);
    /// The loop's own work (after `epoll_wait` returned).
    fn busy(&self);
    /// Whether the hooks record anything (so callers skip their lookups).
    const ON: bool;
}

impl Watch for () {
    const ON: bool = false;
    #[inline(always)]
    fn green(&self, _: u64, _: Option<&str>, _: &'static Location<'static>) {}
    #[inline(always)]
    fn task(&self, _: u64, _: &'static Location<'static>) {}
    #[inline(always)]
    fn main(&self) {}
    #[inline(always)]
    fn idle(&self) {}
    #[inline(always)]
    fn busy(&self) {}
}

impl Watch for LoopRecord {
    const ON: bool = true;

    fn green(&self, id: u64, name: Option<&str>, site: &'static Location<'static>) {
        self.publish(|spare| {
            let name = name.map(|name| {
                let mut buffer = std::mem::take(spare);
                buffer.clear();
                buffer.push_str(name);
                buffer
            });
            Culprit::Green { id, name, site }
        });
    }

    fn task(&self, id: u64, site: &'static Location<'static>) {
        self.publish(|_| Culprit::Task { id, site });
    }

    fn main(&self) {
        self.publish(|_| Culprit::Main);
    }

    fn idle(&self) {
        self.publish(|_| Culprit::Idle);
    }

    fn busy(&self) {
        self.publish(|_| Culprit::Loop);
    }
}
