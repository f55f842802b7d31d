//! Binding a listener with a deeper backlog than std's 128, shared by the
//! example servers.

use std::io;
use std::net::ToSocketAddrs;

/// Binds `addr` and listens with `backlog` (Linux caps it at
/// `net.core.somaxconn`). With std's 128, a burst of connects (wrk's
/// start, the lab's 1,000 connections) on a busy server loses SYNs, and
/// each lost connect waits a second for its retransmit: that measures the
/// backlog, not the runtime.
///
/// With `cores` above 1 the listener has `SO_REUSEPORT`, as a sharded
/// server needs (`greenloop::net::server::bind_reuseport`); then `addr`
/// must resolve, and its first address is used.
pub fn bind(addr: &str, backlog: i32, cores: usize) -> io::Result<std::net::TcpListener> {
    use std::os::fd::AsRawFd;
    if cores > 1 {
        let first = addr.to_socket_addrs()?.next().ok_or_else(|| {
            io::Error::new(io::ErrorKind::InvalidInput, format!("'{addr}' resolves to nothing"))
        })?;
        return greenloop::net::server::bind_reuseport(first, backlog);
    }
    let listener = std::net::TcpListener::bind(addr)?;
    // SAFETY: listen(2) on a socket this function owns, already listening:
    // Linux then only updates its backlog.
    greenloop_runtime::syscall!(unsafe { libc::listen(listener.as_raw_fd(), backlog) })?;
    Ok(listener)
}
