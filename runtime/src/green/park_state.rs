//! A green thread's park state word: its two tokens and what it is
//! suspended for (the protocol is drawn in `thread.rs`). Kept apart from
//! the thread's other parts so that loom can check it (`crate::loom`).

use crate::loom::{AtomicU8, Ordering};

/// The park token: set by `Thread::unpark`, consumed by `park`.
pub(crate) const UNPARK: u8 = 1;
/// The wake token: set by the thread's `Waker`, consumed by `block_on`.
pub(crate) const WAKE: u8 = 2;
/// Suspended until `UNPARK` (a wait bit is its token bit shifted by 2).
const WAIT_UNPARK: u8 = UNPARK << 2;
/// Suspended until `WAKE`.
const WAIT_WAKE: u8 = WAKE << 2;
/// Either wait bit.
const WAITING: u8 = WAIT_UNPARK | WAIT_WAKE;

/// The tokens and wait bits of one green thread.
#[derive(Debug)]
pub(crate) struct ParkState(AtomicU8);

impl ParkState {
    /// No token, not suspended.
    pub(crate) fn new() -> ParkState {
        ParkState(AtomicU8::new(0))
    }

    /// Sets `token` (UNPARK or WAKE). Returns `true` if the thread was
    /// suspended waiting for it: the caller must then schedule it (the
    /// token is handed over with the wake, and this happens once per
    /// suspension).
    pub(crate) fn signal(&self, token: u8) -> bool {
        let waiting = token << 2;
        let mut state = self.0.load(Ordering::Acquire);
        loop {
            let wakes = state & waiting != 0;
            let next = if wakes { state & !WAITING } else { state | token };
            // An exchange even when `next == state` (the token looks set
            // already): the load may be stale, the thread having since
            // consumed the token and suspended; an exchange reads the
            // latest state. (A plain return here lost unparks in the loom
            // model below.)
            match self.0.compare_exchange_weak(state, next, Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => return wakes,
                Err(actual) => state = actual,
            }
        }
    }

    /// Consumes the `tokens` (a mask of UNPARK and WAKE) that are set and
    /// returns `false`; if none is, marks the thread suspended for them and
    /// returns `true`: the caller must suspend. The signal that resumes it
    /// hands its token over with the wake, so there is none to consume then.
    #[inline]
    pub(crate) fn begin_wait(&self, tokens: u8) -> bool {
        let mut state = self.0.load(Ordering::Acquire);
        loop {
            let (next, suspend) = if state & tokens != 0 {
                (state & !tokens, false)
            } else {
                (state | tokens << 2, true)
            };
            match self.0.compare_exchange_weak(state, next, Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => return suspend,
                Err(actual) => state = actual,
            }
        }
    }
}

impl ParkState {
    /// Consumes `token` if it is set, for a caller about to look at what it
    /// waits for (a token set before that look is no news to it). A token
    /// set concurrently is either cleared here, and the caller's look
    /// (ordered after this exchange) sees what the signaller published
    /// before it, or kept for the next wait.
    #[inline]
    pub(crate) fn forget(&self, token: u8) {
        if self.0.load(Ordering::Relaxed) & token != 0 {
            self.0.fetch_and(!token, Ordering::AcqRel);
        }
    }
}

/// `RUSTFLAGS="--cfg loom" cargo test -p greenloop-runtime --release --lib
/// loom_model` (see README.md).
#[cfg(all(test, loom))]
mod loom_model {
    use super::{ParkState, UNPARK, WAKE};
    use crate::loom::model;
    use loom::sync::atomic::AtomicBool;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};

    /// Counts the schedules that signals ask for.
    #[derive(Clone, Default)]
    struct Scheduled(Arc<AtomicUsize>);

    impl Scheduled {
        fn signal(&self, state: &ParkState, token: u8) {
            if state.signal(token) {
                self.0.fetch_add(1, SeqCst);
            }
        }

        /// A suspended thread: resumed once a signal scheduled it for the
        /// `nth` time (spins in the model; hangs, so fails, if lost).
        fn wait_for(&self, nth: usize) {
            while self.0.load(SeqCst) < nth {
                loom::thread::yield_now();
            }
        }
    }

    /// An unpark before or during a park is not lost: the park consumes
    /// the token or is scheduled by the unpark, exactly once.
    #[test]
    fn loom_model_unpark_before_park_is_not_lost() {
        model(|| {
            let state = Arc::new(ParkState::new());
            let scheduled = Scheduled::default();
            let unparker = {
                let (state, scheduled) = (state.clone(), scheduled.clone());
                loom::thread::spawn(move || scheduled.signal(&state, UNPARK))
            };
            if state.begin_wait(UNPARK) {
                scheduled.wait_for(1);
            }
            unparker.join().unwrap();
            assert!(scheduled.0.load(SeqCst) <= 1, "scheduled twice for one suspension");
            assert!(!state.signal(WAKE), "a wake does not end a park");
            assert!(state.begin_wait(UNPARK), "the one unpark was consumed");
        });
    }

    /// `block_on`'s loop: check the condition, else wait for WAKE. A waker
    /// sets the condition then signals, while an earlier wake left a token
    /// (so the waker may read a stale "token set"). The loop always ends.
    #[test]
    fn loom_model_wake_after_a_write_is_not_lost() {
        model(|| {
            let state = Arc::new(ParkState::new());
            let ready = Arc::new(AtomicBool::new(false));
            let scheduled = Scheduled::default();
            let spurious = {
                let (state, scheduled) = (state.clone(), scheduled.clone());
                loom::thread::spawn(move || scheduled.signal(&state, WAKE))
            };
            let waker = {
                let (state, ready, scheduled) = (state.clone(), ready.clone(), scheduled.clone());
                loom::thread::spawn(move || {
                    ready.store(true, loom::sync::atomic::Ordering::Release);
                    scheduled.signal(&state, WAKE);
                })
            };
            let mut suspensions = 0;
            while !ready.load(loom::sync::atomic::Ordering::Acquire) {
                if state.begin_wait(WAKE) {
                    suspensions += 1;
                    scheduled.wait_for(suspensions);
                }
            }
            spurious.join().unwrap();
            waker.join().unwrap();
        });
    }
}
