//! The lab's measurement path end to end, in-process: a server of the
//! matrix on a thread, the green-thread load generator against it.
//! Each test runs for about half a second and stops by itself.

#![cfg(feature = "lab")]

mod util;

use std::net::{SocketAddr, TcpListener};
use std::thread::JoinHandle;
use std::time::Duration;

use greenloop::lab::{Cell, LoadSpec, measure_at, run_load, serve_cell};
use greenloop::net::server::{ServeReport, Shutdown};

use util::watchdog;

/// A hang, not a pace: each test takes about half a second.
const LIMIT: Duration = Duration::from_secs(60);

/// A cell's server on a thread of this process.
struct InProcess {
    addr: SocketAddr,
    shutdown: Shutdown,
    thread: JoinHandle<std::io::Result<ServeReport>>,
}

impl InProcess {
    fn start(spec: &str) -> InProcess {
        let cell: Cell = spec.parse().unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let shutdown = Shutdown::new();
        let stop = shutdown.clone();
        let thread = std::thread::spawn(move || serve_cell(&cell, listener, &stop));
        InProcess { addr, shutdown, thread }
    }

    fn stop(self) -> ServeReport {
        self.shutdown.trigger();
        self.thread.join().unwrap().unwrap()
    }
}

#[test]
fn sleep_service_under_20_connections() {
    watchdog(LIMIT, sleep_service_under_20_connections_body);
}

fn sleep_service_under_20_connections_body() {
    let server = InProcess::start("green-blocking-sleep");
    let cell: Cell = "green-blocking-sleep".parse().unwrap();
    let load = LoadSpec::http("/sleep?ms=20", 20, Duration::from_millis(500))
        .warmup(Duration::from_millis(100));
    let run = measure_at(&cell, server.addr, None, &load).unwrap();
    let report = server.stop();

    assert!(run.requests > 0, "{run}");
    assert_eq!(run.errors, 0, "{run}");
    assert!(run.p50_ms >= 20.0, "p50 below the sleep time: {run}");
    assert!(run.p99_ms >= run.p50_ms && run.max_ms >= run.p99_ms, "{run}");
    // 20 connections each at most one request per 20 ms.
    assert!(run.req_per_s <= 20.0 * 50.0 * 1.05, "{run}");
    assert_eq!(run.idle_conns, 0, "{run}");
    assert_eq!(run.unfinished, 0, "requests in flight at the stop finish in the linger: {run}");
    assert_eq!((run.runtime.as_str(), run.style.as_str()), ("green", "blocking"));
    assert_eq!(run.server_user_ns_per_req, None, "no pid given, no /proc figures");
    assert_eq!(report.accepted, 20, "one keep-alive connection per client");
}

#[test]
fn echo_with_accounting_of_a_pid() {
    watchdog(LIMIT, echo_with_accounting_of_a_pid_body);
}

fn echo_with_accounting_of_a_pid_body() {
    let server = InProcess::start("stackless-async-echo");
    let cell: Cell = "stackless-async-echo".parse().unwrap();
    let load = LoadSpec::echo(64, 8, Duration::from_millis(400)).warmup(Duration::from_millis(50));
    // This process stands in for the server: its /proc entries are read.
    let run = measure_at(&cell, server.addr, Some(std::process::id()), &load).unwrap();
    server.stop();

    assert!(run.requests > 0, "{run}");
    assert_eq!(run.errors, 0, "{run}");
    assert!(run.server_user_ns_per_req.is_some() && run.server_sys_ns_per_req.is_some(), "{run}");
    assert!(run.rss_kib.unwrap() > 0, "{run}");
    let json = serde_json::to_value(&run).unwrap();
    for field in greenloop::lab::RUN_FIELDS {
        assert!(json.get(field).is_some(), "report field {field} missing: {json}");
    }
}

#[test]
fn bad_statuses_are_counted_not_hidden() {
    watchdog(LIMIT, bad_statuses_are_counted_not_hidden_body);
}

fn bad_statuses_are_counted_not_hidden_body() {
    let server = InProcess::start("green-async-sleep");
    let load =
        LoadSpec::http("/nope", 4, Duration::from_millis(300)).warmup(Duration::from_millis(50));
    let result = run_load(server.addr, &load).unwrap();
    server.stop();

    assert_eq!(result.requests, 0, "{result}");
    assert!(result.errors > 0, "{result}");
    assert!(result.first_error.as_deref().unwrap().contains("HTTP status 404"), "{result}");
    assert_eq!(result.idle_conns, 4, "{result}");
}

#[test]
fn refused_connections_are_counted() {
    watchdog(LIMIT, refused_connections_are_counted_body);
}

fn refused_connections_are_counted_body() {
    // Bind, note the port, close: nothing listens there any more.
    let addr = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let load = LoadSpec::echo(8, 3, Duration::from_millis(200)).warmup(Duration::ZERO);
    let result = run_load(addr, &load).unwrap();

    assert_eq!(result.requests, 0);
    assert!(result.connect_errors >= 3, "{result}");
    assert_eq!(result.errors, 0, "{result}");
    assert!(result.first_error.as_deref().unwrap().contains("connect to"), "{result}");
}

#[test]
fn a_silent_server_cannot_hold_the_run() {
    watchdog(LIMIT, a_silent_server_cannot_hold_the_run_body);
}

fn a_silent_server_cannot_hold_the_run_body() {
    // Accepts connections (the backlog does) but never answers.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let load = LoadSpec::http("/sleep?ms=1", 5, Duration::from_millis(300))
        .warmup(Duration::from_millis(50))
        .linger(Duration::from_millis(100));
    let started = std::time::Instant::now();
    let result = run_load(addr, &load).unwrap();

    // The load ends at warm-up + window + linger (0.45 s); this bound only
    // tells a hang (a client that never gives up) from a finish, with a
    // margin of over 40× for a slow, busy machine.
    let hang = Duration::from_secs(20);
    assert!(started.elapsed() < hang, "still running after {:?}", started.elapsed());
    assert_eq!(result.requests, 0, "{result}");
    assert_eq!(result.unfinished, 5, "{result}");
    assert_eq!(result.errors, 0, "{result}");
    drop(listener);
}
