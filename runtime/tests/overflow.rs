//! A green thread that overflows its stack is reported by name and the
//! process aborts.
//!
//! Each test re-executes this test binary on itself (`--exact <name>`) with
//! [`CHILD_ENV`] set; in that child the test body overflows for real. The
//! parent asserts on the child's exit signal and stderr.

use std::os::unix::process::ExitStatusExt;
use std::process::{Command, ExitStatus, Stdio};
use std::thread;
use std::time::Duration;

use greenloop_runtime::green::{self, Builder};

#[path = "watchdog/child.rs"]
mod child;
use child::{LimitedChild, read_to_end};

/// Names the child scenario to run; unset in the parent.
const CHILD_ENV: &str = "GREENLOOP_OVERFLOW_CHILD";

/// How long a child may take before it is killed and the test fails.
const LIMIT: Duration = Duration::from_secs(30);

/// The child scenario this process should run, if it is a child.
fn child_scenario() -> Option<String> {
    std::env::var(CHILD_ENV).ok()
}

/// In the child: no core dump for the deliberate abort.
fn disable_core_dumps() {
    let none = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: setrlimit(2) only reads the rlimit we pass; lowering a limit
    // needs no privilege.
    let rc = unsafe { libc::setrlimit(libc::RLIMIT_CORE, &none) };
    assert_eq!(rc, 0, "setrlimit(RLIMIT_CORE, 0) failed");
}

/// Recurses until the stack runs out: `black_box` on a local array keeps
/// every frame real, and the addition after the call prevents a tail call.
#[inline(never)]
fn recurse(depth: u64) -> u64 {
    let mut frame = [0u8; 512];
    frame[0] = depth as u8;
    std::hint::black_box(&mut frame);
    if std::hint::black_box(true) { recurse(depth + 1) + u64::from(frame[1]) } else { depth }
}

/// `name` as the test harness knows it: under this file's module when
/// another crate includes it as one (greenloop-patch does).
fn test_path(name: &str) -> String {
    match module_path!().split_once("::") {
        Some((_, module)) => format!("{module}::{name}"),
        None => name.to_owned(),
    }
}

/// Runs this test binary on test `name` only, as child `scenario`; returns
/// its exit status and stderr. Kills it and fails after [`LIMIT`].
fn run_child(name: &str, scenario: &str) -> (ExitStatus, String) {
    let mut command = Command::new(std::env::current_exe().unwrap());
    command
        .args(["--exact", &test_path(name), "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, scenario)
        .env("RUST_BACKTRACE", "0")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let child =
        LimitedChild::spawn(&mut command, LIMIT).expect("cannot re-execute the test binary");
    let stderr = read_to_end(child.take_stderr());
    let status = child.wait_within(LIMIT);
    let stderr = String::from_utf8_lossy(&stderr.join().unwrap()).into_owned();
    let killed = status.signal() == Some(libc::SIGKILL);
    assert!(!killed, "child '{scenario}' did not exit within {LIMIT:?}; stderr:\n{stderr}");
    (status, stderr)
}

/// Asserts that the child died of `SIGABRT` and printed `expected`.
fn assert_aborted_with(status: ExitStatus, stderr: &str, expected: &str) {
    assert_eq!(status.signal(), Some(libc::SIGABRT), "status {status:?}, stderr:\n{stderr}");
    assert!(stderr.contains(expected), "expected {expected:?} in stderr:\n{stderr}");
}

#[test]
fn named_green_thread_overflow_is_reported() {
    if child_scenario().as_deref() == Some("named") {
        disable_core_dumps();
        green::run(|| {
            let handle = Builder::new()
                .name("conn-17".into())
                .stack_size(64 * 1024)
                .spawn(|| recurse(0))
                .unwrap();
            let _ = handle.join();
        });
        unreachable!("the green thread returned from infinite recursion");
    }
    let (status, stderr) = run_child("named_green_thread_overflow_is_reported", "named");
    assert_aborted_with(status, &stderr, "green thread 'conn-17' overflowed its 64 KiB stack\n");
}

/// An unnamed thread is identified by its id; the default stack is 128 KiB.
#[test]
fn unnamed_green_thread_overflow_names_its_id() {
    if child_scenario().as_deref() == Some("unnamed") {
        disable_core_dumps();
        green::run(|| {
            let handle = green::spawn(|| {
                eprintln!("child: overflowing id {}", green::current().id().as_u64());
                recurse(0)
            });
            let _ = handle.join();
        });
        unreachable!("the green thread returned from infinite recursion");
    }
    let (status, stderr) = run_child("unnamed_green_thread_overflow_names_its_id", "unnamed");
    let id = stderr
        .lines()
        .find_map(|line| line.strip_prefix("child: overflowing id "))
        .unwrap_or_else(|| panic!("the child never started overflowing; stderr:\n{stderr}"));
    assert_aborted_with(
        status,
        &stderr,
        &format!("green thread '<unnamed>' (id {id}) overflowed its 128 KiB stack\n"),
    );
}

/// A runtime on a spawned OS thread (std gives it its own alternate signal
/// stack) reports the overflow the same way.
#[test]
fn overflow_on_runtime_in_spawned_os_thread() {
    if child_scenario().as_deref() == Some("spawned") {
        disable_core_dumps();
        thread::spawn(|| {
            green::run(|| {
                let handle = Builder::new()
                    .name("worker-3".into())
                    .stack_size(256 * 1024)
                    .spawn(|| recurse(0))
                    .unwrap();
                let _ = handle.join();
            });
        })
        .join()
        .unwrap();
        unreachable!("the green thread returned from infinite recursion");
    }
    let (status, stderr) = run_child("overflow_on_runtime_in_spawned_os_thread", "spawned");
    assert_aborted_with(status, &stderr, "green thread 'worker-3' overflowed its 256 KiB stack\n");
}

/// The main closure of `run` is a green thread too.
#[test]
fn main_closure_overflow_is_reported() {
    if child_scenario().as_deref() == Some("main") {
        disable_core_dumps();
        green::run(|| recurse(0));
        unreachable!("the main green thread returned from infinite recursion");
    }
    let (status, stderr) = run_child("main_closure_overflow_is_reported", "main");
    assert_aborted_with(status, &stderr, "green thread 'main' overflowed its 128 KiB stack\n");
}

/// A green thread whose stack lies in the middle of a batch mapping, a live
/// neighbour's stack right below its guard page (the pool hands out a
/// batch's slots bottom up), is reported by name: the in-place guard stops
/// it before it writes into the neighbour.
#[test]
fn overflow_mid_batch_is_reported() {
    if child_scenario().as_deref() == Some("mid-batch") {
        disable_core_dumps();
        green::run(|| {
            let neighbours: Vec<_> = (0..8)
                .map(|i| {
                    Builder::new()
                        .name(format!("parked-{i}"))
                        .stack_size(16 * 1024)
                        .spawn(green::park)
                        .unwrap()
                })
                .collect();
            green::yield_now();
            let handle = Builder::new()
                .name("mid-batch".into())
                .stack_size(16 * 1024)
                .spawn(|| recurse(0))
                .unwrap();
            let _ = handle.join();
            drop(neighbours);
        });
        unreachable!("the green thread returned from infinite recursion");
    }
    let (status, stderr) = run_child("overflow_mid_batch_is_reported", "mid-batch");
    assert_aborted_with(status, &stderr, "green thread 'mid-batch' overflowed its 16 KiB stack\n");
}
