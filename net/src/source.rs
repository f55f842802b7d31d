//! The one socket wrapper every greenloop socket is built on.
//!
//! [`Registered`] owns a mio source registered with the current thread's
//! reactor, once, for both directions, edge-triggered. Every read, write,
//! accept and connect, in both styles, goes through one helper:
//!
//! ```text
//!  try the syscall ── ok / error ─────────────────────────▶ return
//!        │ WouldBlock
//!        ▼
//!  reactor.poll_ready(dir) ── Pending: waker stored ─────▶ Pending
//!        │ Ready(event)                                   (blocking style:
//!        ▼                                                 block_on parks
//!  try the syscall again ── WouldBlock: clear_ready(event), the green thread
//!        │                  loop                           or the OS thread)
//!        ▼
//!      return
//! ```
//!
//! A registration belongs to the reactor of the thread that created it,
//! which is why sockets are `!Send`: move a connection to another thread
//! as a `std` socket (`into_std`) and wrap it there (`from_std`).

use std::cell::Cell;
use std::future::poll_fn;
use std::io;
use std::rc::Rc;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use greenloop_runtime::reactor::{Direction, IoKey, Reactor};
use greenloop_runtime::{block_on, time};

/// A mio source registered with this thread's reactor.
#[derive(Debug)]
pub(crate) struct Registered<S: mio::event::Source> {
    /// `None` only after `into_inner`.
    io: Option<S>,
    key: IoKey,
    reactor: Rc<Reactor>,
    read_timeout: Cell<Option<Duration>>,
    write_timeout: Cell<Option<Duration>>,
}

impl<S: mio::event::Source> Registered<S> {
    /// Registers `io` (already non-blocking) with this thread's reactor.
    pub(crate) fn new(mut io: S) -> io::Result<Registered<S>> {
        let reactor = Reactor::try_current()?;
        let key = reactor.register(&mut io)?;
        Ok(Registered {
            io: Some(io),
            key,
            reactor,
            read_timeout: Cell::new(None),
            write_timeout: Cell::new(None),
        })
    }

    /// The wrapped source.
    pub(crate) fn get_ref(&self) -> &S {
        self.io.as_ref().expect("socket used after into_inner")
    }

    /// Deregisters and returns the source.
    pub(crate) fn into_inner(mut self) -> io::Result<S> {
        let mut io = self.io.take().expect("socket used after into_inner");
        self.reactor.deregister(self.key, &mut io)?;
        Ok(io)
    }

    /// Waits for `dir` readiness, then runs `op`; on `WouldBlock` clears
    /// the readiness it saw and waits again.
    pub(crate) fn poll_ready_io<R>(
        &self,
        dir: Direction,
        cx: &mut Context<'_>,
        mut op: impl FnMut(&S) -> io::Result<R>,
    ) -> Poll<io::Result<R>> {
        loop {
            let event = ready!(self.reactor.poll_ready(self.key, dir, cx));
            match op(self.get_ref()) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.reactor.clear_ready(self.key, event)
                }
                result => return Poll::Ready(result),
            }
        }
    }

    /// Tries `op` at once; waits for readiness only on `WouldBlock`.
    pub(crate) fn poll_io<R>(
        &self,
        dir: Direction,
        cx: &mut Context<'_>,
        mut op: impl FnMut(&S) -> io::Result<R>,
    ) -> Poll<io::Result<R>> {
        match op(self.get_ref()) {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => self.poll_ready_io(dir, cx, op),
            result => Poll::Ready(result),
        }
    }

    /// `poll_io` as a future.
    pub(crate) async fn async_io<R>(
        &self,
        dir: Direction,
        mut op: impl FnMut(&S) -> io::Result<R>,
    ) -> io::Result<R> {
        poll_fn(|cx| self.poll_io(dir, cx, &mut op)).await
    }

    /// Blocking style: tries `op`, and on `WouldBlock` parks the current
    /// green thread (or blocks the OS thread) until it succeeds, bounded by
    /// the direction's timeout (`TimedOut` when it expires).
    pub(crate) fn blocking_io<R>(
        &self,
        dir: Direction,
        mut op: impl FnMut(&S) -> io::Result<R>,
    ) -> io::Result<R> {
        match op(self.get_ref()) {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            result => return result,
        }
        let wait = poll_fn(|cx| self.poll_ready_io(dir, cx, &mut op));
        match self.timeout(dir) {
            None => block_on(wait),
            Some(limit) => time::block_on_timeout(limit, wait).unwrap_or_else(|_| {
                Err(io::Error::new(io::ErrorKind::TimedOut, "socket operation timed out"))
            }),
        }
    }

    fn timeout(&self, dir: Direction) -> Option<Duration> {
        match dir {
            Direction::Read => self.read_timeout.get(),
            Direction::Write => self.write_timeout.get(),
        }
    }

    /// Sets the blocking-style timeout of `dir` (`None`: wait forever).
    ///
    /// A zero duration is rejected, as by `std`.
    pub(crate) fn set_timeout(&self, dir: Direction, limit: Option<Duration>) -> io::Result<()> {
        if limit == Some(Duration::ZERO) {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "timeout of zero duration"));
        }
        match dir {
            Direction::Read => self.read_timeout.set(limit),
            Direction::Write => self.write_timeout.set(limit),
        }
        Ok(())
    }

    /// The blocking-style timeout of `dir`.
    pub(crate) fn get_timeout(&self, dir: Direction) -> Option<Duration> {
        self.timeout(dir)
    }
}

impl<S: mio::event::Source> Drop for Registered<S> {
    fn drop(&mut self) {
        if let Some(mut io) = self.io.take() {
            // Deregistering a socket about to close cannot meaningfully
            // fail; the slab entry is freed either way.
            let _ = self.reactor.deregister(self.key, &mut io);
        }
    }
}
