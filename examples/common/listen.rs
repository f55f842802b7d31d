//! Binding a listener with a deeper backlog than std's 128, shared by the
//! example servers.

use std::io;

/// Binds `addr` and listens with `backlog` (Linux caps it at
/// `net.core.somaxconn`). With std's 128, a burst of connects (wrk's
/// start, the lab's 1,000 connections) on a busy server loses SYNs, and
/// each lost connect waits a second for its retransmit: that measures the
/// backlog, not the runtime.
pub fn bind(addr: &str, backlog: i32) -> io::Result<std::net::TcpListener> {
    use std::os::fd::AsRawFd;
    let listener = std::net::TcpListener::bind(addr)?;
    // SAFETY: listen(2) on a socket this function owns, already listening:
    // Linux then only updates its backlog.
    if unsafe { libc::listen(listener.as_raw_fd(), backlog) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(listener)
}
