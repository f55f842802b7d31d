//! `sync` primitives under foreign wakers: wakers whose `wake` uses the
//! primitive that woke them, and channels driven by other executors
//! (`futures::executor`, tokio). A primitive that woke a waker under its own
//! lock would spin forever in the first tests, so each runs under a
//! watchdog.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex as StdMutex};
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;

use greenloop_runtime::sync::{Mutex, Notify, mpsc};

#[path = "watchdog/mod.rs"]
mod watchdog;
use watchdog::watchdog;

const LIMIT: Duration = Duration::from_secs(60);
const MESSAGES: u64 = 100_000;

/// A waker that runs `on_wake` (once per wake) and counts its wakes.
struct Reentrant<F> {
    on_wake: F,
    wakes: AtomicUsize,
}

impl<F: Fn() + Send + Sync + 'static> Reentrant<F> {
    fn new(on_wake: F) -> Arc<Self> {
        Arc::new(Reentrant { on_wake, wakes: AtomicUsize::new(0) })
    }

    fn wakes(&self) -> usize {
        self.wakes.load(Ordering::SeqCst)
    }
}

impl<F: Fn() + Send + Sync + 'static> Wake for Reentrant<F> {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.wakes.fetch_add(1, Ordering::SeqCst);
        (self.on_wake)();
    }
}

/// Polls `future` once with `waker`.
fn poll_with<F: Future + ?Sized>(future: Pin<&mut F>, waker: &Waker) -> Poll<F::Output> {
    future.poll(&mut Context::from_waker(waker))
}

#[test]
fn receiver_waker_that_sends_on_its_channel_completes() {
    watchdog(LIMIT, || {
        let (tx, mut rx) = mpsc::channel::<u32>(4);
        let tx_in_waker = tx.clone();
        let sent_in_wake = Arc::new(StdMutex::new(None));
        let record = sent_in_wake.clone();
        let waker = Reentrant::new(move || {
            *record.lock().unwrap() = Some(tx_in_waker.try_send(2).is_ok());
        });
        let waker_handle = Waker::from(waker.clone());
        let mut recv = Box::pin(rx.recv());
        assert!(poll_with(recv.as_mut(), &waker_handle).is_pending());
        tx.try_send(1).unwrap();
        assert_eq!(waker.wakes(), 1);
        assert_eq!(*sent_in_wake.lock().unwrap(), Some(true), "try_send inside wake");
        assert_eq!(poll_with(recv.as_mut(), &waker_handle), Poll::Ready(Some(1)));
        drop(recv);
        assert_eq!(rx.try_recv(), Ok(2));
    });
}

#[test]
fn sender_waker_that_sends_on_its_channel_completes() {
    watchdog(LIMIT, || {
        let (tx, mut rx) = mpsc::channel::<u32>(1);
        tx.try_send(0).unwrap();
        let tx_in_waker = tx.clone();
        let full_in_wake = Arc::new(StdMutex::new(None));
        let record = full_in_wake.clone();
        let waker = Reentrant::new(move || {
            *record.lock().unwrap() = Some(tx_in_waker.try_send(9).unwrap_err().is_full());
        });
        let waker_handle = Waker::from(waker.clone());
        let mut send = Box::pin(tx.send(1));
        assert!(poll_with(send.as_mut(), &waker_handle).is_pending());
        assert_eq!(rx.try_recv(), Ok(0)); // frees the slot, handed to `send`
        assert_eq!(waker.wakes(), 1);
        assert_eq!(*full_in_wake.lock().unwrap(), Some(true), "the slot is the waiter's");
        assert!(matches!(poll_with(send.as_mut(), &waker_handle), Poll::Ready(Ok(()))));
        assert_eq!(rx.try_recv(), Ok(1));
    });
}

#[test]
fn mutex_waiter_waker_that_tries_the_lock_completes() {
    watchdog(LIMIT, || {
        let mutex = Arc::new(Mutex::new(0u32));
        let in_waker = mutex.clone();
        let locked_in_wake = Arc::new(StdMutex::new(None));
        let record = locked_in_wake.clone();
        let waker = Reentrant::new(move || {
            *record.lock().unwrap() = Some(in_waker.try_lock().is_ok());
        });
        let waker_handle = Waker::from(waker.clone());
        let guard = mutex.try_lock().unwrap();
        let mut lock = Box::pin(mutex.lock());
        assert!(poll_with(lock.as_mut(), &waker_handle).is_pending());
        drop(guard); // hands the lock to the waiter, then wakes it
        assert_eq!(waker.wakes(), 1);
        assert_eq!(*locked_in_wake.lock().unwrap(), Some(false), "handed to the waiter");
        let Poll::Ready(mut guard) = poll_with(lock.as_mut(), &waker_handle) else {
            panic!("the woken waiter owns the lock")
        };
        *guard += 1;
        drop(guard);
        assert_eq!(*mutex.try_lock().unwrap(), 1);
    });
}

#[test]
fn notified_waker_that_notifies_again_completes() {
    watchdog(LIMIT, || {
        let notify = Arc::new(Notify::new());
        let in_waker = notify.clone();
        let waker = Reentrant::new(move || in_waker.notify_one());
        let waker_handle = Waker::from(waker.clone());
        let mut notified = Box::pin(notify.notified());
        assert!(poll_with(notified.as_mut(), &waker_handle).is_pending());
        notify.notify_one();
        assert_eq!(waker.wakes(), 1);
        assert!(poll_with(notified.as_mut(), &waker_handle).is_ready());
        // The notification sent from inside the wake was stored.
        let mut next = Box::pin(notify.notified());
        assert!(poll_with(next.as_mut(), &waker_handle).is_ready());
    });
}

/// The producer, under either driver below: sends `0..MESSAGES` on `tx`.
async fn produce(tx: mpsc::Sender<u64>) {
    for i in 0..MESSAGES {
        tx.send(i).await.unwrap();
    }
}

/// The consumer, under either driver below: receives until the channel
/// closes, checking the order; the number of messages received.
async fn consume(mut rx: mpsc::Receiver<u64>) -> u64 {
    let mut next = 0;
    while let Some(v) = rx.recv().await {
        assert_eq!(v, next, "in order");
        next += 1;
    }
    next
}

#[test]
fn channel_driven_by_futures_executor_moves_100k_messages() {
    watchdog(LIMIT, || {
        let (tx, rx) = mpsc::channel::<u64>(16);
        let producer = std::thread::spawn(move || futures_executor::block_on(produce(tx)));
        assert_eq!(futures_executor::block_on(consume(rx)), MESSAGES);
        producer.join().unwrap();
    });
}

#[test]
fn channel_driven_by_tokio_tasks_moves_100k_messages() {
    watchdog(LIMIT, || {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).build().unwrap();
        rt.block_on(async {
            let (tx, rx) = mpsc::channel::<u64>(16);
            let producer = tokio::spawn(produce(tx));
            let consumer = tokio::spawn(consume(rx));
            producer.await.unwrap();
            assert_eq!(consumer.await.unwrap(), MESSAGES);
        });
    });
}
