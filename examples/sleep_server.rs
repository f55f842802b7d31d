//! The HTTP sleep service (`GET /sleep?ms=N` -> `{"message":"Done"}` after
//! N ms) on any cell of the server matrix.
//!
//! ```text
//! cargo run --release --example sleep_server -- --runtime stackless --style async
//! curl 'http://127.0.0.1:8080/sleep?ms=100'
//! ```
//!
//! Prints `listening on ADDR` as its first line; SIGINT/SIGTERM stop it
//! gracefully (exit code 0).

#[path = "common/listen.rs"]
mod listen;
#[path = "common/server_cli.rs"]
mod server_cli;

use std::process::ExitCode;
use std::time::Duration;

use greenloop::net::service::{HttpConfig, SleepHttp};

/// Options of the HTTP sleep service.
#[derive(clap::Args, Debug)]
struct Http {
    /// Milliseconds a client may take to send a request head, counted from
    /// when the server waits for it: then 408, or a close if it sent nothing.
    #[arg(long, default_value_t = 30_000, value_parser = clap::value_parser!(u64).range(1..))]
    header_timeout_ms: u64,
    /// Bytes a lingering close discards at most before it closes anyway. A
    /// lingering close follows an error answer, a 408, or a shutdown: the
    /// server stops sending and drains what the client still sends, so that
    /// the answer is not lost to a reset. 0 closes at once. At most 1 GiB.
    #[arg(long, default_value_t = 64 * 1024, value_parser = clap::value_parser!(u64).range(..=1 << 30))]
    linger_bytes: u64,
    /// Milliseconds a lingering close waits at most for the client to
    /// close. 0 closes at once. At most 600000 (10 minutes): a client that
    /// never closes holds its connection that long.
    #[arg(long, default_value_t = 2_000, value_parser = clap::value_parser!(u64).range(..=600_000))]
    linger_ms: u64,
}

fn main() -> ExitCode {
    server_cli::main("sleep", |http: &Http| SleepHttp {
        config: HttpConfig {
            header_timeout: Duration::from_millis(http.header_timeout_ms),
            // At most 1 GiB (checked by the parser): fits any usize here.
            linger_bytes: usize::try_from(http.linger_bytes).unwrap_or(usize::MAX),
            linger_time: Duration::from_millis(http.linger_ms),
        },
    })
}
