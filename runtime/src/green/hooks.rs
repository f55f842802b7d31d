//! Hooks for layers that turn foreign blocking calls into green parks
//! (`greenloop-patch`): the one check they make on every call.

use super::scheduler::Scheduler;

/// Whether the caller is a green thread that may park now: it runs inside
/// a green thread, and its runtime is not tearing down (destructors of the
/// threads it unwinds run as green threads but must not park).
///
/// One thread-local load and two field reads; `false` on plain OS threads,
/// in stackless tasks and on the scheduler's own stack.
#[inline]
pub fn may_park() -> bool {
    Scheduler::with(|s| s.is_some_and(|s| s.is_running_thread() && !s.is_shutting_down()))
}
