//! Public API that no other test reaches: `Interval::tick_blocking`,
//! `time::timeout_at`, the `*_blocking` semaphore acquires,
//! `blocking::Pool::try_spawn` and `Pool::spawn_async`.

use std::future::pending;
use std::sync::Arc;
use std::time::{Duration, Instant};

use greenloop_runtime::blocking::{Pool, PoolStats};
use greenloop_runtime::sync::Semaphore;
use greenloop_runtime::{block_on, green, time};

#[path = "watchdog/mod.rs"]
mod watchdog;
use watchdog::watchdog;

const LIMIT: Duration = Duration::from_secs(60);

/// Ticks three times with `tick_blocking`; checks each tick is the
/// scheduled instant and never comes before it.
fn three_blocking_ticks() {
    let period = Duration::from_millis(2);
    let start = Instant::now() + period;
    let mut ticks = time::interval_at(start, period);
    for n in 0..3 {
        let tick = ticks.tick_blocking();
        assert_eq!(tick, start + period * n, "tick {n} is the scheduled instant");
        assert!(Instant::now() >= tick, "tick {n} fired before its instant");
    }
}

#[test]
fn tick_blocking_ticks_on_schedule_in_green_and_os_threads() {
    watchdog(LIMIT, || {
        three_blocking_ticks();
        green::run(three_blocking_ticks);
    });
}

#[test]
fn timeout_at_fires_at_its_deadline_and_lets_a_ready_future_win() {
    watchdog(LIMIT, || {
        let deadline = Instant::now() + Duration::from_millis(3);
        assert!(block_on(time::timeout_at(deadline, pending::<()>())).is_err());
        assert!(Instant::now() >= deadline, "elapsed before the deadline");
        let past = Instant::now() - Duration::from_millis(1);
        assert_eq!(block_on(time::timeout_at(past, async { 5 })), Ok(5), "ready wins a tie");
        assert!(block_on(time::timeout_at(past, pending::<()>())).is_err());
        let far = Instant::now() + Duration::from_secs(3600);
        let got = green::run(move || block_on(time::timeout_at(far, async { "in time" })));
        assert_eq!(got, Ok("in time"));
    });
}

#[test]
fn blocking_semaphore_acquires_wait_for_permits() {
    watchdog(LIMIT, || {
        let sem = Arc::new(Semaphore::new(3));
        let one = sem.acquire_blocking().unwrap();
        let two = sem.acquire_many_blocking(2).unwrap();
        assert_eq!((one.num_permits(), two.num_permits()), (1, 2));
        assert_eq!(sem.available_permits(), 0);
        green::run(|| {
            let waiters: Vec<_> = [1, 2]
                .into_iter()
                .map(|n| {
                    let sem = sem.clone();
                    green::spawn(move || {
                        let permit = if n == 1 {
                            sem.acquire_owned_blocking()
                        } else {
                            sem.acquire_many_owned_blocking(n)
                        };
                        permit.unwrap().num_permits()
                    })
                })
                .collect();
            green::yield_now(); // both wait: no permits
            assert!(waiters.iter().all(|w| !w.is_finished()));
            drop(one);
            drop(two);
            let got: Vec<_> = waiters.into_iter().map(|w| w.join().unwrap()).collect();
            assert_eq!(got, [1, 2]);
        });
        assert_eq!(sem.available_permits(), 3, "owned permits return on drop");
        sem.close();
        assert!(sem.acquire_blocking().is_err());
        assert!(sem.acquire_many_blocking(2).is_err());
        assert!(sem.clone().acquire_owned_blocking().is_err());
        assert!(sem.clone().acquire_many_owned_blocking(2).is_err());
    });
}

#[test]
fn try_spawn_runs_jobs_and_reports_panics() {
    watchdog(LIMIT, || {
        let pool = Pool::new(2, Duration::from_secs(1));
        let handle = pool.try_spawn(|| 6 * 7).unwrap();
        assert_eq!(handle.join().unwrap(), 42);
        let panicked = pool.try_spawn(|| panic!("job failed")).unwrap();
        assert!(panicked.join().unwrap_err().is_panic());
        let from_green = green::run(|| pool.try_spawn(|| "green").unwrap().join().unwrap());
        assert_eq!(from_green, "green");
        assert!(pool.threads() <= 2);
    });
}

/// Waits (bounded by the test's watchdog) until `pool`'s counters satisfy
/// `ready`.
fn wait_for_stats(pool: &Pool, ready: impl Fn(PoolStats) -> bool) {
    while !ready(pool.stats()) {
        std::thread::yield_now();
    }
}

#[test]
fn a_full_queue_fails_try_spawn_and_makes_spawn_wait() {
    watchdog(LIMIT, || {
        let pool = Pool::bounded(1, Duration::from_secs(10), 2);
        assert_eq!(pool.max_queued(), 2);
        let (open_gate, gate) = std::sync::mpsc::channel::<()>();
        let busy = pool.try_spawn(move || gate.recv().unwrap()).unwrap();
        wait_for_stats(&pool, |s| s.threads == 1 && s.queued == 0); // the thread took it
        let queued: Vec<_> = (0..2).map(|i| pool.try_spawn(move || i).unwrap()).collect();
        assert_eq!(pool.stats().queued, 2);
        let err = pool.try_spawn(|| 99).unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::WouldBlock);
        assert!(err.to_string().contains("Pool::bounded"), "actionable: {err}");
        let spawner = {
            let pool = pool.clone();
            std::thread::spawn(move || pool.spawn(|| 3).join().unwrap())
        };
        wait_for_stats(&pool, |s| s.waiting_spawns == 1);
        assert!(!spawner.is_finished(), "spawn waits while the queue is full");
        open_gate.send(()).unwrap();
        busy.join().unwrap();
        let done: Vec<_> = queued.into_iter().map(|h| h.join().unwrap()).collect();
        assert_eq!(done, [0, 1]);
        assert_eq!(spawner.join().unwrap(), 3, "the waiting spawn got room and ran");
        let stats = pool.stats();
        assert_eq!((stats.queued, stats.waiting_spawns), (0, 0));
    });
}

/// A pool of one thread, busy until the sender is used, with its queue of
/// one job full; the handle of the busy job.
fn full_pool()
-> (Pool, std::sync::mpsc::Sender<()>, greenloop_runtime::blocking::BlockingHandle<()>) {
    let pool = Pool::bounded(1, Duration::from_secs(10), 1);
    let (open_gate, gate) = std::sync::mpsc::channel::<()>();
    let busy = pool.try_spawn(move || gate.recv().unwrap()).unwrap();
    wait_for_stats(&pool, |s| s.threads == 1 && s.queued == 0);
    drop(pool.try_spawn(|| ()).unwrap());
    assert_eq!(pool.stats().queued, 1);
    (pool, open_gate, busy)
}

#[test]
fn spawn_async_waits_for_room_without_blocking_the_executor() {
    watchdog(LIMIT, || {
        let (pool, open_gate, busy) = full_pool();
        let rt = greenloop_runtime::task::Runtime::new().unwrap();
        let (result, turns) = rt.block_on(async {
            let waiting = greenloop_runtime::task::spawn_local({
                let pool = pool.clone();
                async move { pool.spawn_async(|| 7).await.await.unwrap() }
            });
            // The executor keeps running other work while the spawn waits.
            let mut turns = 0u32;
            while pool.stats().waiting_spawns == 0 {
                greenloop_runtime::task::yield_now().await;
            }
            for _ in 0..100 {
                greenloop_runtime::task::yield_now().await;
                turns += 1;
            }
            assert!(!waiting.is_finished(), "the spawn waits while the queue is full");
            open_gate.send(()).unwrap();
            (waiting.await.unwrap(), turns)
        });
        busy.join().unwrap();
        assert_eq!((result, turns), (7, 100));
        assert_eq!(pool.stats().waiting_spawns, 0);
    });
}

/// A waker that counts its wakes.
struct CountWakes(std::sync::atomic::AtomicUsize);

impl std::task::Wake for CountWakes {
    fn wake(self: Arc<Self>) {
        self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }
}

#[test]
fn a_dropped_waiting_spawn_leaves_the_line_and_passes_on_its_wake() {
    use std::future::Future;
    use std::sync::atomic::Ordering::SeqCst;
    use std::task::{Context, Poll, Waker};

    watchdog(LIMIT, || {
        let (pool, open_gate, busy) = full_pool();
        let wakes: Vec<_> = (0..3).map(|_| Arc::new(CountWakes(0.into()))).collect();
        let mut spawns: Vec<_> =
            (0..3).map(|i| Some(Box::pin(pool.spawn_async(move || i)))).collect();
        for (spawn, wake) in spawns.iter_mut().zip(&wakes) {
            let waker = Waker::from(wake.clone());
            let poll = spawn.as_mut().unwrap().as_mut().poll(&mut Context::from_waker(&waker));
            assert!(poll.is_pending(), "the queue is full");
        }
        assert_eq!(pool.stats().waiting_spawns, 3);
        // The last in line gives up: it leaves the line, no one is woken.
        spawns[2] = None;
        assert_eq!(pool.stats().waiting_spawns, 2);
        // A pool thread takes a job: the first in line is woken ...
        open_gate.send(()).unwrap();
        busy.join().unwrap();
        wait_for_stats(&pool, |s| s.waiting_spawns == 1);
        assert_eq!(wakes[0].0.load(SeqCst), 1);
        // ... and, dropped before it used the room, passes the wake on.
        spawns[0] = None;
        assert_eq!(wakes[1].0.load(SeqCst), 1, "the wake went to the next in line");
        assert_eq!(wakes[2].0.load(SeqCst), 0);
        let waker = Waker::from(wakes[1].clone());
        let Poll::Ready(handle) =
            spawns[1].as_mut().unwrap().as_mut().poll(&mut Context::from_waker(&waker))
        else {
            panic!("the woken spawn found room");
        };
        assert_eq!(handle.join().unwrap(), 1);
        assert_eq!(pool.stats().waiting_spawns, 0);
    });
}
