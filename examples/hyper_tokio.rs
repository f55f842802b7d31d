//! The reference for `hyper_server`: the same hyper service
//! (`greenloop::net::hyper::serve_request`) with hyper's HTTP/1.1 server
//! on tokio's current-thread runtime, through hyper-util's `TokioIo` and
//! `TokioTimer`, as a tokio user runs hyper.
//!
//! ```text
//! cargo run --release --features hyper --example hyper_tokio -- --addr 127.0.0.1:0
//! ```
//!
//! Prints `listening on ADDR` first; SIGINT or SIGTERM stops it (exit
//! code 0).

#[path = "common/listen.rs"]
mod listen;
#[path = "common/tokio_accept.rs"]
mod tokio_accept;

use std::io;
use std::process::ExitCode;

use clap::Parser;
use greenloop::net::hyper::serve_request;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};

/// Serve the hyper sleep service on tokio (the reference).
#[derive(Parser, Debug)]
#[command(version)]
struct Args {
    /// Address to listen on (port 0 picks a free port).
    #[arg(long, default_value = "127.0.0.1:8080")]
    addr: String,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build();
    match runtime.and_then(|rt| rt.block_on(run(&args))) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("hyper_tokio: error: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: &Args) -> io::Result<()> {
    let listener = listen::bind(&args.addr, 1024, 1)?;
    listener.set_nonblocking(true)?;
    let listener = tokio::net::TcpListener::from_std(listener)?;
    println!("listening on {}", listener.local_addr()?);
    tokio_accept::accept_until_signal(listener, true, |stream| async move {
        let service = service_fn(|req| serve_request(req, tokio::time::sleep));
        let _ = http1::Builder::new()
            .timer(TokioTimer::new())
            .serve_connection(TokioIo::new(stream), service)
            .await;
    })
    .await
}
