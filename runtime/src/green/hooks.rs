//! Hooks for layers that turn foreign blocking calls into green parks
//! (`greenloop-patch`): the one check they make on every call.

use super::scheduler::Scheduler;

/// Where the caller stands with respect to green threads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GreenState {
    /// Not in a green thread: a plain OS thread, a stackless task, or the
    /// scheduler's own stack.
    Outside,
    /// In a green thread that may park.
    Running,
    /// In a green thread that its runtime is unwinding at shutdown: its
    /// destructors run, but it must not park.
    TearingDown,
}

/// The caller's [`GreenState`]: one thread-local load and two field reads.
#[inline]
pub fn state() -> GreenState {
    Scheduler::with(|s| match s {
        Some(s) if s.is_running_thread() => {
            if s.is_shutting_down() {
                GreenState::TearingDown
            } else {
                GreenState::Running
            }
        }
        _ => GreenState::Outside,
    })
}
