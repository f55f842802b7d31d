//! Shards: work handed from one OS thread's runtime to another's through
//! [`Shard::spawn`], and wakes crossing between them both ways.

mod sync_util;

use std::sync::mpsc as std_mpsc;
use std::thread::{self, ThreadId};
use std::time::Duration;

use greenloop_runtime::shard::Shard;
use greenloop_runtime::sync::{mpsc, oneshot};
use greenloop_runtime::{green, task};
use sync_util::watchdog;

const LIMIT: Duration = Duration::from_secs(60);

/// A stackless shard on its own OS thread: returns its handle, the switch
/// that stops it, and its thread (which returns its id).
fn stackless_shard() -> (Shard, oneshot::Sender<()>, thread::JoinHandle<ThreadId>) {
    let (shard_tx, shard_rx) = std_mpsc::channel();
    let (stop_tx, stop_rx) = oneshot::channel::<()>();
    let thread = thread::spawn(move || {
        let runtime = task::Runtime::new().unwrap();
        shard_tx.send(Shard::current().unwrap()).unwrap();
        runtime.block_on(async {
            let _ = stop_rx.await;
        });
        thread::current().id()
    });
    (shard_rx.recv().unwrap(), stop_tx, thread)
}

/// A green shard on its own OS thread, until `stop` is sent.
fn green_shard() -> (Shard, oneshot::Sender<()>, thread::JoinHandle<()>) {
    let (shard_tx, shard_rx) = std_mpsc::channel();
    let (stop_tx, stop_rx) = oneshot::channel::<()>();
    let thread = thread::spawn(move || {
        green::run(move || {
            shard_tx.send(Shard::current().unwrap()).unwrap();
            let _ = greenloop_runtime::block_on(stop_rx);
        });
    });
    (shard_rx.recv().unwrap(), stop_tx, thread)
}

#[test]
fn a_green_thread_and_a_task_on_another_shard_share_a_channel() {
    watchdog(LIMIT, || {
        let (tasks, stop, tasks_thread) = stackless_shard();
        let green_thread = thread::spawn(move || {
            green::run(move || {
                // Capacity 1 both ways: each side parks on every message,
                // so every round trip is two wakes across the threads.
                let (tx, mut rx) = mpsc::channel::<u64>(1);
                let (back_tx, mut back_rx) = mpsc::channel::<(u64, ThreadId)>(1);
                tasks.spawn(move || {
                    task::spawn_local(async move {
                        while let Some(n) = rx.recv().await {
                            let here = thread::current().id();
                            if back_tx.send((n * 2, here)).await.is_err() {
                                return;
                            }
                        }
                    });
                });
                let mut served_on = None;
                for n in 0..500 {
                    tx.send_blocking(n).unwrap();
                    let (doubled, on) = back_rx.recv_blocking().unwrap();
                    assert_eq!(doubled, n * 2);
                    served_on = Some(on);
                }
                (served_on.unwrap(), thread::current().id())
            })
        });
        let (served_on, green_on) = green_thread.join().unwrap();
        stop.send(()).unwrap();
        let tasks_on = tasks_thread.join().unwrap();
        assert_eq!(served_on, tasks_on, "the task ran on the stackless shard");
        assert_ne!(served_on, green_on);
    });
}

#[test]
fn spawn_onto_a_green_shard_runs_there_and_survives_a_panic() {
    watchdog(LIMIT, || {
        let (greens, stop, green_thread) = green_shard();
        greens.spawn(|| panic!("a panicking closure on the shard (expected by the test)"));
        let (tx, rx) = oneshot::channel();
        greens.spawn(move || {
            green::spawn(move || {
                let _ = tx.send(green::in_green_thread());
            });
        });
        assert_eq!(rx.recv_blocking(), Ok(true), "a green thread ran on the shard");
        stop.send(()).unwrap();
        green_thread.join().unwrap();
    });
}
