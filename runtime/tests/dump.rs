//! `greenloop_runtime::dump()`: every parked green thread with its wait
//! kind; green threads and tasks parked on each sync primitive, counted per
//! kind; a dump from another OS thread while tasks churn.

mod watchdog;

use std::collections::BTreeMap;
use std::future::poll_fn;
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, mpsc as std_mpsc};
use std::time::Duration;

use greenloop_runtime::blocking::spawn_blocking;
use greenloop_runtime::dump::{self, Model, State, Wait};
use greenloop_runtime::reactor::{Direction, Reactor};
use greenloop_runtime::sync::{Mutex, Notify, Semaphore, WaitGroup, mpsc};
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
            let mut fds = Vec::new();
            for _ in 0..300 {
                let (mut ours, peer) = UnixStream::pair().unwrap();
                peers.push(peer);
                fds.push(ours.as_raw_fd());
                handles.push(green::spawn(move || {
                    let reactor = Reactor::current();
                    let key = reactor.register(&mut ours).unwrap();
                    reactor.name_fd(key, ours.as_raw_fd());
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
            let mut waited: Vec<_> = parked
                .iter()
                .filter_map(|e| match e.wait {
                    Some(Wait::Io { fd, .. }) => fd,
                    _ => None,
                })
                .collect();
            waited.sort_unstable();
            fds.sort_unstable();
            assert_eq!(waited, fds, "each reader listed by its fd");
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

/// How many green threads (or tasks) each sync test parks per wait kind:
/// the joiners' targets wait on a channel each.
const PARKED: [(&str, usize); 7] = [
    ("mutex", 50),
    ("semaphore", 40),
    ("notify", 30),
    ("wait group", 20),
    ("join", 10),
    ("channel", 10),
    ("blocking pool", 5),
];

/// The count `PARKED` gives `kind`.
fn parked(kind: &str) -> usize {
    PARKED.iter().find(|(k, _)| *k == kind).map_or(0, |&(_, n)| n)
}

/// The primitives the sync tests park on, and what releases them.
struct Prims {
    mutex: Arc<Mutex<()>>,
    sem: Arc<Semaphore>,
    notify: Arc<Notify>,
    group: WaitGroup,
    /// Wakes the joiners' targets.
    senders: Vec<mpsc::Sender<()>>,
    /// Ends the blocking jobs.
    release: Vec<std_mpsc::Sender<()>>,
}

impl Prims {
    fn new() -> Prims {
        let group = WaitGroup::new();
        group.add(1);
        Prims {
            mutex: Arc::new(Mutex::new(())),
            sem: Arc::new(Semaphore::new(0)),
            notify: Arc::new(Notify::new()),
            group,
            senders: Vec::new(),
            release: Vec::new(),
        }
    }

    /// A blocking-pool job that runs until released.
    fn job(&mut self) -> impl FnOnce() + Send + 'static {
        let (tx, rx) = std_mpsc::channel::<()>();
        self.release.push(tx);
        move || {
            let _ = rx.recv();
        }
    }

    /// Lets every waiter go.
    fn release(&mut self) {
        self.sem.add_permits(parked("semaphore"));
        self.notify.notify_waiters();
        self.group.done();
        self.senders.clear();
        for tx in self.release.drain(..) {
            let _ = tx.send(());
        }
    }
}

/// Checks the parked entries of `model` in the own loop's `dump`: exactly
/// `PARKED` per kind, and the joins name the `joined` ids.
fn assert_counted(all: &dump::Dump, model: Model, mut joined: Vec<u64>) {
    let dump = loop_of(all, std::thread::current().id()).expect("own loop listed");
    let parked: Vec<_> =
        dump.entries().filter(|e| e.model == model && e.state == State::Parked).collect();
    let mut by_kind = BTreeMap::new();
    for e in &parked {
        *by_kind.entry(e.wait.expect("a parked entry has a wait").kind()).or_insert(0) += 1;
    }
    let expected: BTreeMap<_, _> = PARKED.into_iter().collect();
    assert_eq!(by_kind, expected, "{dump}");
    assert_eq!(dump.count_by_wait(), expected);
    let mut ids: Vec<_> = parked
        .iter()
        .filter_map(|e| match e.wait {
            Some(Wait::Join { model: m, id }) if m == model => Some(id),
            _ => None,
        })
        .collect();
    ids.sort_unstable();
    joined.sort_unstable();
    assert_eq!(ids, joined, "each join names its target");
    assert!(parked.iter().all(|e| e.waiting_for.is_some()), "{dump}");
    let text = dump.to_string();
    assert!(text.contains(" on mutex") && text.contains(" on join of "), "{text}");
}

#[test]
fn green_threads_parked_on_sync_primitives_counted_per_kind() {
    watchdog(Duration::from_secs(60), || {
        green::run(|| {
            let mut p = Prims::new();
            let guard = p.mutex.clone().lock_owned_blocking();
            let mut handles = Vec::new();
            for _ in 0..parked("mutex") {
                let mutex = p.mutex.clone();
                handles.push(green::spawn(move || drop(mutex.lock_blocking())));
            }
            for _ in 0..parked("semaphore") {
                let sem = p.sem.clone();
                handles.push(green::spawn(move || drop(sem.acquire_blocking().unwrap())));
            }
            for _ in 0..parked("notify") {
                let notify = p.notify.clone();
                handles.push(green::spawn(move || notify.notified_blocking()));
            }
            for _ in 0..parked("wait group") {
                let group = p.group.clone();
                handles.push(green::spawn(move || group.wait_blocking()));
            }
            let mut joined = Vec::new();
            for _ in 0..parked("join") {
                let (tx, mut rx) = mpsc::channel::<()>(1);
                p.senders.push(tx);
                let target = green::spawn(move || {
                    let _ = rx.recv_blocking();
                });
                joined.push(target.thread().id().as_u64().get());
                handles.push(green::spawn(move || target.join().unwrap()));
            }
            for _ in 0..parked("blocking pool") {
                let job = p.job();
                handles.push(green::spawn(move || block_on(spawn_blocking(job)).unwrap()));
            }
            // Let every thread run up to its wait.
            green::yield_now();
            green::yield_now();

            assert_counted(&dump::dump(), Model::Green, joined);

            drop(guard);
            p.release();
            for h in handles {
                h.join().expect("a waiter ran to its end");
            }
        });
    });
}

#[test]
fn tasks_parked_on_sync_primitives_counted_per_kind() {
    watchdog(Duration::from_secs(60), || {
        task::Runtime::new().unwrap().block_on(async {
            let mut p = Prims::new();
            let guard = p.mutex.clone().lock_owned().await;
            let mut handles = Vec::new();
            for _ in 0..parked("mutex") {
                let mutex = p.mutex.clone();
                handles.push(task::spawn(async move { drop(mutex.lock().await) }));
            }
            for _ in 0..parked("semaphore") {
                let sem = p.sem.clone();
                handles.push(task::spawn(async move { drop(sem.acquire().await.unwrap()) }));
            }
            for _ in 0..parked("notify") {
                let notify = p.notify.clone();
                handles.push(task::spawn(async move { notify.notified().await }));
            }
            for _ in 0..parked("wait group") {
                let group = p.group.clone();
                handles.push(task::spawn(async move { group.wait().await }));
            }
            let mut joined = Vec::new();
            for _ in 0..parked("join") {
                let (tx, mut rx) = mpsc::channel::<()>(1);
                p.senders.push(tx);
                let target = task::spawn(async move {
                    let _ = rx.recv().await;
                });
                joined.push(target.id());
                handles.push(task::spawn(async move { target.await.unwrap() }));
            }
            for _ in 0..parked("blocking pool") {
                let job = p.job();
                handles.push(task::spawn(async move { spawn_blocking(job).await.unwrap() }));
            }
            // Let every task run up to its wait.
            task::yield_now().await;
            task::yield_now().await;

            assert_counted(&dump::dump(), Model::Task, joined);

            drop(guard);
            p.release();
            for h in handles {
                h.await.expect("a waiter ran to its end");
            }
        });
    });
}

#[test]
fn a_green_wait_under_a_timeout_shows_the_wait() {
    watchdog(Duration::from_secs(60), || {
        green::run(|| {
            let (tx, mut rx) = mpsc::channel::<()>(1);
            let waiter = green::spawn(move || {
                let _ = block_on(time::timeout(Duration::from_secs(30), rx.recv()));
            });
            green::yield_now();
            let all = dump::dump();
            let dump = loop_of(&all, std::thread::current().id()).expect("own loop listed");
            let parked: Vec<_> = dump.entries().filter(|e| e.state == State::Parked).collect();
            assert_eq!(parked.len(), 1, "{dump}");
            assert_eq!(parked[0].wait, Some(Wait::Channel), "{dump}");
            drop(tx);
            waiter.join().unwrap();
        });
    });
}

#[test]
fn a_nested_loop_is_listed_once_with_its_outer_one() {
    watchdog(Duration::from_secs(60), || {
        green::run(|| {
            let parker = green::spawn(|| green::park_timeout(Duration::from_secs(30)));
            green::yield_now();
            let executor = task::Runtime::new().unwrap();
            // Nested: an executor's loop inside a green thread of this one.
            let (all, task_id) = executor.block_on(async {
                let sleeper = task::spawn(time::sleep(Duration::from_secs(30)));
                task::yield_now().await;
                let all = dump::dump();
                sleeper.abort();
                (all, sleeper.id())
            });
            let parker_id = parker.thread().id().as_u64().get();
            parker.thread().unpark();
            parker.join().unwrap();
            let dump = loop_of(&all, std::thread::current().id()).expect("own loop listed");
            assert_eq!(dump.loops.len(), 1, "{dump}");
            let entries: Vec<_> = dump.entries().collect();
            let mut keys: Vec<_> = entries.iter().map(|e| (e.model, e.id)).collect();
            keys.sort();
            keys.dedup();
            assert_eq!(keys.len(), entries.len(), "an entry listed twice: {dump}");
            let parked_green =
                entries.iter().find(|e| (e.model, e.id) == (Model::Green, parker_id));
            let parked_green = parked_green.unwrap_or_else(|| panic!("parker missing: {dump}"));
            assert!(matches!(parked_green.wait, Some(Wait::Timer(_))), "{dump}");
            let sleeper = entries.iter().find(|e| (e.model, e.id) == (Model::Task, task_id));
            assert!(sleeper.is_some(), "the nested loop's task missing: {dump}");
            // The green thread that runs the nested loop, and the main one.
            let running = entries.iter().filter(|e| e.state == State::Running).count();
            assert!(running >= 1, "{dump}");
        });
    });
}
