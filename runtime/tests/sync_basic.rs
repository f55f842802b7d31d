//! Semantics of each `sync` primitive, and every primitive used across the
//! three contexts (green threads, stackless tasks, OS threads).

mod sync_util;

use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use greenloop_runtime::sync::{
    Mutex, Notify, Semaphore, TryAcquireError, TryRecvError, TrySendError, WaitGroup, mpsc,
    oneshot, select, select_blocking,
};
use greenloop_runtime::{block_on, green, task, time};
use sync_util::{Ctx, Start, poll_once, run_in, start, watchdog};

const LIMIT: Duration = Duration::from_secs(60);
const CTXS: [Ctx; 3] = [Ctx::Green, Ctx::Task, Ctx::Thread];

#[test]
fn send_on_closed_channel_returns_the_value() {
    watchdog(LIMIT, || {
        let (tx, rx) = mpsc::channel::<String>(2);
        drop(rx);
        assert!(tx.is_closed());
        assert_eq!(block_on(tx.send("a".into())).unwrap_err().0, "a");
        assert_eq!(tx.send_blocking("b".into()).unwrap_err().0, "b");
        match tx.try_send("c".into()) {
            Err(TrySendError::Closed(v)) => assert_eq!(v, "c"),
            other => panic!("expected Closed, got {other:?}"),
        }
        let (utx, urx) = mpsc::unbounded_channel::<u8>();
        drop(urx);
        assert_eq!(utx.send(7).unwrap_err().0, 7);
    });
}

#[test]
fn close_keeps_queued_messages_then_ends() {
    watchdog(LIMIT, || {
        let (tx, mut rx) = mpsc::channel(4);
        tx.try_send(1).unwrap();
        tx.try_send(2).unwrap();
        rx.close();
        assert!(tx.try_send(3).unwrap_err().is_closed());
        assert_eq!(rx.recv_blocking(), Some(1));
        assert_eq!(rx.try_recv(), Ok(2));
        assert_eq!(rx.recv_blocking(), None, "closed and drained, although a sender lives");
        assert_eq!(rx.try_recv(), Err(TryRecvError::Closed));
    });
}

#[test]
fn recv_on_closed_and_empty_returns_none() {
    watchdog(LIMIT, || {
        let (tx, mut rx) = mpsc::channel(4);
        let tx2 = tx.clone();
        tx.try_send(1).unwrap();
        assert_eq!(rx.try_recv(), Ok(1));
        assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
        drop(tx);
        tx2.try_send(2).unwrap();
        drop(tx2);
        assert_eq!(rx.recv_blocking(), Some(2));
        assert_eq!(rx.recv_blocking(), None);
        assert_eq!(rx.try_recv(), Err(TryRecvError::Closed));
    });
}

#[test]
fn waiting_receiver_wakes_when_last_sender_drops() {
    watchdog(LIMIT, || {
        for ctx in CTXS {
            let (tx, mut rx) = mpsc::channel::<u8>(1);
            let op = start(ctx, "recv", async move { rx.recv().await });
            assert_eq!(op.started(), Start::Waiting);
            drop(tx);
            assert_eq!(op.value(), None);
        }
    });
}

#[test]
fn bounded_senders_wait_in_fifo_order() {
    watchdog(LIMIT, || {
        let (tx, mut rx) = mpsc::channel(1);
        tx.try_send(0).unwrap();
        assert!(tx.try_send(99).unwrap_err().is_full());
        let ops: Vec<_> = (1..=6)
            .map(|i| {
                let tx = tx.clone();
                let op =
                    start(
                        CTXS[i % 3],
                        format!("send {i}"),
                        async move { tx.send(i).await.is_ok() },
                    );
                assert_eq!(op.started(), Start::Waiting, "the channel is full");
                op
            })
            .collect();
        assert!(tx.try_send(99).unwrap_err().is_full(), "no barging past waiting senders");
        let received: Vec<_> = (0..=6).map(|_| rx.recv_blocking().unwrap()).collect();
        assert_eq!(received, [0, 1, 2, 3, 4, 5, 6]);
        assert!(ops.iter().all(|op| op.value()));
    });
}

#[test]
fn dropped_send_passes_its_slot_on() {
    watchdog(LIMIT, || {
        let (tx, mut rx) = mpsc::channel(1);
        tx.try_send(0).unwrap();
        let mut a = tx.send(1);
        let mut b = tx.send(2);
        assert!(poll_once(&mut a).is_pending());
        assert!(poll_once(&mut b).is_pending());
        assert_eq!(rx.try_recv(), Ok(0)); // the free slot goes to `a`...
        drop(a); // ...which gives it to `b`
        assert!(matches!(poll_once(&mut b), Poll::Ready(Ok(()))));
        assert_eq!(rx.try_recv(), Ok(2));
        assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
    });
}

#[test]
fn dropped_recv_does_not_keep_a_handoff_open() {
    watchdog(LIMIT, || {
        let (tx, mut rx) = mpsc::channel(1);
        {
            let mut recv = rx.recv();
            assert!(poll_once(&mut recv).is_pending());
        }
        tx.try_send(1).unwrap();
        assert!(tx.try_send(2).unwrap_err().is_full(), "capacity 1 holds one message");
        assert_eq!(rx.try_recv(), Ok(1));
    });
}

#[test]
fn permits_reserve_slots() {
    watchdog(LIMIT, || {
        let (tx, mut rx) = mpsc::channel(2);
        let p1 = tx.try_reserve().unwrap();
        let p2 = block_on(tx.reserve()).unwrap();
        assert!(tx.try_reserve().unwrap_err().is_full());
        assert_eq!(tx.capacity(), 0);
        drop(p1);
        assert_eq!(tx.capacity(), 1);
        p2.send("x").unwrap();
        rx.close();
        assert!(tx.try_reserve().unwrap_err().is_closed());
        assert_eq!(rx.recv_blocking(), Some("x"));
        let p3 = {
            let (tx, rx) = mpsc::channel(1);
            let permit = tx.try_reserve().unwrap();
            drop(rx);
            permit.send(5).unwrap_err().0
        };
        assert_eq!(p3, 5);
    });
}

#[test]
fn channels_work_between_every_pair_of_contexts() {
    watchdog(LIMIT, || {
        for from in CTXS {
            for to in CTXS {
                let (tx, mut rx) = mpsc::channel::<u64>(3);
                let count = 2_000u64;
                let senders: Vec<_> = (0..2)
                    .map(|k| {
                        let tx = tx.clone();
                        start(from, format!("producer {k}"), async move {
                            for i in 0..count {
                                tx.send(k * count + i).await.unwrap();
                            }
                        })
                    })
                    .collect();
                drop(tx);
                let consumer = start(to, "consumer", async move {
                    let mut seen = Vec::new();
                    while let Some(v) = rx.recv().await {
                        seen.push(v);
                    }
                    seen
                });
                let seen = consumer.value();
                for s in &senders {
                    s.value();
                }
                assert_eq!(seen.len() as u64, 2 * count, "{from:?} -> {to:?}");
                for k in 0..2 {
                    let mine: Vec<_> = seen.iter().filter(|v| **v / count == k).copied().collect();
                    let expected: Vec<_> = (k * count..(k + 1) * count).collect();
                    assert_eq!(mine, expected, "per-producer order, {from:?} -> {to:?}");
                }
            }
        }
    });
}

#[test]
fn green_sender_and_stackless_receiver_on_two_os_threads() {
    watchdog(LIMIT, || {
        let (tx, mut rx) = mpsc::channel(8);
        let producer = std::thread::spawn(move || {
            green::run(|| {
                let workers: Vec<_> = (0..4u64)
                    .map(|k| {
                        let tx = tx.clone();
                        green::spawn(move || {
                            for i in 0..5_000 {
                                tx.send_blocking(k * 10_000 + i).unwrap();
                            }
                        })
                    })
                    .collect();
                workers.into_iter().for_each(|w| w.join().unwrap());
            })
        });
        let rt = task::Runtime::new().unwrap();
        let total = rt.block_on(async move {
            let mut n = 0;
            while rx.recv().await.is_some() {
                n += 1;
            }
            n
        });
        producer.join().unwrap();
        assert_eq!(total, 20_000);
    });
}

#[test]
fn semaphore_semantics() {
    watchdog(LIMIT, || {
        let sem = Arc::new(Semaphore::new(3));
        let two = sem.try_acquire_many(2).unwrap();
        assert_eq!(sem.available_permits(), 1);
        assert_eq!(sem.try_acquire_many(2).unwrap_err(), TryAcquireError::NoPermits);
        let mut big = sem.acquire_many(3);
        assert!(poll_once(&mut big).is_pending());
        // FIFO: a waiter for 3 holds back a later waiter for 1, and try_acquire.
        let mut small = sem.acquire();
        assert!(poll_once(&mut small).is_pending());
        assert_eq!(sem.try_acquire().unwrap_err(), TryAcquireError::NoPermits);
        drop(two);
        let big_permit = match poll_once(&mut big) {
            Poll::Ready(Ok(p)) => p,
            other => panic!("the head waiter gets 3 permits: {other:?}"),
        };
        assert_eq!(big_permit.num_permits(), 3);
        assert!(poll_once(&mut small).is_pending());
        big_permit.forget();
        assert_eq!(sem.available_permits(), 0);
        sem.add_permits(1);
        assert!(matches!(poll_once(&mut small), Poll::Ready(Ok(_))));
        drop(small);
        drop(big);
        assert_eq!(sem.available_permits(), 1);
        let owned = sem.clone().try_acquire_many_owned(1).unwrap();
        assert_eq!(owned.num_permits(), 1);
        let mut waiting = sem.clone().acquire_owned();
        assert!(poll_once(&mut waiting).is_pending());
        sem.close();
        assert!(matches!(poll_once(&mut waiting), Poll::Ready(Err(_))));
        assert_eq!(sem.try_acquire().unwrap_err(), TryAcquireError::Closed);
        assert!(sem.acquire_blocking().is_err());
        drop(owned);
        assert_eq!(sem.available_permits(), 1, "permits held at close still return");
    });
}

#[test]
fn cancelled_head_waiter_lets_the_next_fit() {
    watchdog(LIMIT, || {
        let sem = Semaphore::new(2);
        let held = sem.try_acquire_many(2).unwrap();
        let mut three = sem.acquire_many(3);
        let mut one = sem.acquire();
        assert!(poll_once(&mut three).is_pending());
        assert!(poll_once(&mut one).is_pending());
        drop(held);
        assert!(poll_once(&mut one).is_pending(), "FIFO: behind the waiter for 3");
        drop(three);
        assert!(matches!(poll_once(&mut one), Poll::Ready(Ok(_))));
    });
}

#[test]
fn dropped_acquire_passes_handed_permits_on() {
    watchdog(LIMIT, || {
        let sem = Semaphore::new(1);
        let held = sem.try_acquire().unwrap();
        let mut a = sem.acquire();
        let mut b = sem.acquire();
        assert!(poll_once(&mut a).is_pending());
        assert!(poll_once(&mut b).is_pending());
        drop(held); // handed to `a`
        assert_eq!(sem.available_permits(), 0);
        drop(a); // passed on to `b`
        assert!(matches!(poll_once(&mut b), Poll::Ready(Ok(_))));
        drop(b);
        assert_eq!(sem.available_permits(), 1);
    });
}

#[test]
fn mutex_hands_the_lock_over_in_fifo_order() {
    watchdog(LIMIT, || {
        let mutex = Arc::new(Mutex::new(Vec::new()));
        let guard = mutex.try_lock().unwrap();
        assert!(mutex.try_lock().is_err());
        let ops: Vec<_> = (0..9)
            .map(|i| {
                let mutex = mutex.clone();
                let op = start(CTXS[i % 3], format!("lock {i}"), async move {
                    mutex.lock().await.push(i);
                });
                assert_eq!(op.started(), Start::Waiting);
                op
            })
            .collect();
        drop(guard);
        ops.iter().for_each(|op| op.value());
        assert_eq!(*mutex.lock_blocking(), (0..9).collect::<Vec<_>>());
    });
}

#[test]
fn mutex_unlock_does_not_let_the_unlocker_barge() {
    watchdog(LIMIT, || {
        let mutex = Mutex::new(0);
        let guard = mutex.try_lock().unwrap();
        let mut waiter = mutex.lock();
        assert!(poll_once(&mut waiter).is_pending());
        drop(guard);
        assert!(mutex.try_lock().is_err(), "handed to the waiter, not back to the pool");
        let mut got = match poll_once(&mut waiter) {
            Poll::Ready(g) => g,
            Poll::Pending => panic!("the waiter owns the lock"),
        };
        *got += 1;
        drop(got);
        assert_eq!(*mutex.try_lock().unwrap(), 1);
        let mut m = Mutex::new(5);
        *m.get_mut() += 1;
        assert_eq!(m.into_inner(), 6);
    });
}

#[test]
fn owned_guards_move_across_threads() {
    watchdog(LIMIT, || {
        let mutex = Arc::new(Mutex::new(1u32));
        let guard = mutex.clone().lock_owned_blocking();
        let mutex2 = mutex.clone();
        let waiter = std::thread::spawn(move || *mutex2.lock_blocking());
        std::thread::spawn(move || {
            let mut guard = guard;
            *guard = 2;
        })
        .join()
        .unwrap();
        assert_eq!(waiter.join().unwrap(), 2);
    });
}

#[test]
fn notify_one_stores_one_permit() {
    watchdog(LIMIT, || {
        let notify = Notify::new();
        notify.notify_one();
        notify.notify_one();
        let mut first = notify.notified();
        assert!(poll_once(&mut first).is_ready(), "the stored permit");
        let mut second = notify.notified();
        assert!(poll_once(&mut second).is_pending(), "permits do not accumulate");
        notify.notify_one();
        assert!(poll_once(&mut second).is_ready());
    });
}

#[test]
fn notify_waiters_wakes_all_current_waiters_and_stores_nothing() {
    watchdog(LIMIT, || {
        let notify = Arc::new(Notify::new());
        let ops: Vec<_> = CTXS
            .iter()
            .map(|&ctx| {
                let notify = notify.clone();
                let op = start(ctx, "notified", async move { notify.notified().await });
                assert_eq!(op.started(), Start::Waiting);
                op
            })
            .collect();
        let created_before = notify.notified();
        notify.notify_waiters();
        ops.iter().for_each(|op| op.value());
        let mut created_before = created_before;
        assert!(poll_once(&mut created_before).is_ready(), "created before notify_waiters");
        let mut after = notify.notified();
        assert!(poll_once(&mut after).is_pending(), "nothing stored");
    });
}

#[test]
fn dropped_notified_passes_its_notification_on() {
    watchdog(LIMIT, || {
        let notify = Notify::new();
        let mut a = notify.notified();
        let mut b = notify.notified();
        assert!(poll_once(&mut a).is_pending());
        assert!(poll_once(&mut b).is_pending());
        notify.notify_one(); // chooses `a`
        drop(a); // passes it to `b`
        assert!(poll_once(&mut b).is_ready());
        let c = notify.notified();
        let mut c = c;
        assert!(poll_once(&mut c).is_pending());
        drop(c);
        notify.notify_one();
        let mut d = notify.notified();
        assert!(poll_once(&mut d).is_ready(), "stored while nobody waits");
    });
}

#[test]
fn wait_group_waits_for_every_context() {
    watchdog(LIMIT, || {
        let wg = WaitGroup::new();
        wg.wait_blocking(); // count 0: at once
        let done = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        wg.add(9);
        for i in 0..9 {
            let (wg, done) = (wg.clone(), done.clone());
            run_in(CTXS[i % 3], async move {
                time::sleep(Duration::from_millis(1 + i as u64)).await;
                done.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                wg.done();
            });
        }
        let waiters: Vec<_> = CTXS
            .iter()
            .map(|&ctx| {
                let wg = wg.clone();
                start(ctx, "wait", async move { wg.wait().await })
            })
            .collect();
        wg.wait_blocking();
        assert_eq!(done.load(std::sync::atomic::Ordering::SeqCst), 9);
        waiters.iter().for_each(|w| w.value());
        assert_eq!(wg.count(), 0);
    });
}

#[test]
#[should_panic(expected = "more times than add")]
fn wait_group_done_below_zero_panics() {
    watchdog(LIMIT, || {
        WaitGroup::new().done();
    });
}

#[test]
fn oneshot_semantics() {
    watchdog(LIMIT, || {
        let (tx, mut rx) = oneshot::channel::<u8>();
        assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
        assert!(!tx.is_closed());
        tx.send(1).unwrap();
        assert_eq!(rx.try_recv(), Ok(1));
        assert_eq!(rx.try_recv(), Err(TryRecvError::Closed));

        let (tx, rx) = oneshot::channel::<u8>();
        drop(tx);
        assert!(rx.recv_blocking().is_err());

        let (tx, rx) = oneshot::channel::<u8>();
        drop(rx);
        assert!(tx.is_closed());
        assert_eq!(tx.send(3), Err(3));

        let (tx, mut rx) = oneshot::channel::<u8>();
        rx.close();
        assert_eq!(tx.send(4), Err(4));
    });
}

#[test]
fn oneshot_across_contexts() {
    watchdog(LIMIT, || {
        for from in CTXS {
            for to in CTXS {
                let (tx, rx) = oneshot::channel::<(Ctx, Ctx)>();
                let op = start(to, "oneshot recv", async move { rx.await.ok() });
                run_in(from, async move {
                    time::sleep(Duration::from_millis(1)).await;
                    tx.send((from, to)).unwrap();
                });
                assert_eq!(op.value(), Some((from, to)));
            }
        }
    });
}

#[test]
fn select_takes_the_first_ready_receiver() {
    watchdog(LIMIT, || {
        let (tx_a, rx_a) = mpsc::unbounded_channel::<&str>();
        let (tx_b, rx_b) = mpsc::channel::<&str>(1);
        let mut rxs = [rx_a, rx_b];
        tx_b.try_send("b").unwrap();
        assert_eq!(select_blocking(&mut rxs), (1, Some("b")));
        let timed_out = time::block_on_timeout(Duration::from_millis(5), select(&mut rxs));
        assert!(timed_out.is_err());
        // After the timeout dropped the select, nothing is handed to it.
        tx_b.try_send("b2").unwrap();
        assert!(tx_b.try_send("b3").unwrap_err().is_full());
        assert_eq!(select_blocking(&mut rxs), (1, Some("b2")));
        // A send wakes a select waiting on another OS thread.
        let (back_tx, back_rx) = std::sync::mpsc::channel();
        let waiting = start(Ctx::Thread, "select", async move {
            let got = select(&mut rxs).await;
            back_tx.send(rxs).unwrap();
            got
        });
        assert_eq!(waiting.started(), Start::Waiting);
        tx_a.send("a").unwrap();
        drop(tx_a);
        assert_eq!(waiting.value(), (0, Some("a")));
        let mut rxs = back_rx.recv().unwrap();
        assert_eq!(select_blocking(&mut rxs), (0, None), "closed and drained");
        drop(tx_b);
        assert_eq!(select_blocking(&mut rxs[1..]), (0, None));
    });
}

#[test]
fn select_in_green_threads_and_tasks() {
    watchdog(LIMIT, || {
        for ctx in [Ctx::Green, Ctx::Task] {
            let (txs, rxs): (Vec<_>, Vec<_>) = (0..4).map(|_| mpsc::channel::<usize>(2)).unzip();
            let op = start(ctx, "select loop", async move {
                let mut rxs = rxs;
                let mut ids: Vec<usize> = (0..4).collect();
                let mut total = 0;
                while !rxs.is_empty() {
                    let (i, msg) = select(&mut rxs).await;
                    match msg {
                        Some(v) => {
                            assert_eq!(v, ids[i]);
                            total += 1;
                        }
                        None => {
                            drop(rxs.remove(i));
                            ids.remove(i);
                        }
                    }
                }
                total
            });
            for (i, tx) in txs.into_iter().enumerate() {
                run_in(CTXS[i % 3], async move {
                    for _ in 0..100 {
                        tx.send(i).await.unwrap();
                    }
                });
            }
            assert_eq!(op.value(), 400);
        }
    });
}

#[test]
fn displaced_waker_is_dropped_outside_the_lock() {
    // A finished green thread whose join handle was dropped keeps its result
    // until the last reference to it goes, which here is its waker, left
    // registered in the channel; the result holds a sender of that channel.
    // Registering another waker displaces (drops) that reference, dropping
    // the sender, which locks the channel: that must happen after the
    // channel's lock is released, or this hangs.
    watchdog(LIMIT, || {
        let (tx, rx) = mpsc::channel::<u8>(1);
        let (back_tx, back_rx) = std::sync::mpsc::channel();
        green::run(move || {
            let handle = green::spawn(move || {
                let mut rx = rx;
                assert_eq!(block_on(sync_util::poll_once_then_drop(rx.recv())), None);
                back_tx.send(rx).unwrap();
                tx
            });
            drop(handle);
            green::yield_now();
            green::yield_now();
        });
        let mut rx = back_rx.recv().unwrap();
        let mut recv = rx.recv();
        let _ = poll_once(&mut recv);
        drop(recv);
        assert_eq!(rx.recv_blocking(), None, "the green thread's sender was dropped");
    });
}
