//! Scheduler micro-benchmarks: `cargo bench --bench scheduler`.
//!
//! Every figure is time per operation; runtime start-up and shut-down are
//! outside the measured span (`iter_custom` times only the loop). Impls:
//! `green` (greenloop green threads), `stackless` (greenloop's
//! `task::Runtime`), `tokio` (a current-thread runtime), `may` (may's
//! stackful coroutines on one worker thread), `thread` (OS threads).
//!
//! * `context_switch/raw` — one bare corosensei `resume` + `suspend` round trip (the floor).
//! * `spawn_join/*` — spawn a closure or future returning a value, then join it: `green::spawn` (default 128 KiB pooled stack), `task::spawn(..).await` in `block_on`, `tokio::spawn(..).await`, `may::go!(..).join()`, `std::thread::spawn(..).join()`.
//! * `yield/*` — one yield while two green threads / tasks / coroutines take turns: `green::yield_now()`, `task::yield_now().await`, `tokio::task::yield_now().await`, `may::coroutine::yield_now()`.
//! * `timer_arm_cancel/*` — 10,000 × (a 60 s sleep polled once, arming its timer, then dropped, cancelling it); per arm+cancel. `stackless` and `tokio` poll in a task (tokio `unconstrained`, see `timer.rs`), `green` polls with `Waker::noop()` in a green thread.
//! * `timer_fire_10k/*` — 10,000 sleeps due at one deadline, armed by one poll each and then all fired by one reactor turn and completed; per timer. The wait for the deadline is not counted (see `timer::fire_all`). `green` runs the same future with `greenloop::block_on` in a green thread.
//! * `wake_remote/*` — one round trip: a helper OS thread, pinned to the runtime thread's CPU, wakes a waiting task (a `Doorbell` future), green thread (`green::park`) or may coroutine (`may::coroutine::park`), which runs and re-arms (the signal back); one cross-thread wake each.
//! * `io_echo_roundtrip/*` — one 64-byte message there and back over one loopback TCP connection (nodelay) whose two ends live in the same runtime: greenloop-net's `TcpStream` (blocking style for `green`, async for `stackless`), tokio's, may's, std's with the echo on a second OS thread.
//! * `spawn_many_10k/*` — spawn 10,000 that each sleep 1 ms, then join all (scheduler and timers at scale); per spawned unit, so the 1 ms sleep alone is 100 ns of it.

#[path = "../common/mod.rs"]
mod common;
mod io;
mod spawn;
mod switch;
mod timer;
mod wake;

use criterion::{criterion_group, criterion_main};

criterion_group! {
    name = benches;
    config = common::config();
    targets = switch::context_switch, spawn::spawn_join, switch::yields,
        timer::timer_arm_cancel, timer::timer_fire_10k, wake::wake_remote,
        io::io_echo_roundtrip, spawn::spawn_many_10k
}
criterion_main!(benches);
