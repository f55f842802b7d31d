//! The echo service on any cell of the server matrix.
//!
//! ```text
//! cargo run --release --example echo_server -- --runtime green --style blocking --addr 127.0.0.1:0
//! ```
//!
//! Prints `listening on ADDR` as its first line; SIGINT/SIGTERM stop it
//! gracefully (exit code 0).

#[path = "common/listen.rs"]
mod listen;
#[path = "common/server_cli.rs"]
mod server_cli;

use std::process::ExitCode;

use greenloop::net::service::Echo;

/// Echo has no options of its own.
#[derive(clap::Args, Debug)]
struct NoOptions {}

fn main() -> ExitCode {
    server_cli::main("echo", |_: &NoOptions| Echo)
}
