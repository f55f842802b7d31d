//! The HTTP codec from outside: exact response bytes, and property tests that
//! feed the parser arbitrary bytes and every prefix of valid requests.

use std::time::Duration;

use greenloop_net::http::{
    Action, DONE_BODY, Header, MAX_HEAD, ParseError, Parsed, Request, error_response,
    parse_request, route_sleep, write_response,
};
use proptest::prelude::*;

fn complete(buf: &[u8]) -> (Request<'_>, usize) {
    match parse_request(buf) {
        Ok(Parsed::Complete { request, head_len }) => (request, head_len),
        other => panic!("expected a complete head, got {other:?}"),
    }
}

#[test]
fn done_response_bytes() {
    let mut out = Vec::new();
    write_response(&mut out, 200, &[], DONE_BODY.as_bytes(), true);
    let expected: &[u8] = b"HTTP/1.1 200 OK\r\n\
        Content-Type: application/json\r\n\
        Content-Length: 18\r\n\
        Connection: keep-alive\r\n\
        \r\n\
        {\"message\":\"Done\"}";
    assert_eq!(out, expected);

    out.clear();
    Action::Sleep(Duration::ZERO).write_to(&mut out, false);
    let closing = String::from_utf8(expected.to_vec()).unwrap().replace("keep-alive", "close");
    assert_eq!(out, closing.as_bytes());
}

#[test]
fn error_response_bytes() {
    let mut out = Vec::new();
    error_response(&mut out, &ParseError::RequestLine);
    let expected: &[u8] = b"HTTP/1.1 400 Bad Request\r\n\
        Content-Type: application/json\r\n\
        Content-Length: 34\r\n\
        Connection: close\r\n\
        \r\n\
        {\"error\":\"malformed request line\"}";
    assert_eq!(out, expected);
}

#[test]
fn pipelined_sleep_requests() {
    let buf = b"GET /sleep?ms=1 HTTP/1.1\r\nHost: a\r\n\r\n\
                GET /sleep?ms=2 HTTP/1.1\r\n\r\n\
                GET /sleep?ms=3 HTTP/1.1\r\nConnection: close\r\n\r\n";
    let mut start = 0;
    let mut seen = Vec::new();
    for _ in 0..3 {
        let (request, head_len) = complete(&buf[start..]);
        seen.push((route_sleep(&request), request.keep_alive()));
        start += head_len;
    }
    assert_eq!(start, buf.len());
    let ms = |n| Action::Sleep(Duration::from_millis(n));
    assert_eq!(seen, [(ms(1), true), (ms(2), true), (ms(3), false)]);
    assert_eq!(parse_request(&buf[start..]), Ok(Parsed::Partial));
}

#[test]
fn http10_and_11_keep_alive() {
    assert!(!complete(b"GET /sleep?ms=1 HTTP/1.0\r\n\r\n").0.keep_alive());
    assert!(complete(b"GET /sleep?ms=1 HTTP/1.0\r\nConnection: keep-alive\r\n\r\n").0.keep_alive());
    assert!(complete(b"GET /sleep?ms=1 HTTP/1.1\r\n\r\n").0.keep_alive());
    assert!(!complete(b"GET /sleep?ms=1 HTTP/1.1\r\nConnection: Close\r\n\r\n").0.keep_alive());
}

/// Everything a complete parse exposes, owned, for comparisons.
#[derive(Debug, PartialEq)]
struct Seen {
    method: String,
    target: String,
    minor_version: u8,
    headers: Vec<(String, Vec<u8>)>,
    keep_alive: bool,
}

fn seen(request: &Request<'_>) -> Seen {
    Seen {
        method: request.method.to_owned(),
        target: request.target.to_owned(),
        minor_version: request.minor_version,
        headers: request.headers().map(|h| (h.name.to_owned(), h.value.to_vec())).collect(),
        keep_alive: request.keep_alive(),
    }
}

/// Exercises every accessor: none may panic, whatever was parsed.
fn touch(request: &Request<'_>) {
    let _ = (request.path(), request.query(), request.keep_alive(), request.content_length());
    let _ = request.header("content-length");
    let _ = route_sleep(request);
    for Header { name, value } in request.headers() {
        assert!(!name.is_empty());
        assert!(!value.starts_with(b" ") && !value.ends_with(b"\t"));
    }
}

fn check_arbitrary(buf: &[u8]) -> Result<(), TestCaseError> {
    match parse_request(buf) {
        Ok(Parsed::Complete { request, head_len }) => {
            prop_assert!(head_len <= buf.len() && head_len <= MAX_HEAD);
            touch(&request);
        }
        Ok(Parsed::Partial) => prop_assert!(buf.len() < MAX_HEAD),
        Err(err) => prop_assert!(matches!(err.status(), 400 | 431 | 501 | 505)),
    }
    Ok(())
}

/// One generated field line: name, the OWS around the value, the value, the line end.
type Field = (String, &'static str, String, &'static str, &'static str);

fn field() -> impl Strategy<Value = Field> {
    let ows = prop_oneof![Just(""), Just(" "), Just("\t"), Just(" \t ")];
    let eol = prop_oneof![Just("\r\n"), Just("\n")];
    let name = prop_oneof![
        "[A-Za-z][A-Za-z0-9!#$%&'*+.^_`|~-]{0,15}",
        "(?i:connection)",
        "(?i:content-length)",
    ];
    let value = prop_oneof![
        "[!-~\u{80}-\u{ff}]([ -~\t]{0,20}[!-~])?",
        "(?i:close|keep-alive|upgrade)(, ?(?i:close|keep-alive))?",
        "[0-9]{1,3}",
        Just(String::new()),
    ];
    (name, ows.clone(), value, ows, eol)
}

/// The expected keep-alive, computed independently from the generated parts.
fn model_keep_alive(minor: u8, fields: &[(String, Vec<u8>)]) -> bool {
    let tokens: Vec<String> = fields
        .iter()
        .filter(|(name, _)| name.eq_ignore_ascii_case("connection"))
        .flat_map(|(_, value)| {
            String::from_utf8_lossy(value)
                .split(',')
                .map(|t| t.trim_matches([' ', '\t']).to_ascii_lowercase())
                .collect::<Vec<_>>()
        })
        .collect();
    if tokens.iter().any(|t| t == "close") {
        return false;
    }
    minor == 1 || tokens.iter().any(|t| t == "keep-alive")
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(buf in proptest::collection::vec(any::<u8>(), 0..10 * 1024)) {
        check_arbitrary(&buf)?;
    }

    #[test]
    fn near_valid_bytes_never_panic(
        line in prop_oneof![Just("GET / HTTP/1.1\r\n"), Just("GET / HTTP/1.0\n"), Just("")],
        rest in proptest::collection::vec(
            prop_oneof![Just(b'\r'), Just(b'\n'), Just(b' '), Just(b'\t'), Just(b':'), Just(b','),
                        Just(b'a'), Just(b'0'), Just(0u8), Just(0xffu8)],
            0..600,
        ),
    ) {
        let buf = [line.as_bytes(), &rest].concat();
        check_arbitrary(&buf)?;
    }

    #[test]
    fn valid_requests_parse_identically_at_every_split(
        leading in prop_oneof![Just(""), Just("\r\n"), Just("\n\r\n")],
        method in prop_oneof![Just("GET"), Just("HEAD"), Just("POST"), Just("DELETE"), Just("X-Custom!~")],
        path in "/[A-Za-z0-9._~/-]{0,20}",
        ms in "[0-9]{1,6}",
        minor in 0u8..=1,
        line_end in prop_oneof![Just("\r\n"), Just("\n")],
        fields in proptest::collection::vec(field(), 0..8),
        blank in prop_oneof![Just("\r\n"), Just("\n")],
        body in proptest::collection::vec(any::<u8>(), 0..16),
    ) {
        let target = format!("{path}?ms={ms}");
        let mut head = format!("{leading}{method} {target} HTTP/1.{minor}{line_end}");
        let mut expected_fields = Vec::new();
        for (name, ows1, value, ows2, eol) in &fields {
            head.push_str(&format!("{name}:{ows1}{value}{ows2}{eol}"));
            expected_fields.push((name.clone(), value.as_bytes().to_vec()));
        }
        head.push_str(blank);
        let buf = [head.as_bytes(), &body].concat();

        let (request, head_len) = complete(&buf);
        prop_assert_eq!(head_len, head.len());
        let whole = seen(&request);
        let expected = Seen {
            method: method.to_owned(),
            target,
            minor_version: minor,
            keep_alive: model_keep_alive(minor, &expected_fields),
            headers: expected_fields,
        };
        prop_assert_eq!(&whole, &expected);
        for k in 0..=buf.len() {
            match parse_request(&buf[..k]) {
                Ok(Parsed::Partial) => prop_assert!(k < head_len, "Partial at k = {}", k),
                Ok(Parsed::Complete { request: prefix, head_len: n }) => {
                    prop_assert!(k >= head_len, "Complete at k = {}", k);
                    prop_assert_eq!(n, head_len);
                    prop_assert_eq!(prefix, request);
                }
                Err(err) => prop_assert!(false, "error {:?} at k = {}", err, k),
            }
        }
    }

    #[test]
    fn route_sleeps_iff_ms_is_small_decimal(
        ms in prop_oneof![
            "[0-9]{0,7}",
            "0{0,6}[0-9]{1,2}",
            "[0-9+. a-z-]{0,6}",
            "[!-%'-~]{0,8}", // visible ASCII without `&`
        ],
    ) {
        let buf = format!("GET /sleep?x=1&ms={ms} HTTP/1.1\r\n\r\n");
        let action = match parse_request(buf.as_bytes()) {
            Ok(Parsed::Complete { request, .. }) => route_sleep(&request),
            // A space in `ms` breaks the request line: nothing to route.
            Err(ParseError::RequestLine | ParseError::Version) if ms.contains(' ') => return Ok(()),
            other => return Err(TestCaseError::fail(format!("{buf:?}: {other:?}"))),
        };
        let valid = !ms.is_empty()
            && ms.len() <= 5
            && ms.bytes().all(|b| b.is_ascii_digit())
            && ms.parse::<u64>().is_ok_and(|n| n <= 60_000);
        if valid {
            let n = ms.parse::<u64>().unwrap();
            if n == 0 {
                // Nothing to wait for: answered at once.
                prop_assert!(matches!(action, Action::Respond { status: 200, allow: None, .. }), "{:?}", action);
            } else {
                prop_assert_eq!(action, Action::Sleep(Duration::from_millis(n)));
            }
        } else {
            prop_assert!(matches!(action, Action::Respond { status: 400, allow: None, .. }), "{:?}", action);
        }
    }
}
