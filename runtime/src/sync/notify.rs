//! [`Notify`]: wake one waiter, or all of them, without passing data.
//!
//! # Mechanism
//!
//! A [`WaitList`] of [`Notified`] futures and one stored permit, under a
//! short spin lock (`spin.rs`), plus a generation counter:
//!
//! * [`notify_one`](Notify::notify_one) hands the notification to the first
//!   waiter (FIFO) and wakes it; with nobody waiting it stores the permit
//!   (at most one), which the next `notified()` consumes at once.
//! * [`notify_waiters`](Notify::notify_waiters) bumps the generation and
//!   wakes every waiter; it stores nothing. A [`Notified`] remembers the
//!   generation it was *created* in, so one created before the call
//!   completes even if it was not polled yet: the usual
//!   "create `notified()`, check the condition, then wait" sequence cannot
//!   miss a wake-up.
//!
//! # Cancel safety
//!
//! Dropping a `Notified` that `notify_one` had already chosen passes the
//! notification on (to the next waiter, or as the stored permit), so it is
//! never lost.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};

use super::spin::SpinLock;
use super::waiters::{Phase, WaitList, Wakes};

/// How a waiter was woken.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Woken {
    /// Still waiting.
    No,
    /// Chosen by `notify_one`: owns that notification.
    One,
    /// Woken by `notify_waiters`.
    All,
}

/// A notification primitive for green threads, tasks and OS threads.
///
/// # Examples
///
/// ```
/// use greenloop_runtime::{green, sync::Notify};
/// use std::{cell::Cell, rc::Rc};
///
/// green::run(|| {
///     let (notify, ready) = (Rc::new(Notify::new()), Rc::new(Cell::new(false)));
///     let waiter = {
///         let (notify, ready) = (notify.clone(), ready.clone());
///         green::spawn(move || {
///             while !ready.get() {
///                 notify.notified_blocking();
///             }
///         })
///     };
///     ready.set(true);
///     notify.notify_one();
///     waiter.join().unwrap();
/// });
/// ```
pub struct Notify {
    inner: SpinLock<Inner>,
    /// Bumped (under the lock) by every `notify_waiters`.
    generation: AtomicU64,
}

#[derive(Debug)]
struct Inner {
    waiters: WaitList<Woken>,
    permit: bool,
}

impl Default for Notify {
    fn default() -> Self {
        Notify::new()
    }
}

impl Notify {
    /// A `Notify` with no stored permit.
    pub const fn new() -> Notify {
        Notify {
            inner: SpinLock::new(Inner { waiters: WaitList::new(), permit: false }),
            generation: AtomicU64::new(0),
        }
    }

    /// Wakes the first waiter, or stores a permit for the next one if none
    /// waits (permits do not accumulate).
    pub fn notify_one(&self) {
        let mut wakes = Wakes::new();
        notify_one_locked(&mut self.inner.lock(), &mut wakes);
        wakes.wake_all();
    }

    /// Wakes every current waiter — including [`Notified`] futures created
    /// but not yet polled — without storing a permit.
    pub fn notify_waiters(&self) {
        let mut wakes = Wakes::new();
        {
            let mut inner = self.inner.lock();
            self.generation.fetch_add(1, Ordering::AcqRel);
            inner.waiters.drain(|w| *w = Woken::All, &mut wakes);
        }
        wakes.wake_all();
    }

    /// A future that completes when notified (see the module docs).
    pub fn notified(&self) -> Notified<'_> {
        Notified {
            notify: self,
            generation: self.generation.load(Ordering::Acquire),
            phase: Phase::Idle,
        }
    }

    /// Blocking-style [`notified`](Notify::notified): parks only the green
    /// thread inside the green runtime, blocks the OS thread elsewhere.
    pub fn notified_blocking(&self) {
        crate::block_on(self.notified());
    }
}

fn notify_one_locked(inner: &mut Inner, wakes: &mut Wakes) {
    match inner.waiters.pop_front(|w| *w = Woken::One) {
        Some(waker) => wakes.push(waker),
        None => inner.permit = true,
    }
}

impl fmt::Debug for Notify {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let inner = self.inner.lock();
        f.debug_struct("Notify")
            .field("waiters", &inner.waiters.len())
            .field("permit", &inner.permit)
            .finish()
    }
}

/// The future of [`Notify::notified`]; cancel-safe (see the module docs).
#[must_use = "futures do nothing unless polled"]
#[derive(Debug)]
pub struct Notified<'a> {
    notify: &'a Notify,
    generation: u64,
    phase: Phase,
}

impl Future for Notified<'_> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        let mut inner = this.notify.inner.lock();
        match this.phase {
            Phase::Idle => {
                if this.notify.generation.load(Ordering::Acquire) != this.generation {
                    // A notify_waiters came after this future was created.
                } else if inner.permit {
                    inner.permit = false;
                } else {
                    this.phase = Phase::Waiting(inner.waiters.push_back(Woken::No, cx.waker()));
                    return crate::dump::pending(crate::dump::Wait::Notify);
                }
            }
            Phase::Waiting(key) => {
                if inner.waiters.is_linked(key) {
                    let displaced = inner.waiters.register(key, cx.waker());
                    drop(inner);
                    drop(displaced);
                    return crate::dump::pending(crate::dump::Wait::Notify);
                }
                let _ = inner.waiters.remove(key);
            }
            Phase::Done => panic!("Notified polled after completion"),
        }
        this.phase = Phase::Done;
        Poll::Ready(())
    }
}

impl Drop for Notified<'_> {
    fn drop(&mut self) {
        let Phase::Waiting(key) = self.phase else { return };
        let mut wakes = Wakes::new();
        let own_waker = {
            let mut inner = self.notify.inner.lock();
            let (woken, _, waker) = inner.waiters.remove(key);
            if woken == Woken::One {
                notify_one_locked(&mut inner, &mut wakes);
            }
            waker
        };
        drop(own_waker);
        wakes.wake_all();
    }
}
