//! The stackless executor through its public API: spawning and joining,
//! aborts, panics, shutdown, foreign wakes, fairness, timers, intervals
//! and the blocking pool.
//!
//! Every test runs under [`watchdog`]: on its own OS thread (so with a
//! fresh reactor), failing instead of hanging if it takes more than 30 s.
//! Timer tests assert order and lower bounds, never exact durations.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::panic::{self, AssertUnwindSafe};
use std::pin::Pin;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::thread::{self, ThreadId};
use std::time::{Duration, Instant};

use greenloop_runtime::reactor::Reactor;
use greenloop_runtime::task::{self, JoinError, Runtime};
use greenloop_runtime::time::{self, MissedTickBehavior};
use greenloop_runtime::{block_on, blocking, green};

mod watchdog;

/// How long a test body may run before the test fails as hung.
const WATCHDOG: Duration = Duration::from_secs(30);

/// Runs `f` on a fresh OS thread and returns its result; panics if it
/// takes longer than [`WATCHDOG`], and re-raises its panic if it panics.
fn watchdog<R: Send + 'static>(f: impl FnOnce() -> R + Send + 'static) -> R {
    watchdog::watchdog(WATCHDOG, f)
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> &str {
    payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("<non-string payload>")
}

/// Runs the closure it holds when dropped.
struct OnDrop<F: FnMut()>(F);

impl<F: FnMut()> Drop for OnDrop<F> {
    fn drop(&mut self) {
        (self.0)();
    }
}

/// The threads that ran [`drop_probe`]s' drops.
type DroppedOn = Arc<Mutex<Vec<ThreadId>>>;

/// Counts a drop in `counter`, recording the dropping thread in `threads`.
fn drop_probe(
    counter: &Arc<AtomicUsize>,
    threads: &DroppedOn,
) -> OnDrop<impl FnMut() + Send + 'static> {
    let (counter, threads) = (counter.clone(), threads.clone());
    OnDrop(move || {
        counter.fetch_add(1, SeqCst);
        threads.lock().unwrap().push(thread::current().id());
    })
}

/// Whether every recorded drop ran on this thread.
fn all_on_this_thread(threads: &DroppedOn) -> bool {
    threads.lock().unwrap().iter().all(|&id| id == thread::current().id())
}

/// A future made ready by another thread: `(ready, waker)` under one lock,
/// so a wake can be neither lost nor early.
#[derive(Clone, Default)]
struct Signal(Arc<Mutex<(bool, Option<Waker>)>>);

impl Signal {
    /// Waits until a poll has registered a waker: the awaiting task is
    /// parked on this signal (the watchdog bounds the wait).
    fn wait_until_awaited(&self) {
        while self.0.lock().unwrap().1.is_none() {
            thread::yield_now();
        }
    }

    fn fire(&self) {
        let waker = {
            let mut state = self.0.lock().unwrap();
            state.0 = true;
            state.1.take()
        };
        if let Some(waker) = waker {
            waker.wake();
        }
    }
}

impl Future for Signal {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let mut state = self.0.lock().unwrap();
        if state.0 {
            return Poll::Ready(());
        }
        state.1 = Some(cx.waker().clone());
        Poll::Pending
    }
}

// ----- spawn, join, detach ------------------------------------------------------

#[test]
fn spawn_and_await_values() {
    watchdog(|| {
        let rt = Runtime::new().unwrap();
        let outside = rt.spawn(async { "spawned before block_on" });
        let (a, b, c) = rt.block_on(async {
            let a = task::spawn(async { 1u8 });
            let b = task::spawn(async { String::from("two") });
            let c = task::spawn(async {
                task::yield_now().await;
                vec![3u32; 3]
            });
            (a.await.unwrap(), b.await.unwrap(), c.await.unwrap())
        });
        assert_eq!((a, b.as_str(), c), (1, "two", vec![3, 3, 3]));
        assert_eq!(rt.block_on(outside).unwrap(), "spawned before block_on");
        assert_eq!(rt.live_tasks(), 0);
    });
}

#[test]
fn ten_thousand_tasks_are_spawned_and_awaited() {
    watchdog(|| {
        let rt = Runtime::new().unwrap();
        let total = rt.block_on(async {
            let handles: Vec<_> = (0..10_000u64)
                .map(|i| {
                    task::spawn(async move {
                        if i % 3 == 0 {
                            task::yield_now().await;
                        }
                        i
                    })
                })
                .collect();
            let mut total = 0;
            for handle in handles {
                total += handle.await.unwrap();
            }
            total
        });
        assert_eq!(total, 10_000 * 9_999 / 2);
        assert_eq!(rt.live_tasks(), 0);
    });
}

#[test]
fn spawn_local_runs_a_non_send_future() {
    watchdog(|| {
        let rt = Runtime::new().unwrap();
        let shared = Rc::new(Cell::new(0));
        let s = shared.clone();
        let handle = rt.spawn_local(async move {
            for _ in 0..3 {
                s.set(s.get() + 1);
                task::yield_now().await;
            }
            Rc::new(s.get())
        });
        let out = rt.block_on(async {
            let s = shared.clone();
            let inner = task::spawn_local(async move { s.set(s.get() + 10) });
            inner.await.unwrap();
            handle.await.unwrap()
        });
        assert_eq!(*out, 3 + 10);
        assert_eq!(shared.get(), 13);
        assert_eq!(rt.live_tasks(), 0);
    });
}

#[test]
fn a_detached_task_runs_to_completion() {
    watchdog(|| {
        let rt = Runtime::new().unwrap();
        let done = Arc::new(AtomicBool::new(false));
        let d = done.clone();
        rt.block_on(async move {
            let handle = task::spawn(async move {
                time::sleep(Duration::from_millis(5)).await;
                task::yield_now().await;
                d.store(true, SeqCst);
            });
            drop(handle);
            while !done.load(SeqCst) {
                time::sleep(Duration::from_millis(1)).await;
            }
        });
        assert_eq!(rt.live_tasks(), 0);
    });
}

#[test]
fn a_panicking_task_does_not_take_the_executor_down() {
    watchdog(|| {
        let rt = Runtime::new().unwrap();
        let (err, str_err, later) = rt.block_on(async {
            let boom = task::spawn(async {
                task::yield_now().await;
                panic!("boom {}", 7);
            });
            let str_boom = task::spawn(async { panic!("static boom") });
            let later: Vec<_> = (0..10).map(|i| task::spawn(async move { i * 2 })).collect();
            let mut sum = 0;
            for handle in later {
                sum += handle.await.unwrap();
            }
            (boom.await.unwrap_err(), str_boom.await.unwrap_err(), sum)
        });
        assert_eq!(later, 90);
        assert!(err.is_panic() && !err.is_cancelled());
        assert_eq!(err.to_string(), "task panicked: boom 7");
        assert_eq!(panic_message(&*err.into_panic()), "boom 7");
        assert_eq!(panic_message(&*str_err.into_panic()), "static boom");
        // and the runtime still works afterwards
        assert_eq!(rt.block_on(rt.spawn(async { 5 })).unwrap(), 5);
        assert_eq!(rt.live_tasks(), 0);
    });
}

// ----- abort and shutdown -------------------------------------------------------

fn abort_a_sleeping_task(from_another_thread: bool) {
    let rt = Runtime::new().unwrap();
    let drops = Arc::new(AtomicUsize::new(0));
    let dropped_on = DroppedOn::default();
    let guard = drop_probe(&drops, &dropped_on);
    let timers = Reactor::current().timer_count();
    let result = rt.block_on(async {
        let sleeper = task::spawn(async move {
            let _guard = guard;
            time::sleep(Duration::from_secs(3_600)).await;
            1
        });
        task::yield_now().await; // the sleeper runs and arms its timer
        assert_eq!(Reactor::current().timer_count(), timers + 1);
        assert!(!sleeper.is_finished());
        if from_another_thread {
            thread::scope(|s| s.spawn(|| sleeper.abort()).join().unwrap());
        } else {
            sleeper.abort();
        }
        assert_eq!(drops.load(SeqCst), 0, "dropped by the executor, not by abort");
        sleeper.await
    });
    assert!(result.unwrap_err().is_cancelled());
    assert_eq!(drops.load(SeqCst), 1);
    assert!(all_on_this_thread(&dropped_on));
    assert_eq!(Reactor::current().timer_count(), timers, "the Sleep's timer was cancelled");
    assert_eq!(rt.live_tasks(), 0);
}

#[test]
fn aborting_a_sleeping_task_drops_it_on_the_executor_thread() {
    watchdog(|| abort_a_sleeping_task(false));
}

#[test]
fn aborting_from_another_thread_drops_it_on_the_executor_thread() {
    watchdog(|| abort_a_sleeping_task(true));
}

#[test]
fn dropping_the_runtime_cancels_pending_tasks() {
    watchdog(|| {
        let drops = Arc::new(AtomicUsize::new(0));
        let dropped_on = DroppedOn::default();
        let timers = Reactor::current().timer_count();
        let rt = Runtime::new().unwrap();
        // sleeping, pending forever, and woken from outside after block_on
        let signal = Signal::default();
        let (g1, g2, g3) = (
            drop_probe(&drops, &dropped_on),
            drop_probe(&drops, &dropped_on),
            drop_probe(&drops, &dropped_on),
        );
        let s = signal.clone();
        let spawned = rt.block_on(async move {
            let a = task::spawn(async move {
                let _g = g1;
                time::sleep(Duration::from_secs(3_600)).await;
                1
            });
            let b = task::spawn(async move {
                let _g = g2;
                std::future::pending::<()>().await;
                2
            });
            let c = task::spawn(async move {
                let _g = g3;
                s.await;
                std::future::pending::<()>().await;
                3
            });
            task::yield_now().await;
            vec![a, b, c]
        });
        let mut handles = spawned;
        // spawned after block_on returned: never polled
        let g = drop_probe(&drops, &dropped_on);
        handles.push(rt.spawn(async move {
            let _g = g;
            0
        }));
        assert_eq!(rt.live_tasks(), 4);
        assert_eq!(Reactor::current().timer_count(), timers + 1);
        signal.fire(); // queued remotely: no executor runs now
        assert_eq!(drops.load(SeqCst), 0);
        drop(rt);
        assert_eq!(drops.load(SeqCst), 4, "every pending future was dropped");
        assert!(all_on_this_thread(&dropped_on));
        assert_eq!(Reactor::current().timer_count(), timers);
        for handle in handles {
            assert!(handle.is_finished());
            assert!(block_on(handle).unwrap_err().is_cancelled());
        }
    });
}

#[test]
fn shutdown_cancels_tasks_spawned_and_woken_by_dropped_futures() {
    watchdog(|| {
        let drops = Arc::new(AtomicUsize::new(0));
        let dropped_on = DroppedOn::default();
        let rt = Runtime::new().unwrap();
        let signal = Signal::default();
        let late_handle = Rc::new(RefCell::new(None));
        let (g_a, g_b, g_c) = (
            drop_probe(&drops, &dropped_on),
            drop_probe(&drops, &dropped_on),
            drop_probe(&drops, &dropped_on),
        );
        let (s, late) = (signal.clone(), late_handle.clone());
        // A's drop (during shutdown) spawns C and wakes B
        let mut g_c = Some(g_c);
        let spawn_c_and_wake_b = OnDrop(move || {
            if let Some(g_c) = g_c.take() {
                *late.borrow_mut() = Some(task::spawn(async move {
                    let _g = g_c;
                    std::future::pending::<()>().await;
                }));
            }
            s.fire();
        });
        let (a, b) = rt.block_on(async move {
            let a = task::spawn_local(async move {
                let _guards = (g_a, spawn_c_and_wake_b);
                std::future::pending::<()>().await;
            });
            let b = task::spawn(async move {
                let _g = g_b;
                signal.await;
                std::future::pending::<()>().await;
            });
            task::yield_now().await;
            (a, b)
        });
        drop(rt);
        assert_eq!(drops.load(SeqCst), 3, "A, B and the C spawned while A was dropped");
        assert!(all_on_this_thread(&dropped_on));
        let c = late_handle.borrow_mut().take().expect("C was spawned during shutdown");
        for handle in [a, b, c] {
            assert!(block_on(handle).unwrap_err().is_cancelled());
        }
    });
}

#[test]
fn tasks_woken_between_block_on_calls_run_in_the_next_one() {
    watchdog(|| {
        let rt = Runtime::new().unwrap();
        let (foreign, local) = (Signal::default(), Signal::default());
        let (f, l) = (foreign.clone(), local.clone());
        let a = rt.spawn(async move {
            f.await;
            "woken from another thread"
        });
        let b = rt.spawn(async move {
            l.await;
            "woken from this thread"
        });
        rt.block_on(task::yield_now()); // both run once and wait
        assert!(!a.is_finished() && !b.is_finished());
        thread::scope(|scope| scope.spawn(|| foreign.fire()).join().unwrap());
        local.fire(); // no executor runs on this thread now: the remote path
        assert_eq!(rt.block_on(a).unwrap(), "woken from another thread");
        assert_eq!(rt.block_on(b).unwrap(), "woken from this thread");
        assert_eq!(rt.live_tasks(), 0);
    });
}

#[test]
fn dropping_a_runtime_inside_another_block_on() {
    watchdog(|| {
        let outer = Runtime::new().unwrap();
        let drops = Arc::new(AtomicUsize::new(0));
        let dropped_on = DroppedOn::default();
        let g = drop_probe(&drops, &dropped_on);
        outer.block_on(async {
            let inner = Runtime::new().unwrap();
            let handle = inner.spawn(async move {
                let _g = g;
                std::future::pending::<()>().await;
            });
            drop(inner);
            assert_eq!(drops.load(SeqCst), 1);
            assert!(handle.await.unwrap_err().is_cancelled());
            // the outer runtime is still the current one
            assert_eq!(task::spawn(async { 4 }).await.unwrap(), 4);
        });
    });
}

// ----- foreign wakes --------------------------------------------------------------

#[test]
fn a_wake_from_a_foreign_thread_reaches_a_task() {
    watchdog(|| {
        let rt = Runtime::new().unwrap();
        let signal = Signal::default();
        let s = signal.clone();
        let waker_thread = thread::spawn(move || {
            s.wait_until_awaited();
            s.fire();
        });
        let out = rt.block_on(async move {
            let handle = task::spawn(async move {
                signal.await;
                "woken"
            });
            handle.await.unwrap()
        });
        assert_eq!(out, "woken");
        waker_thread.join().unwrap();
    });
}

/// Counts its polls; ready once it sees every foreign wake counted in
/// `sent` (bumped before each wake). Starts the waking threads on its first
/// poll, once its waker is published.
struct Hammered {
    sent: Arc<AtomicUsize>,
    waker: Arc<Mutex<Option<Waker>>>,
    threads: Vec<thread::JoinHandle<()>>,
    polls: usize,
}

const HAMMER_THREADS: usize = 4;
const HAMMER_WAKES: usize = 1_000;

impl Future for Hammered {
    type Output = (usize, Vec<thread::JoinHandle<()>>);

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.polls += 1;
        *self.waker.lock().unwrap() = Some(cx.waker().clone());
        if self.polls == 1 {
            for _ in 0..HAMMER_THREADS {
                let (sent, waker) = (self.sent.clone(), self.waker.clone());
                self.threads.push(thread::spawn(move || {
                    for _ in 0..HAMMER_WAKES {
                        sent.fetch_add(1, SeqCst);
                        let waker = waker.lock().unwrap().clone().unwrap();
                        waker.wake();
                    }
                }));
            }
        }
        if self.sent.load(SeqCst) == HAMMER_THREADS * HAMMER_WAKES {
            return Poll::Ready((self.polls, std::mem::take(&mut self.threads)));
        }
        Poll::Pending
    }
}

#[test]
fn four_threads_waking_a_task_never_lose_the_last_wake() {
    // The task completes only if it is polled after the last increment,
    // which precedes the last wake: a lost wake hangs, and the watchdog fails.
    let polls = watchdog(|| {
        let rt = Runtime::new().unwrap();
        let sent = Arc::new(AtomicUsize::new(0));
        let future = Hammered { sent, waker: Arc::default(), threads: Vec::new(), polls: 0 };
        let (polls, threads) = rt.block_on(async { task::spawn(future).await.unwrap() });
        assert_eq!(rt.live_tasks(), 0);
        for t in threads {
            t.join().unwrap();
        }
        polls
    });
    // One poll if every wake landed during the first (a loaded machine may
    // run the wakers to the end before the first poll reads `sent`).
    assert!((1..=HAMMER_THREADS * HAMMER_WAKES + 1).contains(&polls), "{polls} polls");
}

// ----- fairness -------------------------------------------------------------------

#[test]
fn yield_now_round_robins() {
    watchdog(|| {
        let rt = Runtime::new().unwrap();
        let trace = Rc::new(RefCell::new(Vec::new()));
        rt.block_on(async {
            let handles: Vec<_> = (0..3)
                .map(|id| {
                    let trace = trace.clone();
                    task::spawn_local(async move {
                        for _ in 0..5 {
                            trace.borrow_mut().push(id);
                            task::yield_now().await;
                        }
                    })
                })
                .collect();
            for handle in handles {
                handle.await.unwrap();
            }
        });
        let expected: Vec<i32> = (0..5).flat_map(|_| 0..3).collect();
        assert_eq!(*trace.borrow(), expected);
    });
}

// ----- time -------------------------------------------------------------------------

#[test]
fn sleeping_tasks_finish_in_deadline_order() {
    watchdog(|| {
        let rt = Runtime::new().unwrap();
        let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
        let mut next = move || {
            seed = seed
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (seed >> 33) % 40
        };
        let durations: Vec<u64> = (0..200).map(|_| next()).collect();
        let finished = Rc::new(Cell::new(0usize));
        // (duration, deadline, finish position)
        let results = rt.block_on(async {
            let handles: Vec<_> = durations
                .iter()
                .map(|&ms| {
                    let finished = finished.clone();
                    task::spawn_local(async move {
                        let start = Instant::now();
                        let sleep = time::sleep(Duration::from_millis(ms));
                        let deadline = sleep.deadline();
                        sleep.await;
                        let slept = start.elapsed();
                        assert!(slept >= Duration::from_millis(ms), "{ms} ms slept {slept:?}");
                        assert!(Instant::now() >= deadline);
                        let position = finished.get();
                        finished.set(position + 1);
                        (ms, deadline, position)
                    })
                })
                .collect();
            let mut results = Vec::new();
            for handle in handles {
                results.push(handle.await.unwrap());
            }
            results
        });
        assert_eq!(finished.get(), 200);
        // Each sleep's deadline is its own start plus its duration, so
        // order is asserted on deadlines at least 2 ms apart (for tasks
        // started in the same millisecond, durations 2 ms apart).
        let gap = Duration::from_millis(2);
        for a in &results {
            for b in &results {
                if b.1 >= a.1 + gap {
                    assert!(
                        a.2 < b.2,
                        "{} ms (#{}) finished after {} ms (#{})",
                        a.0,
                        a.2,
                        b.0,
                        b.2
                    );
                }
            }
        }
        assert_eq!(rt.live_tasks(), 0);
    });
}

#[test]
fn timeout_elapses_on_a_pending_future_and_passes_a_ready_one() {
    watchdog(|| {
        let timers = Reactor::current().timer_count();
        let start = Instant::now();
        let r = block_on(time::timeout(Duration::from_millis(10), std::future::pending::<u8>()));
        assert_eq!(r.unwrap_err().to_string(), "deadline has elapsed");
        assert!(start.elapsed() >= Duration::from_millis(10));
        assert_eq!(block_on(time::timeout(Duration::from_secs(60), async { 3 })), Ok(3));
        let slow_then_ready = async {
            time::sleep(Duration::from_millis(2)).await;
            4
        };
        assert_eq!(block_on(time::timeout(Duration::from_secs(60), slow_then_ready)), Ok(4));
        assert_eq!(Reactor::current().timer_count(), timers);
        // the same inside a task runtime
        let rt = Runtime::new().unwrap();
        let (a, b) = rt.block_on(async {
            let a =
                task::spawn(time::timeout(Duration::from_millis(5), std::future::pending::<()>()));
            let b = task::spawn(time::timeout(Duration::from_secs(60), async { 'b' }));
            (a.await.unwrap(), b.await.unwrap())
        });
        assert!(a.is_err());
        assert_eq!(b, Ok('b'));
        assert_eq!(Reactor::current().timer_count(), timers);
    });
}

#[test]
fn dropping_a_sleep_cancels_its_timer() {
    watchdog(|| {
        let reactor = Reactor::current();
        let baseline = reactor.timer_count();
        let mut cx = Context::from_waker(Waker::noop());
        let mut sleep = Box::pin(time::sleep(Duration::from_secs(3_600)));
        assert!(sleep.as_mut().poll(&mut cx).is_pending());
        assert!(sleep.as_mut().poll(&mut cx).is_pending()); // re-poll keeps one timer
        assert_eq!(reactor.timer_count(), baseline + 1);
        drop(sleep);
        assert_eq!(reactor.timer_count(), baseline);
        let mut timeout =
            Box::pin(time::timeout(Duration::from_secs(3_600), std::future::pending::<()>()));
        assert!(timeout.as_mut().poll(&mut cx).is_pending());
        assert_eq!(reactor.timer_count(), baseline + 1);
        drop(timeout);
        assert_eq!(reactor.timer_count(), baseline);
        let mut sleep = Box::pin(time::sleep(Duration::from_secs(3_600)));
        assert!(sleep.as_mut().poll(&mut cx).is_pending());
        sleep.as_mut().reset(Instant::now() + Duration::from_secs(7_200));
        assert_eq!(reactor.timer_count(), baseline, "reset cancels the armed timer");
        assert!(sleep.as_mut().poll(&mut cx).is_pending());
        assert_eq!(reactor.timer_count(), baseline + 1);
        drop(sleep);
        assert_eq!(reactor.timer_count(), baseline);
    });
}

const PERIOD: Duration = Duration::from_millis(20);

/// An interval at `start` whose first tick was taken, then a thread block
/// of 3.5 periods. Returns the interval and `start`.
fn late_interval(behavior: MissedTickBehavior) -> (time::Interval, Instant) {
    let start = Instant::now();
    let mut iv = time::interval_at(start, PERIOD);
    iv.set_missed_tick_behavior(behavior);
    assert_eq!(iv.period(), PERIOD);
    assert_eq!(block_on(iv.tick()), start);
    thread::sleep(PERIOD * 7 / 2);
    (iv, start)
}

/// Polls once with a no-op waker: the tick if it is due now.
fn tick_now(iv: &mut time::Interval) -> Option<Instant> {
    match iv.poll_tick(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(at) => Some(at),
        Poll::Pending => None,
    }
}

/// After a tick at `previous`, returned by the `tick` call just made: if
/// that call returned less than a period late, the next tick is on time, a
/// period later; if the thread was descheduled longer, the policy applies
/// again, and the next tick is only later.
fn assert_following_tick(iv: &mut time::Interval, previous: Instant) {
    let taken = Instant::now();
    let following = block_on(iv.tick());
    if taken < previous + PERIOD {
        assert_eq!(following, previous + PERIOD);
    } else {
        assert!(following >= previous + PERIOD);
    }
}

#[test]
fn interval_burst_fires_the_missed_ticks_at_once() {
    watchdog(|| {
        let (mut iv, start) = late_interval(MissedTickBehavior::Burst);
        for n in 1..=3 {
            assert_eq!(tick_now(&mut iv), Some(start + PERIOD * n), "missed tick {n} is due");
        }
        assert_eq!(block_on(iv.tick()), start + PERIOD * 4);
        assert!(Instant::now() >= start + PERIOD * 4);
        assert_eq!(block_on(iv.tick()), start + PERIOD * 5);
    });
}

#[test]
fn interval_skip_jumps_to_the_next_point_of_the_schedule() {
    watchdog(|| {
        let (mut iv, start) = late_interval(MissedTickBehavior::Skip);
        let before = Instant::now();
        assert_eq!(tick_now(&mut iv), Some(start + PERIOD), "the late tick itself");
        let after = Instant::now();
        let next = block_on(iv.tick());
        assert!(Instant::now() >= next);
        let offset = next.duration_since(start).as_nanos();
        assert_eq!(offset % PERIOD.as_nanos(), 0, "{next:?} is on the schedule");
        assert!(offset / PERIOD.as_nanos() >= 4);
        // the first point of the schedule after the late tick was taken
        assert!(next > before && next - PERIOD <= after, "{:?}", next - start);
        assert_following_tick(&mut iv, next);
    });
}

#[test]
fn interval_delay_restarts_the_schedule_from_now() {
    watchdog(|| {
        let (mut iv, start) = late_interval(MissedTickBehavior::Delay);
        let before = Instant::now();
        assert_eq!(tick_now(&mut iv), Some(start + PERIOD), "the late tick itself");
        let after = Instant::now();
        let next = block_on(iv.tick());
        assert!(Instant::now() >= next);
        assert!(next >= before + PERIOD && next <= after + PERIOD, "{:?}", next - start);
        assert_following_tick(&mut iv, next);
    });
}

// ----- spawn_blocking -------------------------------------------------------------

#[test]
fn a_task_awaits_spawn_blocking_without_blocking_the_executor() {
    watchdog(|| {
        let rt = Runtime::new().unwrap();
        let out = rt.block_on(async {
            let (tx, rx) = mpsc::channel::<u32>();
            // the job waits for a task on this executor: it must keep running
            let job = blocking::spawn_blocking(move || rx.recv().unwrap() * 2);
            let sender = task::spawn(async move {
                time::sleep(Duration::from_millis(1)).await;
                tx.send(21).unwrap();
            });
            let out = job.await.unwrap();
            sender.await.unwrap();
            out
        });
        assert_eq!(out, 42);
    });
}

#[test]
fn a_green_thread_joins_spawn_blocking() {
    let out = watchdog(|| {
        green::run(|| {
            let (tx, rx) = mpsc::channel::<u32>();
            let job = blocking::spawn_blocking(move || rx.recv().unwrap() + 1);
            // joining parks only this green thread: the sender still runs
            let sender = green::spawn(move || {
                green::sleep(Duration::from_millis(1));
                tx.send(41).unwrap();
            });
            let out = job.join().unwrap();
            sender.join().unwrap();
            out
        })
    });
    assert_eq!(out, 42);
}

#[test]
fn a_pool_of_two_runs_at_most_two_jobs_at_once() {
    watchdog(|| {
        let pool = blocking::Pool::new(2, Duration::from_secs(1));
        assert_eq!(pool.max_threads(), 2);
        let active = Arc::new(AtomicUsize::new(0));
        let max = Arc::new(AtomicUsize::new(0));
        let rt = Runtime::new().unwrap();
        let sum = rt.block_on(async {
            let jobs: Vec<_> = (0..10u32)
                .map(|i| {
                    let (active, max) = (active.clone(), max.clone());
                    pool.spawn(move || {
                        let now = active.fetch_add(1, SeqCst) + 1;
                        max.fetch_max(now, SeqCst);
                        thread::sleep(Duration::from_millis(5));
                        active.fetch_sub(1, SeqCst);
                        i
                    })
                })
                .collect();
            let mut sum = 0;
            for job in jobs {
                sum += job.await.unwrap();
            }
            sum
        });
        assert_eq!(sum, 45, "all 10 jobs completed");
        let max = max.load(SeqCst);
        assert!((1..=2).contains(&max), "{max} jobs ran at once");
        assert!(pool.threads() <= 2);
    });
}

#[test]
fn a_panicking_blocking_job_gives_panicked() {
    watchdog(|| {
        let rt = Runtime::new().unwrap();
        let err = rt.block_on(async {
            blocking::spawn_blocking(|| -> u32 { panic!("job failed") }).await.unwrap_err()
        });
        assert!(err.is_panic());
        assert_eq!(panic_message(&*err.into_panic()), "job failed");
        // joined blocking-style too
        let err =
            blocking::spawn_blocking(|| -> u32 { panic!("job failed again") }).join().unwrap_err();
        assert!(matches!(err, JoinError::Panicked(_)));
    });
}

// ----- misuse ------------------------------------------------------------------------

#[test]
fn nested_block_on_panics_with_a_clear_message() {
    watchdog(|| {
        let rt = Runtime::new().unwrap();
        let other = Runtime::new().unwrap();
        let (same, different) = rt.block_on(async {
            let same = panic::catch_unwind(AssertUnwindSafe(|| rt.block_on(async { 1 })));
            let different = panic::catch_unwind(AssertUnwindSafe(|| other.block_on(async { 2 })));
            // the outer runtime is unharmed
            assert_eq!(task::spawn(async { 3 }).await.unwrap(), 3);
            (same.unwrap_err(), different.unwrap_err())
        });
        for payload in [same, different] {
            let message = panic_message(&*payload);
            assert!(
                message.contains("block_on") && message.contains("already running"),
                "{message}"
            );
        }
        // after the outer block_on returned, both runtimes work
        assert_eq!(rt.block_on(async { 4 }), 4);
        assert_eq!(other.block_on(async { 5 }), 5);
    });
}

#[test]
fn spawn_outside_a_runtime_panics_with_a_clear_message() {
    watchdog(|| {
        let payload = panic::catch_unwind(|| task::spawn(async {})).unwrap_err();
        assert!(panic_message(&*payload).contains("outside a task runtime"));
    });
}
