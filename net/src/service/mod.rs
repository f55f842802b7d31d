//! The services the lab measures, written once per style as library code:
//! echo, and the HTTP "sleep" service (`GET /sleep?ms=N`).
//!
//! A blocking-style service takes any [`BlockingStream`]: a greenloop
//! [`TcpStream`] in a green thread (parks the green thread), or a `std`
//! stream on an OS thread. An async-style service takes a greenloop
//! [`TcpStream`] and is awaited by a task, or `block_on`'d by a green
//! thread or an OS thread. The [`Service`] trait bundles both styles so
//! the server matrix can run any service in any cell.

mod echo;
mod session;
mod sleep;

pub use echo::{echo_async, echo_blocking};
pub use session::{HttpSession, Step};
pub use sleep::{HttpConfig, sleep_async, sleep_blocking, sleep_inline, sleep_std};

use std::future::Future;
use std::io::{self, Read, Write};
use std::time::Duration;

use crate::TcpStream;
use crate::server::Shutdown;

/// A blocking stream whose reads can be bounded in time.
pub trait BlockingStream: Read + Write {
    /// Bounds each blocking read (`None`: no bound).
    ///
    /// # Errors
    ///
    /// `InvalidInput` for a zero duration; `setsockopt` errors.
    fn set_read_timeout(&mut self, timeout: Option<Duration>) -> io::Result<()>;

    /// Shuts down the write side: the peer reads what was written, then
    /// end of stream (the first half of a lingering close).
    ///
    /// # Errors
    ///
    /// `shutdown` errors (`NotConnected` once the peer reset).
    fn shutdown_write(&mut self) -> io::Result<()>;

    /// Whether the peer has ended its side (its FIN arrived, or the
    /// connection is gone). A lingering close asks when a read returns end
    /// of stream: after [`Shutdown::trigger`] shut down the read half, reads
    /// end before the peer does. By default `true`: every end of stream is
    /// the peer's.
    ///
    /// # Errors
    ///
    /// The socket's (a stream that is no TCP socket, for instance).
    fn peer_closed(&self) -> io::Result<bool> {
        Ok(true)
    }
}

impl BlockingStream for std::net::TcpStream {
    fn set_read_timeout(&mut self, timeout: Option<Duration>) -> io::Result<()> {
        std::net::TcpStream::set_read_timeout(self, timeout)
    }

    fn shutdown_write(&mut self) -> io::Result<()> {
        self.shutdown(std::net::Shutdown::Write)
    }

    fn peer_closed(&self) -> io::Result<bool> {
        use std::os::fd::AsRawFd;
        crate::tcp_state::peer_closed(self.as_raw_fd())
    }
}

impl BlockingStream for TcpStream {
    fn set_read_timeout(&mut self, timeout: Option<Duration>) -> io::Result<()> {
        TcpStream::set_read_timeout(self, timeout)
    }

    fn shutdown_write(&mut self) -> io::Result<()> {
        self.shutdown(std::net::Shutdown::Write)
    }

    fn peer_closed(&self) -> io::Result<bool> {
        TcpStream::peer_closed(self)
    }
}

/// A service in both styles, run by the server matrix.
pub trait Service: Clone + Send + Sync + 'static {
    /// Serves one connection blocking-style.
    ///
    /// # Errors
    ///
    /// The connection's I/O errors.
    fn serve_blocking<S: BlockingStream>(
        &self,
        stream: &mut S,
        shutdown: &Shutdown,
    ) -> io::Result<()>;

    /// Serves one connection async-style.
    ///
    /// # Errors
    ///
    /// The connection's I/O errors.
    fn serve_async<'a>(
        &'a self,
        stream: &'a TcpStream,
        shutdown: &'a Shutdown,
    ) -> impl Future<Output = io::Result<()>> + 'a;

    /// Serves one connection blocking-style inline in a stackless task (the
    /// stackless cell with [`Offload::Inline`](crate::server::Offload)): the
    /// handler blocks the executor, as blocking code in a task does. By
    /// default the blocking-style handler; a service may await instead
    /// where blocking serves no purpose (the sleep service's lingering
    /// close), so that other connections on the loop go on.
    ///
    /// # Errors
    ///
    /// The connection's I/O errors.
    fn serve_inline<'a>(
        &'a self,
        stream: &'a mut TcpStream,
        shutdown: &'a Shutdown,
    ) -> impl Future<Output = io::Result<()>> + 'a {
        async move { self.serve_blocking(stream, shutdown) }
    }

    /// Serves one connection with nothing but std: a `std` stream and
    /// `std::thread::sleep`, code that has never heard of greenloop (the
    /// `green-patched` cell runs it). By default the blocking-style handler,
    /// which is std-only when given a `std` stream.
    ///
    /// # Errors
    ///
    /// The connection's I/O errors.
    fn serve_std(&self, stream: &mut std::net::TcpStream, shutdown: &Shutdown) -> io::Result<()> {
        self.serve_blocking(stream, shutdown)
    }
}

/// The echo service.
#[derive(Clone, Copy, Debug, Default)]
pub struct Echo;

impl Service for Echo {
    fn serve_blocking<S: BlockingStream>(&self, stream: &mut S, _: &Shutdown) -> io::Result<()> {
        echo_blocking(stream).map(drop)
    }

    async fn serve_async(&self, stream: &TcpStream, _: &Shutdown) -> io::Result<()> {
        echo_async(stream).await.map(drop)
    }
}

/// The HTTP sleep service.
#[derive(Clone, Copy, Debug, Default)]
pub struct SleepHttp {
    /// Its settings.
    pub config: HttpConfig,
}

impl Service for SleepHttp {
    fn serve_blocking<S: BlockingStream>(
        &self,
        stream: &mut S,
        shutdown: &Shutdown,
    ) -> io::Result<()> {
        sleep_blocking(stream, &self.config, shutdown).map(drop)
    }

    async fn serve_async(&self, stream: &TcpStream, shutdown: &Shutdown) -> io::Result<()> {
        sleep_async(stream, &self.config, shutdown).await.map(drop)
    }

    async fn serve_inline(&self, stream: &mut TcpStream, shutdown: &Shutdown) -> io::Result<()> {
        sleep_inline(stream, &self.config, shutdown).await.map(drop)
    }

    fn serve_std(&self, stream: &mut std::net::TcpStream, shutdown: &Shutdown) -> io::Result<()> {
        sleep_std(stream, &self.config, shutdown).map(drop)
    }
}
