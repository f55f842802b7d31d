//! `close` of a socket a green thread is parked on wakes it with `EBADF`,
//! and a new socket under the same number starts with no stale readiness.
//! Alone in its binary: it reuses an fd number on purpose, which other
//! tests opening and closing fds at the same time would race with.

mod util;

use std::os::fd::{AsRawFd, IntoRawFd};
use std::time::Duration;

use greenloop_runtime::green;
use util::{pair, watchdog, write_later};

#[test]
fn close_wakes_a_parked_reader_and_a_reused_fd_starts_afresh() {
    greenloop_patch::install();
    watchdog(Duration::from_secs(30), || {
        let (server, client) = pair();
        let fd = server.into_raw_fd();
        green::run(move || {
            let reader = green::spawn(move || {
                let mut byte = 0u8;
                // SAFETY: reads one byte into `byte` from an open fd.
                let n = unsafe { libc::read(fd, (&raw mut byte).cast(), 1) };
                (n, std::io::Error::last_os_error().raw_os_error())
            });
            green::sleep(Duration::from_millis(20));
            // SAFETY: closes the fd the reader waits on; nothing else owns it.
            assert_eq!(unsafe { libc::close(fd) }, 0);
            assert_eq!(reader.join().unwrap(), (-1, Some(libc::EBADF)));

            // A new socket under the old number: parks until its own data.
            let (again, peer) = pair();
            // SAFETY: duplicates an open socket onto the free number `fd`.
            assert_eq!(unsafe { libc::dup2(again.as_raw_fd(), fd) }, fd);
            let peer = write_later(peer, Duration::from_millis(20), b"n");
            let mut byte = 0u8;
            // SAFETY: reads one byte into `byte` from the open `fd`.
            assert_eq!(unsafe { libc::read(fd, (&raw mut byte).cast(), 1) }, 1);
            assert_eq!(byte, b'n');
            // SAFETY: `fd` is the dup made above, owned here.
            assert_eq!(unsafe { libc::close(fd) }, 0);
            drop((peer.join().unwrap(), client, again));
        });
    });
}
