//! What the bench targets share: one criterion configuration and a builder
//! per runtime, so every `group/impl` starts from the same set-up.
//!
//! Each bench target includes this module (`#[path]`) and uses a subset.
#![allow(dead_code)]

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::Criterion;
use greenloop_runtime::sync::mpsc::{Receiver, Sender};
use greenloop_runtime::task;

/// Warm-up 1 s, measurement 3 s, 40 samples; `--warm-up-time`,
/// `--measurement-time` and `--quick` on the command line override it.
pub fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(40)
}

/// Builds a tokio runtime, panicking on failure.
pub fn tokio_build(builder: &mut tokio::runtime::Builder) -> tokio::runtime::Runtime {
    match builder.build() {
        Ok(rt) => rt,
        Err(e) => panic!("cannot build a tokio runtime: {e}"),
    }
}

/// A current-thread tokio runtime without I/O or timer drivers.
pub fn tokio_runtime() -> tokio::runtime::Runtime {
    tokio_build(&mut tokio::runtime::Builder::new_current_thread())
}

/// A greenloop stackless runtime on this thread's reactor.
pub fn task_runtime() -> task::Runtime {
    match task::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => panic!("cannot build a task runtime: {e}"),
    }
}

/// Runs `f` in a may coroutine and returns its result.
///
/// may's scheduler is global and starts on first use; before that, it is
/// set to one worker thread, so it compares with single-threaded
/// greenloop and tokio's current-thread runtime (may also keeps its own
/// timer thread).
pub fn may_run<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    static CONFIG: std::sync::Once = std::sync::Once::new();
    CONFIG.call_once(|| {
        may::config().set_workers(1);
    });
    match may::go!(f).join() {
        Ok(out) => out,
        Err(panic) => std::panic::resume_unwind(panic),
    }
}

/// The pinging side of a blocking-style channel ping-pong: one untimed
/// round trip (it starts the echoing side), then `iters` timed ones.
pub fn blocking_round_trips(
    iters: u64,
    ping_tx: &Sender<u64>,
    pong_rx: &mut Receiver<u64>,
) -> Duration {
    let _ = ping_tx.send_blocking(0);
    black_box(pong_rx.recv_blocking());
    let start = Instant::now();
    for i in 0..iters {
        let _ = ping_tx.send_blocking(i);
        black_box(pong_rx.recv_blocking());
    }
    start.elapsed()
}
