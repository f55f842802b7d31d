//! [`block_on`]: wait for a future from blocking-style code, anywhere.

use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;

use crate::green;
use crate::reactor::{Reactor, Remote};

/// Runs `future` to completion from blocking-style code and returns its
/// output.
///
/// * In a green thread, the future is polled with the green thread's waker
///   and, while it is pending, only the green thread parks: others run.
/// * On a plain OS thread, the thread blocks, driving its own reactor so
///   timers and sockets the future waits on make progress.
/// * Called inside a stackless task it blocks the executor's thread: that
///   is the blocking-in-async anti-pattern, which greenloop keeps visible.
///
/// # Panics
///
/// On a plain OS thread, if the thread's reactor cannot be created or
/// `epoll_wait` fails.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
///
/// let value = greenloop_runtime::block_on(async {
///     greenloop_runtime::time::sleep(Duration::from_millis(1)).await;
///     7
/// });
/// assert_eq!(value, 7);
/// ```
pub fn block_on<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    if let Some(waker) = green::current_waker_ref() {
        let mut cx = Context::from_waker(&waker);
        loop {
            if let Poll::Ready(output) = future.as_mut().poll(&mut cx) {
                return output;
            }
            green::wait_for_wake();
        }
    }
    let reactor = Reactor::current();
    let notify = ThreadNotify::new(reactor.remote().clone(), false);
    let waker = Waker::from(notify.clone());
    let mut cx = Context::from_waker(&waker);
    loop {
        if let Poll::Ready(output) = future.as_mut().poll(&mut cx) {
            return output;
        }
        // Woken during the poll (a future that yields): still give the
        // reactor a non-blocking turn, so that I/O and timers progress.
        let mut timeout = notify.take().then_some(Duration::ZERO);
        loop {
            if let Err(e) = reactor.turn(timeout) {
                panic!("greenloop: block_on: epoll_wait failed: {e}");
            }
            if timeout.is_some() || notify.take() {
                break;
            }
            timeout = None;
        }
    }
}

/// The waker of a `block_on`'s own future: a flag plus the reactor's
/// remote notification, so a wake from any thread ends the wait.
pub(crate) struct ThreadNotify {
    notified: AtomicBool,
    remote: Arc<Remote>,
}

impl ThreadNotify {
    /// A notifier for the reactor behind `remote`, initially `notified`.
    pub(crate) fn new(remote: Arc<Remote>, notified: bool) -> Arc<ThreadNotify> {
        Arc::new(ThreadNotify { notified: AtomicBool::new(notified), remote })
    }

    /// Consumes the notification; `true` if there was one.
    pub(crate) fn take(&self) -> bool {
        self.notified.swap(false, Ordering::Acquire)
    }

    /// Whether a notification is pending.
    pub(crate) fn is_set(&self) -> bool {
        self.notified.load(Ordering::Acquire)
    }
}

impl Wake for ThreadNotify {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        if Reactor::current_id() == Some(self.remote.id()) {
            // On the waiting thread itself the flag is enough: it checks the
            // flag before it blocks, so there is no epoll_wait to interrupt.
            // A plain store does: other wakers only set the flag too, and
            // `take`, the only clear, runs on this thread.
            self.notified.store(true, Ordering::Release);
        } else if !self.notified.swap(true, Ordering::Release) {
            self.remote.notify();
        }
    }
}
