//! Sockets under the patch: shared with other OS threads, made
//! non-blocking by their user, failing, timing out, closed under a parked
//! reader (tests/close.rs), and files passing through.

mod util;

use std::cell::Cell;
use std::io::{ErrorKind, Read, Write};
use std::net::{TcpListener, TcpStream, ToSocketAddrs};
use std::os::fd::AsRawFd;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use greenloop_runtime::green;
use util::{pair, shows_nonblocking, watchdog, write_later};

/// Counts ticks of a green thread that runs beside a test's body, so the
/// body can show that others ran while it waited.
fn ticker() -> (Rc<Cell<u32>>, green::JoinHandle<()>) {
    let ticks = Rc::new(Cell::new(0));
    let counter = ticks.clone();
    let handle = green::spawn(move || {
        for _ in 0..200 {
            counter.set(counter.get() + 1);
            green::sleep(Duration::from_millis(1));
        }
    });
    (ticks, handle)
}

#[test]
fn the_patch_is_linked_and_installed() {
    greenloop_patch::install();
    assert!(greenloop_patch::is_linked());
    assert!(greenloop_patch::is_installed());
}

#[test]
fn a_socket_shared_with_another_os_thread_blocks_there_and_parks_here() {
    greenloop_patch::install();
    watchdog(Duration::from_secs(30), || {
        let (server, client) = pair();
        let server = Arc::new(server);
        let fd = server.as_raw_fd();
        let shared = server.clone();
        green::run(move || {
            let (ticks, ticker) = ticker();
            let peer = write_later(client, Duration::from_millis(30), b"x");
            let mut byte = [0];
            assert_eq!((&*server).read(&mut byte).unwrap(), 1);
            assert!(ticks.get() > 0, "the read blocked the OS thread");
            assert!(!shows_nonblocking(fd), "the user's view changed");

            // Another OS thread reads the same socket: it blocks there.
            let client = peer.join().unwrap();
            let other = std::thread::spawn(move || {
                let mut byte = [0];
                let n = (&*shared).read(&mut byte);
                (n.map_err(|e| e.kind()), byte, shows_nonblocking(fd))
            });
            let peer = write_later(client, Duration::from_millis(30), b"y");
            let (n, mut byte, nonblocking) = other.join().unwrap();
            assert_eq!(n, Ok(1), "another OS thread saw the socket non-blocking");
            assert_eq!(&byte, b"y");
            assert!(!nonblocking);

            // And back on the green thread.
            let peer = write_later(peer.join().unwrap(), Duration::from_millis(10), b"z");
            assert_eq!((&*server).read(&mut byte).unwrap(), 1);
            assert_eq!(&byte, b"z");
            peer.join().unwrap();
            ticker.join().unwrap();
        });
    });
}

#[test]
fn a_socket_the_user_made_non_blocking_keeps_answering_eagain() {
    greenloop_patch::install();
    watchdog(Duration::from_secs(30), || {
        let (mut server, client) = pair();
        let fd = server.as_raw_fd();
        green::run(move || {
            // Non-blocking from the start: never managed.
            server.set_nonblocking(true).unwrap();
            let mut byte = [0];
            assert_eq!(server.read(&mut byte).unwrap_err().kind(), ErrorKind::WouldBlock);
            assert!(shows_nonblocking(fd));

            // Blocking: managed, parks.
            server.set_nonblocking(false).unwrap();
            let (ticks, ticker) = ticker();
            let peer = write_later(client, Duration::from_millis(20), b"a");
            assert_eq!(server.read(&mut byte).unwrap(), 1);
            assert!(ticks.get() > 0, "the read blocked the OS thread");
            assert!(!shows_nonblocking(fd));
            ticker.join().unwrap();

            // Non-blocking again, while managed: EAGAIN, twice.
            server.set_nonblocking(true).unwrap();
            assert!(shows_nonblocking(fd));
            for _ in 0..2 {
                let err = server.read(&mut byte).unwrap_err();
                assert_eq!(err.raw_os_error(), Some(libc::EAGAIN));
            }
            // And on another OS thread, where the call goes straight to libc.
            let other = std::thread::spawn(move || {
                let mut byte = 0u8;
                // SAFETY: reads at most one byte into `byte`; the socket
                // stays open until this thread is joined.
                let n = unsafe { libc::read(fd, (&raw mut byte).cast(), 1) };
                (n, std::io::Error::last_os_error().raw_os_error())
            });
            assert_eq!(other.join().unwrap(), (-1, Some(libc::EAGAIN)));
            peer.join().unwrap();
        });
    });
}

#[test]
fn errors_come_back_as_libc_gives_them() {
    greenloop_patch::install();
    watchdog(Duration::from_secs(30), || {
        green::run(|| {
            // ECONNREFUSED: nobody listens on a port just freed.
            let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
            let refused = TcpStream::connect(port).unwrap_err();
            assert_eq!(refused.raw_os_error(), Some(libc::ECONNREFUSED));

            // EPIPE: writing after our own shutdown.
            let (mut server, _client) = pair();
            server.shutdown(std::net::Shutdown::Write).unwrap();
            let err = server.write(b"late").unwrap_err();
            assert_eq!(err.raw_os_error(), Some(libc::EPIPE));

            // ECONNRESET: the peer aborts (SO_LINGER 0) while we wait.
            let (mut server, client) = pair();
            let linger = libc::linger { l_onoff: 1, l_linger: 0 };
            // SAFETY: a valid linger for a valid socket.
            let rc = unsafe {
                libc::setsockopt(
                    client.as_raw_fd(),
                    libc::SOL_SOCKET,
                    libc::SO_LINGER,
                    (&raw const linger).cast(),
                    size_of::<libc::linger>() as libc::socklen_t,
                )
            };
            assert_eq!(rc, 0);
            let aborter = std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(20));
                drop(client);
            });
            let err = server.read(&mut [0; 8]).unwrap_err();
            assert_eq!(err.raw_os_error(), Some(libc::ECONNRESET));
            aborter.join().unwrap();
        });
    });
}

#[test]
fn a_read_timeout_ends_the_park_with_would_block() {
    greenloop_patch::install();
    watchdog(Duration::from_secs(30), || {
        let (mut server, _client) = pair();
        green::run(move || {
            let (ticks, ticker) = ticker();
            server.set_read_timeout(Some(Duration::from_millis(30))).unwrap();
            let err = server.read(&mut [0; 8]).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::WouldBlock);
            assert!(ticks.get() > 0, "the timed read blocked the OS thread");
            ticker.join().unwrap();
        });
    });
}

#[test]
fn regular_files_pass_through() {
    greenloop_patch::install();
    watchdog(Duration::from_secs(30), || {
        green::run(|| {
            let file = std::fs::File::open("/proc/self/stat").unwrap();
            assert!(!shows_nonblocking(file.as_raw_fd()));
            let text = std::io::read_to_string(file).unwrap();
            assert!(!text.is_empty());
        });
    });
}

#[test]
fn name_lookups_run_on_the_blocking_pool() {
    greenloop_patch::install();
    let addrs = watchdog(Duration::from_secs(30), || {
        green::run(|| {
            // A fast lookup may finish before the green thread parks, so
            // the pool's threads are the proof that it ran there.
            ("localhost", 80).to_socket_addrs().unwrap().collect::<Vec<_>>()
        })
    });
    assert!(addrs.iter().all(|a| a.ip().is_loopback()), "{addrs:?}");
    assert!(greenloop_runtime::blocking::Pool::global().threads() > 0);
}
