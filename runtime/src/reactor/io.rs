//! I/O registrations: one slab entry per registered socket, keyed by its
//! `mio::Token`, holding cached readiness and one waker per direction.
//!
//! Sockets are registered once, for both directions, edge-triggered (mio's
//! only mode on Linux). An edge sets the direction's readiness bit and wakes
//! its waiter; the bit stays set until a syscall returns `WouldBlock` and the
//! caller clears it with [`Reactor::clear_ready`](super::Reactor::clear_ready),
//! or a short stream transfer proves the kernel buffer drained
//! ([`Reactor::clear_drained`](super::Reactor::clear_drained)). A fresh
//! registration is not ready: registering reports the socket's current
//! state as its first edge.
//!
//! A direction that reported a close (or an error) is *closed*: the kernel
//! sends that edge once, often together with the last data, so a drained
//! clear would lose it; a closed direction stays ready for drained clears.
//!
//! Each readiness bit remembers the reactor tick that set it. A caller clears
//! with the [`ReadyEvent`] it observed, so an edge that arrived after the
//! failed syscall (a newer tick) is not thrown away (the "stale readiness"
//! race that async-io's `ticker` and tokio's `ReadyEvent` guard against).

use std::task::Waker;

/// A direction of readiness.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// The socket may be read (or accepted from, or reached EOF/error).
    Read,
    /// The socket may be written (or connected, or reached error).
    Write,
}

/// Proof that a direction was ready at a given reactor tick; pass it back to
/// [`Reactor::clear_ready`](super::Reactor::clear_ready) after `WouldBlock`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReadyEvent {
    pub(super) dir: Direction,
    pub(super) tick: u64,
}

/// A registered source: its key in the reactor's slab, used as `mio::Token`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct IoKey(pub(super) usize);

/// State of one direction of one registration.
#[derive(Debug, Default)]
pub(super) struct DirState {
    /// `Some(tick)` while the direction is ready; the tick that made it so.
    pub(super) ready: Option<u64>,
    /// An edge reported a close or an error: no later edge will come, so
    /// only a `WouldBlock` may clear `ready` (see the module docs).
    pub(super) closed: bool,
    /// The waiter to wake on the next edge.
    pub(super) waker: Option<Waker>,
}

impl DirState {
    /// Records an edge at `tick`; returns the waiter to wake.
    fn on_edge(&mut self, tick: u64, closed: bool) -> Option<Waker> {
        self.ready = Some(tick);
        self.closed |= closed;
        self.waker.take()
    }
}

/// The slab entry of one registered source.
#[derive(Debug, Default)]
pub(super) struct IoState {
    /// The registered fd, once named (`Reactor::name_fd`), for dumps.
    pub(super) fd: Option<std::os::fd::RawFd>,
    pub(super) read: DirState,
    pub(super) write: DirState,
}

impl IoState {
    pub(super) fn dir(&mut self, dir: Direction) -> &mut DirState {
        match dir {
            Direction::Read => &mut self.read,
            Direction::Write => &mut self.write,
        }
    }

    /// Records an edge from `event` at `tick`; pushes the wakers to run.
    pub(super) fn on_event(&mut self, event: &mio::event::Event, tick: u64, wake: &mut Vec<Waker>) {
        let error = event.is_error();
        let (read_closed, write_closed) = (event.is_read_closed(), event.is_write_closed());
        if error || event.is_readable() || read_closed {
            wake.extend(self.read.on_edge(tick, error || read_closed));
        }
        if error || event.is_writable() || write_closed {
            wake.extend(self.write.on_edge(tick, error || write_closed));
        }
    }
}
