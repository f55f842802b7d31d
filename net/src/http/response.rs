//! Responses: a whole response (head and body) appended to one `Vec<u8>`, so
//! a server sends it with one write.
//!
//! ```text
//!   HTTP/1.1 200 OK
//!   Content-Type: application/json        (text/plain unless the body starts with `{`)
//!   Content-Length: 18                    (always, so keep-alive framing never guesses)
//!   Connection: keep-alive                (or close)
//!   <extra headers>
//!
//!   {"message":"Done"}
//! ```
//!
//! The only allocation is `out` growing, at most once per call: the size is
//! reserved up front and numbers are formatted on the stack.

use super::error::ParseError;

/// Appends a complete response to `out`.
///
/// `extra_headers` are written after `Connection`, as given; they must not
/// repeat `Content-Type`, `Content-Length` or `Connection`, and names and
/// values must not hold CR or LF (they come from code, never from a peer).
///
/// # Panics
///
/// In debug builds, when `status` is not three digits (100..=999) or an extra
/// header holds CR or LF: both are bugs in the caller.
///
/// # Examples
///
/// ```
/// use greenloop_net::http::write_response;
///
/// let mut out = Vec::new();
/// write_response(&mut out, 404, &[], b"nope", false);
/// assert_eq!(
///     out,
///     b"HTTP/1.1 404 Not Found\r\nContent-Type: text/plain\r\n\
///       Content-Length: 4\r\nConnection: close\r\n\r\nnope"
/// );
/// ```
pub fn write_response(
    out: &mut Vec<u8>,
    status: u16,
    extra_headers: &[(&str, &str)],
    body: &[u8],
    keep_alive: bool,
) {
    let content_type = if body.first() == Some(&b'{') { "application/json" } else { "text/plain" };
    write_head(out, status, content_type, body.len(), keep_alive, extra_headers);
    out.extend_from_slice(body);
}

/// Appends the response for a request head that could not be parsed:
/// `err.status()`, a JSON body `{"error":"<err.message()>"}` and always
/// `Connection: close` (after a bad head the byte stream cannot be trusted).
///
/// # Examples
///
/// ```
/// use greenloop_net::http::{error_response, ParseError};
///
/// let mut out = Vec::new();
/// error_response(&mut out, &ParseError::HeadTooLarge);
/// assert!(out.starts_with(b"HTTP/1.1 431 Request Header Fields Too Large\r\n"));
/// assert!(out.ends_with(b"Connection: close\r\n\r\n{\"error\":\"request head too large\"}"));
/// ```
pub fn error_response(out: &mut Vec<u8>, err: &ParseError) {
    const OPEN: &[u8] = br#"{"error":""#;
    const CLOSE: &[u8] = br#""}"#;
    let message = err.message().as_bytes();
    let len = OPEN.len() + message.len() + CLOSE.len();
    write_head(out, err.status(), "application/json", len, false, &[]);
    out.extend_from_slice(OPEN);
    out.extend_from_slice(message);
    out.extend_from_slice(CLOSE);
}

/// The status line and headers, with room reserved for a body of `body_len`.
fn write_head(
    out: &mut Vec<u8>,
    status: u16,
    content_type: &str,
    body_len: usize,
    keep_alive: bool,
    extra_headers: &[(&str, &str)],
) {
    debug_assert!((100..=999).contains(&status), "status {status} is not three digits");
    let reason = reason_phrase(status);
    let connection = if keep_alive { "keep-alive" } else { "close" };
    let extra: usize = extra_headers.iter().map(|(name, value)| name.len() + value.len() + 4).sum();
    // Fixed text plus at most 20 digits of length, rounded up.
    out.reserve(128 + reason.len() + content_type.len() + extra + body_len);

    out.extend_from_slice(b"HTTP/1.1 ");
    push_decimal(out, usize::from(status));
    out.push(b' ');
    out.extend_from_slice(reason.as_bytes());
    out.extend_from_slice(b"\r\nContent-Type: ");
    out.extend_from_slice(content_type.as_bytes());
    out.extend_from_slice(b"\r\nContent-Length: ");
    push_decimal(out, body_len);
    out.extend_from_slice(b"\r\nConnection: ");
    out.extend_from_slice(connection.as_bytes());
    out.extend_from_slice(b"\r\n");
    for (name, value) in extra_headers {
        debug_assert!(!name.contains(['\r', '\n']) && !value.contains(['\r', '\n']));
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
}

/// Appends `n` in decimal, formatted on the stack.
fn push_decimal(out: &mut Vec<u8>, mut n: usize) {
    let mut digits = [0u8; 20]; // usize::MAX has 20 digits
    let mut start = digits.len();
    for slot in digits.iter_mut().rev() {
        *slot = b'0' + (n % 10) as u8;
        start -= 1;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(digits.get(start..).unwrap_or_default());
}

/// The RFC 9110 reason phrase of the statuses this crate sends; empty (which
/// RFC 9112 allows) for any other.
const fn reason_phrase(status: u16) -> &'static str {
    match status {
        200 => "OK",
        204 => "No Content",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        413 => "Content Too Large",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        503 => "Service Unavailable",
        505 => "HTTP Version Not Supported",
        _ => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimal_formatting() {
        for n in [0, 7, 10, 18, 60_000, usize::MAX] {
            let mut out = Vec::new();
            push_decimal(&mut out, n);
            assert_eq!(out, n.to_string().as_bytes());
        }
    }

    #[test]
    fn extra_headers_and_unknown_reason() {
        let mut out = b"previous".to_vec();
        write_response(&mut out, 299, &[("Allow", "GET"), ("X-A", "b")], b"", true);
        let expected = "previousHTTP/1.1 299 \r\nContent-Type: text/plain\r\nContent-Length: 0\r\n\
                        Connection: keep-alive\r\nAllow: GET\r\nX-A: b\r\n\r\n";
        assert_eq!(String::from_utf8(out).unwrap(), expected);
    }

    #[test]
    fn one_reservation_covers_the_response() {
        let body = vec![b'x'; 10_000];
        let mut out = Vec::new();
        write_response(&mut out, 200, &[("Allow", "GET")], &body, true);
        let capacity = out.capacity();
        assert!(out.ends_with(&body));
        // Everything fit in the single up-front reservation.
        assert!(capacity < out.len() + 256, "capacity {capacity} for {} bytes", out.len());
    }

    #[test]
    fn every_parse_error_has_a_reason_and_json_body() {
        use ParseError::*;
        let all = [
            RequestLine,
            Method,
            Target,
            Version,
            HeaderName,
            HeaderValue,
            ObsFold,
            HeadTooLarge,
            TooManyHeaders,
            ContentLength,
            Unsupported,
        ];
        for err in all {
            let mut out = Vec::new();
            error_response(&mut out, &err);
            let text = String::from_utf8(out).unwrap();
            let (head, body) = text.split_once("\r\n\r\n").unwrap();
            assert!(!reason_phrase(err.status()).is_empty(), "{err:?}");
            assert!(head.contains(&format!("Content-Length: {}\r\n", body.len())), "{text}");
            assert!(head.ends_with("Connection: close"), "{text}");
            assert_eq!(body, format!(r#"{{"error":"{}"}}"#, err.message()));
        }
    }
}
