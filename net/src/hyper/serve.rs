//! The hyper sleep server's accept loops, one per model: hyper's HTTP/1.1
//! server on each connection, with [`serve_request`] and
//! [`GreenloopTimer`].

use std::future::{Future, poll_fn};
use std::io;
use std::pin::pin;
use std::task::Poll;
use std::time::Duration;

use ::hyper::server::conn::http1;
use ::hyper::service::service_fn;
use greenloop_runtime::{block_on, green, task, time};

use super::{GreenloopTimer, serve_request};
use crate::server::Shutdown;
use crate::{Incoming, TcpListener, TcpStream};

/// The pause after an accept error (`EMFILE`...) before the next accept.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(10);

/// Serves on the stackless executor, one task per connection, until
/// `shutdown` is triggered; returns the connections accepted. Connections
/// still open then are closed with the runtime.
///
/// # Errors
///
/// If the runtime cannot start or the listener cannot be registered.
pub fn serve_stackless(listener: std::net::TcpListener, shutdown: &Shutdown) -> io::Result<u64> {
    task::Runtime::new()?.block_on(async {
        let incoming = TcpListener::from_std(listener)?.into_incoming();
        let mut accepted = 0;
        let mut stop = pin!(shutdown.triggered());
        while let Some(conn) = next_conn(&incoming, stop.as_mut()).await {
            match conn {
                Ok(conn) => {
                    accepted += 1;
                    drop(task::spawn_local(serve_conn(conn)));
                }
                Err(_) => time::sleep(ACCEPT_BACKOFF).await,
            }
        }
        Ok(accepted)
    })
}

/// Serves on green threads, one per connection (each `block_on`s hyper's
/// connection future), until `shutdown` is triggered; returns the
/// connections accepted. Connections still open then are unwound with
/// the runtime.
///
/// # Errors
///
/// If the runtime cannot start or the listener cannot be registered.
pub fn serve_green(listener: std::net::TcpListener, shutdown: &Shutdown) -> io::Result<u64> {
    green::run(|| {
        let incoming = TcpListener::from_std(listener)?.into_incoming();
        let mut accepted = 0;
        let mut stop = pin!(shutdown.triggered());
        while let Some(conn) = block_on(next_conn(&incoming, stop.as_mut())) {
            match conn {
                Ok(conn) => {
                    accepted += 1;
                    drop(green::spawn(move || block_on(serve_conn(conn))));
                }
                Err(_) => green::sleep(ACCEPT_BACKOFF),
            }
        }
        Ok(accepted)
    })
}

/// The next connection, or `None` once `stop` completes.
async fn next_conn(
    incoming: &Incoming<TcpListener>,
    mut stop: std::pin::Pin<&mut impl Future<Output = ()>>,
) -> Option<io::Result<TcpStream>> {
    poll_fn(|cx| {
        if stop.as_mut().poll(cx).is_ready() {
            return Poll::Ready(None);
        }
        incoming.poll_accept(cx).map(Some)
    })
    .await
}

/// hyper's HTTP/1.1 server on one connection (keep-alive, pipelining),
/// until the client closes it or an error ends it.
async fn serve_conn(conn: TcpStream) {
    // Small answers go out at once, even behind a `100 Continue`.
    if conn.set_nodelay(true).is_err() {
        return;
    }
    let service = service_fn(|req| serve_request(req, time::sleep));
    // An error is this connection's end (a reset, a malformed request hyper
    // answered with 400), never the server's.
    let _ = http1::Builder::new().timer(GreenloopTimer).serve_connection(conn, service).await;
}
