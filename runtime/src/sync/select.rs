//! [`select`]: wait for the first of several [`mpsc::Receiver`]s to yield.
//!
//! # Choice: a combinator, not a macro
//!
//! `select(&mut receivers)` is a plain future over a slice of receivers of
//! one message type, with output `(index, Option<T>)`. It needs no macro,
//! works unchanged from `.await`, from [`select_blocking`] (green threads
//! and OS threads) and under [`time::timeout`](crate::time::timeout), and
//! its cancellation story is simple: it takes a message from at most one
//! receiver per completion, and [`Receiver::poll_recv`] is cancel-safe, so
//! dropping a pending `Select` (on timeout, say) loses nothing.
//!
//! Receivers of different message types join one select by sending an enum
//! (one channel per producer, one variant per kind).
//!
//! # Mechanism
//!
//! Each poll polls the receivers in turn, starting from a rotating index so
//! that a busy receiver cannot starve the others, and returns the first
//! ready one. Pending receivers keep the task's waker, so any of them wakes
//! the select. When it completes (or is dropped), it withdraws its
//! registration from the other receivers, so they stop handing messages to
//! a wait that is over.
//!
//! A closed and drained receiver is always ready with `(index, None)`, as a
//! closed channel is in Go's `select`: remove it from the set once seen.
//! (An example is on [`select`].)

use std::cell::Cell;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use super::mpsc::Receiver;

/// Waits for the first message from any of `receivers`: `(index, Some(msg))`,
/// or `(index, None)` if that receiver's channel is closed and drained.
///
/// A combinator rather than a `select!` macro: it needs no macro machinery,
/// works the same from `.await`, [`select_blocking`] and
/// [`time::timeout`](crate::time::timeout), and is cancel-safe (it takes a
/// message from at most one receiver per completion, and dropping it while
/// pending loses nothing). Receivers of different message types join one
/// select by sending an enum. A closed, drained receiver is always ready
/// with `(index, None)`, as in Go: remove it from the set once seen.
///
/// # Panics
///
/// The future panics when polled if `receivers` is empty (it could never
/// complete).
///
/// # Examples
///
/// ```
/// use greenloop_runtime::sync::{mpsc, select_blocking};
/// use greenloop_runtime::time;
/// use std::time::Duration;
///
/// let (tx_a, rx_a) = mpsc::unbounded_channel();
/// let (_tx_b, rx_b) = mpsc::unbounded_channel::<&str>();
/// let mut receivers = [rx_a, rx_b];
/// tx_a.send("a").unwrap();
/// assert_eq!(select_blocking(&mut receivers), (0, Some("a")));
///
/// // With a timeout: nothing more is coming for now.
/// let waited = time::block_on_timeout(
///     Duration::from_millis(5),
///     greenloop_runtime::sync::select(&mut receivers),
/// );
/// assert!(waited.is_err());
/// ```
pub fn select<T>(receivers: &mut [Receiver<T>]) -> Select<'_, T> {
    thread_local! {
        static START: Cell<usize> = const { Cell::new(0) };
    }
    let start = START.with(|s| {
        let start = s.get();
        s.set(start.wrapping_add(1));
        start
    });
    Select { receivers, start, polled: false }
}

/// Blocking-style [`select`]: parks only the green thread inside the green
/// runtime, blocks the OS thread elsewhere.
///
/// # Panics
///
/// If `receivers` is empty.
pub fn select_blocking<T>(receivers: &mut [Receiver<T>]) -> (usize, Option<T>) {
    crate::block_on(select(receivers))
}

/// The future of [`select`].
#[must_use = "futures do nothing unless polled"]
pub struct Select<'a, T> {
    receivers: &'a mut [Receiver<T>],
    start: usize,
    /// Some receiver may hold a registration of this select.
    polled: bool,
}

impl<T> Select<'_, T> {
    /// Withdraws this select's registrations from every receiver but
    /// `except`.
    fn unregister(&mut self, except: Option<usize>) {
        if std::mem::take(&mut self.polled) {
            for (index, rx) in self.receivers.iter_mut().enumerate() {
                if Some(index) != except {
                    rx.unregister();
                }
            }
        }
    }
}

impl<T> Future for Select<'_, T> {
    type Output = (usize, Option<T>);

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<(usize, Option<T>)> {
        let this = self.get_mut();
        let n = this.receivers.len();
        assert!(n > 0, "select over no receivers would never complete");
        for i in 0..n {
            let index = (this.start + i) % n;
            if let Poll::Ready(message) = this.receivers[index].poll_recv(cx) {
                this.unregister(Some(index));
                return Poll::Ready((index, message));
            }
            this.polled = true;
        }
        Poll::Pending
    }
}

impl<T> Drop for Select<'_, T> {
    fn drop(&mut self) {
        self.unregister(None);
    }
}

impl<T> fmt::Debug for Select<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Select").field("receivers", &self.receivers.len()).finish()
    }
}
