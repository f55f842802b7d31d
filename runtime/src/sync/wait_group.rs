//! [`WaitGroup`]: wait until a group of jobs is done (Go's `sync.WaitGroup`).
//!
//! # Mechanism
//!
//! An atomic counter and a [`WaitList`] under a short spin lock
//! (`spin.rs`). [`add`](WaitGroup::add) and [`done`](WaitGroup::done) are
//! single atomic operations; only the `done` that brings the count to zero takes the lock,
//! and it wakes every waiter. A waiter checks the count, then re-checks it
//! under the lock before queueing, so a `done` that lands in between is seen
//! either by the re-check or by the final `done`'s sweep: no lost wake-up.
//!
//! Dropping a pending [`Wait`] just leaves the queue (there is nothing to
//! pass on).

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};

use super::spin::SpinLock;
use super::waiters::{Phase, WaitList, Wakes};

/// A counter of pending jobs that can be waited on to reach zero. Clones
/// share the same counter.
///
/// Reuse follows Go's rule: a new round of [`add`](WaitGroup::add)s must
/// start after the previous round's waits returned.
///
/// # Examples
///
/// ```
/// use greenloop_runtime::{sync::WaitGroup, task};
///
/// task::Runtime::new().unwrap().block_on(async {
///     let wg = WaitGroup::new();
///     for _ in 0..3 {
///         wg.add(1);
///         let wg = wg.clone();
///         task::spawn(async move {
///             task::yield_now().await;
///             wg.done();
///         });
///     }
///     wg.wait().await;
///     assert_eq!(wg.count(), 0);
/// });
/// ```
#[derive(Clone, Default)]
pub struct WaitGroup {
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    count: AtomicUsize,
    waiters: SpinLock<WaitList<()>>,
}

impl WaitGroup {
    /// A group with a count of zero.
    pub fn new() -> WaitGroup {
        WaitGroup::default()
    }

    /// Adds `n` pending jobs.
    ///
    /// # Panics
    ///
    /// If the count overflows.
    pub fn add(&self, n: usize) {
        let previous = self.inner.count.fetch_add(n, Ordering::AcqRel);
        if previous.checked_add(n).is_none() {
            self.inner.count.fetch_sub(n, Ordering::AcqRel);
            panic!("WaitGroup::add: count overflows");
        }
    }

    /// Marks one job done; when the count reaches zero, wakes every waiter.
    ///
    /// # Panics
    ///
    /// If the count is already zero (more `done`s than `add`s).
    pub fn done(&self) {
        let previous = self.inner.count.fetch_sub(1, Ordering::AcqRel);
        if previous == 0 {
            self.inner.count.fetch_add(1, Ordering::AcqRel);
            panic!("WaitGroup::done called more times than add");
        }
        if previous > 1 {
            return;
        }
        let mut wakes = Wakes::new();
        self.inner.waiters.lock().drain(|()| {}, &mut wakes);
        wakes.wake_all();
    }

    /// The number of pending jobs (a snapshot).
    pub fn count(&self) -> usize {
        self.inner.count.load(Ordering::Acquire)
    }

    /// Waits until the count is zero (completes at once if it is).
    pub fn wait(&self) -> Wait<'_> {
        Wait { group: self, phase: Phase::Idle }
    }

    /// Blocking-style [`wait`](WaitGroup::wait): parks only the green thread
    /// inside the green runtime, blocks the OS thread elsewhere.
    pub fn wait_blocking(&self) {
        crate::block_on(self.wait());
    }
}

impl fmt::Debug for WaitGroup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WaitGroup")
            .field("count", &self.count())
            .field("waiters", &self.inner.waiters.lock().len())
            .finish()
    }
}

/// The future of [`WaitGroup::wait`].
#[must_use = "futures do nothing unless polled"]
#[derive(Debug)]
pub struct Wait<'a> {
    group: &'a WaitGroup,
    phase: Phase,
}

impl Future for Wait<'_> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        let inner = &*this.group.inner;
        match this.phase {
            Phase::Idle => {
                if inner.count.load(Ordering::Acquire) != 0 {
                    let mut waiters = inner.waiters.lock();
                    // Re-checked under the lock the final `done` takes.
                    if inner.count.load(Ordering::Acquire) != 0 {
                        this.phase = Phase::Waiting(waiters.push_back((), cx.waker()));
                        return crate::dump::pending(crate::dump::Wait::WaitGroup);
                    }
                }
            }
            Phase::Waiting(key) => {
                let mut waiters = inner.waiters.lock();
                if waiters.is_linked(key) {
                    let displaced = waiters.register(key, cx.waker());
                    drop(waiters);
                    drop(displaced);
                    return crate::dump::pending(crate::dump::Wait::WaitGroup);
                }
                let _ = waiters.remove(key);
            }
            Phase::Done => panic!("WaitGroup wait polled after completion"),
        }
        this.phase = Phase::Done;
        Poll::Ready(())
    }
}

impl Drop for Wait<'_> {
    fn drop(&mut self) {
        if let Phase::Waiting(key) = self.phase {
            let (_, _, own_waker) = self.group.inner.waiters.lock().remove(key);
            drop(own_waker);
        }
    }
}
