//! A peer's last bytes and its close often reach a socket together and are
//! reported in one edge. A read shorter than its buffer lets the reactor
//! forget the read readiness (the buffer is drained, the next byte brings a
//! new edge), but not that one: the close is never reported again, and a
//! reader that forgot it waits forever for an end of stream it was already
//! told of (the hang that once stalled `server_echo`). Each test reads one
//! short chunk, then must see `Ok(0)`, in each way a socket waits.

mod server_util;

use std::io::{self, Read, Write};
use std::net::Shutdown;
use std::os::fd::AsRawFd;
use std::time::Duration;

use greenloop_net::TcpStream;
use greenloop_runtime::{green, time};
use server_util::watchdog;

const LAST_WORDS: &[u8] = b"last words";
/// Longer than `LAST_WORDS`, so the first read is short.
const BUF_LEN: usize = 64;
/// Bounds each test's reads: a lost end of stream fails as `TimedOut`.
const READ_LIMIT: Duration = Duration::from_secs(10);
const TEST_LIMIT: Duration = Duration::from_secs(60);

/// A greenloop stream whose peer has written `LAST_WORDS` and shut down its
/// write half, both already queued in the kernel before it is registered,
/// so its first edge carries the data and the close at once. Returns the
/// peer too (dropping it early would reset the connection).
fn stream_after_data_and_close() -> (TcpStream, std::net::TcpStream) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let mut peer = server_util::connect(listener.local_addr().expect("local_addr"));
    let (accepted, _) = listener.accept().expect("accept");
    peer.write_all(LAST_WORDS).expect("write");
    peer.shutdown(Shutdown::Write).expect("shutdown");
    wait_for_peer_close(&accepted);
    let stream = TcpStream::from_std(accepted).expect("register");
    stream.set_read_timeout(Some(READ_LIMIT)).expect("set_read_timeout");
    (stream, peer)
}

/// Waits (bounded) until the peer's close has arrived; TCP delivers its
/// data first, so both are queued then.
fn wait_for_peer_close(stream: &std::net::TcpStream) {
    let mut fd = libc::pollfd { fd: stream.as_raw_fd(), events: libc::POLLRDHUP, revents: 0 };
    let limit = i32::try_from(READ_LIMIT.as_millis()).expect("limit fits poll's int");
    // SAFETY: `fd` is one valid `pollfd` that outlives the call, and the
    // count passed is 1 (poll(2)).
    let ready = unsafe { libc::poll(&mut fd, 1, limit) };
    assert!(ready == 1 && fd.revents & libc::POLLRDHUP != 0, "the peer's close never arrived");
}

/// Reads with `read` until end of stream (at most a few reads).
fn read_all(mut read: impl FnMut(&mut [u8]) -> io::Result<usize>) -> io::Result<Vec<u8>> {
    let mut got = Vec::new();
    let mut buf = [0u8; BUF_LEN];
    for _ in 0..8 {
        match read(&mut buf)? {
            0 => return Ok(got),
            n => got.extend_from_slice(&buf[..n]),
        }
    }
    panic!("no end of stream after 8 reads; got {got:?}");
}

fn assert_last_words(got: io::Result<Vec<u8>>) {
    match got {
        Ok(got) => assert_eq!(got, LAST_WORDS),
        Err(e) => panic!("end of stream lost after a short read: {e}"),
    }
}

#[test]
fn short_read_keeps_close_on_plain_thread() {
    watchdog(TEST_LIMIT, || {
        let (stream, _peer) = stream_after_data_and_close();
        assert_last_words(read_all(|buf| (&stream).read(buf)));
    });
}

#[test]
fn short_read_keeps_close_in_green_thread() {
    watchdog(TEST_LIMIT, || {
        green::run(|| {
            let (stream, _peer) = stream_after_data_and_close();
            assert_last_words(read_all(|buf| (&stream).read(buf)));
        });
    });
}

#[test]
fn short_read_keeps_close_async() {
    watchdog(TEST_LIMIT, || {
        let (stream, _peer) = stream_after_data_and_close();
        assert_last_words(read_all(|buf| {
            time::block_on_timeout(READ_LIMIT, stream.read_async(buf))
                .unwrap_or_else(|_| Err(io::ErrorKind::TimedOut.into()))
        }));
    });
}
