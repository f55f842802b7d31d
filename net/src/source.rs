//! The one socket wrapper every greenloop socket is built on.
//!
//! [`Registered`] owns a mio source registered with the current thread's
//! reactor, once, for both directions, edge-triggered. Every read, write,
//! accept and connect, in both styles, goes through one helper, which makes
//! a syscall only when the reactor holds readiness for its direction:
//!
//! ```text
//!  reactor readiness of dir? ── none: store the waker ───▶ Pending
//!        │ Ready(event: dir, tick)                        (blocking style:
//!        ▼                                                 block_on parks
//!  the syscall ── WouldBlock: clear_ready(event), loop     the green thread
//!        │ ok / error           (now not ready: wait)      or the OS thread)
//!        ▼
//!  short stream transfer (0 < n < len): clear_drained(event)
//!        ▼
//!      return
//! ```
//!
//! So a message costs one syscall: after a `WouldBlock` or a short
//! transfer, the next call waits for the next edge instead of trying (and
//! failing) on readiness the reactor still remembers from the last one, as
//! an always-try-first helper does. Readiness is dated: `event` is taken
//! before the syscall, and a clear with it never erases a newer edge; a
//! drained clear also keeps a closed direction ready, since a peer's close
//! may come in the same edge as its last data and is never sent again.
//! Datagrams, accepts and connects never count as drained: one result per
//! call says nothing of what is left.
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

use greenloop_runtime::reactor::{Direction, IoKey, Reactor, ReadyEvent};
use greenloop_runtime::{block_on, time};

/// `drained` for operations whose result says nothing of the kernel
/// buffer: datagrams, accepts, connects.
pub(crate) fn never<R>(_: &R) -> bool {
    false
}

/// `drained` for a stream read or write of `len` bytes: a transfer of some
/// but fewer bytes drained the receive buffer (or filled the send buffer).
/// Not `0`: that is end of stream (or an empty buffer), not a drain.
pub(crate) fn short(len: usize) -> impl Fn(&usize) -> bool {
    move |&n| 0 < n && n < len
}

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
    /// Registers `io` (already non-blocking) with this thread's reactor,
    /// naming its fd for dumps.
    pub(crate) fn new(mut io: S) -> io::Result<Registered<S>>
    where
        S: std::os::fd::AsRawFd,
    {
        let reactor = Reactor::try_current()?;
        let key = reactor.register(&mut io)?;
        reactor.name_fd(key, io.as_raw_fd());
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

    /// Runs `op` once `dir` is ready, as often as it returns `WouldBlock`
    /// (clearing the readiness it saw each time); `Pending`, with the waker
    /// stored, while the reactor holds no readiness. `drained` tells, from
    /// a result, that the kernel buffer is drained (see the module docs).
    pub(crate) fn poll_io<R>(
        &self,
        dir: Direction,
        cx: &mut Context<'_>,
        drained: impl Fn(&R) -> bool,
        mut op: impl FnMut(&S) -> io::Result<R>,
    ) -> Poll<io::Result<R>> {
        loop {
            let event = ready!(self.reactor.poll_ready(self.key, dir, cx));
            if let Some(result) = self.attempt(event, &drained, &mut op) {
                return Poll::Ready(result);
            }
        }
    }

    /// `poll_io` as a future.
    pub(crate) async fn async_io<R>(
        &self,
        dir: Direction,
        drained: impl Fn(&R) -> bool,
        mut op: impl FnMut(&S) -> io::Result<R>,
    ) -> io::Result<R> {
        poll_fn(|cx| self.poll_io(dir, cx, &drained, &mut op)).await
    }

    /// Blocking style: runs `op` at once if `dir` is ready, and otherwise
    /// (or on `WouldBlock`) parks the current green thread (or blocks the
    /// OS thread) until it succeeds, bounded by the direction's timeout
    /// (`TimedOut` when it expires). The fast path arms no timer.
    pub(crate) fn blocking_io<R>(
        &self,
        dir: Direction,
        drained: impl Fn(&R) -> bool,
        mut op: impl FnMut(&S) -> io::Result<R>,
    ) -> io::Result<R> {
        if let Some(event) = self.reactor.ready_event(self.key, dir)
            && let Some(result) = self.attempt(event, &drained, &mut op)
        {
            return result;
        }
        let wait = poll_fn(|cx| self.poll_io(dir, cx, &drained, &mut op));
        match self.timeout(dir) {
            None => block_on(wait),
            Some(limit) => time::block_on_timeout(limit, wait).unwrap_or_else(|_| {
                Err(io::Error::new(io::ErrorKind::TimedOut, "socket operation timed out"))
            }),
        }
    }

    /// One syscall under the readiness `event` (taken before it): `None`
    /// after `WouldBlock`, with that readiness cleared; otherwise the
    /// result, with the readiness cleared if `drained` says so.
    fn attempt<R>(
        &self,
        event: ReadyEvent,
        drained: impl Fn(&R) -> bool,
        mut op: impl FnMut(&S) -> io::Result<R>,
    ) -> Option<io::Result<R>> {
        match op(self.get_ref()) {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                self.reactor.clear_ready(self.key, event);
                None
            }
            Ok(value) => {
                if drained(&value) {
                    self.reactor.clear_drained(self.key, event);
                }
                Some(Ok(value))
            }
            Err(e) => Some(Err(e)),
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
