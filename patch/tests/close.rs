//! `close` of a socket a green thread is parked on wakes it with `EBADF`,
//! and a new socket under the same number starts with no stale readiness.
//! In a binary of their own, one at a time: they close and reuse fd
//! numbers on purpose, which other tests opening and closing fds at the
//! same time would race with.

mod util;

use std::os::fd::{AsRawFd, IntoRawFd, RawFd};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use greenloop_runtime::dump::{self, State, Wait};
use greenloop_runtime::green;
use greenloop_runtime::reactor::Direction;
use util::{pair, watchdog, write_later};

/// Held by each test: one at a time.
static ALONE: Mutex<()> = Mutex::new(());

/// Yields until the dump lists a green thread parked reading `fd`, so the
/// `close` that follows wakes a parked reader instead of racing a read
/// that has not started.
fn until_parked_reading(fd: RawFd) {
    for _ in 0..100_000 {
        let parked = dump::dump().entries().any(|entry| {
            entry.state == State::Parked
                && matches!(entry.wait, Some(Wait::Io { fd: Some(f), dir: Direction::Read, .. }) if f == fd)
        });
        if parked {
            return;
        }
        green::yield_now();
    }
    panic!("no green thread parked reading fd {fd}");
}

/// Spawns a green thread that reads a byte from `fd`: its `read`'s result
/// and errno.
fn reader(fd: RawFd) -> green::JoinHandle<(isize, Option<i32>)> {
    green::spawn(move || {
        let mut byte = 0u8;
        // SAFETY: reads one byte into `byte` from `fd` (open, or closed
        // meanwhile by the test: then EBADF).
        let n = unsafe { libc::read(fd, (&raw mut byte).cast(), 1) };
        (n, std::io::Error::last_os_error().raw_os_error())
    })
}

#[test]
fn close_wakes_a_parked_reader_and_a_reused_fd_starts_afresh() {
    let _alone = ALONE.lock().unwrap_or_else(PoisonError::into_inner);
    greenloop_patch::install();
    watchdog(Duration::from_secs(30), || {
        let (server, client) = pair();
        let fd = server.into_raw_fd();
        green::run(move || {
            let reader = reader(fd);
            until_parked_reading(fd);
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

#[test]
fn close_on_another_os_thread_wakes_a_parked_reader() {
    let _alone = ALONE.lock().unwrap_or_else(PoisonError::into_inner);
    greenloop_patch::install();
    watchdog(Duration::from_secs(30), || {
        let (server, client) = pair();
        let fd = server.into_raw_fd();
        green::run(move || {
            let reader = reader(fd);
            until_parked_reading(fd);
            let closer = std::thread::spawn(move || {
                // SAFETY: closes the fd the reader waits on; nothing else owns it.
                unsafe { libc::close(fd) }
            });
            // The reader wakes on this thread's reactor, from the closer's
            // message; it must not wait for data that never comes.
            assert_eq!(reader.join().unwrap(), (-1, Some(libc::EBADF)));
            assert_eq!(closer.join().unwrap(), 0);
            drop(client);
        });
    });
}
