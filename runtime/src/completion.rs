//! A one-value, one-waiter completion slot: the result of a green thread
//! or a blocking job, filled once by the producer and taken once by the
//! consumer, who may wait for it from any thread.

use std::sync::{Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};

/// See the module docs.
#[derive(Debug)]
pub(crate) struct Completion<T> {
    inner: Mutex<Inner<T>>,
}

#[derive(Debug)]
struct Inner<T> {
    value: Option<T>,
    done: bool,
    waiter: Option<Waker>,
}

impl<T> Completion<T> {
    pub(crate) const fn new() -> Completion<T> {
        Completion { inner: Mutex::new(Inner { value: None, done: false, waiter: None }) }
    }

    fn lock(&self) -> MutexGuard<'_, Inner<T>> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Stores the value and wakes the waiter (outside the lock).
    pub(crate) fn complete(&self, value: T) {
        let waiter = {
            let mut inner = self.lock();
            inner.value = Some(value);
            inner.done = true;
            inner.waiter.take()
        };
        if let Some(waiter) = waiter {
            waiter.wake();
        }
    }

    /// Whether the value was stored (taken or not).
    pub(crate) fn is_done(&self) -> bool {
        self.lock().done
    }

    /// Takes the value if stored and not taken yet, without waiting.
    pub(crate) fn try_take(&self) -> Option<T> {
        self.lock().value.take()
    }

    /// The value if stored, else registers `cx`'s waker.
    ///
    /// # Panics
    ///
    /// If the value was already taken (a future polled after completion).
    pub(crate) fn poll_take(&self, cx: &mut Context<'_>) -> Poll<T> {
        let mut inner = self.lock();
        if let Some(value) = inner.value.take() {
            return Poll::Ready(value);
        }
        assert!(!inner.done, "handle polled after it returned its result");
        match &mut inner.waiter {
            Some(waiter) if waiter.will_wake(cx.waker()) => {}
            waiter => *waiter = Some(cx.waker().clone()),
        }
        Poll::Pending
    }
}
