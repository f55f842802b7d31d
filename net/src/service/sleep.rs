//! The HTTP sleep service, once per style: both drive the same
//! [`HttpSession`](super::HttpSession) and differ only in how they wait.
//!
//! Both bound how long a peer may take with one [`ReadClock`]: a slowloris
//! that trickles a request head gets a 408, an idle keep-alive connection is
//! closed, and a lingering close stops discarding input after
//! [`HttpConfig::linger_time`].

use std::io;
use std::time::{Duration, Instant};

use greenloop_runtime::{green, time};

use super::session::{HttpSession, Step};
use super::{BlockingStream, Shutdown};
use crate::TcpStream;

/// Settings of the HTTP sleep service.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HttpConfig {
    /// How long a peer may take to send a complete request head, counted
    /// from when the server starts waiting for it (the connection opened, or
    /// the previous response went out). Bytes trickled in do not extend it
    /// (slowloris guard). When it runs out, a partly received request gets
    /// `408 Request Timeout` and the connection closes; an idle connection
    /// is just closed. Default 30 s.
    pub header_timeout: Duration,
    /// A lingering close (see [`HttpSession`]'s docs) discards at most this
    /// many bytes of input before it closes anyway. Default 64 KiB: more
    /// than a request head and a small body, so an ordinary client that
    /// stops sending after an error is drained to its end.
    pub linger_bytes: usize,
    /// A lingering close discards input for at most this long, counted
    /// from when the write side was shut down. Default 2 s: ample for a
    /// client to read the response and close, short enough that a peer
    /// which never stops holds its connection slot only briefly.
    pub linger_time: Duration,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            header_timeout: Duration::from_secs(30),
            linger_bytes: 64 * 1024,
            linger_time: Duration::from_secs(2),
        }
    }
}

/// The read deadline of one connection: started by the first read a
/// session asks for, kept over the reads that follow, reset by any other
/// step (a request arrived, or the write side was shut down). A `Read`
/// waits at most the header timeout, a `Discard` the linger time.
#[derive(Debug)]
struct ReadClock {
    header_timeout: Duration,
    linger_time: Duration,
    deadline: Option<Instant>,
}

impl ReadClock {
    fn new(config: &HttpConfig) -> ReadClock {
        ReadClock {
            header_timeout: config.header_timeout,
            linger_time: config.linger_time,
            deadline: None,
        }
    }

    /// The session's next step, seen by the clock.
    fn step(&mut self, session: &mut HttpSession) -> Step {
        let step = session.step();
        if !matches!(step, Step::Read | Step::Discard) {
            self.deadline = None;
        }
        step
    }

    /// How long the read that `step` asks for may wait; `None` once the
    /// time is up.
    fn remaining(&mut self, step: Step) -> Option<Duration> {
        let timeout = if step == Step::Discard { self.linger_time } else { self.header_timeout };
        let now = Instant::now();
        let deadline = *self.deadline.get_or_insert_with(|| now + timeout);
        Some(deadline.saturating_duration_since(now)).filter(|left| !left.is_zero())
    }
}

/// How often a lingering close looks again for the peer's FIN when reads
/// end before it (the server shut the read half: see
/// [`BlockingStream::peer_closed`]). Only connections that linger during a
/// shutdown poll, each for at most [`HttpConfig::linger_time`].
const PEER_CLOSE_POLL: Duration = Duration::from_millis(10);

/// Blocking-style sleep service on one connection: sleeps with
/// [`green::sleep`] (parks the green thread; blocks an OS thread, or the
/// executor when run inline in a task). Returns the requests answered
/// (a 408 included).
///
/// # Errors
///
/// The stream's errors.
pub fn sleep_blocking<S: BlockingStream>(
    stream: &mut S,
    config: &HttpConfig,
    shutdown: &Shutdown,
) -> io::Result<u64> {
    let (mut session, mut clock) = (HttpSession::with_config(config), ReadClock::new(config));
    drive_blocking(stream, &mut session, &mut clock, shutdown, green::sleep, Linger::Here)?;
    Ok(session.answered())
}

/// The sleep service with nothing but std: a `std` stream, and
/// `std::thread::sleep`, which blocks the OS thread unless greenloop-patch
/// turns it into a green park. Returns the requests answered.
///
/// # Errors
///
/// The stream's errors.
pub fn sleep_std(
    stream: &mut std::net::TcpStream,
    config: &HttpConfig,
    shutdown: &Shutdown,
) -> io::Result<u64> {
    let (mut session, mut clock) = (HttpSession::with_config(config), ReadClock::new(config));
    drive_blocking(stream, &mut session, &mut clock, shutdown, std::thread::sleep, Linger::Here)?;
    Ok(session.answered())
}

/// Blocking-style sleep service inline in a stackless task: requests are
/// served blocking-style (blocking the executor, as [`sleep_blocking`]
/// does there), but the lingering close is awaited, so a peer that takes
/// its time to close holds its connection, not the executor. Returns the
/// requests answered.
///
/// # Errors
///
/// The stream's errors.
pub async fn sleep_inline(
    stream: &mut TcpStream,
    config: &HttpConfig,
    shutdown: &Shutdown,
) -> io::Result<u64> {
    let (mut session, mut clock) = (HttpSession::with_config(config), ReadClock::new(config));
    drive_blocking(stream, &mut session, &mut clock, shutdown, green::sleep, Linger::HandBack)?;
    drive_async(stream, &mut session, &mut clock, shutdown).await?;
    Ok(session.answered())
}

/// Where the blocking driver's lingering close runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Linger {
    /// In the blocking driver, like everything else.
    Here,
    /// Handed back to the caller at the first `Discard`.
    HandBack,
}

/// The blocking-style session loop, sleeping with `sleep`, until the
/// session closes (or, with [`Linger::HandBack`], starts discarding).
fn drive_blocking<S: BlockingStream>(
    stream: &mut S,
    session: &mut HttpSession,
    clock: &mut ReadClock,
    shutdown: &Shutdown,
    sleep: fn(Duration),
    linger: Linger,
) -> io::Result<()> {
    // The read timeout set on the socket: one syscall per connection unless
    // a request arrives in pieces.
    let mut read_timeout = None;
    loop {
        if shutdown.is_triggered() {
            session.drain();
        }
        match clock.step(session) {
            Step::Discard if linger == Linger::HandBack => return Ok(()),
            step @ (Step::Read | Step::Discard) => {
                let Some(left) = clock.remaining(step) else {
                    session.timed_out();
                    continue;
                };
                if read_timeout != Some(left) {
                    stream.set_read_timeout(Some(left))?;
                    read_timeout = Some(left);
                }
                match stream.read(session.read_buf()) {
                    Ok(0) if step == Step::Discard && !stream.peer_closed().unwrap_or(true) => {
                        sleep(PEER_CLOSE_POLL.min(left));
                    }
                    Ok(n) => session.filled(n),
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    // SO_RCVTIMEO on a std socket, or a greenloop socket's timeout.
                    Err(e)
                        if matches!(
                            e.kind(),
                            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                        ) =>
                    {
                        session.timed_out();
                    }
                    Err(e) => return Err(e),
                }
            }
            Step::Sleep(duration) => {
                sleep(duration);
                if shutdown.is_triggered() {
                    session.drain();
                }
                session.slept();
            }
            Step::Write => {
                stream.write_all(session.output())?;
                session.written();
            }
            Step::CloseWrite => stream.shutdown_write()?,
            Step::Close => return Ok(()),
        }
    }
}

/// Async-style sleep service on one connection: sleeps with
/// [`time::sleep`]. Returns the requests answered (a 408 included).
///
/// # Errors
///
/// The stream's errors.
pub async fn sleep_async(
    stream: &TcpStream,
    config: &HttpConfig,
    shutdown: &Shutdown,
) -> io::Result<u64> {
    let (mut session, mut clock) = (HttpSession::with_config(config), ReadClock::new(config));
    drive_async(stream, &mut session, &mut clock, shutdown).await?;
    Ok(session.answered())
}

/// The async-style session loop, until the session closes.
async fn drive_async(
    stream: &TcpStream,
    session: &mut HttpSession,
    clock: &mut ReadClock,
    shutdown: &Shutdown,
) -> io::Result<()> {
    loop {
        if shutdown.is_triggered() {
            session.drain();
        }
        match clock.step(session) {
            step @ (Step::Read | Step::Discard) => {
                let Some(left) = clock.remaining(step) else {
                    session.timed_out();
                    continue;
                };
                match time::timeout(left, stream.read_async(session.read_buf())).await {
                    Ok(Ok(0)) if step == Step::Discard && !stream.peer_closed().unwrap_or(true) => {
                        time::sleep(PEER_CLOSE_POLL.min(left)).await;
                    }
                    Ok(Ok(n)) => session.filled(n),
                    Ok(Err(e)) if e.kind() == io::ErrorKind::Interrupted => {}
                    Ok(Err(e)) => return Err(e),
                    Err(_) => session.timed_out(),
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
            Step::CloseWrite => stream.shutdown(std::net::Shutdown::Write)?,
            Step::Close => return Ok(()),
        }
    }
}
