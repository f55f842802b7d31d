//! Soak: the HTTP sleep service under 1,000 keep-alive connections for a
//! while, driven by the lab's load generator, in this process. Ignored by
//! default (it takes time and 2,000 descriptors); run it by hand:
//!
//! ```text
//! cargo test --release --test soak -- --ignored --nocapture
//! GREENLOOP_SOAK_SECS=600 GREENLOOP_SOAK_CELL=stackless-async-sleep \
//!     cargo test --release --test soak -- --ignored --nocapture
//! ```
//!
//! `GREENLOOP_SOAK_SECS` (default 10) sets the measured time,
//! `GREENLOOP_SOAK_CELL` (default `green-blocking-sleep`) the cell (see
//! `greenloop::lab::Cell` for the spec syntax; tokio cells are not served
//! in-process), `GREENLOOP_SOAK_MS` (default 10) each request's sleep. It
//! prints requests, errors, p99 and RSS (of this process: server and
//! clients), and fails on any error, unanswered request or handler panic.

#![cfg(feature = "lab")]

mod util;

use std::net::TcpListener;
use std::time::Duration;

use greenloop::lab::rlimit::raise_nofile_limit;
use greenloop::lab::{Cell, LoadSpec, measure_at, serve_cell};
use greenloop::net::server::Shutdown;
use util::watchdog;

const CONNS: usize = 1_000;

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    match std::env::var(name) {
        Ok(value) => value.parse().unwrap_or_else(|_| panic!("{name}: cannot parse {value:?}")),
        Err(_) => default,
    }
}

#[test]
#[ignore = "soak: minutes of load and 2,000 descriptors; run by hand (see the file's docs)"]
fn sleep_server_under_1000_connections() {
    let secs: u64 = env_or("GREENLOOP_SOAK_SECS", 10);
    // The run takes `secs` and a second of warm-up; the rest is margin for
    // a hang to be told from a slow finish.
    watchdog(Duration::from_secs(secs + 120), move || soak(secs));
}

/// The soak itself, `secs` long.
fn soak(secs: u64) {
    let ms: u64 = env_or("GREENLOOP_SOAK_MS", 10);
    let spec: String = env_or("GREENLOOP_SOAK_CELL", "green-blocking-sleep".to_string());
    let (soft, _) = raise_nofile_limit().expect("raise RLIMIT_NOFILE");
    assert!(soft >= 2 * CONNS as u64 + 64, "RLIMIT_NOFILE {soft}: too low for {CONNS} connections");

    let cell: Cell = spec.parse().expect("GREENLOOP_SOAK_CELL");
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("local_addr");
    let shutdown = Shutdown::new();
    let stop = shutdown.clone();
    let server = std::thread::spawn(move || serve_cell(&cell, listener, &stop));

    let cell: Cell = spec.parse().expect("GREENLOOP_SOAK_CELL");
    let load = LoadSpec::http(format!("/sleep?ms={ms}"), CONNS, Duration::from_secs(secs))
        .warmup(Duration::from_secs(1));
    let run = measure_at(&cell, addr, Some(std::process::id()), &load).expect("load run");
    shutdown.trigger();
    let report = server.join().expect("server thread").expect("serve");

    println!(
        "soak {spec}: {CONNS} conns, {secs} s, {} requests ({:.0}/s), {} errors, \
         {} connect errors, p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms, \
         RSS {} -> {} KiB (server and clients)",
        run.requests,
        run.req_per_s,
        run.errors,
        run.connect_errors,
        run.p50_ms,
        run.p99_ms,
        run.max_ms,
        run.rss_kib_start.unwrap_or(0),
        run.rss_kib.unwrap_or(0),
    );
    assert!(run.requests > 0, "{run}");
    assert_eq!((run.errors, run.connect_errors), (0, 0), "first error: {:?}", run.first_error);
    assert_eq!(run.unfinished, 0, "{run}");
    assert_eq!(report.panicked, 0, "{report:?}");
    assert_eq!(report.unfinished, 0, "{report:?}");
}
