//! What the kernel's TCP state machine says of a connection's two ends
//! (`getsockopt(TCP_INFO)`, `tcpi_state`), for the lingering close.
//!
//! A read that returns end of stream does not always mean the peer closed:
//! after [`Shutdown::trigger`](crate::server::Shutdown::trigger) shut down
//! a connection's read half, every read ends at once. The state tells the
//! two apart, and tells whether this side has sent its FIN already.

use std::io;
use std::mem;
use std::os::fd::RawFd;

use greenloop_runtime::syscall;

/// The connection's state (`TCP_ESTABLISHED`, `TCP_FIN_WAIT1`, ...: the
/// kernel's numbering, as in `include/net/tcp_states.h`).
fn state(fd: RawFd) -> io::Result<u8> {
    // SAFETY: tcp_info is plain integers; all zeroes is a valid value.
    let mut info: libc::tcp_info = unsafe { mem::zeroed() };
    let mut len = libc::socklen_t::try_from(mem::size_of::<libc::tcp_info>())
        .map_err(|_| io::Error::other("tcp_info size"))?;
    // SAFETY: getsockopt(2) writes at most `len` bytes into `info`, which
    // is that large, and stores the length written in `len`; a descriptor
    // that is not a TCP socket fails with an error, touching nothing.
    syscall!(unsafe {
        libc::getsockopt(
            fd,
            libc::IPPROTO_TCP,
            libc::TCP_INFO,
            (&raw mut info).cast(),
            &raw mut len,
        )
    })?;
    Ok(info.tcpi_state)
}

/// `TCP_ESTABLISHED`, `TCP_FIN_WAIT1`, `TCP_FIN_WAIT2` (tcp_states.h): the
/// states in which the peer has not sent its FIN.
const PEER_OPEN: [u8; 3] = [1, 4, 5];

/// `TCP_FIN_WAIT1`, `TCP_FIN_WAIT2`, `TCP_TIME_WAIT`, `TCP_LAST_ACK`,
/// `TCP_CLOSING`: the states after this side sent its FIN.
const WRITE_SHUT: [u8; 5] = [4, 5, 6, 9, 11];

/// Whether the peer has ended its side: its FIN arrived, or the connection
/// is gone (reset, closed).
///
/// # Errors
///
/// `getsockopt` errors (`ENOTSOCK`, `ENOPROTOOPT` for a non-TCP socket).
pub(crate) fn peer_closed(fd: RawFd) -> io::Result<bool> {
    state(fd).map(|state| !PEER_OPEN.contains(&state))
}

/// Whether this side has shut down its write half (sent its FIN): the
/// connection is in a lingering close.
///
/// # Errors
///
/// `getsockopt` errors.
pub(crate) fn write_shut(fd: RawFd) -> io::Result<bool> {
    state(fd).map(|state| WRITE_SHUT.contains(&state))
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};
    use std::net::{Shutdown, TcpListener, TcpStream};
    use std::os::fd::AsRawFd;

    use super::*;

    fn pair() -> (TcpStream, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        (client, listener.accept().unwrap().0)
    }

    #[test]
    fn a_shut_read_half_ends_reads_but_is_not_the_peers_close() {
        let (mut client, mut server) = pair();
        server.shutdown(Shutdown::Read).unwrap();
        assert_eq!(server.read(&mut [0; 8]).unwrap(), 0, "reads end at once");
        assert!(!peer_closed(server.as_raw_fd()).unwrap());
        assert!(!write_shut(server.as_raw_fd()).unwrap());
        client.write_all(b"late").unwrap();
        client.shutdown(Shutdown::Write).unwrap();
        // The FIN follows the data, so once the data is read it is there.
        let mut late = [0; 4];
        server.read_exact(&mut late).unwrap();
        assert_eq!(&late, b"late");
        assert!(peer_closed(server.as_raw_fd()).unwrap());
    }

    #[test]
    fn a_shut_write_half_is_seen() {
        let (mut client, server) = pair();
        server.shutdown(Shutdown::Write).unwrap();
        assert_eq!(client.read(&mut [0; 8]).unwrap(), 0, "the peer reads our FIN");
        assert!(write_shut(server.as_raw_fd()).unwrap());
        assert!(!peer_closed(server.as_raw_fd()).unwrap());
        assert!(peer_closed(client.as_raw_fd()).unwrap(), "the client got the FIN");
    }

    #[test]
    fn a_descriptor_that_is_no_socket_is_an_error() {
        let file = std::fs::File::open("/dev/null").unwrap();
        assert!(peer_closed(file.as_raw_fd()).is_err());
    }
}
