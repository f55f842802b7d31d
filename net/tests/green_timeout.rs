//! `green::timeout` and `JoinHandle::cancel` around greenloop-net's
//! blocking-style `TcpStream::read`: the read with no data ends with
//! `Elapsed` (or `Cancelled`), and the socket is still usable afterwards.

mod server_util;

use std::io::{Read, Write};
use std::time::Duration;

use greenloop_net::{TcpListener, TcpStream};
use greenloop_runtime::green;
use greenloop_runtime::reactor::Reactor;
use server_util::watchdog;

const TEST_LIMIT: Duration = Duration::from_secs(60);

/// A connected pair on loopback: (client, accepted server end).
fn pair() -> (TcpStream, TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let client = TcpStream::connect(addr).unwrap();
    let (server, _) = listener.accept().unwrap();
    (client, server)
}

#[test]
fn timeout_around_a_read_with_no_data_elapses_and_the_socket_stays_usable() {
    watchdog(TEST_LIMIT, || {
        green::run(|| {
            let (mut client, mut server) = pair();
            let mut buf = [0; 16];
            let read = green::timeout(Duration::from_millis(20), || client.read(&mut buf));
            assert!(read.is_err(), "a read with no data returned {read:?}");
            assert_eq!(Reactor::current().timer_count(), 0);
            server.write_all(b"after").unwrap();
            let n = green::timeout(Duration::from_secs(30), || client.read(&mut buf))
                .expect("the second read timed out")
                .unwrap();
            assert_eq!(&buf[..n], b"after");
        });
    });
}

#[test]
fn a_reader_cancelled_in_read_leaves_the_socket_to_the_next_reader() {
    watchdog(TEST_LIMIT, || {
        green::run(|| {
            let (client, mut server) = pair();
            let client = std::rc::Rc::new(client);
            let c = client.clone();
            let victim = green::spawn(move || (&*c).read(&mut [0; 16]).map(|_| ()));
            green::yield_now();
            victim.cancel();
            let payload = victim.join().unwrap_err();
            assert!(green::is_cancelled(&*payload));
            server.write_all(b"next").unwrap();
            let mut buf = [0; 16];
            let n = (&*client).read(&mut buf).unwrap();
            assert_eq!(&buf[..n], b"next");
        });
    });
}
