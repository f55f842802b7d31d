//! Mixed-model micro-benchmarks: `cargo bench --bench mixed`.
//!
//! * `mixed_roundtrip/*` — one round trip between a green thread and a
//!   stackless task: the green thread sends a value on channel 1
//!   (`send_blocking`), the task receives it and sends it back on channel 2
//!   (`send().await`), the green thread receives it. Both are
//!   `greenloop_runtime::sync::mpsc` channels of capacity 1.
//!   * `same_thread` — both in one `greenloop_runtime::run` loop: each
//!     hand-off is a push on a run queue.
//!   * `two_threads` — the green thread in `green::run` on the bench
//!     thread, the task in a `task::Runtime` on a second OS thread: each
//!     hand-off is a cross-thread wake (a remote queue push and an
//!     `eventfd` write when the other side sleeps).
//!
//! Compare with `channel_roundtrip/*` of `cargo bench --bench sync`
//! (`--bench mixed --bench sync` runs both in one go).

use criterion::{Criterion, criterion_group, criterion_main};
use greenloop_runtime::sync::mpsc::{self, Receiver, Sender};
use greenloop_runtime::{green, task};

use common::{blocking_round_trips, task_runtime};

#[path = "common/mod.rs"]
mod common;

/// The task's side: echo every value until channel 1 closes.
async fn echo(mut ping_rx: Receiver<u64>, pong_tx: Sender<u64>) {
    while let Some(v) = ping_rx.recv().await {
        if pong_tx.send(v).await.is_err() {
            break;
        }
    }
}

fn mixed_roundtrip(c: &mut Criterion) {
    let mut group = c.benchmark_group("mixed_roundtrip");
    group.bench_function("same_thread", |b| {
        b.iter_custom(|iters| {
            greenloop_runtime::run(|| {
                let (ping_tx, ping_rx) = mpsc::channel::<u64>(1);
                let (pong_tx, mut pong_rx) = mpsc::channel::<u64>(1);
                let echo = task::spawn_local(echo(ping_rx, pong_tx));
                let elapsed = blocking_round_trips(iters, &ping_tx, &mut pong_rx);
                drop(ping_tx);
                let _ = greenloop_runtime::block_on(echo);
                elapsed
            })
        });
    });
    group.bench_function("two_threads", |b| {
        b.iter_custom(|iters| {
            let (ping_tx, ping_rx) = mpsc::channel::<u64>(1);
            let (pong_tx, mut pong_rx) = mpsc::channel::<u64>(1);
            let echo = std::thread::spawn(move || task_runtime().block_on(echo(ping_rx, pong_tx)));
            let elapsed = green::run(|| blocking_round_trips(iters, &ping_tx, &mut pong_rx));
            drop(ping_tx);
            let _ = echo.join();
            elapsed
        });
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = common::config();
    targets = mixed_roundtrip
}
criterion_main!(benches);
