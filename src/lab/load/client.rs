//! What one load-generator connection says and expects: an HTTP `GET` and
//! its response, or an echo message and its copy. Blocking-style code on a
//! greenloop [`TcpStream`], run inside a green thread, so each wait parks
//! only that connection's green thread.
//!
//! Every read is bounded by the run's deadline (the stream's read timeout
//! is reset to the time left before each read), so no exchange outlives
//! the run.

use std::io::{self, Read, Write};
use std::time::{Duration, Instant};

use greenloop_net::TcpStream;

/// The largest response head the HTTP client accepts.
pub(crate) const MAX_HEAD: usize = 64 * 1024;

/// A complete answer to one request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Reply {
    /// The HTTP status (200 for a correct echo).
    pub(crate) status: u16,
    /// Whether the connection can carry the next request.
    pub(crate) keep_alive: bool,
}

/// One request/response protocol, with the per-connection buffers it needs.
pub(crate) trait Exchange {
    /// Sends one request on `stream` and reads its whole reply, giving up
    /// at `deadline` with `TimedOut`.
    fn exchange(&mut self, stream: &mut TcpStream, deadline: Instant) -> io::Result<Reply>;

    /// Forgets any state of the previous connection.
    fn reset(&mut self) {}
}

/// Reads into `buf`, waiting at most until `deadline`.
fn read_by(stream: &mut TcpStream, buf: &mut [u8], deadline: Instant) -> io::Result<usize> {
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::Error::new(io::ErrorKind::TimedOut, "the run ended"));
        }
        stream.set_read_timeout(Some(left))?;
        match stream.read(buf) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            other => return other,
        }
    }
}

/// Writes all of `buf`, waiting at most until `deadline`.
fn write_by(stream: &mut TcpStream, buf: &[u8], deadline: Instant) -> io::Result<()> {
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        return Err(io::Error::new(io::ErrorKind::TimedOut, "the run ended"));
    }
    stream.set_write_timeout(Some(left))?;
    stream.write_all(buf)
}

fn eof(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::UnexpectedEof, format!("server closed the connection {what}"))
}

/// HTTP/1.1 `GET` over a keep-alive connection.
#[derive(Debug)]
pub(crate) struct HttpExchange {
    request: Vec<u8>,
    buf: Vec<u8>,
    /// Bytes `..filled` of `buf` were read and not consumed yet.
    filled: usize,
    /// Whether requests ask to keep the connection: without, a reply never
    /// keeps it, whatever the server's headers say (a server that leaves
    /// out `Connection: close` and closes must not cost an error).
    keep_alive: bool,
}

impl HttpExchange {
    /// A client asking for `path`; with `keep_alive` false it asks the
    /// server to close after each response (`Connection: close`).
    pub(crate) fn new(path: &str, keep_alive: bool) -> HttpExchange {
        let close = if keep_alive { "" } else { "Connection: close\r\n" };
        let request = format!("GET {path} HTTP/1.1\r\nHost: lab\r\n{close}\r\n").into_bytes();
        HttpExchange { request, buf: vec![0; 2048], filled: 0, keep_alive }
    }

    /// Checks that `path` can go on a request line.
    pub(crate) fn check_path(path: &str) -> io::Result<()> {
        if path.starts_with('/') && !path.bytes().any(|b| b.is_ascii_whitespace() || b < 0x20) {
            Ok(())
        } else {
            Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("HTTP path {path:?} must start with '/' and hold no spaces or controls"),
            ))
        }
    }

    /// Drops the first `n` buffered bytes.
    fn consume(&mut self, n: usize) {
        self.buf.copy_within(n..self.filled, 0);
        self.filled -= n;
    }
}

impl Exchange for HttpExchange {
    fn reset(&mut self) {
        self.filled = 0;
    }

    fn exchange(&mut self, stream: &mut TcpStream, deadline: Instant) -> io::Result<Reply> {
        write_by(stream, &self.request, deadline)?;
        let head = loop {
            if let Some(head) = parse_head(&self.buf[..self.filled])? {
                break head;
            }
            if self.filled == self.buf.len() {
                if self.buf.len() >= MAX_HEAD {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("response head longer than {} KiB", MAX_HEAD / 1024),
                    ));
                }
                self.buf.resize(self.buf.len() * 2, 0);
            }
            let n = read_by(stream, &mut self.buf[self.filled..], deadline)?;
            if n == 0 {
                return Err(eof(if self.filled == 0 {
                    "instead of responding"
                } else {
                    "in the middle of a response head"
                }));
            }
            self.filled += n;
        };
        self.consume(head.len);
        let Some(mut left) = head.content_length else {
            if head.chunked {
                return Err(io::Error::new(
                    io::ErrorKind::Unsupported,
                    "chunked response bodies are not supported by the lab client",
                ));
            }
            // No length: the body runs to the end of the connection.
            self.filled = 0;
            while read_by(stream, &mut self.buf, deadline)? > 0 {}
            return Ok(Reply { status: head.status, keep_alive: false });
        };
        let buffered = left.min(self.filled as u64) as usize;
        self.consume(buffered);
        left -= buffered as u64;
        while left > 0 {
            let want = left.min(self.buf.len() as u64) as usize;
            match read_by(stream, &mut self.buf[..want], deadline)? {
                0 => return Err(eof("in the middle of a response body")),
                n => left -= n as u64,
            }
        }
        Ok(Reply { status: head.status, keep_alive: self.keep_alive && head.keep_alive })
    }
}

/// What the client needs from a response head.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Head {
    /// Bytes of the head, blank line included.
    pub(crate) len: usize,
    pub(crate) status: u16,
    pub(crate) content_length: Option<u64>,
    pub(crate) chunked: bool,
    pub(crate) keep_alive: bool,
}

fn invalid(why: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("bad HTTP response: {why}"))
}

/// Parses a response head at the start of `buf`: `Ok(None)` while it is
/// incomplete.
pub(crate) fn parse_head(buf: &[u8]) -> io::Result<Option<Head>> {
    let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
        return Ok(None);
    };
    let text =
        std::str::from_utf8(&buf[..end]).map_err(|_| invalid("head is not UTF-8".to_string()))?;
    let mut lines = text.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let mut words = status_line.splitn(3, ' ');
    let version = words.next().unwrap_or_default();
    let minor = match version {
        "HTTP/1.1" => 1,
        "HTTP/1.0" => 0,
        _ => return Err(invalid(format!("status line {status_line:?}"))),
    };
    let status = words
        .next()
        .filter(|s| s.len() == 3)
        .and_then(|s| s.parse::<u16>().ok())
        .ok_or_else(|| invalid(format!("status line {status_line:?}")))?;
    let (mut content_length, mut chunked, mut close, mut keep) = (None, false, false, false);
    for line in lines {
        let (name, value) =
            line.split_once(':').ok_or_else(|| invalid(format!("header line {line:?}")))?;
        let value = value.trim();
        if name.eq_ignore_ascii_case("content-length") {
            let len: u64 =
                value.parse().map_err(|_| invalid(format!("Content-Length {value:?}")))?;
            if content_length.is_some_and(|l| l != len) {
                return Err(invalid("conflicting Content-Length fields".to_string()));
            }
            content_length = Some(len);
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            chunked |= value.split(',').any(|t| t.trim().eq_ignore_ascii_case("chunked"));
        } else if name.eq_ignore_ascii_case("connection") {
            for token in value.split(',').map(str::trim) {
                close |= token.eq_ignore_ascii_case("close");
                keep |= token.eq_ignore_ascii_case("keep-alive");
            }
        }
    }
    if chunked {
        content_length = None;
    }
    let keep_alive = !close && (minor == 1 || keep);
    Ok(Some(Head { len: end + 4, status, content_length, chunked, keep_alive }))
}

/// Echo: send a message, read back as many bytes, check they match.
#[derive(Debug)]
pub(crate) struct EchoExchange {
    message: Vec<u8>,
    buf: Vec<u8>,
}

impl EchoExchange {
    /// A client sending `size`-byte messages (at least 1).
    pub(crate) fn new(size: usize) -> EchoExchange {
        let size = size.max(1);
        let message = (0..size).map(|i| b'a' + (i % 26) as u8).collect();
        EchoExchange { message, buf: vec![0; size] }
    }
}

impl Exchange for EchoExchange {
    fn exchange(&mut self, stream: &mut TcpStream, deadline: Instant) -> io::Result<Reply> {
        write_by(stream, &self.message, deadline)?;
        let mut got = 0;
        while got < self.buf.len() {
            match read_by(stream, &mut self.buf[got..], deadline)? {
                0 => return Err(eof("in the middle of an echo")),
                n => got += n,
            }
        }
        if self.buf != self.message {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "echo reply differs from the message sent",
            ));
        }
        Ok(Reply { status: 200, keep_alive: true })
    }
}

/// How long one connect attempt waits for the server's answer before a
/// new attempt: the kernel retransmits a lost SYN only after 1 s, and a
/// burst of connects on loopback can lose some.
pub(crate) const CONNECT_ATTEMPT: Duration = Duration::from_millis(200);

/// Connects with a bound of `limit` (new attempts every
/// [`CONNECT_ATTEMPT`] until then), with `TCP_NODELAY` (requests are
/// single small writes; Nagle would only delay them).
pub(crate) fn connect(addr: std::net::SocketAddr, limit: Duration) -> io::Result<TcpStream> {
    let deadline = Instant::now() + limit;
    let stream = loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::Error::new(io::ErrorKind::TimedOut, "connect timed out"));
        }
        match TcpStream::connect_timeout(&addr, left.min(CONNECT_ATTEMPT)) {
            Ok(stream) => break stream,
            Err(e) if e.kind() == io::ErrorKind::TimedOut && Instant::now() < deadline => {}
            Err(e) => return Err(e),
        }
    };
    stream.set_nodelay(true)?;
    Ok(stream)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(s: &str) -> Head {
        parse_head(s.as_bytes()).unwrap().unwrap()
    }

    #[test]
    fn parses_the_sleep_service_response() {
        let r = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 18\r\n\
                 Connection: keep-alive\r\n\r\n{\"message\":\"Done\"}";
        let h = head(r);
        assert_eq!(h.status, 200);
        assert_eq!(h.content_length, Some(18));
        assert!(h.keep_alive);
        assert_eq!(&r[h.len..], "{\"message\":\"Done\"}");
    }

    #[test]
    fn connection_rules() {
        assert!(!head("HTTP/1.1 400 Bad\r\nConnection: close\r\n\r\n").keep_alive);
        assert!(!head("HTTP/1.1 200 OK\r\nconnection: Keep-Alive, CLOSE\r\n\r\n").keep_alive);
        assert!(!head("HTTP/1.0 200 OK\r\n\r\n").keep_alive);
        assert!(head("HTTP/1.0 200 OK\r\nConnection: keep-alive\r\n\r\n").keep_alive);
        assert!(head("HTTP/1.1 204 No Content\r\n\r\n").keep_alive);
    }

    #[test]
    fn incomplete_and_bad_heads() {
        assert_eq!(parse_head(b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n").unwrap(), None);
        assert_eq!(parse_head(b"").unwrap(), None);
        for bad in [
            "HTTP/2 200 OK\r\n\r\n",
            "HTTP/1.1 20 OK\r\n\r\n",
            "HTTP/1.1 abc OK\r\n\r\n",
            "HTTP/1.1 200 OK\r\nno colon\r\n\r\n",
            "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
            "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
        ] {
            let e = parse_head(bad.as_bytes()).unwrap_err();
            assert_eq!(e.kind(), io::ErrorKind::InvalidData, "{bad:?}");
        }
    }

    #[test]
    fn chunked_overrides_length() {
        let h = head(
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\nContent-Length: 5\r\n\r\n",
        );
        assert!(h.chunked);
        assert_eq!(h.content_length, None);
    }

    #[test]
    fn paths_are_checked() {
        assert!(HttpExchange::check_path("/sleep?ms=100").is_ok());
        for bad in ["sleep", "/a b", "/a\r\nX: y", ""] {
            assert_eq!(
                HttpExchange::check_path(bad).unwrap_err().kind(),
                io::ErrorKind::InvalidInput
            );
        }
        let req = HttpExchange::new("/x", false).request;
        assert_eq!(req, b"GET /x HTTP/1.1\r\nHost: lab\r\nConnection: close\r\n\r\n");
    }
}
