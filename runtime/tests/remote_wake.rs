//! Wakes from other OS threads go through the target thread's one mailbox
//! (`reactor/remote.rs`), whose rule is: a wake whose target is gone is
//! dropped, and counted (`reactor::dropped_wakes`). These tests send wakes
//! after the target's loop, or its whole thread, ended, and one to a task
//! runtime between two `block_on`s, whose wake must be kept.

use std::future::poll_fn;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Poll, Waker};
use std::time::Duration;

use greenloop_runtime::reactor::{Reactor, dropped_wakes};
use greenloop_runtime::{green, task};

mod watchdog;

const LIMIT: Duration = Duration::from_secs(30);

/// Runs a test under the watchdog, one test at a time: `dropped_wakes` is
/// process-wide, and each test here counts the drops it causes exactly.
fn watchdog<R: Send + 'static>(f: impl FnOnce() -> R + Send + 'static) -> R {
    static SERIAL: Mutex<()> = Mutex::new(());
    let _serial = SERIAL.lock().unwrap_or_else(PoisonError::into_inner);
    watchdog::watchdog(LIMIT, f)
}

/// Runs a green runtime whose one spawned green thread is parked when the
/// runtime returns; gives back that thread's handle.
fn parked_green_thread_of_an_ended_loop() -> green::Thread {
    greenloop_runtime::run(|| {
        let handle = green::spawn(green::park);
        green::yield_now(); // let it start and park
        handle.thread()
    })
}

/// The loop that ran the green thread is gone but its OS thread lives: the
/// wake reaches the thread's mailbox, and the next loop there drops it
/// instead of running a stale slot.
#[test]
fn a_wake_after_its_loop_ended_is_dropped_by_the_next_loop() {
    watchdog(|| {
        let thread = parked_green_thread_of_an_ended_loop();
        let remote = Reactor::current().remote().clone();
        let (sent, dropped) = (remote.wakes_sent(), dropped_wakes());
        std::thread::spawn(move || thread.unpark()).join().unwrap();
        assert_eq!(remote.wakes_sent(), sent + 1, "the wake did not reach the mailbox");

        // The next loop turns the reactor (the sleep) and routes the wake.
        let ran = greenloop_runtime::run(|| {
            green::sleep(Duration::from_millis(1));
            7
        });
        assert_eq!(ran, 7);
        assert_eq!(dropped_wakes(), dropped + 1, "the stale wake was not dropped");
    });
}

/// The green thread's OS thread has exited: the wake is dropped on the
/// waking thread, which neither panics nor writes a closed eventfd.
#[test]
fn a_wake_after_its_thread_exited_is_dropped_by_the_waker() {
    watchdog(|| {
        let (thread, remote) = std::thread::spawn(|| {
            (parked_green_thread_of_an_ended_loop(), Reactor::current().remote().clone())
        })
        .join()
        .unwrap();
        let (sent, dropped) = (remote.wakes_sent(), dropped_wakes());
        thread.unpark();
        assert_eq!(dropped_wakes(), dropped + 1, "the wake for an exited thread was kept");
        assert_eq!(remote.wakes_sent(), sent, "a closed mailbox wrote the eventfd");
    });
}

/// A task runtime between two `block_on`s runs no loop, but its executor
/// lives: a task woken from another thread then is kept and runs in the
/// next `block_on`.
#[test]
fn a_task_woken_between_two_block_ons_runs_in_the_next() {
    watchdog(|| {
        let rt = task::Runtime::new().unwrap();
        let ready = Arc::new(AtomicBool::new(false));
        let (waker_tx, waker_rx) = std::sync::mpsc::channel::<Waker>();
        let handle = rt
            .block_on({
                let ready = ready.clone();
                async move {
                    let handle = task::spawn_local(poll_fn(move |cx| {
                        if ready.load(Ordering::Acquire) {
                            return Poll::Ready(11);
                        }
                        let _ = waker_tx.send(cx.waker().clone());
                        Poll::Pending
                    }));
                    task::yield_now().await; // the task polls once, pending
                    Some(handle) // not bare: a returned future reads as a missing `.await`
                }
            })
            .unwrap();
        let waker = waker_rx.recv().unwrap();
        let dropped = dropped_wakes();
        std::thread::spawn(move || {
            ready.store(true, Ordering::Release);
            waker.wake();
        })
        .join()
        .unwrap();
        assert_eq!(rt.block_on(handle).unwrap(), 11);
        assert_eq!(dropped_wakes(), dropped, "the kept task's wake was dropped");
    });
}

/// A task runtime dropped with a task woken from another thread and not yet
/// run: the task is cancelled, and the wake queued for it is dropped.
#[test]
fn a_task_woken_as_its_runtime_shuts_down_is_dropped() {
    watchdog(|| {
        let rt = task::Runtime::new().unwrap();
        let (waker_tx, waker_rx) = std::sync::mpsc::channel::<Waker>();
        let handle = rt
            .block_on(async move {
                let handle = task::spawn_local(poll_fn(move |cx| {
                    let _ = waker_tx.send(cx.waker().clone());
                    Poll::<()>::Pending
                }));
                task::yield_now().await;
                Some(handle)
            })
            .unwrap();
        let waker = waker_rx.recv().unwrap();
        let dropped = dropped_wakes();
        std::thread::spawn(move || waker.wake()).join().unwrap();
        drop(rt);
        // The wake sat in the mailbox; the next loop here routes it.
        greenloop_runtime::run(|| green::sleep(Duration::from_millis(1)));
        assert_eq!(dropped_wakes(), dropped + 1, "the shut-down task's wake was not dropped");
        assert!(greenloop_runtime::block_on(handle).unwrap_err().is_cancelled());
    });
}

/// A closure and a green thread's wake sent in one burst share a drain of
/// the mailbox: one eventfd write; the closure runs in the turn, and the
/// wake is routed to the green thread.
#[test]
fn a_closure_and_a_wake_in_one_burst_are_both_delivered() {
    use greenloop_runtime::shard::Shard;
    watchdog(|| {
        greenloop_runtime::run(|| {
            let ran = Arc::new(AtomicBool::new(false));
            let parked = green::spawn(green::park);
            green::yield_now(); // it starts and parks
            let (shard, thread) = (Shard::current().unwrap(), parked.thread());
            let remote = Reactor::current().remote().clone();
            let sent = remote.wakes_sent();
            // This OS thread waits meanwhile: no drain between the two.
            std::thread::spawn({
                let ran = ran.clone();
                move || {
                    drop(shard.spawn(move || ran.store(true, Ordering::Release)));
                    thread.unpark();
                }
            })
            .join()
            .unwrap();
            assert_eq!(remote.wakes_sent() - sent, 1, "one burst, one eventfd write");
            parked.join().unwrap();
            assert!(ran.load(Ordering::Acquire), "the closure did not run");
        });
    });
}

/// A wake for a green thread of an outer loop, arriving while an inner
/// loop (`task::Runtime::block_on` inside a green thread) runs on the same
/// OS thread, is routed by the inner loop to the outer loop's run queue,
/// not dropped.
#[test]
fn a_wake_for_an_outer_loop_is_routed_by_the_inner_one() {
    watchdog(|| {
        let dropped = dropped_wakes();
        greenloop_runtime::run(|| {
            let parked = green::spawn(green::park);
            green::yield_now(); // it starts and parks
            let thread = parked.thread();
            let unparked = Arc::new(AtomicBool::new(false));
            let inner = task::Runtime::new().unwrap();
            let waker = std::thread::spawn({
                let unparked = unparked.clone();
                move || {
                    thread.unpark();
                    unparked.store(true, Ordering::Release);
                }
            });
            inner.block_on(async {
                while !unparked.load(Ordering::Acquire) {
                    task::yield_now().await;
                }
                // The wake is in the mailbox: this sleep's reactor turn
                // drains and routes it, inside the inner loop.
                greenloop_runtime::time::sleep(Duration::from_millis(1)).await;
            });
            waker.join().unwrap();
            assert_eq!(dropped_wakes(), dropped, "the inner loop dropped the outer's wake");
            drop(inner);
            parked.join().unwrap();
        });
    });
}

/// A wake from another thread for a green thread that finishes before its
/// loop routes the wake lands on that finished thread: it is neither
/// dropped nor passed on to the thread spawned after it (which may take
/// the finished one's slot), which stays parked.
#[test]
fn a_wake_for_a_thread_that_finished_meanwhile_wakes_no_other() {
    watchdog(|| {
        let dropped = dropped_wakes();
        greenloop_runtime::run(|| {
            let first = green::spawn(green::park);
            green::yield_now(); // it starts and parks
            let thread = first.thread();
            // Queued in this loop's mailbox, not yet routed: this OS thread
            // is busy in the join below until `first` finished.
            std::thread::spawn({
                let thread = thread.clone();
                move || thread.unpark()
            })
            .join()
            .unwrap();
            thread.unpark(); // on this thread: `first` runs now
            first.join().unwrap();

            let woken = Arc::new(AtomicBool::new(false));
            let second = green::spawn({
                let woken = woken.clone();
                move || {
                    green::park();
                    woken.store(true, Ordering::Release);
                }
            });
            green::yield_now(); // it starts and parks
            // This sleep's reactor turn routes the queued wake.
            green::sleep(Duration::from_millis(1));
            assert!(!woken.load(Ordering::Acquire), "the finished thread's wake woke another");
            second.thread().unpark();
            second.join().unwrap();
            assert!(woken.load(Ordering::Acquire));
        });
        assert_eq!(dropped_wakes(), dropped, "the wake for a live loop was dropped");
    });
}

/// Round trips that each cross threads: a green thread parks until the
/// helper OS thread rings its round, and the helper rings a round only
/// once the green thread armed it, so the unparks mostly find the loop
/// asleep. Returns the rounds completed.
fn ring_rounds(rounds: u64) -> u64 {
    let (armed, rung) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let me = green::current();
    let helper = std::thread::spawn({
        let (armed, rung) = (armed.clone(), rung.clone());
        move || {
            for round in 1..=rounds {
                while armed.load(Ordering::Acquire) < round {
                    std::thread::yield_now();
                }
                rung.store(round, Ordering::Release);
                me.unpark();
            }
        }
    });
    let mut completed = 0;
    for round in 1..=rounds {
        armed.store(round, Ordering::Release);
        while rung.load(Ordering::Acquire) < round {
            green::park();
        }
        completed += 1;
    }
    helper.join().unwrap();
    completed
}

/// Wakes from another OS thread end both sleeps of a loop: the futex it
/// sleeps on while no I/O is registered, and `epoll_wait` while a socket
/// is. A lost wake leaves the green thread parked, and the watchdog fails
/// the test.
#[test]
fn remote_wakes_end_the_futex_sleep_and_the_epoll_sleep() {
    const ROUNDS: u64 = 2_000;
    watchdog(|| {
        let remote = Reactor::current().remote().clone();
        let sent = remote.wakes_sent();
        let futex_rounds = greenloop_runtime::run(|| ring_rounds(ROUNDS));
        assert_eq!(futex_rounds, ROUNDS);

        let epoll_rounds = greenloop_runtime::run(|| {
            let reactor = Reactor::current();
            let (mut socket, _peer) = mio::net::UnixStream::pair().unwrap();
            let key = reactor.register(&mut socket).unwrap();
            assert_eq!(reactor.io_count(), 1);
            let completed = ring_rounds(ROUNDS);
            reactor.deregister(key, &mut socket).unwrap();
            completed
        });
        assert_eq!(epoll_rounds, ROUNDS);
        assert!(remote.wakes_sent() > sent, "no wake from the helper reached the mailbox");
    });
}
