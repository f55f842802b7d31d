//! `UdpSocket`, all of it, in both styles: blocking-style calls park only
//! their green thread (and block a plain OS thread), async-style calls
//! return `Pending` to their task until a datagram arrives; `connect` sets
//! the peer that `send`, `recv` and `peer_addr` use.
//!
//! Every wait is proven, not timed: the receiver is shown to be inside its
//! receive (a green thread parked in it, a future that returned `Pending`)
//! before anything is sent. On one OS thread, a receive that blocked the
//! thread instead would stop the sender and fail by the watchdog.

mod server_util;

use std::cell::Cell;
use std::future::{Future, poll_fn};
use std::io;
use std::net::SocketAddr;
use std::pin::pin;
use std::rc::Rc;
use std::task::Poll;
use std::time::Duration;

use greenloop_net::UdpSocket;
use greenloop_runtime::{green, task};
use server_util::watchdog;

const LIMIT: Duration = Duration::from_secs(30);

fn bind() -> UdpSocket {
    UdpSocket::bind("127.0.0.1:0").expect("bind 127.0.0.1:0")
}

fn addr(socket: &UdpSocket) -> SocketAddr {
    socket.local_addr().expect("local_addr")
}

/// Awaits `future`, also returning how often it was `Pending`.
async fn pending_count<F: Future>(future: F) -> (F::Output, usize) {
    let mut future = pin!(future);
    let mut pending = 0;
    let output = poll_fn(|cx| match future.as_mut().poll(cx) {
        Poll::Ready(output) => Poll::Ready(output),
        Poll::Pending => {
            pending += 1;
            Poll::Pending
        }
    })
    .await;
    (output, pending)
}

#[test]
fn blocking_recv_from_parks_only_its_green_thread() {
    watchdog(LIMIT, || {
        green::run(|| {
            let (a, b) = (bind(), bind());
            let (a_addr, b_addr) = (addr(&a), addr(&b));
            let entered = Rc::new(Cell::new(false));
            let in_recv = entered.clone();
            let receiver = green::spawn(move || {
                let mut buf = [0u8; 64];
                in_recv.set(true);
                let (n, from) = b.recv_from(&mut buf).expect("recv_from");
                (buf[..n].to_vec(), from)
            });
            green::yield_now();
            // The receiver ran up to its receive; nothing was sent, so it is
            // parked inside `recv_from`.
            assert!(entered.get() && !receiver.is_finished(), "the receiver did not park");
            assert_eq!(a.send_to(b"ping", b_addr).expect("send_to"), 4);
            let (data, from) = receiver.join().expect("receiver");
            assert_eq!((data.as_slice(), from), (&b"ping"[..], a_addr));
        });
    });
}

#[test]
fn connect_sets_the_peer_for_send_recv_and_peer_addr() {
    watchdog(LIMIT, || {
        // A plain OS thread: blocking calls block it (driving its reactor).
        let (a, b, stranger) = (bind(), bind(), bind());
        let err = a.peer_addr().expect_err("peer_addr before connect");
        assert_eq!(err.kind(), io::ErrorKind::NotConnected, "{err}");
        a.connect(addr(&b)).expect("connect");
        b.connect(addr(&a)).expect("connect");
        assert_eq!(a.peer_addr().expect("peer_addr"), addr(&b));
        // A connected socket takes datagrams from its peer only: the
        // stranger's is dropped by the kernel, the peer's arrives.
        stranger.send_to(b"stranger", addr(&a)).expect("send_to");
        assert_eq!(b.send(b"peer").expect("send"), 4);
        let mut buf = [0u8; 64];
        let n = a.recv(&mut buf).expect("recv");
        assert_eq!(&buf[..n], b"peer");
        // And it sends to its peer without naming it.
        a.send(b"back").expect("send");
        let (n, from) = b.recv_from(&mut buf).expect("recv_from");
        assert_eq!((&buf[..n], from), (&b"back"[..], addr(&a)));
    });
}

#[test]
fn async_calls_wait_in_their_task() {
    watchdog(LIMIT, || {
        let runtime = task::Runtime::new().expect("runtime");
        runtime.block_on(async {
            let (a, b) = (bind(), bind());
            let (a_addr, b_addr) = (addr(&a), addr(&b));
            let receiver = task::spawn_local(async move {
                let mut buf = [0u8; 64];
                let (result, pending) = pending_count(b.recv_from_async(&mut buf)).await;
                let (n, from) = result.expect("recv_from_async");
                (buf[..n].to_vec(), from, pending, b)
            });
            // The receiver runs first and finds nothing to receive.
            task::yield_now().await;
            assert_eq!(a.send_to_async(b"ping", b_addr).await.expect("send_to_async"), 4);
            let (data, from, pending, b) = receiver.await.expect("receiver");
            assert_eq!((data.as_slice(), from), (&b"ping"[..], a_addr));
            assert!(pending > 0, "recv_from_async never waited");

            a.connect(b_addr).expect("connect");
            b.connect(a_addr).expect("connect");
            let receiver = task::spawn_local(async move {
                let mut buf = [0u8; 64];
                let (result, pending) = pending_count(a.recv_async(&mut buf)).await;
                (buf[..result.expect("recv_async")].to_vec(), pending)
            });
            task::yield_now().await;
            assert_eq!(b.send_async(b"pong").await.expect("send_async"), 4);
            let (data, pending) = receiver.await.expect("receiver");
            assert_eq!(data, b"pong");
            assert!(pending > 0, "recv_async never waited");
        });
    });
}

#[test]
fn from_std_and_bind_by_name_and_bind_errors() {
    watchdog(LIMIT, || {
        green::run(|| {
            let std_socket = std::net::UdpSocket::bind("127.0.0.1:0").expect("std bind");
            let wrapped = UdpSocket::from_std(std_socket).expect("from_std");
            let by_name = UdpSocket::bind(("localhost", 0)).expect("bind localhost");
            assert!(addr(&by_name).ip().is_loopback(), "{:?}", addr(&by_name));
            let to = addr(&wrapped);
            let receiver = green::spawn(move || {
                let mut buf = [0u8; 64];
                let (n, _) = wrapped.recv_from(&mut buf).expect("recv_from");
                buf[..n].to_vec()
            });
            green::yield_now();
            by_name.send_to(b"wrapped", to).expect("send_to");
            assert_eq!(receiver.join().expect("receiver"), b"wrapped");
            // The port is taken (by `by_name`), and a name without a port
            // is no address.
            let err = UdpSocket::bind(addr(&by_name)).expect_err("bind a taken port");
            assert_eq!(err.kind(), io::ErrorKind::AddrInUse, "{err}");
            let err = UdpSocket::bind("localhost").expect_err("bind without a port");
            assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{err}");
        });
    });
}
