//! The shared core of an mpsc channel: the locked state, the slot
//! accounting of bounded channels, and the handoff to a waiting receiver.
//!
//! # The handoff
//!
//! When the receiver waits, the queue is empty (it waits only after finding
//! it so), and the next message has nowhere to be but in the receiver's
//! hands. So a sender that finds the receiver waiting puts the message in
//! the one-message [`Handoff`] instead of the queue, and the receiver picks
//! it up on its next poll with an acquire load and a release store, without
//! taking the lock. This saves the receiver one lock per wait, a third of
//! the atomic read-modify-writes of a ping-pong.
//!
//! A handed-off message counts as delivered: it no longer takes capacity,
//! as with Go's direct send to a parked receiver. The receiver always looks
//! in the handoff before the queue, so order is kept: messages queued after
//! a handoff were sent after it.
//!
//! # Unsafe invariants (the handoff protocol)
//!
//! 1. A sender writes the handoff only with the channel lock held and
//!    `rx.waiting` set, then publishes it with a release store of `full` and
//!    clears `rx.waiting` (taking the receiver's waker) before unlocking. So
//!    at most one write happens per wait of the receiver.
//! 2. The receiver sets `rx.waiting` only with the lock held and `full`
//!    clear, and only the receiver reads or clears the handoff: after an
//!    acquire load of `full` that returned `true`, ending with a release
//!    store of `false`. The receiver is unique (`&mut Receiver`), so reads
//!    never overlap each other.
//! 3. Hence a write (under 1) and a read (under 2) never overlap: the write
//!    happens-after the previous read (read -> release `full` ... lock ->
//!    `waiting` set -> unlock -> lock by the writer), and the read
//!    happens-after the write (release/acquire on `full`).

use std::cell::UnsafeCell;
use std::collections::VecDeque;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, Waker};

use super::super::error::{TryRecvError, TrySendError};
use super::super::spin::SpinLock;
use super::super::waiters::{WaitList, WaiterKey, WakerSlot, Wakes};

/// The shared channel.
pub(super) struct Chan<T> {
    inner: SpinLock<Inner<T>>,
    /// Capacity; `usize::MAX` for unbounded.
    bound: usize,
    handoff: Handoff<T>,
}

pub(super) struct Inner<T> {
    queue: VecDeque<T>,
    /// Slots handed to senders (waiters served, or permits) not yet used.
    reserved: usize,
    send_waiters: WaitList<SendWaiter>,
    rx: WakerSlot,
    /// Live `Sender`s and `UnboundedSender`s.
    senders: usize,
    /// No new sends: the receiver closed the channel or is gone.
    rx_closed: bool,
    /// The receiver is gone: even reserved slots cannot be used.
    rx_dropped: bool,
}

/// A bounded sender queued for a slot.
#[derive(Debug)]
pub(super) struct SendWaiter {
    /// Set when woken by a close rather than handed a slot.
    closed: bool,
}

/// One message on its way to the waiting receiver (see the module docs).
struct Handoff<T> {
    full: AtomicBool,
    value: UnsafeCell<Option<T>>,
}

// SAFETY: the value is written by one sender and read by the receiver, never
// at the same time (module invariant 3), and moves between threads, which
// needs `T: Send`.
unsafe impl<T: Send> Sync for Handoff<T> {}

/// Where a bounded send is in its wait for a slot.
#[derive(Debug)]
pub(super) enum SlotPhase {
    Idle,
    Waiting(WaiterKey),
    Done,
}

impl<T> Chan<T> {
    pub(super) fn new(bound: usize) -> Arc<Chan<T>> {
        Arc::new(Chan {
            inner: SpinLock::new(Inner {
                queue: VecDeque::new(),
                reserved: 0,
                send_waiters: WaitList::new(),
                rx: WakerSlot::new(),
                senders: 1,
                rx_closed: false,
                rx_dropped: false,
            }),
            bound,
            handoff: Handoff { full: AtomicBool::new(false), value: UnsafeCell::new(None) },
        })
    }

    pub(super) fn bound(&self) -> usize {
        self.bound
    }

    /// Whether a new sender may take a slot now (lock held).
    fn has_room(&self, inner: &Inner<T>) -> bool {
        inner.send_waiters.is_empty() && inner.queue.len() + inner.reserved < self.bound
    }

    /// Hands a free slot to the first waiting sender (lock held); returns
    /// its waker.
    fn grant_next(&self, inner: &mut Inner<T>) -> Option<Waker> {
        if inner.send_waiters.is_empty()
            || inner.rx_closed
            || inner.queue.len() + inner.reserved >= self.bound
        {
            return None;
        }
        let waker = inner.send_waiters.pop_front(|_| {})?;
        inner.reserved += 1;
        waker
    }

    /// Delivers `value` (lock held): into the handoff if the receiver
    /// waits, else into the queue. `true` for the handoff, which takes no
    /// capacity; the receiver's waker then goes to `wakes`.
    fn deliver(&self, inner: &mut Inner<T>, value: T, wakes: &mut Wakes) -> bool {
        if !inner.rx.is_waiting() {
            inner.queue.push_back(value);
            return false;
        }
        // SAFETY: the lock is held and the receiver waits (invariant 1);
        // `wake` below clears `waiting` before the lock is released.
        unsafe { *self.handoff.value.get() = Some(value) };
        self.handoff.full.store(true, Ordering::Release);
        wakes.push(inner.rx.wake());
        true
    }

    /// Sends without waiting (both flavours' `try_send`).
    pub(super) fn try_send(&self, value: T) -> Result<(), TrySendError<T>> {
        let mut wakes = Wakes::new();
        {
            let mut inner = self.inner.lock();
            if inner.rx_closed {
                return Err(TrySendError::Closed(value));
            }
            if !self.has_room(&inner) {
                return Err(TrySendError::Full(value));
            }
            self.deliver(&mut inner, value, &mut wakes);
        }
        wakes.wake_all();
        Ok(())
    }

    /// Takes a slot now if there is room and no sender waits.
    pub(super) fn try_reserve(&self) -> Result<(), TrySendError<()>> {
        let mut inner = self.inner.lock();
        if inner.rx_closed {
            return Err(TrySendError::Closed(()));
        }
        if !self.has_room(&inner) {
            return Err(TrySendError::Full(()));
        }
        inner.reserved += 1;
        Ok(())
    }

    /// Waits for a slot (FIFO). Once one is held it is used at once: with
    /// `value`, the value is delivered (`Ok(Ok(()))`, or `Ok(Err(value))`
    /// if the receiver is gone); without, the slot stays reserved for a
    /// permit. `Err(())` if the channel closed first.
    pub(super) fn poll_slot(
        &self,
        phase: &mut SlotPhase,
        cx: &mut Context<'_>,
        value: Option<&mut Option<T>>,
    ) -> Poll<Result<Result<(), T>, ()>> {
        let mut inner = self.inner.lock();
        match *phase {
            SlotPhase::Idle => {
                if inner.rx_closed {
                    *phase = SlotPhase::Done;
                    return Poll::Ready(Err(()));
                }
                if !self.has_room(&inner) {
                    let key =
                        inner.send_waiters.push_back(SendWaiter { closed: false }, cx.waker());
                    *phase = SlotPhase::Waiting(key);
                    return crate::dump::pending(crate::dump::Wait::Channel);
                }
                inner.reserved += 1;
            }
            SlotPhase::Waiting(key) => {
                if inner.send_waiters.is_linked(key) {
                    let displaced = inner.send_waiters.register(key, cx.waker());
                    drop(inner);
                    drop(displaced);
                    return crate::dump::pending(crate::dump::Wait::Channel);
                }
                let (waiter, _, _) = inner.send_waiters.remove(key);
                if waiter.closed {
                    *phase = SlotPhase::Done;
                    return Poll::Ready(Err(()));
                }
            }
            SlotPhase::Done => panic!("mpsc send polled after completion"),
        }
        *phase = SlotPhase::Done;
        let Some(value) = value.and_then(Option::take) else { return Poll::Ready(Ok(Ok(()))) };
        let mut wakes = Wakes::new();
        let sent = self.send_reserved_locked(&mut inner, value, &mut wakes);
        drop(inner);
        wakes.wake_all();
        Poll::Ready(Ok(sent))
    }

    /// Fills a reserved slot with `value` (the permit's send).
    pub(super) fn send_reserved(&self, value: T) -> Result<(), T> {
        let mut wakes = Wakes::new();
        let sent = self.send_reserved_locked(&mut self.inner.lock(), value, &mut wakes);
        wakes.wake_all();
        sent
    }

    /// Fills a reserved slot (lock held); if the value went to the handoff
    /// the slot is free again and goes to the next waiting sender. The
    /// wakers to wake after the lock go to `wakes`.
    fn send_reserved_locked(
        &self,
        inner: &mut Inner<T>,
        value: T,
        wakes: &mut Wakes,
    ) -> Result<(), T> {
        inner.reserved -= 1;
        if inner.rx_dropped {
            return Err(value);
        }
        if self.deliver(inner, value, wakes) {
            wakes.push(self.grant_next(inner));
        }
        Ok(())
    }

    /// Gives back an unused reserved slot.
    pub(super) fn release_slot(&self) {
        let mut wakes = Wakes::new();
        self.release_slot_locked(&mut self.inner.lock(), &mut wakes);
        wakes.wake_all();
    }

    fn release_slot_locked(&self, inner: &mut Inner<T>, wakes: &mut Wakes) {
        inner.reserved -= 1;
        wakes.push(self.grant_next(inner));
        if inner.rx_closed {
            // The receiver may be waiting for the last reservation to end.
            wakes.push(inner.rx.wake());
        }
    }

    /// Called on drop of a slot wait: if pending, leave the queue, passing
    /// on a slot already handed over. Inlined: most sends never waited.
    #[inline]
    pub(super) fn cancel_slot(&self, phase: &mut SlotPhase) {
        if let SlotPhase::Waiting(key) = *phase {
            *phase = SlotPhase::Done;
            self.cancel_wait(key);
        }
    }

    /// Leaves the slot queue (see `cancel_slot`).
    #[inline(never)]
    fn cancel_wait(&self, key: WaiterKey) {
        let mut wakes = Wakes::new();
        let own_waker = {
            let mut inner = self.inner.lock();
            let (waiter, was_waiting, waker) = inner.send_waiters.remove(key);
            if !was_waiting && !waiter.closed {
                self.release_slot_locked(&mut inner, &mut wakes);
            }
            waker
        };
        drop(own_waker);
        wakes.wake_all();
    }

    /// Receives: a message, `Err(Closed)` when none will ever come, or
    /// `Err(Empty)` — after registering `cx`'s waker, if given.
    ///
    /// # Safety
    ///
    /// Only the channel's receiver may call this (and [`Chan::take_handoff`]),
    /// never twice at once: it reads the handoff (module invariant 2).
    pub(super) unsafe fn recv(&self, cx: Option<&mut Context<'_>>) -> Result<T, TryRecvError> {
        // SAFETY: forwarded from the caller.
        if let Some(value) = unsafe { self.take_handoff() } {
            return Ok(value);
        }
        let mut inner = self.inner.lock();
        // Re-checked under the lock: a sender may have handed off meanwhile,
        // to a waiter registered earlier.
        // SAFETY: forwarded from the caller.
        if let Some(value) = unsafe { self.take_handoff() } {
            return Ok(value);
        }
        if let Some(value) = inner.queue.pop_front() {
            let waker = self.grant_next(&mut inner);
            drop(inner);
            if let Some(waker) = waker {
                waker.wake();
            }
            return Ok(value);
        }
        if inner.senders == 0 || (inner.rx_closed && inner.reserved == 0) {
            return Err(TryRecvError::Closed);
        }
        if let Some(cx) = cx {
            // Queue and handoff are empty, as invariant 2 requires.
            let displaced = inner.rx.register(cx.waker());
            drop(inner);
            drop(displaced);
        }
        Err(TryRecvError::Empty)
    }

    /// Takes the handed-off message, if any.
    ///
    /// # Safety
    ///
    /// As for [`Chan::recv`]: receiver only, never concurrently.
    pub(super) unsafe fn take_handoff(&self) -> Option<T> {
        if !self.handoff.full.load(Ordering::Acquire) {
            return None;
        }
        // SAFETY: `full` was set by a sender's release store after its write
        // and only this (unique) receiver clears it, so the write is complete
        // and no sender writes again before `full` is cleared and the
        // receiver waits again (module invariants 1-3).
        let value = unsafe { (*self.handoff.value.get()).take() };
        self.handoff.full.store(false, Ordering::Release);
        value
    }

    /// Withdraws the receiver's registration (its wait was dropped), so the
    /// next message goes to the queue and counts against capacity.
    pub(super) fn unregister_rx(&self) {
        self.inner.lock().rx.unregister();
    }

    /// Closes for senders; `dropped` when the receiver is gone. Returns the
    /// queued messages when they should be dropped (outside the lock).
    pub(super) fn close(&self, dropped: bool) -> VecDeque<T> {
        let mut wakes = Wakes::new();
        let queue = {
            let mut inner = self.inner.lock();
            inner.rx_closed = true;
            inner.rx_dropped |= dropped;
            inner.send_waiters.drain(|w| w.closed = true, &mut wakes);
            if dropped { std::mem::take(&mut inner.queue) } else { VecDeque::new() }
        };
        wakes.wake_all();
        queue
    }

    pub(super) fn is_closed(&self) -> bool {
        self.inner.lock().rx_closed
    }

    /// Messages waiting for the receiver (queued or handed off).
    pub(super) fn len(&self) -> usize {
        let queued = self.inner.lock().queue.len();
        queued + usize::from(self.handoff.full.load(Ordering::Acquire))
    }

    /// Free slots (bounded channels).
    pub(super) fn capacity(&self) -> usize {
        let inner = self.inner.lock();
        self.bound - inner.queue.len() - inner.reserved
    }

    pub(super) fn add_sender(&self) {
        self.inner.lock().senders += 1;
    }

    pub(super) fn drop_sender(&self) {
        let rx_waker = {
            let mut inner = self.inner.lock();
            inner.senders -= 1;
            if inner.senders == 0 { inner.rx.wake() } else { None }
        };
        if let Some(waker) = rx_waker {
            waker.wake();
        }
    }
}

impl<T> fmt::Debug for Chan<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let handed_off = self.handoff.full.load(Ordering::Acquire);
        let inner = self.inner.lock();
        let mut d = f.debug_struct("Chan");
        if self.bound != usize::MAX {
            d.field("capacity", &self.bound);
        }
        d.field("queued", &inner.queue.len())
            .field("handed_off", &handed_off)
            .field("reserved", &inner.reserved)
            .field("waiting_senders", &inner.send_waiters.len())
            .field("senders", &inner.senders)
            .field("closed", &inner.rx_closed)
            .finish()
    }
}
