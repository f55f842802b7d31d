//! The one watchdog of the runtime's integration tests.

use std::sync::mpsc;
use std::thread;
use std::time::Duration;

/// Runs `f` on its own OS thread and returns its result, resuming its
/// panic; fails the test if it takes longer than `limit` (a deadlock or a
/// lost wake-up) instead of hanging the run. The hung thread is left
/// behind: nothing can stop it safely.
pub fn watchdog<R: Send + 'static>(limit: Duration, f: impl FnOnce() -> R + Send + 'static) -> R {
    let (tx, rx) = mpsc::channel();
    let body = thread::Builder::new()
        .name("watched".into())
        .spawn(move || {
            let _ = tx.send(std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)));
        })
        .expect("spawn watched thread");
    match rx.recv_timeout(limit) {
        Ok(Ok(value)) => {
            let _ = body.join();
            value
        }
        Ok(Err(payload)) => std::panic::resume_unwind(payload),
        Err(_) => {
            panic!("watchdog: test did not finish within {limit:?} (deadlock or lost wake-up)")
        }
    }
}
