//! The cells of the matrix: one function per runtime, each a thin loop
//! over the shared [`Acceptor`].

use std::future::{Future, poll_fn};
use std::io;
use std::panic::{self, AssertUnwindSafe};
use std::pin::pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, mpsc};
use std::task::Poll;

use greenloop_runtime::blocking::{DEFAULT_IDLE_TIMEOUT, DEFAULT_MAX_THREADS, Pool};
use greenloop_runtime::{block_on, green, task};

use super::accept::{Acceptor, Conn};
use super::{Offload, ServeReport, ServerConfig, Shutdown, Style};
use crate::TcpStream;
use crate::service::Service;

/// Counts connection handlers that panicked. The panic hook has already
/// printed each panic once, naming its OS thread, green thread or task; the
/// server only counts it and goes on serving. Handlers catch inside the
/// connection's guard, so a panic is counted before its slot is freed.
#[derive(Clone, Debug, Default)]
struct Panics(Arc<AtomicU64>);

impl Panics {
    /// Runs `handler`, counting a panic instead of unwinding further.
    fn catch(&self, handler: impl FnOnce()) {
        if panic::catch_unwind(AssertUnwindSafe(handler)).is_err() {
            self.0.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Awaits `handler`, counting a panic instead of unwinding further.
    async fn catch_async(&self, handler: impl Future<Output = ()>) {
        let mut handler = pin!(handler);
        let panicked = poll_fn(|cx| {
            match panic::catch_unwind(AssertUnwindSafe(|| handler.as_mut().poll(cx))) {
                Ok(Poll::Ready(())) => Poll::Ready(false),
                Ok(Poll::Pending) => Poll::Pending,
                Err(_) => Poll::Ready(true),
            }
        })
        .await;
        if panicked {
            self.0.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn count(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// Serves one connection on the current OS thread, blocking it: a `std`
/// stream for blocking-style handlers, a greenloop stream driven by this
/// thread's reactor for async ones. The connection is converted outside
/// the handler's catch, so it (and its slot) outlives the count of a panic;
/// it is freed at the end. Errors end the connection only, so they are not
/// reported further.
fn on_this_thread<S: Service>(
    conn: Conn,
    service: &S,
    style: Style,
    shutdown: &Shutdown,
    panics: &Panics,
) {
    match style {
        Style::Blocking => {
            let blocking =
                |stream: std::net::TcpStream| stream.set_nonblocking(false).map(|()| stream);
            let Ok(mut conn) = conn.serve_as(blocking) else { return };
            panics.catch(|| {
                let _ = service.serve_blocking(&mut conn.stream, shutdown);
            });
        }
        Style::Async => {
            let Ok(conn) = conn.serve_as(TcpStream::from_std) else { return };
            panics.catch(|| {
                let _ = block_on(service.serve_async(&conn.stream, shutdown));
            });
        }
    }
}

/// Stops accepting, waits for connections in flight, and reports.
async fn finish(acceptor: Acceptor, panics: &Panics, config: &ServerConfig) -> ServeReport {
    let (accepted, accept_errors) = (acceptor.accepted(), acceptor.errors());
    let unfinished = acceptor.finish(config.grace).await;
    ServeReport {
        accepted,
        accept_errors,
        unfinished,
        panicked: panics.count(),
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
    let panics = Panics::default();
    let pool = config.workers.map(|workers| {
        let (tx, rx) = mpsc::channel::<Conn>();
        let rx = Arc::new(Mutex::new(rx));
        for _ in 0..workers.max(1) {
            let (rx, service, shutdown) = (rx.clone(), service.clone(), shutdown.clone());
            let panics = panics.clone();
            std::thread::spawn(move || {
                loop {
                    let next = rx.lock().unwrap_or_else(PoisonError::into_inner).recv();
                    let Ok(conn) = next else { return };
                    on_this_thread(conn, &service, style, &shutdown, &panics);
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
                let (service, shutdown, panics) =
                    (service.clone(), shutdown.clone(), panics.clone());
                std::thread::spawn(move || {
                    on_this_thread(conn, &service, style, &shutdown, &panics);
                });
            }
        }
    }
    drop(pool);
    Ok(block_on(finish(acceptor, &panics, config)))
}

/// Green threads: one per connection.
pub(super) fn green<S: Service>(
    listener: std::net::TcpListener,
    service: S,
    config: &ServerConfig,
    shutdown: &Shutdown,
) -> io::Result<ServeReport> {
    let style = config.style;
    green_accept(listener, config, shutdown, |conn, panics| {
        let (service, shutdown, panics) = (service.clone(), shutdown.clone(), panics.clone());
        green::spawn(move || {
            let Ok(mut conn) = conn.serve_as(TcpStream::from_std) else { return };
            panics.catch(|| {
                let _ = match style {
                    Style::Blocking => service.serve_blocking(&mut conn.stream, &shutdown),
                    Style::Async => block_on(service.serve_async(&conn.stream, &shutdown)),
                };
            });
        });
    })
}

/// Green threads, one per connection, each running the std-only handler
/// ([`Service::serve_std`]) on a blocking `std` stream; with `patched`,
/// greenloop-patch is installed first, so its blocking calls park.
pub(super) fn green_std<S: Service>(
    listener: std::net::TcpListener,
    service: S,
    config: &ServerConfig,
    shutdown: &Shutdown,
    patched: bool,
) -> io::Result<ServeReport> {
    if patched {
        greenloop_patch::install();
    }
    green_accept(listener, config, shutdown, |conn, panics| {
        let (service, shutdown, panics) = (service.clone(), shutdown.clone(), panics.clone());
        green::spawn(move || {
            let blocking =
                |stream: std::net::TcpStream| stream.set_nonblocking(false).map(|()| stream);
            let Ok(mut conn) = conn.serve_as(blocking) else { return };
            panics.catch(|| {
                let _ = service.serve_std(&mut conn.stream, &shutdown);
            });
        });
    })
}

/// The green runtime's accept loop: `on_conn` starts each connection's
/// green thread, counting its panics in the given [`Panics`].
fn green_accept(
    listener: std::net::TcpListener,
    config: &ServerConfig,
    shutdown: &Shutdown,
    mut on_conn: impl FnMut(Conn, &Panics),
) -> io::Result<ServeReport> {
    green::Runtime::new().try_run(|| {
        let mut acceptor = Acceptor::new(listener, config.max_conns, shutdown.clone())?;
        let panics = Panics::default();
        while let Some(conn) = block_on(acceptor.next()) {
            on_conn(conn, &panics);
        }
        Ok(block_on(finish(acceptor, &panics, config)))
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
        let panics = Panics::default();
        while let Some(conn) = acceptor.next().await {
            let (service, shutdown, panics) = (service.clone(), shutdown.clone(), panics.clone());
            match (config.style, config.offload) {
                (Style::Async, _) => {
                    task::spawn_local(async move {
                        if let Ok(conn) = conn.serve_as(TcpStream::from_std) {
                            let serve = async {
                                let _ = service.serve_async(&conn.stream, &shutdown).await;
                            };
                            panics.catch_async(serve).await;
                        }
                    });
                }
                (Style::Blocking, Offload::Inline) => {
                    task::spawn_local(async move {
                        if let Ok(mut conn) = conn.serve_as(TcpStream::from_std) {
                            // Blocks this executor while the handler blocks.
                            let serve = async {
                                let _ = service.serve_inline(&mut conn.stream, &shutdown).await;
                            };
                            panics.catch_async(serve).await;
                        }
                    });
                }
                (Style::Blocking, Offload::Pool) => {
                    let blocking = Style::Blocking;
                    pool.spawn(move || {
                        on_this_thread(conn, &service, blocking, &shutdown, &panics)
                    });
                }
            }
        }
        Ok(finish(acceptor, &panics, config).await)
    })
}
