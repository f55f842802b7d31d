//! Green thread control: cancel (at every kind of park), shield and
//! `green::timeout`.

use std::cell::Cell;
use std::future::{Future, poll_fn};
use std::io::{self, Read, Write};
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::Duration;

use greenloop_runtime::block_on;
use greenloop_runtime::green::{self, JoinHandle};
use greenloop_runtime::reactor::{Direction, IoKey, Reactor};
use greenloop_runtime::sync::{Mutex, Semaphore, mpsc};
use mio::net::UnixStream;

mod watchdog;

const LIMIT: Duration = Duration::from_secs(60);
const FOREVER: Duration = Duration::from_secs(3600);

/// Counts its drops: proves a destructor ran.
struct DropCount(Rc<Cell<usize>>);

impl Drop for DropCount {
    fn drop(&mut self) {
        self.0.set(self.0.get() + 1);
    }
}

fn assert_cancelled<T: std::fmt::Debug + Send + 'static>(handle: JoinHandle<T>) {
    match handle.join() {
        Err(payload) => assert!(green::is_cancelled(&*payload), "joined a panic, not a cancel"),
        Ok(value) => panic!("cancelled thread returned {value:?}"),
    }
}

/// A registered non-blocking socket, read blocking-style.
struct Socket {
    stream: UnixStream,
    key: IoKey,
}

impl Socket {
    fn pair() -> (Socket, UnixStream) {
        let (mut stream, peer) = UnixStream::pair().expect("socketpair");
        let key = Reactor::current().register(&mut stream).expect("register");
        (Socket { stream, key }, peer)
    }

    /// Reads, parking the green thread until data comes.
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            match self.stream.read(buf) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    let reactor = Reactor::current();
                    let event =
                        block_on(poll_fn(|cx| reactor.poll_ready(self.key, Direction::Read, cx)));
                    reactor.clear_ready(self.key, event);
                }
                result => return result,
            }
        }
    }
}

impl Drop for Socket {
    fn drop(&mut self) {
        let _ = Reactor::current().deregister(self.key, &mut self.stream);
    }
}

/// A foreign future: pending until dropped, counting its drop.
struct Forever {
    _guard: DropCount,
}

impl Future for Forever {
    type Output = ();
    fn poll(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<()> {
        Poll::Pending
    }
}

/// The kinds of wait a cancelled thread may be parked in.
#[derive(Clone, Copy, Debug)]
enum Wait {
    Sleep,
    ParkTimeout,
    SocketRead,
    ChannelRecv,
    MutexLock,
    MutexHeld,
    SemaphoreAcquire,
    Join,
    ForeignFuture,
}

const WAITS: [Wait; 9] = [
    Wait::Sleep,
    Wait::ParkTimeout,
    Wait::SocketRead,
    Wait::ChannelRecv,
    Wait::MutexLock,
    Wait::MutexHeld,
    Wait::SemaphoreAcquire,
    Wait::Join,
    Wait::ForeignFuture,
];

/// Spawns a thread parked in `wait`, cancels it (before it starts when
/// `early`), and checks that it unwound with its destructors, that the
/// primitive still serves another waiter, and that the joiner sees
/// `Cancelled`.
fn cancel_in(wait: Wait, early: bool) {
    let drops = Rc::new(Cell::new(0));
    let guard = DropCount(drops.clone());
    let settle = || {
        for _ in 0..4 {
            green::yield_now();
        }
    };
    match wait {
        Wait::Sleep => {
            let victim = green::spawn(move || {
                let _guard = guard;
                green::sleep(FOREVER);
            });
            cancel_and_check(victim, early, &drops, settle);
        }
        Wait::ParkTimeout => {
            let timers = Reactor::current().timer_count();
            let victim = green::spawn(move || {
                let _guard = guard;
                loop {
                    green::park_timeout(FOREVER);
                }
            });
            cancel_and_check(victim, early, &drops, settle);
            assert_eq!(Reactor::current().timer_count(), timers, "park_timeout's timer leaked");
        }
        Wait::SocketRead => {
            let registrations = Reactor::current().io_count();
            let (mut socket, _peer) = Socket::pair();
            let victim = green::spawn(move || {
                let _guard = guard;
                socket.read(&mut [0; 8]).map(|_| ())
            });
            cancel_and_check(victim, early, &drops, settle);
            // The socket was deregistered by its destructor; others still read.
            assert_eq!(Reactor::current().io_count(), registrations);
            let (mut socket, mut peer) = Socket::pair();
            let reader = green::spawn(move || {
                let mut buf = [0; 8];
                socket.read(&mut buf).unwrap()
            });
            settle();
            peer.write_all(b"ping").unwrap();
            assert_eq!(reader.join().unwrap(), 4);
        }
        Wait::ChannelRecv => {
            let (tx, mut rx) = mpsc::channel::<u32>(1);
            let victim = green::spawn(move || {
                let _guard = guard;
                rx.recv_blocking()
            });
            cancel_and_check(victim, early, &drops, settle);
            assert!(tx.send_blocking(1).is_err(), "the receiver outlived its cancelled thread");
        }
        Wait::MutexLock | Wait::MutexHeld => {
            let mutex = Rc::new(Mutex::new(0));
            let main_guard = matches!(wait, Wait::MutexLock).then(|| mutex.try_lock().unwrap());
            let m = mutex.clone();
            let victim = green::spawn(move || {
                let _guard = guard;
                let mut held = m.lock_blocking();
                *held += 1;
                green::sleep(FOREVER);
            });
            let m = mutex.clone();
            let rival = green::spawn(move || *m.lock_blocking() += 10);
            cancel_and_check(victim, early, &drops, settle);
            drop(main_guard);
            rival.join().unwrap();
            let expected = if matches!(wait, Wait::MutexHeld) && !early { 11 } else { 10 };
            assert_eq!(*mutex.try_lock().unwrap(), expected);
        }
        Wait::SemaphoreAcquire => {
            let semaphore = Rc::new(Semaphore::new(1));
            let held = semaphore.try_acquire().unwrap();
            let s = semaphore.clone();
            let victim = green::spawn(move || {
                let _guard = guard;
                let _permit = s.acquire_blocking();
            });
            let s = semaphore.clone();
            let rival = green::spawn(move || s.acquire_blocking().is_ok());
            cancel_and_check(victim, early, &drops, settle);
            drop(held);
            assert!(rival.join().unwrap());
            assert_eq!(semaphore.available_permits(), 1);
        }
        Wait::Join => {
            let target = green::spawn(green::park);
            let target_thread = target.thread();
            let victim = green::spawn(move || {
                let _guard = guard;
                target.join().is_ok()
            });
            cancel_and_check(victim, early, &drops, settle);
            // The target runs on, detached, and still ends when woken.
            assert_eq!(green::stats().unwrap().live_threads, 2);
            target_thread.unpark();
            settle();
            assert_eq!(green::stats().unwrap().live_threads, 1);
        }
        Wait::ForeignFuture => {
            let victim = green::spawn(move || block_on(Forever { _guard: guard }));
            cancel_and_check(victim, early, &drops, settle);
        }
    }
}

fn cancel_and_check<T: std::fmt::Debug + Send + 'static>(
    victim: JoinHandle<T>,
    early: bool,
    drops: &Rc<Cell<usize>>,
    settle: impl Fn(),
) {
    if !early {
        settle();
        assert!(!victim.is_finished());
    }
    victim.cancel();
    assert_cancelled(victim);
    assert_eq!(drops.get(), 1, "the cancelled thread's destructors did not run once");
}

#[test]
fn cancel_at_every_wait() {
    watchdog::watchdog(LIMIT, || {
        green::run(|| {
            for wait in WAITS {
                for early in [false, true] {
                    cancel_in(wait, early);
                }
            }
        });
    });
}

#[test]
fn random_cancel_programs() {
    use proptest::prelude::*;
    use proptest::test_runner::{Config, TestRunner};

    watchdog::watchdog(LIMIT, || {
        let config = Config { cases: 48, failure_persistence: None, ..Config::default() };
        let program = proptest::collection::vec((0..WAITS.len(), any::<bool>()), 1..12);
        let result = TestRunner::new(config).run(&program, |program| {
            let (live, timers, registrations) = green::run(move || {
                let reactor = Reactor::current();
                let idle = (reactor.timer_count(), reactor.io_count());
                for (wait, early) in program {
                    cancel_in(WAITS[wait], early);
                }
                let stats = green::stats().unwrap();
                (stats.live_threads, reactor.timer_count() - idle.0, reactor.io_count() - idle.1)
            });
            prop_assert_eq!(live, 1, "threads left alive");
            prop_assert_eq!(timers, 0, "timers leaked");
            prop_assert_eq!(registrations, 0, "registrations leaked");
            Ok(())
        });
        if let Err(e) = result {
            panic!("{e}");
        }
    });
}

#[test]
fn cancelling_many_parked_threads_leaves_the_runtime_idle() {
    watchdog::watchdog(LIMIT, || {
        green::run(|| {
            let reactor = Reactor::current();
            let idle = (green::stats().unwrap().live_threads, reactor.timer_count());
            let drops = Rc::new(Cell::new(0));
            let handles: Vec<_> = (0..10_000)
                .map(|i| {
                    let guard = DropCount(drops.clone());
                    green::spawn(move || {
                        let _guard = guard;
                        if i % 2 == 0 { green::sleep(FOREVER) } else { green::park() }
                    })
                })
                .collect();
            green::yield_now();
            assert_eq!(green::stats().unwrap().live_threads, idle.0 + 10_000);
            assert_eq!(reactor.timer_count(), idle.1 + 5_000);
            for handle in &handles {
                handle.cancel();
            }
            for handle in handles {
                assert_cancelled(handle);
            }
            assert_eq!(drops.get(), 10_000);
            assert_eq!(green::stats().unwrap().live_threads, idle.0);
            assert_eq!(reactor.timer_count(), idle.1);
        });
    });
}

#[test]
fn a_running_thread_unwinds_at_its_next_park() {
    watchdog::watchdog(LIMIT, || {
        green::run(|| {
            let reached = Rc::new(Cell::new(0));
            let r = reached.clone();
            let slot: Rc<Cell<Option<JoinHandle<()>>>> = Rc::new(Cell::new(None));
            let own = slot.clone();
            let victim = green::spawn(move || {
                let me = own.take().expect("handle passed in");
                me.cancel();
                r.set(2); // still running: no park yet
                green::yield_now();
                r.set(3);
            });
            // The victim cancels itself through its own handle, then joins.
            slot.set(Some(victim));
            green::yield_now();
            green::yield_now();
            assert_eq!(reached.get(), 2);
            assert_eq!(green::stats().unwrap().live_threads, 1);
            assert_eq!(reached.get(), 2);
        });
    });
}

#[test]
fn a_cancel_from_another_os_thread_wakes_the_thread() {
    watchdog::watchdog(LIMIT, || {
        green::run(|| {
            let victim = green::spawn(|| green::sleep(FOREVER));
            green::yield_now();
            let (tx, rx) = std::sync::mpsc::channel();
            let canceller = std::thread::spawn(move || {
                let victim: JoinHandle<()> = rx.recv().unwrap();
                victim.cancel();
                victim
            });
            tx.send(victim).unwrap();
            // The victim is woken from the other thread, through the remote queue.
            let mut rounds = 0;
            while !canceller.is_finished() {
                green::sleep(Duration::from_millis(1));
                rounds += 1;
                assert!(rounds < 50_000);
            }
            assert_cancelled(canceller.join().unwrap());
        });
    });
}

#[test]
fn shield_delays_the_cancel_to_its_end() {
    watchdog::watchdog(LIMIT, || {
        green::run(|| {
            let steps = Rc::new(Cell::new(0));
            let s = steps.clone();
            let victim = green::spawn(move || {
                green::shield(|| {
                    green::sleep(Duration::from_millis(2));
                    s.set(1);
                    green::yield_now();
                    s.set(2);
                });
                green::yield_now();
                s.set(3);
            });
            green::yield_now();
            victim.cancel();
            assert_cancelled(victim);
            assert_eq!(steps.get(), 2);
        });
    });
}

#[test]
fn a_cancel_after_the_end_keeps_the_result() {
    watchdog::watchdog(LIMIT, || {
        green::run(|| {
            let done = green::spawn(|| 5);
            green::yield_now();
            assert!(done.is_finished());
            done.cancel();
            assert_eq!(done.join().unwrap(), 5);
        });
    });
}

#[test]
fn a_panic_is_not_a_cancel() {
    watchdog::watchdog(LIMIT, || {
        green::run(|| {
            let panicked = green::spawn(|| std::panic::resume_unwind(Box::new("boom")));
            let payload = panicked.join().unwrap_err();
            assert!(!green::is_cancelled(&*payload));
        });
    });
}

// ----- timeout ---------------------------------------------------------------

#[test]
fn timeout_around_a_read_elapses_and_the_socket_stays_usable() {
    watchdog::watchdog(LIMIT, || {
        green::run(|| {
            let (mut socket, mut peer) = Socket::pair();
            let drops = Rc::new(Cell::new(0));
            let guard = DropCount(drops.clone());
            let mut buf = [0; 8];
            let read = green::timeout(Duration::from_millis(5), || {
                let _guard = guard;
                socket.read(&mut buf)
            });
            assert!(read.is_err(), "a read with no data did not time out");
            assert_eq!(drops.get(), 1);
            peer.write_all(b"late").unwrap();
            let n = green::timeout(Duration::from_secs(30), || socket.read(&mut buf)).unwrap();
            assert_eq!(&buf[..n.unwrap()], b"late");
            assert_eq!(Reactor::current().timer_count(), 0);
        });
    });
}

#[test]
fn nested_timeouts_fire_innermost_shorter_first() {
    watchdog::watchdog(LIMIT, || {
        green::run(|| {
            let outer = green::timeout(Duration::from_secs(30), || {
                let inner = green::timeout(Duration::from_millis(2), || green::sleep(FOREVER));
                assert!(inner.is_err());
                // The outer deadline still holds: the thread goes on parking.
                green::sleep(Duration::from_millis(1));
                "outer finished"
            });
            assert_eq!(outer, Ok("outer finished"));
            let outer = green::timeout(Duration::from_millis(2), || {
                let inner = green::timeout(Duration::from_secs(30), || green::sleep(FOREVER));
                panic!("the inner timeout caught the outer's deadline: {inner:?}");
            });
            assert!(outer.is_err());
            assert_eq!(Reactor::current().timer_count(), 0);
        });
    });
}

#[test]
fn timeout_then_cancel() {
    watchdog::watchdog(LIMIT, || {
        green::run(|| {
            let victim = green::spawn(|| {
                let _ = green::timeout(Duration::from_millis(1), || green::sleep(FOREVER));
                green::sleep(FOREVER);
            });
            green::sleep(Duration::from_millis(5));
            assert!(!victim.is_finished());
            victim.cancel();
            assert_cancelled(victim);
        });
    });
}

// ----- scope -----------------------------------------------------------------

#[test]
fn scoped_threads_mutate_disjoint_parts_of_a_local_vec() {
    watchdog::watchdog(LIMIT, || {
        green::run(|| {
            let mut cells = vec![0u32; 64];
            let max_parked = Cell::new(0);
            let parked = Cell::new(0);
            green::scope(|s| {
                for (i, chunk) in cells.chunks_mut(8).enumerate() {
                    let (parked, max_parked) = (&parked, &max_parked);
                    s.spawn(move || {
                        for cell in chunk.iter_mut() {
                            parked.set(parked.get() + 1);
                            max_parked.set(max_parked.get().max(parked.get()));
                            green::yield_now();
                            parked.set(parked.get() - 1);
                            *cell = i as u32;
                        }
                    });
                }
            });
            let expected: Vec<u32> = (0..64).map(|i| i / 8).collect();
            assert_eq!(cells, expected);
            assert_eq!(max_parked.get(), 8, "the scoped threads did not interleave");
        });
    });
}

#[test]
fn a_scoped_panic_propagates_after_all_threads_ended() {
    watchdog::watchdog(LIMIT, || {
        green::run(|| {
            let ended = Cell::new(0);
            let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                green::scope(|s| {
                    s.spawn(|| panic!("scoped boom"));
                    s.spawn(|| {
                        green::sleep(Duration::from_millis(2));
                        ended.set(1);
                    });
                })
            }));
            assert!(result.is_err());
            assert_eq!(ended.get(), 1, "scope returned before its threads ended");
            // A panic that was joined does not propagate.
            let joined = green::scope(|s| s.spawn(|| panic!("joined boom")).join().is_err());
            assert!(joined);
        });
    });
}

#[test]
fn cancelling_a_scope_owner_cancels_its_threads_first() {
    watchdog::watchdog(LIMIT, || {
        green::run(|| {
            let drops = Rc::new(Cell::new(0));
            let d = drops.clone();
            let owner = green::spawn(move || {
                let local = DropCount(d.clone());
                green::scope(|s| {
                    for _ in 0..3 {
                        let local = &local;
                        let d = d.clone();
                        s.spawn(move || {
                            let _guard = DropCount(d);
                            green::sleep(FOREVER);
                            assert_eq!(local.0.get(), 0);
                        });
                    }
                });
            });
            green::yield_now();
            owner.cancel();
            assert_cancelled(owner);
            assert_eq!(drops.get(), 4);
        });
    });
}

#[test]
fn a_scope_cancelled_before_its_threads_started_still_returns() {
    watchdog::watchdog(LIMIT, || {
        green::run(|| {
            let ran = Rc::new(Cell::new(0));
            let own: Rc<Cell<Option<JoinHandle<()>>>> = Rc::new(Cell::new(None));
            let (r, o) = (ran.clone(), own.clone());
            let owner = green::spawn(move || {
                green::scope(|s| {
                    for _ in 0..3 {
                        let r = r.clone();
                        s.spawn(move || r.set(r.get() + 1));
                    }
                    // Cancel the owner before any of its threads ran.
                    let me = o.take().expect("handle passed in");
                    me.cancel();
                    o.set(Some(me));
                });
            });
            own.set(Some(owner));
            let mut rounds = 0;
            while green::stats().unwrap().live_threads > 1 {
                green::yield_now();
                rounds += 1;
                assert!(rounds < 1_000, "the scope never returned");
            }
            assert_eq!(ran.get(), 0, "cancelled threads ran");
            assert_cancelled(own.take().unwrap());
        });
    });
}

static ENV_ALIVE_AT_CHILD_DROP: std::sync::atomic::AtomicUsize =
    std::sync::atomic::AtomicUsize::new(0);

#[test]
fn shutdown_unwinds_scoped_threads_before_their_owner() {
    struct Env(Cell<bool>);
    impl Drop for Env {
        fn drop(&mut self) {
            self.0.set(false);
        }
    }
    struct ReadsEnv<'a>(&'a Env);
    impl Drop for ReadsEnv<'_> {
        fn drop(&mut self) {
            if self.0.0.get() {
                ENV_ALIVE_AT_CHILD_DROP.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            }
        }
    }
    watchdog::watchdog(LIMIT, || {
        green::run(|| {
            green::spawn(|| {
                let env = Env(Cell::new(true));
                green::scope(|s| {
                    for _ in 0..2 {
                        let env = &env;
                        s.spawn(move || {
                            let _reads = ReadsEnv(env);
                            green::sleep(FOREVER);
                        });
                    }
                });
            });
            green::yield_now();
            green::yield_now();
        });
        assert_eq!(ENV_ALIVE_AT_CHILD_DROP.load(std::sync::atomic::Ordering::SeqCst), 2);
    });
}

// ----- locals ----------------------------------------------------------------

std::thread_local! {
    static LOCAL_DROPS: Cell<usize> = const { Cell::new(0) };
    static LOCAL_INITS: Cell<usize> = const { Cell::new(0) };
}

struct Tracked(Cell<u32>);

impl Tracked {
    fn new() -> Tracked {
        LOCAL_INITS.with(|n| n.set(n.get() + 1));
        Tracked(Cell::new(0))
    }
}

impl Drop for Tracked {
    fn drop(&mut self) {
        LOCAL_DROPS.with(|n| n.set(n.get() + 1));
    }
}

greenloop_runtime::green_local! {
    static TRACKED: Tracked = Tracked::new();
    static UNUSED: Tracked = Tracked::new();
}

#[test]
fn locals_are_per_thread_lazy_and_dropped_on_exit_and_cancel() {
    watchdog::watchdog(LIMIT, || {
        green::run(|| {
            let before = (LOCAL_INITS.with(Cell::get), LOCAL_DROPS.with(Cell::get));
            let workers: Vec<_> = (1..=3u32)
                .map(|i| {
                    green::spawn(move || {
                        TRACKED.with(|t| t.0.set(i));
                        green::yield_now();
                        TRACKED.with(|t| t.0.get())
                    })
                })
                .collect();
            let values: Vec<u32> = workers.into_iter().map(|w| w.join().unwrap()).collect();
            assert_eq!(values, [1, 2, 3], "green threads shared a local");
            assert_eq!(LOCAL_INITS.with(Cell::get) - before.0, 3);
            assert_eq!(LOCAL_DROPS.with(Cell::get) - before.1, 3, "not dropped on exit");

            let victim = green::spawn(|| {
                TRACKED.with(|t| t.0.set(7));
                green::sleep(FOREVER);
            });
            green::yield_now();
            victim.cancel();
            assert_cancelled(victim);
            assert_eq!(LOCAL_DROPS.with(Cell::get) - before.1, 4, "not dropped on cancel");
            // Only a first use creates a value: one more, for this thread.
            green::spawn(|| UNUSED.try_with(|_| ()).is_some()).join().unwrap();
            assert_eq!(LOCAL_INITS.with(Cell::get) - before.0, 5);
        });
        assert!(TRACKED.try_with(|_| ()).is_none(), "a local outside a green thread");
    });
}

// ----- groups and pools ------------------------------------------------------

#[test]
fn a_pool_of_4_never_runs_more_than_4() {
    watchdog::watchdog(LIMIT, || {
        green::run(|| {
            let pool = green::Pool::new(4);
            let running = Rc::new(Cell::new(0));
            let max_running = Rc::new(Cell::new(0));
            let finished = Rc::new(Cell::new(0));
            for i in 0..64u64 {
                let (running, max_running, finished) =
                    (running.clone(), max_running.clone(), finished.clone());
                pool.spawn(move || {
                    running.set(running.get() + 1);
                    max_running.set(max_running.get().max(running.get()));
                    for _ in 0..(i % 3) {
                        green::yield_now();
                    }
                    green::sleep(Duration::from_micros(i % 5 * 100));
                    running.set(running.get() - 1);
                    finished.set(finished.get() + 1);
                });
                assert!(pool.len() <= 4);
            }
            pool.join();
            assert_eq!(finished.get(), 64);
            assert_eq!(max_running.get(), 4, "the pool did not fill up to 4 (or overfilled)");
            assert!(pool.is_empty());
        });
    });
}

#[test]
fn a_group_joins_and_cancels_all() {
    watchdog::watchdog(LIMIT, || {
        green::run(|| {
            let group = green::Group::new();
            let drops = Rc::new(Cell::new(0));
            let handles: Vec<_> = (0..10)
                .map(|_| {
                    let guard = DropCount(drops.clone());
                    group.spawn(move || {
                        let _guard = guard;
                        green::sleep(FOREVER);
                    })
                })
                .collect();
            let quick = group.spawn(|| 1);
            green::yield_now();
            assert_eq!(group.len(), 10);
            group.cancel_all();
            group.join();
            assert!(group.is_empty());
            assert_eq!(drops.get(), 10);
            assert_eq!(quick.join().unwrap(), 1);
            handles.into_iter().for_each(assert_cancelled);
            assert_eq!(green::stats().unwrap().live_threads, 1);
        });
    });
}
