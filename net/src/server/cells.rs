//! The cells of the matrix: one function per runtime, each a thin loop
//! over the shared [`Acceptor`].

use std::io;
use std::sync::{Arc, Mutex, PoisonError, mpsc};

use greenloop_runtime::blocking::{DEFAULT_IDLE_TIMEOUT, DEFAULT_MAX_THREADS, Pool};
use greenloop_runtime::{block_on, green, task};

use super::accept::{Acceptor, Conn};
use super::{Offload, ServeReport, ServerConfig, Shutdown, Style};
use crate::TcpStream;
use crate::service::Service;

/// Serves one connection on the current OS thread, blocking it: a `std`
/// stream for blocking-style handlers, a greenloop stream driven by this
/// thread's reactor for async ones. The connection's slot is freed at the
/// end. Errors end the connection only, so they are not reported further.
fn on_this_thread<S: Service>(conn: Conn, service: &S, style: Style, shutdown: &Shutdown) {
    let _ = match style {
        Style::Blocking => blocking_std(conn, service, shutdown),
        Style::Async => conn
            .serve_as(TcpStream::from_std)
            .and_then(|conn| block_on(service.serve_async(&conn.stream, shutdown))),
    };
}

/// Serves `conn` blocking-style on a `std` stream, blocking this thread.
fn blocking_std<S: Service>(conn: Conn, service: &S, shutdown: &Shutdown) -> io::Result<()> {
    let mut conn = conn.serve_as(|stream| stream.set_nonblocking(false).map(|()| stream))?;
    service.serve_blocking(&mut conn.stream, shutdown)
}

fn report(acceptor: &Acceptor, unfinished: usize) -> ServeReport {
    let accepted = acceptor.accepted();
    ServeReport {
        accepted,
        accept_errors: acceptor.errors(),
        unfinished,
        per_shard: vec![accepted],
    }
}

/// OS threads: one per connection, or a fixed pool of `workers`.
pub(super) fn threads<S: Service>(
    listener: std::net::TcpListener,
    service: S,
    config: &ServerConfig,
    shutdown: &Shutdown,
) -> io::Result<ServeReport> {
    let mut acceptor = Acceptor::new(listener, config.max_conns, shutdown.clone())?;
    let style = config.style;
    let pool = config.workers.map(|workers| {
        let (tx, rx) = mpsc::channel::<Conn>();
        let rx = Arc::new(Mutex::new(rx));
        for _ in 0..workers.max(1) {
            let (rx, service, shutdown) = (rx.clone(), service.clone(), shutdown.clone());
            std::thread::spawn(move || {
                loop {
                    let next = rx.lock().unwrap_or_else(PoisonError::into_inner).recv();
                    let Ok(conn) = next else { return };
                    on_this_thread(conn, &service, style, &shutdown);
                }
            });
        }
        tx
    });
    while let Some(conn) = block_on(acceptor.next()) {
        match &pool {
            Some(tx) => {
                // The workers outlive the acceptor, so the queue is open.
                let _ = tx.send(conn);
            }
            None => {
                let (service, shutdown) = (service.clone(), shutdown.clone());
                std::thread::spawn(move || on_this_thread(conn, &service, style, &shutdown));
            }
        }
    }
    drop(pool);
    let accepted = report(&acceptor, 0);
    let unfinished = block_on(acceptor.finish(config.grace));
    Ok(ServeReport { unfinished, ..accepted })
}

/// Green threads: one per connection.
pub(super) fn green<S: Service>(
    listener: std::net::TcpListener,
    service: S,
    config: &ServerConfig,
    shutdown: &Shutdown,
) -> io::Result<ServeReport> {
    green::Runtime::new().try_run(|| {
        let mut acceptor = Acceptor::new(listener, config.max_conns, shutdown.clone())?;
        while let Some(conn) = block_on(acceptor.next()) {
            let (service, shutdown, style) = (service.clone(), shutdown.clone(), config.style);
            green::spawn(move || {
                let Ok(mut conn) = conn.serve_as(TcpStream::from_std) else { return };
                let _ = match style {
                    Style::Blocking => service.serve_blocking(&mut conn.stream, &shutdown),
                    Style::Async => block_on(service.serve_async(&conn.stream, &shutdown)),
                };
            });
        }
        let accepted = report(&acceptor, 0);
        let unfinished = block_on(acceptor.finish(config.grace));
        Ok(ServeReport { unfinished, ..accepted })
    })?
}

/// Stackless tasks: one per connection; blocking handlers offloaded to a
/// pool or run inline.
pub(super) fn stackless<S: Service>(
    listener: std::net::TcpListener,
    service: S,
    config: &ServerConfig,
    shutdown: &Shutdown,
) -> io::Result<ServeReport> {
    let runtime = task::Runtime::new()?;
    let pool = Pool::new(config.workers.unwrap_or(DEFAULT_MAX_THREADS), DEFAULT_IDLE_TIMEOUT);
    runtime.block_on(async {
        let mut acceptor = Acceptor::new(listener, config.max_conns, shutdown.clone())?;
        while let Some(conn) = acceptor.next().await {
            let (service, shutdown) = (service.clone(), shutdown.clone());
            match (config.style, config.offload) {
                (Style::Async, _) => {
                    task::spawn_local(async move {
                        if let Ok(conn) = conn.serve_as(TcpStream::from_std) {
                            let _ = service.serve_async(&conn.stream, &shutdown).await;
                        }
                    });
                }
                (Style::Blocking, Offload::Inline) => {
                    task::spawn_local(async move {
                        if let Ok(mut conn) = conn.serve_as(TcpStream::from_std) {
                            // Blocks this executor until the connection ends.
                            let _ = service.serve_blocking(&mut conn.stream, &shutdown);
                        }
                    });
                }
                (Style::Blocking, Offload::Pool) => {
                    pool.spawn(move || {
                        let _ = blocking_std(conn, &service, &shutdown);
                    });
                }
            }
        }
        let accepted = report(&acceptor, 0);
        let unfinished = acceptor.finish(config.grace).await;
        Ok(ServeReport { unfinished, ..accepted })
    })
}
