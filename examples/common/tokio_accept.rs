//! The accept loop of the tokio reference servers (`tokio_reference`,
//! `hyper_tokio`, the lab's tokio cells): one task per connection until
//! SIGINT or SIGTERM.

use std::future::Future;
use std::io;

use tokio::net::{TcpListener, TcpStream};
use tokio::signal::unix::{SignalKind, signal};

/// Accepts on `listener` and runs `serve` on each connection in its own
/// task (with `TCP_NODELAY` first if `nodelay`; a connection that refuses
/// it is dropped) until SIGINT or SIGTERM. Accept errors (EMFILE...) end
/// no connection.
pub async fn accept_until_signal<S, F>(
    listener: TcpListener,
    nodelay: bool,
    serve: S,
) -> io::Result<()>
where
    S: Fn(TcpStream) -> F,
    F: Future<Output = ()> + Send + 'static,
{
    let mut interrupt = signal(SignalKind::interrupt())?;
    let mut terminate = signal(SignalKind::terminate())?;
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                if nodelay && stream.set_nodelay(true).is_err() {
                    continue;
                }
                tokio::spawn(serve(stream));
            }
            _ = interrupt.recv() => return Ok(()),
            _ = terminate.recv() => return Ok(()),
        }
    }
}
