//! The sleep service's decision, shared by every server so none of them
//! duplicates it: a parsed [`Request`] in, an [`Action`] out, no I/O.
//!
//! | request | action |
//! |---|---|
//! | `GET /sleep?ms=N`, N = 1 to 5 ASCII digits, value 1..=60000 | `Sleep(N ms)`, then 200 [`DONE_BODY`] |
//! | `GET /sleep?ms=0` (or `00`…) | 200 [`DONE_BODY`] at once: no timer |
//! | `GET /sleep` with `ms` missing, empty, not digits, > 60000 or given twice | 400, JSON error |
//! | any other method on `/sleep` (HEAD included) | 405, `Allow: GET` |
//! | `GET /hash?n=N`, N = 1 to 8 ASCII digits | `Hash(N)`: N rounds of CPU-bound mixing ([`hash_work`]), then 200 `{"hash":"…"}` |
//! | `GET /hash` with `n` missing or bad | 400, JSON error |
//! | any other path (`/sleep/`, `/Sleep`, absolute-form targets) | 404 |
//!
//! `/hash` is the lab's CPU-bound handler (claim `C5_cpu_bound`): the same
//! fixed work in every runtime and style, so that waiting strategy cannot
//! help.
//!
//! The query is split on `&`; a pair is split at its first `=`; the key must be
//! exactly `ms` (no percent-decoding: `ms=%31` is not a number); other keys are
//! ignored. Leading zeros are fine (`007` is 7 ms) but count towards the
//! 5-digit limit, so `000001` is a 400: the value is checked by length before
//! it is converted, and nothing ever overflows. HEAD is refused rather than
//! served: a HEAD that sleeps and then sends no body measures nothing.
//!
//! `ms=0` is answered without a sleep because a runtime's zero sleep is not
//! free: greenloop's and tokio's timers have millisecond ticks and round a
//! deadline up, so `sleep(0)` waits for the next tick (up to 1 ms, tokio
//! often 2). Answered at once, `ms=0` measures the HTTP path alone, the
//! same in every server.
//!
//! A 400, 404 or 405 here comes from a well-formed request, so the connection
//! stays open if the request asked for that (unlike a [`ParseError`](super::ParseError)).

#![deny(clippy::indexing_slicing, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use super::request::Request;
use super::response::write_response;

/// The body of every successful sleep response (18 bytes).
pub const DONE_BODY: &str = r#"{"message":"Done"}"#;

/// The largest accepted `ms`: one minute.
pub const MAX_SLEEP_MS: u64 = 60_000;

const MISSING_MS: &str = r#"{"error":"missing ms"}"#;
const BAD_MS: &str = r#"{"error":"ms must be 0..=60000"}"#;
const DUPLICATE_MS: &str = r#"{"error":"duplicate ms"}"#;
const NOT_FOUND: &str = r#"{"error":"not found"}"#;
const NOT_ALLOWED: &str = r#"{"error":"method not allowed"}"#;
const BAD_N: &str = r#"{"error":"n must be 1 to 8 digits"}"#;

/// What a server does with one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Wait this long (parking only the waiting green thread or task), then
    /// answer 200 with [`DONE_BODY`].
    Sleep(Duration),
    /// Run [`hash_work`] for this many rounds, then answer 200 with the
    /// result (see [`write_hash_response`]).
    Hash(u32),
    /// Answer at once.
    Respond {
        /// The response status: 200 (`/sleep?ms=0`), 400, 404 or 405.
        status: u16,
        /// A JSON body: [`DONE_BODY`] or an error.
        body: &'static str,
        /// The `Allow` header value, set for 405.
        allow: Option<&'static str>,
    },
}

impl Action {
    /// Appends this action's response to `out`: for [`Action::Sleep`] the 200
    /// [`DONE_BODY`] response (write it after the sleep), for
    /// [`Action::Hash`] the work's result (computed here, on the calling
    /// thread), for [`Action::Respond`] its status, body and `Allow` header.
    pub fn write_to(&self, out: &mut Vec<u8>, keep_alive: bool) {
        match *self {
            Self::Sleep(_) => write_response(out, 200, &[], DONE_BODY.as_bytes(), keep_alive),
            Self::Hash(rounds) => write_hash_response(out, hash_work(rounds), keep_alive),
            Self::Respond { status, body, allow: Some(allow) } => {
                write_response(out, status, &[("Allow", allow)], body.as_bytes(), keep_alive);
            }
            Self::Respond { status, body, allow: None } => {
                write_response(out, status, &[], body.as_bytes(), keep_alive);
            }
        }
    }
}

/// Decides what the sleep service does with `req` (see the module table).
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use greenloop_net::http::{parse_request, route_sleep, Action, Parsed};
///
/// let Ok(Parsed::Complete { request, .. }) = parse_request(b"GET /sleep?ms=007 HTTP/1.1\r\n\r\n")
/// else { panic!() };
/// assert_eq!(route_sleep(&request), Action::Sleep(Duration::from_millis(7)));
/// ```
pub fn route_sleep(req: &Request<'_>) -> Action {
    let hash = match req.path() {
        "/sleep" => false,
        "/hash" => true,
        _ => return respond(404, NOT_FOUND, None),
    };
    if req.method != "GET" {
        return respond(405, NOT_ALLOWED, Some("GET"));
    }
    let query = req.query().unwrap_or_default();
    if hash {
        return match query_value(query, "n").ok().flatten().and_then(parse_rounds) {
            Some(n) => Action::Hash(n),
            None => respond(400, BAD_N, None),
        };
    }
    match sleep_ms(query) {
        Ok(0) => respond(200, DONE_BODY, None),
        Ok(ms) => Action::Sleep(Duration::from_millis(ms)),
        Err(body) => respond(400, body, None),
    }
}

/// The value of `key` in a query: `Err` if given twice, `Ok(None)` if absent.
fn query_value<'q>(query: &'q str, key: &str) -> Result<Option<&'q str>, &'static str> {
    let mut value = None;
    for pair in query.split('&') {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        if k == key {
            if value.is_some() {
                return Err(DUPLICATE_MS);
            }
            value = Some(v);
        }
    }
    Ok(value)
}

/// 1 to 8 ASCII digits, at least 1.
fn parse_rounds(digits: &str) -> Option<u32> {
    let n = parse_digits(digits, 8)?;
    if n >= 1 { u32::try_from(n).ok() } else { None }
}

/// 1 to `max_len` (at most 19) ASCII digits, as a number: checked by length
/// first, so nothing overflows.
fn parse_digits(digits: &str, max_len: usize) -> Option<u64> {
    if digits.is_empty() || digits.len() > max_len {
        return None;
    }
    digits.bytes().try_fold(0u64, |n, b| b.is_ascii_digit().then(|| n * 10 + u64::from(b - b'0')))
}

/// The CPU-bound work of `/hash`: `rounds` rounds of a 64-bit
/// multiply-xorshift mix. Deterministic, allocation-free, and not
/// optimised away (each round depends on the previous one).
pub fn hash_work(rounds: u32) -> u64 {
    let mut h: u64 = 0x9E37_79B9_7F4A_7C15;
    for i in 0..u64::from(rounds) {
        h ^= i;
        h = h.wrapping_mul(0xBF58_476D_1CE4_E5B9);
        h ^= h >> 31;
    }
    h
}

/// Appends the 200 response of a `/hash` request to `out`.
pub fn write_hash_response(out: &mut Vec<u8>, hash: u64, keep_alive: bool) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut body = *br#"{"hash":"0000000000000000"}"#;
    for (i, byte) in body.iter_mut().skip(9).take(16).enumerate() {
        let nibble = (hash >> (60 - 4 * i)) & 0xF;
        *byte = HEX.get(nibble as usize).copied().unwrap_or(b'0');
    }
    write_response(out, 200, &[], &body, keep_alive);
}

const fn respond(status: u16, body: &'static str, allow: Option<&'static str>) -> Action {
    Action::Respond { status, body, allow }
}

/// The `ms` of a query, or the JSON error body explaining why not.
fn sleep_ms(query: &str) -> Result<u64, &'static str> {
    parse_millis(query_value(query, "ms")?.ok_or(MISSING_MS)?).ok_or(BAD_MS)
}

/// 1 to 5 ASCII digits whose value is at most [`MAX_SLEEP_MS`].
fn parse_millis(digits: &str) -> Option<u64> {
    parse_digits(digits, 5).filter(|&ms| ms <= MAX_SLEEP_MS)
}

#[cfg(test)]
#[allow(clippy::panic)]
mod tests {
    use super::super::request::{Parsed, parse_request};
    use super::*;

    fn route(buf: &str) -> Action {
        match parse_request(buf.as_bytes()) {
            Ok(Parsed::Complete { request, .. }) => route_sleep(&request),
            other => panic!("{buf:?} did not parse: {other:?}"),
        }
    }

    fn get(target: &str) -> Action {
        route(&format!("GET {target} HTTP/1.1\r\n\r\n"))
    }

    fn status(action: Action) -> u16 {
        match action {
            Action::Sleep(_) | Action::Hash(_) => 200,
            Action::Respond { status, .. } => status,
        }
    }

    #[test]
    fn sleeps() {
        let ms = |n| Action::Sleep(Duration::from_millis(n));
        assert_eq!(get("/sleep?ms=0"), respond(200, DONE_BODY, None));
        assert_eq!(get("/sleep?ms=00"), respond(200, DONE_BODY, None));
        assert_eq!(get("/sleep?ms=1"), ms(1));
        assert_eq!(get("/sleep?ms=60000"), ms(60_000));
        assert_eq!(get("/sleep?ms=007"), ms(7));
        assert_eq!(get("/sleep?a=1&ms=5&b"), ms(5));
        assert_eq!(get("/sleep?&&ms=5&"), ms(5));
        assert_eq!(get("/sleep?mss=9&ms=5&m=1"), ms(5));
    }

    #[test]
    fn bad_ms_is_400() {
        for target in [
            "/sleep",
            "/sleep?",
            "/sleep?x=1",
            "/sleep?ms",
            "/sleep?ms=",
            "/sleep?ms=60001",
            "/sleep?ms=99999",
            "/sleep?ms=000001",
            "/sleep?ms=+5",
            "/sleep?ms=-1",
            "/sleep?ms=1.5",
            "/sleep?ms=%31",
            "/sleep?ms=5=5",
            "/sleep?MS=5",
        ] {
            assert_eq!(status(get(target)), 400, "{target}");
        }
        assert_eq!(get("/sleep?ms=1&ms=1"), respond(400, DUPLICATE_MS, None));
        assert_eq!(get("/sleep"), respond(400, MISSING_MS, None));
    }

    #[test]
    fn unknown_path_is_404_and_wrong_method_405() {
        for target in ["/", "/sleep/", "/Sleep?ms=1", "/sleepy?ms=1", "http://h/sleep?ms=1", "*"] {
            assert_eq!(get(target), respond(404, NOT_FOUND, None), "{target}");
        }
        assert_eq!(route("POST /nope HTTP/1.1\r\n\r\n"), respond(404, NOT_FOUND, None));
        for method in ["POST", "HEAD", "get", "DELETE"] {
            let action = route(&format!("{method} /sleep?ms=1 HTTP/1.1\r\n\r\n"));
            assert_eq!(action, respond(405, NOT_ALLOWED, Some("GET")), "{method}");
        }
    }

    #[test]
    fn write_to_includes_allow() {
        let mut out = Vec::new();
        respond(405, NOT_ALLOWED, Some("GET")).write_to(&mut out, true);
        let text = String::from_utf8_lossy(&out);
        assert!(text.starts_with("HTTP/1.1 405 Method Not Allowed\r\n"), "{text}");
        assert!(text.contains("\r\nAllow: GET\r\n"), "{text}");
        assert!(text.contains("\r\nConnection: keep-alive\r\n"), "{text}");
    }
}

#[cfg(test)]
mod hash_tests {
    use super::{Action, hash_work, route_sleep};
    use crate::http::{Parsed, parse_request};

    fn route(raw: &str) -> Action {
        match parse_request(raw.as_bytes()) {
            Ok(Parsed::Complete { request, .. }) => route_sleep(&request),
            other => unreachable!("test request did not parse: {other:?}"),
        }
    }

    #[test]
    fn hash_route() {
        assert_eq!(route("GET /hash?n=1000 HTTP/1.1\r\n\r\n"), Action::Hash(1000));
        for bad in ["", "?n=", "?n=0", "?n=123456789", "?n=12a", "?n=1&n=2"] {
            let action = route(&format!("GET /hash{bad} HTTP/1.1\r\n\r\n"));
            assert!(matches!(action, Action::Respond { status: 400, .. }), "{bad}: {action:?}");
        }
        assert!(matches!(
            route("POST /hash?n=1 HTTP/1.1\r\n\r\n"),
            Action::Respond { status: 405, .. }
        ));
        assert_ne!(hash_work(1), hash_work(2));
        let mut out = Vec::new();
        Action::Hash(10).write_to(&mut out, true);
        let text = String::from_utf8(out).unwrap_or_default();
        assert!(text.ends_with(&format!("{{\"hash\":\"{:016x}\"}}", hash_work(10))), "{text}");
    }
}
