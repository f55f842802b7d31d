//! Scheduler micro-benchmarks: `cargo bench --bench scheduler`.
//!
//! Every figure is time per operation; runtime start-up and shut-down are
//! outside the measured span (`iter_custom` times only the loop).
//!
//! * `context_switch/raw` — one bare corosensei `resume` + `suspend` round trip (the floor).
//! * `spawn_join/green` — `green::spawn` (default 128 KiB pooled stack) of a closure returning a value, then `join`.
//! * `spawn_join/thread` — `std::thread::spawn` of the same closure, then `join`.
//! * `spawn_join/tokio` — `tokio::spawn(async { 1 }).await` inside `block_on` of a current-thread runtime.
//! * `yield/green` — one `green::yield_now()` while two green threads take turns.
//! * `yield/tokio` — one `tokio::task::yield_now().await` while two tasks of a current-thread runtime take turns.

use std::hint::black_box;
use std::time::{Duration, Instant};

use corosensei::{Coroutine, CoroutineResult};
use criterion::{Criterion, criterion_group, criterion_main};
use greenloop::green;

/// A current-thread tokio runtime without I/O or timer drivers.
fn tokio_runtime() -> tokio::runtime::Runtime {
    match tokio::runtime::Builder::new_current_thread().build() {
        Ok(rt) => rt,
        Err(e) => panic!("cannot build a tokio runtime: {e}"),
    }
}

fn context_switch(c: &mut Criterion) {
    let mut group = c.benchmark_group("context_switch");
    group.bench_function("raw", |b| {
        let mut coroutine: Coroutine<(), (), ()> = Coroutine::new(|yielder, ()| {
            loop {
                yielder.suspend(());
            }
        });
        b.iter(|| match coroutine.resume(()) {
            CoroutineResult::Yield(()) => {}
            CoroutineResult::Return(()) => unreachable!("the coroutine loops forever"),
        });
        // Dropping the suspended coroutine unwinds its stack.
    });
    group.finish();
}

fn spawn_join(c: &mut Criterion) {
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
    group.finish();
}

fn yields(c: &mut Criterion) {
    let mut group = c.benchmark_group("yield");
    group.bench_function("green", |b| {
        b.iter_custom(|iters| {
            green::run(|| {
                // Fill the stack pool so the two measured spawns reuse stacks.
                let warm = [green::spawn(|| ()), green::spawn(|| ())];
                black_box(warm.map(|h| h.join().is_ok()));
                let (first, second) = (iters / 2, iters - iters / 2);
                let start = Instant::now();
                let a = green::spawn(move || {
                    for _ in 0..first {
                        green::yield_now();
                    }
                });
                let b = green::spawn(move || {
                    for _ in 0..second {
                        green::yield_now();
                    }
                });
                black_box(a.join().is_ok() && b.join().is_ok());
                start.elapsed()
            })
        });
    });
    group.bench_function("tokio", |b| {
        let rt = tokio_runtime();
        b.iter_custom(|iters| {
            rt.block_on(async {
                let (first, second) = (iters / 2, iters - iters / 2);
                let start = Instant::now();
                let a = tokio::spawn(async move {
                    for _ in 0..first {
                        tokio::task::yield_now().await;
                    }
                });
                let b = tokio::spawn(async move {
                    for _ in 0..second {
                        tokio::task::yield_now().await;
                    }
                });
                black_box(a.await.is_ok() && b.await.is_ok());
                start.elapsed()
            })
        });
    });
    group.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(40)
}

criterion_group! {
    name = benches;
    config = config();
    targets = context_switch, spawn_join, yields
}
criterion_main!(benches);
