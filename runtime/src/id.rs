//! Process-unique ids without an atomic operation per id: each OS thread
//! reserves a block of [`BLOCK`] ids from the shared counter at a time and
//! hands them out from a thread-local range.
//!
//! Ids stay unique in the process and increase on each thread; across
//! threads they are not ordered by creation time.

use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread::LocalKey;

/// Ids reserved per refill of a thread's range.
const BLOCK: u64 = 1024;

/// A shared counter and the thread-local range each thread draws from.
pub(crate) struct IdSource {
    next: &'static AtomicU64,
    local: &'static LocalKey<Cell<(u64, u64)>>,
}

/// Declares a `static` [`IdSource`] (its counter starts at 1, so ids are
/// never zero).
macro_rules! id_source {
    ($vis:vis static $name:ident) => {
        $vis static $name: $crate::id::IdSource = {
            static NEXT: ::std::sync::atomic::AtomicU64 = ::std::sync::atomic::AtomicU64::new(1);
            ::std::thread_local! {
                static LOCAL: ::std::cell::Cell<(u64, u64)> = const { ::std::cell::Cell::new((0, 0)) };
            }
            $crate::id::IdSource::new(&NEXT, &LOCAL)
        };
    };
}
pub(crate) use id_source;

impl IdSource {
    /// A source over `next` and the per-thread `(next, end)` range `local`.
    pub(crate) const fn new(
        next: &'static AtomicU64,
        local: &'static LocalKey<Cell<(u64, u64)>>,
    ) -> IdSource {
        IdSource { next, local }
    }

    /// The next id: from this thread's range, refilled when used up.
    #[inline]
    pub(crate) fn next(&self) -> u64 {
        self.local.with(|range| {
            let (next, end) = range.get();
            let (id, end) = if next < end { (next, end) } else { self.refill() };
            range.set((id + 1, end));
            id
        })
    }

    #[cold]
    fn refill(&self) -> (u64, u64) {
        let start = self.next.fetch_add(BLOCK, Ordering::Relaxed);
        assert!(start < u64::MAX - BLOCK, "greenloop: process-unique ids exhausted");
        (start, start + BLOCK)
    }
}

/// Declares an id newtype over `NonZeroU64`, drawn from its own
/// process-wide counter: ids of different kinds cannot be compared or
/// mixed up.
macro_rules! id_type {
    ($(#[$doc:meta])* $vis:vis struct $name:ident;) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
        $vis struct $name(::std::num::NonZeroU64);

        impl $name {
            /// A new id, never handed out before in this process.
            #[allow(dead_code, reason = "not every kind is drawn from a counter")]
            pub(crate) fn next() -> $name {
                static NEXT: AtomicU64 = AtomicU64::new(1);
                let id = NEXT.fetch_add(1, Ordering::Relaxed);
                $name(::std::num::NonZeroU64::new(id).expect("greenloop: ids exhausted"))
            }

            /// The id with the number `n` (one `as_u64` gave).
            #[allow(dead_code, reason = "not every kind is stored as a number")]
            pub(crate) fn from_u64(n: ::std::num::NonZeroU64) -> $name {
                $name(n)
            }

            /// The id as a number (for logs and metrics).
            #[allow(dead_code, reason = "not every kind is printed")]
            pub fn as_u64(self) -> ::std::num::NonZeroU64 {
                self.0
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                ::std::fmt::Display::fmt(&self.0, f)
            }
        }
    };
}

id_type! {
    /// A reactor's process-unique id (see
    /// [`Reactor::id`](crate::reactor::Reactor::id)).
    pub struct ReactorId;
}

id_type! {
    /// A green scheduler's process-unique id: a context's, never reused.
    pub(crate) struct SchedulerId;
}

id_type! {
    /// A task executor's process-unique id.
    pub(crate) struct ExecutorId;
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    id_source!(static IDS);

    #[test]
    fn ids_are_unique_across_threads_and_refills() {
        let batches: Vec<Vec<u64>> = (0..3)
            .map(|_| std::thread::spawn(|| (0..2_500).map(|_| IDS.next()).collect()))
            .map(|t| t.join().unwrap())
            .collect();
        let mut seen = HashSet::new();
        for batch in &batches {
            assert!(batch.windows(2).all(|w| w[0] < w[1]), "ids increase on a thread");
            for &id in batch {
                assert!(id != 0 && seen.insert(id), "id {id} repeated or zero");
            }
        }
        assert_eq!(seen.len(), 7_500);
    }
}
