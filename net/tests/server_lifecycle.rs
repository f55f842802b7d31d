//! A connection's life on every cell, whatever the peer does: too slow to
//! send a request (header timeout, issue #9), half-closed after pipelining
//! (every answer, then a close), or reset in the middle of a response (the
//! server keeps serving and releases the connection).

mod server_util;

use std::io::{self, Write};
use std::net::{Shutdown as HalfClose, TcpStream};
use std::os::fd::AsRawFd;
use std::thread;
use std::time::{Duration, Instant};

use greenloop_net::service::{Echo, HttpConfig, Service, SleepHttp};
use server_util::{Cell, Http, Server, all_cells, read_response, sleep_once, watchdog};

const LIMIT: Duration = Duration::from_secs(120);

/// The sleep service with a header timeout short enough for tests.
fn impatient() -> SleepHttp {
    SleepHttp {
        config: HttpConfig { header_timeout: Duration::from_millis(200), ..HttpConfig::default() },
    }
}

#[test]
fn a_slowloris_gets_408_and_an_idle_connection_is_closed_on_every_cell() {
    watchdog(LIMIT, || {
        for cell in all_cells() {
            let server = Server::start(impatient(), cell);

            // A head trickled in, one header line every 50 ms, never ended:
            // the timeout counts from the first byte, not the last.
            let mut http = Http::connect(server.addr);
            let mut writer = http.writer.try_clone().expect("try_clone");
            let trickle = thread::spawn(move || {
                writer.write_all(b"GET /sleep?ms=0 HTTP/1.1\r\n")?;
                // 60 lines in 3 s: under MAX_HEADERS (no 431), 15 times the
                // timeout, and over by itself.
                for _ in 0..60 {
                    thread::sleep(Duration::from_millis(50));
                    writer.write_all(b"X: y\r\n")?;
                }
                Ok::<(), io::Error>(())
            });
            let response = http.response();
            assert_eq!(response.status, 408, "{cell}: {response:?}");
            assert!(response.closes(), "{cell}: {response:?}");
            http.expect_close(&format!("{cell}: after the 408"));
            let trickled = trickle.join().expect("trickle thread");
            assert!(trickled.is_err(), "{cell}: the whole trickle went in: no timeout");

            // Idle from the start, and idle after a keep-alive response:
            // closed without a word.
            let mut idle = Http::connect(server.addr);
            idle.expect_close(&format!("{cell}: idle new connection"));
            let mut kept = Http::connect(server.addr);
            assert_eq!(kept.get("/sleep?ms=0", "").status, 200, "{cell}");
            kept.expect_close(&format!("{cell}: idle keep-alive connection"));

            server.stop_expecting(3);
        }
    });
}

#[test]
fn a_half_closed_pipeline_gets_every_answer_then_a_close_on_every_cell() {
    watchdog(LIMIT, || {
        let requests = ["/sleep?ms=0", "/sleep?ms=30", "/nope", "/sleep?ms=0", "/sleep?ms=10"];
        let pipeline: String =
            requests.iter().map(|r| format!("GET {r} HTTP/1.1\r\nHost: t\r\n\r\n")).collect();
        for cell in all_cells() {
            let server = Server::start(SleepHttp::default(), cell);
            let mut http = Http::connect(server.addr);
            http.send(pipeline.as_bytes());
            http.writer.shutdown(HalfClose::Write).expect("shutdown(Write)");
            let statuses: Vec<u16> = requests
                .iter()
                .map(|r| match read_response(&mut http.reader) {
                    Ok(response) => response.status,
                    Err(e) => panic!("{cell}: no answer to {r} after the half-close: {e}"),
                })
                .collect();
            assert_eq!(statuses, [200, 200, 404, 200, 200], "{cell}");
            http.expect_close(&format!("{cell}: after the last answer"));
            server.stop_expecting(1);
        }
    });
}

/// How a peer is in the middle of a response when it resets.
#[derive(Clone, Copy, Debug)]
enum MidResponse {
    /// Echo: the peer writes without reading until the server is stuck
    /// writing the echo back.
    Echo,
    /// HTTP: thousands of pipelined requests, none of the answers read,
    /// until the server is stuck writing them.
    Pipeline,
    /// HTTP: a `GET /sleep?ms=300` being served.
    Sleep,
}

/// Sets SO_LINGER to 0: closing `stream` then sends a reset, not a FIN.
fn linger_zero(stream: &TcpStream) {
    let linger = libc::linger { l_onoff: 1, l_linger: 0 };
    let len = libc::socklen_t::try_from(size_of::<libc::linger>()).expect("socklen_t");
    // SAFETY: setsockopt(2) on an open socket with a pointer to a live
    // `linger` and its exact size.
    let rc = unsafe {
        libc::setsockopt(
            stream.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&raw const linger).cast(),
            len,
        )
    };
    assert_eq!(rc, 0, "SO_LINGER: {}", io::Error::last_os_error());
}

/// Writes copies of `chunk` without reading anything back until a write
/// makes no progress for 200 ms: both socket buffers are full, so the
/// server is blocked writing its answer. Bounded at 256 MiB.
fn write_until_stuck(stream: &mut TcpStream, chunk: &[u8], cell: Cell) {
    stream.set_write_timeout(Some(Duration::from_millis(200))).expect("set_write_timeout");
    let mut sent = 0usize;
    while sent < 256 << 20 {
        match stream.write(chunk) {
            Ok(n) => sent += n,
            Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => {
                return;
            }
            Err(e) => panic!("{cell}: write failed after {sent} bytes: {e}"),
        }
    }
    panic!("{cell}: 256 MiB sent and never stuck: is the server answering?");
}

/// Resets a connection in the middle of a response (`how`).
fn reset_mid_response(server: &Server, how: MidResponse) {
    let cell = server.cell;
    let mut http = Http::connect(server.addr);
    match how {
        MidResponse::Echo => write_until_stuck(&mut http.writer, &[b'e'; 64 * 1024], cell),
        MidResponse::Pipeline => {
            let requests = b"GET /nope HTTP/1.1\r\n\r\n".repeat(2048);
            write_until_stuck(&mut http.writer, &requests, cell);
        }
        MidResponse::Sleep => {
            // Pipelined: once the first answer is in, the second request is
            // being served (it was parsed before the first answer went out).
            http.send(b"GET /sleep?ms=0 HTTP/1.1\r\n\r\nGET /sleep?ms=300 HTTP/1.1\r\n\r\n");
            assert_eq!(http.response().status, 200, "{cell}");
        }
    }
    linger_zero(&http.writer);
}

/// Polls (bounded) until the server serves no connection.
fn wait_all_released(server: &Server, what: &str) {
    let start = Instant::now();
    while server.shutdown().open_connections() != 0 {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "{}: {what}: {} connections still open after 20 s",
            server.cell,
            server.shutdown().open_connections()
        );
        thread::sleep(Duration::from_millis(5));
    }
}

fn survives_resets<S: Service>(service: S, cases: &[MidResponse], probe: fn(&Server)) {
    for cell in all_cells() {
        let server = Server::start(service.clone(), cell);
        for &how in cases {
            reset_mid_response(&server, how);
            wait_all_released(&server, &format!("reset {how:?}"));
            probe(&server);
        }
        server.stop_expecting(2 * cases.len() as u64);
    }
}

#[test]
fn a_peer_reset_mid_response_is_released_and_the_server_serves_on() {
    watchdog(LIMIT, || {
        survives_resets(Echo, &[MidResponse::Echo], |server| {
            let mut stream = server.connect();
            stream.write_all(b"still there?").expect("send");
            stream.shutdown(HalfClose::Write).expect("shutdown(Write)");
            let mut echoed = String::new();
            io::Read::read_to_string(&mut stream, &mut echoed).expect("echo");
            assert_eq!(echoed, "still there?", "{}", server.cell);
        });
        survives_resets(
            SleepHttp::default(),
            &[MidResponse::Pipeline, MidResponse::Sleep],
            |server| {
                let response = sleep_once(server.addr, 0);
                assert_eq!(response.status, 200, "{}: {response:?}", server.cell);
            },
        );
    });
}
