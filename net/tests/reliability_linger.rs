//! Error answers reach the client: a client that sends a head over the
//! limit, garbage, or a huge body with a bad `Content-Length`, and reads
//! while it sends, gets the whole error response and then end of stream,
//! never a reset, on every cell of the matrix; so does a client whose
//! request is in flight at shutdown.
//!
//! Without a lingering close the server closes with the client's bytes
//! unread, the kernel answers with a reset instead of a FIN, and the
//! client's read fails with `ECONNRESET` after the response (or, on a real
//! network, before it). With it, the server shuts down its write side
//! first, so the client has the response and the FIN before any reset; it
//! then drains input within [`HttpConfig::linger_bytes`] and closes.
//!
//! `GREENLOOP_LINGER_TRIES` sets the tries per case and cell (default 100).

mod reliability_util;
mod server_util;

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use greenloop_net::server::{Runtime, Style};
use greenloop_net::service::{HttpConfig, SleepHttp};
use reliability_util::eventually;
use server_util::{Cell, Server, all_cells, connect, read_response, watchdog};

const DEFAULT_TRIES: usize = 100;
/// Client threads per cell: at most this many hostile connections at once.
const CLIENTS: usize = 4;

/// Every cell of the matrix: the usual ones, the std-only handler without
/// the patch (one connection at a time), and sharded green and stackless
/// servers.
fn linger_cells() -> Vec<Cell> {
    let mut cells = all_cells();
    cells.push(Cell::new("green-std", Runtime::GreenStd, Style::Blocking));
    cells.push(Cell::new("green/blocking, 2 shards", Runtime::Green, Style::Blocking).cores(2));
    cells.push(Cell::new("stackless/async, 2 shards", Runtime::Stackless, Style::Async).cores(2));
    cells
}

/// What a hostile client sends, and the status it must read back.
struct Case {
    what: &'static str,
    bytes: Vec<u8>,
    status: u16,
}

/// A request head that grows to 20 KiB without ending (in fields of 200
/// bytes: over 8 KiB before it has too many fields).
fn huge_head() -> Vec<u8> {
    let mut bytes = b"GET /sleep?ms=0 HTTP/1.1\r\nHost: t\r\n".to_vec();
    while bytes.len() < 20 * 1024 {
        bytes.extend_from_slice(format!("X-Pad: {}\r\n", "a".repeat(191)).as_bytes());
    }
    bytes
}

/// 1 MiB of bytes that are no request (a non-token byte first, then a
/// xorshift stream).
fn garbage() -> Case {
    let mut state: u32 = 0x2545_f491;
    let mut bytes = vec![b'@'];
    bytes.extend((1..1 << 20).map(|_| {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        state.to_le_bytes()[0]
    }));
    Case { what: "1 MiB of garbage", bytes, status: 400 }
}

/// A 10 MB body behind a `Content-Length` that is no number.
fn bad_length_body() -> Case {
    let mut bytes = b"POST /sleep?ms=0 HTTP/1.1\r\nHost: t\r\nContent-Length: ten\r\n\r\n".to_vec();
    bytes.resize(bytes.len() + 10_000_000, b'x');
    Case { what: "10 MB body with a bad length", bytes, status: 400 }
}

/// Everything the server sends until it closes; `Err` on a reset or any
/// other read error, with what arrived before it.
fn read_until_close(stream: &mut TcpStream) -> Result<Vec<u8>, String> {
    let mut received = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return Ok(received),
            Ok(n) => received.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => {
                return Err(format!(
                    "{e} ({:?}) after {:?}",
                    e.kind(),
                    String::from_utf8_lossy(&received)
                ));
            }
        }
    }
}

/// One try: send `bytes` from a second thread while this one reads.
fn try_once(addr: SocketAddr, bytes: &Arc<Vec<u8>>) -> Result<u16, String> {
    let mut reader = connect(addr);
    let mut writer = reader.try_clone().map_err(|e| format!("try_clone: {e}"))?;
    let bytes = Arc::clone(bytes);
    // The server answers after the first bytes and stops reading after the
    // linger bound: a failed write is expected, the reads are checked.
    let sender = thread::spawn(move || {
        let _ = writer.write_all(&bytes);
    });
    let received = read_until_close(&mut reader);
    // Unblocks a sender still writing, if the server has not closed yet.
    drop(reader);
    sender.join().map_err(|_| "the sender panicked".to_string())?;
    let received = received?;
    let mut rest = &received[..];
    let response = read_response(&mut rest).map_err(|e| format!("{e} in {received:?}"))?;
    if !rest.is_empty() {
        return Err(format!("more after the response: {:?}", String::from_utf8_lossy(rest)));
    }
    if !response.closes() {
        return Err(format!("no Connection: close in {response:?}"));
    }
    Ok(response.status)
}

/// Every case `tries` times on `cell`, from [`CLIENTS`] threads.
fn hammer(cell: Cell, cases: &Arc<Vec<Case>>, tries: usize) {
    let server = Server::start(SleepHttp::default(), cell);
    let addr = server.addr;
    let clients: Vec<_> = (0..CLIENTS)
        .map(|client| {
            let cases = Arc::clone(cases);
            thread::spawn(move || {
                for case in cases.iter() {
                    let bytes = Arc::new(case.bytes.clone());
                    for i in (client..tries).step_by(CLIENTS) {
                        match try_once(addr, &bytes) {
                            Ok(status) if status == case.status => {}
                            Ok(status) => {
                                panic!("{cell}: {}: try {i}: status {status}", case.what)
                            }
                            Err(e) => panic!("{cell}: {}: try {i}: {e}", case.what),
                        }
                    }
                }
            })
        })
        .collect();
    for client in clients {
        if let Err(panic) = client.join() {
            std::panic::resume_unwind(panic);
        }
    }
    let report = server.stop_expecting((cases.len() * tries) as u64);
    assert_eq!(report.panicked, 0, "{cell}: {report:?}");
}

#[test]
fn error_answers_then_end_of_stream_without_a_reset_on_every_cell() {
    let tries = std::env::var("GREENLOOP_LINGER_TRIES")
        .map(|v| v.parse().expect("GREENLOOP_LINGER_TRIES: a number of tries"))
        .unwrap_or(DEFAULT_TRIES);
    let head = Case { what: "20 KiB head", bytes: huge_head(), status: 431 };
    let cases = Arc::new(vec![head, garbage(), bad_length_body()]);
    // The bound a try needs is tiny (loopback, no sleeps); this only turns
    // a hang into a failure.
    watchdog(Duration::from_secs(120 + tries as u64 * 3), move || {
        for cell in linger_cells() {
            hammer(cell, &cases, tries);
        }
    });
}

/// Input within the bound is drained before the close, so the close is a
/// FIN, not a reset: the client keeps its socket open after the response
/// and end of stream, the server's linger time runs out, and once the
/// server has let go of the connection the client's socket holds no error
/// (a reset would leave `EPIPE` there).
#[test]
fn input_within_the_bound_is_drained_and_the_close_is_clean_on_every_cell() {
    const AT_ONCE: usize = 3;
    let linger_time = Duration::from_millis(200);
    let service = SleepHttp { config: HttpConfig { linger_time, ..HttpConfig::default() } };
    watchdog(Duration::from_secs(120), move || {
        for cell in linger_cells() {
            let server = Server::start(service, cell);
            let mut clients: Vec<TcpStream> = (0..AT_ONCE).map(|_| server.connect()).collect();
            for client in &mut clients {
                client.write_all(&huge_head()).expect("send the head");
            }
            for client in &mut clients {
                let received = read_until_close(client).unwrap_or_else(|e| panic!("{cell}: {e}"));
                let response = read_response(&mut &received[..]).expect("a response");
                assert_eq!(response.status, 431, "{cell}: {response:?}");
            }
            eventually(Duration::from_secs(10), || match server.shutdown().open_connections() {
                0 => Ok(()),
                n => Err(format!("{cell}: {n} connections still served")),
            });
            // The server closes its descriptor just after it forgets the
            // connection; a reset would reach the client at once (loopback).
            // Watch for one, bounded.
            for _ in 0..20 {
                for client in &clients {
                    let error = client.take_error().expect("SO_ERROR");
                    assert!(error.is_none(), "{cell}: the server reset: {error:?}");
                }
                thread::sleep(Duration::from_millis(10));
            }
            server.stop_expecting(AT_ONCE as u64);
        }
    });
}

/// At shutdown too: a request in flight is answered with
/// `Connection: close`, and the bytes the client sent meanwhile (queued in
/// the kernel, unread) are drained; so are bytes it sends after the
/// response, until its own end of stream. The client reads the response
/// and end of stream, not a reset: the server's read half was shut by the
/// trigger, and had it sent its FIN before the client's, the kernel would
/// have answered the late bytes with a reset. Cells run side by side: each
/// waits out one sleep.
#[test]
fn shutdown_answers_the_request_in_flight_then_closes_without_a_reset_on_every_cell() {
    /// Long enough that shutdown is surely triggered while it runs.
    const SLEEP_MS: u64 = 1_000;
    watchdog(Duration::from_secs(120), || {
        let cells: Vec<_> = linger_cells()
            .into_iter()
            .map(|cell| {
                thread::spawn(move || {
                    let server = Server::start(SleepHttp::default(), cell);
                    let mut http = server_util::Http::connect(server.addr);
                    // Once the first response is in, the second request is
                    // being served (sleeping, not reading).
                    http.send(
                        format!(
                            "GET /sleep?ms=0 HTTP/1.1\r\n\r\nGET /sleep?ms={SLEEP_MS} HTTP/1.1\r\n\r\n"
                        )
                        .as_bytes(),
                    );
                    assert_eq!(http.response().status, 200, "{cell}: first response");
                    http.send(&huge_head());
                    server.shutdown().trigger();
                    let response = http.response();
                    assert_eq!(response.status, 200, "{cell}: {response:?}");
                    assert!(response.closes(), "{cell}: {response:?}");
                    http.send(&huge_head());
                    http.writer.shutdown(std::net::Shutdown::Write).expect("shutdown(WR)");
                    let rest = read_until_close(http.reader.get_mut())
                        .map(|rest| [http.reader.buffer(), &rest].concat())
                        .unwrap_or_else(|e| panic!("{cell}: after the response: {e}"));
                    assert!(rest.is_empty(), "{cell}: more after the response: {rest:?}");
                    drop(http);
                    server.stop_expecting(1);
                })
            })
            .collect();
        for cell in cells {
            if let Err(panic) = cell.join() {
                std::panic::resume_unwind(panic);
            }
        }
    });
}

/// The stackless cell that runs blocking handlers inline awaits a
/// lingering close instead of blocking its loop on it: while one client
/// keeps its connection open after an error answer (the server discarding
/// and waiting for its end of stream, for up to an hour), another client's
/// requests are all answered. A blocking linger would answer none of them
/// before the client's read timeout.
#[test]
fn a_lingering_close_does_not_hold_the_inline_loop() {
    const REQUESTS: usize = 5;
    let linger_time = Duration::from_secs(3_600);
    let service = SleepHttp { config: HttpConfig { linger_time, ..HttpConfig::default() } };
    watchdog(Duration::from_secs(120), move || {
        let server = Server::start(service, server_util::stackless_inline());
        let mut lingering = server.connect();
        lingering.write_all(b"GARBAGE\r\n\r\n").expect("send garbage");
        let received = read_until_close(&mut lingering).expect("the error answer, then EOF");
        let response = read_response(&mut &received[..]).expect("a response");
        assert_eq!(response.status, 400, "{response:?}");

        let mut other = server_util::Http::connect(server.addr);
        let answered = (0..REQUESTS).filter(|_| other.get("/sleep?ms=0", "").status == 200).count();
        assert_eq!(answered, REQUESTS);
        assert_eq!(server.shutdown().open_connections(), 2, "the first one still lingers");

        drop((lingering, other));
        eventually(Duration::from_secs(10), || match server.shutdown().open_connections() {
            0 => Ok(()),
            n => Err(format!("{n} connections still served")),
        });
        server.stop_expecting(2);
    });
}
