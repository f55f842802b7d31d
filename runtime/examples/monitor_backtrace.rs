//! The monitor's backtrace of a blocked loop, for a task and a green
//! thread that block in `std::thread::sleep` three calls deep.
//!
//! ```text
//! cargo run --release -p greenloop-runtime --example monitor_backtrace
//! RUSTFLAGS="-C force-frame-pointers=yes" cargo run --release -p greenloop-runtime --example monitor_backtrace
//! ```
//!
//! Each report goes to stderr; one line per episode on stdout gives the
//! depth of its backtrace and how long it took.

use std::time::Duration;

use greenloop_runtime::monitor::{self, Report};
use greenloop_runtime::{Runtime, green, task, time};

#[inline(never)]
fn handle_request(ms: u64) {
    parse_request(ms);
    std::hint::black_box(());
}

#[inline(never)]
fn parse_request(ms: u64) {
    look_up_user(ms);
    std::hint::black_box(());
}

#[inline(never)]
fn look_up_user(ms: u64) {
    // The blocking call a handler should not make on the loop.
    std::thread::sleep(Duration::from_millis(ms));
    std::hint::black_box(());
}

fn main() {
    monitor::set_callback(|episode| {
        if let (true, Some(trace)) = (episode.ended, &episode.backtrace) {
            println!(
                "{}: {} frames, taken in {:?} ({})",
                episode.culprit,
                trace.frames.len(),
                trace.took,
                trace.stopped
            );
        }
        Report::Print
    });
    let runtime = Runtime::builder().monitor(Duration::from_millis(50)).monitor_backtrace().build();
    runtime.block_on(async {
        task::spawn(async { handle_request(200) }).await.expect("the task finishes");
        time::sleep(Duration::from_millis(100)).await;
    });
    runtime.run(|| {
        green::spawn(|| handle_request(200)).join().expect("the green thread finishes");
        green::sleep(Duration::from_millis(100));
    });
}
