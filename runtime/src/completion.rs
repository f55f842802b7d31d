//! A one-value, one-waiter completion slot: the result of a green thread
//! or a blocking job, filled once by the producer and taken once by the
//! consumer, who may wait for it from any thread.
//!
//! Lock-free, two atomic operations per side in the common case:
//!
//! ```text
//!  state bits: DONE (value written)  WAKER (consumer's waker written)
//!
//!  producer: write value; s = fetch_or(DONE); if s has WAKER: wake it by ref
//!  consumer: DONE?  -> take value
//!            else   -> write waker (only while WAKER is clear);
//!                      CAS set WAKER (fails only if DONE arrived: take value)
//! ```
//!
//! # Unsafe invariants
//!
//! * `value` is written only by the producer, before it sets `DONE`
//!   (`Release`), and read only by the consumer after seeing `DONE`
//!   (`Acquire`). There is one producer ([`Completion::complete`] is called
//!   once) and one consumer (the owner of the handle, which polls through
//!   `&mut`; `try_take`/`poll_take` are never called concurrently).
//! * `waker` is written only by the consumer, and only while `WAKER` is
//!   clear (clearing it by CAS is how the consumer takes the slot back; the
//!   CAS fails once `DONE` is set). The producer only reads it, by
//!   reference, after setting `DONE` while `WAKER` was set. So concurrent
//!   accesses are reads (the consumer's `will_wake` and the producer's
//!   `wake_by_ref`); the waker is dropped with the `Completion`.

use std::cell::UnsafeCell;
use std::fmt;
use std::sync::atomic::{AtomicU8, Ordering};
use std::task::{Context, Poll, Waker};

const DONE: u8 = 1;
const WAKER: u8 = 2;

/// See the module docs.
pub(crate) struct Completion<T> {
    state: AtomicU8,
    value: UnsafeCell<Option<T>>,
    waker: UnsafeCell<Option<Waker>>,
}

// SAFETY: the value crosses threads once (producer to consumer), so
// `T: Send` suffices; all shared access follows the module's protocol.
unsafe impl<T: Send> Send for Completion<T> {}
// SAFETY: as above; `&Completion` only allows the protocol's accesses.
unsafe impl<T: Send> Sync for Completion<T> {}

impl<T> Completion<T> {
    pub(crate) const fn new() -> Completion<T> {
        Completion {
            state: AtomicU8::new(0),
            value: UnsafeCell::new(None),
            waker: UnsafeCell::new(None),
        }
    }

    /// Stores the value and wakes the waiter. Call once.
    pub(crate) fn complete(&self, value: T) {
        // SAFETY: only the producer writes `value`, before DONE (invariant 1).
        unsafe { *self.value.get() = Some(value) };
        let state = self.state.fetch_or(DONE, Ordering::AcqRel);
        debug_assert!(state & DONE == 0, "Completion completed twice");
        if state & WAKER != 0 {
            // SAFETY: DONE is set with WAKER set: the consumer no longer
            // writes the slot, and we only read it (invariant 2).
            if let Some(waker) = unsafe { (*self.waker.get()).as_ref() } {
                waker.wake_by_ref();
            }
        }
    }

    /// Whether the value was stored (taken or not).
    pub(crate) fn is_done(&self) -> bool {
        self.state.load(Ordering::Acquire) & DONE != 0
    }

    /// Takes the value if stored and not taken yet, without waiting.
    /// Consumer side (see the module's invariants).
    pub(crate) fn try_take(&self) -> Option<T> {
        if self.is_done() {
            // SAFETY: DONE seen with Acquire; we are the only consumer.
            unsafe { (*self.value.get()).take() }
        } else {
            None
        }
    }

    /// The value if stored, else registers `cx`'s waker. Consumer side.
    ///
    /// # Panics
    ///
    /// If the value was already taken (a future polled after completion).
    pub(crate) fn poll_take(&self, cx: &mut Context<'_>) -> Poll<T> {
        let mut state = self.state.load(Ordering::Acquire);
        if state & WAKER != 0 && state & DONE == 0 {
            // SAFETY: only the consumer (us) writes the slot; the producer
            // may read it concurrently, which is fine (invariant 2).
            let same =
                unsafe { (*self.waker.get()).as_ref() }.is_some_and(|w| w.will_wake(cx.waker()));
            if same {
                return Poll::Pending;
            }
            // Take the slot back to replace the waker.
            match self.state.compare_exchange(
                state,
                state & !WAKER,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => state &= !WAKER,
                Err(actual) => state = actual, // DONE arrived
            }
        }
        if state & DONE == 0 {
            // SAFETY: WAKER is clear, so the producer will not read the slot.
            unsafe { *self.waker.get() = Some(cx.waker().clone()) };
            match self.state.compare_exchange(
                state,
                state | WAKER,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => return Poll::Pending,
                Err(actual) => debug_assert!(actual & DONE != 0),
            }
        }
        // SAFETY: DONE observed with Acquire; we are the only consumer.
        match unsafe { (*self.value.get()).take() } {
            Some(value) => Poll::Ready(value),
            None => panic!("handle polled after it returned its result"),
        }
    }
}

impl<T> fmt::Debug for Completion<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Completion").field("done", &self.is_done()).finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::Completion;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::task::{Context, Poll, Wake, Waker};

    #[derive(Default)]
    struct Count(AtomicUsize);

    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[test]
    fn value_before_and_after_the_waiter() {
        let done = Completion::new();
        done.complete(1);
        let waker = Waker::noop();
        assert_eq!(done.poll_take(&mut Context::from_waker(waker)), Poll::Ready(1));

        let pending = Completion::new();
        let count = Arc::new(Count::default());
        let waker = Waker::from(count.clone());
        assert!(pending.poll_take(&mut Context::from_waker(&waker)).is_pending());
        assert!(pending.poll_take(&mut Context::from_waker(&waker)).is_pending());
        pending.complete(2);
        assert_eq!(count.0.load(Ordering::SeqCst), 1);
        assert_eq!(pending.try_take(), Some(2));
    }

    /// A producer on another thread races a consumer that keeps replacing
    /// its waker: the value arrives once and a wake is never lost. Under
    /// miri this also checks the slot protocol for data races.
    #[test]
    fn producer_races_a_consumer_changing_wakers() {
        for round in 0..if cfg!(miri) { 4 } else { 200 } {
            let slot = Arc::new(Completion::new());
            let mut producer = Some({
                let slot = slot.clone();
                std::thread::spawn(move || slot.complete(round))
            });
            let counts: Vec<Arc<Count>> = (0..3).map(|_| Arc::default()).collect();
            let mut got = None;
            for i in 0.. {
                let waker = Waker::from(counts[i % 3].clone());
                if let Poll::Ready(v) = slot.poll_take(&mut Context::from_waker(&waker)) {
                    got = Some(v);
                    break;
                }
                if i > 10_000 {
                    if let Some(p) = producer.take() {
                        p.join().unwrap();
                    }
                    // The producer finished: the value must be there now.
                    let waker = Waker::noop();
                    if let Poll::Ready(v) = slot.poll_take(&mut Context::from_waker(waker)) {
                        got = Some(v);
                    }
                    break;
                }
            }
            if let Some(p) = producer {
                p.join().unwrap();
            }
            assert_eq!(got, Some(round));
        }
    }
}
