//! The project's sleep service as a hyper service, runtime-agnostic: the
//! caller passes the sleep (greenloop's, or tokio's for a reference).
//!
//! The decision is the project's own router ([`route_sleep`]): the method
//! and target hyper parsed are written back into a request line, in a
//! stack buffer, and parsed by the project's parser, so every status and
//! body is the one the project's servers give. One route is added, for what hyper brings:
//! `POST /echo` answers 200 with the request body streamed back as it
//! arrives (chunked in, chunked out). The answer waits for the body's
//! first frame, so a client that sent `Expect: 100-continue` gets
//! hyper's `100 Continue` (sent when the body is first read) before the
//! final response, not after it.

use std::convert::Infallible;
use std::future::Future;
use std::io::Write as _;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use ::hyper::body::{Body as HttpBody, Frame, Incoming, SizeHint};
use ::hyper::header::{ALLOW, CONTENT_TYPE, HeaderValue};
use ::hyper::{Method, Request, Response, StatusCode};
use bytes::Bytes;
use http_body_util::{BodyExt, Either, Full};

use crate::http::{Action, DONE_BODY, Parsed, hash_work, parse_request, route_sleep};

/// The body of [`serve_request`]'s responses: a whole buffer, or the
/// request's own body streamed back.
pub type Body = Either<Full<Bytes>, Echo>;

/// A request body streamed back: its first frame (already read), then the
/// rest as it arrives.
#[derive(Debug)]
pub struct Echo {
    first: Option<Frame<Bytes>>,
    rest: Incoming,
}

impl HttpBody for Echo {
    type Data = Bytes;
    type Error = ::hyper::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, ::hyper::Error>>> {
        let this = self.get_mut();
        match this.first.take() {
            Some(frame) => Poll::Ready(Some(Ok(frame))),
            None => Pin::new(&mut this.rest).poll_frame(cx),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.first.is_none() && self.rest.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        let first = self.first.as_ref().and_then(Frame::data_ref).map_or(0, |d| d.len() as u64);
        let rest = self.rest.size_hint();
        let mut hint = SizeHint::new();
        hint.set_lower(rest.lower() + first);
        if let Some(upper) = rest.upper() {
            hint.set_upper(upper + first);
        }
        hint
    }
}

/// The longest request line handed to the router; a longer target gets
/// 414, as no route has one.
const MAX_LINE: usize = 512;

/// Answers one request: `POST /echo` streams the body back; anything else
/// goes through [`route_sleep`] (`GET /sleep?ms=N` answers
/// `{"message":"Done"}` after `sleep(N ms)`; `/hash`; 400, 404, 405 as
/// there).
///
/// # Errors
///
/// None (`Infallible`): every request gets a response.
pub async fn serve_request<S, F>(
    req: Request<Incoming>,
    sleep: S,
) -> Result<Response<Body>, Infallible>
where
    S: FnOnce(Duration) -> F,
    F: Future<Output = ()>,
{
    if req.uri().path() == "/echo" && req.method() == Method::POST {
        return Ok(echo(req.into_body()).await);
    }
    let response = match route(&req) {
        Some(Action::Sleep(duration)) => {
            sleep(duration).await;
            json(StatusCode::OK, DONE_BODY.into())
        }
        Some(Action::Hash(rounds)) => {
            json(StatusCode::OK, format!(r#"{{"hash":"{:016x}"}}"#, hash_work(rounds)).into())
        }
        Some(Action::Respond { status, body, allow }) => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST);
            let mut response = json(status, body.into());
            if let Some(allow) = allow {
                response.headers_mut().insert(ALLOW, HeaderValue::from_static(allow));
            }
            response
        }
        None => json(StatusCode::URI_TOO_LONG, r#"{"error":"target too long"}"#.into()),
    };
    Ok(response)
}

/// The router's action for `req`'s method and target; `None` when the
/// request line is longer than [`MAX_LINE`].
fn route(req: &Request<Incoming>) -> Option<Action> {
    let target = req.uri().path_and_query().map_or("/", |pq| pq.as_str());
    let mut line = [0u8; MAX_LINE];
    let mut cursor = &mut line[..];
    write!(cursor, "{} {target} HTTP/1.1\r\n\r\n", req.method()).ok()?;
    let written = MAX_LINE - cursor.len();
    match parse_request(line.get(..written)?) {
        Ok(Parsed::Complete { request, .. }) => Some(route_sleep(&request)),
        // hyper accepted a line the project's parser refuses.
        _ => Some(Action::Respond {
            status: 400,
            body: r#"{"error":"bad request line"}"#,
            allow: None,
        }),
    }
}

/// Waits for the body's first frame (asking for it sends `100 Continue`
/// if the client expects it), then answers with the body streamed back.
async fn echo(mut body: Incoming) -> Response<Body> {
    match body.frame().await {
        None => Response::new(Either::Left(Full::default())),
        Some(Ok(first)) => Response::new(Either::Right(Echo { first: Some(first), rest: body })),
        // A body hyper could not read (bad chunk framing): hyper closes the
        // connection after this answer.
        Some(Err(_)) => json(StatusCode::BAD_REQUEST, r#"{"error":"unreadable body"}"#.into()),
    }
}

fn json(status: StatusCode, body: Bytes) -> Response<Body> {
    let mut response = Response::new(Either::Left(Full::new(body)));
    *response.status_mut() = status;
    response.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}
