//! Task-cell tests without the reactor, so they run under miri.
//!
//! A [`TestQueue`] implements [`Schedule`] with a mutex-guarded deque, and a
//! [`Harness`] plays the executor the way `Executor::spawn`, the context loop
//! and `shutdown` do: three references at spawn (handle, registry, queue),
//! `RawTask::run` on the test thread, and the registry reference dropped
//! when a run completes the task. The futures are [`ProbeFuture`]s: they
//! count their polls and drops, store their latest waker, run an optional
//! hook inside `poll`, and return an [`Output`] that counts itself alive.
//!
//! A cell's leak shows twice: every cell holds a clone of the scheduler's
//! `Arc`, so `Harness::live_cells` is the number of cells not yet freed;
//! and miri reports any allocation still live at exit.

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Wake, Waker};
use std::thread;

use proptest::prelude::*;

use super::JoinError;
use super::join::JoinHandle;
use super::raw::{Polling, RawTask, Schedule};
use super::state::{
    CLOSED, COMPLETE, HANDLE, JOIN_WAKER, REF_MASK, REF_ONE, RUNNING, SCHEDULED, State,
};

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

// ----- the test scheduler ------------------------------------------------------

/// A run queue: `schedule` pushes, the test pops and runs.
#[derive(Default)]
struct TestQueue {
    queue: Mutex<VecDeque<RawTask>>,
    /// Number of `schedule` calls (wakes and aborts that queued the task).
    pushes: AtomicUsize,
}

impl Schedule for TestQueue {
    fn schedule(&self, task: RawTask) {
        self.pushes.fetch_add(1, SeqCst);
        lock(&self.queue).push_back(task);
    }
}

/// The executor's part, on the test thread.
struct Harness {
    queue: Arc<TestQueue>,
    registry: HashMap<u64, RawTask>,
    next_id: u64,
}

impl Harness {
    fn new() -> Harness {
        Harness { queue: Arc::new(TestQueue::default()), registry: HashMap::new(), next_id: 0 }
    }

    /// Spawns like `Executor::spawn`, and also returns an observer
    /// reference for reading the state word (drop it before `live_cells`).
    fn spawn_observed<F: Future + 'static>(
        &mut self,
        future: F,
    ) -> (JoinHandle<F::Output>, RawTask) {
        self.next_id += 1;
        let id = self.next_id;
        let handle = RawTask::new(future, self.queue.clone(), id);
        let registered = handle.clone_ref();
        let queued = handle.clone_ref();
        let observer = handle.clone_ref();
        self.registry.insert(id, registered);
        lock(&self.queue.queue).push_back(queued);
        (JoinHandle::new(handle), observer)
    }

    fn spawn<F: Future + 'static>(&mut self, future: F) -> JoinHandle<F::Output> {
        self.spawn_observed(future).0
    }

    fn queued(&self) -> usize {
        lock(&self.queue.queue).len()
    }

    fn queued_ids(&self) -> Vec<u64> {
        lock(&self.queue.queue).iter().map(RawTask::id).collect()
    }

    fn pushes(&self) -> usize {
        self.queue.pushes.load(SeqCst)
    }

    /// Pops and runs one task: `Some((id, completed))`, `None` if idle.
    fn run_one(&mut self) -> Option<(u64, bool)> {
        let task = lock(&self.queue.queue).pop_front()?;
        let id = task.id();
        let mut unregistered = false;
        let completed = task.run(&Polling::default(), |_| {
            unregistered = true;
            let registered = self.registry.remove(&id);
            assert!(registered.is_some(), "task {id} completed twice");
            registered
        });
        assert_eq!(completed, unregistered, "task {id}: unregistered iff completed");
        Some((id, completed))
    }

    /// Runs until the queue is empty; returns the number of runs.
    fn run_until_idle(&mut self) -> usize {
        let mut runs = 0;
        while self.run_one().is_some() {
            runs += 1;
            assert!(runs < 10_000, "the queue never drains");
        }
        runs
    }

    /// Cells not yet freed: each holds one clone of the scheduler `Arc`.
    fn live_cells(&self) -> usize {
        Arc::strong_count(&self.queue) - 1
    }
}

impl Drop for Harness {
    /// Shuts down like `Executor::shutdown`: cancels every live task, then
    /// drops the queue entries, which also breaks the queue <-> cell cycle.
    fn drop(&mut self) {
        for (_, task) in self.registry.drain() {
            task.shutdown();
        }
        let queued = std::mem::take(&mut *lock(&self.queue.queue));
        drop(queued);
    }
}

fn refs(task: &RawTask) -> usize {
    (task.state().0 & REF_MASK) / REF_ONE
}

fn flags(task: &RawTask) -> usize {
    task.state().0 & !REF_MASK
}

// ----- the probe future --------------------------------------------------------

type Hook = Box<dyn FnOnce(&Waker) + Send>;

/// What a test knows about (and tells) its future.
#[derive(Default)]
struct Probe {
    polls: AtomicUsize,
    drops: AtomicUsize,
    /// Return `Ready` on this poll (1-based); 0: never.
    ready_on: AtomicUsize,
    /// Panic on this poll (1-based); 0: never.
    panic_on: AtomicUsize,
    /// Set when poll returned `Ready` or panicked.
    finished: AtomicBool,
    /// Set if polled after `finished`: must never happen.
    polled_after_finish: AtomicBool,
    /// The waker of the latest poll.
    waker: Mutex<Option<Waker>>,
    /// Run once, inside the next poll, with that poll's waker.
    hook: Mutex<Option<Hook>>,
}

impl Probe {
    fn new(ready_on: usize) -> Arc<Probe> {
        let probe = Probe::default();
        probe.ready_on.store(ready_on, SeqCst);
        Arc::new(probe)
    }

    fn polls(&self) -> usize {
        self.polls.load(SeqCst)
    }

    fn drops(&self) -> usize {
        self.drops.load(SeqCst)
    }

    fn waker(&self) -> Waker {
        lock(&self.waker).clone().expect("the future was never polled")
    }

    fn set_hook(&self, hook: impl FnOnce(&Waker) + Send + 'static) {
        *lock(&self.hook) = Some(Box::new(hook));
    }
}

/// Live outputs, counted by construction and drop.
#[derive(Debug, Default)]
struct Outputs {
    made: AtomicUsize,
    live: AtomicUsize,
}

/// A task's output: counts itself in `Outputs::live`.
#[derive(Debug)]
struct Output {
    id: usize,
    counter: Arc<Outputs>,
}

impl Drop for Output {
    fn drop(&mut self) {
        self.counter.live.fetch_sub(1, SeqCst);
    }
}

struct ProbeFuture {
    id: usize,
    probe: Arc<Probe>,
    outputs: Arc<Outputs>,
}

fn probe_future(id: usize, probe: &Arc<Probe>, outputs: &Arc<Outputs>) -> ProbeFuture {
    ProbeFuture { id, probe: probe.clone(), outputs: outputs.clone() }
}

impl Future for ProbeFuture {
    type Output = Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Output> {
        let probe = &self.probe;
        if probe.finished.load(SeqCst) {
            probe.polled_after_finish.store(true, SeqCst);
        }
        let n = probe.polls.fetch_add(1, SeqCst) + 1;
        *lock(&probe.waker) = Some(cx.waker().clone());
        let hook = lock(&probe.hook).take();
        if let Some(hook) = hook {
            hook(cx.waker());
        }
        if probe.panic_on.load(SeqCst) == n {
            probe.finished.store(true, SeqCst);
            panic!("probe {} panicked", self.id);
        }
        if probe.ready_on.load(SeqCst) == n {
            probe.finished.store(true, SeqCst);
            self.outputs.made.fetch_add(1, SeqCst);
            self.outputs.live.fetch_add(1, SeqCst);
            return Poll::Ready(Output { id: self.id, counter: self.outputs.clone() });
        }
        Poll::Pending
    }
}

impl Drop for ProbeFuture {
    fn drop(&mut self) {
        self.probe.drops.fetch_add(1, SeqCst);
    }
}

/// A waker that counts its wakes (for polling `JoinHandle`s).
#[derive(Default)]
struct WakeCount(AtomicUsize);

impl Wake for WakeCount {
    fn wake(self: Arc<Self>) {
        self.0.fetch_add(1, SeqCst);
    }
}

impl WakeCount {
    fn count(&self) -> usize {
        self.0.load(SeqCst)
    }
}

fn poll_handle<T>(handle: &mut JoinHandle<T>, waker: &Waker) -> Poll<Result<T, JoinError>> {
    Pin::new(handle).poll(&mut Context::from_waker(waker))
}

/// Polls a handle expected to be ready.
fn ready<T>(handle: &mut JoinHandle<T>) -> Result<T, JoinError> {
    match poll_handle(handle, Waker::noop()) {
        Poll::Ready(result) => result,
        Poll::Pending => panic!("JoinHandle still pending"),
    }
}

/// A fresh harness, output counter and probe for one task.
fn setup(ready_on: usize) -> (Harness, Arc<Outputs>, Arc<Probe>) {
    (Harness::new(), Arc::new(Outputs::default()), Probe::new(ready_on))
}

// ----- unit tests ----------------------------------------------------------------

#[test]
fn state_debug_decodes_flags() {
    assert_eq!(format!("{:?}", State(0)), "State { refs: 0 }");
    assert_eq!(
        format!("{:?}", State(SCHEDULED | HANDLE | (3 * REF_ONE))),
        "State { scheduled: true, handle: true, refs: 3 }"
    );
    assert_eq!(
        format!("{:?}", State(SCHEDULED | RUNNING | COMPLETE | CLOSED | HANDLE | REF_ONE)),
        "State { scheduled: true, running: true, complete: true, closed: true, handle: true, \
         refs: 1 }"
    );
    let (mut h, outputs, probe) = setup(1);
    let (handle, observer) = h.spawn_observed(probe_future(1, &probe, &outputs));
    let debug = format!("{observer:?}");
    assert!(debug.starts_with("RawTask { id: 1, state: State { scheduled: true"), "{debug}");
    assert!(format!("{handle:?}").starts_with("JoinHandle { task: Some(RawTask"), "{handle:?}");
    assert_eq!(format!("{:?}", JoinError::Cancelled), "JoinError::Cancelled");
    assert_eq!(JoinError::Cancelled.to_string(), "task was cancelled");
}

#[test]
fn spawn_holds_three_references_and_first_run_polls_once() {
    let (mut h, outputs, probe) = setup(0);
    let (handle, observer) = h.spawn_observed(probe_future(1, &probe, &outputs));
    // handle + registry + queue + observer
    assert_eq!(refs(&observer), 4);
    assert_eq!(flags(&observer), SCHEDULED | HANDLE);
    assert_eq!(handle.id(), 1);
    assert!(!handle.is_finished());
    assert_eq!(h.run_one(), Some((1, false)));
    assert_eq!(probe.polls(), 1);
    assert_eq!(flags(&observer), HANDLE, "{:?}", observer.state());
    // the queue reference is gone, the probe's stored waker holds one
    assert_eq!(refs(&observer), 4);
    assert_eq!(h.queued(), 0);
    assert_eq!(h.pushes(), 0);
    drop((handle, observer));
}

#[test]
fn wake_while_idle_queues_once() {
    let (mut h, outputs, probe) = setup(2);
    let (mut handle, observer) = h.spawn_observed(probe_future(1, &probe, &outputs));
    h.run_one();
    let refs_idle = refs(&observer);
    probe.waker().wake_by_ref();
    assert_eq!(h.queued(), 1);
    assert_eq!(h.pushes(), 1);
    assert_eq!(flags(&observer), SCHEDULED | HANDLE);
    assert_eq!(refs(&observer), refs_idle + 1, "the queue entry owns a reference");
    assert_eq!(h.run_one(), Some((1, true)));
    assert_eq!(probe.polls(), 2);
    assert_eq!(ready(&mut handle).unwrap().id, 1);
    drop(observer);
    drop(handle);
    *lock(&probe.waker) = None;
    assert_eq!(h.live_cells(), 0);
    assert_eq!(outputs.live.load(SeqCst), 0);
}

#[test]
fn wake_twice_queues_once() {
    let (mut h, outputs, probe) = setup(2);
    let handle = h.spawn(probe_future(1, &probe, &outputs));
    h.run_one();
    let waker = probe.waker();
    waker.wake_by_ref();
    let by_value = waker.clone();
    by_value.wake(); // the consuming path
    waker.wake_by_ref();
    assert_eq!(h.queued(), 1);
    assert_eq!(h.pushes(), 1);
    assert_eq!(h.run_one(), Some((1, true)));
    assert_eq!(h.queued(), 0);
    assert_eq!(probe.polls(), 2);
    drop((handle, waker));
    *lock(&probe.waker) = None;
    assert_eq!(h.live_cells(), 0);
}

#[test]
fn wake_while_running_requeues_after_the_poll() {
    let (mut h, outputs, probe) = setup(2);
    let (handle, observer) = h.spawn_observed(probe_future(1, &probe, &outputs));
    let queue = h.queue.clone();
    let seen = Arc::new(AtomicUsize::new(usize::MAX));
    let seen2 = seen.clone();
    probe.set_hook(move |waker| {
        waker.wake_by_ref();
        waker.wake_by_ref();
        // not queued during the poll: the executor re-queues afterwards
        seen2.store(lock(&queue.queue).len(), SeqCst);
    });
    assert_eq!(h.run_one(), Some((1, false)));
    assert_eq!(seen.load(SeqCst), 0);
    assert_eq!(h.queued(), 1);
    assert_eq!(h.pushes(), 1, "re-queued once, by run");
    // Queued as it was: RUNNING stays until the next poll clears SCHEDULED.
    assert_eq!(flags(&observer), SCHEDULED | RUNNING | HANDLE);
    assert_eq!(h.run_one(), Some((1, true)));
    assert_eq!(probe.polls(), 2);
    assert_eq!(h.queued(), 0);
    drop((handle, observer));
    *lock(&probe.waker) = None;
    assert_eq!(h.live_cells(), 0);
}

/// A task re-queued by a wake during its poll (RUNNING | SCHEDULED in the
/// queue) is queued once more by no later wake, from this thread or
/// another, and an abort before its next run drops the future there.
#[test]
fn a_task_requeued_with_running_set_is_woken_once_and_aborted_once() {
    let (mut h, outputs, probe) = setup(2);
    let (mut handle, observer) = h.spawn_observed(probe_future(1, &probe, &outputs));
    probe.set_hook(|waker| waker.wake_by_ref());
    assert_eq!(h.run_one(), Some((1, false)));
    assert_eq!(flags(&observer), SCHEDULED | RUNNING | HANDLE);
    let waker = probe.waker();
    waker.wake_by_ref();
    let remote = waker.clone();
    std::thread::spawn(move || remote.wake()).join().unwrap();
    assert_eq!((h.queued(), h.pushes()), (1, 1), "no second queue entry");
    handle.abort();
    assert_eq!(flags(&observer), SCHEDULED | RUNNING | CLOSED | HANDLE);
    assert_eq!(h.run_one(), Some((1, true)));
    assert_eq!((probe.polls(), probe.drops()), (1, 1));
    assert!(ready(&mut handle).unwrap_err().is_cancelled());
    drop((handle, observer, waker));
    *lock(&probe.waker) = None;
    assert_eq!(h.live_cells(), 0);
}

#[test]
fn wake_during_the_completing_poll_is_dropped() {
    let (mut h, outputs, probe) = setup(1);
    let (mut handle, observer) = h.spawn_observed(probe_future(1, &probe, &outputs));
    probe.set_hook(|waker| waker.wake_by_ref());
    assert_eq!(h.run_one(), Some((1, true)));
    assert_eq!(h.queued(), 0);
    assert_eq!(flags(&observer), COMPLETE | HANDLE);
    assert_eq!(ready(&mut handle).unwrap().id, 1);
    drop((handle, observer));
    *lock(&probe.waker) = None;
    assert_eq!(h.live_cells(), 0);
}

#[test]
fn wake_after_completion_is_a_noop() {
    let (mut h, outputs, probe) = setup(1);
    let (mut handle, observer) = h.spawn_observed(probe_future(1, &probe, &outputs));
    assert_eq!(h.run_one(), Some((1, true)));
    assert!(handle.is_finished());
    let waker = probe.waker();
    waker.wake_by_ref();
    let by_value = waker.clone();
    by_value.wake(); // the consuming path
    thread::spawn(move || waker.wake()).join().unwrap();
    assert_eq!(h.queued(), 0);
    assert_eq!(h.pushes(), 0);
    assert_eq!(probe.polls(), 1);
    assert_eq!(flags(&observer), COMPLETE | HANDLE);
    assert_eq!(ready(&mut handle).unwrap().id, 1);
    assert!(!probe.polled_after_finish.load(SeqCst));
    drop((handle, observer));
    *lock(&probe.waker) = None;
    assert_eq!(h.live_cells(), 0);
    assert_eq!(outputs.live.load(SeqCst), 0);
}

#[test]
fn abort_while_idle_drops_the_future_on_the_next_run() {
    let (mut h, outputs, probe) = setup(0);
    let (mut handle, observer) = h.spawn_observed(probe_future(1, &probe, &outputs));
    h.run_one();
    let joiner = Arc::new(WakeCount::default());
    let joiner_waker = Waker::from(joiner.clone());
    assert!(poll_handle(&mut handle, &joiner_waker).is_pending());
    handle.abort();
    assert_eq!(flags(&observer), SCHEDULED | CLOSED | HANDLE | JOIN_WAKER);
    assert_eq!(h.queued(), 1);
    assert_eq!(probe.drops(), 0, "dropped by the executor, not by abort");
    handle.abort(); // no second queue entry
    probe.waker().wake_by_ref(); // a wake of a closed task does nothing
    assert_eq!(h.queued(), 1);
    assert_eq!(h.run_one(), Some((1, true)));
    assert_eq!(probe.drops(), 1);
    assert_eq!(probe.polls(), 1, "an aborted future is never polled");
    assert_eq!(joiner.count(), 1);
    assert!(handle.is_finished());
    assert!(ready(&mut handle).unwrap_err().is_cancelled());
    handle.abort(); // no effect after completion
    assert_eq!(h.queued(), 0);
    assert!(h.registry.is_empty());
    drop((handle, observer));
    *lock(&probe.waker) = None;
    assert_eq!(h.live_cells(), 0);
    assert_eq!(outputs.made.load(SeqCst), 0);
    drop(joiner_waker);
    assert_eq!(Arc::strong_count(&joiner), 1, "the join waker was released");
}

#[test]
fn abort_before_the_first_poll() {
    let (mut h, outputs, probe) = setup(1);
    let mut handle = h.spawn(probe_future(1, &probe, &outputs));
    handle.abort();
    assert_eq!(h.queued(), 1, "already queued by spawn");
    assert_eq!(h.pushes(), 0);
    assert_eq!(h.run_one(), Some((1, true)));
    assert_eq!((probe.polls(), probe.drops()), (0, 1));
    assert!(ready(&mut handle).unwrap_err().is_cancelled());
    drop(handle);
    assert_eq!(h.live_cells(), 0);
}

/// Aborts through a `JoinHandle` kept in a shared slot, from inside poll.
fn abort_in_hook(
    probe: &Probe,
    slot: &Arc<Mutex<Option<JoinHandle<Output>>>>,
    from_another_thread: bool,
) {
    let slot = slot.clone();
    probe.set_hook(move |_| {
        if from_another_thread {
            thread::spawn(move || lock(&slot).as_ref().unwrap().abort()).join().unwrap();
        } else {
            lock(&slot).as_ref().unwrap().abort();
        }
    });
}

fn abort_while_running(from_another_thread: bool) {
    let (mut h, outputs, probe) = setup(0);
    let (handle, observer) = h.spawn_observed(probe_future(1, &probe, &outputs));
    let slot = Arc::new(Mutex::new(Some(handle)));
    abort_in_hook(&probe, &slot, from_another_thread);
    // the hook wakes too: RUNNING | SCHEDULED | CLOSED must still cancel
    let inner_hook = lock(&probe.hook).take().unwrap();
    probe.set_hook(move |waker| {
        waker.wake_by_ref();
        inner_hook(waker);
    });
    assert_eq!(h.run_one(), Some((1, true)));
    assert_eq!((probe.polls(), probe.drops()), (1, 1));
    assert_eq!(h.queued(), 0);
    assert_eq!(flags(&observer), COMPLETE | CLOSED | HANDLE);
    let mut handle = lock(&slot).take().unwrap();
    assert!(ready(&mut handle).unwrap_err().is_cancelled());
    drop((handle, observer));
    *lock(&probe.waker) = None;
    assert_eq!(h.live_cells(), 0);
}

#[test]
fn abort_from_inside_poll_drops_the_future_once() {
    abort_while_running(false);
}

#[test]
fn abort_from_another_thread_during_poll_drops_the_future_once() {
    abort_while_running(true);
}

/// Pins the current semantics (tokio's too): a poll that returns `Ready`
/// wins over an abort requested during that poll.
#[test]
fn abort_during_the_final_poll_keeps_the_output() {
    let (mut h, outputs, probe) = setup(1);
    let handle = h.spawn(probe_future(1, &probe, &outputs));
    let slot = Arc::new(Mutex::new(Some(handle)));
    abort_in_hook(&probe, &slot, false);
    assert_eq!(h.run_one(), Some((1, true)));
    assert_eq!(probe.drops(), 1);
    let mut handle = lock(&slot).take().unwrap();
    assert_eq!(ready(&mut handle).unwrap().id, 1);
    assert_eq!(outputs.live.load(SeqCst), 0);
    drop(handle);
    *lock(&probe.waker) = None;
    assert_eq!(h.live_cells(), 0);
}

#[test]
fn panic_in_poll_gives_panicked_with_the_payload() {
    let (mut h, outputs, probe) = setup(0);
    probe.panic_on.store(2, SeqCst);
    let mut handle = h.spawn(probe_future(7, &probe, &outputs));
    h.run_one();
    probe.waker().wake_by_ref();
    assert_eq!(h.run_one(), Some((1, true)));
    assert_eq!((probe.polls(), probe.drops()), (2, 1));
    let err = ready(&mut handle).unwrap_err();
    assert!(err.is_panic() && !err.is_cancelled());
    assert_eq!(format!("{err:?}"), "JoinError::Panicked(\"probe 7 panicked\")");
    assert_eq!(err.to_string(), "task panicked: probe 7 panicked");
    let payload = err.into_panic();
    assert_eq!(payload.downcast_ref::<String>().map(String::as_str), Some("probe 7 panicked"));
    // the executor keeps going: a later task runs
    let probe2 = Probe::new(1);
    let mut handle2 = h.spawn(probe_future(8, &probe2, &outputs));
    h.run_until_idle();
    assert_eq!(ready(&mut handle2).unwrap().id, 8);
    drop((handle, handle2));
    *lock(&probe.waker) = None;
    *lock(&probe2.waker) = None;
    assert_eq!(h.live_cells(), 0);
}

#[test]
fn handle_dropped_before_completion_drops_the_output_at_completion() {
    let (mut h, outputs, probe) = setup(2);
    let (handle, observer) = h.spawn_observed(probe_future(1, &probe, &outputs));
    h.run_one();
    drop(handle);
    assert_eq!(flags(&observer), 0);
    probe.waker().wake_by_ref();
    assert_eq!(h.run_one(), Some((1, true)));
    assert_eq!(outputs.made.load(SeqCst), 1);
    assert_eq!(outputs.live.load(SeqCst), 0, "dropped by the executor at completion");
    assert_eq!(probe.drops(), 1);
    drop(observer);
    *lock(&probe.waker) = None;
    assert_eq!(h.live_cells(), 0);
}

#[test]
fn handle_dropped_after_completion_drops_the_output_then() {
    let (mut h, outputs, probe) = setup(1);
    let handle = h.spawn(probe_future(1, &probe, &outputs));
    h.run_until_idle();
    assert_eq!(outputs.live.load(SeqCst), 1, "kept for the handle");
    drop(handle);
    assert_eq!(outputs.live.load(SeqCst), 0);
    *lock(&probe.waker) = None;
    assert_eq!(h.live_cells(), 0);
}

#[test]
fn cancelled_handle_dropped_on_another_thread() {
    let (mut h, outputs, probe) = setup(0);
    let handle = h.spawn(probe_future(1, &probe, &outputs));
    h.run_one();
    handle.abort();
    h.run_until_idle();
    thread::spawn(move || drop(handle)).join().unwrap();
    *lock(&probe.waker) = None;
    assert_eq!(h.live_cells(), 0);
}

#[test]
fn waker_clones_and_drops_balance_the_refcount() {
    let (mut h, outputs, probe) = setup(3);
    let (mut handle, observer) = h.spawn_observed(probe_future(1, &probe, &outputs));
    h.run_one();
    let base = refs(&observer);
    let waker = probe.waker();
    assert_eq!(refs(&observer), base + 1);
    let clones: Vec<Waker> = (0..10).map(|_| waker.clone()).collect();
    assert_eq!(refs(&observer), base + 11);
    let sent: Vec<Waker> = clones[..5].to_vec();
    thread::spawn(move || {
        for w in sent {
            w.wake(); // wakes and releases
        }
    })
    .join()
    .unwrap();
    assert_eq!(h.queued(), 1);
    drop(clones);
    assert_eq!(refs(&observer), base + 2, "ours and the queue entry's");
    h.run_one(); // poll 2 replaces the stored waker: a clone, then a drop
    assert_eq!(refs(&observer), base + 1);
    waker.wake();
    assert_eq!(refs(&observer), base + 1, "the queue entry replaced our waker");
    assert_eq!(h.run_one(), Some((1, true)));
    // handle + stored waker + observer: registry and queue references are gone
    assert_eq!(refs(&observer), 3);
    assert_eq!(ready(&mut handle).unwrap().id, 1);
    drop(handle);
    assert_eq!(refs(&observer), 2);
    *lock(&probe.waker) = None;
    assert_eq!(refs(&observer), 1);
    assert_eq!(h.live_cells(), 1);
    drop(observer);
    assert_eq!(h.live_cells(), 0);
    assert_eq!(probe.drops(), 1);
}

#[test]
fn wake_from_a_foreign_thread_lands_in_the_queue() {
    let (mut h, outputs, probe) = setup(2);
    let mut handle = h.spawn(probe_future(1, &probe, &outputs));
    h.run_one();
    let waker = probe.waker();
    thread::spawn(move || waker.wake()).join().unwrap();
    assert_eq!(h.queued_ids(), vec![1]);
    assert_eq!(h.run_one(), Some((1, true)));
    assert_eq!(ready(&mut handle).unwrap().id, 1);
    drop(handle);
    *lock(&probe.waker) = None;
    assert_eq!(h.live_cells(), 0);
}

#[test]
fn concurrent_foreign_wakes_queue_the_task_once() {
    let (mut h, outputs, probe) = setup(0);
    let handle = h.spawn(probe_future(1, &probe, &outputs));
    h.run_one();
    let wakes = if cfg!(miri) { 10 } else { 500 };
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let waker = probe.waker();
            thread::spawn(move || {
                for _ in 0..wakes {
                    waker.wake_by_ref();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(h.queued(), 1);
    assert_eq!(h.pushes(), 1);
    handle.abort();
    h.run_until_idle();
    drop(handle);
    *lock(&probe.waker) = None;
    assert_eq!(h.live_cells(), 0);
}

/// Ready once it has seen `target` in `sent` (a counter a foreign thread
/// bumps before each wake); stores its waker where that thread finds it.
struct Counted {
    sent: Arc<AtomicUsize>,
    target: usize,
    waker: Arc<Mutex<Option<Waker>>>,
    polls: usize,
}

impl Future for Counted {
    type Output = usize;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<usize> {
        self.polls += 1;
        *lock(&self.waker) = Some(cx.waker().clone());
        if self.sent.load(SeqCst) == self.target { Poll::Ready(self.polls) } else { Poll::Pending }
    }
}

#[test]
fn wakes_racing_with_polls_never_lose_the_last_wake() {
    // A foreign thread bumps a counter then wakes, while the test thread
    // runs the task: the task completes only if a poll follows the last
    // wake, so a lost wake leaves it idle and the loop below fails.
    let rounds = if cfg!(miri) { 20 } else { 5_000 };
    let sent = Arc::new(AtomicUsize::new(0));
    let slot = Arc::new(Mutex::new(None::<Waker>));
    let mut h = Harness::new();
    let mut handle =
        h.spawn(Counted { sent: sent.clone(), target: rounds, waker: slot.clone(), polls: 0 });
    h.run_one();
    let waker = lock(&slot).clone().unwrap();
    let (sent2, woken) = (sent.clone(), Arc::new(AtomicUsize::new(0)));
    let woken2 = woken.clone();
    let waking = thread::spawn(move || {
        for _ in 0..rounds {
            sent2.fetch_add(1, SeqCst);
            waker.wake_by_ref();
            woken2.fetch_add(1, SeqCst);
            if cfg!(miri) {
                thread::yield_now();
            }
        }
    });
    while !handle.is_finished() {
        // Read before the run: if every wake had returned by then, the
        // last one queued the task before this run looked.
        let all_woken = woken.load(SeqCst) == rounds;
        if h.run_one().is_none() {
            assert!(!all_woken, "idle and unfinished after every wake: the last one was lost");
            thread::yield_now();
        }
    }
    waking.join().unwrap();
    let polls = ready(&mut handle).unwrap();
    assert!((2..=rounds + 1).contains(&polls), "{polls} polls");
    drop(handle);
    *lock(&slot) = None;
    assert_eq!(h.live_cells(), 0);
}

#[test]
fn shutdown_cancels_live_tasks_like_the_executor() {
    let outputs = Arc::new(Outputs::default());
    let mut h = Harness::new();
    let never_polled = Probe::new(0);
    let idle = Probe::new(0);
    let woken = Probe::new(0);
    let mut handles = vec![
        h.spawn(probe_future(1, &never_polled, &outputs)),
        h.spawn(probe_future(2, &idle, &outputs)),
        h.spawn(probe_future(3, &woken, &outputs)),
    ];
    h.run_one();
    h.run_one();
    h.run_one();
    woken.waker().wake_by_ref();
    handles.remove(1); // a detached task is cancelled too
    let cells = h.queue.clone();
    drop(h);
    for probe in [&never_polled, &idle, &woken] {
        assert_eq!(probe.drops(), 1);
        *lock(&probe.waker) = None;
    }
    for mut handle in handles {
        assert!(ready(&mut handle).unwrap_err().is_cancelled());
    }
    assert_eq!(Arc::strong_count(&cells), 1, "every cell freed");
}

/// A future that must stay where it was pinned: it records its address at
/// its first poll and at its drop, and is ready at its `ready_on`-th poll.
struct AddressProbe {
    ready_on: usize,
    polls: usize,
    /// (address at the first poll, address at the drop).
    seen: Arc<Mutex<(usize, usize)>>,
    _pinned: std::marker::PhantomPinned,
}

impl AddressProbe {
    fn new(ready_on: usize) -> (AddressProbe, Arc<Mutex<(usize, usize)>>) {
        let seen = Arc::new(Mutex::new((0, 0)));
        let probe = AddressProbe {
            ready_on,
            polls: 0,
            seen: seen.clone(),
            _pinned: std::marker::PhantomPinned,
        };
        (probe, seen)
    }
}

impl Future for AddressProbe {
    type Output = ();

    fn poll(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<()> {
        let address = &*self as *const AddressProbe as usize;
        // SAFETY: only a counter changes; the future is not moved.
        let this = unsafe { self.get_unchecked_mut() };
        this.polls += 1;
        if this.polls == 1 {
            lock(&this.seen).0 = address;
        }
        if this.polls == this.ready_on { Poll::Ready(()) } else { Poll::Pending }
    }
}

impl Drop for AddressProbe {
    fn drop(&mut self) {
        lock(&self.seen).1 = self as *const AddressProbe as usize;
    }
}

/// Pin's drop guarantee: a polled future is dropped where it was pinned,
/// whether it completed, was aborted or was cancelled at shutdown. A future
/// that borrows itself (an `async` block awaiting `rx.recv()`) would
/// otherwise drop its borrow of memory the cell has reused.
#[test]
fn a_polled_future_is_dropped_where_it_was_pinned() {
    let mut h = Harness::new();
    let (completing, completed) = AddressProbe::new(1);
    let (aborting, aborted) = AddressProbe::new(0);
    let (parked, cancelled) = AddressProbe::new(0);
    let completing = h.spawn(completing);
    let aborting = h.spawn(aborting);
    let _parked = h.spawn(parked);
    h.run_until_idle();
    aborting.abort();
    h.run_until_idle();
    drop(h);
    for (path, seen) in [("completed", completed), ("aborted", aborted), ("cancelled", cancelled)] {
        let (polled_at, dropped_at) = *lock(&seen);
        assert_ne!(polled_at, 0, "the {path} future was polled");
        assert_eq!(dropped_at, polled_at, "the {path} future moved before its drop");
    }
    drop((completing, aborting));
}

#[test]
fn handles_and_wakers_are_send_and_sync() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<JoinHandle<u32>>();
    assert_send_sync::<RawTask>();
    assert_send_sync::<Waker>();
    fn assert_send<T: Send>() {}
    assert_send::<JoinError>();
}

// ----- the property test ---------------------------------------------------------

const MAX_TASKS: usize = 8;

#[derive(Clone, Debug)]
enum Op {
    /// Spawn a task that returns on poll `polls`, or panics there.
    Spawn {
        polls: usize,
        panics: bool,
    },
    Wake(usize),
    WakeForeign(usize),
    RunOne,
    Abort(usize),
    DropHandle(usize),
    PollHandle(usize),
    /// The task's next poll wakes itself.
    WakeInPoll(usize),
    /// The task's next poll aborts it through its handle, on this thread
    /// or from a thread it spawns and joins.
    AbortInPoll(usize, bool),
    /// The task's next poll drops its handle.
    DropHandleInPoll(usize),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (1..=4usize, prop::bool::weighted(0.15))
            .prop_map(|(polls, panics)| Op::Spawn { polls, panics }),
        3 => (0..MAX_TASKS).prop_map(Op::Wake),
        1 => (0..MAX_TASKS).prop_map(Op::WakeForeign),
        6 => Just(Op::RunOne),
        1 => (0..MAX_TASKS).prop_map(Op::Abort),
        1 => (0..MAX_TASKS).prop_map(Op::DropHandle),
        2 => (0..MAX_TASKS).prop_map(Op::PollHandle),
        1 => (0..MAX_TASKS).prop_map(Op::WakeInPoll),
        1 => (0..MAX_TASKS, any::<bool>()).prop_map(|(i, t)| Op::AbortInPoll(i, t)),
        1 => (0..MAX_TASKS).prop_map(Op::DropHandleInPoll),
    ]
}

const NONE: usize = usize::MAX;

/// What hooks record, read by the model.
struct Marks {
    /// The poll count when the task was last woken (`NONE`: never): while
    /// no poll started since, the task must be queued.
    woken_at: AtomicUsize,
    /// The poll during which a hook aborted the task (`NONE`: none).
    aborted_in_poll: AtomicUsize,
}

type Slot = Arc<Mutex<Option<JoinHandle<Output>>>>;

/// What the test knows about one task.
struct Model {
    probe: Arc<Probe>,
    marks: Arc<Marks>,
    panics: bool,
    /// Shared with hooks, which may abort through it or drop it.
    handle: Slot,
    /// The joiner's waker, registered by a pending `PollHandle`.
    joiner: Arc<WakeCount>,
    joiner_registered: bool,
    /// Results the handle returned (must end up 0 or 1).
    delivered: usize,
    /// Polls seen when an abort of the unfinished, idle task was requested.
    aborted_at: Option<usize>,
}

impl Model {
    fn has_handle(&self) -> bool {
        lock(&self.handle).is_some()
    }

    /// The poll after which the task is cancelled, if it is.
    fn cancelled_after(&self) -> Option<usize> {
        if self.aborted_at.is_some() {
            return self.aborted_at;
        }
        let n = self.marks.aborted_in_poll.load(SeqCst);
        // an abort during the poll that finished the task changes nothing
        let finished_in_it = self.probe.finished.load(SeqCst) && self.probe.polls() == n;
        (n != NONE && !finished_in_it).then_some(n)
    }

    /// Whether the future returned an output (which someone must drop).
    fn returned_output(&self) -> bool {
        self.probe.finished.load(SeqCst) && !self.panics
    }

    /// Checks a result the handle returned.
    fn check(&mut self, id: usize, result: Result<Output, JoinError>) {
        self.delivered += 1;
        assert_eq!(self.delivered, 1, "task {id}: output delivered twice");
        let cancelled = self.cancelled_after().is_some();
        match result {
            Ok(output) => {
                assert!(!cancelled && !self.panics, "task {id}: Ok, expected an error");
                assert_eq!(output.id, id);
            }
            Err(JoinError::Cancelled) => assert!(cancelled, "task {id}: unexpected Cancelled"),
            Err(JoinError::Panicked(payload)) => {
                assert!(self.panics && !cancelled, "task {id}: unexpected Panicked");
                let message = payload.downcast_ref::<String>().unwrap();
                assert_eq!(*message, format!("probe {id} panicked"));
            }
        }
    }
}

/// Adds `hook` to the probe's next poll, after any hook already there.
fn add_hook(probe: &Probe, hook: impl FnOnce(&Waker) + Send + 'static) {
    let mut slot = lock(&probe.hook);
    let before = slot.take();
    *slot = Some(Box::new(move |waker| {
        if let Some(before) = before {
            before(waker);
        }
        hook(waker);
    }));
}

fn apply(h: &mut Harness, tasks: &mut Vec<Model>, outputs: &Arc<Outputs>, op: &Op) {
    let len = tasks.len();
    let task = |i: usize| (len > 0).then(|| i % len);
    match *op {
        Op::Spawn { polls, panics } => {
            if tasks.len() == MAX_TASKS {
                return;
            }
            let probe = Probe::new(if panics { 0 } else { polls });
            if panics {
                probe.panic_on.store(polls, SeqCst);
            }
            let id = tasks.len() + 1;
            let handle = h.spawn(probe_future(id, &probe, outputs));
            assert_eq!(handle.id(), id as u64);
            let marks = Marks { woken_at: AtomicUsize::new(NONE), aborted_in_poll: NONE.into() };
            tasks.push(Model {
                probe,
                marks: Arc::new(marks),
                panics,
                handle: Arc::new(Mutex::new(Some(handle))),
                joiner: Arc::new(WakeCount::default()),
                joiner_registered: false,
                delivered: 0,
                aborted_at: None,
            });
        }
        Op::Wake(i) | Op::WakeForeign(i) => {
            let Some(i) = task(i) else { return };
            let t = &tasks[i];
            let waker = lock(&t.probe.waker).clone();
            let Some(waker) = waker else { return };
            if t.probe.drops() == 0 {
                t.marks.woken_at.store(t.probe.polls(), SeqCst);
            }
            if let Op::WakeForeign(_) = op {
                thread::spawn(move || waker.wake()).join().unwrap();
            } else {
                waker.wake();
            }
        }
        Op::RunOne => {
            h.run_one();
        }
        Op::Abort(i) => {
            let Some(i) = task(i) else { return };
            let t = &mut tasks[i];
            let handle = lock(&t.handle);
            if let Some(handle) = &*handle {
                if t.aborted_at.is_none() && t.cancelled_after().is_none() && t.probe.drops() == 0 {
                    t.aborted_at = Some(t.probe.polls());
                }
                handle.abort();
            }
        }
        Op::DropHandle(i) => {
            let Some(i) = task(i) else { return };
            let handle = lock(&tasks[i].handle).take();
            drop(handle);
        }
        Op::PollHandle(i) => {
            let Some(i) = task(i) else { return };
            let t = &mut tasks[i];
            if t.delivered > 0 {
                return; // a second poll would panic, by contract
            }
            let slot = t.handle.clone();
            let mut handle = lock(&slot);
            let Some(handle) = &mut *handle else { return };
            let waker = Waker::from(t.joiner.clone());
            // the output is there exactly when the future is gone
            let gone = t.probe.drops() == 1;
            match poll_handle(handle, &waker) {
                Poll::Ready(result) => {
                    assert!(gone, "task {}: ready before its future was dropped", i + 1);
                    t.check(i + 1, result);
                }
                Poll::Pending => {
                    assert!(!gone, "task {}: pending after its future was dropped", i + 1);
                    t.joiner_registered = true;
                }
            }
        }
        Op::WakeInPoll(i) => {
            let Some(i) = task(i) else { return };
            let (probe, marks) = (tasks[i].probe.clone(), tasks[i].marks.clone());
            add_hook(&tasks[i].probe, move |waker| {
                marks.woken_at.store(probe.polls(), SeqCst);
                waker.wake_by_ref();
            });
        }
        Op::AbortInPoll(i, from_thread) => {
            let Some(i) = task(i) else { return };
            let (probe, marks) = (tasks[i].probe.clone(), tasks[i].marks.clone());
            let slot = tasks[i].handle.clone();
            add_hook(&tasks[i].probe, move |_| {
                let abort = move || {
                    if let Some(handle) = &*lock(&slot) {
                        if marks.aborted_in_poll.load(SeqCst) == NONE {
                            marks.aborted_in_poll.store(probe.polls(), SeqCst);
                        }
                        handle.abort();
                    }
                };
                if from_thread {
                    thread::spawn(abort).join().unwrap();
                } else {
                    abort();
                }
            });
        }
        Op::DropHandleInPoll(i) => {
            let Some(i) = task(i) else { return };
            let slot = tasks[i].handle.clone();
            add_hook(&tasks[i].probe, move |_| drop(lock(&slot).take()));
        }
    }
}

/// Invariants that hold between any two operations.
fn check_between_ops(h: &Harness, tasks: &[Model], outputs: &Outputs) {
    let mut queued = h.queued_ids();
    let len = queued.len();
    queued.sort_unstable();
    queued.dedup();
    assert_eq!(queued.len(), len, "a task is queued twice: {:?}", h.queued_ids());
    let mut held = 0;
    for (i, t) in tasks.iter().enumerate() {
        let (id, probe) = ((i + 1) as u64, &t.probe);
        assert!(probe.drops() <= 1, "task {id}: future dropped twice");
        assert!(!probe.polled_after_finish.load(SeqCst), "task {id}: polled after Ready");
        if let Some(polls) = t.cancelled_after() {
            assert!(probe.polls() <= polls, "task {id}: polled after its abort");
        }
        if probe.drops() == 1 {
            assert!(!queued.contains(&id), "task {id}: finished but queued");
            assert!(!h.registry.contains_key(&id), "task {id}: finished but registered");
        } else {
            assert!(h.registry.contains_key(&id), "task {id}: live but unregistered");
            let woken = t.marks.woken_at.load(SeqCst) == probe.polls();
            assert!(!woken || queued.contains(&id), "task {id}: woken but not queued");
            let aborted = t.cancelled_after().is_some();
            assert!(!aborted || queued.contains(&id), "task {id}: aborted but not queued");
        }
        // an output lives exactly while a handle will still take it
        if t.returned_output() && t.has_handle() && t.delivered == 0 {
            held += 1;
        }
    }
    assert_eq!(outputs.live.load(SeqCst), held, "outputs alive vs held for handles");
}

fn run_ops(ops: &[Op]) {
    let outputs = Arc::new(Outputs::default());
    let mut h = Harness::new();
    let mut tasks: Vec<Model> = Vec::new();
    for op in ops {
        apply(&mut h, &mut tasks, &outputs, op);
        check_between_ops(&h, &tasks, &outputs);
    }

    // Drain: run everything, waking each unfinished future until it returns.
    for round in 0.. {
        h.run_until_idle();
        check_between_ops(&h, &tasks, &outputs);
        let mut woke = false;
        for t in &tasks {
            if t.probe.drops() == 0 {
                t.probe.waker().wake();
                woke = true;
            }
        }
        if !woke {
            break;
        }
        assert!(round < 16, "tasks never finish");
    }
    assert!(h.registry.is_empty());
    assert_eq!(h.queued(), 0);

    for (i, t) in tasks.iter_mut().enumerate() {
        assert_eq!(t.probe.drops(), 1, "task {}: future not dropped once", i + 1);
        if !t.has_handle() {
            continue; // dropped, before or after it delivered
        }
        if t.joiner_registered && t.delivered == 0 {
            assert!(t.joiner.count() >= 1, "task {}: joiner not woken", i + 1);
        }
        if t.delivered == 0 {
            let result = ready(lock(&t.handle).as_mut().unwrap());
            t.check(i + 1, result);
        }
        assert_eq!(t.delivered, 1);
    }
    for t in &tasks {
        drop(lock(&t.handle).take());
        *lock(&t.probe.waker) = None;
        *lock(&t.probe.hook) = None;
    }
    assert_eq!(outputs.live.load(SeqCst), 0, "an output leaked");
    assert_eq!(h.live_cells(), 0, "a task cell leaked");
    for t in &tasks {
        assert_eq!(Arc::strong_count(&t.joiner), 1, "a join waker leaked");
    }
}

fn proptest_config() -> ProptestConfig {
    let mut config = ProptestConfig { failure_persistence: None, ..ProptestConfig::default() };
    if cfg!(miri) {
        config.cases = config.cases.min(8);
    }
    config
}

proptest! {
    #![proptest_config(proptest_config())]

    #[test]
    fn random_ops_keep_the_cell_invariants(ops in prop::collection::vec(op(), 1..64)) {
        run_ops(&ops);
    }
}
