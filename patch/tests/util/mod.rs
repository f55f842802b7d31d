//! Helpers shared by the patch's integration tests.

#![allow(dead_code, reason = "each test binary uses a part")]

use std::sync::atomic::{AtomicUsize, Ordering};

#[path = "../../../runtime/tests/watchdog/mod.rs"]
mod watchdog_impl;
pub use watchdog_impl::watchdog;

/// Counts how many callers are inside a section at once, and the most.
#[derive(Debug, Default)]
pub struct InFlight {
    now: AtomicUsize,
    max: AtomicUsize,
}

impl InFlight {
    /// Runs `f` counted as in flight.
    pub fn run<R>(&self, f: impl FnOnce() -> R) -> R {
        let now = self.now.fetch_add(1, Ordering::SeqCst) + 1;
        self.max.fetch_max(now, Ordering::SeqCst);
        let result = f();
        self.now.fetch_sub(1, Ordering::SeqCst);
        result
    }

    /// The most in flight at once so far.
    pub fn max(&self) -> usize {
        self.max.load(Ordering::SeqCst)
    }
}

/// A connected loopback pair of std streams: (accepted, connected).
pub fn pair() -> (std::net::TcpStream, std::net::TcpStream) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let client =
        std::net::TcpStream::connect(listener.local_addr().expect("addr")).expect("connect");
    let (server, _) = listener.accept().expect("accept");
    (server, client)
}

/// Whether `fd`'s `F_GETFL` shows `O_NONBLOCK` (the user's view when the
/// patch manages it).
pub fn shows_nonblocking(fd: std::os::fd::RawFd) -> bool {
    // SAFETY: F_GETFL on an open fd.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    assert!(flags >= 0, "F_GETFL failed");
    flags & libc::O_NONBLOCK != 0
}

/// Writes `bytes` to `stream` from an OS thread after `delay`.
pub fn write_later(
    mut stream: std::net::TcpStream,
    delay: std::time::Duration,
    bytes: &'static [u8],
) -> std::thread::JoinHandle<std::net::TcpStream> {
    std::thread::spawn(move || {
        std::thread::sleep(delay);
        std::io::Write::write_all(&mut stream, bytes).unwrap();
        stream
    })
}
