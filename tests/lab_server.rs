//! `ServerProc` with stand-in servers (`sh`), so no re-execution of the
//! test binary is needed: start, `/proc` accounting, stop, failed starts.

#![cfg(feature = "lab")]

mod util;

use std::process::Command;
use std::time::{Duration, Instant};

use greenloop::lab::ServerProc;

use util::watchdog;

/// A hang, not a pace: each test takes about a second.
const LIMIT: Duration = Duration::from_secs(60);

fn sh(script: &str) -> Command {
    let mut c = Command::new("sh");
    c.arg("-c").arg(script);
    c
}

#[test]
fn a_server_that_prints_its_address_is_started_read_and_stopped() {
    watchdog(LIMIT, a_server_that_prints_its_address_is_started_read_and_stopped_body);
}

fn a_server_that_prints_its_address_is_started_read_and_stopped_body() {
    // `exec sleep`: SIGTERM ends it (sh would wait for its child first).
    let server =
        ServerProc::spawn_command(sh("echo 'listening on 127.0.0.1:9'; exec sleep 30"), "sleeper")
            .unwrap();
    assert_eq!(server.addr(), "127.0.0.1:9".parse().unwrap());
    assert!(server.rss_kib().unwrap() > 0);
    assert!(server.cpu_times().unwrap().total() < Duration::from_secs(5));
    // The set captured before any pinning narrowed it.
    let cpus = greenloop::lab::affinity::allowed_cpus().unwrap().len();
    assert_eq!(server.pinned(), cpus >= 2);

    let started = Instant::now();
    let status = server.stop().unwrap();
    assert!(started.elapsed() < Duration::from_secs(5));
    // sleep has no SIGTERM handler: it dies of the signal.
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(status.signal(), Some(libc::SIGTERM));
}

#[test]
fn a_server_that_dies_first_is_reported_with_its_stderr() {
    watchdog(LIMIT, a_server_that_dies_first_is_reported_with_its_stderr_body);
}

fn a_server_that_dies_first_is_reported_with_its_stderr_body() {
    let e =
        ServerProc::spawn_command(sh("echo 'no port for you' >&2; exit 3"), "quitter").unwrap_err();
    let msg = e.to_string();
    assert!(msg.contains("server 'quitter'"), "{msg}");
    assert!(msg.contains("exited before listening"), "{msg}");
    assert!(msg.contains("exit status: 3"), "{msg}");
    assert!(msg.contains("no port for you"), "{msg}");
}

#[test]
fn a_server_that_says_something_else_is_killed() {
    watchdog(LIMIT, a_server_that_says_something_else_is_killed_body);
}

fn a_server_that_says_something_else_is_killed_body() {
    let e = ServerProc::spawn_command(sh("echo hello; exec sleep 30"), "chatty").unwrap_err();
    let msg = e.to_string();
    assert!(msg.contains("first line was \"hello\""), "{msg}");
}

#[test]
fn a_missing_program_is_named() {
    watchdog(LIMIT, a_missing_program_is_named_body);
}

fn a_missing_program_is_named_body() {
    let e = ServerProc::spawn_command(Command::new("/nonexistent/lab"), "ghost").unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::NotFound);
    assert!(e.to_string().contains("cannot start server 'ghost'"), "{e}");
}
