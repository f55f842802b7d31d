//! Synchronization primitives that work from green threads, stackless tasks
//! and plain OS threads alike: [`mpsc`] and [`oneshot`] channels, [`Mutex`],
//! [`Semaphore`], [`Notify`], [`WaitGroup`] and [`select`].
//!
//! # One mechanism for three contexts
//!
//! Every wait is a future that registers a [`Waker`](std::task::Waker) and
//! returns `Pending`; every wake-up calls that waker. Who is behind the
//! waker does not matter to the primitive:
//!
//! ```text
//!   context            waits with                   woken by waker ->
//!   stackless task     op().await                   task back on its run queue
//!   green thread       op_blocking() = block_on     green thread unparked
//!   plain OS thread    op_blocking() = block_on     thread's reactor notified
//! ```
//!
//! So each operation has an async form (`recv().await`, `lock().await`) and a
//! blocking form (`recv_blocking()`, `lock_blocking()`) that is exactly
//! [`block_on`](crate::block_on) of the async one: it parks only the calling
//! green thread inside the green runtime and blocks the OS thread elsewhere.
//! (Inside a stackless task, use the async form: a blocking call there
//! blocks the executor's thread, as every blocking call does.) Wakers are
//! `Send + Sync`, so a green sender on one OS thread and a stackless
//! receiver on another work together.
//!
//! # The waiter queue
//!
//! All primitives queue their waiters in the same building block, a FIFO
//! held under the primitive's short spin lock (`waiters.rs`, `spin.rs`): a
//! pending future keeps a key to its node, re-registers its waker on each
//! poll (skipping the clone when it wakes the same task), and whoever
//! serves it unlinks the node, records what it handed over (a permit, a
//! slot, a notification) and wakes it after dropping the lock. The
//! [`Semaphore`] is the core: a [`Mutex`] is a semaphore of one permit with
//! FIFO handoff, and a bounded [`mpsc`] channel is a queue plus a
//! semaphore-like count of slots.
//!
//! The locks are spin locks rather than `std::sync::Mutex` because their
//! sections are a few instructions and never suspend, and a spin lock
//! unlocks with a plain store: one atomic read-modify-write per section
//! instead of two (see `spin.rs`; it falls back to yielding the OS thread
//! under contention).
//!
//! # Select
//!
//! [`select`] is a combinator, not a macro: a future over a slice of
//! receivers of one message type, with `(index, message)` as output; it
//! composes with `.await`, [`select_blocking`] and timeouts (see
//! [`select`] for why this choice).
//!
//! # Guarantees
//!
//! * **FIFO**: waiters are served in arrival order; a releaser hands what
//!   it releases straight to the first waiter, so latecomers cannot barge.
//! * **No lost wake-ups**: the check and the registration happen under one
//!   lock (or, on the semaphore's atomic fast path, one compare-exchange
//!   that the releaser observes).
//! * **Cancel safety**: dropping a pending `recv`, `lock`, `acquire`,
//!   `reserve` or `notified` future gives its place, and anything already
//!   handed to it (a permit, the lock, a slot, a notification), to the next
//!   waiter. Dropping a pending `send` drops its value (it was never sent);
//!   use [`Sender::reserve`](mpsc::Sender::reserve) to wait for room
//!   without risking it.
//! * **Closing**: a send on a closed channel returns the value in the error;
//!   a receive on a closed, drained channel returns `None`.
//! * **Fast paths**: an uncontended lock/unlock or acquire/release is one
//!   compare-exchange each; a send or receive with room takes one lock; none
//!   allocates.
//!
//! # Timeouts
//!
//! Every wait composes with [`time::timeout`](crate::time::timeout) (and
//! [`time::block_on_timeout`](crate::time::block_on_timeout) for the
//! blocking style); on timeout the inner future is dropped, which is safe by
//! the rule above.

mod error;
mod mutex;
mod notify;
mod select;
mod semaphore;
mod spin;
mod wait_group;
mod waiters;

pub mod mpsc;
pub mod oneshot;

pub use error::{
    AcquireError, RecvError, SendError, TryAcquireError, TryLockError, TryRecvError, TrySendError,
};
pub use mutex::{Lock, LockOwned, Mutex, MutexGuard, OwnedMutexGuard};
pub use notify::{Notified, Notify};
pub use select::{Select, select, select_blocking};
pub use semaphore::{Acquire, AcquireOwned, OwnedSemaphorePermit, Semaphore, SemaphorePermit};
pub use wait_group::{Wait, WaitGroup};

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send_sync<T: Send + Sync>() {}
    fn assert_send<T: Send>() {}

    #[test]
    fn handles_are_send_and_sync() {
        assert_send_sync::<Semaphore>();
        assert_send_sync::<Mutex<u32>>();
        assert_send_sync::<MutexGuard<'static, u32>>();
        assert_send_sync::<OwnedMutexGuard<u32>>();
        assert_send_sync::<Notify>();
        assert_send_sync::<WaitGroup>();
        assert_send_sync::<mpsc::Sender<u32>>();
        assert_send_sync::<mpsc::UnboundedSender<u32>>();
        assert_send_sync::<mpsc::Receiver<u32>>();
        assert_send_sync::<oneshot::Sender<u32>>();
        assert_send_sync::<oneshot::Receiver<u32>>();
        assert_send::<Acquire<'static>>();
        assert_send::<mpsc::Sending<'static, u32>>();
        assert_send::<Notified<'static>>();
        assert_send::<mpsc::Recv<'static, u32>>();
        assert_send::<mpsc::Permit<'static, u32>>();
        assert_send::<Select<'static, u32>>();
        assert_send::<Wait<'static>>();
        assert_send::<Lock<'static, u32>>();
        // A Cell may move with its lock, but a shared guard must not lend it.
        assert_send::<MutexGuard<'static, std::cell::Cell<u32>>>();
    }
}
