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
use greenloop::net::service::{HttpSession, Step};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

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
    let mut interrupt = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())?;
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                let service = args.service;
                tokio::spawn(async move {
                    let _ = match service {
                        Service::Echo => echo(stream).await,
                        Service::Sleep => sleep(stream).await,
                    };
                });
            }
            _ = interrupt.recv() => return Ok(()),
            _ = terminate.recv() => return Ok(()),
        }
    }
}

async fn echo(mut stream: TcpStream) -> io::Result<()> {
    let mut buf = [0u8; 16 * 1024];
    loop {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            return Ok(());
        }
        stream.write_all(&buf[..n]).await?;
    }
}

async fn sleep(mut stream: TcpStream) -> io::Result<()> {
    let mut session = HttpSession::new();
    loop {
        match session.step() {
            Step::Read => {
                let n = stream.read(session.read_buf()).await?;
                session.filled(n);
            }
            Step::Sleep(duration) => {
                tokio::time::sleep(duration).await;
                session.slept();
            }
            Step::Write => {
                stream.write_all(session.output()).await?;
                session.written();
            }
            Step::Close => return Ok(()),
        }
    }
}
