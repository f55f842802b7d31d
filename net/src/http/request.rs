//! Request heads: bytes in, a borrowed [`Request`] or a typed [`ParseError`] out.
//!
//! The parser walks the buffer line by line (a line ends at LF, and one CR
//! before that LF is dropped) and validates each *complete* line as soon as it
//! is seen:
//!
//! ```text
//!   [CRLF]*                         empty lines before the request line: skipped (RFC 9112 §2.2)
//!   METHOD SP TARGET SP HTTP/1.x    exactly one SP between the three parts
//!   name ":" OWS value OWS          0..=MAX_HEADERS field lines
//!   CRLF                            the blank line that ends the head
//! ```
//!
//! A [`Request`] does not copy the header fields into an array: it keeps the
//! already-validated field block (a sub-slice of the input) and [`Headers`]
//! re-walks it on demand. The request stays a few words big and `Copy`; a
//! lookup costs one pass over a block of a few hundred bytes.
//!
//! The result depends only on the first [`MAX_HEAD`] bytes of the input and on
//! whether the input is at least that long, so a caller can feed a growing
//! buffer and get `Partial`, `Partial`, ... then one stable answer. The first
//! complete line that is invalid decides the error, even before the head ends.

// Bytes from a peer go through this file: no index, unwrap or panic may fail on them.
#![deny(clippy::indexing_slicing, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use super::error::ParseError;

/// Largest request head accepted, in bytes: skipped empty lines, the request
/// line, every field line and the blank line that ends the head, all counted.
pub const MAX_HEAD: usize = 8192;

/// Most header fields accepted in one request; one more is
/// [`ParseError::TooManyHeaders`] (431, like a head that is too large).
pub const MAX_HEADERS: usize = 64;

/// The outcome of [`parse_request`] on a buffer that holds no error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Parsed<'a> {
    /// A whole head was found at the start of the buffer.
    Complete {
        /// The request, borrowing from the buffer.
        request: Request<'a>,
        /// Bytes the head takes, up to and including its blank line; a body
        /// (see [`Request::content_length`]) or the next pipelined request
        /// starts here.
        head_len: usize,
    },
    /// The head is not complete yet and fewer than [`MAX_HEAD`] bytes are
    /// buffered: read more and parse again from the same start.
    Partial,
}

/// A parsed request head. Every field borrows from the parsed buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Request<'a> {
    /// The method token, case-sensitive as sent (`GET`, never `get`).
    pub method: &'a str,
    /// The request target as sent: path and query (no percent-decoding).
    pub target: &'a str,
    /// The `x` of `HTTP/1.x`: 0 or 1.
    pub minor_version: u8,
    /// The validated field lines, each ending in LF, without the blank line.
    fields: &'a [u8],
}

/// One header field: the name as sent and the value without surrounding
/// spaces and tabs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header<'a> {
    /// The field name: one or more token characters, case as sent.
    pub name: &'a str,
    /// The field value: no control characters except HT; bytes 0x80..=0xFF
    /// (obs-text) are passed through, so this is bytes, not `str`.
    pub value: &'a [u8],
}

/// The header fields of a [`Request`], in the order they were sent.
#[derive(Debug, Clone)]
pub struct Headers<'a> {
    rest: &'a [u8],
}

/// Parses the request head at the start of `buf`.
///
/// Never panics, whatever the bytes. `Partial` means "read more"; it is only
/// returned while `buf.len() < MAX_HEAD`, so a peer cannot make the caller
/// buffer more than [`MAX_HEAD`] bytes of head.
///
/// # Errors
///
/// The first invalid complete line gives its [`ParseError`]; a request line
/// whose method part already holds a non-token byte fails before its line
/// ends; [`ParseError::HeadTooLarge`] once `MAX_HEAD` bytes hold no complete head.
///
/// # Examples
///
/// ```
/// use greenloop_net::http::{parse_request, Parsed};
///
/// let buf = b"GET /sleep?ms=5 HTTP/1.1\r\nHost: a\r\n\r\nGET /next";
/// let Ok(Parsed::Complete { request, head_len }) = parse_request(buf) else { panic!() };
/// assert_eq!((request.method, request.path(), request.query()), ("GET", "/sleep", Some("ms=5")));
/// assert_eq!(request.header("host"), Some(&b"a"[..]));
/// assert_eq!(&buf[head_len..], b"GET /next");
/// assert_eq!(parse_request(&buf[head_len..]), Ok(Parsed::Partial));
/// ```
pub fn parse_request(buf: &[u8]) -> Result<Parsed<'_>, ParseError> {
    let window = buf.get(..MAX_HEAD).unwrap_or(buf);
    let full = buf.len() >= MAX_HEAD;
    let mut rest = window;
    let line = loop {
        let Some((line, after)) = split_line(rest) else {
            check_partial_request_line(rest)?;
            return incomplete(full);
        };
        rest = after;
        if !line.is_empty() {
            break line;
        }
    };
    let (method, target, minor_version) = parse_request_line(line)?;
    let fields_start = rest;
    let mut count = 0;
    loop {
        let Some((line, after)) = split_line(rest) else { return incomplete(full) };
        if line.is_empty() {
            let fields = fields_start.get(..fields_start.len() - rest.len()).unwrap_or_default();
            let request = Request { method, target, minor_version, fields };
            return Ok(Parsed::Complete { request, head_len: window.len() - after.len() });
        }
        parse_field(line)?;
        count += 1;
        if count > MAX_HEADERS {
            return Err(ParseError::TooManyHeaders);
        }
        rest = after;
    }
}

impl<'a> Request<'a> {
    /// The target up to its first `?`.
    pub fn path(&self) -> &'a str {
        self.target.split_once('?').map_or(self.target, |(path, _)| path)
    }

    /// The target after its first `?`, or `None` when it has no `?`.
    pub fn query(&self) -> Option<&'a str> {
        self.target.split_once('?').map(|(_, query)| query)
    }

    /// All header fields, in the order sent (duplicates included).
    pub fn headers(&self) -> Headers<'a> {
        Headers { rest: self.fields }
    }

    /// The value of the first field named `name`, compared ASCII
    /// case-insensitively.
    pub fn header(&self, name: &str) -> Option<&'a [u8]> {
        self.headers().find(|h| h.name.eq_ignore_ascii_case(name)).map(|h| h.value)
    }

    /// Whether the connection stays open after this request.
    ///
    /// Every `Connection` field is read as a comma list of case-insensitive
    /// tokens. `close` anywhere wins; otherwise HTTP/1.1 keeps the connection
    /// and HTTP/1.0 keeps it only with a `keep-alive` token.
    pub fn keep_alive(&self) -> bool {
        let (mut close, mut keep) = (false, false);
        let values = self.headers().filter(|h| h.name.eq_ignore_ascii_case("connection"));
        for token in values.flat_map(|h| h.value.split(|&b| b == b',')).map(trim_ows) {
            close |= token.eq_ignore_ascii_case(b"close");
            keep |= token.eq_ignore_ascii_case(b"keep-alive");
        }
        !close && (self.minor_version == 1 || keep)
    }

    /// The body length announced by `Content-Length`; 0 when absent.
    ///
    /// Several `Content-Length` fields, or a comma list in one, are accepted
    /// when every value is the same number (RFC 9112 §6.3).
    ///
    /// # Errors
    ///
    /// [`ParseError::Unsupported`] (501) when `Transfer-Encoding` is present
    /// (chunked bodies are not implemented, so the body length is unknown);
    /// [`ParseError::ContentLength`] (400) for a value that is not 1*DIGIT,
    /// does not fit `usize`, or differs from another.
    pub fn content_length(&self) -> Result<usize, ParseError> {
        if self.header("transfer-encoding").is_some() {
            return Err(ParseError::Unsupported);
        }
        let mut length = None;
        let values = self.headers().filter(|h| h.name.eq_ignore_ascii_case("content-length"));
        for part in values.flat_map(|h| h.value.split(|&b| b == b',')) {
            let n = parse_decimal(trim_ows(part)).ok_or(ParseError::ContentLength)?;
            if length.is_some_and(|seen| seen != n) {
                return Err(ParseError::ContentLength);
            }
            length = Some(n);
        }
        Ok(length.unwrap_or(0))
    }
}

impl<'a> Iterator for Headers<'a> {
    type Item = Header<'a>;

    fn next(&mut self) -> Option<Header<'a>> {
        let (line, rest) = split_line(self.rest)?;
        self.rest = rest;
        // The block was validated by `parse_request`; `ok()` never ends it early.
        parse_field(line).ok()
    }
}

/// `Partial` while the caller may still read, `HeadTooLarge` once the window is full.
fn incomplete(full: bool) -> Result<Parsed<'static>, ParseError> {
    if full { Err(ParseError::HeadTooLarge) } else { Ok(Parsed::Partial) }
}

/// Splits off the first line: its bytes without the LF and one CR before it,
/// and what follows the LF. `None` when `buf` holds no LF yet.
fn split_line(buf: &[u8]) -> Option<(&[u8], &[u8])> {
    let mut parts = buf.splitn(2, |&b| b == b'\n');
    let line = parts.next()?;
    let rest = parts.next()?;
    Some((line.strip_suffix(b"\r").unwrap_or(line), rest))
}

/// Fails fast on an unfinished request line whose method part cannot become
/// valid, so a stray TLS hello or binary garbage gets its 400 at once.
fn check_partial_request_line(partial: &[u8]) -> Result<(), ParseError> {
    let partial = partial.strip_suffix(b"\r").unwrap_or(partial);
    let mut parts = partial.splitn(2, |&b| b == b' ');
    let method = parts.next().unwrap_or_default();
    let ended = parts.next().is_some();
    if (ended && method.is_empty()) || !method.iter().all(|&b| is_tchar(b)) {
        return Err(ParseError::Method);
    }
    Ok(())
}

/// `METHOD SP TARGET SP HTTP/1.x`, one SP each.
fn parse_request_line(line: &[u8]) -> Result<(&str, &str, u8), ParseError> {
    let mut parts = line.splitn(3, |&b| b == b' ');
    let method = parts.next().unwrap_or_default();
    let target = parts.next().ok_or(ParseError::RequestLine)?;
    let version = parts.next().ok_or(ParseError::RequestLine)?;
    if method.is_empty() || !method.iter().all(|&b| is_tchar(b)) {
        return Err(ParseError::Method);
    }
    if target.is_empty() || !target.iter().all(|b| (0x21..=0x7e).contains(b)) {
        return Err(ParseError::Target);
    }
    let minor_version = match version {
        b"HTTP/1.1" => 1,
        b"HTTP/1.0" => 0,
        [b'H', b'T', b'T', b'P', b'/', major, b'.', minor]
            if major.is_ascii_digit() && minor.is_ascii_digit() =>
        {
            return Err(ParseError::Version);
        }
        _ => return Err(ParseError::RequestLine),
    };
    let method = std::str::from_utf8(method).map_err(|_| ParseError::Method)?;
    let target = std::str::from_utf8(target).map_err(|_| ParseError::Target)?;
    Ok((method, target, minor_version))
}

/// `name ":" OWS value OWS`; the name is a token, the value has no control
/// byte but HT.
fn parse_field(line: &[u8]) -> Result<Header<'_>, ParseError> {
    if let [b' ' | b'\t', ..] = line {
        return Err(ParseError::ObsFold);
    }
    let mut parts = line.splitn(2, |&b| b == b':');
    let name = parts.next().unwrap_or_default();
    let value = parts.next().ok_or(ParseError::HeaderName)?;
    if name.is_empty() || !name.iter().all(|&b| is_tchar(b)) {
        return Err(ParseError::HeaderName);
    }
    if !value.iter().all(|&b| b == b'\t' || (b >= 0x20 && b != 0x7f)) {
        return Err(ParseError::HeaderValue);
    }
    let name = std::str::from_utf8(name).map_err(|_| ParseError::HeaderName)?;
    Ok(Header { name, value: trim_ows(value) })
}

/// Strips leading and trailing SP and HT (RFC 9110 OWS).
fn trim_ows(mut bytes: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = bytes {
        bytes = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = bytes {
        bytes = rest;
    }
    bytes
}

/// 1*DIGIT that fits `usize`.
fn parse_decimal(digits: &[u8]) -> Option<usize> {
    if digits.is_empty() {
        return None;
    }
    digits.iter().try_fold(0usize, |n, &b| {
        let digit = usize::from(b.checked_sub(b'0').filter(|d| *d <= 9)?);
        n.checked_mul(10)?.checked_add(digit)
    })
}

/// RFC 9110 `tchar`: the bytes a method or a field name may hold.
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

#[cfg(test)]
#[allow(clippy::indexing_slicing, clippy::unwrap_used, clippy::panic)]
mod tests {
    use super::*;

    fn complete(buf: &[u8]) -> (Request<'_>, usize) {
        match parse_request(buf) {
            Ok(Parsed::Complete { request, head_len }) => (request, head_len),
            other => panic!("expected a complete head, got {other:?}"),
        }
    }

    fn status(buf: &[u8]) -> u16 {
        parse_request(buf).unwrap_err().status()
    }

    #[test]
    fn simple_get() {
        let buf = b"GET /sleep?ms=10 HTTP/1.1\r\nHost: x\r\nAccept:  */* \t\r\n\r\n";
        let (req, head_len) = complete(buf);
        assert_eq!(head_len, buf.len());
        assert_eq!((req.method, req.target, req.minor_version), ("GET", "/sleep?ms=10", 1));
        assert_eq!((req.path(), req.query()), ("/sleep", Some("ms=10")));
        assert_eq!(req.header("ACCEPT"), Some(&b"*/*"[..]));
        assert_eq!(req.header("missing"), None);
        let names: Vec<_> = req.headers().map(|h| h.name).collect();
        assert_eq!(names, ["Host", "Accept"]);
    }

    #[test]
    fn query_helpers() {
        let (req, _) = complete(b"GET /a HTTP/1.1\r\n\r\n");
        assert_eq!((req.path(), req.query()), ("/a", None));
        let (req, _) = complete(b"GET /a?b?c HTTP/1.1\r\n\r\n");
        assert_eq!((req.path(), req.query()), ("/a", Some("b?c")));
    }

    #[test]
    fn bare_lf_and_leading_empty_lines() {
        let buf = b"\r\n\nGET / HTTP/1.0\nA: 1\r\nB: 2\n\n";
        let (req, head_len) = complete(buf);
        assert_eq!(head_len, buf.len());
        assert_eq!((req.header("a"), req.header("b")), (Some(&b"1"[..]), Some(&b"2"[..])));
    }

    #[test]
    fn partial_until_blank_line() {
        let buf = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n";
        for k in 0..buf.len() {
            assert_eq!(parse_request(&buf[..k]), Ok(Parsed::Partial), "k = {k}");
        }
    }

    #[test]
    fn request_line_errors() {
        assert_eq!(status(b"GET /\r\n\r\n"), 400);
        assert_eq!(status(b"GET  / HTTP/1.1\r\n\r\n"), 400);
        assert_eq!(status(b"GET / HTTP/1.1 \r\n\r\n"), 400);
        assert_eq!(status(b"GET / http/1.1\r\n\r\n"), 400);
        assert_eq!(status(b"GET / HTTP/1.1x\r\n\r\n"), 400);
        assert_eq!(parse_request(b"G(T / HTTP/1.1\r\n\r\n"), Err(ParseError::Method));
        assert_eq!(parse_request(b" / HTTP/1.1\r\n\r\n"), Err(ParseError::Method));
        assert_eq!(parse_request(b"GET /a\x01 HTTP/1.1\r\n\r\n"), Err(ParseError::Target));
        assert_eq!(parse_request(b"GET /\x7f HTTP/1.1\r\n\r\n"), Err(ParseError::Target));
        assert_eq!(parse_request(b"GET /\xc3\xa9 HTTP/1.1\r\n\r\n"), Err(ParseError::Target));
    }

    #[test]
    fn versions() {
        assert_eq!(parse_request(b"GET / HTTP/2.0\r\n\r\n"), Err(ParseError::Version));
        assert_eq!(status(b"GET / HTTP/1.2\r\n\r\n"), 505);
        assert_eq!(complete(b"GET / HTTP/1.0\r\n\r\n").0.minor_version, 0);
    }

    #[test]
    fn garbage_fails_before_the_line_ends() {
        assert_eq!(parse_request(b"\x16\x03\x01\x02"), Err(ParseError::Method));
        assert_eq!(parse_request(b" "), Err(ParseError::Method));
        assert_eq!(parse_request(b"GET / HTTP/1.1\r"), Ok(Parsed::Partial));
        assert_eq!(parse_request(b"\r"), Ok(Parsed::Partial));
    }

    #[test]
    fn header_errors() {
        let head = |field: &[u8]| [&b"GET / HTTP/1.1\r\n"[..], field, b"\r\n\r\n"].concat();
        assert_eq!(parse_request(&head(b"Host : x")), Err(ParseError::HeaderName));
        assert_eq!(parse_request(&head(b"Host\t: x")), Err(ParseError::HeaderName));
        assert_eq!(parse_request(&head(b": x")), Err(ParseError::HeaderName));
        assert_eq!(parse_request(&head(b"NoColon")), Err(ParseError::HeaderName));
        assert_eq!(parse_request(&head(b"Na(me: x")), Err(ParseError::HeaderName));
        assert_eq!(parse_request(&head(b"A: x\0y")), Err(ParseError::HeaderValue));
        assert_eq!(parse_request(&head(b"A: x\ry")), Err(ParseError::HeaderValue));
        assert_eq!(parse_request(&head(b"A: x\x7f")), Err(ParseError::HeaderValue));
        assert_eq!(parse_request(&head(b"A: x\r\n folded")), Err(ParseError::ObsFold));
        assert_eq!(parse_request(&head(b"\tA: x")), Err(ParseError::ObsFold));
        // An error in a complete line is reported before the head ends.
        assert_eq!(
            parse_request(b"GET / HTTP/1.1\r\nBad Name: x\r\n"),
            Err(ParseError::HeaderName)
        );
    }

    #[test]
    fn header_values_keep_inner_space_and_obs_text() {
        let (req, _) = complete(b"GET / HTTP/1.1\r\nA:\t a \t b\xff \r\nB:\r\n\r\n");
        assert_eq!(req.header("a"), Some(&b"a \t b\xff"[..]));
        assert_eq!(req.header("b"), Some(&b""[..]));
    }

    #[test]
    fn too_many_headers_is_431() {
        let mut buf = b"GET / HTTP/1.1\r\n".to_vec();
        for i in 0..MAX_HEADERS {
            buf.extend_from_slice(format!("H{i}: v\r\n").as_bytes());
        }
        let mut ok = buf.clone();
        ok.extend_from_slice(b"\r\n");
        assert_eq!(complete(&ok).0.headers().count(), MAX_HEADERS);
        buf.extend_from_slice(b"One-More: v\r\n\r\n");
        assert_eq!(parse_request(&buf), Err(ParseError::TooManyHeaders));
        assert_eq!(status(&buf), 431);
    }

    #[test]
    fn head_size_limit() {
        let mut buf = b"GET / HTTP/1.1\r\nBig: ".to_vec();
        buf.resize(MAX_HEAD - 1, b'a');
        assert_eq!(parse_request(&buf), Ok(Parsed::Partial));
        buf.push(b'a');
        assert_eq!(parse_request(&buf), Err(ParseError::HeadTooLarge));
        // A head of exactly MAX_HEAD bytes is accepted.
        buf.truncate(MAX_HEAD - 4);
        buf.extend_from_slice(b"\r\n\r\n");
        assert_eq!(complete(&buf).1, MAX_HEAD);
        buf.extend_from_slice(b"trailing body bytes");
        assert_eq!(complete(&buf).1, MAX_HEAD);
    }

    #[test]
    fn keep_alive_rules() {
        let ka = |buf: &[u8]| complete(buf).0.keep_alive();
        assert!(ka(b"GET / HTTP/1.1\r\n\r\n"));
        assert!(!ka(b"GET / HTTP/1.1\r\nConnection: close\r\n\r\n"));
        assert!(!ka(b"GET / HTTP/1.1\r\nconnection: Upgrade, CLOSE\r\n\r\n"));
        assert!(!ka(b"GET / HTTP/1.1\r\nConnection: keep-alive\r\nConnection: close\r\n\r\n"));
        assert!(!ka(b"GET / HTTP/1.0\r\n\r\n"));
        assert!(ka(b"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n"));
        assert!(ka(b"GET / HTTP/1.0\r\nConnection: foo ,\tkeep-alive \r\n\r\n"));
        assert!(!ka(b"GET / HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n"));
        assert!(!ka(b"GET / HTTP/1.0\r\nConnection: keep-alives\r\n\r\n"));
    }

    #[test]
    fn content_length_rules() {
        let cl = |fields: &str| {
            let buf = format!("POST / HTTP/1.1\r\n{fields}\r\n");
            complete(buf.as_bytes()).0.content_length()
        };
        assert_eq!(cl(""), Ok(0));
        assert_eq!(cl("Content-Length: 42\r\n"), Ok(42));
        assert_eq!(cl("content-length: 42\r\nCONTENT-LENGTH: 42\r\n"), Ok(42));
        assert_eq!(cl("Content-Length: 42, 42\r\n"), Ok(42));
        assert_eq!(
            cl("Content-Length: 42\r\nContent-Length: 43\r\n"),
            Err(ParseError::ContentLength)
        );
        assert_eq!(cl("Content-Length: 4 2\r\n"), Err(ParseError::ContentLength));
        assert_eq!(cl("Content-Length: +42\r\n"), Err(ParseError::ContentLength));
        assert_eq!(cl("Content-Length: \r\n"), Err(ParseError::ContentLength));
        assert_eq!(cl("Content-Length: 42,\r\n"), Err(ParseError::ContentLength));
        assert_eq!(
            cl("Content-Length: 99999999999999999999999\r\n"),
            Err(ParseError::ContentLength)
        );
        assert_eq!(cl("Transfer-Encoding: chunked\r\n"), Err(ParseError::Unsupported));
        assert_eq!(ParseError::Unsupported.status(), 501);
        assert_eq!(ParseError::ContentLength.status(), 400);
    }

    #[test]
    fn pipelined_requests_parse_in_order() {
        let buf = b"GET /sleep?ms=1 HTTP/1.1\r\n\r\nGET /b HTTP/1.1\r\nX: y\r\n\r\nGET /c HTTP/1.1\r\n\r\n";
        let mut start = 0;
        let mut targets = Vec::new();
        while let Ok(Parsed::Complete { request, head_len }) = parse_request(&buf[start..]) {
            targets.push(request.target);
            start += head_len;
        }
        assert_eq!(targets, ["/sleep?ms=1", "/b", "/c"]);
        assert_eq!(start, buf.len());
    }

    #[test]
    fn display() {
        assert_eq!(ParseError::HeadTooLarge.to_string(), "request head too large (431)");
    }
}
