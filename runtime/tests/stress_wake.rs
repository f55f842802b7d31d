//! Stress on the cross-thread wake paths: four OS threads hammer tasks of
//! one executor with wakes (the task state machine and the reactor's
//! mailbox) and green threads of one scheduler with unparks (the same
//! mailbox), racing every park and poll. Nothing may be
//! lost (every waiter finishes: a lost wake is a watchdog timeout) and a
//! burst of wakes must not queue a task twice (polls <= wakes + 1).
//!
//! Cross-thread channels are stressed by `sync_stress.rs`.

mod sync_util;

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering::SeqCst};
use std::sync::{Arc, Mutex, mpsc};
use std::task::{Context, Poll, Waker};
use std::thread;
use std::time::Duration;

use greenloop_runtime::sync::WaitGroup;
use greenloop_runtime::{green, task};
use sync_util::watchdog;

/// OS threads that wake.
const WAKERS: u64 = 4;
/// Waiters (tasks, or green threads) on the one runtime.
const WAITERS: usize = 64;
/// Each waker thread bumps each waiter this many times.
const ROUNDS: u64 = if cfg!(miri) { 5 } else { 1_000 };
const TARGET: u64 = WAKERS * ROUNDS;
const LIMIT: Duration = Duration::from_secs(120);

/// One waiter's counters and the waker it last left.
#[derive(Default)]
struct Slot {
    count: AtomicU64,
    waker: Mutex<Option<Waker>>,
    polls: AtomicU64,
    wakes: AtomicU64,
}

/// Completes once its slot's count reaches [`TARGET`].
struct UntilTarget(Arc<Slot>);

impl Future for UntilTarget {
    type Output = u64;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<u64> {
        let slot = &self.0;
        slot.polls.fetch_add(1, SeqCst);
        // Publish the waker, then check: a waker thread bumps, then reads
        // the waker, so one of the two sees the other.
        *slot.waker.lock().unwrap() = Some(cx.waker().clone());
        match slot.count.load(SeqCst) {
            TARGET => Poll::Ready(TARGET),
            _ => Poll::Pending,
        }
    }
}

/// Bumps every slot [`ROUNDS`] times, waking its waker in one of three ways
/// (by reference, a clone by value, the waker itself by value).
fn wake_all(slots: &[Arc<Slot>], seed: u64) {
    // Start once every waiter has been polled and left a waker (bounded
    // by the watchdog), so the wakes race with polls rather than precede them.
    while slots.iter().any(|slot| slot.polls.load(SeqCst) == 0) {
        thread::yield_now();
    }
    for round in 0..ROUNDS {
        for (i, slot) in slots.iter().enumerate() {
            slot.count.fetch_add(1, SeqCst);
            let waker = slot.waker.lock().unwrap().clone();
            if let Some(waker) = waker {
                slot.wakes.fetch_add(1, SeqCst);
                match (round + i as u64 + seed) % 3 {
                    0 => waker.wake_by_ref(),
                    1 => {
                        // Clone, wake the clone, then drop the original.
                        let clone = waker.clone();
                        clone.wake();
                        drop(waker);
                    }
                    _ => waker.wake(),
                }
            }
        }
    }
}

#[test]
fn tasks_woken_from_four_os_threads_lose_no_wake() {
    watchdog(LIMIT, || {
        let slots: Vec<Arc<Slot>> = (0..WAITERS).map(|_| Arc::default()).collect();
        let rt = task::Runtime::new().unwrap();
        let all_done = WaitGroup::new();
        all_done.add(WAITERS);
        let handles: Vec<_> = slots
            .iter()
            .map(|slot| {
                let (slot, done) = (slot.clone(), all_done.clone());
                rt.spawn(async move {
                    let n = UntilTarget(slot).await;
                    done.done();
                    n
                })
            })
            .collect();
        // Half the join handles are awaited here, half on the waker
        // threads' own executors (the join waker crosses threads too).
        let (local, remote): (Vec<_>, Vec<_>) =
            handles.into_iter().enumerate().partition(|(i, _)| i % 2 == 0);
        let mut remote: Vec<_> = remote.into_iter().map(|(_, h)| h).collect();
        let (joined_tx, joined_rx) = mpsc::channel();
        let wakers: Vec<_> = (0..WAKERS)
            .map(|seed| {
                let slots = slots.clone();
                let mine: Vec<_> =
                    remote.drain(..remote.len() / (WAKERS - seed) as usize).collect();
                let joined_tx = joined_tx.clone();
                thread::spawn(move || {
                    wake_all(&slots, seed);
                    let rt = task::Runtime::new().unwrap();
                    for handle in mine {
                        joined_tx.send(rt.block_on(handle).unwrap()).unwrap();
                    }
                })
            })
            .collect();
        drop(joined_tx);
        let outputs: Vec<u64> = rt.block_on(async {
            let mut outputs = Vec::new();
            for (_, handle) in local {
                outputs.push(handle.await.unwrap());
            }
            all_done.wait().await;
            outputs
        });
        wakers.into_iter().for_each(|w| w.join().unwrap());
        let remote_outputs: Vec<u64> = joined_rx.iter().collect();
        assert_eq!(outputs.len() + remote_outputs.len(), WAITERS);
        assert!(outputs.iter().chain(&remote_outputs).all(|&n| n == TARGET));
        assert_eq!(rt.live_tasks(), 0);
        let wakes: u64 = slots.iter().map(|slot| slot.wakes.load(SeqCst)).sum();
        let polls: u64 = slots.iter().map(|slot| slot.polls.load(SeqCst)).sum();
        println!("{wakes} wakes from {WAKERS} threads, {polls} polls");
        assert_eq!(wakes, TARGET * WAITERS as u64, "every bump found a waker to wake");
        for slot in &slots {
            let (polls, wakes) = (slot.polls.load(SeqCst), slot.wakes.load(SeqCst));
            assert_eq!(slot.count.load(SeqCst), TARGET);
            // A wake while queued or running does not queue it again.
            assert!(polls <= wakes + 1, "{polls} polls for {wakes} wakes");
        }
    });
}

#[test]
fn green_threads_unparked_from_four_os_threads_lose_no_wake() {
    watchdog(LIMIT, || {
        let slots: Vec<Arc<Slot>> = (0..WAITERS).map(|_| Arc::default()).collect();
        let (threads_tx, threads_rx) = mpsc::channel();
        let green_slots = slots.clone();
        let runtime = thread::spawn(move || {
            green::run(move || {
                let waiters: Vec<_> = green_slots
                    .into_iter()
                    .enumerate()
                    .map(|(i, slot)| {
                        let threads_tx = threads_tx.clone();
                        green::spawn(move || {
                            threads_tx.send((i, green::current())).unwrap();
                            let mut parks = 0u64;
                            while slot.count.load(SeqCst) < TARGET {
                                green::park();
                                parks += 1;
                            }
                            parks
                        })
                    })
                    .collect();
                waiters.into_iter().map(|w| w.join().unwrap()).collect::<Vec<u64>>()
            })
        });
        let mut threads: Vec<Option<green::Thread>> = vec![None; WAITERS];
        for _ in 0..WAITERS {
            let (i, thread) = threads_rx.recv_timeout(LIMIT).expect("green thread started");
            threads[i] = Some(thread);
        }
        let threads: Arc<Vec<green::Thread>> = Arc::new(threads.into_iter().flatten().collect());
        let unparkers: Vec<_> = (0..WAKERS)
            .map(|seed| {
                let (slots, threads) = (slots.clone(), threads.clone());
                thread::spawn(move || {
                    // Odd threads go backwards: the orders differ.
                    let mut order: Vec<usize> = (0..WAITERS).collect();
                    if seed % 2 == 1 {
                        order.reverse();
                    }
                    for _ in 0..ROUNDS {
                        for &i in &order {
                            slots[i].count.fetch_add(1, SeqCst);
                            threads[i].unpark();
                        }
                    }
                })
            })
            .collect();
        unparkers.into_iter().for_each(|u| u.join().unwrap());
        let parks = runtime.join().unwrap();
        assert_eq!(parks.len(), WAITERS);
        for (slot, parks) in slots.iter().zip(parks) {
            assert_eq!(slot.count.load(SeqCst), TARGET);
            // A park returns only on an unpark (or its token): no more
            // parks than unparks.
            assert!(parks <= TARGET, "{parks} parks for {TARGET} unparks");
        }
    });
}
