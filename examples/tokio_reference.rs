//! The same echo and HTTP sleep services on tokio: the reference greenloop
//! is measured against, in the same run, on the same machine.
//!
//! ```text
//! cargo run --release --example tokio_reference -- --service sleep --addr 127.0.0.1:0 [--threads N] [--per-core]
//! ```
//!
//! `--threads N` is the server a tokio user writes first: one multi-thread
//! runtime with N workers, a task per connection spawned from the accept
//! loop. Its timer wheel is one mutex per runtime (tokio 1.54,
//! `runtime/time/mod.rs`), which every `tokio::time::sleep` takes, and one
//! worker at a time polls its I/O driver; a sleep ends at a millisecond
//! tick, once a worker turns the driver (`/sleep?ms=0` arms no timer: see
//! `route_sleep`). `--per-core` runs the other
//! shape tokio servers use for throughput (actix-web's): N threads, each
//! its own current_thread runtime on its own `SO_REUSEPORT` listener, so
//! nothing is shared between threads, as with greenloop's shards.
//!
//! The sleep service runs greenloop's own sans-IO `HttpSession` (the same
//! parser and responses), driven by tokio sockets and `tokio::time::sleep`,
//! so only the runtime differs. Prints `listening on ADDR` first; SIGINT or
//! SIGTERM stops it (exit code 0).

use std::io;
use std::process::ExitCode;

use clap::{Parser, ValueEnum};
use tokio::net::TcpListener;

#[path = "common/listen.rs"]
mod listen;
#[path = "common/tokio_services.rs"]
mod tokio_services;

/// Run the echo or sleep service on tokio (the reference runtime).
#[derive(Parser, Debug)]
#[command(version)]
struct Args {
    /// Which service.
    #[arg(long, value_enum)]
    service: Service,
    /// Address to listen on (port 0 picks a free port).
    #[arg(long, default_value = "127.0.0.1:8080")]
    addr: String,
    /// Worker threads: 1 is tokio's current_thread runtime, more its
    /// multi-thread runtime.
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// With --threads N: N current_thread runtimes, one per thread, each
    /// on its own SO_REUSEPORT listener, instead of one multi-thread
    /// runtime.
    #[arg(long)]
    per_core: bool,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum Service {
    Echo,
    Sleep,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let result =
        if args.per_core && args.threads > 1 { per_core(&args) } else { one_runtime(&args) };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tokio_reference: error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn kind(service: Service) -> tokio_services::Kind {
    match service {
        Service::Echo => tokio_services::Kind::Echo,
        Service::Sleep => tokio_services::Kind::Sleep,
    }
}

/// `--per-core`: `--threads` listeners on one port, one runtime each.
fn per_core(args: &Args) -> io::Result<()> {
    let first = listen::bind(&args.addr, 1024, args.threads)?;
    let local = first.local_addr()?;
    let mut listeners = vec![first];
    for _ in 1..args.threads {
        listeners.push(greenloop::net::server::bind_reuseport(local, 1024)?);
    }
    println!("listening on {local}");
    tokio_services::serve_per_core(listeners, kind(args.service), false)
}

/// One runtime: current_thread for one thread, else multi-thread.
fn one_runtime(args: &Args) -> io::Result<()> {
    let runtime = if args.threads <= 1 {
        tokio::runtime::Builder::new_current_thread().enable_all().build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(args.threads)
            .enable_all()
            .build()
    };
    runtime.and_then(|rt| rt.block_on(run(args)))
}

async fn run(args: &Args) -> io::Result<()> {
    let listener = TcpListener::bind(&args.addr).await?;
    println!("listening on {}", listener.local_addr()?);
    tokio_services::serve_until_signal(listener, kind(args.service), false).await
}
