//! Shared harness of the `sync_*` tests: run an operation (a future) in a
//! chosen context — a green thread, a stackless task, or a plain OS thread —
//! and observe it from the test thread: did it finish at once or wait, what
//! did it return, and cancel it (drop it) while it waits.
//!
//! The harness uses only std primitives, never `greenloop_runtime::sync`,
//! so a bug in the code under test cannot hide in the harness. Every wait is
//! bounded: a timeout fails the test instead of hanging it.

#![allow(dead_code)]

use std::collections::VecDeque;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::task::{Context, Poll, Waker};
use std::thread;
use std::time::{Duration, Instant};

use greenloop_runtime::{green, task};
use proptest::prelude::*;

/// How long any single expected event may take before the test fails.
pub const PATIENCE: Duration = Duration::from_secs(20);

#[path = "../watchdog/mod.rs"]
mod watchdog;
pub use watchdog::watchdog;

/// Where an operation runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ctx {
    /// A new green thread on the shared green worker (blocking style:
    /// `block_on`, which is what every `*_blocking` form is).
    Green,
    /// A new task on the shared stackless worker (`.await`).
    Task,
    /// A new plain OS thread (`block_on` blocks it).
    Thread,
}

/// A strategy picking one of the three contexts.
pub fn any_ctx() -> impl Strategy<Value = Ctx> {
    prop_oneof![Just(Ctx::Green), Just(Ctx::Task), Just(Ctx::Thread)]
}

type Job = Box<dyn FnOnce() + Send>;
type TaskJob = Pin<Box<dyn Future<Output = ()> + Send>>;

/// A job queue a worker waits on through a hand-written future (std only).
struct Mailbox<J> {
    jobs: Mutex<(VecDeque<J>, Option<Waker>)>,
}

impl<J> Mailbox<J> {
    fn new() -> Arc<Mailbox<J>> {
        Arc::new(Mailbox { jobs: Mutex::new((VecDeque::new(), None)) })
    }

    fn push(&self, job: J) {
        let waker = {
            let mut jobs = self.jobs.lock().unwrap();
            jobs.0.push_back(job);
            jobs.1.take()
        };
        if let Some(waker) = waker {
            waker.wake();
        }
    }

    fn next(&self) -> impl Future<Output = J> + '_ {
        std::future::poll_fn(move |cx| {
            let mut jobs = self.jobs.lock().unwrap();
            match jobs.0.pop_front() {
                Some(job) => Poll::Ready(job),
                None => {
                    jobs.1 = Some(cx.waker().clone());
                    Poll::Pending
                }
            }
        })
    }
}

/// The two long-lived workers: one OS thread running a green runtime, one
/// running a stackless executor. Jobs become new green threads / tasks.
pub struct Workers {
    green: Arc<Mailbox<Job>>,
    task: Arc<Mailbox<TaskJob>>,
}

/// The workers shared by all tests of a binary.
pub fn workers() -> &'static Workers {
    static WORKERS: OnceLock<Workers> = OnceLock::new();
    WORKERS.get_or_init(|| {
        let green_box = Mailbox::<Job>::new();
        let task_box = Mailbox::<TaskJob>::new();
        let inbox = green_box.clone();
        thread::Builder::new()
            .name("green-worker".into())
            .spawn(move || {
                green::run(move || {
                    loop {
                        let job = greenloop_runtime::block_on(inbox.next());
                        green::spawn(job);
                    }
                })
            })
            .expect("spawn green worker");
        let inbox = task_box.clone();
        thread::Builder::new()
            .name("task-worker".into())
            .spawn(move || {
                let rt = task::Runtime::new().expect("task runtime");
                rt.block_on(async move {
                    loop {
                        let job = inbox.next().await;
                        task::spawn(job);
                    }
                })
            })
            .expect("spawn task worker");
        Workers { green: green_box, task: task_box }
    })
}

/// Runs `f` in `ctx` (blocking style in green threads and OS threads).
pub fn spawn_in(ctx: Ctx, f: impl FnOnce() + Send + 'static) {
    match ctx {
        Ctx::Green => workers().green.push(Box::new(f)),
        Ctx::Task => workers().task.push(Box::pin(async move { f() })),
        Ctx::Thread => {
            thread::spawn(f);
        }
    }
}

/// Runs `future` to completion in `ctx`: awaited by a task, or
/// `block_on`'d by a green thread or an OS thread.
pub fn run_in(ctx: Ctx, future: impl Future<Output = ()> + Send + 'static) {
    match ctx {
        Ctx::Task => workers().task.push(Box::pin(future)),
        Ctx::Green | Ctx::Thread => spawn_in(ctx, move || greenloop_runtime::block_on(future)),
    }
}

/// The outcome of a tracked operation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome<R> {
    Done(R),
    Cancelled,
}

struct OpState<R> {
    /// The operation's future returned `Pending` at least once.
    waited: bool,
    outcome: Option<Outcome<R>>,
    cancel: bool,
    waker: Option<Waker>,
}

struct OpShared<R> {
    state: Mutex<OpState<R>>,
    changed: Condvar,
}

/// The test thread's handle on an operation running in some context.
pub struct Op<R> {
    shared: Arc<OpShared<R>>,
    pub ctx: Ctx,
    pub label: String,
}

impl<R> fmt::Debug for Op<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Op({} in {:?})", self.label, self.ctx)
    }
}

/// Whether an operation finished at its first poll or waits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Start {
    Finished,
    Waiting,
}

/// Starts `future` in `ctx` and returns its handle.
pub fn start<F, R>(ctx: Ctx, label: impl Into<String>, future: F) -> Op<R>
where
    F: Future<Output = R> + Send + 'static,
    R: Send + 'static,
{
    let shared = Arc::new(OpShared {
        state: Mutex::new(OpState { waited: false, outcome: None, cancel: false, waker: None }),
        changed: Condvar::new(),
    });
    let tracked = shared.clone();
    run_in(ctx, Tracked { future: Some(Box::pin(future)), shared: tracked });
    Op { shared, ctx, label: label.into() }
}

impl<R: fmt::Debug> Op<R> {
    /// Waits until the operation finished or returned `Pending` once.
    pub fn started(&self) -> Start {
        let deadline = Instant::now() + PATIENCE;
        let mut state = self.shared.state.lock().unwrap();
        loop {
            if state.outcome.is_some() {
                return Start::Finished;
            }
            if state.waited {
                return Start::Waiting;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(!left.is_zero(), "{self:?} neither finished nor waited within {PATIENCE:?}");
            state = self.shared.changed.wait_timeout(state, left).unwrap().0;
        }
    }

    /// Waits for the outcome.
    ///
    /// # Panics
    ///
    /// After [`PATIENCE`]: a lost wake-up or a deadlock.
    pub fn outcome(&self) -> Outcome<R>
    where
        R: Clone,
    {
        let deadline = Instant::now() + PATIENCE;
        let mut state = self.shared.state.lock().unwrap();
        loop {
            if let Some(outcome) = &state.outcome {
                return outcome.clone();
            }
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(!left.is_zero(), "{self:?} did not finish within {PATIENCE:?} (lost wake-up?)");
            state = self.shared.changed.wait_timeout(state, left).unwrap().0;
        }
    }

    /// The value of a finished (not cancelled) operation.
    pub fn value(&self) -> R
    where
        R: Clone,
    {
        match self.outcome() {
            Outcome::Done(value) => value,
            Outcome::Cancelled => panic!("{self:?} was cancelled"),
        }
    }

    /// The outcome if it is already there.
    pub fn peek(&self) -> Option<Outcome<R>>
    where
        R: Clone,
    {
        self.shared.state.lock().unwrap().outcome.clone()
    }

    /// Asks the operation to drop its future (if still pending) and waits
    /// until it did or finished; returns the outcome.
    pub fn cancel(&self) -> Outcome<R>
    where
        R: Clone,
    {
        let waker = {
            let mut state = self.shared.state.lock().unwrap();
            state.cancel = true;
            state.waker.take()
        };
        if let Some(waker) = waker {
            waker.wake();
        }
        self.outcome()
    }
}

/// Polls the operation's future, reporting `Pending` and honouring
/// cancellation (the future is dropped in its own context).
struct Tracked<F: Future> {
    future: Option<Pin<Box<F>>>,
    shared: Arc<OpShared<F::Output>>,
}

impl<F: Future> Future for Tracked<F> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        if this.shared.state.lock().unwrap().cancel {
            this.future = None;
            return this.finish(Outcome::Cancelled);
        }
        let Some(future) = &mut this.future else { return Poll::Ready(()) };
        match future.as_mut().poll(cx) {
            Poll::Ready(value) => {
                this.future = None;
                this.finish(Outcome::Done(value))
            }
            Poll::Pending => {
                let mut state = this.shared.state.lock().unwrap();
                if state.cancel {
                    drop(state);
                    this.future = None;
                    return this.finish(Outcome::Cancelled);
                }
                state.waker = Some(cx.waker().clone());
                if !state.waited {
                    state.waited = true;
                    this.shared.changed.notify_all();
                }
                Poll::Pending
            }
        }
    }
}

impl<F: Future> Tracked<F> {
    fn finish(&mut self, outcome: Outcome<F::Output>) -> Poll<()> {
        self.shared.state.lock().unwrap().outcome = Some(outcome);
        self.shared.changed.notify_all();
        Poll::Ready(())
    }
}

/// Polls `future` exactly once with the caller's waker, then drops it: a
/// cancellation right after the wait was registered. `None` if it was
/// pending.
pub async fn poll_once_then_drop<F: Future>(future: F) -> Option<F::Output> {
    let mut future = Box::pin(future);
    std::future::poll_fn(move |cx| {
        Poll::Ready(match future.as_mut().poll(cx) {
            Poll::Ready(value) => Some(value),
            Poll::Pending => None,
        })
    })
    .await
}

/// Polls `future` once with a no-op waker.
pub fn poll_once<F: Future + Unpin>(future: &mut F) -> Poll<F::Output> {
    let mut cx = Context::from_waker(Waker::noop());
    Pin::new(future).poll(&mut cx)
}

/// A small deterministic PRNG for the concurrent tests (xorshift).
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}
