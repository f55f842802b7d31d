//! The HTTP sleep service, once per style: both drive the same
//! [`HttpSession`](super::HttpSession) and differ only in how they wait.

use std::io;
use std::time::Duration;

use greenloop_runtime::{green, time};

use super::session::{HttpSession, Step};
use super::{BlockingStream, Shutdown};
use crate::TcpStream;

/// Settings of the HTTP sleep service.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HttpConfig {
    /// A connection that sends nothing for this long is closed (slowloris
    /// guard). Default 30 s.
    pub idle_timeout: Duration,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig { idle_timeout: Duration::from_secs(30) }
    }
}

fn idle_error() -> io::Error {
    io::Error::new(io::ErrorKind::TimedOut, "HTTP connection idle for too long")
}

/// Blocking-style sleep service on one connection: sleeps with
/// [`green::sleep`] (parks the green thread; blocks an OS thread, or the
/// executor when run inline in a task). Returns the requests answered.
///
/// # Errors
///
/// The stream's errors; `TimedOut` when the peer stays idle too long.
pub fn sleep_blocking<S: BlockingStream>(
    stream: &mut S,
    config: &HttpConfig,
    shutdown: &Shutdown,
) -> io::Result<u64> {
    stream.set_read_timeout(Some(config.idle_timeout))?;
    let mut session = HttpSession::new();
    loop {
        if shutdown.is_triggered() {
            session.drain();
        }
        match session.step() {
            Step::Read => match stream.read(session.read_buf()) {
                Ok(n) => session.filled(n),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Err(idle_error()),
                Err(e) => return Err(e),
            },
            Step::Sleep(duration) => {
                green::sleep(duration);
                if shutdown.is_triggered() {
                    session.drain();
                }
                session.slept();
            }
            Step::Write => {
                stream.write_all(session.output())?;
                session.written();
            }
            Step::Close => return Ok(session.answered()),
        }
    }
}

/// Async-style sleep service on one connection: sleeps with
/// [`time::sleep`]. Returns the requests answered.
///
/// # Errors
///
/// The stream's errors; `TimedOut` when the peer stays idle too long.
pub async fn sleep_async(
    stream: &TcpStream,
    config: &HttpConfig,
    shutdown: &Shutdown,
) -> io::Result<u64> {
    let mut session = HttpSession::new();
    loop {
        if shutdown.is_triggered() {
            session.drain();
        }
        match session.step() {
            Step::Read => {
                let read = stream.read_async(session.read_buf());
                match time::timeout(config.idle_timeout, read).await {
                    Ok(Ok(n)) => session.filled(n),
                    Ok(Err(e)) if e.kind() == io::ErrorKind::Interrupted => {}
                    Ok(Err(e)) => return Err(e),
                    Err(_) => return Err(idle_error()),
                }
            }
            Step::Sleep(duration) => {
                time::sleep(duration).await;
                if shutdown.is_triggered() {
                    session.drain();
                }
                session.slept();
            }
            Step::Write => {
                stream.write_all_async(session.output()).await?;
                session.written();
            }
            Step::Close => return Ok(session.answered()),
        }
    }
}
