//! loom models of the mailbox (`remote.rs`): pushes from two threads race
//! the owner's drain and the owner's exit (closing the mailbox). The real
//! push, drain and close code runs on loom's mutex and atomics
//! (`crate::loom`); only the `eventfd` write is a real syscall, which loom
//! does not see. Run with
//! `RUSTFLAGS="--cfg loom" cargo test -p greenloop-runtime --release --lib loom_model`.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};

use super::{Inject, Mailbox, Remote, Wake};
use crate::id::ReactorId;
use crate::loom::{Ordering, model};

/// How often the items of one execution ran and were freed.
#[derive(Default)]
struct Tally {
    ran: AtomicUsize,
    freed: AtomicUsize,
}

/// A queued closure that counts its run and its drop.
struct Item(Arc<Tally>);

impl Inject for Item {
    fn run(self: Arc<Self>) {
        self.0.ran.fetch_add(1, SeqCst);
    }
}

impl Drop for Item {
    fn drop(&mut self) {
        self.0.freed.fetch_add(1, SeqCst);
    }
}

/// A fresh mailbox owned by a fresh reactor id (its `Remote` has a real
/// eventfd, registered with a poll instance that `poll` keeps open).
fn owned_mailbox() -> (mio::Poll, Arc<Remote>, ReactorId) {
    let poll = mio::Poll::new().unwrap();
    let waker = mio::Waker::new(poll.registry(), mio::Token(0)).unwrap();
    let id = ReactorId::next();
    // Leaked, not pooled: loom's objects must not outlive the execution.
    let mailbox: &'static Mailbox = Box::leak(Box::new(Mailbox::new()));
    (poll, Remote::with_mailbox(mailbox, waker, id), id)
}

/// Two threads push one item each through the mailbox.
fn pushers(remote: &Arc<Remote>, tally: &Arc<Tally>) -> Vec<loom::thread::JoinHandle<()>> {
    (0..2)
        .map(|_| {
            let (mailbox, item) = (remote.mailbox(), Arc::new(Item(tally.clone())));
            loom::thread::spawn(move || mailbox.push(Wake::Run(item)))
        })
        .collect()
}

fn run_all(wakes: &mut Vec<Wake>) {
    for wake in wakes.drain(..) {
        if let Wake::Run(item) = wake {
            item.run();
        }
    }
}

/// No lost wake: whatever the owner's drain missed is still queued with
/// `notified` set, so the eventfd was written after that drain and the
/// owner's `epoll_wait` returns again. Every item runs exactly once, and
/// the two pushes cost at most one eventfd write per drain.
#[test]
fn loom_model_a_push_racing_the_drain_is_never_lost() {
    model(|| {
        let (_poll, remote, _) = owned_mailbox();
        let tally = Arc::new(Tally::default());
        let threads = pushers(&remote, &tally);

        let mut wakes = Vec::new();
        remote.drain_into(&mut wakes);
        run_all(&mut wakes);
        for thread in threads {
            thread.join().unwrap();
        }
        let missed = !remote.mailbox.lock().wakes.is_empty();
        if missed {
            assert!(remote.notified.load(Ordering::SeqCst), "items queued, owner not notified");
        }
        remote.drain_into(&mut wakes);
        run_all(&mut wakes);

        assert_eq!(tally.ran.load(SeqCst), 2, "an item was lost or ran twice");
        assert_eq!(tally.freed.load(SeqCst), 2);
        let writes = remote.wakes_sent();
        assert!((1..=2).contains(&writes), "{writes} eventfd writes for one drain");
        remote.mailbox.close();
    });
}

/// The owner exits (closes its mailbox) while two threads push: each item
/// either ran in the drain before the exit or was dropped, exactly once;
/// a push after the exit is dropped on the pushing thread; nothing keeps
/// the `Remote` alive afterwards (the pushers' clones and the mailbox's
/// own are gone).
#[test]
fn loom_model_a_push_racing_the_owners_exit_is_dropped_once() {
    model(|| {
        let (_poll, remote, _) = owned_mailbox();
        let tally = Arc::new(Tally::default());
        let threads = pushers(&remote, &tally);

        let mut wakes = Vec::new();
        remote.drain_into(&mut wakes);
        run_all(&mut wakes);
        remote.mailbox.close();
        for thread in threads {
            thread.join().unwrap();
        }
        assert!(tally.ran.load(SeqCst) <= 2);
        assert_eq!(tally.freed.load(SeqCst), 2, "an item leaked or was freed twice");

        remote.mailbox().push(Wake::Run(Arc::new(Item(tally.clone()))));
        assert_eq!(tally.freed.load(SeqCst), 3, "a push after the exit was kept");
        assert!(remote.mailbox.lock().wakes.is_empty());
        assert_eq!(Arc::strong_count(&remote), 1, "the Remote outlived its users");
    });
}
