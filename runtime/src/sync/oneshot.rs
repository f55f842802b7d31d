//! A one-value channel: [`channel`] gives a [`Sender`] that sends once and a
//! [`Receiver`] that is itself the future of the value.
//!
//! # Mechanism
//!
//! One short spin lock (`spin.rs`) guards the value slot, the receiver's
//! waker (a single-waiter slot: there is one receiver) and two "gone"
//! flags. The
//! sender stores the value and takes the waker under the lock, then wakes it
//! outside; the receiver takes the value or registers its waker under the
//! same lock, so a send can never slip between the check and the wait.
//!
//! Dropping the sender without sending closes the channel (the receiver gets
//! [`RecvError`]); dropping or [`close`](Receiver::close)-ing the receiver
//! makes a later send give its value back. Awaiting the receiver is
//! cancel-safe only in the sense that dropping the receiver drops the value:
//! to wait with a timeout and keep the channel, poll `&mut receiver`.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

pub use super::error::{RecvError, TryRecvError};
use super::spin::SpinLock;
use super::waiters::register_slot;

/// A one-value channel.
///
/// # Examples
///
/// ```
/// use greenloop_runtime::{green, sync::oneshot};
///
/// let answer = green::run(|| {
///     let (tx, rx) = oneshot::channel();
///     green::spawn(move || tx.send(42).unwrap());
///     rx.recv_blocking().unwrap()
/// });
/// assert_eq!(answer, 42);
/// ```
pub fn channel<T>() -> (Sender<T>, Receiver<T>) {
    let shared = Arc::new(Shared {
        state: SpinLock::new(State { value: None, waker: None, tx_gone: false, rx_gone: false }),
    });
    (Sender { shared: Some(shared.clone()) }, Receiver { shared })
}

struct Shared<T> {
    state: SpinLock<State<T>>,
}

struct State<T> {
    value: Option<T>,
    waker: Option<Waker>,
    /// The sender sent or was dropped.
    tx_gone: bool,
    /// The receiver closed or was dropped.
    rx_gone: bool,
}

/// The sending half of a [`channel`].
pub struct Sender<T> {
    /// Taken by `send`, so `Drop` knows whether it sent.
    shared: Option<Arc<Shared<T>>>,
}

impl<T> Sender<T> {
    /// Sends the value; never waits.
    ///
    /// # Errors
    ///
    /// The value comes back if the receiver is gone or closed.
    pub fn send(mut self, value: T) -> Result<(), T> {
        let shared = self.shared.take().expect("sender holds the channel until it sends");
        let waker = {
            let mut state = shared.state.lock();
            if state.rx_gone {
                return Err(value);
            }
            state.value = Some(value);
            state.tx_gone = true;
            state.waker.take()
        };
        if let Some(waker) = waker {
            waker.wake();
        }
        Ok(())
    }

    /// Whether the receiver is gone or closed (a send would fail).
    pub fn is_closed(&self) -> bool {
        self.shared.as_ref().is_none_or(|shared| shared.state.lock().rx_gone)
    }
}

impl<T> Drop for Sender<T> {
    fn drop(&mut self) {
        let Some(shared) = self.shared.take() else { return };
        let waker = {
            let mut state = shared.state.lock();
            state.tx_gone = true;
            state.waker.take()
        };
        if let Some(waker) = waker {
            waker.wake();
        }
    }
}

impl<T> fmt::Debug for Sender<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sender").field("closed", &self.is_closed()).finish()
    }
}

/// The receiving half of a [`channel`]: a future of the value, which is
/// `Err(RecvError)` if the sender was dropped without sending.
pub struct Receiver<T> {
    shared: Arc<Shared<T>>,
}

impl<T> Receiver<T> {
    /// Takes the value if it was sent.
    ///
    /// # Errors
    ///
    /// [`TryRecvError::Empty`] if not sent yet, [`TryRecvError::Closed`] if
    /// the sender is gone without sending (or the value was taken).
    pub fn try_recv(&mut self) -> Result<T, TryRecvError> {
        let mut state = self.shared.state.lock();
        match state.value.take() {
            Some(value) => Ok(value),
            None if state.tx_gone => Err(TryRecvError::Closed),
            None => Err(TryRecvError::Empty),
        }
    }

    /// Blocking-style wait for the value: parks only the green thread inside
    /// the green runtime, blocks the OS thread elsewhere.
    ///
    /// # Errors
    ///
    /// [`RecvError`] if the sender was dropped without sending.
    pub fn recv_blocking(self) -> Result<T, RecvError> {
        crate::block_on(self)
    }

    /// Refuses the value: a later send fails and gives it back. A value
    /// already sent can still be taken with [`try_recv`](Receiver::try_recv).
    pub fn close(&mut self) {
        self.shared.state.lock().rx_gone = true;
    }
}

impl<T> Future for Receiver<T> {
    type Output = Result<T, RecvError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<T, RecvError>> {
        let mut state = self.shared.state.lock();
        match state.value.take() {
            Some(value) => Poll::Ready(Ok(value)),
            None if state.tx_gone => Poll::Ready(Err(RecvError(()))),
            None => {
                let displaced = register_slot(&mut state.waker, cx.waker());
                drop(state);
                drop(displaced);
                crate::dump::pending(crate::dump::Wait::Channel)
            }
        }
    }
}

impl<T> Drop for Receiver<T> {
    fn drop(&mut self) {
        // Taken out so it is dropped after the lock.
        let value = {
            let mut state = self.shared.state.lock();
            state.rx_gone = true;
            state.value.take()
        };
        drop(value);
    }
}

impl<T> fmt::Debug for Receiver<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.shared.state.lock();
        f.debug_struct("Receiver")
            .field("sent", &state.value.is_some())
            .field("sender_gone", &state.tx_gone)
            .finish()
    }
}
