//! What a loop publishes for the monitor: which green thread or task it
//! runs, and a counter of units run.
//!
//! The loop writes its [`LoopRecord`] at the start of every resume or poll
//! and around its reactor's blocking wait; the monitor thread copies it out
//! as a seqlock reader, so a copy it keeps is never torn. The loop is generic
//! over [`Watch`]: unmonitored, the hooks are empty functions and the loop
//! compiles to what it was without a monitor (no atomic, no branch).

use std::panic::Location;
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU8, AtomicU64, Ordering, fence};
use std::sync::{Arc, Mutex, PoisonError};

use super::backtrace::Tracee;

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
    /// Asleep in the reactor (`epoll_wait` or its futex) with nothing
    /// runnable: not blocked.
    Idle,
}

/// The loop's state as the monitor thread copied it out.
#[derive(Debug, Clone)]
pub(crate) struct Snapshot {
    /// Changes each time the loop starts a unit; unchanged while one runs.
    pub(crate) seq: u64,
    /// What runs now.
    pub(crate) culprit: Culprit,
}

/// `kind` values of a [`LoopRecord`].
const GREEN: u8 = 0;
const TASK: u8 = 1;
const MAIN: u8 = 2;
const LOOP: u8 = 3;
const IDLE: u8 = 4;

/// One loop's published state, shared with the monitor thread.
///
/// A seqlock of atomics: the loop (the only writer) makes `seq` odd,
/// stores the fields, and makes it even again; the monitor thread keeps a
/// copy only if it read one even `seq` before and after the fields. Per
/// resume that is a handful of plain stores: no lock, no clock read, no
/// copy of an unnamed thread's name. The monitor thread times episodes
/// by its own samples. A green thread's name is copied into `name`,
/// under its lock, only for a named thread other than the one whose name
/// is there already (green thread ids are never reused, names never
/// change).
#[derive(Debug)]
pub(crate) struct LoopRecord {
    /// The OS thread's name and id, for reports.
    pub(crate) thread: String,
    /// The thread to signal for a backtrace (backtraces on only).
    pub(crate) tracee: Option<Arc<Tracee>>,
    seq: AtomicU64,
    kind: AtomicU8,
    id: AtomicU64,
    site: AtomicPtr<Location<'static>>,
    /// Whether the green thread has a name (then `name` holds it).
    named: AtomicBool,
    name: Mutex<String>,
    /// The id of the green thread whose name `name` holds (0: none);
    /// written and read by the loop only.
    name_of: AtomicU64,
}

impl LoopRecord {
    pub(crate) fn new(thread: String, tracee: Option<Arc<Tracee>>) -> LoopRecord {
        LoopRecord {
            thread,
            tracee,
            seq: AtomicU64::new(0),
            kind: AtomicU8::new(LOOP),
            id: AtomicU64::new(0),
            site: AtomicPtr::new(std::ptr::null_mut()),
            named: AtomicBool::new(false),
            name: Mutex::new(String::new()),
            name_of: AtomicU64::new(0),
        }
    }

    /// A consistent copy of the record; `None` if the loop was writing it
    /// (the next sample tries again).
    pub(crate) fn snapshot(&self) -> Option<Snapshot> {
        let seq = self.seq.load(Ordering::Acquire);
        if seq % 2 == 1 {
            return None;
        }
        let (kind, id) = (self.kind.load(Ordering::Relaxed), self.id.load(Ordering::Relaxed));
        let site = self.site.load(Ordering::Relaxed);
        let name = self
            .named
            .load(Ordering::Relaxed)
            .then(|| self.name.lock().unwrap_or_else(PoisonError::into_inner).clone());
        fence(Ordering::Acquire);
        if self.seq.load(Ordering::Relaxed) != seq {
            return None;
        }
        // SAFETY: every non-null pointer `site` ever held was stored by
        // `publish` from a `&'static Location`, so it is valid for ever.
        let site = unsafe { site.cast_const().as_ref() };
        let culprit = match (kind, site) {
            (GREEN, Some(site)) => Culprit::Green { id, name, site },
            (TASK, Some(site)) => Culprit::Task { id, site },
            (MAIN, _) => Culprit::Main,
            (IDLE, _) => Culprit::Idle,
            _ => Culprit::Loop,
        };
        Some(Snapshot { seq, culprit })
    }

    /// Publishes one unit: `site` is null for kinds without one; `name`
    /// only for a named green thread, whose `id` is never 0.
    #[inline]
    fn publish(&self, kind: u8, id: u64, site: *const Location<'static>, name: Option<&str>) {
        let seq = self.seq.load(Ordering::Relaxed);
        self.seq.store(seq.wrapping_add(1), Ordering::Relaxed);
        fence(Ordering::Release);
        self.kind.store(kind, Ordering::Relaxed);
        self.id.store(id, Ordering::Relaxed);
        self.site.store(site.cast_mut(), Ordering::Relaxed);
        self.named.store(name.is_some(), Ordering::Relaxed);
        if let Some(name) = name
            && self.name_of.load(Ordering::Relaxed) != id
        {
            self.name_of.store(id, Ordering::Relaxed);
            let mut buffer = self.name.lock().unwrap_or_else(PoisonError::into_inner);
            buffer.clear();
            buffer.push_str(name);
        }
        self.seq.store(seq.wrapping_add(2), Ordering::Release);
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
    /// The loop is about to sleep in its reactor until an event or a wake.
    fn idle(&self);
    /// The loop's own work (after the reactor's wait returned).
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

    #[inline]
    fn green(&self, id: u64, name: Option<&str>, site: &'static Location<'static>) {
        self.publish(GREEN, id, site, name);
    }

    #[inline]
    fn task(&self, id: u64, site: &'static Location<'static>) {
        self.publish(TASK, id, site, None);
    }

    #[inline]
    fn main(&self) {
        self.publish(MAIN, 0, std::ptr::null(), None);
    }

    #[inline]
    fn idle(&self) {
        self.publish(IDLE, 0, std::ptr::null(), None);
    }

    #[inline]
    fn busy(&self) {
        self.publish(LOOP, 0, std::ptr::null(), None);
    }
}
