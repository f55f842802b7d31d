//! The `futures-io` impls of `TcpStream` (owned and by reference), driven
//! by `futures::io`'s helpers: `split`, `copy`, `write_all`, `flush`,
//! `close` (a write-side shutdown the peer reads as end of stream) and
//! `read_to_end`, over 1 MiB so that reads and writes wait part-way.

mod server_util;

use std::rc::Rc;
use std::time::Duration;

use futures::io::{AsyncReadExt, AsyncWriteExt};
use greenloop_net::{TcpListener, TcpStream};
use greenloop_runtime::task;
use server_util::watchdog;

const LIMIT: Duration = Duration::from_secs(30);

#[test]
fn futures_io_impls_work_with_futures_helpers() {
    const LEN: usize = 1 << 20;
    watchdog(LIMIT, || {
        let runtime = task::Runtime::new().expect("runtime");
        runtime.block_on(async {
            let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
            let addr = listener.local_addr().expect("local_addr");
            // The echo side: an owned stream, split into halves by
            // `futures::io`, copied from one to the other.
            let echo = task::spawn_local(async move {
                let (conn, _) = listener.accept_async().await.expect("accept_async");
                let (reader, mut writer) = conn.split();
                let copied = futures::io::copy(reader, &mut writer).await.expect("copy");
                writer.close().await.expect("close");
                copied
            });
            // The client side: `&TcpStream`, written by one task and read by
            // another, so neither waits for the other's buffer to empty.
            let client = Rc::new(TcpStream::connect_async(addr).await.expect("connect_async"));
            let payload: Vec<u8> = (0..LEN).map(|i| (i % 251) as u8).collect();
            let writer = {
                let (client, payload) = (client.clone(), payload.clone());
                task::spawn_local(async move {
                    let mut half = &*client;
                    half.write_all(&payload).await.expect("write_all");
                    half.flush().await.expect("flush");
                    half.close().await.expect("close");
                })
            };
            let mut echoed = Vec::new();
            let mut half = &*client;
            half.read_to_end(&mut echoed).await.expect("read_to_end");
            writer.await.expect("writer");
            assert_eq!(echo.await.expect("echo"), LEN as u64);
            assert!(echoed == payload, "echoed {} bytes, not the payload", echoed.len());
        });
    });
}
