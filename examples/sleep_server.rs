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

use greenloop::net::service::SleepHttp;

fn main() {
    server_cli::main("sleep", SleepHttp::default());
}
