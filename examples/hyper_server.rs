//! hyper 1.x's HTTP/1.1 server on greenloop, serving the sleep service
//! (`GET /sleep?ms=N` -> `{"message":"Done"}` after N ms, keep-alive) and
//! echoing `POST /echo` bodies, with no tokio runtime in the path.
//!
//! ```text
//! cargo run --release --features hyper --example hyper_server -- --runtime stackless
//! cargo run --release --features hyper --example hyper_server -- --runtime green
//! curl 'http://127.0.0.1:8080/sleep?ms=100'
//! curl -H 'Transfer-Encoding: chunked' --data-binary @file http://127.0.0.1:8080/echo
//! ```
//!
//! `--runtime stackless`: a task per connection; `--runtime green`: a
//! green thread per connection, which `block_on`s hyper's connection
//! future. Prints `listening on ADDR` first; SIGINT/SIGTERM stop it (exit
//! code 0). `hyper_tokio` is the same service on tokio, for comparison.

#[path = "common/listen.rs"]
mod listen;

use std::io::Write;
use std::process::ExitCode;

use clap::{Parser, ValueEnum};
use greenloop::net::hyper::{serve_green, serve_stackless};
use greenloop::net::server::{Shutdown, shutdown_on_signals};

/// Serve the sleep service with hyper's HTTP/1.1 server on greenloop.
#[derive(Parser, Debug)]
#[command(version)]
struct Args {
    /// What serves each connection: a stackless task, or a green thread.
    #[arg(long, value_enum, default_value = "stackless")]
    runtime: Model,
    /// Address to listen on (port 0 picks a free port).
    #[arg(long, default_value = "127.0.0.1:8080")]
    addr: String,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum Model {
    Stackless,
    Green,
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("hyper_server: error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: &Args) -> std::io::Result<()> {
    let shutdown = Shutdown::new();
    shutdown_on_signals(shutdown.clone())?;
    let listener = listen::bind(&args.addr, 1024, 1)?;
    println!("listening on {}", listener.local_addr()?);
    std::io::stdout().flush()?;
    let accepted = match args.runtime {
        Model::Stackless => serve_stackless(listener, &shutdown)?,
        Model::Green => serve_green(listener, &shutdown)?,
    };
    eprintln!("hyper_server: stopped: {accepted} connections accepted");
    Ok(())
}
