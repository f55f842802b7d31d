//! `lab --serve SPEC`: the server under test. greenloop cells run the
//! server matrix (`greenloop::lab::serve_cell`); tokio cells run the same
//! services on tokio, as `examples/tokio_reference.rs` does (tokio is a
//! dev-dependency, so it lives here, not in the library).

use std::io::{self, Write};

use greenloop::lab::{Cell, CellRuntime, ServiceKind, serve_cell};
use greenloop::net::server::{Shutdown, shutdown_on_signals};
use greenloop::net::service::{HttpSession, Step};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Serves `cell` on `addr` until SIGINT/SIGTERM; prints `listening on
/// ADDR` first (the lab waits for that line).
pub fn serve(cell: &Cell, addr: &str) -> io::Result<()> {
    if cell.runtime == CellRuntime::Tokio {
        return serve_tokio(cell, addr);
    }
    // Before any thread starts: they inherit the blocked signal mask.
    let shutdown = Shutdown::new();
    shutdown_on_signals(shutdown.clone())?;
    let listener = bind(addr)?;
    announce(listener.local_addr()?)?;
    let report = serve_cell(cell, listener, &shutdown)?;
    eprintln!(
        "lab --serve {cell}: stopped: {} connections accepted, {} accept errors, {} unfinished",
        report.accepted, report.accept_errors, report.unfinished
    );
    Ok(())
}

/// The listen backlog of the server under test. std's is 128: a burst of
/// connects (C1's connection per request, C6's 1,000 connections) on a
/// busy server CPU overflows it, and each connect dropped then waits a
/// second for its retransmit, which measures the backlog, not the runtime.
/// Linux caps it at `net.core.somaxconn`.
const BACKLOG: libc::c_int = 4096;

/// Binds `addr` with a listen backlog of [`BACKLOG`].
fn bind(addr: &str) -> io::Result<std::net::TcpListener> {
    use std::os::fd::AsRawFd;
    let listener = std::net::TcpListener::bind(addr)?;
    // SAFETY: listen(2) on a socket this function owns, already listening:
    // Linux then only updates its backlog.
    if unsafe { libc::listen(listener.as_raw_fd(), BACKLOG) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(listener)
}

fn announce(addr: std::net::SocketAddr) -> io::Result<()> {
    let mut out = io::stdout().lock();
    writeln!(out, "{}{addr}", greenloop::lab::server::LISTENING)?;
    out.flush()
}

/// tokio: `current_thread` by default, a multi-thread runtime with `-wN`.
fn serve_tokio(cell: &Cell, addr: &str) -> io::Result<()> {
    let runtime = match cell.workers {
        None | Some(1) => tokio::runtime::Builder::new_current_thread().enable_all().build(),
        Some(n) => {
            tokio::runtime::Builder::new_multi_thread().worker_threads(n).enable_all().build()
        }
    }?;
    let service = cell.service;
    runtime.block_on(async move {
        let listener = bind(addr)?;
        listener.set_nonblocking(true)?;
        let listener = TcpListener::from_std(listener)?;
        announce(listener.local_addr()?)?;
        use tokio::signal::unix::{SignalKind, signal};
        let mut interrupt = signal(SignalKind::interrupt())?;
        let mut terminate = signal(SignalKind::terminate())?;
        loop {
            tokio::select! {
                accepted = listener.accept() => {
                    // Accept errors (EMFILE...) end no connection: go on.
                    let Ok((stream, _)) = accepted else { continue };
                    tokio::spawn(async move {
                        let _ = match service {
                            ServiceKind::Echo => echo(stream).await,
                            ServiceKind::Sleep => sleep(stream).await,
                        };
                    });
                }
                _ = interrupt.recv() => return Ok(()),
                _ = terminate.recv() => return Ok(()),
            }
        }
    })
}

async fn echo(mut stream: TcpStream) -> io::Result<()> {
    stream.set_nodelay(true)?;
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            return Ok(());
        }
        stream.write_all(&buf[..n]).await?;
    }
}

/// The sleep service: greenloop's sans-IO session on tokio sockets.
async fn sleep(mut stream: TcpStream) -> io::Result<()> {
    stream.set_nodelay(true)?;
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
