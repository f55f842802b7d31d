//! The task state word: five flags and a reference count in one
//! `AtomicUsize`.
//!
//! ```text
//!  bit:  63 ............ 6       5          4        3       2         1        0
//!        [   refcount     ] [JOIN_WAKER] [HANDLE] [CLOSED] [COMPLETE] [RUNNING] [SCHEDULED]
//! ```

use std::fmt;

/// The task is in a run queue (local or remote), or about to be pushed.
///
/// Set by a wake of an idle task, together with one reference that the
/// queue entry owns. A wake while `SCHEDULED` does nothing, so a task is
/// never queued twice. A wake while `RUNNING` sets it without a reference:
/// the executor re-queues the task with the entry it already holds.
pub(crate) const SCHEDULED: usize = 1 << 0;

/// The executor is polling the future, or re-queued it after a poll
/// during which it was woken.
///
/// Only the executor thread sets and clears it. `RUNNING | SCHEDULED`
/// means "woken during its poll: poll again": the executor puts the task
/// back in its queue as it is, and its next poll clears `SCHEDULED` and
/// keeps `RUNNING` in one exchange. Every other party reads a set
/// `SCHEDULED` first (the task is queued) and does not look further.
pub(crate) const RUNNING: usize = 1 << 1;

/// The future is gone and the stage holds the output (or a `JoinError`).
///
/// Set once, by the executor; never cleared. Wakes after it are no-ops.
/// Impossible together with `RUNNING` or `SCHEDULED`.
pub(crate) const COMPLETE: usize = 1 << 2;

/// The task was aborted (or its executor shut down): its future must be
/// dropped, on the executor thread, instead of polled.
///
/// Set by `abort` from any thread. If the task was idle, `abort` also sets
/// `SCHEDULED` so the executor gets to drop the future.
pub(crate) const CLOSED: usize = 1 << 3;

/// The `JoinHandle` is alive and owns the output once the task completes.
///
/// Whoever observes `COMPLETE` without `HANDLE` (the executor at
/// completion, or the handle's drop) drops the output, so a `!Send` output
/// of a local task is dropped on the thread that owns it.
pub(crate) const HANDLE: usize = 1 << 4;

/// The `JoinHandle` stored its waker in the header's slot.
///
/// Set and cleared by the handle only (clearing it is how the handle takes
/// the slot back to replace the waker, which fails once `COMPLETE` is
/// set). The executor wakes the stored waker, by reference, when it sets
/// `COMPLETE` while this is set.
pub(crate) const JOIN_WAKER: usize = 1 << 5;

/// One reference in the upper bits. References are held by: the
/// `JoinHandle`, each `Waker`, the queue entry while `SCHEDULED`, and the
/// executor's registry of live tasks until the task completes.
pub(crate) const REF_ONE: usize = 1 << 6;

/// Mask of the reference count.
pub(crate) const REF_MASK: usize = !(REF_ONE - 1);

/// The largest count word a reference may be added to. For a task's state
/// word that is 2^57 references, for a green thread's count 2^63: only
/// leaked wakers (`mem::forget(waker.clone())` in a loop) reach it. Past
/// it, further increments would walk the count towards wrapping to zero and
/// a use after free; like std's `Arc`, the process aborts instead.
const REF_LIMIT: usize = isize::MAX as usize;

/// Aborts if `previous`, a task's state word or a green thread's count
/// before adding a reference, was past [`REF_LIMIT`].
#[inline]
pub(crate) fn check_ref_overflow(previous: usize) {
    if previous > REF_LIMIT {
        ref_overflow();
    }
}

#[cold]
#[inline(never)]
fn ref_overflow() -> ! {
    eprintln!("greenloop: a waker's reference count overflowed (leaked wakers?); aborting");
    std::process::abort();
}

/// A decoded state word, for `Debug` output and test failures.
pub(crate) struct State(pub(crate) usize);

impl fmt::Debug for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.0;
        let mut flags = f.debug_struct("State");
        for (bit, name) in [
            (SCHEDULED, "scheduled"),
            (RUNNING, "running"),
            (COMPLETE, "complete"),
            (CLOSED, "closed"),
            (HANDLE, "handle"),
            (JOIN_WAKER, "join_waker"),
        ] {
            if s & bit != 0 {
                flags.field(name, &true);
            }
        }
        flags.field("refs", &((s & REF_MASK) / REF_ONE)).finish()
    }
}
