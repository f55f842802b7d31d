//! `io_echo_roundtrip/*`: 64 bytes there and back over one loopback TCP
//! connection, both ends in the same runtime, so each round trip goes
//! through the whole stack: a write, the reactor's readiness event, the
//! wake, the echo's read and write, and the same back.

use std::hint::black_box;
use std::io::{self, Read, Write};
use std::time::{Duration, Instant};

use criterion::Criterion;
use greenloop::green;
use greenloop_net::{TcpListener, TcpStream};
use greenloop_runtime::task;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::common::{may_run, task_runtime, tokio_build};

/// The message size.
const MSG: usize = 64;

/// Panics with what failed; set-up errors end a bench.
fn must<T>(what: &str, result: io::Result<T>) -> T {
    result.unwrap_or_else(|e| panic!("io_echo_roundtrip: {what}: {e}"))
}

/// Blocking-style echo: returns each message until the peer closes.
fn echo_blocking(mut conn: impl Read + Write) {
    let mut buf = [0; MSG];
    while conn.read_exact(&mut buf).is_ok() && conn.write_all(&buf).is_ok() {}
}

/// Blocking-style client: one untimed round trip, then `iters` timed.
fn ping_blocking(mut conn: impl Read + Write, iters: u64) -> Duration {
    let mut buf = [7; MSG];
    let mut round_trip = |buf: &mut [u8; MSG]| {
        must("write", conn.write_all(buf));
        must("read", conn.read_exact(buf));
    };
    round_trip(&mut buf);
    let start = Instant::now();
    for _ in 0..iters {
        round_trip(black_box(&mut buf));
    }
    start.elapsed()
}

/// Reads exactly `buf.len()` bytes from a greenloop stream, async style.
async fn read_exact_async(conn: &TcpStream, mut buf: &mut [u8]) -> io::Result<()> {
    while !buf.is_empty() {
        match conn.read_async(buf).await? {
            0 => return Err(io::ErrorKind::UnexpectedEof.into()),
            n => buf = &mut buf[n..],
        }
    }
    Ok(())
}

pub fn io_echo_roundtrip(c: &mut Criterion) {
    let mut group = c.benchmark_group("io_echo_roundtrip");
    group.bench_function("green", |b| {
        b.iter_custom(|iters| {
            green::run(|| {
                let listener = must("bind", TcpListener::bind("127.0.0.1:0"));
                let addr = must("local_addr", listener.local_addr());
                let echo = green::spawn(move || {
                    let (conn, _) = must("accept", listener.accept());
                    must("nodelay", conn.set_nodelay(true));
                    echo_blocking(conn);
                });
                let conn = must("connect", TcpStream::connect(addr));
                must("nodelay", conn.set_nodelay(true));
                let took = ping_blocking(conn, iters);
                black_box(echo.join().is_ok());
                took
            })
        });
    });
    group.bench_function("stackless", |b| {
        let rt = task_runtime();
        b.iter_custom(|iters| {
            rt.block_on(async {
                let listener = must("bind", TcpListener::bind("127.0.0.1:0"));
                let addr = must("local_addr", listener.local_addr());
                let echo = task::spawn_local(async move {
                    let (conn, _) = must("accept", listener.accept_async().await);
                    must("nodelay", conn.set_nodelay(true));
                    let mut buf = [0; MSG];
                    while read_exact_async(&conn, &mut buf).await.is_ok()
                        && conn.write_all_async(&buf).await.is_ok()
                    {}
                });
                let conn = must("connect", TcpStream::connect_async(addr).await);
                must("nodelay", conn.set_nodelay(true));
                let mut buf = [7; MSG];
                must("write", conn.write_all_async(&buf).await);
                must("read", read_exact_async(&conn, &mut buf).await);
                let start = Instant::now();
                for _ in 0..iters {
                    must("write", conn.write_all_async(black_box(&buf)).await);
                    must("read", read_exact_async(&conn, &mut buf).await);
                }
                let took = start.elapsed();
                drop(conn);
                black_box(echo.await.is_ok());
                took
            })
        });
    });
    group.bench_function("tokio", |b| {
        let rt = tokio_build(tokio::runtime::Builder::new_current_thread().enable_io());
        b.iter_custom(|iters| {
            rt.block_on(async {
                let listener = must("bind", tokio::net::TcpListener::bind("127.0.0.1:0").await);
                let addr = must("local_addr", listener.local_addr());
                let echo = tokio::spawn(async move {
                    let (mut conn, _) = must("accept", listener.accept().await);
                    must("nodelay", conn.set_nodelay(true));
                    let mut buf = [0; MSG];
                    while conn.read_exact(&mut buf).await.is_ok()
                        && conn.write_all(&buf).await.is_ok()
                    {}
                });
                let mut conn = must("connect", tokio::net::TcpStream::connect(addr).await);
                must("nodelay", conn.set_nodelay(true));
                let mut buf = [7; MSG];
                must("write", conn.write_all(&buf).await);
                must("read", conn.read_exact(&mut buf).await);
                let start = Instant::now();
                for _ in 0..iters {
                    must("write", conn.write_all(black_box(&buf)).await);
                    must("read", conn.read_exact(&mut buf).await);
                }
                let took = start.elapsed();
                drop(conn);
                black_box(echo.await.is_ok());
                took
            })
        });
    });
    group.bench_function("may", |b| {
        b.iter_custom(|iters| {
            may_run(move || {
                let listener = must("bind", may::net::TcpListener::bind("127.0.0.1:0"));
                let addr = must("local_addr", listener.local_addr());
                let echo = may::go!(move || {
                    let (conn, _) = must("accept", listener.accept());
                    must("nodelay", conn.set_nodelay(true));
                    echo_blocking(conn);
                });
                let conn = must("connect", may::net::TcpStream::connect(addr));
                must("nodelay", conn.set_nodelay(true));
                let took = ping_blocking(conn, iters);
                black_box(echo.join().is_ok());
                took
            })
        });
    });
    group.bench_function("thread", |b| {
        b.iter_custom(|iters| {
            let listener = must("bind", std::net::TcpListener::bind("127.0.0.1:0"));
            let addr = must("local_addr", listener.local_addr());
            let echo = std::thread::spawn(move || {
                let (conn, _) = must("accept", listener.accept());
                must("nodelay", conn.set_nodelay(true));
                echo_blocking(conn);
            });
            let conn = must("connect", std::net::TcpStream::connect(addr));
            must("nodelay", conn.set_nodelay(true));
            let took = ping_blocking(conn, iters);
            black_box(echo.join().is_ok());
            took
        });
    });
    group.finish();
}
