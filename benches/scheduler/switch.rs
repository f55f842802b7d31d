//! `context_switch/raw` and `yield/*`: the cost of one switch.

use std::hint::black_box;
use std::time::Instant;

use corosensei::{Coroutine, CoroutineResult};
use criterion::Criterion;
use greenloop::green;
use greenloop_runtime::task;

use crate::common::{may_run, task_runtime, tokio_runtime};

pub fn context_switch(c: &mut Criterion) {
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

pub fn yields(c: &mut Criterion) {
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
    group.bench_function("stackless", |b| {
        let rt = task_runtime();
        b.iter_custom(|iters| {
            rt.block_on(async {
                let (first, second) = (iters / 2, iters - iters / 2);
                let start = Instant::now();
                let a = task::spawn(async move {
                    for _ in 0..first {
                        task::yield_now().await;
                    }
                });
                let b = task::spawn(async move {
                    for _ in 0..second {
                        task::yield_now().await;
                    }
                });
                black_box(a.await.is_ok() && b.await.is_ok());
                start.elapsed()
            })
        });
    });
    group.bench_function("may", |b| {
        b.iter_custom(|iters| {
            may_run(move || {
                let (first, second) = (iters / 2, iters - iters / 2);
                let start = Instant::now();
                let a = may::go!(move || {
                    for _ in 0..first {
                        may::coroutine::yield_now();
                    }
                });
                let b = may::go!(move || {
                    for _ in 0..second {
                        may::coroutine::yield_now();
                    }
                });
                black_box(a.join().is_ok() && b.join().is_ok());
                start.elapsed()
            })
        });
    });
    group.finish();
}
