//! [`Shutdown`]: the signal that ends a server gracefully, and the record
//! of the connections it must wake when it does.
//!
//! Stopping the accept loop is not enough: a keep-alive connection parked
//! in a read, waiting for a next request that will never come, would hold
//! the server for its whole grace period. So every connection being served
//! is recorded here by its descriptor, and [`trigger`](Shutdown::trigger)
//! shuts down the read half of each (`shutdown(2)` with `SHUT_RD`): the
//! parked read returns end of stream and the session closes once its
//! response in flight, if any, is written. Doing it in `trigger`, on the
//! triggering thread, reaches connections even when the loop that serves
//! them is blocked (the stackless inline cell).
//!
//! A connection in a lingering close keeps its read half (see `shut_read`),
//! and one that starts lingering after the trigger sends no FIN before its
//! peer's (see [`HttpSession`](crate::service::HttpSession)).
//!
//! Descriptors are reused as soon as they are closed, so an entry is
//! removed, under the lock `trigger` holds, *before* its descriptor closes
//! (see `accept::Served`): `trigger` never touches a stranger's socket.

use std::os::fd::RawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use greenloop_runtime::sync::Notify;

/// A shared, one-way switch: once triggered, servers stop accepting,
/// services stop keeping connections alive, the read half of every
/// connection being served is shut down, and waiters wake up.
///
/// Cheap to clone (all clones are the same switch); usable from any
/// thread, including a signal-watching thread (see
/// [`shutdown_on_signals`](super::shutdown_on_signals)).
#[derive(Clone, Debug, Default)]
pub struct Shutdown {
    inner: Arc<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    triggered: AtomicBool,
    notify: Notify,
    open: Mutex<Open>,
}

/// The descriptors of the connections being served: a slab, so each
/// connection removes its own entry by key.
#[derive(Debug, Default)]
struct Open {
    slots: Vec<Option<RawFd>>,
    free: Vec<usize>,
    len: usize,
}

impl Shutdown {
    /// A switch that is not triggered.
    pub fn new() -> Shutdown {
        Shutdown::default()
    }

    /// Triggers it (idempotent): shuts down the read half of every
    /// connection being served, and wakes everyone waiting in
    /// [`triggered`](Shutdown::triggered).
    pub fn trigger(&self) {
        self.inner.triggered.store(true, Ordering::Release);
        for fd in self.open().slots.iter().flatten() {
            shut_read(*fd);
        }
        self.inner.notify.notify_waiters();
    }

    /// Whether it was triggered.
    pub fn is_triggered(&self) -> bool {
        self.inner.triggered.load(Ordering::Acquire)
    }

    /// Completes once triggered.
    pub async fn triggered(&self) {
        loop {
            // Created before the check: a trigger in between still wakes it.
            let notified = self.inner.notify.notified();
            if self.is_triggered() {
                return;
            }
            notified.await;
        }
    }

    /// Connections being served right now by the servers on this switch
    /// (accepted and handed to a handler, not yet closed): shows that
    /// connections are released, whatever their peers did.
    pub fn open_connections(&self) -> usize {
        self.open().len
    }

    /// Records `fd`, a connection being served, until
    /// [`forget`](Shutdown::forget) with the returned key; shuts down its
    /// read half at once if the switch was already triggered.
    ///
    /// The caller must call `forget` before `fd` is closed.
    pub(crate) fn record(&self, fd: RawFd) -> usize {
        let mut open = self.open();
        // Checked under the lock: `trigger` sets the flag before it takes
        // the lock, so either it sees this entry or this sees the flag.
        if self.is_triggered() {
            shut_read(fd);
        }
        open.len += 1;
        match open.free.pop() {
            Some(key) => {
                open.slots[key] = Some(fd);
                key
            }
            None => {
                open.slots.push(Some(fd));
                open.slots.len() - 1
            }
        }
    }

    /// Forgets the connection recorded under `key`.
    pub(crate) fn forget(&self, key: usize) {
        let mut open = self.open();
        if let Some(slot @ Some(_)) = open.slots.get_mut(key) {
            *slot = None;
            open.free.push(key);
            open.len -= 1;
        }
    }

    fn open(&self) -> MutexGuard<'_, Open> {
        self.inner.open.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Half-closes `fd` for reading, unless it is in a lingering close already
/// (its FIN sent): that one waits only for its peer's FIN, bounded by the
/// linger time, and with both halves shut the kernel would answer the
/// peer's late bytes with a reset. Errors (a peer already gone) are moot.
///
/// `fd` is a recorded connection, and entries are removed under the lock
/// held here before their descriptor closes, so it is still that
/// connection's socket.
fn shut_read(fd: RawFd) {
    if crate::tcp_state::write_shut(fd).unwrap_or(false) {
        return;
    }
    // SAFETY: shutdown(2) takes any descriptor and only changes the socket's
    // state; `fd` is still the recorded connection's (see above).
    unsafe { libc::shutdown(fd, libc::SHUT_RD) };
}
