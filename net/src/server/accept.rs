//! The one accept loop every server cell uses: wait for a connection slot
//! (the `max_conns` limit), accept or stop on shutdown, back off on
//! descriptor exhaustion instead of spinning. A cell turns each [`Conn`]
//! into a [`Served`] stream, which the [`Shutdown`] switch can wake.

use std::future::poll_fn;
use std::io;
use std::os::fd::AsRawFd;
use std::pin::pin;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use greenloop_runtime::sync::{OwnedSemaphorePermit, Semaphore, WaitGroup};
use greenloop_runtime::time;

use super::Shutdown;
use crate::TcpListener;

/// First and last pause after an accept error such as `EMFILE`.
const BACKOFF_MIN: Duration = Duration::from_millis(1);
const BACKOFF_MAX: Duration = Duration::from_millis(100);

/// An accepted connection (not registered with any reactor yet) and the
/// guard that accounts for it.
#[derive(Debug)]
pub(crate) struct Conn {
    pub(crate) stream: std::net::TcpStream,
    pub(crate) guard: ConnGuard,
}

impl Conn {
    /// Turns the stream into the one the handler uses (`convert` must keep
    /// its descriptor: `from_std`, `set_nonblocking`...) and records it with
    /// the shutdown switch until the result is dropped.
    ///
    /// # Errors
    ///
    /// Those of `convert`; the connection is then closed.
    pub(crate) fn serve_as<S>(
        self,
        convert: impl FnOnce(std::net::TcpStream) -> io::Result<S>,
    ) -> io::Result<Served<S>> {
        let fd = self.stream.as_raw_fd();
        // Converted first: if it fails, the descriptor closes unrecorded.
        let stream = convert(self.stream)?;
        let key = self.guard.shutdown.record(fd);
        Ok(Served { stream, key, guard: self.guard })
    }
}

/// A connection being served: its stream, recorded with the [`Shutdown`]
/// switch (which half-closes it for reading when triggered), and its guard.
///
/// Its `Drop` forgets the record before the fields drop and the descriptor
/// closes, so the switch never shuts down a reused descriptor; the fields
/// cannot be moved out, so that order cannot be undone.
#[derive(Debug)]
pub(crate) struct Served<S> {
    /// The stream the handler uses.
    pub(crate) stream: S,
    key: usize,
    guard: ConnGuard,
}

impl<S> Drop for Served<S> {
    fn drop(&mut self) {
        self.guard.shutdown.forget(self.key);
    }
}

/// Holds a connection slot and counts the connection as in flight until
/// dropped: keep it alive as long as the connection is served.
#[derive(Debug)]
pub(crate) struct ConnGuard {
    _slot: Option<OwnedSemaphorePermit>,
    in_flight: WaitGroup,
    shutdown: Shutdown,
}

impl Drop for ConnGuard {
    fn drop(&mut self) {
        self.in_flight.done();
    }
}

/// Accepts connections for a server (see the module docs).
#[derive(Debug)]
pub(crate) struct Acceptor {
    listener: TcpListener,
    limit: Option<Arc<Semaphore>>,
    in_flight: WaitGroup,
    shutdown: Shutdown,
    accepted: u64,
    errors: u64,
}

impl Acceptor {
    /// Wraps `listener` on this thread's reactor.
    pub(crate) fn new(
        listener: std::net::TcpListener,
        max_conns: Option<usize>,
        shutdown: Shutdown,
    ) -> io::Result<Acceptor> {
        Ok(Acceptor {
            listener: TcpListener::from_std(listener)?,
            limit: max_conns.map(|n| Arc::new(Semaphore::new(n.max(1)))),
            in_flight: WaitGroup::new(),
            shutdown,
            accepted: 0,
            errors: 0,
        })
    }

    /// The next connection, or `None` once shutdown was triggered.
    pub(crate) async fn next(&mut self) -> Option<Conn> {
        let mut backoff = BACKOFF_MIN;
        loop {
            let slot = match &self.limit {
                Some(limit) => {
                    let acquire = pin!(limit.clone().acquire_owned());
                    let stop = pin!(self.shutdown.triggered());
                    Some(first(acquire, stop).await?.ok()?)
                }
                None => None,
            };
            let accept = pin!(poll_fn(|cx| self.listener.poll_accept_std(cx)));
            let stop = pin!(self.shutdown.triggered());
            match first(accept, stop).await? {
                Ok((stream, _peer)) => {
                    self.accepted += 1;
                    self.in_flight.add(1);
                    let guard = ConnGuard {
                        _slot: slot,
                        in_flight: self.in_flight.clone(),
                        shutdown: self.shutdown.clone(),
                    };
                    return Some(Conn { stream, guard });
                }
                Err(e) if e.kind() == io::ErrorKind::ConnectionAborted => {}
                Err(_) => {
                    // EMFILE, ENFILE, ENOBUFS...: wait for descriptors to
                    // free up rather than spin on a ready listener.
                    self.errors += 1;
                    drop(slot);
                    time::sleep(backoff).await;
                    backoff = (backoff * 2).min(BACKOFF_MAX);
                }
            }
        }
    }

    /// Connections accepted so far.
    pub(crate) fn accepted(&self) -> u64 {
        self.accepted
    }

    /// Accept errors met so far (each followed by a back-off pause).
    pub(crate) fn errors(&self) -> u64 {
        self.errors
    }

    /// Closes the listener (new connections are refused), then waits up to
    /// `grace` for connections in flight; returns how many remain.
    pub(crate) async fn finish(self, grace: Duration) -> usize {
        let Acceptor { listener, in_flight, .. } = self;
        drop(listener);
        let _ = time::timeout(grace, in_flight.wait()).await;
        in_flight.count()
    }
}

/// Polls both futures; the first one's output, or `None` if `stop` wins.
async fn first<A: std::future::Future, B: std::future::Future>(
    mut main: std::pin::Pin<&mut A>,
    mut stop: std::pin::Pin<&mut B>,
) -> Option<A::Output> {
    poll_fn(|cx| {
        if stop.as_mut().poll(cx).is_ready() {
            return Poll::Ready(None);
        }
        main.as_mut().poll(cx).map(Some)
    })
    .await
}
