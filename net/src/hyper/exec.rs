//! [`GreenloopExecutor`]: hyper's `rt::Executor` on either model.

use std::future::Future;

use ::hyper::rt::Executor;
use greenloop_runtime::{block_on, green, task};

/// Runs the futures hyper hands over (a client connection's I/O, HTTP/2
/// streams) on the model that runs the caller: inside a green thread, as a
/// new green thread that [`block_on`]s the future; inside a stackless
/// runtime ([`Runtime::block_on`](task::Runtime::block_on)), as a task.
/// Either way on the calling OS thread, so the future need not be `Send`.
///
/// # Panics
///
/// `execute` panics when called outside both runtimes: there is nothing
/// to run the future.
#[derive(Clone, Copy, Debug, Default)]
pub struct GreenloopExecutor;

impl<F> Executor<F> for GreenloopExecutor
where
    F: Future + 'static,
    F::Output: 'static,
{
    fn execute(&self, future: F) {
        if green::in_green_thread() {
            // Detached: dropping the handle lets the thread run on.
            drop(green::spawn(move || {
                block_on(future);
            }));
        } else if task::live_tasks().is_some() {
            drop(task::spawn_local(future));
        } else {
            panic!(
                "GreenloopExecutor::execute outside greenloop: call it from a green thread \
                 (green::run) or a task (task::Runtime::block_on)"
            );
        }
    }
}
