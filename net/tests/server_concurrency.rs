//! Concurrency of the cells, asserted by bounds and order, never by exact
//! durations: sleeps never end early (the runtime's timers and
//! `std::thread::sleep` both wait at least the duration), so lower bounds
//! measured from before the requests were sent are certain, and upper
//! bounds are kept many times wider than the expected time.

mod server_util;

use std::net::SocketAddr;
use std::thread;
use std::time::{Duration, Instant};

use greenloop_net::service::SleepHttp;
use server_util::{
    Cell, Server, green_async, green_blocking, sleep_once, stackless_async, stackless_inline,
    stackless_pool, threads_blocking, watchdog,
};

const LIMIT: Duration = Duration::from_secs(60);

/// `count` concurrent `GET /sleep?ms=N`, one connection each; returns the
/// instants (since `start`, taken before any was sent) at which each
/// response had fully arrived, sorted.
fn concurrent_sleeps(addr: SocketAddr, count: usize, ms: u64) -> (Instant, Vec<Duration>) {
    let start = Instant::now();
    let mut arrivals: Vec<Duration> = thread::scope(|s| {
        let clients: Vec<_> = (0..count)
            .map(|_| {
                s.spawn(move || {
                    let response = sleep_once(addr, ms);
                    assert_eq!(response.status, 200, "{response:?}");
                    start.elapsed()
                })
            })
            .collect();
        clients.into_iter().map(|c| c.join().expect("client thread")).collect()
    });
    arrivals.sort();
    (start, arrivals)
}

#[test]
fn fifty_concurrent_300ms_requests_finish_far_sooner_than_in_series() {
    const COUNT: usize = 50;
    const MS: u64 = 300;
    watchdog(LIMIT, || {
        let cells: [Cell; 5] = [
            green_blocking(),
            green_async(),
            stackless_async(),
            stackless_pool().workers(64),
            threads_blocking(),
        ];
        for cell in cells {
            let server = Server::start(SleepHttp::default(), cell);
            let (_, arrivals) = concurrent_sleeps(server.addr, COUNT, MS);
            let total = *arrivals.last().expect("responses");
            let serial = Duration::from_millis(COUNT as u64 * MS);
            assert!(total >= Duration::from_millis(MS), "{cell}: {total:?}");
            // A quarter of the serial time: a wide bound, not a race.
            assert!(total < serial / 4, "{cell}: {COUNT} x {MS} ms took {total:?}");
            server.stop_expecting(COUNT as u64);
        }
    });
}

#[test]
fn the_inline_cell_serializes_requests_and_the_pool_cell_overlaps_them() {
    const COUNT: usize = 4;
    const MS: u64 = 300;
    watchdog(LIMIT, || {
        let step = Duration::from_millis(MS);

        // Inline: the blocking handler holds the loop for the whole
        // connection, so the k-th response cannot come before k sleeps
        // one after another: arrival k >= k x 300 ms.
        let server = Server::start(SleepHttp::default(), stackless_inline());
        let (_, arrivals) = concurrent_sleeps(server.addr, COUNT, MS);
        for (k, arrival) in arrivals.iter().enumerate() {
            let floor = step * (k as u32 + 1);
            assert!(*arrival >= floor, "inline: response {k} at {arrival:?} < {floor:?}");
        }
        server.stop_expecting(COUNT as u64);

        // Pool: the same requests overlap; all are in well before they
        // could be in series.
        let server = Server::start(SleepHttp::default(), stackless_pool());
        let (_, arrivals) = concurrent_sleeps(server.addr, COUNT, MS);
        let last = *arrivals.last().expect("responses");
        assert!(arrivals[0] >= step, "pool: {arrivals:?}");
        assert!(last < step * COUNT as u32, "pool: in series? {arrivals:?}");
        server.stop_expecting(COUNT as u64);
    });
}

#[test]
fn max_conns_serves_at_most_that_many_connections_at_once() {
    const COUNT: usize = 4;
    const MS: u64 = 200;
    watchdog(LIMIT, || {
        let step = Duration::from_millis(MS);
        for cell in [green_blocking(), green_async(), stackless_async(), threads_blocking()] {
            let server = Server::start(SleepHttp::default(), cell.max_conns(2));
            let (_, arrivals) = concurrent_sleeps(server.addr, COUNT, MS);
            // Two at once: the first two need one sleep; the third cannot
            // start before a slot is freed by a finished response.
            assert!(arrivals[0] >= step, "{cell}: {arrivals:?}");
            assert!(arrivals[2] >= step * 2, "{cell}: third too early: {arrivals:?}");
            server.stop_expecting(COUNT as u64);
        }
    });
}
