//! The public `TcpStream` and `TcpListener` API outside the servers:
//! `connect` (by address and by name), `connect_timeout`, `connect_async`,
//! `into_std` for both types. (The `futures-io` impls: `tcp_futures_io.rs`.)

mod server_util;

use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Duration;

use greenloop_net::server::bind_reuseport;
use greenloop_net::{TcpListener, TcpStream};
use greenloop_runtime::{green, task};
use server_util::watchdog;

const LIMIT: Duration = Duration::from_secs(30);
/// Generous: loopback connects take microseconds.
const CONNECT_LIMIT: Duration = Duration::from_secs(10);

/// A port nothing listens on (bound, then closed; a race with another
/// process taking it in between is possible but harmless: the connect
/// then succeeds and the assertion names the port).
fn closed_port() -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("local_addr")
}

fn std_listener() -> (std::net::TcpListener, SocketAddr) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("local_addr");
    (listener, addr)
}

/// Writes `hello` on `stream` and checks that `accepted` reads it.
fn check_link(stream: &mut TcpStream, accepted: &mut std::net::TcpStream) {
    stream.write_all(b"hello").expect("write");
    accepted.set_read_timeout(Some(LIMIT)).expect("set_read_timeout");
    let mut buf = [0u8; 5];
    accepted.read_exact(&mut buf).expect("read");
    assert_eq!(&buf, b"hello");
}

#[test]
fn connect_by_address_and_by_name_from_a_plain_thread() {
    watchdog(LIMIT, || {
        let (listener, addr) = std_listener();
        let mut stream = TcpStream::connect(addr).expect("connect");
        assert_eq!(stream.peer_addr().expect("peer_addr"), addr);
        check_link(&mut stream, &mut listener.accept().expect("accept").0);

        let mut stream =
            TcpStream::connect(format!("localhost:{}", addr.port())).expect("connect by name");
        assert_eq!(stream.peer_addr().expect("peer_addr").port(), addr.port());
        check_link(&mut stream, &mut listener.accept().expect("accept").0);

        let closed = closed_port();
        let err = TcpStream::connect(closed).expect_err("connect to a closed port");
        assert_eq!(err.kind(), io::ErrorKind::ConnectionRefused, "{closed}: {err}");
    });
}

/// A listener whose accept queue is full: the kernel drops further SYNs,
/// so a connect to it waits (until the client's SYN retries give up). The
/// queued connections are returned too: they must stay open.
fn full_listener() -> (std::net::TcpListener, SocketAddr, Vec<std::net::TcpStream>) {
    let listener = bind_reuseport(([127, 0, 0, 1], 0).into(), 0).expect("bind");
    let addr = listener.local_addr().expect("local_addr");
    let mut queued = Vec::new();
    for _ in 0..8 {
        match std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(200)) {
            Ok(stream) => queued.push(stream),
            Err(e) if e.kind() == io::ErrorKind::TimedOut => return (listener, addr, queued),
            Err(e) => panic!("filling the accept queue: {e}"),
        }
    }
    panic!("the accept queue of a listener with backlog 0 never filled");
}

#[test]
fn connect_timeout_connects_or_gives_up() {
    watchdog(LIMIT, || {
        let (listener, addr) = std_listener();
        let mut stream = TcpStream::connect_timeout(&addr, CONNECT_LIMIT).expect("connect");
        check_link(&mut stream, &mut listener.accept().expect("accept").0);

        let (_full, addr, _queued) = full_listener();
        // From a plain thread, then from a green thread (parks it).
        let err = TcpStream::connect_timeout(&addr, Duration::from_millis(100))
            .expect_err("connect to a full listener");
        assert_eq!(err.kind(), io::ErrorKind::TimedOut, "{err}");
        let err = green::run(|| {
            let ticker = green::spawn(|| green::sleep(Duration::from_millis(10)));
            let err = TcpStream::connect_timeout(&addr, Duration::from_millis(100))
                .expect_err("connect to a full listener");
            // The other green thread ran while this one waited.
            assert!(ticker.is_finished(), "connect_timeout blocked the green scheduler");
            err
        });
        assert_eq!(err.kind(), io::ErrorKind::TimedOut, "{err}");
    });
}

#[test]
fn connect_async_by_address_and_by_name() {
    watchdog(LIMIT, || {
        let runtime = task::Runtime::new().expect("runtime");
        runtime.block_on(async {
            let listener = Rc::new(TcpListener::bind("127.0.0.1:0").expect("bind"));
            let addr = listener.local_addr().expect("local_addr");
            let acceptor = {
                let listener = listener.clone();
                task::spawn_local(async move {
                    let mut peers = Vec::new();
                    for _ in 0..2 {
                        let (stream, _) = listener.accept_async().await.expect("accept_async");
                        peers.push(stream.peer_addr().expect("peer_addr"));
                    }
                    peers
                })
            };
            let by_addr = TcpStream::connect_async(addr).await.expect("connect_async");
            let name = format!("localhost:{}", addr.port());
            let by_name = TcpStream::connect_async(name.as_str()).await.expect("by name");
            let peers = acceptor.await.expect("acceptor");
            let locals = [by_addr.local_addr().expect("local"), by_name.local_addr().expect("l")];
            assert_eq!(peers, locals);

            let closed = closed_port();
            let err = TcpStream::connect_async(closed).await.expect_err("a closed port");
            assert_eq!(err.kind(), io::ErrorKind::ConnectionRefused, "{closed}: {err}");
            let err = TcpStream::connect_async("localhost").await.expect_err("no port");
            assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{err}");
        });
    });
}

#[test]
fn into_std_deregisters_and_keeps_the_socket() {
    watchdog(LIMIT, || {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("local_addr");
        let stream = TcpStream::connect(addr).expect("connect");
        let (accepted, _) = listener.accept().expect("accept");

        // Still non-blocking, as documented: a read with nothing to read
        // says so at once.
        let mut std_stream = stream.into_std().expect("into_std");
        let mut buf = [0u8; 8];
        let err = std_stream.read(&mut buf).expect_err("nothing to read yet");
        assert_eq!(err.kind(), io::ErrorKind::WouldBlock, "{err}");
        // Deregistered: it can be registered again on this thread (a second
        // registration of a registered descriptor fails with EEXIST).
        let mut stream = TcpStream::from_std(std_stream).expect("register again");
        (&accepted).write_all(b"after").expect("write");
        stream.set_read_timeout(Some(LIMIT)).expect("set_read_timeout");
        stream.read_exact(&mut buf[..5]).expect("read after re-registering");
        assert_eq!(&buf[..5], b"after");

        let std_listener = listener.into_std().expect("listener into_std");
        let err = std_listener.accept().expect_err("no connection waiting");
        assert_eq!(err.kind(), io::ErrorKind::WouldBlock, "{err}");
        let listener = TcpListener::from_std(std_listener).expect("register the listener again");
        let _client = TcpStream::connect(addr).expect("connect again");
        listener.accept().expect("accept after re-registering");
    });
}
