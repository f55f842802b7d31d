//! The HTTP sleep service on every cell of the matrix, through real
//! loopback sockets: the exact response, keep-alive and close rules,
//! pipelining, and every kind of bad input.

mod server_util;

use std::io::{Read, Write};
use std::net::Shutdown as HalfClose;
use std::time::Duration;

use greenloop_net::service::SleepHttp;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use server_util::{Http, Response, Server, all_cells, read_response, watchdog};

const DONE: &str = r#"{"message":"Done"}"#;
const LIMIT: Duration = Duration::from_secs(60);

fn assert_done(cell: &str, what: &str, response: &Response) {
    assert_eq!(response.status, 200, "{cell}: {what}: {response:?}");
    assert_eq!(response.body_str(), DONE, "{cell}: {what}");
    assert_eq!(response.header("content-length"), Some("18"), "{cell}: {what}");
    assert_eq!(response.header("content-type"), Some("application/json"), "{cell}: {what}");
}

#[test]
fn sleep_responses_keep_alive_close_and_pipelining_on_every_cell() {
    watchdog(LIMIT, || {
        for cell in all_cells() {
            let server = Server::start(SleepHttp::default(), cell);
            let mut conns = 0;

            // Exact body and length; HTTP/1.1 keeps the connection by
            // default: two requests, then `Connection: close` is honoured.
            let mut http = Http::connect(server.addr);
            conns += 1;
            for i in 0..2 {
                let response = http.get("/sleep?ms=1", "");
                assert_done(cell.name, "keep-alive request", &response);
                assert_eq!(response.header("connection"), Some("keep-alive"), "{cell} #{i}");
            }
            let response = http.get("/sleep?ms=1", "Connection: close\r\n");
            assert_done(cell.name, "Connection: close", &response);
            assert!(response.closes(), "{cell}: {response:?}");
            http.expect_close(&format!("{cell}: after Connection: close"));

            // HTTP/1.0 closes by default...
            let mut http = Http::connect(server.addr);
            conns += 1;
            http.send(b"GET /sleep?ms=1 HTTP/1.0\r\n\r\n");
            let response = http.response();
            assert_done(cell.name, "HTTP/1.0", &response);
            assert!(response.closes(), "{cell}: {response:?}");
            http.expect_close(&format!("{cell}: after an HTTP/1.0 request"));

            // ... and keeps the connection when asked to.
            let mut http = Http::connect(server.addr);
            conns += 1;
            for _ in 0..2 {
                http.send(b"GET /sleep?ms=1 HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
                let response = http.response();
                assert_done(cell.name, "HTTP/1.0 keep-alive", &response);
                assert_eq!(response.header("connection"), Some("keep-alive"), "{cell}");
            }
            drop(http);

            // Pipelined: three requests in one write, answered in order
            // (the 404 waits behind the first sleep).
            let mut http = Http::connect(server.addr);
            conns += 1;
            http.send(
                b"GET /sleep?ms=30 HTTP/1.1\r\nHost: t\r\n\r\n\
                  GET /nope HTTP/1.1\r\nHost: t\r\n\r\n\
                  GET /sleep?ms=10 HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
            );
            let responses: Vec<Response> = (0..3).map(|_| http.response()).collect();
            let statuses: Vec<u16> = responses.iter().map(|r| r.status).collect();
            assert_eq!(statuses, [200, 404, 200], "{cell}: {responses:?}");
            assert_done(cell.name, "pipelined #1", &responses[0]);
            assert_eq!(responses[1].body_str(), r#"{"error":"not found"}"#, "{cell}");
            assert_done(cell.name, "pipelined #3", &responses[2]);
            http.expect_close(&format!("{cell}: after the pipelined close"));

            server.stop_expecting(conns);
        }
    });
}

/// Sends `request`, expects one response with `status` and the server
/// closing after it.
fn expect_error_and_close(server: &Server, request: &[u8], status: u16, what: &str) -> Response {
    let mut http = Http::connect(server.addr);
    http.send(request);
    let response = http.response();
    let cell = server.cell;
    assert_eq!(response.status, status, "{cell}: {what}: {response:?}");
    assert!(response.closes(), "{cell}: {what}: {response:?}");
    http.expect_close(&format!("{cell}: {what}"));
    response
}

#[test]
fn bad_input_gets_its_status_on_every_cell_and_the_server_stays_up() {
    watchdog(LIMIT, || {
        for cell in all_cells() {
            let server = Server::start(SleepHttp::default(), cell);
            let mut conns = 0;

            // Malformed request lines and a bad header: 400 and close.
            for (request, what) in [
                (&b"GET /sleep?ms=1\r\n\r\n"[..], "two-part request line"),
                (b"GET  /sleep?ms=1 HTTP/1.1\r\n\r\n", "double space in the request line"),
                (b"GET /sleep?ms=1 HTTP/1.1 extra\r\n\r\n", "four-part request line"),
                (b"GET /sleep?ms=1 HTTP/1.1\r\nHost : t\r\n\r\n", "space before the colon"),
                (b"GET /sleep?ms=1 HTTP/1.1\r\nNoColon\r\n\r\n", "header without a colon"),
            ] {
                expect_error_and_close(&server, request, 400, what);
                conns += 1;
            }

            // Well-formed requests the service refuses keep the connection.
            let mut http = Http::connect(server.addr);
            conns += 1;
            for (target, status) in [
                ("/sleep", 400),
                ("/sleep?ms=", 400),
                ("/sleep?ms=abc", 400),
                ("/sleep?ms=-1", 400),
                ("/sleep?ms=60001", 400),
                ("/nope", 404),
                ("/", 404),
            ] {
                let response = http.get(target, "");
                assert_eq!(response.status, status, "{cell}: {target}: {response:?}");
                assert!(!response.closes(), "{cell}: {target}: {response:?}");
            }
            // POST with a body: 405 with `Allow: GET`; the body is skipped
            // and the next request on the connection is served.
            http.send(b"POST /sleep?ms=1 HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhello");
            let response = http.response();
            assert_eq!(response.status, 405, "{cell}: POST: {response:?}");
            assert_eq!(response.header("allow"), Some("GET"), "{cell}: POST: {response:?}");
            let response = http.get("/sleep?ms=0", "Connection: close\r\n");
            assert_done(cell.name, "GET after the POST body", &response);
            http.expect_close(&format!("{cell}: after Connection: close"));

            // A head over 8 KiB (no end in sight), and one that ends but
            // too late: 431 and close. Each fits the server's read buffer
            // in one write, so the server reads it all before closing.
            let mut huge = b"GET /sleep?ms=1 HTTP/1.1\r\n".to_vec();
            while huge.len() < 9000 {
                huge.extend_from_slice(b"X-Pad: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n");
            }
            expect_error_and_close(&server, &huge, 431, "unfinished head over 8 KiB");
            huge.extend_from_slice(b"\r\n");
            expect_error_and_close(&server, &huge, 431, "complete head over 8 KiB");
            let mut many = b"GET /sleep?ms=1 HTTP/1.1\r\n".to_vec();
            for i in 0..65 {
                many.extend_from_slice(format!("X-{i}: v\r\n").as_bytes());
            }
            many.extend_from_slice(b"\r\n");
            expect_error_and_close(&server, &many, 431, "65 header fields");
            conns += 3;

            // Still alive.
            let mut http = Http::connect(server.addr);
            conns += 1;
            assert_done(cell.name, "after the bad input", &http.get("/sleep?ms=1", ""));
            drop(http);

            server.stop_expecting(conns);
        }
    });
}

/// Random bytes, optionally after a valid-looking start so the parser is
/// pushed past the method.
fn garbage() -> impl Strategy<Value = (&'static [u8], Vec<u8>)> {
    let prefix = prop::sample::select(vec![
        &b""[..],
        b"",
        b"GET ",
        b"GET /sleep?ms=1 ",
        b"GET /sleep?ms=1 HTTP/1.1\r\n",
    ]);
    (prefix, prop::collection::vec(any::<u8>(), 0..256))
}

/// What the server sent in answer to garbage: whole responses, then it
/// must have closed.
fn answers_to(server: &Server, bytes: &[u8]) -> Result<Vec<Response>, TestCaseError> {
    let mut stream = server.connect();
    stream.write_all(bytes).map_err(|e| TestCaseError::fail(format!("write: {e}")))?;
    // No more input: a partial request must end in a close, not a wait.
    stream.shutdown(HalfClose::Write).map_err(|e| TestCaseError::fail(format!("{e}")))?;
    let mut received = Vec::new();
    match stream.read_to_end(&mut received) {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
        Err(e) => return Err(TestCaseError::fail(format!("no close within the timeout: {e}"))),
    }
    let mut responses = Vec::new();
    let mut rest = &received[..];
    while !rest.is_empty() {
        let response = read_response(&mut rest)
            .map_err(|e| TestCaseError::fail(format!("unreadable answer {received:?}: {e}")))?;
        responses.push(response);
    }
    Ok(responses)
}

#[test]
fn garbage_gets_an_error_or_a_close_never_a_hang() {
    watchdog(LIMIT, || {
        let servers: Vec<Server> =
            all_cells().into_iter().map(|cell| Server::start(SleepHttp::default(), cell)).collect();
        let cases = 24;
        let mut runner =
            TestRunner::new(Config { cases, failure_persistence: None, ..Config::default() });
        // Shrinking runs extra cases: count what was really sent.
        let cases_run = std::cell::Cell::new(0u64);
        runner
            .run(&garbage(), |(prefix, tail)| {
                let bytes = [prefix, &tail[..]].concat();
                cases_run.set(cases_run.get() + 1);
                for server in &servers {
                    let responses = answers_to(server, &bytes)?;
                    let statuses: Vec<u16> = responses.iter().map(|r| r.status).collect();
                    let cell = server.cell;
                    // Random bytes can complete a request after a valid
                    // request line (then 200); with no prefix they cannot.
                    let allowed: &[u16] =
                        if prefix.len() > 16 { &[200, 400, 404, 431, 501, 505] } else { &[400] };
                    prop_assert!(
                        statuses.iter().all(|s| allowed.contains(s)),
                        "{}: statuses {:?} for {:?}",
                        cell,
                        statuses,
                        String::from_utf8_lossy(&bytes)
                    );
                    // A response that closes is the last thing sent.
                    if let Some(pos) = responses.iter().position(Response::closes) {
                        prop_assert_eq!(pos, responses.len() - 1, "{}: {:?}", cell, statuses);
                    }
                }
                Ok(())
            })
            .unwrap();
        for server in servers {
            // Still alive after the garbage.
            let response = server_util::sleep_once(server.addr, 0);
            assert_done(server.cell.name, "after garbage", &response);
            server.stop_expecting(cases_run.get() + 1);
        }
    });
}
