//! The monitor's opt-in backtrace: a loop blocked in `std::thread::sleep`
//! is caught inside libc's sleep, for a task and for a green thread; a
//! callback's veto sends no signal.

mod watchdog;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use greenloop_runtime::monitor::{self, Episode, Report, backtrace};
use greenloop_runtime::{Runtime, green, task, time};
use watchdog::watchdog;

/// The episodes reported, and a switch that makes the callback veto.
fn capture() -> (Arc<Mutex<Vec<Episode>>>, Arc<AtomicBool>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let veto = Arc::new(AtomicBool::new(false));
    let (sink, vetoing) = (seen.clone(), veto.clone());
    monitor::set_callback(move |episode| {
        sink.lock().unwrap().push(episode.clone());
        if vetoing.load(Ordering::Relaxed) { Report::PrintWithoutBacktrace } else { Report::Print }
    });
    (seen, veto)
}

/// The one episode end reported since the last call; clears the list.
fn the_end(seen: &Mutex<Vec<Episode>>) -> Episode {
    let episodes = std::mem::take(&mut *seen.lock().unwrap());
    let ends: Vec<_> = episodes.iter().filter(|e| e.ended).collect();
    assert_eq!(ends.len(), 1, "episodes: {episodes:#?}");
    ends[0].clone()
}

/// glibc's sleep is `clock_nanosleep` (older: `nanosleep`); the
/// interrupted PC is inside it, and `dladdr` names it.
fn assert_caught_sleeping(episode: &Episode) {
    let trace = episode.backtrace.as_ref().unwrap_or_else(|| panic!("no backtrace: {episode}"));
    let first = trace.frames.first().unwrap_or_else(|| panic!("no frames: {trace}"));
    assert!(first.text.contains("nanosleep"), "first frame not in libc's sleep:\n{trace}");
    // Debug builds keep frame pointers: the walk goes past libc into this
    // test's own code.
    if cfg!(debug_assertions) {
        let exe = std::env::current_exe().unwrap();
        let exe = exe.to_string_lossy();
        assert!(trace.frames[1..].iter().any(|f| f.text.contains(&*exe)), "{exe}:\n{trace}");
    }
}

// One test function: the monitor, its callback and the backtrace switch
// are process-wide.
#[test]
fn blocked_loops_give_a_backtrace_unless_vetoed() {
    let (seen, veto) = capture();
    let runtime = Runtime::builder().monitor(Duration::from_millis(50)).monitor_backtrace().build();

    let task_runtime = runtime.clone();
    watchdog(Duration::from_secs(20), move || {
        task_runtime.block_on(async {
            let handle = task::spawn(async { std::thread::sleep(Duration::from_millis(200)) });
            handle.await.unwrap();
            time::sleep(Duration::from_millis(100)).await;
        })
    });
    let signal = backtrace::signal().expect("a backtrace signal installed");
    assert!(signal >= libc::SIGRTMIN() && signal <= libc::SIGRTMAX(), "signal {signal}");
    assert_caught_sleeping(&the_end(&seen));
    let answered = backtrace::answered();
    assert!(answered >= 1, "no walk answered");

    let green_runtime = runtime.clone();
    watchdog(Duration::from_secs(20), move || {
        green_runtime.run(|| {
            let blocker = green::spawn(|| std::thread::sleep(Duration::from_millis(200)));
            blocker.join().unwrap();
            green::sleep(Duration::from_millis(100));
        });
    });
    assert_caught_sleeping(&the_end(&seen));
    let answered = backtrace::answered() - answered;
    assert_eq!(answered, 1, "one signal for one printed start");

    veto.store(true, Ordering::Relaxed);
    let before = backtrace::answered();
    watchdog(Duration::from_secs(20), move || {
        runtime.block_on(async {
            task::spawn(async { std::thread::sleep(Duration::from_millis(200)) }).await.unwrap();
            time::sleep(Duration::from_millis(100)).await;
        })
    });
    let end = the_end(&seen);
    assert!(end.backtrace.is_none(), "vetoed, yet: {end}");
    assert_eq!(backtrace::answered(), before, "a signal was answered despite the veto");
}
