//! Listeners that share a port: `SO_REUSEPORT`, so each shard accepts on
//! its own socket and the kernel spreads new connections over them (by a
//! hash of the peer's address and port), with no lock or shared queue.
//!
//! The option must be set on every socket *before* `bind`, which
//! `std::net::TcpListener::bind` does not let us do, hence this small
//! `socket(2)` / `setsockopt(2)` / `bind(2)` / `listen(2)` sequence.

use std::io;
use std::mem;
use std::net::{SocketAddr, TcpListener};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use greenloop_runtime::syscall;

/// The listen backlog of the sibling listeners [`serve`](super::serve)
/// binds for shards 1.. (Linux caps it at `net.core.somaxconn`).
pub(super) const SIBLING_BACKLOG: i32 = 4096;

/// Binds a listener on `addr` with `SO_REUSEPORT` (and `SO_REUSEADDR`, as
/// std sets), listening with `backlog` (capped at `net.core.somaxconn`).
///
/// This is the listener to give [`serve`](super::serve) when
/// [`ServerConfig::cores`](super::ServerConfig::cores) is above 1: `serve`
/// binds one more such listener per extra shard on the same address. Any
/// process of the same user may bind the port too, so use it only when
/// sharing is meant.
///
/// # Errors
///
/// Those of `socket(2)`, `setsockopt(2)`, `bind(2)` (`EADDRINUSE`: the
/// port is held by a socket without `SO_REUSEPORT`) and `listen(2)`.
pub fn bind_reuseport(addr: SocketAddr, backlog: i32) -> io::Result<TcpListener> {
    let domain = if addr.is_ipv4() { libc::AF_INET } else { libc::AF_INET6 };
    // SAFETY: socket(2) with constant arguments; it returns a new
    // descriptor or -1.
    let fd = syscall!(unsafe { libc::socket(domain, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0) })?;
    // SAFETY: `fd` is a fresh descriptor nobody else owns.
    let socket = unsafe { OwnedFd::from_raw_fd(fd) };
    set_option(&socket, libc::SO_REUSEADDR)?;
    set_option(&socket, libc::SO_REUSEPORT)?;
    let (storage, len) = sockaddr(addr);
    // SAFETY: `storage` holds a sockaddr of `len` bytes of `domain`'s
    // family (bind(2)); `socket` is open.
    syscall!(unsafe {
        libc::bind(socket.as_raw_fd(), (&raw const storage).cast::<libc::sockaddr>(), len)
    })
    .map_err(|e| io::Error::new(e.kind(), format!("bind {addr} with SO_REUSEPORT: {e}")))?;
    // SAFETY: listen(2) on a bound socket this function owns.
    syscall!(unsafe { libc::listen(socket.as_raw_fd(), backlog) })?;
    Ok(TcpListener::from(socket))
}

/// Whether `listener` has `SO_REUSEPORT` set.
///
/// # Errors
///
/// The error of `getsockopt(2)`.
pub(super) fn has_reuseport(listener: &TcpListener) -> io::Result<bool> {
    let mut value: libc::c_int = 0;
    let mut len = mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: getsockopt(2) writes at most `len` bytes into `value`, an
    // int of that size; the descriptor is open for the borrow's duration.
    syscall!(unsafe {
        libc::getsockopt(
            listener.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_REUSEPORT,
            (&raw mut value).cast(),
            &mut len,
        )
    })?;
    Ok(value != 0)
}

/// Sets the boolean `SOL_SOCKET` option `name` on `socket`.
fn set_option(socket: &OwnedFd, name: libc::c_int) -> io::Result<()> {
    let on: libc::c_int = 1;
    // SAFETY: setsockopt(2) reads `len` bytes from `on`, an int of that
    // size; `socket` is open.
    syscall!(unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::SOL_SOCKET,
            name,
            (&raw const on).cast(),
            mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    })?;
    Ok(())
}

/// `addr` as a `sockaddr_in` or `sockaddr_in6` in a `sockaddr_storage`,
/// and its length.
fn sockaddr(addr: SocketAddr) -> (libc::sockaddr_storage, libc::socklen_t) {
    // SAFETY: sockaddr_storage is plain data; all-zero is valid.
    let mut storage: libc::sockaddr_storage = unsafe { mem::zeroed() };
    let len = match addr {
        SocketAddr::V4(v4) => {
            // SAFETY: sockaddr_storage is large and aligned enough for any
            // sockaddr type (socket(7)), so the cast is in bounds.
            let sin = unsafe { &mut *(&raw mut storage).cast::<libc::sockaddr_in>() };
            sin.sin_family = libc::AF_INET as libc::sa_family_t;
            sin.sin_port = v4.port().to_be();
            sin.sin_addr = libc::in_addr { s_addr: u32::from_ne_bytes(v4.ip().octets()) };
            mem::size_of::<libc::sockaddr_in>()
        }
        SocketAddr::V6(v6) => {
            // SAFETY: as above.
            let sin6 = unsafe { &mut *(&raw mut storage).cast::<libc::sockaddr_in6>() };
            sin6.sin6_family = libc::AF_INET6 as libc::sa_family_t;
            sin6.sin6_port = v6.port().to_be();
            sin6.sin6_flowinfo = v6.flowinfo();
            sin6.sin6_addr = libc::in6_addr { s6_addr: v6.ip().octets() };
            sin6.sin6_scope_id = v6.scope_id();
            mem::size_of::<libc::sockaddr_in6>()
        }
    };
    (storage, len as libc::socklen_t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_listeners_share_a_port_and_std_ones_do_not() {
        let first = bind_reuseport("127.0.0.1:0".parse().unwrap(), 16).unwrap();
        let addr = first.local_addr().unwrap();
        let second = bind_reuseport(addr, 16).unwrap();
        assert_eq!(second.local_addr().unwrap(), addr);
        assert!(has_reuseport(&first).unwrap() && has_reuseport(&second).unwrap());

        let plain = TcpListener::bind("127.0.0.1:0").unwrap();
        assert!(!has_reuseport(&plain).unwrap());
        let taken = bind_reuseport(plain.local_addr().unwrap(), 16).unwrap_err();
        assert_eq!(taken.kind(), io::ErrorKind::AddrInUse, "{taken}");
        assert!(taken.to_string().contains("SO_REUSEPORT"), "{taken}");
    }

    #[test]
    fn ipv6_loopback_binds_when_available() {
        match bind_reuseport("[::1]:0".parse().unwrap(), 16) {
            Ok(listener) => assert!(listener.local_addr().unwrap().is_ipv6()),
            // No IPv6 in this container: nothing to check.
            Err(e) => assert!(
                e.kind() == io::ErrorKind::AddrNotAvailable
                    || e.raw_os_error() == Some(libc::EAFNOSUPPORT),
                "{e}"
            ),
        }
    }
}
