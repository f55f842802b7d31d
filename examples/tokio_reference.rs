//! The same echo and HTTP sleep services on tokio: the reference greenloop
//! is measured against, in the same run, on the same machine.
//!
//! ```text
//! cargo run --release --example tokio_reference -- --service sleep --addr 127.0.0.1:0 [--threads N]
//! ```
//!
//! The sleep service runs greenloop's own sans-IO `HttpSession` (the same
//! parser and responses), driven by tokio sockets and `tokio::time::sleep`,
//! so only the runtime differs. Prints `listening on ADDR` first; SIGINT or
//! SIGTERM stops it (exit code 0).

use std::io;
use std::process::ExitCode;

use clap::{Parser, ValueEnum};
use tokio::net::TcpListener;

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
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum Service {
    Echo,
    Sleep,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let runtime = if args.threads <= 1 {
        tokio::runtime::Builder::new_current_thread().enable_all().build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(args.threads)
            .enable_all()
            .build()
    };
    let result = runtime.and_then(|rt| rt.block_on(run(&args)));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tokio_reference: error: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: &Args) -> io::Result<()> {
    let listener = TcpListener::bind(&args.addr).await?;
    println!("listening on {}", listener.local_addr()?);
    let kind = match args.service {
        Service::Echo => tokio_services::Kind::Echo,
        Service::Sleep => tokio_services::Kind::Sleep,
    };
    tokio_services::serve_until_signal(listener, kind, false).await
}
