//! One loop per OS thread for both models: green threads and tasks spawn
//! and wait for each other on the same thread, through every entry point,
//! with no remote wake, and neither model starves the other.

use std::cell::Cell;
use std::rc::Rc;
use std::time::Duration;

use greenloop_runtime::reactor::Reactor;
use greenloop_runtime::sync::mpsc;
use greenloop_runtime::{Runtime, block_on, green, task};

mod watchdog;

const LIMIT: Duration = Duration::from_secs(30);

fn watchdog<R: Send + 'static>(f: impl FnOnce() -> R + Send + 'static) -> R {
    watchdog::watchdog(LIMIT, f)
}

/// The snippet: a green thread `block_on`s a task's handle.
fn green_waits_for_task() -> i32 {
    let t = task::spawn_local(async { 5 });
    block_on(t).unwrap()
}

/// Its mirror: a task spawns a green thread and awaits its handle.
async fn task_waits_for_green() -> i32 {
    green::spawn(|| 5).await.unwrap()
}

#[test]
fn a_green_thread_waits_for_a_task_in_every_entry_point() {
    watchdog(|| {
        assert_eq!(greenloop_runtime::run(green_waits_for_task), 5);
        assert_eq!(green::run(green_waits_for_task), 5);
        let rt = task::Runtime::new().unwrap();
        let in_task = rt.block_on(async { green::spawn(green_waits_for_task).await.unwrap() });
        assert_eq!(in_task, 5);
    });
}

#[test]
fn a_task_waits_for_a_green_thread_in_every_entry_point() {
    watchdog(|| {
        let spawned = || block_on(task::spawn_local(task_waits_for_green())).unwrap();
        assert_eq!(greenloop_runtime::run(spawned), 5);
        assert_eq!(green::run(spawned), 5);
        let rt = task::Runtime::new().unwrap();
        assert_eq!(rt.block_on(task_waits_for_green()), 5);
        assert_eq!(rt.block_on(async { rt.spawn(task_waits_for_green()).await.unwrap() }), 5);
    });
}

#[test]
fn send_tasks_spawn_in_a_green_runtime_and_the_builder_applies() {
    watchdog(|| {
        let rt = Runtime::builder().stack_size(64 * 1024).max_cached_stacks(4).build();
        let out = rt.run(|| {
            let sum = task::spawn(async { 2 });
            let local = task::spawn_local(async { Rc::new(3) });
            block_on(sum).unwrap() + *block_on(local).unwrap()
        });
        assert_eq!(out, 5);
        assert_eq!(rt.block_on(async { task::spawn(async { 6 }).await.unwrap() }), 6);
    });
}

/// Tasks still alive when the main green thread returns are cancelled:
/// their futures are dropped on this thread.
#[test]
fn tasks_left_when_main_returns_are_cancelled() {
    watchdog(|| {
        struct Flag(Rc<Cell<bool>>);
        impl Drop for Flag {
            fn drop(&mut self) {
                self.0.set(true);
            }
        }
        let dropped = Rc::new(Cell::new(false));
        let flag = Flag(dropped.clone());
        greenloop_runtime::run(move || {
            drop(task::spawn_local(async move {
                let _flag = flag;
                std::future::pending::<()>().await;
            }));
            green::yield_now();
        });
        assert!(dropped.get(), "the pending task's future was not dropped");
    });
}

/// A green thread and a task ping-pong over two channels.
fn ping_pong(round_trips: u64) -> u64 {
    let (ping_tx, mut ping_rx) = mpsc::channel::<u64>(1);
    let (pong_tx, mut pong_rx) = mpsc::channel::<u64>(1);
    let echo = task::spawn_local(async move {
        while let Some(v) = ping_rx.recv().await {
            if pong_tx.send(v + 1).await.is_err() {
                break;
            }
        }
    });
    let mut total = 0;
    for i in 0..round_trips {
        ping_tx.send_blocking(i).unwrap();
        total += pong_rx.recv_blocking().unwrap() - i;
    }
    drop(ping_tx);
    block_on(echo).unwrap();
    total
}

#[test]
fn same_thread_round_trips_write_no_eventfd() {
    watchdog(|| {
        let remote = Reactor::current().remote().clone();
        let before = remote.wakes_sent();
        let total = greenloop_runtime::run(|| ping_pong(10_000));
        assert_eq!(total, 10_000, "a round trip was lost");
        assert_eq!(remote.wakes_sent() - before, 0, "same-thread hand-offs woke the eventfd");
    });
}

/// The counter of the test above does count: a wake from another OS thread
/// writes the eventfd.
#[test]
fn a_wake_from_another_thread_writes_the_eventfd() {
    watchdog(|| {
        let remote = Reactor::current().remote().clone();
        let before = remote.wakes_sent();
        greenloop_runtime::run(|| {
            let (tx, mut rx) = mpsc::channel::<u32>(1);
            let sender = std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(20));
                tx.send_blocking(1).unwrap();
            });
            assert_eq!(rx.recv_blocking(), Some(1));
            sender.join().unwrap();
        });
        assert!(remote.wakes_sent() > before, "the cross-thread wake was not counted");
    });
}

/// Most steps one side may take while the other waits for one: two loop
/// batches.
const MAX_RUN: u64 = 256;

#[test]
fn a_yielding_green_thread_does_not_starve_tasks() {
    watchdog(|| {
        greenloop_runtime::run(|| {
            let done = Rc::new(Cell::new(false));
            let yields = Rc::new(Cell::new(0u64));
            let spinner = green::spawn({
                let (done, yields) = (done.clone(), yields.clone());
                move || {
                    while !done.get() {
                        yields.set(yields.get() + 1);
                        green::yield_now();
                    }
                }
            });
            let steps = 1_000u64;
            let worker = task::spawn_local({
                let yields = yields.clone();
                async move {
                    let mut longest = 0;
                    for _ in 0..steps {
                        let at = yields.get();
                        task::yield_now().await;
                        longest = longest.max(yields.get() - at);
                    }
                    longest
                }
            });
            let longest = block_on(worker).unwrap();
            done.set(true);
            spinner.join().unwrap();
            assert!(longest <= MAX_RUN, "{longest} green yields between two task steps");
            assert!(yields.get() >= steps / 2, "the green thread barely ran: {}", yields.get());
        });
    });
}

#[test]
fn a_self_waking_task_does_not_starve_green_threads() {
    watchdog(|| {
        greenloop_runtime::run(|| {
            let done = Rc::new(Cell::new(false));
            let polls = Rc::new(Cell::new(0u64));
            let spinner = task::spawn_local({
                let (done, polls) = (done.clone(), polls.clone());
                async move {
                    while !done.get() {
                        polls.set(polls.get() + 1);
                        task::yield_now().await;
                    }
                }
            });
            let steps = 1_000u64;
            let worker = green::spawn({
                let polls = polls.clone();
                move || {
                    let mut longest = 0;
                    for _ in 0..steps {
                        let at = polls.get();
                        green::yield_now();
                        longest = longest.max(polls.get() - at);
                    }
                    longest
                }
            });
            let longest = worker.join().unwrap();
            done.set(true);
            block_on(spinner).unwrap();
            assert!(longest <= MAX_RUN, "{longest} task polls between two green steps");
            assert!(polls.get() >= steps / 2, "the task barely ran: {}", polls.get());
        });
    });
}

#[test]
fn the_old_entry_points_still_refuse_to_nest() {
    watchdog(|| {
        greenloop_runtime::run(|| {
            assert!(green::Runtime::new().try_run(|| ()).is_err());
            assert!(Runtime::new().try_run(|| ()).is_err());
            // A task runtime may run inside a green thread, as before, and
            // sees green threads of its own.
            let rt = task::Runtime::new().unwrap();
            assert_eq!(rt.block_on(async { green::spawn(|| 1).await.unwrap() }), 1);
        });
    });
}

/// `green::stats` reports a green runtime where a green entry point runs
/// the loop, or to a green thread; a task of `task::Runtime::block_on`
/// counts with `task::live_tasks` as before.
#[test]
fn green_stats_belong_to_green_entry_points_and_green_threads() {
    watchdog(|| {
        let rt = task::Runtime::new().unwrap();
        let (in_task, in_green) = rt.block_on(async {
            let in_green = green::spawn(|| green::stats().map(|s| s.live_threads)).await.unwrap();
            (green::stats(), in_green)
        });
        assert_eq!(in_task, None);
        assert_eq!(in_green, Some(1));
        let in_run =
            greenloop_runtime::run(|| block_on(task::spawn_local(async { green::stats() })));
        assert_eq!(in_run.unwrap().map(|s| s.live_threads), Some(1));
    });
}
