//! The blocked-loop monitor: one report per blocking episode, naming the
//! task or green thread and its spawn site; none for an idle loop.

mod watchdog;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use greenloop_runtime::monitor::{self, Culprit, Episode, Report};
use greenloop_runtime::{Runtime, green, task, time};
use watchdog::watchdog;

/// The episodes the monitor reported from the loops of this test binary.
fn capture() -> Arc<Mutex<Vec<Episode>>> {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = seen.clone();
    monitor::set_callback(move |episode| {
        sink.lock().unwrap().push(episode.clone());
        Report::Print
    });
    seen
}

/// Keeps the calling OS thread busy for `duration` without a syscall that
/// `greenloop-patch` would turn into a park (its tests include this file):
/// under the patch, a green thread's `std::thread::sleep` parks only itself.
fn hold_the_loop(duration: Duration) {
    let start = std::time::Instant::now();
    while start.elapsed() < duration {
        std::hint::spin_loop();
    }
}

// One test function: the monitor and its callback are process-wide, and
// the two cases must not see each other's episodes.
#[test]
fn blocking_task_reported_once_idle_loop_never() {
    let seen = capture();
    let runtime = Runtime::builder().monitor(Duration::from_millis(50)).build();
    let green_runtime = Runtime::builder().monitor(Duration::from_millis(50)).build();

    // An idle loop: 1 s in epoll_wait, waiting for a timer.
    watchdog(Duration::from_secs(20), move || {
        Runtime::new().block_on(time::sleep(Duration::from_secs(1)));
    });
    assert!(seen.lock().unwrap().is_empty(), "idle loop reported: {:?}", seen.lock().unwrap());

    // A task that blocks its loop for 200 ms.
    let (line, file) = watchdog(Duration::from_secs(20), move || {
        runtime.block_on(async {
            let line = line!() + 1;
            let handle = task::spawn(async { std::thread::sleep(Duration::from_millis(200)) });
            handle.await.unwrap();
            // Let the monitor sample the loop moving on.
            time::sleep(Duration::from_millis(100)).await;
            (line, file!())
        })
    });
    let episodes = seen.lock().unwrap().clone();
    let starts: Vec<_> = episodes.iter().filter(|e| !e.ended).collect();
    let ends: Vec<_> = episodes.iter().filter(|e| e.ended).collect();
    assert_eq!((starts.len(), ends.len()), (1, 1), "episodes: {episodes:#?}");
    for episode in [starts[0], ends[0]] {
        match &episode.culprit {
            Culprit::Task { site, .. } => {
                assert_eq!((site.file(), site.line()), (file, line), "{episode}");
            }
            other => panic!("culprit is not the task: {other:?}"),
        }
    }
    assert!(ends[0].blocked_for >= Duration::from_millis(200), "{}", ends[0]);

    // A named green thread that blocks its loop for 200 ms, after named
    // and unnamed threads took turns on it.
    seen.lock().unwrap().clear();
    watchdog(Duration::from_secs(20), move || {
        green_runtime.run(|| {
            let others: Vec<_> = (0..4)
                .map(|i| {
                    let builder = green::Builder::new();
                    let builder =
                        if i % 2 == 0 { builder.name(format!("other-{i}")) } else { builder };
                    builder.spawn(|| (0..3).for_each(|_| green::yield_now())).unwrap()
                })
                .collect();
            let blocker = green::Builder::new()
                .name("blocker".into())
                .spawn(|| {
                    green::yield_now();
                    hold_the_loop(Duration::from_millis(200));
                })
                .unwrap();
            others.into_iter().for_each(|h| h.join().unwrap());
            blocker.join().unwrap();
            green::sleep(Duration::from_millis(100));
        });
    });
    let episodes = seen.lock().unwrap().clone();
    assert_eq!(episodes.len(), 2, "one start and one end: {episodes:#?}");
    // Backtraces are off: none taken, no signal handler installed.
    assert!(episodes.iter().all(|e| e.backtrace.is_none()), "{episodes:#?}");
    assert_eq!(monitor::backtrace::signal(), None);
    assert_eq!(monitor::backtrace::answered(), 0);
    for signal in libc::SIGRTMIN()..=libc::SIGRTMAX() {
        // SAFETY: an all-zero sigaction is a valid value; a null new
        // action only queries the disposition.
        let handler = unsafe {
            let mut old: libc::sigaction = std::mem::zeroed();
            assert_eq!(libc::sigaction(signal, std::ptr::null(), &mut old), 0);
            old.sa_sigaction
        };
        assert_eq!(handler, libc::SIG_DFL, "a handler for real-time signal {signal}");
    }
    for episode in &episodes {
        match &episode.culprit {
            Culprit::Green { name: Some(name), site, .. } => {
                assert_eq!((name.as_str(), site.file()), ("blocker", file!()), "{episode}");
            }
            other => panic!("culprit is not the blocker: {other:?}"),
        }
    }
}
