//! `mpsc::Receiver` and `Interval` as futures-core `Stream`s, driven by
//! `futures::StreamExt` on both models: a stackless task (`.await`) and a
//! green thread (`block_on`).
//!
//! Every test runs under the watchdog (a hang fails it); timer tests
//! assert the scheduled instants, never measured durations.

use std::time::{Duration, Instant};

use futures::StreamExt;
use greenloop_runtime::sync::mpsc;
use greenloop_runtime::time::{self, MissedTickBehavior};
use greenloop_runtime::{block_on, green, task};

mod watchdog;

const WATCHDOG: Duration = Duration::from_secs(30);

/// Producers, and messages each sends.
const PRODUCERS: u64 = 4;
const PER_PRODUCER: u64 = 250;

/// Every message of every producer, tagged `producer * 1000 + i`.
fn expected() -> Vec<u64> {
    (0..PRODUCERS).flat_map(|p| (0..PER_PRODUCER).map(move |i| p * 1000 + i)).collect()
}

/// Whether each producer's messages arrived in the order it sent them.
fn in_producer_order(got: &[u64]) -> bool {
    (0..PRODUCERS).all(|p| {
        let mine: Vec<u64> = got.iter().copied().filter(|m| m / 1000 == p).collect();
        mine.windows(2).all(|w| w[0] < w[1])
    })
}

/// Sorted copy, for comparing as a multiset.
fn sorted(mut v: Vec<u64>) -> Vec<u64> {
    v.sort_unstable();
    v
}

#[test]
fn receiver_stream_collects_every_message_from_tasks() {
    let got = watchdog::watchdog(WATCHDOG, || {
        task::Runtime::new().expect("runtime").block_on(async {
            // Capacity 8: the producers wait on the stream's consumer.
            let (tx, rx) = mpsc::channel(8);
            for p in 0..PRODUCERS {
                let tx = tx.clone();
                task::spawn(async move {
                    for i in 0..PER_PRODUCER {
                        tx.send(p * 1000 + i).await.expect("receiver alive");
                    }
                });
            }
            drop(tx);
            rx.collect::<Vec<u64>>().await
        })
    });
    assert!(in_producer_order(&got), "a producer's messages were reordered");
    assert_eq!(sorted(got), expected());
}

#[test]
fn receiver_stream_on_a_green_thread_with_combinators() {
    let (sum, count) = watchdog::watchdog(WATCHDOG, || {
        green::run(|| {
            let (tx, rx) = mpsc::unbounded_channel();
            let producers: Vec<_> = (0..PRODUCERS)
                .map(|p| {
                    let tx = tx.clone();
                    green::spawn(move || {
                        for i in 0..PER_PRODUCER {
                            tx.send(p * 1000 + i).expect("receiver alive");
                            if i % 16 == 0 {
                                green::yield_now();
                            }
                        }
                    })
                })
                .collect();
            drop(tx);
            // The consumer parks in `block_on` between messages.
            let folded = block_on(
                rx.map(|m| (m, 1u64))
                    .fold((0u64, 0u64), |(s, c), (m, one)| async move { (s + m, c + one) }),
            );
            for p in producers {
                p.join().expect("producer");
            }
            folded
        })
    });
    assert_eq!(count, PRODUCERS * PER_PRODUCER);
    assert_eq!(sum, expected().iter().sum::<u64>());
}

#[test]
fn receiver_stream_next_waits_then_ends_when_senders_are_gone() {
    watchdog::watchdog(WATCHDOG, || {
        task::Runtime::new().expect("runtime").block_on(async {
            let (tx, mut rx) = mpsc::channel::<&str>(1);
            let sender = task::spawn(async move {
                time::sleep(Duration::from_millis(5)).await;
                tx.send("late").await.expect("receiver alive");
            });
            // `next` waits for the message sent after the sleep.
            assert_eq!(rx.next().await, Some("late"));
            sender.await.expect("sender task");
            assert_eq!(rx.next().await, None, "every sender dropped: the stream ends");
            assert_eq!(rx.next().await, None, "and stays ended");
        });
    });
}

#[test]
fn interval_stream_yields_the_schedule_on_both_models() {
    let period = Duration::from_millis(2);
    let check = |ticks: Vec<Instant>| {
        assert_eq!(ticks.len(), 5);
        // Burst keeps the schedule: start + n × period exactly.
        for pair in ticks.windows(2) {
            assert_eq!(pair[1] - pair[0], period);
        }
    };
    let on_task = watchdog::watchdog(WATCHDOG, move || {
        task::Runtime::new()
            .expect("runtime")
            .block_on(async move { time::interval(period).take(5).collect::<Vec<_>>().await })
    });
    check(on_task);
    let on_green = watchdog::watchdog(WATCHDOG, move || {
        green::run(move || block_on(time::interval(period).take(5).collect::<Vec<_>>()))
    });
    check(on_green);
}

#[test]
fn interval_stream_skips_missed_ticks_when_told() {
    let period = Duration::from_millis(5);
    let ticks = watchdog::watchdog(WATCHDOG, move || {
        task::Runtime::new().expect("runtime").block_on(async move {
            let mut ticks = time::interval(period);
            ticks.set_missed_tick_behavior(MissedTickBehavior::Skip);
            let first = ticks.next().await.expect("an interval never ends");
            // Late by more than three periods: the late tick fires at once,
            // then Skip moves to the next point of the schedule that lies
            // in the future.
            std::thread::sleep(period * 3 + Duration::from_millis(1));
            ticks.take(2).map(|t| t - first).collect::<Vec<_>>().await
        })
    });
    assert_eq!(ticks[0], period, "the late tick is the one that was due");
    assert!(ticks[1] >= period * 4, "the missed ticks were skipped, not fired: {ticks:?}");
    assert_eq!(ticks[1].as_nanos() % period.as_nanos(), 0, "still on the schedule: {ticks:?}");
}
