//! A green thread's park state: its two tokens and what it is suspended
//! for (the protocol is drawn in `thread.rs`).
//!
//! # The owner thread
//!
//! The state word is read and written on one OS thread only, the *owner
//! thread*: the one whose scheduler runs the green thread. The thread
//! waits on it itself, and a wake by a context that runs the thread's
//! scheduler sets it directly. So it is a plain `Cell`: a wait and a wake
//! on the owner thread cost no locked instruction. Each method that
//! touches it is `unsafe` with that one contract, which is also why sharing
//! the state (it sits in the thread's `Control`, which every waker
//! reaches) is sound.
//!
//! # Remote tokens
//!
//! Every other wake (another OS thread, or an inner context on the owner
//! thread) [`post`](ParkState::post)s its token in a second, atomic word,
//! and the first token posted there since the owner last took them also
//! sends the owner a [`Signal`](super::thread::Signal) through its mailbox.
//! The owner takes the posted tokens into the state word when that signal
//! comes, resuming the thread if it waited for one
//! ([`take_posted`](ParkState::take_posted)), and also at each wait
//! (`begin_wait`), so an unpark posted before a park is found there without
//! a suspension. Hence one signal at most is in flight per thread, however
//! many tokens are posted, and no token is lost:
//!
//! ```text
//!  invariant: posted != 0  =>  a signal is in flight (queued, or about to be)
//!
//!  post(t):  posted.fetch_or(t) found 0?  -> send a signal
//!            else                         -> the signal in flight brings t
//!  owner:    posted.swap(0): the signal in flight (if any) finds fewer
//!            tokens or none; a post after the swap finds 0 and sends anew
//! ```
//!
//! A post's release pairs with the owner's acquiring swap, so what the
//! waker wrote before its wake is visible to the thread that takes the
//! token.

use std::cell::Cell;

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

/// The tokens and wait bits of one green thread (see the module docs).
#[derive(Debug)]
pub(crate) struct ParkState {
    /// Tokens and wait bits: owner thread only.
    state: Cell<u8>,
    /// Tokens posted by other threads, not yet taken by the owner.
    posted: AtomicU8,
}

// SAFETY: `state` is read and written on the owner thread only: that is
// the contract of every method that touches it, the only way to reach it
// (module docs). `posted` is atomic.
unsafe impl Sync for ParkState {}

impl ParkState {
    /// No token, not suspended.
    pub(crate) fn new() -> ParkState {
        ParkState { state: Cell::new(0), posted: AtomicU8::new(0) }
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
        let state = self.state.get();
        let wakes = state & (token << 2) != 0;
        self.state.set(if wakes { state & !WAITING } else { state | token });
        wakes
    }

    /// Consumes the `tokens` (a mask of UNPARK and WAKE) that are set, the
    /// posted ones included, and returns `false`; if none is, marks the
    /// thread suspended for them and returns `true`: the caller must
    /// suspend. The signal that resumes it hands its token over with the
    /// wake, so there is none to consume then.
    ///
    /// # Safety
    ///
    /// Called on the owner thread, by the green thread itself (module docs).
    #[inline]
    pub(crate) unsafe fn begin_wait(&self, tokens: u8) -> bool {
        if self.posted.load(Ordering::Relaxed) != 0 {
            // SAFETY: forwarded. The thread runs, so it waits for nothing
            // and the tokens are only stored.
            unsafe { self.take_posted() };
        }
        let state = self.state.get();
        let suspend = state & tokens == 0;
        self.state.set(if suspend { state | tokens << 2 } else { state & !tokens });
        suspend
    }

    /// Consumes `token` if it is set, for a caller about to look at what it
    /// waits for: a token set before that look is no news to it. (A posted
    /// token not yet taken stays: at worst one spurious return.)
    ///
    /// # Safety
    ///
    /// Called on the owner thread (module docs).
    #[inline]
    pub(crate) unsafe fn forget(&self, token: u8) {
        self.state.set(self.state.get() & !token);
    }

    /// Posts `token` from a thread that may not touch the state word
    /// (module docs); `true` if no token was posted before: the caller
    /// must then send the owner a signal, which takes them all.
    pub(crate) fn post(&self, token: u8) -> bool {
        self.posted.fetch_or(token, Ordering::Release) == 0
    }

    /// Takes the posted tokens into the state word, UNPARK before WAKE, as
    /// if signalled in that order; `true` if the thread waited for one of
    /// them: the caller must then schedule it.
    ///
    /// # Safety
    ///
    /// Called on the owner thread (module docs).
    pub(crate) unsafe fn take_posted(&self) -> bool {
        let posted = self.posted.swap(0, Ordering::Acquire);
        let mut wakes = false;
        for token in [UNPARK, WAKE] {
            if posted & token != 0 {
                // SAFETY: forwarded.
                wakes |= unsafe { self.signal(token) };
            }
        }
        wakes
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

    /// Posted tokens: the first post asks for a signal, later ones ride on
    /// it; a wait takes them without suspending; a signal taking them
    /// resumes a wait for one, and a post after a take asks anew.
    #[test]
    fn posted_tokens_are_taken_by_the_signal_or_the_next_wait() {
        let state = ParkState::new();
        assert!(state.post(WAKE), "the first post sends a signal");
        assert!(!state.post(UNPARK), "a signal is in flight already");
        // SAFETY: a test on one thread, which owns the word.
        unsafe {
            assert!(!state.begin_wait(UNPARK), "the posted unpark ends the park at once");
            assert!(!state.take_posted(), "the wait took the tokens: the signal finds none");
            assert!(!state.begin_wait(WAKE), "the posted wake was stored");
            assert!(state.begin_wait(UNPARK));
            assert!(state.post(UNPARK), "taken: the next post sends a signal again");
            assert!(state.take_posted(), "the signal resumes the park");
            assert!(state.begin_wait(UNPARK), "and hands the token over");
        }
    }
}

/// `RUSTFLAGS="--cfg loom" cargo test -p greenloop-runtime --release --lib
/// loom_model` (see README.md).
#[cfg(all(test, loom))]
mod loom_model;
