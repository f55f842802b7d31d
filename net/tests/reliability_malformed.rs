//! Malformed input on every cell of the matrix: a proptest corpus of
//! broken HTTP (garbage, heads over 8 KiB, bad `Content-Length`, NUL bytes,
//! junk pipelined after a good request, bad request lines, non-UTF-8
//! bytes). Every connection gets an error status or a close, never a
//! panic (`ServeReport::panicked` stays 0), and a good request on another
//! connection is served afterwards.
//!
//! The parser alone is fuzzed by `fuzz/` (cargo fuzz, not in CI).

mod reliability_util;
mod server_util;

use std::time::Duration;

use greenloop_net::service::SleepHttp;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use reliability_util::exchange;
use server_util::{Server, all_cells, sleep_once, watchdog};

/// Cases in all, over every category; each goes to every cell.
const CASES: u32 = 160;
/// The statuses an error may have.
const ERRORS: &[u16] = &[400, 404, 405, 408, 431, 501, 505];
const GOOD: &[u8] = b"GET /sleep?ms=0 HTTP/1.1\r\nHost: t\r\n\r\n";

/// Bytes to send, and how many good requests they start with (each must
/// get a 200; whatever follows is broken and may only get an error).
#[derive(Debug, Clone)]
struct Case {
    what: &'static str,
    bytes: Vec<u8>,
    good: usize,
}

fn case(what: &'static str, bytes: Vec<u8>) -> Case {
    Case { what, bytes, good: 0 }
}

/// Random bytes.
fn garbage() -> impl Strategy<Value = Case> {
    prop::collection::vec(any::<u8>(), 1..512)
        .prop_filter("not a request", |b| !b.starts_with(b"GET ") && !b.starts_with(b"\r\n"))
        .prop_map(|b| case("garbage", b))
}

/// A head over 8 KiB, finished or not.
fn huge_head() -> impl Strategy<Value = Case> {
    (8_300..20_000usize, 1..200usize, any::<bool>()).prop_map(|(size, line, finished)| {
        let mut bytes = b"GET /sleep?ms=0 HTTP/1.1\r\n".to_vec();
        while bytes.len() < size {
            bytes.extend_from_slice(b"X-Pad: ");
            bytes.extend(std::iter::repeat_n(b'a', line));
            bytes.extend_from_slice(b"\r\n");
        }
        if finished {
            bytes.extend_from_slice(b"\r\n");
        }
        case("head over 8 KiB", bytes)
    })
}

/// `Content-Length` that is not one decimal number, or two that differ.
fn bad_content_length() -> impl Strategy<Value = Case> {
    let value = prop_oneof![
        prop::sample::select(vec![
            "-1",
            "abc",
            "5x",
            "+5",
            "0x10",
            "",
            "1 2",
            "5, 6",
            "99999999999999999999999",
        ])
        .prop_map(String::from),
        "[a-zA-Z!#$%&*.^_`|~-][ -~]{0,20}",
    ];
    (value, any::<bool>()).prop_map(|(value, twice)| {
        let fields = if twice {
            "Content-Length: 5\r\nContent-Length: 6\r\n".to_string()
        } else {
            format!("Content-Length: {value}\r\n")
        };
        let bytes = format!("POST /sleep?ms=0 HTTP/1.1\r\nHost: t\r\n{fields}\r\nhello");
        case("bad Content-Length", bytes.into_bytes())
    })
}

/// A NUL byte anywhere in an otherwise good head.
fn nul_byte() -> impl Strategy<Value = Case> {
    let head = b"GET /sleep?ms=0 HTTP/1.1\r\nHost: t\r\nX-A: b\r\n\r\n";
    (0..head.len() - 1).prop_map(move |at| {
        let mut bytes = head.to_vec();
        bytes.insert(at, 0);
        case("NUL byte in the head", bytes)
    })
}

/// A good request, then junk that cannot start a request.
fn pipelined_junk() -> impl Strategy<Value = Case> {
    let first = prop::sample::select(vec![0u8, 1, b' ', b'@', b'(', 0x7f, 0xff]);
    (first, prop::collection::vec(any::<u8>(), 0..300)).prop_map(|(first, tail)| {
        let mut bytes = GOOD.to_vec();
        bytes.push(first);
        bytes.extend(tail);
        Case { what: "junk after a good request", bytes, good: 1 }
    })
}

/// A request line with one defect.
fn bad_request_line() -> impl Strategy<Value = Case> {
    let line = prop::sample::select(vec![
        "GET /sleep?ms=0",
        "GET  /sleep?ms=0 HTTP/1.1",
        "GET /sleep?ms=0  HTTP/1.1",
        " GET /sleep?ms=0 HTTP/1.1",
        "GET\t/sleep?ms=0 HTTP/1.1",
        "GET /sleep?ms=0 HTTP/1.1 x",
        "GET /sleep?ms=0 http/1.1",
        "GET /sleep?ms=0 HTTP/1",
        "GET /sleep?ms=0 HTTP/2.0",
        "GET /sleep?ms=0 HTTP/1.1x",
        "GET /sl eep HTTP/1.1",
        "G(T /sleep?ms=0 HTTP/1.1",
        "/sleep?ms=0 HTTP/1.1",
        "GET",
    ]);
    line.prop_map(|line| {
        case("bad request line", format!("{line}\r\nHost: t\r\n\r\n").into_bytes())
    })
}

/// A byte 0x80..=0xFF in the method, the target or a header name.
fn non_utf8() -> impl Strategy<Value = Case> {
    (0x80..=0xffu8, 0..3usize).prop_map(|(byte, place)| {
        let mut bytes = match place {
            0 => b"G?T /sleep?ms=0 HTTP/1.1\r\n\r\n".to_vec(),
            1 => b"GET /sleep?ms=? HTTP/1.1\r\n\r\n".to_vec(),
            _ => b"GET /sleep?ms=0 HTTP/1.1\r\nX-?: v\r\n\r\n".to_vec(),
        };
        let at = match place {
            0 => 1,
            1 => 14,
            _ => bytes.iter().rposition(|&b| b == b'?').unwrap_or(0),
        };
        bytes[at] = byte;
        case("non-UTF-8 byte", bytes)
    })
}

fn corpus() -> impl Strategy<Value = Case> {
    prop_oneof![
        garbage(),
        huge_head(),
        bad_content_length(),
        nul_byte(),
        pipelined_junk(),
        bad_request_line(),
        non_utf8(),
    ]
}

#[test]
fn broken_http_gets_an_error_or_a_close_on_every_cell() {
    watchdog(Duration::from_secs(120), || {
        let servers: Vec<Server> =
            all_cells().into_iter().map(|cell| Server::start(SleepHttp::default(), cell)).collect();
        let config = Config { cases: CASES, failure_persistence: None, ..Config::default() };
        let mut runner = TestRunner::new(config);
        let sent = std::cell::Cell::new(0u64);
        runner
            .run(&corpus(), |case| {
                sent.set(sent.get() + 1);
                for server in &servers {
                    let cell = server.cell;
                    let (responses, reset) = exchange(server.addr, &case.bytes)
                        .map_err(|e| TestCaseError::fail(format!("{cell}: {case:?}: {e}")))?;
                    let statuses: Vec<u16> = responses.iter().map(|r| r.status).collect();
                    let (good, rest) = statuses.split_at(case.good.min(statuses.len()));
                    // A reset may cut the good responses short; a clean
                    // close may not.
                    prop_assert!(reset || good.len() == case.good, "{}: {:?}", cell, statuses);
                    prop_assert!(
                        good.iter().all(|&s| s == 200),
                        "{}: {:?}: {:?}",
                        cell,
                        case,
                        statuses
                    );
                    prop_assert!(rest.len() <= 1, "{}: more after an error: {:?}", cell, statuses);
                    prop_assert!(
                        rest.iter().all(|s| ERRORS.contains(s)),
                        "{}: {}: {:?} for {:?}",
                        cell,
                        case.what,
                        statuses,
                        String::from_utf8_lossy(&case.bytes)
                    );
                }
                Ok(())
            })
            .unwrap();
        for server in servers {
            let cell = server.cell;
            // Still serving after the corpus.
            assert_eq!(sleep_once(server.addr, 0).status, 200, "{cell}: after the corpus");
            let report = server.stop();
            assert_eq!(report.panicked, 0, "{cell}: {report:?}");
            assert_eq!(report.unfinished, 0, "{cell}: {report:?}");
            assert_eq!(report.accepted, sent.get() + 1, "{cell}: {report:?}");
        }
    });
}
