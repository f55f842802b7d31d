//! greenloop's sockets under real third-party futures code: the listener's
//! incoming connections as a `Stream` (`futures::StreamExt`), an echo by
//! `futures::io::copy`, and clients that read line by line through
//! `futures::io::BufReader` + `AsyncBufReadExt`, over loopback, on both
//! models: stackless tasks (`.await`) and green threads (`block_on`).

mod server_util;

use std::net::SocketAddr;
use std::time::Duration;

use futures::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use futures::{StreamExt, TryStreamExt};
use greenloop_net::{TcpListener, TcpStream};
use greenloop_runtime::{block_on, green, task};
use server_util::watchdog;

const LIMIT: Duration = Duration::from_secs(60);
const CLIENTS: usize = 4;
/// Lines per client: about 120 kB each way, more than one socket buffer
/// holds unread, so the echo really streams.
const LINES: usize = 1000;

fn line(client: usize, i: usize) -> String {
    format!("client {client} line {i:04} {}", "x".repeat(96))
}

/// Echoes `conn` to its end with `futures::io::copy`, then closes the
/// write half; returns the bytes echoed.
async fn echo(conn: TcpStream) -> u64 {
    let mut writer = &conn;
    let echoed = futures::io::copy(&conn, &mut writer).await.expect("copy");
    writer.close().await.expect("close the write half");
    echoed
}

/// Sends [`LINES`] lines while reading the echo back line by line, and
/// returns the lines read.
async fn client(addr: SocketAddr, client: usize) -> Vec<String> {
    let conn = TcpStream::connect_async(addr).await.expect("connect");
    let mut writer = &conn;
    let send = async move {
        for i in 0..LINES {
            writer.write_all(format!("{}\n", line(client, i)).as_bytes()).await.expect("write");
        }
        writer.close().await.expect("close the write half");
    };
    let receive = BufReader::new(&conn).lines().try_collect::<Vec<String>>();
    let ((), lines) = futures::join!(send, receive);
    lines.expect("read lines")
}

fn check(lines: &[Vec<String>], echoed: u64) {
    assert_eq!(lines.len(), CLIENTS);
    for (c, got) in lines.iter().enumerate() {
        assert_eq!(got.len(), LINES, "client {c}: lines echoed");
        assert!(got.iter().enumerate().all(|(i, l)| *l == line(c, i)), "client {c}: content");
    }
    let sent: usize =
        (0..CLIENTS).flat_map(|c| (0..LINES).map(move |i| line(c, i).len() + 1)).sum();
    assert_eq!(echoed, sent as u64, "bytes the server copied");
}

#[test]
fn stackless_incoming_stream_copy_and_buffered_lines() {
    watchdog(LIMIT, || {
        let rt = task::Runtime::new().expect("runtime");
        let (lines, echoed) = rt.block_on(async {
            let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
            let addr = listener.local_addr().expect("local_addr");
            let server = task::spawn_local(async move {
                let echoes: Vec<_> = listener
                    .into_incoming()
                    .take(CLIENTS)
                    .map(|conn| task::spawn_local(echo(conn.expect("accept"))))
                    .collect()
                    .await;
                let mut echoed = 0;
                for e in echoes {
                    echoed += e.await.expect("echo task");
                }
                echoed
            });
            let clients: Vec<_> =
                (0..CLIENTS).map(|c| task::spawn_local(client(addr, c))).collect();
            let mut lines = Vec::new();
            for c in clients {
                lines.push(c.await.expect("client task"));
            }
            (lines, server.await.expect("server task"))
        });
        check(&lines, echoed);
    });
}

#[test]
fn green_incoming_stream_copy_and_buffered_lines() {
    watchdog(LIMIT, || {
        let (lines, echoed) = green::run(|| {
            let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
            let addr = listener.local_addr().expect("local_addr");
            let server = green::spawn(move || {
                let mut incoming = listener.into_incoming();
                let echoes: Vec<_> = (0..CLIENTS)
                    .map(|_| {
                        let conn = block_on(incoming.next()).expect("endless").expect("accept");
                        green::spawn(move || block_on(echo(conn)))
                    })
                    .collect();
                echoes.into_iter().map(|e| e.join().expect("echo thread")).sum::<u64>()
            });
            let clients: Vec<_> =
                (0..CLIENTS).map(|c| green::spawn(move || block_on(client(addr, c)))).collect();
            let lines: Vec<_> = clients.into_iter().map(|c| c.join().expect("client")).collect();
            (lines, server.join().expect("server thread"))
        });
        check(&lines, echoed);
    });
}
