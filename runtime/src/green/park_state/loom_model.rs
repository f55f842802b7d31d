//! loom models of the remote path of a green thread's wake (`park_state.rs`,
//! `thread.rs`): other threads post tokens, the first post since the owner
//! took them sends a signal that holds a count of the thread's block, and
//! the owner takes the posted tokens at its waits and when it drains the
//! signal, or drops the signal if it has exited. The park state is the real
//! one; the mailbox is a stand-in with the same rule (a lock; a push to a
//! closed mailbox is dropped by the pusher), since its own model lives in
//! `reactor/remote/loom_model.rs`.

use std::cell::Cell;

use loom::sync::atomic::{AtomicUsize, Ordering};
use loom::sync::{Arc, Mutex};

use super::{ParkState, UNPARK, WAKE};
use crate::loom::model;

/// A green thread's block: its park state, reached through counted
/// references as the real `Control` is (the `Arc` stands for the count a
/// `Signal` holds).
struct Block {
    state: ParkState,
}

/// The owner's mailbox of signals; `None` once the owner exited.
struct Mailbox(Mutex<Option<Vec<Arc<Block>>>>);

impl Mailbox {
    /// Another thread's `Control::signal`: posts `token`, and queues a
    /// signal if it is the first post since the owner took them (dropped
    /// if the owner is gone).
    fn signal(&self, block: &Arc<Block>, token: u8) {
        if !block.state.post(token) {
            return;
        }
        let signal = block.clone();
        let mut queue = self.0.lock().unwrap();
        match queue.as_mut() {
            Some(queue) => queue.push(signal),
            None => {
                drop(queue);
                drop(signal);
            }
        }
    }

    /// The owner routes its mailbox: takes each signalled block's posted
    /// tokens and counts the resumes that asks for (`Signal::apply`).
    fn drain(&self, resumes: &Cell<usize>) {
        let signals = match self.0.lock().unwrap().as_mut() {
            Some(queue) => std::mem::take(queue),
            None => Vec::new(),
        };
        for block in signals {
            // SAFETY: the model's owner thread is the one draining.
            if unsafe { block.state.take_posted() } {
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

/// The owner's green thread waits for `tokens`, taking posted ones first,
/// until a drained signal resumes it (draining as the loop does between
/// turns); returns whether it suspended. Spins (with yields) while nothing
/// came: a lost token hangs, which loom reports.
fn wait(block: &Block, mailbox: &Mailbox, tokens: u8) -> bool {
    let resumes = Cell::new(0);
    // SAFETY: the model's owner thread, as the green thread.
    if !unsafe { block.state.begin_wait(tokens) } {
        return false;
    }
    while resumes.get() == 0 {
        mailbox.drain(&resumes);
        loom::thread::yield_now();
    }
    assert_eq!(resumes.get(), 1, "resumed twice for one suspension");
    true
}

/// A new thread block with no token, and the owner's open mailbox.
fn owner() -> (Arc<Block>, Arc<Mailbox>) {
    (Arc::new(Block { state: ParkState::new() }), Arc::new(Mailbox(Mutex::new(Some(Vec::new())))))
}

/// Another thread that signals `token` to the owner's thread `block`.
fn signaller(
    block: &Arc<Block>,
    mailbox: &Arc<Mailbox>,
    token: u8,
) -> loom::thread::JoinHandle<()> {
    let (block, mailbox) = (block.clone(), mailbox.clone());
    loom::thread::spawn(move || mailbox.signal(&block, token))
}

/// Drains what is left, then checks that no signal kept its count.
fn settle(block: &Arc<Block>, mailbox: &Mailbox) {
    mailbox.drain(&Cell::new(0));
    assert_eq!(Arc::strong_count(block), 1, "a signal kept its count");
}

/// An unpark from another thread, racing the park: taken by the park
/// (posted before it) or resuming it, exactly once; never lost.
#[test]
fn loom_model_a_remote_unpark_is_not_lost() {
    model(|| {
        let (block, mailbox) = owner();
        let unparker = signaller(&block, &mailbox, UNPARK);
        wait(&block, &mailbox, UNPARK);
        unparker.join().unwrap();
        settle(&block, &mailbox);
        // SAFETY: the model's owner thread.
        assert!(unsafe { block.state.begin_wait(UNPARK) }, "the one unpark was used twice");
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
        settle(&block, &mailbox);
        // SAFETY: the model's owner thread.
        unsafe {
            assert!(!block.state.begin_wait(WAKE), "the wake's token was lost");
            assert!(block.state.begin_wait(UNPARK), "the unpark ended the park and was kept");
        }
    });
}

/// Two parks, each unparked from another thread once the owner reached
/// it: the second post, after the owner took the first, must bring its
/// own signal (or be found by the wait) however the first was taken.
#[test]
fn loom_model_a_post_after_a_take_signals_again() {
    model(|| {
        let (block, mailbox) = owner();
        let parks = Arc::new(AtomicUsize::new(0));
        let unparker = {
            let (block, mailbox, parks) = (block.clone(), mailbox.clone(), parks.clone());
            loom::thread::spawn(move || {
                mailbox.signal(&block, UNPARK);
                while parks.load(Ordering::Acquire) == 0 {
                    loom::thread::yield_now();
                }
                mailbox.signal(&block, UNPARK);
            })
        };
        wait(&block, &mailbox, UNPARK);
        parks.store(1, Ordering::Release);
        wait(&block, &mailbox, UNPARK);
        unparker.join().unwrap();
        settle(&block, &mailbox);
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
