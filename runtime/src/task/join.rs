//! [`JoinHandle`] and [`JoinError`]: waiting for a task's output.

use std::any::Any;
use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::task::{Context, Poll};

use super::raw::RawTask;

/// Why a task produced no output.
pub enum JoinError {
    /// The task was aborted, or its runtime shut down before it finished.
    Cancelled,
    /// The task panicked; the payload is the panic's.
    Panicked(Box<dyn Any + Send + 'static>),
}

impl JoinError {
    /// Whether the task was cancelled.
    pub fn is_cancelled(&self) -> bool {
        matches!(self, JoinError::Cancelled)
    }

    /// Whether the task panicked.
    pub fn is_panic(&self) -> bool {
        matches!(self, JoinError::Panicked(_))
    }

    /// The panic payload.
    ///
    /// # Panics
    ///
    /// If the task was cancelled rather than panicked.
    pub fn into_panic(self) -> Box<dyn Any + Send + 'static> {
        match self {
            JoinError::Panicked(payload) => payload,
            JoinError::Cancelled => panic!("JoinError::into_panic on a cancelled task"),
        }
    }

    fn message(&self) -> &str {
        match self {
            JoinError::Cancelled => "cancelled",
            JoinError::Panicked(payload) => payload
                .downcast_ref::<&str>()
                .copied()
                .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
                .unwrap_or("Box<dyn Any>"),
        }
    }
}

impl fmt::Debug for JoinError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JoinError::Cancelled => f.write_str("JoinError::Cancelled"),
            JoinError::Panicked(_) => write!(f, "JoinError::Panicked({:?})", self.message()),
        }
    }
}

impl fmt::Display for JoinError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JoinError::Cancelled => f.write_str("task was cancelled"),
            JoinError::Panicked(_) => write!(f, "task panicked: {}", self.message()),
        }
    }
}

impl std::error::Error for JoinError {}

/// An owned permission to await a task's output.
///
/// Awaiting it gives `Ok(output)`, or a [`JoinError`] if the task panicked
/// or was cancelled. Dropping it detaches the task, which keeps running.
/// It can be awaited from another task, from another OS thread, or joined
/// from a green thread with [`block_on`](crate::block_on).
pub struct JoinHandle<T> {
    raw: Option<RawTask>,
    _output: PhantomData<T>,
}

// SAFETY: the handle is the only way to reach the output, which it moves
// out only after the task completed; sending it moves the output's owner,
// so `T: Send` suffices. The raw task's shared state is thread-safe.
unsafe impl<T: Send> Send for JoinHandle<T> {}
// SAFETY: `&JoinHandle` only reads the state word and requests an abort,
// both thread-safe; the output is reachable through `&mut` (poll) only.
unsafe impl<T: Send> Sync for JoinHandle<T> {}

impl<T> Unpin for JoinHandle<T> {}

impl<T> JoinHandle<T> {
    pub(super) fn new(raw: RawTask) -> JoinHandle<T> {
        JoinHandle { raw: Some(raw), _output: PhantomData }
    }

    fn raw(&self) -> &RawTask {
        self.raw.as_ref().expect("JoinHandle used after drop")
    }

    /// Cancels the task: its future is dropped on its executor's thread
    /// (at once if idle, after the current poll if running), and awaiting
    /// the handle gives `Err(JoinError::Cancelled)` — unless that current
    /// poll completes the task, whose output then wins. No effect on a
    /// task that already finished.
    pub fn abort(&self) {
        self.raw().abort();
    }

    /// Whether the task finished (completed, panicked or was cancelled).
    pub fn is_finished(&self) -> bool {
        self.raw().is_complete()
    }

    /// The task's id (unique in the process, for logs).
    pub fn id(&self) -> u64 {
        self.raw().id()
    }
}

impl<T> Future for JoinHandle<T> {
    type Output = Result<T, JoinError>;

    // Inlined, with `RawTask::poll_join`, into the awaiting future's poll:
    // out of line, the two calls per join (pending, then ready) cost about
    // 50 of the 850 instructions of a spawn and join (callgrind on the
    // `spawn_join/stackless` bench).
    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        // SAFETY: this is the task's handle reference, and `T` is its
        // future's output type (fixed at spawn).
        let poll = unsafe { self.raw().poll_join::<T>(cx.waker()) };
        let join = || crate::dump::Wait::Join { model: crate::dump::Model::Task, id: self.id() };
        crate::dump::noting(poll, join)
    }
}

impl<T> Drop for JoinHandle<T> {
    fn drop(&mut self) {
        if let Some(raw) = self.raw.take() {
            raw.drop_handle();
        }
    }
}

impl<T> fmt::Debug for JoinHandle<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JoinHandle").field("task", &self.raw).finish()
    }
}
