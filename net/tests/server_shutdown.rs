//! Graceful shutdown on every cell: stop accepting and close the listener,
//! let requests in flight finish, give up after the grace period.
//!
//! "In flight" is made certain, not left to timing: the client pipelines
//! `ms=0` and then the long request in one write. The session parses the
//! second request before it writes the first response, so once the first
//! response is in, the second is being served.

mod server_util;

use std::io::{self, Read};
use std::net::{SocketAddr, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

use greenloop_net::server::Runtime;
use greenloop_net::service::SleepHttp;
use server_util::{Cell, Http, Server, all_cells, watchdog};

const LIMIT: Duration = Duration::from_secs(60);

/// A connection whose second request (`GET /sleep?ms={ms}`) is being
/// served when this returns.
fn request_in_flight(server: &Server, ms: u64) -> Http {
    let mut http = Http::connect(server.addr);
    http.send(
        format!(
            "GET /sleep?ms=0 HTTP/1.1\r\nHost: t\r\n\r\nGET /sleep?ms={ms} HTTP/1.1\r\nHost: t\r\n\r\n"
        )
        .as_bytes(),
    );
    let first = http.response();
    assert_eq!(first.status, 200, "{}: {first:?}", server.cell);
    http
}

fn refused(addr: SocketAddr) -> Result<(), String> {
    match TcpStream::connect(addr) {
        Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => Ok(()),
        Err(e) => Err(format!("connect failed, but not refused: {e}")),
        Ok(_) => Err("connect succeeded".into()),
    }
}

/// Polls (bounded) until connecting to `addr` is refused.
fn wait_refused(addr: SocketAddr, within: Duration) -> Result<(), String> {
    let start = Instant::now();
    loop {
        match refused(addr) {
            Ok(()) => return Ok(()),
            Err(e) if start.elapsed() > within => return Err(e),
            Err(_) => thread::sleep(Duration::from_millis(5)),
        }
    }
}

#[test]
fn in_flight_requests_finish_and_the_listener_closes() {
    watchdog(LIMIT, || {
        for cell in all_cells() {
            let server = Server::start(SleepHttp::default(), cell);
            let addr = server.addr;
            let mut http = request_in_flight(&server, 300);
            server.shutdown().trigger();
            // The listener closes while the request is still served (the
            // inline cell's loop is busy serving it, so it closes later).
            if !cell.is_inline() {
                wait_refused(addr, Duration::from_secs(5))
                    .unwrap_or_else(|e| panic!("{cell}: listener still open: {e}"));
            }
            let response = http.response();
            assert_eq!(response.status, 200, "{cell}: in flight: {response:?}");
            assert_eq!(response.body_str(), r#"{"message":"Done"}"#, "{cell}");
            drop(http);
            let report = server.stop_expecting(1);
            assert_eq!(report.accept_errors, 0, "{cell}: {report:?}");
            refused(addr).unwrap_or_else(|e| panic!("{cell}: after serve returned: {e}"));
        }
    });
}

#[test]
fn a_request_longer_than_the_grace_period_is_left_unfinished() {
    watchdog(LIMIT, || {
        // Not the inline cell: its loop is held by the request itself, so
        // no timer can end the grace period (the anti-pattern on purpose).
        for cell in all_cells().into_iter().filter(|c| !c.is_inline()) {
            let grace = Duration::from_millis(200);
            let server = Server::start(SleepHttp::default(), cell.grace(grace));
            let mut http = request_in_flight(&server, 5000);
            let stopping = Instant::now();
            let report = server.stop();
            let took = stopping.elapsed();
            assert_eq!(report.accepted, 1, "{cell}: {report:?}");
            assert_eq!(report.unfinished, 1, "{cell}: {report:?}");
            assert!(took >= grace, "{cell}: returned after {took:?}, before the grace period");
            assert!(took < Duration::from_secs(4), "{cell}: waited {took:?} for a 5 s request");
            // Green threads and tasks die with their runtime, which closes
            // the connection; OS threads (pool or not) outlive serve.
            if matches!(cell.config.runtime, Runtime::Green | Runtime::GreenPatched)
                || cell.name == "stackless/async"
            {
                http.expect_close(&format!("{cell}: connection after serve returned"));
            }
        }
    });
}

/// What the server did with a keep-alive connection once shutdown began:
/// `Ok` if it said `Connection: close` (when asked) and closed.
fn closes_after_shutdown(cell: Cell, http: &mut Http) -> Result<(), String> {
    http.writer.set_read_timeout(Some(Duration::from_secs(3))).map_err(|e| e.to_string())?;
    let mut byte = [0];
    match http.reader.read(&mut byte) {
        Ok(0) => Ok(()),
        Ok(_) => Err(format!("{cell}: unexpected bytes")),
        Err(e) if e.kind() == io::ErrorKind::ConnectionReset => Ok(()),
        Err(e) => Err(format!("{cell}: connection still open 3 s after shutdown ({e})")),
    }
}

// A keep-alive request being served when shutdown begins is answered
// `Connection: close` and its connection closed, though the client keeps
// its end open (it used to be answered keep-alive, and serve waited out
// the grace period with the connection unfinished).
#[test]
fn a_keep_alive_request_in_flight_at_shutdown_is_answered_close() {
    watchdog(LIMIT, || {
        let mut failures = Vec::new();
        for cell in all_cells().into_iter().filter(|c| !c.is_inline()) {
            let server = Server::start(SleepHttp::default(), cell.grace(Duration::from_secs(5)));
            let mut http = request_in_flight(&server, 300);
            server.shutdown().trigger();
            let response = http.response();
            assert_eq!(response.status, 200, "{cell}: {response:?}");
            if !response.closes() {
                failures.push(format!("{cell}: answered {:?}", response.header("connection")));
            }
            if let Err(e) = closes_after_shutdown(cell, &mut http) {
                failures.push(e);
            }
            // The client still holds its end: nothing left for serve to wait for.
            let report = server.stop();
            if report.unfinished != 0 {
                failures.push(format!("{cell}: {report:?}"));
            }
        }
        assert!(failures.is_empty(), "{failures:#?}");
    });
}

// An idle keep-alive connection (between requests, nothing in flight) is
// closed at shutdown: it used to keep serve waiting for the whole grace
// period and be reported unfinished (issue #6).
#[test]
fn idle_keep_alive_connections_are_closed_on_shutdown() {
    watchdog(LIMIT, || {
        let mut failures = Vec::new();
        // The inline cell too: its loop is blocked in the idle read, and
        // the switch reaches the connection anyway.
        for cell in all_cells() {
            let server = Server::start(SleepHttp::default(), cell.grace(Duration::from_secs(2)));
            let mut http = Http::connect(server.addr);
            assert_eq!(http.get("/sleep?ms=0", "").status, 200, "{cell}");
            server.shutdown().trigger();
            if let Err(e) = closes_after_shutdown(cell, &mut http) {
                failures.push(e);
            }
            let report = server.stop();
            if report.unfinished != 0 {
                failures.push(format!("{cell}: {report:?}"));
            }
        }
        assert!(failures.is_empty(), "{failures:#?}");
    });
}
