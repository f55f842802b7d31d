//! Why a request head was rejected, and the status that says so.

use std::fmt;

/// Why a request head was rejected. [`status`](ParseError::status) gives the
/// response status; every one of these ends the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParseError {
    /// The request line is not `METHOD SP TARGET SP VERSION` (400).
    RequestLine,
    /// The method is empty or holds a non-token byte (400).
    Method,
    /// The target is empty or holds a byte outside visible ASCII (400).
    Target,
    /// `HTTP/d.d` other than 1.0 and 1.1 (505).
    Version,
    /// A field line with no colon, an empty name, a non-token byte in the
    /// name, or whitespace between the name and the colon (400).
    HeaderName,
    /// A field value holding a control character other than HT (400).
    HeaderValue,
    /// A field line starting with SP or HT: obsolete line folding (400).
    ObsFold,
    /// No complete head within [`MAX_HEAD`](super::MAX_HEAD) bytes (431).
    HeadTooLarge,
    /// More than [`MAX_HEADERS`](super::MAX_HEADERS) field lines (431).
    TooManyHeaders,
    /// A `Content-Length` that is not a decimal number, or several that differ (400).
    ContentLength,
    /// `Transfer-Encoding` is present; no transfer coding is implemented (501).
    Unsupported,
}

impl ParseError {
    /// The response status for this error: 400, 431, 501 or 505.
    pub const fn status(self) -> u16 {
        match self {
            Self::Version => 505,
            Self::HeadTooLarge | Self::TooManyHeaders => 431,
            Self::Unsupported => 501,
            _ => 400,
        }
    }

    /// A short lower-case description, also used as the JSON error text.
    pub const fn message(self) -> &'static str {
        match self {
            Self::RequestLine => "malformed request line",
            Self::Method => "invalid method",
            Self::Target => "invalid request target",
            Self::Version => "unsupported HTTP version",
            Self::HeaderName => "invalid header name",
            Self::HeaderValue => "invalid header value",
            Self::ObsFold => "obsolete line folding",
            Self::HeadTooLarge => "request head too large",
            Self::TooManyHeaders => "too many headers",
            Self::ContentLength => "invalid content-length",
            Self::Unsupported => "transfer-encoding not supported",
        }
    }
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.message(), self.status())
    }
}

impl std::error::Error for ParseError {}
