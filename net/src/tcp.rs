//! TCP sockets usable in both styles.
//!
//! Blocking style: `std::io::Read`/`Write`, [`TcpListener::accept`] and
//! [`TcpStream::connect`] park only the current green thread inside the
//! green runtime, and block the OS thread elsewhere (driving its reactor).
//! Async style: `futures_io::AsyncRead`/`AsyncWrite`, plus the inherent
//! `*_async` methods, for tasks.
//!
//! ```
//! use greenloop_net::{TcpListener, TcpStream};
//! use std::io::{Read, Write};
//!
//! greenloop_runtime::green::run(|| {
//!     let listener = TcpListener::bind("127.0.0.1:0").unwrap();
//!     let addr = listener.local_addr().unwrap();
//!     let server = greenloop_runtime::green::spawn(move || {
//!         let (mut conn, _) = listener.accept().unwrap();
//!         let mut buf = [0; 5];
//!         conn.read_exact(&mut buf).unwrap();
//!         conn.write_all(&buf).unwrap();
//!     });
//!     let mut client = TcpStream::connect(addr).unwrap();
//!     client.write_all(b"hello").unwrap();
//!     let mut echoed = [0; 5];
//!     client.read_exact(&mut echoed).unwrap();
//!     assert_eq!(&echoed, b"hello");
//!     server.join().unwrap();
//! });
//! ```

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use greenloop_runtime::reactor::Direction;
use greenloop_runtime::time;

use crate::addr::{Lookup, ToSocketAddrs, each_addr, invalid, lookup_async, no_address};
use crate::source::{Registered, never, short};

/// A TCP listening socket registered with this thread's reactor.
#[derive(Debug)]
pub struct TcpListener {
    inner: Registered<mio::net::TcpListener>,
}

impl TcpListener {
    /// Binds to `addr` (with `SO_REUSEADDR`, as mio does) and listens. A
    /// name is looked up off the scheduler (see [`ToSocketAddrs`]).
    ///
    /// # Errors
    ///
    /// Resolution, `bind` and `listen` errors; the last one if several
    /// addresses were tried.
    pub fn bind<A: ToSocketAddrs>(addr: A) -> io::Result<TcpListener> {
        each_addr(&addr, |a| Registered::new(mio::net::TcpListener::bind(a)?))
            .map(|inner| TcpListener { inner })
    }

    /// Wraps a `std` listener (set to non-blocking here).
    ///
    /// # Errors
    ///
    /// If it cannot be made non-blocking or registered.
    pub fn from_std(listener: std::net::TcpListener) -> io::Result<TcpListener> {
        listener.set_nonblocking(true)?;
        Ok(TcpListener { inner: Registered::new(mio::net::TcpListener::from_std(listener))? })
    }

    /// Deregisters and returns the `std` listener (still non-blocking).
    ///
    /// # Errors
    ///
    /// If deregistration fails.
    pub fn into_std(self) -> io::Result<std::net::TcpListener> {
        use std::os::fd::{FromRawFd, IntoRawFd};
        let listener = self.inner.into_inner()?;
        // SAFETY: `into_raw_fd` hands over sole ownership of a valid
        // listening socket descriptor.
        Ok(unsafe { std::net::TcpListener::from_raw_fd(listener.into_raw_fd()) })
    }

    /// The bound address (with the real port after binding port 0).
    ///
    /// # Errors
    ///
    /// `getsockname` errors.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.get_ref().local_addr()
    }

    /// Accepts a connection, blocking-style.
    ///
    /// # Errors
    ///
    /// `accept4` errors (`EMFILE` when out of descriptors, for instance),
    /// or registering the new socket.
    pub fn accept(&self) -> io::Result<(TcpStream, SocketAddr)> {
        let (stream, addr) = self.inner.blocking_io(Direction::Read, never, |l| l.accept())?;
        Ok((TcpStream::from_mio(stream)?, addr))
    }

    /// Accepts a connection, async-style.
    ///
    /// # Errors
    ///
    /// As [`accept`](TcpListener::accept).
    pub async fn accept_async(&self) -> io::Result<(TcpStream, SocketAddr)> {
        let (stream, addr) = self.inner.async_io(Direction::Read, never, |l| l.accept()).await?;
        Ok((TcpStream::from_mio(stream)?, addr))
    }

    /// Polls for a connection; the accepted socket is not registered yet
    /// (register it where it will be used, with [`TcpStream::from_std`]).
    pub fn poll_accept_std(
        &self,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<(std::net::TcpStream, SocketAddr)>> {
        use std::os::fd::{FromRawFd, IntoRawFd};
        self.inner.poll_io(Direction::Read, cx, never, |l| l.accept()).map_ok(|(stream, addr)| {
            // SAFETY: `into_raw_fd` hands over sole ownership of the
            // accepted socket's descriptor.
            (unsafe { std::net::TcpStream::from_raw_fd(stream.into_raw_fd()) }, addr)
        })
    }
}

/// A TCP connection registered with this thread's reactor.
#[derive(Debug)]
pub struct TcpStream {
    inner: Registered<mio::net::TcpStream>,
}

impl TcpStream {
    fn from_mio(stream: mio::net::TcpStream) -> io::Result<TcpStream> {
        Ok(TcpStream { inner: Registered::new(stream)? })
    }

    /// Wraps a connected `std` stream (set to non-blocking here).
    ///
    /// # Errors
    ///
    /// If it cannot be made non-blocking or registered.
    pub fn from_std(stream: std::net::TcpStream) -> io::Result<TcpStream> {
        stream.set_nonblocking(true)?;
        TcpStream::from_mio(mio::net::TcpStream::from_std(stream))
    }

    /// Deregisters and returns the `std` stream (still non-blocking).
    ///
    /// # Errors
    ///
    /// If deregistration fails.
    pub fn into_std(self) -> io::Result<std::net::TcpStream> {
        use std::os::fd::{FromRawFd, IntoRawFd};
        let stream = self.inner.into_inner()?;
        // SAFETY: `into_raw_fd` hands over sole ownership of a valid
        // connected socket descriptor.
        Ok(unsafe { std::net::TcpStream::from_raw_fd(stream.into_raw_fd()) })
    }

    /// Connects, blocking-style. A name is looked up on the blocking pool
    /// from a green thread or a task (see [`ToSocketAddrs`]); a literal
    /// address needs no lookup.
    ///
    /// # Errors
    ///
    /// Resolution and connection errors (the last one if several addresses
    /// were tried).
    pub fn connect<A: ToSocketAddrs>(addr: A) -> io::Result<TcpStream> {
        each_addr(&addr, |a| {
            let stream = TcpStream::start_connect(a)?;
            stream.inner.blocking_io(Direction::Write, never, finish_connect)?;
            Ok(stream)
        })
    }

    /// Connects, blocking-style, giving up after `timeout` (`TimedOut`).
    ///
    /// # Errors
    ///
    /// Connection errors, or `TimedOut`.
    pub fn connect_timeout(addr: &SocketAddr, timeout: Duration) -> io::Result<TcpStream> {
        let stream = TcpStream::start_connect(*addr)?;
        let wait = std::future::poll_fn(|cx| {
            stream.inner.poll_io(Direction::Write, cx, never, finish_connect)
        });
        match time::block_on_timeout(timeout, wait) {
            Ok(result) => result.map(|()| stream),
            Err(_) => Err(io::Error::new(io::ErrorKind::TimedOut, "connection timed out")),
        }
    }

    /// Connects, async-style. A name is looked up on the blocking pool,
    /// awaited; a literal address needs no lookup.
    ///
    /// # Errors
    ///
    /// Resolution and connection errors (the last one if several addresses
    /// were tried).
    pub async fn connect_async<A: ToSocketAddrs>(addr: A) -> io::Result<TcpStream> {
        let addrs = match addr.lookup() {
            Lookup::One(one) => return TcpStream::connect_one_async(one).await,
            Lookup::Many(list) => list.to_vec(),
            Lookup::Name(host, port) => lookup_async(host, port).await?,
            Lookup::Invalid => return Err(invalid()),
        };
        let mut last = None;
        for one in addrs {
            match TcpStream::connect_one_async(one).await {
                Ok(stream) => return Ok(stream),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(no_address))
    }

    async fn connect_one_async(addr: SocketAddr) -> io::Result<TcpStream> {
        let stream = TcpStream::start_connect(addr)?;
        std::future::poll_fn(|cx| {
            stream.inner.poll_io(Direction::Write, cx, never, finish_connect)
        })
        .await?;
        Ok(stream)
    }

    /// The registered socket, for adapters in this crate (hyper's I/O).
    #[cfg_attr(not(feature = "hyper"), allow(dead_code))]
    pub(crate) fn registered(&self) -> &Registered<mio::net::TcpStream> {
        &self.inner
    }

    fn start_connect(addr: SocketAddr) -> io::Result<TcpStream> {
        TcpStream::from_mio(mio::net::TcpStream::connect(addr)?)
    }

    /// The remote address.
    ///
    /// # Errors
    ///
    /// `getpeername` errors (`NotConnected`).
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.inner.get_ref().peer_addr()
    }

    /// The local address.
    ///
    /// # Errors
    ///
    /// `getsockname` errors.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.get_ref().local_addr()
    }

    /// Sets `TCP_NODELAY` (disables Nagle's algorithm).
    ///
    /// # Errors
    ///
    /// `setsockopt` errors.
    pub fn set_nodelay(&self, nodelay: bool) -> io::Result<()> {
        self.inner.get_ref().set_nodelay(nodelay)
    }

    /// Whether `TCP_NODELAY` is set.
    ///
    /// # Errors
    ///
    /// `getsockopt` errors.
    pub fn nodelay(&self) -> io::Result<bool> {
        self.inner.get_ref().nodelay()
    }

    /// Shuts down the read, write or both halves.
    ///
    /// # Errors
    ///
    /// `shutdown` errors (`NotConnected`).
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        self.inner.get_ref().shutdown(how)
    }

    /// Whether the peer has ended its side (see [`crate::tcp_state`]).
    pub(crate) fn peer_closed(&self) -> io::Result<bool> {
        use std::os::fd::AsRawFd;
        crate::tcp_state::peer_closed(self.inner.get_ref().as_raw_fd())
    }

    /// Bounds blocking-style reads (`TimedOut` when exceeded); `None`
    /// waits forever.
    ///
    /// # Errors
    ///
    /// `InvalidInput` for a zero duration.
    pub fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        self.inner.set_timeout(Direction::Read, timeout)
    }

    /// Bounds blocking-style writes (`TimedOut` when exceeded).
    ///
    /// # Errors
    ///
    /// `InvalidInput` for a zero duration.
    pub fn set_write_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        self.inner.set_timeout(Direction::Write, timeout)
    }

    /// The blocking-style read timeout.
    pub fn read_timeout(&self) -> Option<Duration> {
        self.inner.get_timeout(Direction::Read)
    }

    /// The blocking-style write timeout.
    pub fn write_timeout(&self) -> Option<Duration> {
        self.inner.get_timeout(Direction::Write)
    }

    /// Reads into `buf`, async-style; `Ok(0)` at end of stream.
    ///
    /// # Errors
    ///
    /// `recv` errors (`ConnectionReset`, for instance).
    pub async fn read_async(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.inner.async_io(Direction::Read, short(buf.len()), |mut s| s.read(buf)).await
    }

    /// Writes some of `buf`, async-style.
    ///
    /// # Errors
    ///
    /// `send` errors (`BrokenPipe`, for instance).
    pub async fn write_async(&self, buf: &[u8]) -> io::Result<usize> {
        self.inner.async_io(Direction::Write, short(buf.len()), |mut s| s.write(buf)).await
    }

    /// Writes all of `buf`, async-style.
    ///
    /// # Errors
    ///
    /// `send` errors; `WriteZero` if the peer stops accepting bytes.
    pub async fn write_all_async(&self, mut buf: &[u8]) -> io::Result<()> {
        while !buf.is_empty() {
            match self.write_async(buf).await? {
                0 => return Err(io::ErrorKind::WriteZero.into()),
                n => buf = &buf[n..],
            }
        }
        Ok(())
    }
}

/// Completes a non-blocking connect: `WouldBlock` until it is established.
fn finish_connect(stream: &mio::net::TcpStream) -> io::Result<()> {
    if let Some(e) = stream.take_error()? {
        return Err(e);
    }
    match stream.peer_addr() {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotConnected => Err(io::ErrorKind::WouldBlock.into()),
        Err(e) => Err(e),
    }
}

/// The bytes a vectored read or write asks for.
fn total_len<B: std::ops::Deref<Target = [u8]>>(bufs: &[B]) -> usize {
    bufs.iter().map(|b| b.len()).sum()
}

impl Read for &TcpStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.inner.blocking_io(Direction::Read, short(buf.len()), |mut s| s.read(buf))
    }

    fn read_vectored(&mut self, bufs: &mut [io::IoSliceMut<'_>]) -> io::Result<usize> {
        self.inner
            .blocking_io(Direction::Read, short(total_len(bufs)), |mut s| s.read_vectored(bufs))
    }
}

impl Write for &TcpStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.inner.blocking_io(Direction::Write, short(buf.len()), |mut s| s.write(buf))
    }

    fn write_vectored(&mut self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        self.inner
            .blocking_io(Direction::Write, short(total_len(bufs)), |mut s| s.write_vectored(bufs))
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Read for TcpStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        (&*self).read(buf)
    }

    fn read_vectored(&mut self, bufs: &mut [io::IoSliceMut<'_>]) -> io::Result<usize> {
        (&*self).read_vectored(bufs)
    }
}

impl Write for TcpStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        (&*self).write(buf)
    }

    fn write_vectored(&mut self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        (&*self).write_vectored(bufs)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl futures_io::AsyncRead for &TcpStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        self.inner.poll_io(Direction::Read, cx, short(buf.len()), |mut s| s.read(buf))
    }
}

impl futures_io::AsyncWrite for &TcpStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.inner.poll_io(Direction::Write, cx, short(buf.len()), |mut s| s.write(buf))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_close(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(self.shutdown(Shutdown::Write))
    }
}

impl futures_io::AsyncRead for TcpStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut &*self).poll_read(cx, buf)
    }
}

impl futures_io::AsyncWrite for TcpStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut &*self).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut &*self).poll_flush(cx)
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut &*self).poll_close(cx)
    }
}
