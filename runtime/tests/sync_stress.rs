//! Stress: green-thread and stackless producers on eight OS threads feed one
//! bounded channel; a stackless consumer on yet another OS thread must get
//! every message exactly once, each producer's in order.
//!
//! 1,000,000 messages in every build (about 1-3 s in a debug build on two
//! cores).

mod sync_util;

use std::thread;
use std::time::Duration;

use greenloop_runtime::sync::mpsc;
use greenloop_runtime::{green, task};
use sync_util::watchdog;

/// OS threads of each kind: green runtimes, and stackless executors.
const OS_THREADS: usize = 4;
/// Producers (green threads or tasks) on each OS thread.
const PER_THREAD: usize = 4;
const PRODUCERS: usize = 2 * OS_THREADS * PER_THREAD;

const TOTAL: usize = 1_000_000;

#[test]
fn one_million_messages_from_green_and_stackless_producers() {
    watchdog(Duration::from_secs(600), || {
        let total = TOTAL;
        assert_eq!(total % PRODUCERS, 0);
        let per_producer = (total / PRODUCERS) as u32;
        let (tx, mut rx) = mpsc::channel::<(u16, u32)>(256);

        let mut os_threads = Vec::new();
        for t in 0..OS_THREADS {
            // Green producers: blocking style.
            let tx_green = tx.clone();
            os_threads.push(thread::spawn(move || {
                green::run(move || {
                    let producers: Vec<_> = (0..PER_THREAD)
                        .map(|p| {
                            let tx = tx_green.clone();
                            let id = (t * PER_THREAD + p) as u16;
                            green::spawn(move || {
                                for seq in 0..per_producer {
                                    tx.send_blocking((id, seq)).expect("receiver alive");
                                }
                            })
                        })
                        .collect();
                    drop(tx_green);
                    producers.into_iter().for_each(|p| p.join().unwrap());
                })
            }));
            // Stackless producers: `.await`.
            let tx_task = tx.clone();
            os_threads.push(thread::spawn(move || {
                let rt = task::Runtime::new().unwrap();
                rt.block_on(async move {
                    let producers: Vec<_> = (0..PER_THREAD)
                        .map(|p| {
                            let tx = tx_task.clone();
                            let id = (OS_THREADS * PER_THREAD + t * PER_THREAD + p) as u16;
                            task::spawn(async move {
                                for seq in 0..per_producer {
                                    tx.send((id, seq)).await.expect("receiver alive");
                                }
                            })
                        })
                        .collect();
                    drop(tx_task);
                    for p in producers {
                        p.await.unwrap();
                    }
                })
            }));
        }
        drop(tx);

        let consumer = thread::spawn(move || {
            task::Runtime::new().unwrap().block_on(async move {
                let mut next = vec![0u32; PRODUCERS];
                let mut received = 0usize;
                while let Some((id, seq)) = rx.recv().await {
                    let expected = &mut next[usize::from(id)];
                    assert_eq!(seq, *expected, "producer {id}: lost, duplicated or reordered");
                    *expected += 1;
                    received += 1;
                }
                (received, next)
            })
        });
        for t in os_threads {
            t.join().unwrap();
        }
        let (received, next) = consumer.join().unwrap();
        assert_eq!(received, total, "every message received exactly once");
        assert!(next.iter().all(|&n| n == per_producer));
    });
}
