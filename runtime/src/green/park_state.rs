//! A green thread's park state word: its two tokens and what it is
//! suspended for (the protocol is drawn in `thread.rs`).
//!
//! # The owner thread
//!
//! The word is read and written on one OS thread only, the *owner thread*:
//! the one whose scheduler runs the green thread. The thread waits on it
//! itself, a wake on the owner thread by a context that runs the thread's
//! scheduler sets it directly, and every other wake (another OS thread, or
//! an inner context on the owner thread) goes to the owner's mailbox as a
//! [`Signal`](super::thread::Signal) that the owner applies when it routes
//! its mailbox (`context.rs`). So the word is a plain `Cell`: a wait and a
//! wake cost no locked instruction. Each method is `unsafe` with that one
//! contract, which is also why sharing the word (it sits in the thread's
//! `Control`, which every waker reaches) is sound.

use std::cell::Cell;

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

/// The tokens and wait bits of one green thread (owner thread only: see
/// the module docs).
#[derive(Debug)]
pub(crate) struct ParkState(Cell<u8>);

// SAFETY: the `Cell` is read and written on the owner thread only: that is
// the contract of every method, the only way to reach it (module docs).
// Other threads hold a `&ParkState` inside the thread's `Control` but call
// nothing on it.
unsafe impl Sync for ParkState {}

impl ParkState {
    /// No token, not suspended.
    pub(crate) fn new() -> ParkState {
        ParkState(Cell::new(0))
    }

    /// Sets `token` (UNPARK or WAKE). Returns `true` if the thread was
    /// suspended waiting for it: the caller must then schedule it (the
    /// token is handed over with the wake, and this happens once per
    /// suspension).
    ///
    /// # Safety
    ///
    /// Called on the owner thread (module docs).
    #[inline]
    pub(crate) unsafe fn signal(&self, token: u8) -> bool {
        let state = self.0.get();
        let wakes = state & (token << 2) != 0;
        self.0.set(if wakes { state & !WAITING } else { state | token });
        wakes
    }

    /// Consumes the `tokens` (a mask of UNPARK and WAKE) that are set and
    /// returns `false`; if none is, marks the thread suspended for them and
    /// returns `true`: the caller must suspend. The signal that resumes it
    /// hands its token over with the wake, so there is none to consume then.
    ///
    /// # Safety
    ///
    /// Called on the owner thread (module docs).
    #[inline]
    pub(crate) unsafe fn begin_wait(&self, tokens: u8) -> bool {
        let state = self.0.get();
        let suspend = state & tokens == 0;
        self.0.set(if suspend { state | tokens << 2 } else { state & !tokens });
        suspend
    }

    /// Consumes `token` if it is set, for a caller about to look at what it
    /// waits for: a token set before that look is no news to it.
    ///
    /// # Safety
    ///
    /// Called on the owner thread (module docs).
    #[inline]
    pub(crate) unsafe fn forget(&self, token: u8) {
        self.0.set(self.0.get() & !token);
    }
}

#[cfg(test)]
mod tests {
    use super::{ParkState, UNPARK, WAKE};

    /// The tokens on one thread, in the orders `thread.rs` draws: a token
    /// before the wait is consumed without a suspension, a signal during it
    /// resumes exactly once, a wake does not end a park (and stays for the
    /// next `block_on`), and a signal after the resume is a token again.
    #[test]
    fn tokens_are_kept_consumed_or_handed_over_once() {
        let state = ParkState::new();
        // SAFETY: a test on one thread, which owns the word.
        unsafe {
            assert!(!state.signal(UNPARK), "nobody waits: the token is kept");
            assert!(!state.begin_wait(UNPARK), "the kept token ends the park at once");
            assert!(state.begin_wait(UNPARK), "the token was consumed");
            assert!(!state.signal(WAKE), "a wake does not end a park");
            assert!(state.signal(UNPARK), "the unpark resumes the park");
            assert!(!state.signal(UNPARK), "resumed already: a token again");
            assert!(!state.begin_wait(WAKE), "the wake's token is still there");
            state.forget(UNPARK);
            assert!(state.begin_wait(UNPARK | WAKE), "both tokens gone");
            assert!(state.signal(WAKE), "either token ends a wait for both");
            assert!(!state.signal(UNPARK), "one resume per suspension");
        }
    }
}

/// `RUSTFLAGS="--cfg loom" cargo test -p greenloop-runtime --release --lib
/// loom_model` (see README.md).
#[cfg(all(test, loom))]
mod loom_model;
