//! The opt-in, best-effort backtrace of a blocked loop thread.
//!
//! Off unless `GREENLOOP_MONITOR_BACKTRACE=1` or [`enable`] (the runtime
//! [`Builder::monitor_backtrace`](crate::Builder::monitor_backtrace)); off,
//! no signal handler is installed and nothing here runs. On, a loop that
//! starts records its thread (a `Tracee`: its `pthread_t`, its stack range
//! from `pthread_getattr_np`, a frame buffer), and the monitor thread,
//! for a start report it prints:
//!
//! ```text
//!  monitor thread                         blocked loop thread
//!  want = n; pthread_kill(SIG) ---------> handler (on its signal stack):
//!                                           claim: swap want -> 0
//!                                           PC, FP, SP from the ucontext
//!                                           walk the frame chain in bounds
//!  waits <= 50 ms for done == n <-------- done = n (release)
//!  symbolizes with dladdr, prints           returns; the blocked call
//!                                           resumes (SA_RESTART)
//! ```
//!
//! SIG is the first real-time signal from `SIGRTMIN+5` up whose
//! disposition is `SIG_DFL` when the first monitored loop starts
//! (`SIGRTMIN+5` = 39 on glibc unless something else handles it); see
//! [`signal`]. Nobody's handler is replaced.
//!
//! It is best-effort. The walk follows frame pointers, and release Rust
//! builds omit them: without `RUSTFLAGS="-C force-frame-pointers=yes"`
//! the trace is the interrupted PC plus whatever part of the chain
//! passes the walk's checks (in the example `monitor_backtrace`: 2–3
//! frames without, 8–14 with). Functions that keep no frame pointer
//! (libc's, std's prebuilt ones) leave no record: the frames between the
//! interrupted one and the first caller with a record are missing. A
//! green thread's trace ends where its stack does, at the coroutine's
//! entry. The signal interrupts the blocked call:
//! `SA_RESTART` restarts most system calls, std resumes `nanosleep`
//! with the time left, and a call that fails with `EINTR` instead is
//! the caller's to retry. That is why it is opt-in.
//!
//! # Invariants of the unsafe code
//!
//! * The handler is async-signal-safe: it allocates nothing and takes no
//!   lock; it reads a const-initialised thread-local with no destructor
//!   (this module's and the green scheduler's), does relaxed/acq-rel
//!   atomic operations, reads memory only through the walk, and saves and
//!   restores `errno`.
//! * The walk reads only word-aligned frame records that lie inside the
//!   stack holding the interrupted stack pointer (the running green
//!   thread's usable stack, else the OS thread's), at or above that
//!   pointer, each strictly above the last, at most `DEPTH` of them: all
//!   mapped, readable memory of the stopped thread.
//! * A `Tracee` outlives every handler run that can see it: the
//!   outermost loop's registration holds it and nulls the thread-local
//!   (on the loop thread itself) before letting it go.
//! * The monitor thread signals a thread only while holding the tracee's
//!   `alive` lock with `alive` true; the loop sets it false under that
//!   lock before it leaves, so the `pthread_t` is that of a live thread.
//! * Only the handler run that claimed a request (swapped `want` from
//!   its number to 0) writes the frame buffer, and the monitor thread
//!   reads it only after `done` shows that number and before it asks
//!   again; handler runs on one thread never overlap (the signal is
//!   blocked while its handler runs).

mod signal;
mod symbol;
mod walk;

use std::fmt;
use std::sync::Arc;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

pub(crate) use signal::Tracee;

/// How long the monitor thread waits for a blocked thread's walk.
pub const PATIENCE: Duration = Duration::from_millis(50);

/// Whether backtraces are on.
static ON: AtomicBool = AtomicBool::new(false);

/// One frame of a [`Backtrace`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// The code address: the interrupted PC for the first frame, a return
    /// address for the others (symbolize `address - 1` for the call).
    pub address: usize,
    /// The address as `dladdr` names it: `symbol+0xoff (object+0xoff)`
    /// or `object+0xoff` (`addr2line -f -C -e object 0xoff` resolves it).
    pub text: String,
}

/// A best-effort backtrace of a blocked loop thread (see the
/// [`monitor`](super) docs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Backtrace {
    /// Innermost first; empty if none could be taken.
    pub frames: Vec<Frame>,
    /// Why the walk stopped where it did, or why there is none.
    pub stopped: &'static str,
    /// From the signal to the symbolized frames.
    pub took: Duration,
}

/// Turns backtraces on for loops started from now on (the monitor itself
/// is turned on separately, by [`enable`](super::enable)).
pub fn enable() {
    ON.store(true, Ordering::Relaxed);
}

/// Whether backtraces are on (`GREENLOOP_MONITOR_BACKTRACE=1` or [`enable`]).
pub fn enabled() -> bool {
    static FROM_ENV: OnceLock<()> = OnceLock::new();
    FROM_ENV.get_or_init(|| {
        if std::env::var("GREENLOOP_MONITOR_BACKTRACE").is_ok_and(|v| v == "1") {
            enable();
        }
    });
    ON.load(Ordering::Relaxed)
}

/// The signal the backtrace handler is installed for, once a monitored
/// loop started with backtraces on; `None` before, or if no real-time
/// signal was free.
pub fn signal() -> Option<i32> {
    signal::installed()
}

/// How many backtrace signals loop threads answered with a walk.
pub fn answered() -> u64 {
    signal::ANSWERED.load(Ordering::Relaxed)
}

/// The calling thread's tracee for a monitored loop starting on it, and
/// whether this loop is its outermost (which must call `Tracee::leave`
/// when it ends); `None` with backtraces off.
pub(crate) fn attach() -> Option<(Arc<Tracee>, bool)> {
    if !enabled() {
        return None;
    }
    signal::install();
    let entered = Tracee::entered();
    if entered.is_null() {
        let tracee = Arc::new(Tracee::current());
        tracee.enter();
        return Some((tracee, true));
    }
    // SAFETY: a non-null entered pointer is `Arc::as_ptr` of the tracee the
    // outermost loop on this thread holds until it calls `leave`, which it
    // has not (it is below us on this thread): the Arc is alive, so adding
    // a count and taking an Arc for it is sound.
    let tracee = unsafe {
        Arc::increment_strong_count(entered);
        Arc::from_raw(entered)
    };
    Some((tracee, false))
}

/// Takes `tracee`'s backtrace now (from the monitor thread).
pub(crate) fn take(tracee: &Tracee) -> Backtrace {
    let start = Instant::now();
    match tracee.walk(PATIENCE) {
        Ok(walked) => {
            let addresses =
                std::iter::once(walked.pc).filter(|&pc| pc != 0).chain(walked.returns).enumerate();
            let frames = addresses
                .map(|(i, address)| {
                    // A return address points after its call: name the call.
                    let lookup = if i == 0 { address } else { address.wrapping_sub(1) };
                    Frame { address, text: symbol::describe(lookup) }
                })
                .collect();
            Backtrace { frames, stopped: walked.stop.describe(), took: start.elapsed() }
        }
        Err(why) => Backtrace { frames: Vec::new(), stopped: why, took: start.elapsed() },
    }
}

impl fmt::Display for Backtrace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (n, stopped, ms) = (self.frames.len(), self.stopped, self.took.as_secs_f64() * 1e3);
        write!(f, "backtrace ({n} frames, {stopped}; taken in {ms:.2} ms):")?;
        for (i, frame) in self.frames.iter().enumerate() {
            write!(f, "\n    #{i:<2} {:#014x} {}", frame.address, frame.text)?;
        }
        Ok(())
    }
}
