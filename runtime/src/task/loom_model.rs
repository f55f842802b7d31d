//! loom models of the task state word (`state.rs`, `raw.rs`): the real
//! transition code runs on loom's atomics (`crate::loom`), and loom runs
//! each model under every interleaving of its threads (up to a preemption
//! bound). Run with
//! `RUSTFLAGS="--cfg loom" cargo test -p greenloop-runtime --release --lib loom_model`.
//!
//! Threads here take std mutexes only around code with no loom operation,
//! so loom never switches threads inside them.

use std::collections::VecDeque;
use std::future::Future;
use std::panic::Location;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};

use super::join::JoinHandle;
use super::raw::{Polling, RawTask, Schedule};
use crate::loom::model;

#[derive(Default)]
struct Queue(Mutex<VecDeque<RawTask>>);

impl Schedule for Queue {
    fn schedule(&self, task: RawTask) {
        self.0.lock().unwrap().push_back(task);
    }
}

impl Queue {
    fn pop(&self) -> Option<RawTask> {
        self.0.lock().unwrap().pop_front()
    }
}

/// A waker that counts its wakes.
#[derive(Default)]
struct Counter(AtomicUsize);

impl Wake for Counter {
    fn wake(self: Arc<Self>) {
        self.0.fetch_add(1, SeqCst);
    }
}

/// The join-waker exchange: the handle registers a waker, then replaces it
/// with another, while the executor completes the task on another thread.
/// Whatever the interleaving, the handle gets the output, and if its last
/// poll was pending the waker it registered last was woken.
#[test]
fn loom_join_waker_exchange_never_loses_the_wake() {
    model(|| {
        let queue = Arc::new(Queue::default());
        let (handle, queued, registered) =
            RawTask::spawned(async { 7u32 }, queue.clone(), 1, Location::caller());
        let mut handle = JoinHandle::<u32>::new(handle);
        let executor = loom::thread::spawn(move || {
            assert!(
                queued.run(&Polling::default(), move |_| Some(registered)),
                "the task completes in one poll"
            );
        });
        let counters = [Arc::new(Counter::default()), Arc::new(Counter::default())];
        let mut pending_on = None;
        for counter in &counters {
            let waker = Waker::from(counter.clone());
            match Pin::new(&mut handle).poll(&mut Context::from_waker(&waker)) {
                Poll::Ready(out) => {
                    assert_eq!(out.unwrap(), 7);
                    pending_on = None;
                    break;
                }
                Poll::Pending => pending_on = Some(counter.clone()),
            }
        }
        executor.join().unwrap();
        if let Some(last) = pending_on {
            assert_eq!(last.0.load(SeqCst), 1, "the last registered waker was woken");
            let waker = Waker::from(last);
            let out = Pin::new(&mut handle).poll(&mut Context::from_waker(&waker));
            assert!(matches!(out, Poll::Ready(Ok(7))));
        }
        assert!(queue.pop().is_none());
    });
}

/// Pending until `go` is set; the first poll also wakes itself (so it is
/// re-queued while running) and leaves its waker in `slot`.
struct WaitForGo {
    go: Arc<AtomicBool>,
    slot: Arc<Mutex<Option<Waker>>>,
    polls: usize,
}

impl Future for WaitForGo {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        self.polls += 1;
        if self.polls == 1 {
            *self.slot.lock().unwrap() = Some(cx.waker().clone());
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        if self.go.load(SeqCst) { Poll::Ready(()) } else { Poll::Pending }
    }
}

/// A wake from another thread racing the task's poll (idle, queued or
/// running) is never lost: once both are done, running the queue dry
/// completes the task.
#[test]
fn loom_wake_racing_a_poll_is_not_lost() {
    model(|| {
        let queue = Arc::new(Queue::default());
        let go = Arc::new(AtomicBool::new(false));
        let slot = Arc::new(Mutex::new(None));
        let future = WaitForGo { go: go.clone(), slot: slot.clone(), polls: 0 };
        let (handle, queued, registered) =
            RawTask::spawned(future, queue.clone(), 1, Location::caller());
        let observer = handle.clone_ref();
        let handle = JoinHandle::<()>::new(handle);
        let mut registered = Some(registered);
        assert!(
            !queued.run(&Polling::default(), |_| None),
            "first poll: pending, re-queued by its own wake"
        );
        let waker = slot.lock().unwrap().take().expect("the first poll left its waker");
        let waking = loom::thread::spawn(move || {
            go.store(true, SeqCst);
            waker.wake();
        });
        let mut run = || {
            while let Some(task) = queue.pop() {
                task.run(&Polling::default(), |_| registered.take());
            }
        };
        run();
        waking.join().unwrap();
        run();
        assert!(handle.is_finished(), "the wake after `go` was lost: {:?}", observer.state());
    });
}
