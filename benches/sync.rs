//! Sync-primitive micro-benchmarks: `cargo bench --bench sync`.
//!
//! Every figure is time per operation; runtime start-up, spawning and
//! shut-down are outside the measured span (`iter_custom` times only the
//! loop).
//!
//! * `channel_roundtrip/*` — one round trip: worker A sends a value on
//!   channel 1, worker B receives it and sends it back on channel 2, A
//!   receives it. Both channels are bounded with capacity 1.
//!   * `green` — two green threads of one green runtime, `send_blocking` /
//!     `recv_blocking` on `greenloop_runtime::sync::mpsc`.
//!   * `stackless` — two tasks of one `task::Runtime`, `send().await` /
//!     `recv().await` on the same channels.
//!   * `thread` — two OS threads, `std::sync::mpsc::sync_channel(1)`.
//!   * `tokio` — two tasks of a current-thread tokio runtime,
//!     `tokio::sync::mpsc::channel(1)`.
//!   * `may` — two coroutines on may's one worker thread,
//!     `may::sync::mpsc::channel()` (may has no bounded channel; with one
//!     value in flight the bound never matters).
//! * `mutex_uncontended/*` — one lock + unlock (and an increment) with no
//!   other party: `green` (`lock_blocking` in a green thread), `stackless`
//!   (`lock().await` in a task), `tokio` (`tokio::sync::Mutex` in a
//!   current-thread runtime), `may` (`may::sync::Mutex` in a coroutine),
//!   `std` (`std::sync::Mutex`, the floor).

use std::hint::black_box;
use std::time::Instant;

use criterion::{Criterion, criterion_group, criterion_main};
use greenloop_runtime::sync::{Mutex, mpsc};
use greenloop_runtime::{green, task};

use common::{blocking_round_trips, may_run, task_runtime, tokio_runtime};

#[path = "common/mod.rs"]
mod common;

fn channel_roundtrip(c: &mut Criterion) {
    let mut group = c.benchmark_group("channel_roundtrip");
    group.bench_function("green", |b| {
        b.iter_custom(|iters| {
            green::run(|| {
                let (ping_tx, mut ping_rx) = mpsc::channel::<u64>(1);
                let (pong_tx, mut pong_rx) = mpsc::channel::<u64>(1);
                let echo = green::spawn(move || {
                    while let Some(v) = ping_rx.recv_blocking() {
                        if pong_tx.send_blocking(v).is_err() {
                            break;
                        }
                    }
                });
                let elapsed = blocking_round_trips(iters, &ping_tx, &mut pong_rx);
                drop(ping_tx);
                let _ = echo.join();
                elapsed
            })
        });
    });
    group.bench_function("stackless", |b| {
        let rt = task_runtime();
        b.iter_custom(|iters| {
            rt.block_on(async {
                let (ping_tx, mut ping_rx) = mpsc::channel::<u64>(1);
                let (pong_tx, mut pong_rx) = mpsc::channel::<u64>(1);
                let echo = task::spawn(async move {
                    while let Some(v) = ping_rx.recv().await {
                        if pong_tx.send(v).await.is_err() {
                            break;
                        }
                    }
                });
                let driver = task::spawn(async move {
                    let _ = ping_tx.send(0).await;
                    black_box(pong_rx.recv().await);
                    let start = Instant::now();
                    for i in 0..iters {
                        let _ = ping_tx.send(i).await;
                        black_box(pong_rx.recv().await);
                    }
                    start.elapsed()
                });
                let elapsed = driver.await.unwrap_or_default();
                let _ = echo.await;
                elapsed
            })
        });
    });
    group.bench_function("thread", |b| {
        b.iter_custom(|iters| {
            let (ping_tx, ping_rx) = std::sync::mpsc::sync_channel::<u64>(1);
            let (pong_tx, pong_rx) = std::sync::mpsc::sync_channel::<u64>(1);
            let echo = std::thread::spawn(move || {
                while let Ok(v) = ping_rx.recv() {
                    if pong_tx.send(v).is_err() {
                        break;
                    }
                }
            });
            let elapsed = timed_round_trips(iters, |i| ping_tx.send(i).is_ok(), || pong_rx.recv());
            drop(ping_tx);
            let _ = echo.join();
            elapsed
        });
    });
    group.bench_function("tokio", |b| {
        let rt = tokio_runtime();
        b.iter_custom(|iters| {
            rt.block_on(async {
                let (ping_tx, mut ping_rx) = tokio::sync::mpsc::channel::<u64>(1);
                let (pong_tx, mut pong_rx) = tokio::sync::mpsc::channel::<u64>(1);
                let echo = tokio::spawn(async move {
                    while let Some(v) = ping_rx.recv().await {
                        if pong_tx.send(v).await.is_err() {
                            break;
                        }
                    }
                });
                let driver = tokio::spawn(async move {
                    let _ = ping_tx.send(0).await;
                    black_box(pong_rx.recv().await);
                    let start = Instant::now();
                    for i in 0..iters {
                        let _ = ping_tx.send(i).await;
                        black_box(pong_rx.recv().await);
                    }
                    start.elapsed()
                });
                let elapsed = driver.await.unwrap_or_default();
                let _ = echo.await;
                elapsed
            })
        });
    });
    group.bench_function("may", |b| {
        b.iter_custom(|iters| {
            may_run(move || {
                let (ping_tx, ping_rx) = may::sync::mpsc::channel::<u64>();
                let (pong_tx, pong_rx) = may::sync::mpsc::channel::<u64>();
                let echo = may::go!(move || {
                    while let Ok(v) = ping_rx.recv() {
                        if pong_tx.send(v).is_err() {
                            break;
                        }
                    }
                });
                let elapsed =
                    timed_round_trips(iters, |i| ping_tx.send(i).is_ok(), || pong_rx.recv());
                drop(ping_tx);
                let _ = echo.join();
                elapsed
            })
        });
    });
    group.finish();
}

fn mutex_uncontended(c: &mut Criterion) {
    let mut group = c.benchmark_group("mutex_uncontended");
    group.bench_function("green", |b| {
        b.iter_custom(|iters| {
            green::run(|| {
                let mutex = Mutex::new(0u64);
                let start = Instant::now();
                for _ in 0..iters {
                    *mutex.lock_blocking() += 1;
                }
                let elapsed = start.elapsed();
                black_box(mutex.into_inner());
                elapsed
            })
        });
    });
    group.bench_function("stackless", |b| {
        let rt = task_runtime();
        b.iter_custom(|iters| {
            let handle = rt.spawn(async move {
                let mutex = Mutex::new(0u64);
                let start = Instant::now();
                for _ in 0..iters {
                    *mutex.lock().await += 1;
                }
                let elapsed = start.elapsed();
                black_box(mutex.into_inner());
                elapsed
            });
            rt.block_on(handle).unwrap_or_default()
        });
    });
    group.bench_function("tokio", |b| {
        let rt = tokio_runtime();
        b.iter_custom(|iters| {
            let handle = rt.spawn(async move {
                let mutex = tokio::sync::Mutex::new(0u64);
                let start = Instant::now();
                for _ in 0..iters {
                    *mutex.lock().await += 1;
                }
                let elapsed = start.elapsed();
                black_box(mutex.into_inner());
                elapsed
            });
            rt.block_on(handle).unwrap_or_default()
        });
    });
    group.bench_function("may", |b| {
        b.iter_custom(|iters| {
            may_run(move || {
                let mutex = may::sync::Mutex::new(0u64);
                let start = Instant::now();
                for _ in 0..iters {
                    if let Ok(mut n) = mutex.lock() {
                        *n += 1;
                    }
                }
                let elapsed = start.elapsed();
                black_box(mutex.into_inner().ok());
                elapsed
            })
        });
    });
    group.bench_function("std", |b| {
        let mutex = std::sync::Mutex::new(0u64);
        b.iter(|| {
            if let Ok(mut n) = mutex.lock() {
                *n += 1;
            }
        });
        black_box(mutex);
    });
    group.finish();
}

/// One untimed warm-up round trip, then `iters` timed ones through a
/// blocking `send` and `recv` (the `thread` and `may` cells).
fn timed_round_trips<T>(
    iters: u64,
    mut send: impl FnMut(u64) -> bool,
    mut recv: impl FnMut() -> T,
) -> std::time::Duration {
    send(0);
    black_box(recv());
    let start = Instant::now();
    for i in 0..iters {
        send(i);
        black_box(recv());
    }
    start.elapsed()
}

criterion_group! {
    name = benches;
    config = common::config();
    targets = channel_roundtrip, mutex_uncontended
}
criterion_main!(benches);
