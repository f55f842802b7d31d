//! `spawn_join/*` (one spawn, then its join) and `spawn_many_10k/*`
//! (10,000 spawns that each sleep 1 ms, then every join).

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, SamplingMode, Throughput};
use greenloop::{green, time};
use greenloop_runtime::task;

use crate::common::{may_run, task_runtime, tokio_build, tokio_runtime};

/// Spawns per `spawn_many_10k` iteration.
const MANY: u64 = 10_000;
/// What each of them sleeps.
const NAP: Duration = Duration::from_millis(1);

pub fn spawn_join(c: &mut Criterion) {
    let mut group = c.benchmark_group("spawn_join");
    group.bench_function("green", |b| {
        b.iter_custom(|iters| {
            green::run(|| {
                // Fill the stack pool so the measured spawns reuse a stack.
                black_box(green::spawn(|| black_box(1u64)).join().is_ok());
                let start = Instant::now();
                for _ in 0..iters {
                    let handle = green::spawn(|| black_box(1u64));
                    black_box(handle.join().is_ok());
                }
                start.elapsed()
            })
        });
    });
    group.bench_function("thread", |b| {
        b.iter(|| black_box(std::thread::spawn(|| black_box(1u64)).join().is_ok()));
    });
    group.bench_function("tokio", |b| {
        let rt = tokio_runtime();
        b.iter_custom(|iters| {
            rt.block_on(async {
                let start = Instant::now();
                for _ in 0..iters {
                    black_box(tokio::spawn(async { black_box(1u64) }).await.is_ok());
                }
                start.elapsed()
            })
        });
    });
    group.bench_function("stackless", |b| {
        let rt = task_runtime();
        b.iter_custom(|iters| {
            rt.block_on(async {
                let start = Instant::now();
                for _ in 0..iters {
                    black_box(task::spawn(async { black_box(1u64) }).await.is_ok());
                }
                start.elapsed()
            })
        });
    });
    group.bench_function("may", |b| {
        b.iter_custom(|iters| {
            may_run(move || {
                // Fill may's coroutine pool, as for green.
                black_box(may::go!(|| black_box(1u64)).join().is_ok());
                let start = Instant::now();
                for _ in 0..iters {
                    black_box(may::go!(|| black_box(1u64)).join().is_ok());
                }
                start.elapsed()
            })
        });
    });
    group.finish();
}

pub fn spawn_many_10k(c: &mut Criterion) {
    let mut group = c.benchmark_group("spawn_many_10k");
    // An iteration takes milliseconds (a second for OS threads): few,
    // equal samples.
    group.throughput(Throughput::Elements(MANY)).sampling_mode(SamplingMode::Flat);
    group.sample_size(10);
    group.bench_function("green", |b| {
        b.iter_custom(|iters| {
            green::run(|| {
                let start = Instant::now();
                for _ in 0..iters {
                    let all: Vec<_> =
                        (0..MANY).map(|_| green::spawn(|| green::sleep(NAP))).collect();
                    black_box(all.into_iter().filter_map(|h| h.join().ok()).count());
                }
                start.elapsed()
            })
        });
    });
    group.bench_function("stackless", |b| {
        let rt = task_runtime();
        b.iter_custom(|iters| {
            rt.block_on(async {
                let start = Instant::now();
                for _ in 0..iters {
                    let all: Vec<_> = (0..MANY).map(|_| task::spawn(time::sleep(NAP))).collect();
                    for handle in all {
                        black_box(handle.await.is_ok());
                    }
                }
                start.elapsed()
            })
        });
    });
    group.bench_function("tokio", |b| {
        let rt = tokio_build(tokio::runtime::Builder::new_current_thread().enable_time());
        b.iter_custom(|iters| {
            rt.block_on(async {
                let start = Instant::now();
                for _ in 0..iters {
                    let all: Vec<_> =
                        (0..MANY).map(|_| tokio::spawn(tokio::time::sleep(NAP))).collect();
                    for handle in all {
                        black_box(handle.await.is_ok());
                    }
                }
                start.elapsed()
            })
        });
    });
    group.bench_function("may", |b| {
        b.iter_custom(|iters| {
            may_run(move || {
                let start = Instant::now();
                for _ in 0..iters {
                    let all: Vec<_> =
                        (0..MANY).map(|_| may::go!(|| may::coroutine::sleep(NAP))).collect();
                    black_box(all.into_iter().filter_map(|h| h.join().ok()).count());
                }
                start.elapsed()
            })
        });
    });
    group.bench_function("thread", |b| {
        b.iter_custom(|iters| {
            let start = Instant::now();
            for _ in 0..iters {
                let all: Vec<_> =
                    (0..MANY).map(|_| std::thread::spawn(|| std::thread::sleep(NAP))).collect();
                black_box(all.into_iter().filter_map(|h| h.join().ok()).count());
            }
            start.elapsed()
        });
    });
    group.finish();
}
