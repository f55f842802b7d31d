//! Green thread control benchmarks: `cargo bench --bench green_control`.
//!
//! Every figure is time per operation; runtime start-up and shut-down are
//! outside the measured span (`iter_custom` times only the loop).
//!
//! * `green_cancel/parked` — cancel a green thread parked in `green::park`
//!   and join it (`Err(Cancelled)`); per thread, 1,000 per batch, spawned
//!   and parked outside the timed span.
//! * `green_timeout/plain` — the reference: call a closure that returns at
//!   once, in a green thread.
//! * `green_timeout/timeout` — the same call inside `green::timeout(60 s)`:
//!   one timer armed and cancelled, plus the unwind guard.
//! * `green_timeout/timer_arm_cancel` — the other reference: a 60 s
//!   `time::sleep` polled once (arming its timer) and dropped (cancelling
//!   it), as `scheduler`'s `timer_arm_cancel/green`. The target is
//!   `timeout` ≤ 1.5 × `plain` + `timer_arm_cancel`.
//! * `green_local/green_local` — one `Local::with` read of a `Cell<u64>`.
//! * `green_local/std_thread_local` — the same read of a std
//!   `thread_local!`, the reference.

#[path = "common/mod.rs"]
mod common;

use std::cell::Cell;
use std::future::Future;
use std::hint::black_box;
use std::pin::pin;
use std::task::{Context, Waker};
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use greenloop::{green, time};

/// Threads cancelled per timed batch.
const BATCH: u64 = 1_000;

fn cancel_parked(c: &mut Criterion) {
    let mut group = c.benchmark_group("green_cancel");
    group.throughput(Throughput::Elements(1));
    group.bench_function("parked", |b| {
        b.iter_custom(|iters| {
            green::run(|| {
                let mut total = Duration::ZERO;
                let mut left = iters;
                while left > 0 {
                    let n = left.min(BATCH);
                    left -= n;
                    let handles: Vec<_> = (0..n).map(|_| green::spawn(green::park)).collect();
                    green::yield_now();
                    let start = Instant::now();
                    for handle in handles {
                        handle.cancel();
                        black_box(handle.join().is_err());
                    }
                    total += start.elapsed();
                }
                total
            })
        });
    });
    group.finish();
}

/// Calls `f`: what `green::timeout` does around its closure, minus the
/// deadline.
fn plain_call<R>(f: impl FnOnce() -> R) -> R {
    f()
}

fn timeout_ready(c: &mut Criterion) {
    let mut group = c.benchmark_group("green_timeout");
    group.throughput(Throughput::Elements(1));
    group.bench_function("plain", |b| {
        b.iter_custom(|iters| {
            green::run(|| {
                let start = Instant::now();
                for i in 0..iters {
                    black_box(plain_call(|| black_box(i)));
                }
                start.elapsed()
            })
        });
    });
    group.bench_function("timeout", |b| {
        b.iter_custom(|iters| {
            green::run(|| {
                let start = Instant::now();
                for i in 0..iters {
                    let _ = black_box(green::timeout(Duration::from_secs(60), || black_box(i)));
                }
                start.elapsed()
            })
        });
    });
    group.bench_function("timer_arm_cancel", |b| {
        b.iter_custom(|iters| {
            green::run(|| {
                let mut cx = Context::from_waker(Waker::noop());
                let start = Instant::now();
                for _ in 0..iters {
                    let mut sleep = pin!(time::sleep(Duration::from_secs(60)));
                    black_box(sleep.as_mut().poll(&mut cx).is_pending());
                }
                start.elapsed()
            })
        });
    });
    group.finish();
}

greenloop_runtime::green_local! {
    static GREEN_COUNTER: Cell<u64> = Cell::new(1);
}

std::thread_local! {
    static STD_COUNTER: Cell<u64> = const { Cell::new(1) };
}

fn local_access(c: &mut Criterion) {
    let mut group = c.benchmark_group("green_local");
    group.throughput(Throughput::Elements(1));
    group.bench_function("green_local", |b| {
        b.iter_custom(|iters| {
            green::run(|| {
                let start = Instant::now();
                for _ in 0..iters {
                    black_box(black_box(&GREEN_COUNTER).with(Cell::get));
                }
                start.elapsed()
            })
        });
    });
    group.bench_function("std_thread_local", |b| {
        b.iter_custom(|iters| {
            green::run(|| {
                let start = Instant::now();
                for _ in 0..iters {
                    black_box(black_box(&STD_COUNTER).with(Cell::get));
                }
                start.elapsed()
            })
        });
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = common::config();
    targets = cancel_parked, timeout_ready, local_access
}
criterion_main!(benches);
