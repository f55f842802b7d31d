//! loom models of the remote path of a green thread's wake (`park_state.rs`,
//! `thread.rs`): a signal from another thread travels as a message holding
//! a count of the thread's block, and the owner applies it to the park word
//! as it drains its mailbox, or drops it if it has exited. The park word is
//! the real one; the mailbox is a stand-in with the same rule (a lock; a
//! push to a closed mailbox is dropped by the pusher), since its own model
//! lives in `reactor/remote/loom_model.rs`.

use std::cell::Cell;

use loom::sync::{Arc, Mutex};

use super::{ParkState, UNPARK, WAKE};
use crate::loom::model;

/// A green thread's block: its park word, reached through counted
/// references as the real `Control` is (the `Arc` stands for the count a
/// `Signal` holds).
struct Block {
    state: ParkState,
}

/// A signal in flight: a count of the block, and the token.
type Signal = (Arc<Block>, u8);

/// The owner's mailbox; `None` once the owner exited.
struct Mailbox(Mutex<Option<Vec<Signal>>>);

impl Mailbox {
    fn open() -> Arc<Mailbox> {
        Arc::new(Mailbox(Mutex::new(Some(Vec::new()))))
    }

    /// Another thread's `Control::signal`: queue, or drop if the owner is
    /// gone.
    fn push(&self, block: &Arc<Block>, token: u8) {
        let signal = (block.clone(), token);
        let mut queue = self.0.lock().unwrap();
        match queue.as_mut() {
            Some(queue) => queue.push(signal),
            None => {
                drop(queue);
                drop(signal);
            }
        }
    }

    /// The owner routes its mailbox: applies each signal to its block and
    /// counts the resumes it asks for (`Signal::apply`).
    fn drain(&self, resumes: &Cell<usize>) {
        let signals = match self.0.lock().unwrap().as_mut() {
            Some(queue) => std::mem::take(queue),
            None => Vec::new(),
        };
        for (block, token) in signals {
            // SAFETY: the model's owner thread is the one draining.
            if unsafe { block.state.signal(token) } {
                resumes.set(resumes.get() + 1);
            }
        }
    }

    /// The owner exits: drops what is queued and closes the mailbox.
    fn close(&self) {
        let queued = self.0.lock().unwrap().take();
        drop(queued);
    }
}

/// The owner's green thread waits for `tokens` until a drained signal
/// resumes it, draining as the loop does between turns; returns the
/// number of suspensions. Spins (with yields) while nothing came: a lost
/// signal hangs, which loom reports.
fn wait(block: &Block, mailbox: &Mailbox, tokens: u8) -> usize {
    let resumes = Cell::new(0);
    // SAFETY: the model's owner thread.
    if !unsafe { block.state.begin_wait(tokens) } {
        return 0;
    }
    while resumes.get() == 0 {
        mailbox.drain(&resumes);
        loom::thread::yield_now();
    }
    assert_eq!(resumes.get(), 1, "resumed twice for one suspension");
    1
}

/// A new thread block with no token, and the owner's open mailbox.
fn owner() -> (Arc<Block>, Arc<Mailbox>) {
    (Arc::new(Block { state: ParkState::new() }), Mailbox::open())
}

/// Another thread that signals `token` to the owner's thread `block`.
fn signaller(
    block: &Arc<Block>,
    mailbox: &Arc<Mailbox>,
    token: u8,
) -> loom::thread::JoinHandle<()> {
    let (block, mailbox) = (block.clone(), mailbox.clone());
    loom::thread::spawn(move || mailbox.push(&block, token))
}

/// An unpark from another thread, racing the park: the park suspends (a
/// remote token reaches the word only through the owner's drain) and the
/// drained unpark resumes it, exactly once; the signal's count goes back.
#[test]
fn loom_model_a_remote_unpark_is_not_lost() {
    model(|| {
        let (block, mailbox) = owner();
        let unparker = signaller(&block, &mailbox, UNPARK);
        assert_eq!(wait(&block, &mailbox, UNPARK), 1, "a token reached the word undrained");
        unparker.join().unwrap();
        mailbox.drain(&Cell::new(0));
        // SAFETY: the model's owner thread.
        assert!(unsafe { block.state.begin_wait(UNPARK) }, "the one unpark was used twice");
        assert_eq!(Arc::strong_count(&block), 1, "a signal kept its count");
    });
}

/// A wake arriving while the thread parks for an unpark does not end the
/// park and stays as a token for the next `block_on`; the unpark ends it.
#[test]
fn loom_model_a_wake_does_not_end_a_park() {
    model(|| {
        let (block, mailbox) = owner();
        let signallers = [WAKE, UNPARK].map(|token| signaller(&block, &mailbox, token));
        wait(&block, &mailbox, UNPARK);
        for signaller in signallers {
            signaller.join().unwrap();
        }
        mailbox.drain(&Cell::new(0));
        // SAFETY: the model's owner thread.
        unsafe {
            assert!(!block.state.begin_wait(WAKE), "the wake's token was lost");
            assert!(block.state.begin_wait(UNPARK), "the unpark ended the park and was kept");
        }
    });
}

/// The owner exits while a signal is in flight: the signal is dropped by
/// the owner's close or by the pusher, and its count goes back either way.
#[test]
fn loom_model_a_signal_to_an_exited_owner_is_dropped() {
    model(|| {
        let (block, mailbox) = owner();
        let unparker = signaller(&block, &mailbox, UNPARK);
        mailbox.close();
        unparker.join().unwrap();
        assert_eq!(Arc::strong_count(&block), 1, "a dropped signal kept its count");
    });
}
