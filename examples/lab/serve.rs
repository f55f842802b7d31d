//! `lab --serve SPEC`: the server under test. greenloop cells run the
//! server matrix (`greenloop::lab::serve_cell`); tokio cells run the same
//! services on tokio, as `examples/tokio_reference.rs` does (tokio is a
//! dev-dependency, so it lives here, not in the library).

use std::io::{self, Write};

use greenloop::lab::{Cell, CellRuntime, ServiceKind, serve_cell};
use greenloop::net::server::{Shutdown, shutdown_on_signals};
use tokio::net::TcpListener;

use crate::tokio_services;

/// Serves `cell` on `addr` until SIGINT/SIGTERM; prints `listening on
/// ADDR` first (the lab waits for that line).
pub fn serve(cell: &Cell, addr: &str) -> io::Result<()> {
    if cell.runtime == CellRuntime::Tokio {
        return serve_tokio(cell, addr);
    }
    // Before any thread starts: they inherit the blocked signal mask.
    let shutdown = Shutdown::new();
    shutdown_on_signals(shutdown.clone())?;
    let listener = bind(addr, cell.cores)?;
    announce(listener.local_addr()?)?;
    let report = serve_cell(cell, listener, &shutdown)?;
    eprintln!(
        "lab --serve {cell}: stopped: {} connections accepted (per shard: {:?}), {} accept errors, {} unfinished",
        report.accepted, report.per_shard, report.accept_errors, report.unfinished
    );
    Ok(())
}

/// The listen backlog of the server under test (see `common/listen.rs`;
/// C1 opens a connection per request, C6 1,000 at once).
const BACKLOG: i32 = 4096;

/// Binds `addr` with a listen backlog of [`BACKLOG`] (with `SO_REUSEPORT`
/// for a server on several cores).
fn bind(addr: &str, cores: usize) -> io::Result<std::net::TcpListener> {
    crate::listen::bind(addr, BACKLOG, cores)
}

fn announce(addr: std::net::SocketAddr) -> io::Result<()> {
    let mut out = io::stdout().lock();
    writeln!(out, "{}{addr}", greenloop::lab::server::LISTENING)?;
    out.flush()
}

/// tokio: `current_thread` by default, a multi-thread runtime with `-wN`,
/// one current_thread runtime per core with `-cN`.
fn serve_tokio(cell: &Cell, addr: &str) -> io::Result<()> {
    let kind = match cell.service {
        ServiceKind::Echo => tokio_services::Kind::Echo,
        ServiceKind::Sleep => tokio_services::Kind::Sleep,
    };
    if cell.cores > 1 {
        let first = bind(addr, cell.cores)?;
        let local = first.local_addr()?;
        let mut listeners = vec![first];
        for _ in 1..cell.cores {
            listeners.push(greenloop::net::server::bind_reuseport(local, BACKLOG)?);
        }
        announce(local)?;
        return tokio_services::serve_per_core(listeners, kind, true);
    }
    let runtime = match cell.workers {
        None | Some(1) => tokio::runtime::Builder::new_current_thread().enable_all().build(),
        Some(n) => {
            tokio::runtime::Builder::new_multi_thread().worker_threads(n).enable_all().build()
        }
    }?;
    runtime.block_on(async move {
        let listener = bind(addr, 1)?;
        listener.set_nonblocking(true)?;
        let listener = TcpListener::from_std(listener)?;
        announce(listener.local_addr()?)?;
        tokio_services::serve_until_signal(listener, kind, true).await
    })
}
