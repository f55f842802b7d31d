//! A small, hand-written, zero-copy HTTP/1.1 codec: just what the sleep
//! service needs, and nothing the lab cannot read in one sitting.
//!
//! # The pieces
//!
//! - [`parse_request`] turns the start of a read buffer into a [`Request`]
//!   that borrows from it (method, target, version, headers: no copy, no
//!   allocation), or says [`Parsed::Partial`] (read more), or gives a
//!   [`ParseError`] that carries its status.
//! - [`write_response`] and [`error_response`] append a whole response, head
//!   and body, to one `Vec<u8>`, so every response is one write.
//! - [`route_sleep`] is the sleep service's decision (an [`Action`]), written
//!   once and shared by the blocking-style and the async-style servers.
//!
//! # What is accepted
//!
//! `METHOD SP TARGET SP HTTP/1.0|1.1` then `name: value` lines then a blank
//! line, with CRLF or a bare LF ending each line (RFC 9112 §2.2 lets a server
//! accept LF alone; every client we measure sends CRLF anyway). Empty lines
//! before the request line are skipped (§2.2). Header values lose their
//! surrounding spaces and tabs and may hold bytes 0x80..=0xFF; `Connection`
//! is a case-insensitive comma list; several identical `Content-Length`
//! values are one value (§6.3). The head, all of it, must fit in
//! [`MAX_HEAD`] = 8 KiB, with at most [`MAX_HEADERS`] = 64 fields.
//!
//! # What is rejected, and with which status
//!
//! | input | error | status |
//! |---|---|---|
//! | request line not three parts joined by single spaces, or a version that is not `HTTP/d.d` | [`ParseError::RequestLine`] | 400 |
//! | empty method or a non-token byte in it (detected before the line even ends) | [`ParseError::Method`] | 400 |
//! | target with a control, space or non-ASCII byte | [`ParseError::Target`] | 400 |
//! | `HTTP/2.0`, `HTTP/1.2`, ... | [`ParseError::Version`] | 505 |
//! | field line with no colon, an empty or non-token name, or space before the colon | [`ParseError::HeaderName`] | 400 |
//! | NUL, CR or another control byte (HT excepted) in a value | [`ParseError::HeaderValue`] | 400 |
//! | a line starting with SP or HT (obs-fold) | [`ParseError::ObsFold`] | 400 |
//! | no complete head in the first 8 KiB | [`ParseError::HeadTooLarge`] | 431 |
//! | more than 64 fields | [`ParseError::TooManyHeaders`] | 431 |
//! | bad or conflicting `Content-Length` ([`Request::content_length`]) | [`ParseError::ContentLength`] | 400 |
//! | any `Transfer-Encoding` ([`Request::content_length`]) | [`ParseError::Unsupported`] | 501 |
//!
//! Every one of these is answered by [`error_response`] with
//! `Connection: close`: after a bad head the byte stream cannot be framed.
//! The sleep service's own 400 (bad `ms`), 404 and 405 come from well-formed
//! requests and keep the connection if the client asked to. Nothing on the
//! parsing path indexes, unwraps or panics on peer bytes (the files deny
//! `clippy::indexing_slicing` and `clippy::unwrap_used`), and a proptest feeds
//! it arbitrary bytes and every prefix of valid requests.
//!
//! # Why not httparse
//!
//! httparse is the obvious choice in production: SIMD scanning (SSE4.2/AVX2)
//! behind a contained `unsafe` core, headers parsed into a caller-supplied
//! array, a `ParserConfig` of leniency switches for the broken peers of the
//! real web. It leaves the meaning of the head (keep-alive, body length, size
//! limits) to its caller. This codec is the opposite trade: scalar, no
//! `unsafe`, a couple of hundred lines, strict, and it answers those semantic
//! questions itself. The lab measures runtimes, not parsers; being able to
//! read, in one place, every byte-level decision the servers make is part of
//! the lab's honesty, and the parse costs far less than the syscalls around it.
//!
//! # A connection loop
//!
//! Parse from the start of unconsumed input; on `Complete`, skip the head and
//! its body, route, append the response; stop at the first `Err` or when the
//! request asked to close. Pipelined requests are answered in order because
//! they are parsed in order.
//!
//! ```
//! use greenloop_net::http::{error_response, parse_request, route_sleep, Action, Parsed};
//!
//! let input = b"GET /sleep?ms=0 HTTP/1.1\r\n\r\nGET /nope HTTP/1.1\r\n\r\nGET / HTTP/9.9\r\n\r\n";
//! let (mut start, mut out) = (0, Vec::new());
//! loop {
//!     let parsed = parse_request(&input[start..]).and_then(|p| match p {
//!         Parsed::Complete { request, head_len } => Ok(Some((request, head_len))),
//!         Parsed::Partial => Ok(None), // a server reads more here
//!     });
//!     let (request, head_len) = match parsed {
//!         Ok(Some(complete)) => complete,
//!         Ok(None) => break,
//!         Err(err) => { error_response(&mut out, &err); break } // then close
//!     };
//!     let body_len = match request.content_length() {
//!         Ok(len) => len,
//!         Err(err) => { error_response(&mut out, &err); break }
//!     };
//!     start += head_len + body_len; // a server first waits for the body bytes
//!     let action = route_sleep(&request);
//!     if let Action::Sleep(_duration) = action { /* sleep here, parking only this request */ }
//!     action.write_to(&mut out, request.keep_alive()); // one write per response
//!     if !request.keep_alive() { break }
//! }
//! let text = String::from_utf8(out).unwrap();
//! let statuses: Vec<_> = text.match_indices("HTTP/1.1 ").map(|(i, _)| &text[i + 9..i + 12]).collect();
//! assert_eq!(statuses, ["200", "404", "505"]);
//! ```

mod error;
mod request;
mod response;
mod route;

pub use error::ParseError;
pub use request::{Header, Headers, MAX_HEAD, MAX_HEADERS, Parsed, Request, parse_request};
pub use response::{error_response, write_response};
pub use route::{Action, DONE_BODY, MAX_SLEEP_MS, hash_work, route_sleep, write_hash_response};
