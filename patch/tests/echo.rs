//! A std-only echo server (`std::net::TcpListener`, a green thread per
//! connection, `Read`/`Write` on `std::net::TcpStream`) serves 1,000
//! concurrent loopback clients on one OS thread once the patch is in.

mod util;

use std::cell::Cell;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::rc::Rc;
use std::time::Duration;

use greenloop_runtime::green;
use util::{InFlight, watchdog};

const CLIENTS: usize = 1000;

/// Echoes until EOF, with nothing but std.
fn echo(mut stream: TcpStream) -> std::io::Result<()> {
    let mut buf = [0; 1024];
    loop {
        let n = stream.read(&mut buf)?;
        if n == 0 {
            return Ok(());
        }
        stream.write_all(&buf[..n])?;
    }
}

/// Serves `CLIENTS` connections on green threads; returns the most served
/// at once.
fn serve(listener: TcpListener) -> usize {
    green::run(move || {
        let in_flight = Rc::new(InFlight::default());
        let handlers: Vec<_> = (0..CLIENTS)
            .map(|_| {
                let (stream, _) = listener.accept().expect("accept");
                let in_flight = in_flight.clone();
                green::spawn(move || in_flight.run(|| echo(stream)))
            })
            .collect();
        for handler in handlers {
            handler.join().unwrap().expect("echo");
        }
        in_flight.max()
    })
}

/// `CLIENTS` green clients that each echo a line, hold their connection
/// until every one of them has, then echo another and close.
fn clients(addr: std::net::SocketAddr) {
    green::run(move || {
        let echoed = Rc::new(Cell::new(0));
        let clients: Vec<_> = (0..CLIENTS)
            .map(|i| {
                let echoed = echoed.clone();
                green::spawn(move || {
                    let mut stream = TcpStream::connect(addr).expect("connect");
                    let line = format!("client {i}\n");
                    let mut back = vec![0; line.len()];
                    stream.write_all(line.as_bytes()).unwrap();
                    stream.read_exact(&mut back).unwrap();
                    assert_eq!(back, line.as_bytes());
                    echoed.set(echoed.get() + 1);
                    for _ in 0..6000 {
                        if echoed.get() == CLIENTS {
                            break;
                        }
                        std::thread::sleep(Duration::from_millis(5));
                    }
                    stream.write_all(line.as_bytes()).unwrap();
                    stream.read_exact(&mut back).unwrap();
                    assert_eq!(back, line.as_bytes());
                })
            })
            .collect();
        clients.into_iter().for_each(|c| c.join().unwrap());
        assert_eq!(echoed.get(), CLIENTS);
    });
}

#[test]
fn a_std_echo_server_serves_a_thousand_clients_at_once_on_one_thread() {
    greenloop_patch::install();
    let max = watchdog(Duration::from_secs(120), || {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let server = std::thread::spawn(move || serve(listener));
        clients(addr);
        server.join().unwrap()
    });
    assert_eq!(max, CLIENTS, "the server served {max} connections at once");
}
