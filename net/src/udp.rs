//! UDP sockets usable in both styles (see the crate docs).

use std::io;
use std::net::SocketAddr;

use greenloop_runtime::reactor::Direction;

use crate::addr::{ToSocketAddrs, each_addr};
use crate::source::{Registered, never};

/// A UDP socket registered with this thread's reactor.
///
/// ```
/// use greenloop_net::UdpSocket;
///
/// let a = UdpSocket::bind("127.0.0.1:0").unwrap();
/// let b = UdpSocket::bind("127.0.0.1:0").unwrap();
/// a.send_to(b"ping", b.local_addr().unwrap()).unwrap();
/// let mut buf = [0; 8];
/// let (n, from) = b.recv_from(&mut buf).unwrap();
/// assert_eq!((&buf[..n], from), (&b"ping"[..], a.local_addr().unwrap()));
/// ```
#[derive(Debug)]
pub struct UdpSocket {
    inner: Registered<mio::net::UdpSocket>,
}

impl UdpSocket {
    /// Binds to `addr` (a name is looked up off the scheduler: see
    /// [`ToSocketAddrs`]).
    ///
    /// # Errors
    ///
    /// Resolution and `bind` errors.
    pub fn bind<A: ToSocketAddrs>(addr: A) -> io::Result<UdpSocket> {
        each_addr(&addr, |a| Registered::new(mio::net::UdpSocket::bind(a)?))
            .map(|inner| UdpSocket { inner })
    }

    /// Wraps a `std` socket (set to non-blocking here).
    ///
    /// # Errors
    ///
    /// If it cannot be made non-blocking or registered.
    pub fn from_std(socket: std::net::UdpSocket) -> io::Result<UdpSocket> {
        socket.set_nonblocking(true)?;
        Ok(UdpSocket { inner: Registered::new(mio::net::UdpSocket::from_std(socket))? })
    }

    /// The local address.
    ///
    /// # Errors
    ///
    /// `getsockname` errors.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.get_ref().local_addr()
    }

    /// The connected peer's address.
    ///
    /// # Errors
    ///
    /// `NotConnected` if not connected.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.inner.get_ref().peer_addr()
    }

    /// Sets the default peer for `send` and `recv`.
    ///
    /// # Errors
    ///
    /// `connect` errors.
    pub fn connect(&self, addr: SocketAddr) -> io::Result<()> {
        self.inner.get_ref().connect(addr)
    }

    /// Sends a datagram to `target`, blocking-style.
    ///
    /// # Errors
    ///
    /// `sendto` errors.
    pub fn send_to(&self, buf: &[u8], target: SocketAddr) -> io::Result<usize> {
        self.inner.blocking_io(Direction::Write, never, |s| s.send_to(buf, target))
    }

    /// Receives a datagram, blocking-style.
    ///
    /// # Errors
    ///
    /// `recvfrom` errors.
    pub fn recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        self.inner.blocking_io(Direction::Read, never, |s| s.recv_from(buf))
    }

    /// Sends to the connected peer, blocking-style.
    ///
    /// # Errors
    ///
    /// `send` errors.
    pub fn send(&self, buf: &[u8]) -> io::Result<usize> {
        self.inner.blocking_io(Direction::Write, never, |s| s.send(buf))
    }

    /// Receives from the connected peer, blocking-style.
    ///
    /// # Errors
    ///
    /// `recv` errors.
    pub fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.inner.blocking_io(Direction::Read, never, |s| s.recv(buf))
    }

    /// Sends a datagram to `target`, async-style.
    ///
    /// # Errors
    ///
    /// `sendto` errors.
    pub async fn send_to_async(&self, buf: &[u8], target: SocketAddr) -> io::Result<usize> {
        self.inner.async_io(Direction::Write, never, |s| s.send_to(buf, target)).await
    }

    /// Receives a datagram, async-style.
    ///
    /// # Errors
    ///
    /// `recvfrom` errors.
    pub async fn recv_from_async(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        self.inner.async_io(Direction::Read, never, |s| s.recv_from(buf)).await
    }

    /// Sends to the connected peer, async-style.
    ///
    /// # Errors
    ///
    /// `send` errors.
    pub async fn send_async(&self, buf: &[u8]) -> io::Result<usize> {
        self.inner.async_io(Direction::Write, never, |s| s.send(buf)).await
    }

    /// Receives from the connected peer, async-style.
    ///
    /// # Errors
    ///
    /// `recv` errors.
    pub async fn recv_async(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.inner.async_io(Direction::Read, never, |s| s.recv(buf)).await
    }
}
