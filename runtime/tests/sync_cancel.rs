//! Cancel safety under real concurrency: workers in all three contexts
//! drop pending futures at random points — by a timeout racing the wake-up,
//! or right after the first poll registered them — and the tests check that
//! no permit, lock, message or notification is lost and nothing deadlocks.
//! Every test runs under a watchdog that fails it instead of hanging.

mod sync_util;

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::task::Poll;
use std::time::{Duration, Instant};

use greenloop_runtime::sync::{Mutex, Notify, Semaphore, WaitGroup, mpsc, select};
use greenloop_runtime::{task, time};
use sync_util::{Ctx, Rng, poll_once_then_drop, start, watchdog};

const LIMIT: Duration = Duration::from_secs(120);
const CTXS: [Ctx; 3] = [Ctx::Green, Ctx::Task, Ctx::Thread];

/// How a worker waits this time.
#[derive(Clone, Copy, Debug)]
enum Mode {
    /// Until done.
    Plain,
    /// At most this many microseconds (the timer rounds up to 1 ms ticks,
    /// so this races real wake-ups).
    Timeout(u64),
    /// One poll, then drop: cancelled right after registering.
    PollOnce,
    /// Dropped when first woken, without polling again: a waiter that was
    /// just handed a permit, the lock, a slot or a notification gives it
    /// up before seeing it (or a spurious wake-up cancels it earlier).
    DropOnWake,
}

impl Mode {
    fn pick(rng: &mut Rng) -> Mode {
        match rng.below(5) {
            0 => Mode::Plain,
            1 => Mode::PollOnce,
            2 => Mode::DropOnWake,
            _ => Mode::Timeout(rng.below(2_000)),
        }
    }
}

/// Runs `future` in `mode`: `None` if it was cancelled before finishing.
async fn attempt<F: Future>(mode: Mode, future: F) -> Option<F::Output> {
    match mode {
        Mode::Plain => Some(future.await),
        Mode::Timeout(us) => time::timeout(Duration::from_micros(us), future).await.ok(),
        Mode::PollOnce => poll_once_then_drop(future).await,
        Mode::DropOnWake => {
            let mut future = Box::pin(future);
            let mut polled = false;
            std::future::poll_fn(move |cx| {
                if std::mem::replace(&mut polled, true) {
                    return Poll::Ready(None);
                }
                future.as_mut().poll(cx).map(Some)
            })
            .await
        }
    }
}

/// Holds on a little: a few yields (a task yields; `block_on` re-polls at
/// once), and now and then a 1 ms sleep, so that timeouts of waiters fire
/// while hand-offs are under way.
async fn jitter(rng: &mut Rng) {
    for _ in 0..rng.below(3) {
        task::yield_now().await;
    }
    if rng.below(8) == 0 {
        time::sleep(Duration::from_millis(1)).await;
    }
}

#[test]
fn semaphore_loses_no_permit() {
    watchdog(LIMIT, || {
        for seed in 1..=3u64 {
            let sem = Arc::new(Semaphore::new(3));
            let in_use = Arc::new(AtomicUsize::new(0));
            let workers: Vec<_> = (0..6)
                .map(|w| {
                    let (sem, in_use) = (sem.clone(), in_use.clone());
                    start(CTXS[w % 3], format!("worker {w}"), async move {
                        let mut rng = Rng::new(seed * 100 + w as u64);
                        let (mut acquired, mut cancelled) = (0, 0);
                        for _ in 0..150 {
                            let n = 1 + rng.below(3) as usize;
                            let mode = Mode::pick(&mut rng);
                            let Some(permit) = attempt(mode, sem.acquire_many(n)).await else {
                                cancelled += 1;
                                continue;
                            };
                            {
                                let permit = permit.unwrap();
                                let now = in_use.fetch_add(n, Ordering::SeqCst) + n;
                                assert!(now <= 3, "{now} permits in use out of 3");
                                jitter(&mut rng).await;
                                in_use.fetch_sub(n, Ordering::SeqCst);
                                drop(permit);
                                acquired += 1;
                            }
                        }
                        (acquired, cancelled)
                    })
                })
                .collect();
            let counts: Vec<(usize, usize)> = workers.iter().map(|w| w.value()).collect();
            let acquired: usize = counts.iter().map(|c| c.0).sum();
            let cancelled: usize = counts.iter().map(|c| c.1).sum();
            assert!(acquired > 0 && cancelled > 0, "acquired {acquired}, cancelled {cancelled}");
            eprintln!("semaphore seed {seed}: acquired {acquired}, cancelled {cancelled}");
            assert_eq!(sem.available_permits(), 3, "seed {seed}: a permit was lost");
            assert!(sem.try_acquire_many(3).is_ok(), "seed {seed}: no waiter left behind");
        }
    });
}

#[test]
fn mutex_loses_no_lock() {
    watchdog(LIMIT, || {
        for seed in 1..=3u64 {
            let mutex = Arc::new(Mutex::new(0u64));
            let workers: Vec<_> = (0..6)
                .map(|w| {
                    let mutex = mutex.clone();
                    start(CTXS[w % 3], format!("worker {w}"), async move {
                        let mut rng = Rng::new(seed * 1000 + w as u64);
                        let (mut locked, mut cancelled) = (0, 0);
                        for _ in 0..150 {
                            let mode = Mode::pick(&mut rng);
                            if let Some(mut guard) = attempt(mode, mutex.lock()).await {
                                let before = *guard;
                                jitter(&mut rng).await;
                                *guard = before + 1;
                                locked += 1;
                            } else {
                                cancelled += 1;
                            }
                        }
                        (locked, cancelled)
                    })
                })
                .collect();
            let counts: Vec<(u64, u64)> = workers.iter().map(|w| w.value()).collect();
            let locked: u64 = counts.iter().map(|c| c.0).sum();
            let cancelled: u64 = counts.iter().map(|c| c.1).sum();
            assert!(locked > 0 && cancelled > 0, "locked {locked}, cancelled {cancelled}");
            eprintln!("mutex seed {seed}: locked {locked}, cancelled {cancelled}");
            let guard = mutex.try_lock().expect("unlocked, nobody waiting");
            assert_eq!(*guard, locked, "seed {seed}: an increment was lost");
        }
    });
}

#[test]
fn channel_loses_no_message() {
    watchdog(LIMIT, || {
        const PER_PRODUCER: u64 = 300;
        for seed in 1..=3u64 {
            let (tx, mut rx) = mpsc::channel::<(usize, u64)>(2);
            let producers: Vec<_> = (0..3)
                .map(|p| {
                    let tx = tx.clone();
                    start(CTXS[p], format!("producer {p}"), async move {
                        let mut rng = Rng::new(seed * 10 + p as u64);
                        let mut attempts = 0u64;
                        for i in 0..PER_PRODUCER {
                            // Retry until sent: a cancelled send never sent.
                            loop {
                                attempts += 1;
                                let mode = Mode::pick(&mut rng);
                                let sent = if rng.below(3) == 0 {
                                    match attempt(mode, tx.reserve()).await {
                                        Some(permit) => {
                                            jitter(&mut rng).await;
                                            permit.unwrap().send((p, i)).is_ok()
                                        }
                                        None => false,
                                    }
                                } else {
                                    attempt(mode, tx.send((p, i))).await.is_some_and(|r| r.is_ok())
                                };
                                if sent {
                                    break;
                                }
                            }
                        }
                        attempts
                    })
                })
                .collect();
            drop(tx);
            let consumer = start(CTXS[seed as usize % 3], "consumer", async move {
                let mut rng = Rng::new(seed);
                let mut next = [0u64; 3];
                loop {
                    let mode = Mode::pick(&mut rng);
                    match attempt(mode, rx.recv()).await {
                        Some(Some((p, i))) => {
                            assert_eq!(i, next[p], "producer {p}: lost, duplicated or reordered");
                            next[p] += 1;
                        }
                        Some(None) => return next,
                        None => {}
                    }
                }
            });
            assert_eq!(consumer.value(), [PER_PRODUCER; 3], "seed {seed}");
            let attempts: u64 = producers.iter().map(|p| p.value()).sum();
            assert!(attempts > 3 * PER_PRODUCER, "some sends were cancelled");
            eprintln!("channel seed {seed}: {attempts} attempts for {} messages", 3 * PER_PRODUCER);
        }
    });
}

#[test]
fn select_with_timeouts_loses_no_message() {
    watchdog(LIMIT, || {
        const PER_CHANNEL: u64 = 400;
        let (txs, rxs): (Vec<_>, Vec<_>) = (0..3).map(|_| mpsc::channel::<u64>(1)).unzip();
        for (c, tx) in txs.into_iter().enumerate() {
            start(CTXS[c], format!("producer {c}"), async move {
                for i in 0..PER_CHANNEL {
                    tx.send(i).await.unwrap();
                }
            });
        }
        let consumer = start(Ctx::Task, "select consumer", async move {
            let mut rng = Rng::new(7);
            let mut rxs = rxs;
            let mut ids = vec![0usize, 1, 2];
            let mut next = [0u64; 3];
            while !rxs.is_empty() {
                let mode = Mode::pick(&mut rng);
                match attempt(mode, select(&mut rxs)).await {
                    Some((i, Some(v))) => {
                        assert_eq!(v, next[ids[i]], "channel {}: lost or reordered", ids[i]);
                        next[ids[i]] += 1;
                    }
                    Some((i, None)) => {
                        drop(rxs.remove(i));
                        ids.remove(i);
                    }
                    None => {}
                }
            }
            next
        });
        assert_eq!(consumer.value(), [PER_CHANNEL; 3]);
    });
}

#[test]
fn notify_one_is_never_lost() {
    watchdog(LIMIT, || {
        const ROUNDS: usize = 300;
        let notify = Arc::new(Notify::new());
        let received = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let consumers: Vec<_> = (0..6)
            .map(|c| {
                let (notify, received, stop) = (notify.clone(), received.clone(), stop.clone());
                start(CTXS[c % 3], format!("consumer {c}"), async move {
                    let mut rng = Rng::new(c as u64 + 1);
                    while !stop.load(Ordering::SeqCst) {
                        let mode = Mode::pick(&mut rng);
                        if attempt(mode, notify.notified()).await.is_some()
                            && !stop.load(Ordering::SeqCst)
                        {
                            received.fetch_add(1, Ordering::SeqCst);
                        }
                    }
                })
            })
            .collect();
        for round in 1..=ROUNDS {
            notify.notify_one();
            // Exactly one waiter (or the stored permit's next taker) gets it;
            // a lost notification stalls here until the deadline.
            let deadline = Instant::now() + Duration::from_secs(20);
            while received.load(Ordering::SeqCst) < round {
                assert!(Instant::now() < deadline, "round {round}: notification lost");
                std::thread::sleep(Duration::from_micros(50));
            }
            assert_eq!(received.load(Ordering::SeqCst), round, "one notification, one wake-up");
        }
        stop.store(true, Ordering::SeqCst);
        for c in &consumers {
            while c.peek().is_none() {
                notify.notify_waiters();
                std::thread::sleep(Duration::from_micros(200));
            }
        }
    });
}

#[test]
fn wait_group_waits_survive_cancellation() {
    watchdog(LIMIT, || {
        let wg = WaitGroup::new();
        wg.add(30);
        let waiters: Vec<_> = (0..6)
            .map(|w| {
                let wg = wg.clone();
                start(CTXS[w % 3], format!("waiter {w}"), async move {
                    let mut rng = Rng::new(w as u64 + 11);
                    let mut cancelled = 0;
                    while attempt(Mode::pick(&mut rng), wg.wait()).await.is_none() {
                        cancelled += 1;
                    }
                    cancelled
                })
            })
            .collect();
        for i in 0..30 {
            let wg = wg.clone();
            sync_util::run_in(CTXS[i % 3], async move {
                time::sleep(Duration::from_micros(300 * (i as u64 % 7))).await;
                wg.done();
            });
        }
        waiters.iter().for_each(|w| {
            w.value();
        });
        assert_eq!(wg.count(), 0);
    });
}
