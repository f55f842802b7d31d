//! Multi-producer, single-consumer channels, bounded ([`channel`]) and
//! unbounded ([`unbounded_channel`]), sharing one [`Receiver`] type.
//!
//! # Mechanism
//!
//! One short spin lock (see `spin.rs`) guards the channel state
//! (`chan.rs`):
//!
//! ```text
//!   queue: VecDeque<T>        the messages
//!   reserved                  slots handed to senders that have not sent yet
//!   send_waiters: WaitList    bounded senders waiting for a slot, FIFO
//!   rx: WakerSlot             the receiver's waker, and whether it waits
//! ```
//!
//! plus, outside the lock, a one-message *handoff* to the receiver.
//!
//! * A send takes the lock once. If the receiver waits, the queue is empty
//!   and the message goes straight into the handoff; the sender takes the
//!   receiver's waker under the lock and wakes it after unlocking (a waker
//!   is foreign code: see `spin.rs`), so each wait clones the waker once.
//! * A receive looks in the handoff first (an acquire load, no lock), then
//!   takes the lock once to pop the queue or, if it is empty, to register
//!   as waiting. A ping-pong thus costs one lock per send and one per wait,
//!   and nothing allocates once the queue has grown to its working size.
//! * A bounded channel counts `queue.len() + reserved` against its
//!   capacity, like a semaphore of slots (a handed-off message counts as
//!   delivered, as Go's direct send to a parked receiver does). A sender
//!   that finds no room (or finds others already waiting: FIFO) queues in
//!   `send_waiters`; each receive that frees a slot hands it to the first
//!   waiting sender (`reserved += 1`) and wakes it, and that sender then
//!   delivers its value. So senders are served in arrival order and nobody
//!   barges into a slot freed for another.
//!
//! # Cancel safety
//!
//! * Dropping a pending [`Sending`] drops its value (it was never sent) and
//!   leaves the queue; if a slot had already been handed to it, the slot goes
//!   to the next waiting sender. Use [`Sender::reserve`] to wait for a slot
//!   without risking a value.
//! * Dropping a pending [`Recv`] loses nothing: messages stay in the queue
//!   (or the handoff) for the next receive.
//!
//! # Closing
//!
//! The channel closes when every sender is dropped (the receiver drains what
//! is queued, then gets `None`) or when the receiver calls
//! [`close`](Receiver::close) or is dropped (sends fail with the value in
//! the error; waiting senders are woken with it).

mod chan;
mod stream;

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

pub use super::error::{SendError, TryRecvError, TrySendError};
use chan::{Chan, SlotPhase};

/// A bounded channel holding at most `capacity` messages. Senders wait
/// (FIFO) while it is full.
///
/// # Panics
///
/// If `capacity` is zero.
///
/// # Examples
///
/// A green sender and a stackless receiver, on two OS threads:
///
/// ```
/// use greenloop_runtime::{green, sync::mpsc, task};
///
/// let (tx, mut rx) = mpsc::channel(4);
/// let producer = std::thread::spawn(move || {
///     green::run(|| {
///         for i in 0..10u32 {
///             tx.send_blocking(i).unwrap();
///         }
///     })
/// });
/// let sum = task::Runtime::new().unwrap().block_on(async move {
///     let mut sum = 0;
///     while let Some(i) = rx.recv().await {
///         sum += i;
///     }
///     sum
/// });
/// producer.join().unwrap();
/// assert_eq!(sum, 45);
/// ```
pub fn channel<T>(capacity: usize) -> (Sender<T>, Receiver<T>) {
    assert!(capacity > 0, "mpsc::channel: capacity must be positive");
    let chan = Chan::new(capacity);
    (Sender { chan: chan.clone() }, Receiver { chan })
}

/// An unbounded channel: sends never wait (and are plain functions), the
/// queue grows as needed.
///
/// ```
/// use greenloop_runtime::sync::mpsc;
///
/// let (tx, mut rx) = mpsc::unbounded_channel();
/// tx.send("hello").unwrap();
/// drop(tx);
/// assert_eq!(rx.recv_blocking(), Some("hello"));
/// assert_eq!(rx.recv_blocking(), None);
/// ```
pub fn unbounded_channel<T>() -> (UnboundedSender<T>, Receiver<T>) {
    let chan = Chan::new(usize::MAX);
    (UnboundedSender { chan: chan.clone() }, Receiver { chan })
}

/// The sending half of a bounded [`channel`]. Clone it for more producers.
pub struct Sender<T> {
    chan: Arc<Chan<T>>,
}

impl<T> Sender<T> {
    /// Sends `value`, waiting (FIFO) while the channel is full. The future's
    /// output is `Err(SendError(value))` if the receiver closed or dropped.
    /// Dropping the future drops the value (see the module docs).
    pub fn send(&self, value: T) -> Sending<'_, T> {
        Sending { chan: &self.chan, value: Some(value), phase: SlotPhase::Idle }
    }

    /// Blocking-style [`send`](Sender::send): parks only the green thread
    /// inside the green runtime, blocks the OS thread elsewhere.
    ///
    /// # Errors
    ///
    /// [`SendError`] with the value if the receiver closed or dropped.
    pub fn send_blocking(&self, value: T) -> Result<(), SendError<T>> {
        crate::block_on(self.send(value))
    }

    /// Sends if there is room now and no sender waits.
    ///
    /// # Errors
    ///
    /// [`TrySendError::Full`] or [`TrySendError::Closed`], with the value.
    pub fn try_send(&self, value: T) -> Result<(), TrySendError<T>> {
        self.chan.try_send(value)
    }

    /// Waits for a slot and holds it in a [`Permit`], without committing a
    /// value: cancel-safe (dropping the future or the permit frees the slot
    /// for the next sender).
    pub fn reserve(&self) -> Reserve<'_, T> {
        Reserve { chan: &self.chan, phase: SlotPhase::Idle }
    }

    /// Blocking-style [`reserve`](Sender::reserve).
    ///
    /// # Errors
    ///
    /// [`SendError`] if the receiver closed or dropped.
    pub fn reserve_blocking(&self) -> Result<Permit<'_, T>, SendError<()>> {
        crate::block_on(self.reserve())
    }

    /// Takes a slot if there is room now and no sender waits.
    ///
    /// # Errors
    ///
    /// [`TrySendError::Full`] or [`TrySendError::Closed`].
    pub fn try_reserve(&self) -> Result<Permit<'_, T>, TrySendError<()>> {
        self.chan.try_reserve()?;
        Ok(Permit { chan: &self.chan })
    }

    /// Whether the receiver closed the channel or is gone.
    pub fn is_closed(&self) -> bool {
        self.chan.is_closed()
    }

    /// Free slots right now (a snapshot).
    pub fn capacity(&self) -> usize {
        self.chan.capacity()
    }

    /// The channel's capacity.
    pub fn max_capacity(&self) -> usize {
        self.chan.bound()
    }

    /// Whether both senders feed the same channel.
    pub fn same_channel(&self, other: &Sender<T>) -> bool {
        Arc::ptr_eq(&self.chan, &other.chan)
    }
}

impl<T> Clone for Sender<T> {
    fn clone(&self) -> Self {
        self.chan.add_sender();
        Sender { chan: self.chan.clone() }
    }
}

impl<T> Drop for Sender<T> {
    fn drop(&mut self) {
        self.chan.drop_sender();
    }
}

impl<T> fmt::Debug for Sender<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sender").field("chan", &*self.chan).finish()
    }
}

/// The sending half of an [`unbounded_channel`]. Clone it for more
/// producers. Its `send` never waits, so it has no async or blocking form.
pub struct UnboundedSender<T> {
    chan: Arc<Chan<T>>,
}

impl<T> UnboundedSender<T> {
    /// Queues `value` for the receiver.
    ///
    /// # Errors
    ///
    /// [`SendError`] with the value if the receiver closed or dropped.
    pub fn send(&self, value: T) -> Result<(), SendError<T>> {
        self.chan.try_send(value).map_err(|e| SendError(e.into_inner()))
    }

    /// Whether the receiver closed the channel or is gone.
    pub fn is_closed(&self) -> bool {
        self.chan.is_closed()
    }

    /// Whether both senders feed the same channel.
    pub fn same_channel(&self, other: &UnboundedSender<T>) -> bool {
        Arc::ptr_eq(&self.chan, &other.chan)
    }
}

impl<T> Clone for UnboundedSender<T> {
    fn clone(&self) -> Self {
        self.chan.add_sender();
        UnboundedSender { chan: self.chan.clone() }
    }
}

impl<T> Drop for UnboundedSender<T> {
    fn drop(&mut self) {
        self.chan.drop_sender();
    }
}

impl<T> fmt::Debug for UnboundedSender<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UnboundedSender").field("chan", &*self.chan).finish()
    }
}

/// The receiving half of a [`channel`] or an [`unbounded_channel`].
pub struct Receiver<T> {
    chan: Arc<Chan<T>>,
}

impl<T> Receiver<T> {
    /// Receives the next message; `None` once the channel is closed and
    /// drained. Cancel-safe: dropping the future loses no message.
    pub fn recv(&mut self) -> Recv<'_, T> {
        Recv { rx: self, waiting: false }
    }

    /// Blocking-style [`recv`](Receiver::recv): parks only the green thread
    /// inside the green runtime, blocks the OS thread elsewhere.
    pub fn recv_blocking(&mut self) -> Option<T> {
        crate::block_on(self.recv())
    }

    /// Receives a message if one is queued.
    ///
    /// # Errors
    ///
    /// [`TryRecvError::Empty`] if none is queued yet,
    /// [`TryRecvError::Closed`] if none will ever come.
    pub fn try_recv(&mut self) -> Result<T, TryRecvError> {
        // SAFETY: `self` is the channel's only receiver, borrowed mutably.
        unsafe { self.chan.recv(None) }
    }

    /// The poll behind [`recv`](Receiver::recv): a message, `None` when
    /// closed and drained, or `Pending` with `cx`'s waker registered (it
    /// replaces the previously registered one).
    pub fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Option<T>> {
        // SAFETY: `self` is the channel's only receiver, borrowed mutably.
        match unsafe { self.chan.recv(Some(cx)) } {
            Ok(value) => Poll::Ready(Some(value)),
            Err(TryRecvError::Closed) => Poll::Ready(None),
            Err(TryRecvError::Empty) => {
                crate::dump::note(crate::dump::Wait::Channel);
                Poll::Pending
            }
        }
    }

    /// Withdraws a registration left by a `Pending`
    /// [`poll_recv`](Receiver::poll_recv) whose wait was abandoned: without
    /// it, the next message would be handed to this receiver as if it still
    /// waited (not lost, but not counted against capacity either).
    pub(crate) fn unregister(&mut self) {
        self.chan.unregister_rx();
    }

    /// Closes the channel for senders: sends fail from now on and waiting
    /// senders are woken with their value; queued messages (and those of
    /// senders already handed a slot) can still be received.
    pub fn close(&mut self) {
        self.chan.close(false);
    }

    /// Number of messages waiting to be received (a snapshot).
    pub fn len(&self) -> usize {
        self.chan.len()
    }

    /// Whether no message is queued (a snapshot).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl<T> Drop for Receiver<T> {
    fn drop(&mut self) {
        // Dropped here, outside the lock: a message's destructor may use
        // the channel.
        let queued = self.chan.close(true);
        // SAFETY: `self` is the channel's only receiver, being dropped.
        let handed_off = unsafe { self.chan.take_handoff() };
        drop((queued, handed_off));
    }
}

impl<T> fmt::Debug for Receiver<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Receiver").field("chan", &*self.chan).finish()
    }
}

/// The future of [`Sender::send`]; see there for cancellation.
#[must_use = "futures do nothing unless polled"]
pub struct Sending<'a, T> {
    chan: &'a Chan<T>,
    value: Option<T>,
    phase: SlotPhase,
}

// `Sending` is `Unpin`: it is never self-referential.
impl<T> Unpin for Sending<'_, T> {}

impl<T> Future for Sending<'_, T> {
    type Output = Result<(), SendError<T>>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        match this.chan.poll_slot(&mut this.phase, cx, Some(&mut this.value)) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Ok(Ok(()))) => Poll::Ready(Ok(())),
            Poll::Ready(Ok(Err(value))) => Poll::Ready(Err(SendError(value))),
            Poll::Ready(Err(())) => {
                Poll::Ready(Err(SendError(this.value.take().expect("value present until sent"))))
            }
        }
    }
}

impl<T> Drop for Sending<'_, T> {
    fn drop(&mut self) {
        self.chan.cancel_slot(&mut self.phase);
    }
}

impl<T> fmt::Debug for Sending<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sending").field("phase", &self.phase).finish_non_exhaustive()
    }
}

/// The future of [`Sender::reserve`].
#[must_use = "futures do nothing unless polled"]
pub struct Reserve<'a, T> {
    chan: &'a Chan<T>,
    phase: SlotPhase,
}

impl<'a, T> Future for Reserve<'a, T> {
    type Output = Result<Permit<'a, T>, SendError<()>>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let chan = this.chan;
        match chan.poll_slot(&mut this.phase, cx, None) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Ok(_)) => Poll::Ready(Ok(Permit { chan })),
            Poll::Ready(Err(())) => Poll::Ready(Err(SendError(()))),
        }
    }
}

impl<T> Drop for Reserve<'_, T> {
    fn drop(&mut self) {
        self.chan.cancel_slot(&mut self.phase);
    }
}

impl<T> fmt::Debug for Reserve<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Reserve").field("phase", &self.phase).finish_non_exhaustive()
    }
}

/// A slot held in a bounded channel: [`send`](Permit::send) fills it
/// without waiting; dropping the permit frees it for the next sender.
#[must_use = "dropping the permit frees the slot at once"]
pub struct Permit<'a, T> {
    chan: &'a Chan<T>,
}

impl<T> Permit<'_, T> {
    /// Sends `value` into the held slot.
    ///
    /// # Errors
    ///
    /// [`SendError`] with the value if the receiver is gone. (If it only
    /// [`close`](Receiver::close)d the channel, the value is still
    /// delivered: the slot was taken before the close.)
    pub fn send(self, value: T) -> Result<(), SendError<T>> {
        let sent = self.chan.send_reserved(value);
        std::mem::forget(self);
        sent.map_err(SendError)
    }
}

impl<T> Drop for Permit<'_, T> {
    fn drop(&mut self) {
        self.chan.release_slot();
    }
}

impl<T> fmt::Debug for Permit<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Permit").finish_non_exhaustive()
    }
}

/// The future of [`Receiver::recv`].
#[must_use = "futures do nothing unless polled"]
pub struct Recv<'a, T> {
    rx: &'a mut Receiver<T>,
    /// The last poll registered the receiver as waiting.
    waiting: bool,
}

impl<T> Future for Recv<'_, T> {
    type Output = Option<T>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<T>> {
        let this = self.get_mut();
        let poll = this.rx.poll_recv(cx);
        this.waiting = poll.is_pending();
        poll
    }
}

impl<T> Drop for Recv<'_, T> {
    fn drop(&mut self) {
        if self.waiting {
            self.rx.unregister();
        }
    }
}

impl<T> fmt::Debug for Recv<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Recv").finish_non_exhaustive()
    }
}
