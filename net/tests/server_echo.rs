//! The echo service on every cell of the matrix: random payloads of up to
//! 256 KiB on 100 concurrent connections, so reads and writes are partial
//! on both sides (the client writes from one thread and reads from another,
//! so neither side stalls on full socket buffers).

mod server_util;

use std::cell::Cell as Counter;
use std::io::{Read, Write};
use std::net::{Shutdown as HalfClose, SocketAddr};
use std::thread;
use std::time::Duration;

use greenloop_net::service::Echo;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use server_util::{Server, all_cells, watchdog};

const MAX_PAYLOAD: usize = 256 * 1024;
const CONNECTIONS: usize = 100;
/// The inline cell serves one connection at a time by design.
const INLINE_CONNECTIONS: usize = 4;

/// `len` bytes from a xorshift seeded by `seed` (proptest picks the sizes
/// and the seed; generating megabytes through strategies would be slow).
fn payload(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// Echoes one payload: writes it all from a second thread, then closes the
/// write half; reads everything back until the server closes.
fn echo_one(addr: SocketAddr, data: &[u8]) -> Result<(), String> {
    let stream = server_util::connect(addr);
    let mut writer = stream.try_clone().map_err(|e| e.to_string())?;
    let mut reader = stream;
    let mut received = Vec::with_capacity(data.len());
    thread::scope(|s| {
        let write = s.spawn(move || {
            writer.write_all(data)?;
            writer.shutdown(HalfClose::Write)
        });
        let read = reader.read_to_end(&mut received);
        let write = write.join().expect("writer thread");
        write.map_err(|e| format!("write: {e}"))?;
        read.map_err(|e| format!("read after {} of {} bytes: {e}", received.len(), data.len()))
    })?;
    if received != data {
        let at = received.iter().zip(data).position(|(a, b)| a != b);
        return Err(format!(
            "echoed {} bytes for {} sent; first difference at {at:?}",
            received.len(),
            data.len()
        ));
    }
    Ok(())
}

/// All payloads at once, one connection each.
fn echo_all(server: &Server, payloads: &[Vec<u8>]) -> Result<(), TestCaseError> {
    let results: Vec<Result<(), String>> = thread::scope(|s| {
        let clients: Vec<_> =
            payloads.iter().map(|data| s.spawn(|| echo_one(server.addr, data))).collect();
        clients.into_iter().map(|c| c.join().expect("client thread")).collect()
    });
    for (i, result) in results.into_iter().enumerate() {
        if let Err(e) = result {
            return Err(TestCaseError::fail(format!(
                "{}: connection {i} ({} bytes): {e}",
                server.cell,
                payloads[i].len()
            )));
        }
    }
    Ok(())
}

#[test]
fn random_payloads_echo_on_100_concurrent_connections_on_every_cell() {
    watchdog(Duration::from_secs(180), || {
        let servers: Vec<Server> =
            all_cells().into_iter().map(|cell| Server::start(Echo, cell)).collect();
        let mut runner =
            TestRunner::new(Config { cases: 8, failure_persistence: None, ..Config::default() });
        let sizes = prop::collection::vec(0..=MAX_PAYLOAD, CONNECTIONS);
        // Make sure the extremes are in every run, not left to chance.
        let sizes = sizes.prop_map(|mut sizes| {
            sizes[0] = 0;
            sizes[1] = MAX_PAYLOAD;
            sizes
        });
        let cases_run = Counter::new(0u64);
        runner
            .run(&(sizes, any::<u64>()), |(sizes, seed)| {
                cases_run.set(cases_run.get() + 1);
                let payloads: Vec<Vec<u8>> = sizes
                    .iter()
                    .enumerate()
                    .map(|(i, &len)| payload(seed.wrapping_add(i as u64), len))
                    .collect();
                for server in &servers {
                    let count =
                        if server.cell.is_inline() { INLINE_CONNECTIONS } else { CONNECTIONS };
                    echo_all(server, &payloads[..count])?;
                }
                Ok(())
            })
            .unwrap();
        for server in servers {
            let per_case =
                if server.cell.is_inline() { INLINE_CONNECTIONS } else { CONNECTIONS } as u64;
            server.stop_expecting(cases_run.get() * per_case);
        }
    });
}
