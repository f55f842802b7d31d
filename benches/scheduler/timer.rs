//! `timer_arm_cancel/*` and `timer_fire_10k/*`: the timing wheels.

use std::future::{Future, poll_fn};
use std::hint::black_box;
use std::pin::{Pin, pin};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use criterion::{Criterion, SamplingMode, Throughput};
use greenloop::{green, time};

use crate::common::{task_runtime, tokio_build};

/// tokio's cooperative budget lets a task make 128 resource polls per
/// turn; past it a tokio `Sleep` returns `Pending` without arming (and
/// wakes its task to yield). Both groups poll far more than 128 sleeps in
/// one turn, so their tokio variants run unconstrained: every poll then
/// does what greenloop's does, arm or fire a timer.
use tokio::task::unconstrained;

/// Timers per iteration of both groups.
const TIMERS: u64 = 10_000;

/// Polls `future` once with the caller's context (arming whatever it
/// registers) and returns whether it was still pending.
async fn poll_once<F: Future>(mut future: Pin<&mut F>) -> bool {
    poll_fn(|cx| Poll::Ready(future.as_mut().poll(cx).is_pending())).await
}

pub fn timer_arm_cancel(c: &mut Criterion) {
    let mut group = c.benchmark_group("timer_arm_cancel");
    group.throughput(Throughput::Elements(TIMERS));
    group.bench_function("stackless", |b| {
        let rt = task_runtime();
        b.iter_custom(|iters| {
            rt.block_on(async {
                let start = Instant::now();
                for _ in 0..iters * TIMERS {
                    let mut sleep = pin!(time::sleep(Duration::from_secs(60)));
                    black_box(poll_once(sleep.as_mut()).await);
                }
                start.elapsed()
            })
        });
    });
    group.bench_function("green", |b| {
        b.iter_custom(|iters| {
            green::run(|| {
                let mut cx = Context::from_waker(Waker::noop());
                let start = Instant::now();
                for _ in 0..iters * TIMERS {
                    let mut sleep = pin!(time::sleep(Duration::from_secs(60)));
                    black_box(sleep.as_mut().poll(&mut cx).is_pending());
                }
                start.elapsed()
            })
        });
    });
    group.bench_function("tokio", |b| {
        let rt = tokio_build(tokio::runtime::Builder::new_current_thread().enable_time());
        b.iter_custom(|iters| {
            rt.block_on(unconstrained(async {
                let start = Instant::now();
                for _ in 0..iters * TIMERS {
                    let mut sleep = pin!(tokio::time::sleep(Duration::from_secs(60)));
                    black_box(poll_once(sleep.as_mut()).await);
                }
                start.elapsed()
            }))
        });
    });
    group.finish();
}

/// One `timer_fire_10k` round: arms [`TIMERS`] sleeps from `sleep_until`,
/// all due at one deadline, then waits until every one has fired. Returns
/// the time spent arming plus the time from the deadline to the last
/// completion, or `None` if the deadline passed before all were armed
/// (the thread was preempted): the caller retries with more margin.
///
/// The wait for the deadline itself is a plain `thread::sleep` (blocking
/// the runtime on purpose) and is not counted: what remains is the
/// runtime's own work, one poll that arms every timer, then one reactor
/// turn that fires them all and wakes the task 10,000 times, then one poll
/// that sees every sleep complete.
async fn fire_all<S, F>(sleep_until: F, margin: Duration) -> Option<Duration>
where
    S: Future<Output = ()>,
    F: Fn(Instant) -> S,
{
    let start = Instant::now();
    let deadline = start + margin;
    let mut sleeps: Vec<Pin<Box<S>>> =
        (0..TIMERS).map(|_| Box::pin(sleep_until(deadline))).collect();
    let mut armed = None;
    let mut fired_from = None;
    poll_fn(|cx| {
        sleeps.retain_mut(|sleep| sleep.as_mut().poll(cx).is_pending());
        if armed.is_none() {
            if sleeps.len() as u64 != TIMERS {
                return Poll::Ready(());
            }
            armed = Some(start.elapsed());
            // Wait past the deadline, and past its rounding up to the
            // next millisecond tick, without yielding to the runtime.
            std::thread::sleep(
                deadline.saturating_duration_since(Instant::now()) + Duration::from_millis(2),
            );
            fired_from = Some(Instant::now());
        }
        if sleeps.is_empty() { Poll::Ready(()) } else { Poll::Pending }
    })
    .await;
    Some(armed? + fired_from?.elapsed())
}

/// Runs `iters` rounds of [`fire_all`] and sums their times. The margin
/// before the deadline starts at 5 ms and then follows twice the last
/// round's arming time (at least 1 ms), doubled after a round that missed.
async fn fire_rounds<S, F>(iters: u64, sleep_until: F) -> Duration
where
    S: Future<Output = ()>,
    F: Fn(Instant) -> S,
{
    let mut total = Duration::ZERO;
    let mut margin = Duration::from_millis(5);
    let mut done = 0;
    while done < iters {
        match fire_all(&sleep_until, margin).await {
            Some(took) => {
                total += took;
                done += 1;
                margin = (2 * took).max(Duration::from_millis(1));
            }
            None => margin *= 2,
        }
    }
    total
}

pub fn timer_fire_10k(c: &mut Criterion) {
    let mut group = c.benchmark_group("timer_fire_10k");
    // Each round also sleeps (uncounted) a few milliseconds to its deadline.
    group.throughput(Throughput::Elements(TIMERS)).sampling_mode(SamplingMode::Flat);
    group.sample_size(10);
    group.bench_function("stackless", |b| {
        let rt = task_runtime();
        b.iter_custom(|iters| rt.block_on(fire_rounds(iters, time::sleep_until)));
    });
    group.bench_function("green", |b| {
        b.iter_custom(|iters| {
            green::run(|| greenloop::block_on(fire_rounds(iters, time::sleep_until)))
        });
    });
    group.bench_function("tokio", |b| {
        let rt = tokio_build(tokio::runtime::Builder::new_current_thread().enable_time());
        b.iter_custom(|iters| {
            let rounds = fire_rounds(iters, |deadline| tokio::time::sleep_until(deadline.into()));
            rt.block_on(unconstrained(rounds))
        });
    });
    group.finish();
}
