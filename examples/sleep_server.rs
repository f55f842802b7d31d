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
}

fn main() -> ExitCode {
    server_cli::main("sleep", |http: &Http| SleepHttp {
        config: HttpConfig {
            header_timeout: Duration::from_millis(http.header_timeout_ms),
            ..HttpConfig::default()
        },
    })
}
