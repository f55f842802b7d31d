//! [`timeout`]: bound the time a future may take.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use super::{Sleep, sleep, sleep_until};

/// The error of a [`Timeout`] whose deadline passed first.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Elapsed(());

impl fmt::Display for Elapsed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("deadline has elapsed")
    }
}

impl std::error::Error for Elapsed {}

impl Elapsed {
    /// The error, for the other timeouts of the crate (`green::timeout`).
    pub(crate) fn new() -> Elapsed {
        Elapsed(())
    }
}

impl From<Elapsed> for std::io::Error {
    fn from(e: Elapsed) -> std::io::Error {
        std::io::Error::new(std::io::ErrorKind::TimedOut, e)
    }
}

/// Runs `future` for at most `duration`: its output, or `Err(Elapsed)`.
/// The inner future is polled first, so a ready future wins a tie; on
/// timeout it is dropped.
///
/// ```
/// use greenloop_runtime::{block_on, time};
/// use std::time::Duration;
///
/// let slow = time::sleep(Duration::from_secs(60));
/// assert!(block_on(time::timeout(Duration::from_millis(5), slow)).is_err());
/// ```
pub fn timeout<F: Future>(duration: Duration, future: F) -> Timeout<F> {
    Timeout { future, sleep: sleep(duration) }
}

/// Like [`timeout`], with an absolute deadline.
pub fn timeout_at<F: Future>(deadline: Instant, future: F) -> Timeout<F> {
    Timeout { future, sleep: sleep_until(deadline) }
}

/// Blocking-style [`timeout`]: waits for `future` for at most `duration`
/// with [`block_on`](crate::block_on), parking only the current green
/// thread inside the green runtime.
pub fn block_on_timeout<F: Future>(duration: Duration, future: F) -> Result<F::Output, Elapsed> {
    crate::block_on(timeout(duration, future))
}

/// The future of [`timeout`].
#[derive(Debug)]
#[must_use = "futures do nothing unless polled"]
pub struct Timeout<F> {
    future: F,
    sleep: Sleep,
}

impl<F> Timeout<F> {
    /// The wrapped future.
    pub fn into_inner(self) -> F {
        self.future
    }
}

impl<F: Future> Future for Timeout<F> {
    type Output = Result<F::Output, Elapsed>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        // SAFETY: `future` is structurally pinned: it is never moved out of
        // a pinned `Timeout` (`into_inner` takes `self` by value, which
        // requires `Unpin` or an unpinned value). `sleep` is `Unpin`.
        let this = unsafe { self.get_unchecked_mut() };
        // SAFETY: see above; `future` stays in place.
        let future = unsafe { Pin::new_unchecked(&mut this.future) };
        if let Poll::Ready(output) = future.poll(cx) {
            return Poll::Ready(Ok(output));
        }
        match Pin::new(&mut this.sleep).poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(Elapsed(()))),
            Poll::Pending => Poll::Pending,
        }
    }
}
