//! loom models of the mailbox (`remote.rs`) and of the owner's state word
//! (`remote/owner.rs`): a push and a notify from two threads race the
//! owner's sleep on the futex or in `epoll_wait`, its turns while it runs,
//! and its exit (closing the mailbox). The real push, notify, sleep,
//! resume, drain and close code runs on loom's mutex and atomics, and the
//! futex sleep on loom's model of a futex (`crate::loom::Futex`): a lost
//! wake leaves the owner asleep with nobody left to wake it, which loom
//! reports as a deadlock. The `eventfd` is real, which loom does not see:
//! the owner's `epoll_wait` is modelled by polling it without blocking
//! until it fires, yielding to loom in between. Run with
//! `RUSTFLAGS="--cfg loom" cargo test -p greenloop-runtime --release --lib loom_model`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::time::Duration;

use super::{Inject, Mailbox, Remote, Sleep, Wake};
use crate::id::ReactorId;
use crate::loom::model;

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
    (0..2).map(|_| pusher(remote, tally)).collect()
}

/// A thread that pushes one item through the mailbox.
fn pusher(remote: &Arc<Remote>, tally: &Arc<Tally>) -> loom::thread::JoinHandle<()> {
    let (mailbox, item) = (remote.mailbox(), Arc::new(Item(tally.clone())));
    loom::thread::spawn(move || mailbox.push(Wake::Run(item)))
}

/// A thread that sets `flag`, then notifies the owner, as a `block_on`'s
/// waker does from another thread.
fn notifier(remote: &Arc<Remote>, flag: &Arc<AtomicBool>) -> loom::thread::JoinHandle<()> {
    let (remote, flag) = (remote.clone(), flag.clone());
    loom::thread::spawn(move || {
        flag.store(true, SeqCst);
        remote.notify();
    })
}

fn run_all(wakes: &mut Vec<Wake>) {
    for wake in wakes.drain(..) {
        if let Wake::Run(item) = wake {
            item.run();
        }
    }
}

/// The owner's side of a turn after its wait: back to running, and the
/// mailbox drained and run if a notification came.
fn resume_and_drain(remote: &Remote) {
    if remote.resume() {
        let mut wakes = Vec::new();
        remote.drain_into(&mut wakes);
        run_all(&mut wakes);
    }
}

/// The owner's loop, sleeping in `how` whenever not notified, until `done`.
/// A sleep that nothing ends is a deadlock (futex) or a spin past loom's
/// branch limit (epoll): either fails the model.
fn owner_loop(poll: &mut mio::Poll, remote: &Remote, how: Sleep, done: impl Fn() -> bool) {
    let mut events = mio::Events::with_capacity(4);
    while !done() {
        if remote.sleep(how) {
            match how {
                Sleep::Futex => remote.wait(None).unwrap(),
                Sleep::Epoll => loop {
                    poll.poll(&mut events, Some(Duration::ZERO)).unwrap();
                    if !events.is_empty() {
                        break;
                    }
                    loom::thread::yield_now();
                },
            }
        }
        resume_and_drain(remote);
    }
}

/// No lost wake, in either sleep: a push and a notify race the owner's
/// decision to sleep, and the owner, looping until it has run the item and
/// seen the flag, never sleeps for good. The item runs exactly once; the
/// two wakers make at most two notifications, and a futex wake only for
/// one that found the owner asleep on it.
fn a_push_and_a_notify_racing_the_sleep_are_never_lost(how: Sleep) {
    model(move || {
        let (mut poll, remote, _) = owned_mailbox();
        let (tally, flag) = (Arc::new(Tally::default()), Arc::new(AtomicBool::new(false)));
        let threads = [pusher(&remote, &tally), notifier(&remote, &flag)];

        owner_loop(&mut poll, &remote, how, || tally.ran.load(SeqCst) == 1 && flag.load(SeqCst));
        for thread in threads {
            thread.join().unwrap();
        }
        resume_and_drain(&remote);

        assert_eq!(tally.ran.load(SeqCst), 1, "the item ran twice");
        assert_eq!(tally.freed.load(SeqCst), 1);
        let (notifications, futex_wakes) = (remote.wakes_sent(), remote.state.futex().wakes());
        assert!((1..=2).contains(&notifications), "{notifications} notifications for two wakers");
        if how == Sleep::Epoll {
            assert_eq!(futex_wakes, 0, "a futex wake for an owner in epoll_wait");
        }
        assert!(
            futex_wakes as u64 <= notifications,
            "{futex_wakes} futex wakes, {notifications} notifications"
        );
        remote.mailbox.close();
    });
}

#[test]
fn loom_model_a_push_and_a_notify_racing_a_futex_sleep_are_never_lost() {
    a_push_and_a_notify_racing_the_sleep_are_never_lost(Sleep::Futex);
}

#[test]
fn loom_model_a_push_and_a_notify_racing_an_epoll_sleep_are_never_lost() {
    a_push_and_a_notify_racing_the_sleep_are_never_lost(Sleep::Epoll);
}

/// Pushes while the owner runs (turns that do not sleep) cost no system
/// call: no futex wake, no eventfd write; every item still runs once,
/// some in the turns that raced the pushes, the rest in the turn after.
#[test]
fn loom_model_pushes_to_a_running_owner_make_no_system_call() {
    model(|| {
        let (mut poll, remote, _) = owned_mailbox();
        let tally = Arc::new(Tally::default());
        let threads = pushers(&remote, &tally);

        resume_and_drain(&remote);
        resume_and_drain(&remote);
        for thread in threads {
            thread.join().unwrap();
        }
        resume_and_drain(&remote);

        assert_eq!(tally.ran.load(SeqCst), 2, "an item was lost or ran twice");
        assert_eq!(remote.state.futex().wakes(), 0, "a futex wake for a running owner");
        let mut events = mio::Events::with_capacity(4);
        poll.poll(&mut events, Some(Duration::ZERO)).unwrap();
        assert!(events.is_empty(), "an eventfd write for a running owner");
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

        resume_and_drain(&remote);
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
