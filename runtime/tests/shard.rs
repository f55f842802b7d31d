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

/// The shutdown order that the test above reaches only by chance: the
/// shard stops while its task is parked in `rx.recv()`, so the task is
/// cancelled with its `Recv` alive. That `Recv` borrows the receiver the
/// `async` block holds, inside the task's cell: the cancel must drop the
/// future where it lies (it once moved it out first, and the `Recv`'s drop
/// then read the receiver from reused memory: SIGSEGV).
#[test]
fn a_task_parked_on_a_channel_is_cancelled_when_its_shard_stops() {
    watchdog(LIMIT, || {
        let (tasks, stop, tasks_thread) = stackless_shard();
        let (tx, mut rx) = mpsc::channel::<u64>(1);
        let (parked_tx, parked_rx) = std_mpsc::channel();
        tasks.spawn(move || {
            task::spawn_local(async move {
                // Sent in the poll that parks on `recv`: the shard runs
                // nothing else before that poll returns.
                parked_tx.send(()).unwrap();
                rx.recv().await
            });
        });
        parked_rx.recv().unwrap();
        stop.send(()).unwrap();
        tasks_thread.join().unwrap();
        assert!(tx.try_send(1).is_err(), "the cancelled task dropped its receiver");
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

#[test]
fn spawn_returns_a_handle_to_the_result_or_lost() {
    watchdog(LIMIT, || {
        let (greens, stop, green_thread) = green_shard();
        let on = greens.spawn(|| thread::current().id()).join().unwrap();
        assert_ne!(on, thread::current().id(), "the closure ran on the caller's thread");
        let panicked = greens.spawn(|| -> u32 { panic!("a panicking closure (expected)") });
        assert!(panicked.join().is_err(), "a panicking closure gave a result");
        stop.send(()).unwrap();
        green_thread.join().unwrap();
        // The shard's thread has exited: the work is dropped with the last
        // handle to the shard, and the wait ends.
        let late = greens.spawn(|| 1);
        drop(greens);
        assert!(late.join().is_err(), "work sent to an exited shard gave a result");
    });
}

/// Both kinds of shard run both models: a green thread and a task started
/// from another thread run there and give their results back.
#[test]
fn spawn_green_and_spawn_task_run_on_either_kind_of_shard() {
    watchdog(LIMIT, || {
        let (tasks, stop_tasks, tasks_thread) = stackless_shard();
        let (greens, stop_greens, greens_thread) = green_shard();
        for shard in [&tasks, &greens] {
            let green = shard.spawn_green(|| (green::in_green_thread(), thread::current().id()));
            let (in_green, green_on) = green.join().unwrap().unwrap();
            assert!(in_green, "spawn_green ran outside a green thread");
            let task = shard.spawn_task(|| async { thread::current().id() });
            let task_on = task.join().unwrap().unwrap();
            assert_eq!(green_on, task_on, "both ran on the shard's thread");
            assert_ne!(task_on, thread::current().id());
            let panicked =
                shard.spawn_green(|| -> u32 { panic!("a panicking green thread (expected)") });
            assert!(panicked.join().unwrap().is_err(), "the panic did not reach the handle");
        }
        stop_tasks.send(()).unwrap();
        stop_greens.send(()).unwrap();
        tasks_thread.join().unwrap();
        greens_thread.join().unwrap();
    });
}

/// The spawn site of the running green thread or task, as a dump taken
/// inside it lists it.
fn running_site(model: greenloop_runtime::dump::Model) -> Option<&'static str> {
    let dump = greenloop_runtime::dump();
    let running = dump
        .entries()
        .find(|e| e.model == model && e.state == greenloop_runtime::dump::State::Running);
    running.map(|e| e.site.file())
}

/// Work started through a shard names its caller as its spawn site.
#[test]
fn shard_spawns_record_the_callers_site() {
    use greenloop_runtime::dump::Model;
    watchdog(LIMIT, || {
        let (greens, stop_greens, greens_thread) = green_shard();
        let green = greens.spawn_green(|| running_site(Model::Green));
        assert_eq!(green.join().unwrap().unwrap(), Some(file!()));
        let task = greens.spawn_task(|| async { running_site(Model::Task) });
        assert_eq!(task.join().unwrap().unwrap(), Some(file!()));
        stop_greens.send(()).unwrap();
        greens_thread.join().unwrap();
    });
}
