//! `greenloop_runtime::dump()`: every parked green thread with its wait
//! kind; a dump from another OS thread while tasks churn.

mod watchdog;

use std::future::poll_fn;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, mpsc as std_mpsc};
use std::time::Duration;

use greenloop_runtime::dump::{self, Model, State, Wait};
use greenloop_runtime::reactor::{Direction, Reactor};
use greenloop_runtime::sync::mpsc;
use greenloop_runtime::{block_on, green, task, time};
use mio::net::UnixStream;
use watchdog::watchdog;

/// The part of `dump` taken from the loop on OS thread `thread` (other
/// tests' loops run in the same process).
fn loop_of(dump: &dump::Dump, thread: std::thread::ThreadId) -> Option<dump::Dump> {
    let tag = format!("({thread:?})");
    let loops: Vec<_> = dump.loops.iter().filter(|l| l.thread.ends_with(&tag)).cloned().collect();
    (!loops.is_empty()).then_some(dump::Dump { loops })
}

#[test]
fn parked_green_threads_listed_with_their_wait() {
    watchdog(Duration::from_secs(60), || {
        green::run(|| {
            let mut handles = Vec::new();
            for _ in 0..400 {
                handles.push(green::spawn(|| block_on(time::sleep(Duration::from_secs(30)))));
            }
            let mut peers = Vec::new();
            for _ in 0..300 {
                let (mut ours, peer) = UnixStream::pair().unwrap();
                peers.push(peer);
                handles.push(green::spawn(move || {
                    let reactor = Reactor::current();
                    let key = reactor.register(&mut ours).unwrap();
                    block_on(poll_fn(|cx| reactor.poll_ready(key, Direction::Read, cx)));
                    reactor.deregister(key, &mut ours).unwrap();
                }));
            }
            let mut senders = Vec::new();
            for _ in 0..300 {
                let (tx, mut rx) = mpsc::channel::<()>(1);
                senders.push(tx);
                handles.push(green::spawn(move || {
                    let _ = rx.recv_blocking();
                }));
            }
            // Let every thread run up to its wait.
            green::yield_now();
            green::yield_now();

            let all = dump::dump();
            let dump = loop_of(&all, std::thread::current().id()).expect("own loop listed");
            let entries: Vec<_> = dump.entries().filter(|e| e.model == Model::Green).collect();
            assert_eq!(entries.len(), 1001, "1000 spawned + main");
            let parked: Vec<_> = entries.iter().filter(|e| e.state == State::Parked).collect();
            assert_eq!(parked.len(), 1000, "{dump}");
            let count = |pred: fn(&Wait) -> bool| {
                parked.iter().filter(|e| e.wait.as_ref().is_some_and(pred)).count()
            };
            assert_eq!(count(|w| matches!(w, Wait::Timer(_))), 400);
            assert_eq!(count(|w| matches!(w, Wait::Io { dir: Direction::Read, .. })), 300);
            assert_eq!(count(|w| matches!(w, Wait::Channel)), 300);
            let by_wait = dump.count_by_wait();
            assert_eq!(by_wait.values().sum::<usize>(), 1000, "{by_wait:?}");
            assert_eq!(dump.count_by_state().values().sum::<usize>(), dump.entries().count());
            assert!(parked.iter().all(|e| e.stack_bytes.is_some_and(|b| b > 0)));
            assert!(parked.iter().all(|e| e.site.file() == file!()));
            let text = dump.to_string();
            assert!(text.contains("by wait:"), "{text}");

            drop(senders);
            drop(peers);
            // The sleepers would take 30 s: their threads are unwound when
            // `run` returns.
            handles.truncate(0);
        });
    });
}

#[test]
fn dump_from_another_thread_while_tasks_churn() {
    watchdog(Duration::from_secs(60), || {
        let done = Arc::new(AtomicBool::new(false));
        let (ready_tx, ready_rx) = std_mpsc::channel();
        let stop = done.clone();
        let looper = std::thread::spawn(move || {
            task::Runtime::new().unwrap().block_on(async move {
                ready_tx.send(()).unwrap();
                let mut rounds = 0u32;
                while !stop.load(Ordering::Relaxed) && rounds < 10_000 {
                    let handles: Vec<_> = (0..10_000u32)
                        .map(|i| {
                            task::spawn(async move {
                                task::yield_now().await;
                                i
                            })
                        })
                        .collect();
                    for h in handles {
                        h.await.unwrap();
                    }
                    rounds += 1;
                }
                rounds
            })
        });
        ready_rx.recv().unwrap();
        let looper_id = looper.thread().id();
        let mut answered = 0;
        for _ in 0..5 {
            let Some(dump) = loop_of(&dump::dump(), looper_id) else { continue };
            for l in &dump.loops {
                let Some(entries) = &l.entries else { continue };
                answered += 1;
                let by_state: usize = dump.count_by_state().values().sum();
                assert!(by_state >= entries.len());
                assert!(entries.iter().all(|e| e.model == Model::Task));
                assert!(entries.iter().all(|e| (e.state == State::Parked) == e.wait.is_some()));
            }
            assert_eq!(dump.count_by_state().values().sum::<usize>(), dump.entries().count());
        }
        done.store(true, Ordering::Relaxed);
        assert!(looper.join().unwrap() >= 1);
        assert!(answered >= 1, "no loop answered a dump");
    });
}
