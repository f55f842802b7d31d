//! The blocked-loop monitor: a process-wide thread that notices a loop
//! stuck in one green thread or task, and says which one.
//!
//! Off by default. It is turned on by `GREENLOOP_MONITOR_MS=N` (read once,
//! when the first loop starts) or by [`enable`] (which the runtime
//! [`Builder::monitor`](crate::Builder::monitor) calls). Once on, every loop
//! that starts registers a `LoopRecord` and publishes,
//! at each resume or poll, what it runs and a count of units run. The monitor
//! thread samples every record four times per threshold, and times a unit
//! by its samples:
//!
//! ```text
//!  record runs one unit (not Idle) for >= threshold   -> episode starts: report
//!  the record moved on (another unit, or idle)        -> episode ends: report
//!                                                        with the final duration
//! ```
//!
//! A loop asleep in its reactor (in `epoll_wait`, or on its futex when no I/O
//! is registered) publishes `Idle`: it is not blocked.
//!
//! Each episode is one [`Episode`] value at its start and one at its end.
//! A callback installed with [`set_callback`] receives both; stderr gets a
//! few lines per episode unless the callback returns [`Report::Quiet`].
//! Episodes of one culprit (one spawn site) are rate-limited: at most
//! [`REPORTS_PER_WINDOW`] printed per [`WINDOW`], then one summary line
//! with the count of those not printed. The callback sees every episode.
//!
//! A backtrace of the blocked thread is opt-in (`GREENLOOP_MONITOR_BACKTRACE=1`
//! or [`backtrace::enable`]) and best-effort: the monitor thread signals
//! the blocked thread, whose handler walks its frame-pointer chain within
//! the stack bounds it knows, allocation- and lock-free, and the monitor
//! thread names the addresses with `dladdr` (see [`backtrace`] for how,
//! and for what it cannot do). It is taken only for a start report that
//! is printed, after the callback saw the episode: a callback returning
//! [`Report::PrintWithoutBacktrace`] or [`Report::Quiet`] vetoes it, and
//! no signal is sent. The episode's end carries the backtrace taken at
//! its start, so the callback receives it there. With or without it, the
//! report names the spawn site, recorded with `#[track_caller]` at each
//! `spawn`, which points at the handler that blocked.
//!
//! The monitor thread runs no loop, so it never reports on itself; a
//! callback that blocks delays the next samples, nothing else.
//!
//! Cost when off: the loop is compiled for the unmonitored `Watch` (`()`),
//! whose hooks are empty; turning the monitor on takes effect for loops
//! started afterwards. When on: a few plain stores per resume or poll (a
//! seqlock of atomics: no lock, no clock read, no allocation; a named
//! green thread's name is also copied, under an uncontended lock). The
//! monitor thread times episodes by its own samples. Backtraces add
//! nothing per resume: a loop records its thread once, as it starts, and
//! pays only when signalled (a walk of at most 64 frames).

pub mod backtrace;
mod record;

use std::collections::HashMap;
use std::fmt;
use std::ops::Deref;
use std::panic::Location;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError, Weak};
use std::time::{Duration, Instant};

pub use backtrace::{Backtrace, Frame};
pub use record::Culprit;
pub(crate) use record::{LoopRecord, Watch};

/// Most reports printed per culprit per [`WINDOW`].
pub const REPORTS_PER_WINDOW: u32 = 3;

/// The rate-limiting window.
pub const WINDOW: Duration = Duration::from_secs(10);

/// Threshold in ms; 0 while off.
static THRESHOLD_MS: AtomicU64 = AtomicU64::new(0);

/// The live loops' records, and the callback.
static MONITOR: OnceLock<Monitor> = OnceLock::new();

type Callback = Box<dyn Fn(&Episode) -> Report + Send + Sync>;

struct Monitor {
    loops: Mutex<Vec<Weak<LoopRecord>>>,
    callback: Mutex<Option<Callback>>,
}

/// One blocked-loop episode, as the monitor reports it.
#[derive(Debug, Clone)]
pub struct Episode {
    /// The blocked loop's OS thread (name and id).
    pub thread: String,
    /// What the loop runs.
    pub culprit: Culprit,
    /// How long it has run: at the start of an episode, so far; at its
    /// end, the final duration. Timed by the monitor's samples, so it may
    /// overstate by up to half the threshold.
    pub blocked_for: Duration,
    /// Whether the loop turned again (the episode's end).
    pub ended: bool,
    /// The blocked thread's backtrace, taken when the start was printed
    /// with backtraces on (see [`backtrace`]); the callback sees it with
    /// the episode's end (the start reaches it before the backtrace is
    /// taken, so that it can veto it).
    pub backtrace: Option<Backtrace>,
}

/// What the monitor does with an episode after the callback saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Report {
    /// Print it on stderr (subject to rate limiting), with a backtrace
    /// if they are on.
    Print,
    /// Print it, but take no backtrace: vetoes the signal.
    PrintWithoutBacktrace,
    /// Print nothing, take no backtrace.
    Quiet,
}

/// Turns the monitor on with `threshold` for loops started from now on.
/// The first threshold set wins for the process (the monitor thread
/// samples at one rate); later calls only keep it on.
pub fn enable(threshold: Duration) {
    let ms = u64::try_from(threshold.as_millis()).unwrap_or(u64::MAX).max(1);
    let _ = THRESHOLD_MS.compare_exchange(0, ms, Ordering::Relaxed, Ordering::Relaxed);
}

/// The monitor's threshold, if it is on.
pub fn threshold() -> Option<Duration> {
    static FROM_ENV: OnceLock<()> = OnceLock::new();
    FROM_ENV.get_or_init(|| {
        if let Some(ms) = std::env::var("GREENLOOP_MONITOR_MS").ok().and_then(|v| v.parse().ok()) {
            enable(Duration::from_millis(ms));
        }
    });
    match THRESHOLD_MS.load(Ordering::Relaxed) {
        0 => None,
        ms => Some(Duration::from_millis(ms)),
    }
}

/// Installs `callback`, which receives every episode (start and end) on the
/// monitor thread and decides whether it is printed; replaces the last one.
pub fn set_callback(callback: impl Fn(&Episode) -> Report + Send + Sync + 'static) {
    let monitor = monitor();
    *monitor.callback.lock().unwrap_or_else(PoisonError::into_inner) = Some(Box::new(callback));
}

fn monitor() -> &'static Monitor {
    MONITOR.get_or_init(|| Monitor { loops: Mutex::new(Vec::new()), callback: Mutex::new(None) })
}

/// A monitored loop's registration, held while the loop runs.
pub(crate) struct Registration {
    record: Arc<LoopRecord>,
    /// Whether this is its thread's outermost loop with backtraces on,
    /// which stops the thread answering backtrace signals when it ends.
    leaves: bool,
}

impl Deref for Registration {
    type Target = LoopRecord;

    fn deref(&self) -> &LoopRecord {
        &self.record
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        if let Some(tracee) = self.record.tracee.as_ref().filter(|_| self.leaves) {
            tracee.leave();
        }
    }
}

/// Registers a starting loop if the monitor is on (starting the monitor
/// thread with the first); the loop keeps the registration while it runs.
pub(crate) fn register() -> Option<Registration> {
    let threshold = threshold()?;
    let current = std::thread::current();
    let thread = format!("{} ({:?})", current.name().unwrap_or("unnamed"), current.id());
    let (tracee, leaves) = backtrace::attach().unzip();
    let record = Arc::new(LoopRecord::new(thread, tracee));
    let monitor = monitor();
    let mut loops = monitor.loops.lock().unwrap_or_else(PoisonError::into_inner);
    loops.retain(|l| l.strong_count() > 0);
    loops.push(Arc::downgrade(&record));
    drop(loops);
    static STARTED: OnceLock<()> = OnceLock::new();
    STARTED.get_or_init(|| {
        let spawned = std::thread::Builder::new()
            .name("greenloop-monitor".into())
            .spawn(move || watch(monitor, threshold));
        if let Err(e) = spawned {
            eprintln!("greenloop monitor: cannot start its thread: {e}");
        }
    });
    Some(Registration { record, leaves: leaves.unwrap_or(false) })
}

/// A loop's episode in progress, as the monitor thread tracks it.
struct Open {
    seq: u64,
    /// Whether its start was printed (then its end is too).
    printed: bool,
    culprit: Culprit,
    since: Instant,
    backtrace: Option<Backtrace>,
}

/// The unit a loop ran at the last sample, and the sample before the one
/// that first saw it: the unit started after that.
struct Seen {
    seq: u64,
    since: Instant,
}

/// Per-culprit rate limiting: window start, printed, suppressed.
#[derive(Default)]
struct Limit {
    window: Option<Instant>,
    printed: u32,
    suppressed: u64,
}

/// The monitor thread's loop. It times a unit from the sample before the
/// one that first saw it to the sample that sees it still running (or
/// gone), so a duration it reports overstates by less than two sampling
/// periods (`threshold / 2`); the loop reads no clock for it.
fn watch(monitor: &'static Monitor, threshold: Duration) {
    let period = (threshold / 4).max(Duration::from_millis(1));
    let mut open: HashMap<usize, Open> = HashMap::new();
    let mut seen: HashMap<usize, Seen> = HashMap::new();
    let mut limits: HashMap<Option<&'static Location<'static>>, Limit> = HashMap::new();
    let mut last_sample = Instant::now();
    loop {
        std::thread::sleep(period);
        let sampled = Instant::now();
        let loops: Vec<Arc<LoopRecord>> = {
            let mut loops = monitor.loops.lock().unwrap_or_else(PoisonError::into_inner);
            loops.retain(|l| l.strong_count() > 0);
            loops.iter().filter_map(Weak::upgrade).collect()
        };
        let live = |key: &usize| loops.iter().any(|l| Arc::as_ptr(l) as usize == *key);
        open.retain(|key, _| live(key));
        seen.retain(|key, _| live(key));
        for record in &loops {
            let key = Arc::as_ptr(record) as usize;
            let Some(now) = record.snapshot() else { continue };
            let unit = seen.entry(key).or_insert(Seen { seq: now.seq, since: last_sample });
            if unit.seq != now.seq {
                *unit = Seen { seq: now.seq, since: last_sample };
            }
            if open.get(&key).is_some_and(|e| e.seq != now.seq)
                && let Some(Open { culprit, printed, backtrace, since, .. }) = open.remove(&key)
            {
                let blocked_for = sampled.saturating_duration_since(since);
                let thread = record.thread.clone();
                let mut ep = Episode { thread, culprit, blocked_for, ended: true, backtrace };
                emit(monitor, &mut limits, &mut ep, printed, None);
            }
            let blocked_for = sampled.saturating_duration_since(unit.since);
            if !matches!(now.culprit, Culprit::Idle)
                && blocked_for >= threshold
                && !open.contains_key(&key)
            {
                let mut ep = Episode {
                    thread: record.thread.clone(),
                    culprit: now.culprit.clone(),
                    blocked_for,
                    ended: false,
                    backtrace: None,
                };
                let printed = emit(monitor, &mut limits, &mut ep, false, record.tracee.as_deref());
                let (seq, culprit, since, backtrace) =
                    (now.seq, now.culprit, unit.since, ep.backtrace);
                open.insert(key, Open { seq, printed, culprit, since, backtrace });
            }
        }
        drop(loops);
        flush_summaries(&mut limits);
        last_sample = sampled;
    }
}

fn site_of(culprit: &Culprit) -> Option<&'static Location<'static>> {
    match culprit {
        Culprit::Green { site, .. } | Culprit::Task { site, .. } => Some(site),
        _ => None,
    }
}

/// Hands `episode` to the callback, then prints it unless vetoed or rate
/// limited; an episode's end is printed iff its start was
/// (`start_printed`). A start printed with `Report::Print` gets the
/// backtrace of `tracee` (backtraces on) first. Returns whether it printed.
fn emit(
    monitor: &Monitor,
    limits: &mut HashMap<Option<&'static Location<'static>>, Limit>,
    episode: &mut Episode,
    start_printed: bool,
    tracee: Option<&backtrace::Tracee>,
) -> bool {
    let report = match &*monitor.callback.lock().unwrap_or_else(PoisonError::into_inner) {
        Some(callback) => callback(episode),
        None => Report::Print,
    };
    if report == Report::Quiet {
        return false;
    }
    if episode.ended {
        if start_printed {
            eprintln!("{episode}");
        }
        return start_printed;
    }
    let limit = limits.entry(site_of(&episode.culprit)).or_default();
    let now = Instant::now();
    if limit.window.is_none_or(|start| now.duration_since(start) >= WINDOW) {
        *limit = Limit { window: Some(now), ..Limit::default() };
    }
    if limit.printed < REPORTS_PER_WINDOW {
        limit.printed += 1;
        if let Some(tracee) = tracee.filter(|_| report == Report::Print) {
            episode.backtrace = Some(backtrace::take(tracee));
        }
        eprintln!("{episode}");
        true
    } else {
        limit.suppressed += 1;
        false
    }
}

/// Prints one summary line per culprit whose window closed with episodes
/// not printed.
fn flush_summaries(limits: &mut HashMap<Option<&'static Location<'static>>, Limit>) {
    let now = Instant::now();
    limits.retain(|site, limit| {
        let closed = limit.window.is_none_or(|start| now.duration_since(start) >= WINDOW);
        if closed && limit.suppressed > 0 {
            let site = site.map_or_else(|| "the loop".to_owned(), ToString::to_string);
            eprintln!(
                "greenloop monitor: {} more blocked episodes of the work spawned at {site} \
                 in the last {}s (not printed)",
                limit.suppressed,
                WINDOW.as_secs()
            );
        }
        !closed
    });
}

impl fmt::Display for Culprit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Culprit::Green { id, name, site } => {
                write!(f, "green thread {id}")?;
                if let Some(name) = name {
                    write!(f, " '{name}'")?;
                }
                write!(f, " spawned at {site}")
            }
            Culprit::Task { id, site } => write!(f, "task {id} spawned at {site}"),
            Culprit::Main => f.write_str("the loop's main future"),
            Culprit::Loop => f.write_str("the loop itself (reactor turn or queue drain)"),
            Culprit::Idle => f.write_str("nothing (idle)"),
        }
    }
}

impl fmt::Display for Episode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = self.blocked_for.as_secs_f64() * 1e3;
        if self.ended {
            write!(f, "greenloop monitor: loop on {} turned again after {ms:.0} ms", self.thread)?;
            write!(f, "\n  blocked by: {}", self.culprit)
        } else {
            write!(f, "greenloop monitor: loop on {} blocked for {ms:.0} ms", self.thread)?;
            write!(f, "\n  running: {}", self.culprit)?;
            match &self.backtrace {
                Some(backtrace) => write!(f, "\n  {backtrace}"),
                None => Ok(()),
            }
        }
    }
}
