//! The handles of a [`Semaphore`]: the futures that wait for permits
//! ([`Acquire`], [`AcquireOwned`]) and the permits themselves
//! ([`SemaphorePermit`], [`OwnedSemaphorePermit`]), which give their permits
//! back when dropped.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use super::super::error::AcquireError;
use super::{AcquireState, Semaphore};

/// The future of [`Semaphore::acquire`] and [`Semaphore::acquire_many`].
///
/// Dropping it before it completes gives its place (and any permits it was
/// already handed) to the next waiter.
#[must_use = "futures do nothing unless polled"]
#[derive(Debug)]
pub struct Acquire<'a> {
    pub(super) sem: &'a Semaphore,
    pub(super) waiter: AcquireState,
}

impl<'a> Future for Acquire<'a> {
    type Output = Result<SemaphorePermit<'a>, AcquireError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let sem = this.sem;
        let poll = crate::dump::noting(this.waiter.poll(sem, cx), || crate::dump::Wait::Semaphore);
        poll.map_ok(|()| SemaphorePermit { sem, permits: this.waiter.need() })
    }
}

impl Drop for Acquire<'_> {
    fn drop(&mut self) {
        self.waiter.cancel(self.sem);
    }
}

/// The future of [`Semaphore::acquire_owned`] and
/// [`Semaphore::acquire_many_owned`]; cancel-safe like [`Acquire`].
#[must_use = "futures do nothing unless polled"]
#[derive(Debug)]
pub struct AcquireOwned {
    /// Taken when the permit is handed out.
    pub(super) sem: Option<Arc<Semaphore>>,
    pub(super) waiter: AcquireState,
}

impl Future for AcquireOwned {
    type Output = Result<OwnedSemaphorePermit, AcquireError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let sem = this.sem.as_ref().expect("AcquireOwned polled after completion");
        match this.waiter.poll(sem, cx) {
            Poll::Pending => crate::dump::pending(crate::dump::Wait::Semaphore),
            Poll::Ready(result) => {
                let sem = this.sem.take().expect("checked above");
                Poll::Ready(
                    result.map(|()| OwnedSemaphorePermit { sem, permits: this.waiter.need() }),
                )
            }
        }
    }
}

impl Drop for AcquireOwned {
    fn drop(&mut self) {
        if let Some(sem) = &self.sem {
            self.waiter.cancel(sem);
        }
    }
}

/// Permits borrowed from a [`Semaphore`], returned when dropped.
#[must_use = "dropping the permit releases it at once"]
pub struct SemaphorePermit<'a> {
    pub(super) sem: &'a Semaphore,
    pub(super) permits: usize,
}

impl SemaphorePermit<'_> {
    /// How many permits this holds.
    pub fn num_permits(&self) -> usize {
        self.permits
    }

    /// Drops the permit without returning it: the semaphore shrinks.
    pub fn forget(mut self) {
        self.permits = 0;
    }
}

impl Drop for SemaphorePermit<'_> {
    fn drop(&mut self) {
        self.sem.release(self.permits);
    }
}

impl fmt::Debug for SemaphorePermit<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SemaphorePermit").field("permits", &self.permits).finish()
    }
}

/// Permits from an `Arc<Semaphore>`, returned when dropped; `'static`, so
/// they can move into spawned work.
#[must_use = "dropping the permit releases it at once"]
pub struct OwnedSemaphorePermit {
    pub(super) sem: Arc<Semaphore>,
    pub(super) permits: usize,
}

impl OwnedSemaphorePermit {
    /// How many permits this holds.
    pub fn num_permits(&self) -> usize {
        self.permits
    }

    /// The semaphore the permits came from.
    pub fn semaphore(&self) -> &Arc<Semaphore> {
        &self.sem
    }

    /// Drops the permit without returning it: the semaphore shrinks.
    pub fn forget(mut self) {
        self.permits = 0;
    }
}

impl Drop for OwnedSemaphorePermit {
    fn drop(&mut self) {
        self.sem.release(self.permits);
    }
}

impl fmt::Debug for OwnedSemaphorePermit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OwnedSemaphorePermit").field("permits", &self.permits).finish()
    }
}
