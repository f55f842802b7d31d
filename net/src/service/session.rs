//! The HTTP sleep service's connection logic, without I/O ("sans-IO"), so
//! the blocking and the async service run the very same code.
//!
//! A driver loops on [`HttpSession::step`] and does what it says:
//!
//! ```text
//!  Step::Read       read into read_buf(), report with filled(n) (0 = EOF)
//!  Step::Sleep(d)   sleep d (never zero; blocking: green::sleep; async: time::sleep), then slept()
//!  Step::Write      write all of output() in ONE write, then written()
//!  Step::CloseWrite shut down the write side of the connection
//!  Step::Discard    read into read_buf(), report with filled(n); the bytes are dropped
//!  Step::Close      close the connection
//! ```
//!
//! Pipelined requests are answered in order; responses to requests that
//! need no sleep are batched into one write; pending responses are
//! flushed before each sleep. A malformed request gets its error status
//! and the connection closes after it; a request body announced by
//! `Content-Length` is skipped. The driver owns the clock: when the peer is
//! too slow to send a request it calls [`HttpSession::timed_out`].
//!
//! # Lingering close
//!
//! Closing a socket whose receive buffer holds unread bytes makes the kernel
//! send a reset instead of a FIN, and a reset can destroy the response still
//! on its way (the client reads `ECONNRESET` instead of the 431 it was
//! sent). So when the session closes while the peer may still be sending
//! (after an error answer, a 408, a shutdown, or with input or a body left
//! unread) it closes like nginx's `lingering_close` and Go's
//! `closeWriteAndWait`: `CloseWrite` (the peer reads the responses, then end
//! of stream), then `Discard` until the peer closes too or
//! [`HttpConfig::linger_bytes`] were dropped; the driver bounds the time
//! with [`HttpConfig::linger_time`] and calls `timed_out` when it runs out.
//! A close after the peer's end of stream, or after an idle timeout, or
//! after a `Connection: close` exchange with nothing left over, is plain.
//!
//! During a shutdown the order differs: `Discard` first, then close, with
//! no `CloseWrite`. The server may have shut the read half
//! ([`Shutdown::trigger`](crate::server::Shutdown::trigger)), and once both
//! halves are shut the kernel answers any byte the peer still sends with a
//! reset. So the FIN waits until the peer's has come (the response says
//! `Connection: close`, and a client closes on it) or the linger time ran
//! out. Reads on a shut read half end at once, so the driver asks the
//! socket whether an end of stream is the peer's
//! ([`BlockingStream::peer_closed`](super::BlockingStream::peer_closed))
//! and otherwise looks again a little later.

use std::time::Duration;

use super::HttpConfig;
use crate::http::{
    Action, MAX_HEAD, ParseError, Parsed, error_response, parse_request, route_sleep,
    write_response,
};

/// Bytes buffered per connection at most: a full request head plus
/// pipelined ones.
const BUF_SIZE: usize = 2 * MAX_HEAD;

/// A new connection's buffer: enough for typical heads. It doubles, up to
/// [`BUF_SIZE`], only when a head does not fit, so an idle keep-alive
/// connection holds 1 KiB, not 16 KiB.
const FIRST_BUF: usize = 1024;

/// What the driver must do next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// Read more bytes into [`HttpSession::read_buf`].
    Read,
    /// Sleep this long, then call [`HttpSession::slept`].
    Sleep(Duration),
    /// Write all of [`HttpSession::output`], then call [`HttpSession::written`].
    Write,
    /// Shut down the write side of the connection (`shutdown(2)`,
    /// `SHUT_WR`): the peer reads every response, then end of stream.
    CloseWrite,
    /// Read into [`HttpSession::read_buf`] and report with
    /// [`HttpSession::filled`]; the bytes are dropped. Bound the wait by
    /// [`HttpConfig::linger_time`], then call [`HttpSession::timed_out`].
    /// Report an end of stream only if it is the peer's (see the module
    /// docs); otherwise wait a little and read again.
    Discard,
    /// Close the connection.
    Close,
}

/// The state of one HTTP connection of the sleep service.
#[derive(Debug)]
pub struct HttpSession {
    /// Input; its length (not capacity) is the readable room.
    buf: Vec<u8>,
    /// Parsed up to `start`; bytes `start..filled` are unparsed input.
    start: usize,
    filled: usize,
    out: Vec<u8>,
    /// Request-body bytes still to discard.
    skip: usize,
    eof: bool,
    /// Close once `out` is flushed.
    closing: bool,
    /// Stop keeping the connection alive (server shutting down).
    draining: bool,
    /// A routed sleep not yet handed to the driver: (duration, keep-alive).
    queued: Option<(Duration, bool)>,
    /// The keep-alive flag of the sleep the driver is doing.
    sleeping: Option<bool>,
    /// Requests answered so far.
    answered: u64,
    /// Closing may leave input from the peer unread: an error was answered
    /// (the byte stream lost its framing) or keep-alive was stopped.
    unread: bool,
    /// Bytes a lingering close may discard.
    linger_bytes: usize,
    /// In a lingering close (after `CloseWrite`): bytes still to discard
    /// before closing anyway.
    lingering: Option<usize>,
}

impl Default for HttpSession {
    fn default() -> Self {
        HttpSession::new()
    }
}

impl HttpSession {
    /// A session for a new connection, with the default [`HttpConfig`].
    pub fn new() -> HttpSession {
        HttpSession::with_config(&HttpConfig::default())
    }

    /// A session for a new connection, discarding at most
    /// `config.linger_bytes` in a lingering close (the driver applies the
    /// timeouts).
    pub fn with_config(config: &HttpConfig) -> HttpSession {
        HttpSession {
            buf: vec![0; FIRST_BUF],
            start: 0,
            filled: 0,
            out: Vec::with_capacity(256),
            skip: 0,
            eof: false,
            closing: false,
            draining: false,
            queued: None,
            sleeping: None,
            answered: 0,
            unread: false,
            linger_bytes: config.linger_bytes,
            lingering: None,
        }
    }

    /// Requests answered so far (responses queued, errors included).
    pub fn answered(&self) -> u64 {
        self.answered
    }

    /// Stops keep-alive: the connection closes after the response being
    /// prepared (graceful shutdown).
    pub fn drain(&mut self) {
        self.draining = true;
    }

    /// Where the driver reads into (never empty when `step` said `Read` or
    /// `Discard`).
    pub fn read_buf(&mut self) -> &mut [u8] {
        if self.lingering.is_some() {
            // Discarding: whatever was read before is dropped.
            self.start = 0;
            self.filled = 0;
        } else if self.start > 0 {
            self.buf.copy_within(self.start..self.filled, 0);
            self.filled -= self.start;
            self.start = 0;
        }
        if self.filled == self.buf.len() && self.buf.len() < BUF_SIZE {
            self.buf.resize((2 * self.buf.len()).min(BUF_SIZE), 0);
        }
        &mut self.buf[self.filled..]
    }

    /// Reports `n` bytes read into `read_buf` (`0`: end of stream).
    pub fn filled(&mut self, n: usize) {
        if n == 0 {
            self.eof = true;
        }
        if let Some(left) = &mut self.lingering {
            *left = left.saturating_sub(n);
        }
        self.filled = (self.filled + n).min(self.buf.len());
    }

    /// The bytes to write (when `step` said `Write`).
    pub fn output(&self) -> &[u8] {
        &self.out
    }

    /// Reports that all of `output` was written.
    pub fn written(&mut self) {
        self.out.clear();
    }

    /// Reports that the sleep `step` asked for is over. (Call
    /// [`drain`](HttpSession::drain) first if shutdown began meanwhile: the
    /// response then says `Connection: close`.)
    pub fn slept(&mut self) {
        if let Some(keep_alive) = self.sleeping.take() {
            self.respond(&Action::Sleep(Duration::ZERO), keep_alive);
        }
    }

    /// Reports that the peer took too long: to send a request (the
    /// driver's header timeout), which answers 408 and closes if part of one
    /// arrived, and just closes if nothing did (an idle keep-alive
    /// connection); or to stop sending in a lingering close (the driver's
    /// linger time), which closes.
    pub fn timed_out(&mut self) {
        if self.lingering.is_some() {
            self.lingering = Some(0);
            return;
        }
        if self.start < self.filled && self.skip == 0 {
            let body = br#"{"error":"request timeout"}"#;
            write_response(&mut self.out, 408, &[], body, false);
            self.answered += 1;
            self.unread = true;
        }
        self.start = self.filled;
        self.closing = true;
    }

    /// Answers a request whose peer asked to keep the connection alive or
    /// not (`wanted_keep_alive`); a shutdown closes it either way.
    fn respond(&mut self, action: &Action, wanted_keep_alive: bool) {
        let keep_alive = wanted_keep_alive && !self.draining;
        action.write_to(&mut self.out, keep_alive);
        self.answered += 1;
        if !keep_alive {
            self.closing = true;
            // The server ends a connection its peer meant to keep: the peer
            // may be sending the next request.
            self.unread |= wanted_keep_alive;
        }
    }

    /// Answers a request the server cannot frame, and closes.
    fn fail(&mut self, error: &ParseError) {
        error_response(&mut self.out, error);
        self.answered += 1;
        self.closing = true;
        self.unread = true;
    }

    /// The close, once the responses are written: plain, or lingering
    /// (see the module docs).
    fn close(&mut self) -> Step {
        match self.lingering {
            None if self.eof => Step::Close,
            None if self.unread || self.start < self.filled || self.skip > 0 => {
                self.lingering = Some(self.linger_bytes);
                // The FIN waits for the peer's during a shutdown.
                if self.draining { Step::Discard } else { Step::CloseWrite }
            }
            None => Step::Close,
            Some(left) if left == 0 || self.eof => Step::Close,
            Some(_) => Step::Discard,
        }
    }

    /// The next thing to do.
    pub fn step(&mut self) -> Step {
        loop {
            if let Some((duration, keep_alive)) = self.queued {
                if !self.out.is_empty() {
                    return Step::Write;
                }
                self.queued = None;
                self.sleeping = Some(keep_alive);
                return Step::Sleep(duration);
            }
            if self.closing {
                return if self.out.is_empty() { self.close() } else { Step::Write };
            }
            if self.skip > 0 {
                let n = self.skip.min(self.filled - self.start);
                self.start += n;
                self.skip -= n;
                if self.skip > 0 {
                    return self.need_input();
                }
            }
            let parsed = parse_request(&self.buf[self.start..self.filled]);
            match parsed {
                Ok(Parsed::Complete { request, head_len }) => {
                    let keep_alive = request.keep_alive();
                    let action = route_sleep(&request);
                    let body = request.content_length();
                    self.start += head_len;
                    match body {
                        Ok(len) => self.skip = len,
                        Err(e) => {
                            self.fail(&e);
                            continue;
                        }
                    }
                    match action {
                        Action::Sleep(duration) => self.queued = Some((duration, keep_alive)),
                        action => self.respond(&action, keep_alive),
                    }
                }
                Ok(Parsed::Partial) => return self.need_input(),
                Err(e) => self.fail(&e),
            }
        }
    }

    /// No complete request buffered: flush, close at EOF, or read.
    fn need_input(&mut self) -> Step {
        if !self.out.is_empty() {
            Step::Write
        } else if self.eof {
            Step::Close
        } else {
            Step::Read
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{FIRST_BUF, HttpConfig, HttpSession, Step};
    use crate::http::DONE_BODY;
    use std::time::Duration;

    /// Feeds `input` in chunks of `chunk` bytes, sleeping instantly;
    /// returns everything written and the steps seen.
    fn run(input: &[u8], chunk: usize) -> (String, Vec<Step>) {
        let mut session = HttpSession::new();
        let (mut pos, mut written, mut steps) = (0, Vec::new(), Vec::new());
        for _ in 0..10_000 {
            let step = session.step();
            steps.push(step);
            match step {
                Step::Read | Step::Discard => {
                    let buf = session.read_buf();
                    let n = chunk.min(input.len() - pos).min(buf.len());
                    buf[..n].copy_from_slice(&input[pos..pos + n]);
                    pos += n;
                    session.filled(n);
                }
                Step::Sleep(_) => session.slept(),
                Step::Write => {
                    written.extend_from_slice(session.output());
                    session.written();
                }
                Step::CloseWrite => {}
                Step::Close => break,
            }
        }
        (String::from_utf8(written).unwrap(), steps)
    }

    #[test]
    fn pipelined_requests_are_answered_in_order() {
        let input = b"GET /sleep?ms=5 HTTP/1.1\r\n\r\nGET /nope HTTP/1.1\r\n\r\nGET /sleep?ms=7 HTTP/1.1\r\nConnection: close\r\n\r\n";
        for chunk in [1, 3, 1000] {
            let (out, steps) = run(input, chunk);
            let statuses: Vec<_> =
                out.match_indices("HTTP/1.1 ").map(|(i, _)| &out[i + 9..i + 12]).collect();
            assert_eq!(statuses, ["200", "404", "200"], "chunk {chunk}");
            assert!(steps.contains(&Step::Sleep(Duration::from_millis(5))));
            assert!(steps.contains(&Step::Sleep(Duration::from_millis(7))));
            assert_eq!(steps.last(), Some(&Step::Close));
        }
    }

    #[test]
    fn malformed_request_gets_400_and_close() {
        let (out, steps) = run(b"GARBAGE\r\n\r\nGET /sleep?ms=1 HTTP/1.1\r\n\r\n", 1000);
        assert!(out.starts_with("HTTP/1.1 400"), "{out}");
        assert_eq!(out.matches("HTTP/1.1").count(), 1);
        assert_eq!(steps.last(), Some(&Step::Close));
    }

    #[test]
    fn body_is_skipped_and_eof_closes() {
        let input = b"GET /sleep?ms=0 HTTP/1.1\r\nContent-Length: 5\r\n\r\nhelloGET /sleep?ms=0 HTTP/1.1\r\n\r\n";
        let (out, steps) = run(input, 4);
        assert_eq!(out.matches("HTTP/1.1 200").count(), 2, "{out}");
        assert_eq!(steps.last(), Some(&Step::Close));
    }

    #[test]
    fn a_zero_sleep_is_answered_without_a_sleep_step() {
        let input = b"GET /sleep?ms=0 HTTP/1.1\r\n\r\nGET /sleep?ms=0 HTTP/1.1\r\n\r\n";
        let (out, steps) = run(input, 1000);
        assert_eq!(out.matches("HTTP/1.1 200").count(), 2, "{out}");
        assert!(out.contains(DONE_BODY), "{out}");
        assert!(!steps.iter().any(|step| matches!(step, Step::Sleep(_))), "{steps:?}");
    }

    #[test]
    fn huge_head_gets_431() {
        let mut input = b"GET /sleep?ms=1 HTTP/1.1\r\n".to_vec();
        while input.len() < 10_000 {
            input.extend_from_slice(b"X-Pad: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n");
        }
        let (out, _) = run(&input, 512);
        assert!(out.starts_with("HTTP/1.1 431"), "{out}");
    }

    #[test]
    fn a_head_near_the_limit_grows_the_buffer_and_parses() {
        let mut input = b"GET /sleep?ms=1 HTTP/1.1\r\n".to_vec();
        // 40 fields of 200 bytes: under MAX_HEADERS, just under MAX_HEAD.
        while input.len() < super::MAX_HEAD - 300 {
            input.extend_from_slice(format!("X-Pad: {}\r\n", "a".repeat(191)).as_bytes());
        }
        input.extend_from_slice(b"\r\n");
        for chunk in [7, 4096] {
            let (out, _) = run(&input, chunk);
            assert!(out.starts_with("HTTP/1.1 200"), "chunk {chunk}: {out}");
        }
        let mut session = HttpSession::new();
        assert_eq!(session.read_buf().len(), super::FIRST_BUF);
    }

    /// A session that was fed `input` and asks for more.
    fn reading(input: &[u8]) -> HttpSession {
        let mut session = HttpSession::new();
        assert_eq!(session.step(), Step::Read);
        session.read_buf()[..input.len()].copy_from_slice(input);
        session.filled(input.len());
        session
    }

    #[test]
    fn a_partial_request_times_out_with_408_and_close() {
        let mut session = reading(b"GET /sleep?ms=1 HTTP/1.1\r\nHost:");
        assert_eq!(session.step(), Step::Read);
        session.timed_out();
        assert_eq!(session.step(), Step::Write);
        let out = String::from_utf8_lossy(session.output()).into_owned();
        assert!(out.starts_with("HTTP/1.1 408 Request Timeout\r\n"), "{out}");
        assert!(out.contains("Connection: close"), "{out}");
        session.written();
        // The peer may still be sending: a lingering close, cut short by
        // the driver's linger time.
        assert_eq!(session.step(), Step::CloseWrite);
        assert_eq!(session.step(), Step::Discard);
        session.timed_out();
        assert_eq!(session.step(), Step::Close);
    }

    #[test]
    fn an_idle_connection_times_out_with_a_plain_close() {
        // Before any request, then between two (keep-alive).
        let mut fresh = HttpSession::new();
        let mut between = reading(b"GET /sleep?ms=1 HTTP/1.1\r\n\r\n");
        assert_eq!(between.step(), Step::Sleep(Duration::from_millis(1)));
        between.slept();
        assert_eq!(between.step(), Step::Write);
        between.written();
        for session in [&mut fresh, &mut between] {
            assert_eq!(session.step(), Step::Read);
            session.timed_out();
            assert_eq!(session.step(), Step::Close);
        }
    }

    #[test]
    fn draining_closes_after_the_response() {
        let mut session = HttpSession::new();
        session.drain();
        let req = b"GET /sleep?ms=1 HTTP/1.1\r\n\r\n";
        assert_eq!(session.step(), Step::Read);
        session.read_buf()[..req.len()].copy_from_slice(req);
        session.filled(req.len());
        assert_eq!(session.step(), Step::Sleep(Duration::from_millis(1)));
        session.slept();
        assert_eq!(session.step(), Step::Write);
        assert!(String::from_utf8_lossy(session.output()).contains("Connection: close"));
        session.written();
        // Lingers until the peer's end of stream, with no FIN before it (the
        // read half may be shut: both halves shut, a late byte resets).
        assert_eq!(session.step(), Step::Discard);
        let n = session.read_buf().len().min(5);
        session.filled(n);
        assert_eq!(session.step(), Step::Discard);
        session.filled(0);
        assert_eq!(session.step(), Step::Close);
    }

    #[test]
    fn draining_lingers_until_the_linger_time_if_the_peer_never_closes() {
        let mut session = HttpSession::new();
        session.drain();
        let req = b"GET /nope HTTP/1.1\r\n\r\n";
        assert_eq!(session.step(), Step::Read);
        session.read_buf()[..req.len()].copy_from_slice(req);
        session.filled(req.len());
        assert_eq!(session.step(), Step::Write);
        session.written();
        assert_eq!(session.step(), Step::Discard);
        session.timed_out();
        assert_eq!(session.step(), Step::Close);
    }

    #[test]
    fn draining_a_close_the_peer_asked_for_is_plain() {
        let mut session = HttpSession::new();
        session.drain();
        let req = b"GET /nope HTTP/1.1\r\nConnection: close\r\n\r\n";
        assert_eq!(session.step(), Step::Read);
        session.read_buf()[..req.len()].copy_from_slice(req);
        session.filled(req.len());
        assert_eq!(session.step(), Step::Write);
        session.written();
        assert_eq!(session.step(), Step::Close);
    }

    /// Steps after the first response is written, with `more` bytes of
    /// input available to each read.
    fn steps_after_answer(input: &[u8], config: &HttpConfig, more: usize) -> (Vec<Step>, usize) {
        let mut session = HttpSession::with_config(config);
        assert_eq!(session.step(), Step::Read);
        session.read_buf()[..input.len()].copy_from_slice(input);
        session.filled(input.len());
        let (mut steps, mut discarded) = (Vec::new(), 0);
        for _ in 0..1_000 {
            let step = session.step();
            steps.push(step);
            match step {
                Step::Read | Step::Discard => {
                    let n = session.read_buf().len().min(more - discarded);
                    discarded += n;
                    session.filled(n);
                }
                Step::Sleep(_) => session.slept(),
                Step::Write => session.written(),
                Step::CloseWrite => {}
                Step::Close => break,
            }
        }
        (steps, discarded)
    }

    #[test]
    fn an_error_answer_lingers_for_at_most_linger_bytes() {
        let config = HttpConfig { linger_bytes: 10_000, ..HttpConfig::default() };
        // The peer keeps sending: discarded up to the bound, then closed.
        let (steps, discarded) = steps_after_answer(b"GARBAGE\r\n\r\n", &config, 1 << 20);
        assert_eq!(&steps[..3], [Step::Write, Step::CloseWrite, Step::Discard]);
        assert_eq!(steps.last(), Some(&Step::Close));
        assert!((10_000..10_000 + FIRST_BUF).contains(&discarded), "{discarded}");
        assert!(!steps.contains(&Step::Read), "{steps:?}");
        // The peer stops early: its end of stream ends the close.
        let (steps, discarded) = steps_after_answer(b"GARBAGE\r\n\r\n", &config, 3_000);
        assert_eq!(discarded, 3_000);
        assert_eq!(steps.last(), Some(&Step::Close));
    }

    #[test]
    fn a_bad_content_length_and_a_huge_head_linger() {
        let config = HttpConfig::default();
        let bad_length = b"POST /sleep?ms=0 HTTP/1.1\r\nContent-Length: ten\r\n\r\n";
        let (steps, _) = steps_after_answer(bad_length, &config, 100);
        assert_eq!(&steps[..3], [Step::Write, Step::CloseWrite, Step::Discard], "{steps:?}");
        let mut head = b"GET /sleep?ms=1 HTTP/1.1\r\n".to_vec();
        head.resize(FIRST_BUF, b'a');
        let (steps, _) = steps_after_answer(&head, &config, 20 * 1024);
        assert!(steps.contains(&Step::CloseWrite), "{steps:?}");
        assert_eq!(steps.last(), Some(&Step::Close));
    }

    #[test]
    fn a_close_the_peer_asked_for_is_plain_unless_input_is_left() {
        let config = HttpConfig::default();
        let close = b"GET /nope HTTP/1.1\r\nConnection: close\r\n\r\n";
        let (steps, _) = steps_after_answer(close, &config, 0);
        assert_eq!(steps, [Step::Write, Step::Close]);
        let mut pipelined = close.to_vec();
        pipelined.extend_from_slice(b"GET /nope HTTP/1.1\r\n\r\n");
        let (steps, _) = steps_after_answer(&pipelined, &config, 0);
        assert_eq!(steps, [Step::Write, Step::CloseWrite, Step::Discard, Step::Close]);
    }
}
