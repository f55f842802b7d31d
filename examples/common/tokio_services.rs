//! The echo and sleep services on tokio, shared by `tokio_reference` and
//! the lab's tokio cells: the same protocol as greenloop's (the sleep
//! service runs greenloop's own sans-IO `HttpSession`), so only the
//! runtime differs.

#[path = "tokio_accept.rs"]
mod tokio_accept;

use std::io;

use greenloop::net::service::{HttpConfig, HttpSession, Step};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_accept::accept_until_signal;

/// Which service to run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Echo every byte back.
    Echo,
    /// `GET /sleep?ms=N` (and `/hash?n=N`).
    Sleep,
}

/// Accepts on `listener` and serves each connection in a task until
/// SIGINT or SIGTERM. Accept errors (EMFILE...) end no connection.
pub async fn serve_until_signal(
    listener: TcpListener,
    kind: Kind,
    nodelay: bool,
) -> io::Result<()> {
    accept_until_signal(listener, nodelay, move |stream| async move {
        let _ = match kind {
            Kind::Echo => echo(stream).await,
            Kind::Sleep => sleep(stream).await,
        };
    })
    .await
}

/// Serves on one OS thread per listener, each running its own
/// current_thread runtime (its own I/O driver and timer wheel: nothing
/// shared between threads) on its own `SO_REUSEPORT` listener of one
/// address, the kernel spreading connections over them: the
/// thread-per-core way to run tokio (actix-web's). Thread `i` is pinned
/// to the `i`-th CPU this process may use. Returns when every thread has
/// seen SIGINT or SIGTERM.
pub fn serve_per_core(
    listeners: Vec<std::net::TcpListener>,
    kind: Kind,
    nodelay: bool,
) -> io::Result<()> {
    let cpus = greenloop_runtime::shard::cpus().unwrap_or_default();
    let threads: Vec<_> = listeners
        .into_iter()
        .enumerate()
        .map(|(i, listener)| {
            let cpu = (!cpus.is_empty()).then(|| cpus[i % cpus.len()]);
            std::thread::Builder::new().name(format!("tokio-core-{i}")).spawn(move || {
                if let Some(cpu) = cpu {
                    // Best effort, as greenloop's shards: unpinned still serves.
                    let _ = greenloop_runtime::shard::pin_current_thread(cpu);
                }
                let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
                runtime.block_on(async move {
                    listener.set_nonblocking(true)?;
                    serve_until_signal(TcpListener::from_std(listener)?, kind, nodelay).await
                })
            })
        })
        .collect::<io::Result<_>>()?;
    for thread in threads {
        thread.join().map_err(|_| io::Error::other("a tokio core thread panicked"))??;
    }
    Ok(())
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
    let config = HttpConfig::default();
    let mut session = HttpSession::with_config(&config);
    loop {
        match session.step() {
            Step::Read => {
                let n = stream.read(session.read_buf()).await?;
                session.filled(n);
            }
            // A lingering close, bounded as greenloop's (one timeout per
            // read here: the reference stays small).
            Step::Discard => {
                match tokio::time::timeout(config.linger_time, stream.read(session.read_buf()))
                    .await
                {
                    Ok(read) => session.filled(read?),
                    Err(_) => session.timed_out(),
                }
            }
            Step::Sleep(duration) => {
                tokio::time::sleep(duration).await;
                session.slept();
            }
            Step::Write => {
                stream.write_all(session.output()).await?;
                session.written();
            }
            Step::CloseWrite => stream.shutdown().await?,
            Step::Close => return Ok(()),
        }
    }
}
