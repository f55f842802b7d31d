//! A dump of every live green thread and task on every loop of the process.
//!
//! Every loop registers its reactor's [`Remote`] while it runs. [`dump`]
//! injects a snapshot request into each; the loop takes the snapshot of
//! its own context at its next reactor turn, on its own thread, between
//! units, where nothing holds its queues or slabs, and sends it back. So a
//! record is never torn: it is read by the only thread that writes it. A
//! loop that does not answer within [`ANSWER_WITHIN`] (blocked in a green
//! thread or task) is listed as not answering.
//!
//! ```text
//!  dump():  for each loop: remote.inject(Snap) ──> loop's next turn:
//!           wait (bounded) <── channel <────────── context.snapshot()
//! ```

mod signal;
mod wait;

use std::collections::BTreeMap;
use std::fmt;
use std::panic::Location;
use std::sync::mpsc::{self, Sender};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

pub use signal::dump_on_sigquit;
pub use wait::Wait;
pub(crate) use wait::{Noted, note, noting, pending};

use crate::context::Context;
use crate::reactor::{Inject, Remote};

/// How long [`dump`] waits for each loop's snapshot.
pub const ANSWER_WITHIN: Duration = Duration::from_secs(1);

/// The loops running now: their thread's name and their reactor's remote.
static LOOPS: Mutex<Vec<(u64, String, Arc<Remote>)>> = Mutex::new(Vec::new());

/// A running loop's entry in the registry; removed on drop.
#[derive(Debug)]
pub(crate) struct Registered(u64);

/// Lists a starting loop for dumps.
pub(crate) fn register(remote: &Arc<Remote>) -> Registered {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let id = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let current = std::thread::current();
    let thread = format!("{} ({:?})", current.name().unwrap_or("unnamed"), current.id());
    LOOPS.lock().unwrap_or_else(PoisonError::into_inner).push((id, thread, remote.clone()));
    Registered(id)
}

impl Drop for Registered {
    fn drop(&mut self) {
        LOOPS.lock().unwrap_or_else(PoisonError::into_inner).retain(|(id, ..)| *id != self.0);
    }
}

/// Which model a unit of work belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Model {
    /// A green thread.
    Green,
    /// A stackless task.
    Task,
}

/// Where a green thread or task is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum State {
    /// It is the one running (the dump was taken from inside it).
    Running,
    /// Queued to run.
    Runnable,
    /// Waiting for a wake.
    Parked,
}

/// One green thread or task in a dump.
#[derive(Debug, Clone)]
pub struct Entry {
    /// Green thread or task.
    pub model: Model,
    /// Its id.
    pub id: u64,
    /// Its name, if it has one.
    pub name: Option<String>,
    /// Its state.
    pub state: State,
    /// What it waits on, when parked (`Future` if it recorded nothing).
    pub wait: Option<Wait>,
    /// How long it has waited, when it recorded its wait.
    pub waiting_for: Option<Duration>,
    /// Where it was spawned.
    pub site: &'static Location<'static>,
    /// For a green thread, its stack bytes in use when it parked
    /// (approximate: measured at the wait site).
    pub stack_bytes: Option<usize>,
}

/// The snapshot of one loop.
#[derive(Debug, Clone)]
pub struct LoopDump {
    /// The loop's OS thread.
    pub thread: String,
    /// Its green threads and tasks; `None` if it did not answer in time.
    pub entries: Option<Vec<Entry>>,
}

/// Every loop's green threads and tasks (see the module docs).
#[derive(Debug, Clone)]
pub struct Dump {
    /// One per loop running when the dump was taken.
    pub loops: Vec<LoopDump>,
}

impl Dump {
    /// All entries of the loops that answered.
    pub fn entries(&self) -> impl Iterator<Item = &Entry> {
        self.loops.iter().filter_map(|l| l.entries.as_deref()).flatten()
    }

    /// Entries per state.
    pub fn count_by_state(&self) -> BTreeMap<State, usize> {
        let mut counts = BTreeMap::new();
        for entry in self.entries() {
            *counts.entry(entry.state).or_default() += 1;
        }
        counts
    }

    /// Parked entries per wait kind ([`Wait::kind`]).
    pub fn count_by_wait(&self) -> BTreeMap<&'static str, usize> {
        let mut counts = BTreeMap::new();
        for wait in self.entries().filter_map(|e| e.wait) {
            *counts.entry(wait.kind()).or_default() += 1;
        }
        counts
    }
}

/// Takes a dump of every loop of the process; from any thread. A call
/// from inside a loop lists that loop without asking it (it could not
/// answer while the caller runs).
pub fn dump() -> Dump {
    let mut loops = LOOPS.lock().unwrap_or_else(PoisonError::into_inner).clone();
    // Nested contexts on one thread share its reactor: one loop, listed
    // once under its outermost (first registered) entry.
    let mut remotes: Vec<Arc<Remote>> = Vec::new();
    loops.retain(|(_, _, remote)| {
        let first = !remotes.iter().any(|r| Arc::ptr_eq(r, remote));
        if first {
            remotes.push(remote.clone());
        }
        first
    });
    let (own, own_remote) = Context::with(|c| match c {
        Some(c) => (Some(c.snapshot()), Some(c.remote().clone())),
        None => (None, None),
    });
    let mut pending = Vec::new();
    let mut out = Vec::new();
    for (_, thread, remote) in loops {
        if own_remote.as_ref().is_some_and(|r| Arc::ptr_eq(r, &remote)) {
            out.push(LoopDump { thread, entries: own.clone() });
            continue;
        }
        let (tx, rx) = mpsc::channel();
        remote.inject(Arc::new(Snap(Mutex::new(Some(tx)))));
        pending.push((thread, rx));
    }
    let deadline = Instant::now() + ANSWER_WITHIN;
    for (thread, rx) in pending {
        let left = deadline.saturating_duration_since(Instant::now());
        let entries = rx.recv_timeout(left).ok().flatten();
        out.push(LoopDump { thread, entries });
    }
    Dump { loops: out }
}

/// The snapshot request a loop runs at its next reactor turn.
struct Snap(Mutex<Option<Sender<Option<Vec<Entry>>>>>);

impl Inject for Snap {
    fn run(self: Arc<Self>) {
        let tx = self.0.lock().unwrap_or_else(PoisonError::into_inner).take();
        if let Some(tx) = tx {
            let _ = tx.send(Context::with(|c| c.map(|c| c.snapshot())));
        }
    }
}

/// One entry as the green scheduler or the executor makes it.
pub(crate) fn entry(
    model: Model,
    (id, name, site): (u64, Option<String>, &'static Location<'static>),
    state: State,
    noted: Option<Noted>,
    stack_top: Option<usize>,
) -> Entry {
    let parked = state == State::Parked;
    let noted = noted.filter(|_| parked);
    Entry {
        model,
        id,
        name,
        state,
        wait: parked.then(|| noted.map_or(Wait::Future, |n| n.wait)),
        waiting_for: noted.map(|n| n.since.elapsed()),
        site,
        stack_bytes: stack_top.zip(noted).map(|(top, n)| top.saturating_sub(n.sp)),
    }
}

impl fmt::Display for Dump {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "greenloop dump: {} loops", self.loops.len())?;
        for l in &self.loops {
            let Some(entries) = &l.entries else {
                writeln!(
                    f,
                    "loop on {}: did not answer within {ANSWER_WITHIN:?} (blocked?)",
                    l.thread
                )?;
                continue;
            };
            writeln!(f, "loop on {}: {} green threads and tasks", l.thread, entries.len())?;
            for e in entries {
                write!(f, "  {:?} {}", e.model, e.id)?;
                if let Some(name) = &e.name {
                    write!(f, " '{name}'")?;
                }
                write!(f, " {:?}", e.state)?;
                if let Some(wait) = e.wait {
                    write!(f, " on {wait}")?;
                }
                if let Some(d) = e.waiting_for {
                    write!(f, " for {:.1} ms", d.as_secs_f64() * 1e3)?;
                }
                if let Some(bytes) = e.stack_bytes {
                    write!(f, ", stack {bytes} B")?;
                }
                writeln!(f, ", spawned at {}", e.site)?;
            }
        }
        writeln!(f, "by state: {:?}", self.count_by_state())?;
        write!(f, "by wait: {:?}", self.count_by_wait())
    }
}
