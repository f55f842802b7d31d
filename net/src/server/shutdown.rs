//! [`Shutdown`]: the signal that ends a server gracefully.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use greenloop_runtime::sync::Notify;

/// A shared, one-way switch: once triggered, servers stop accepting,
/// services stop keeping connections alive, and waiters wake up.
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
}

impl Shutdown {
    /// A switch that is not triggered.
    pub fn new() -> Shutdown {
        Shutdown::default()
    }

    /// Triggers it (idempotent) and wakes everyone waiting in
    /// [`triggered`](Shutdown::triggered).
    pub fn trigger(&self) {
        self.inner.triggered.store(true, Ordering::Release);
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
}
