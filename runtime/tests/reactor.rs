//! Integration tests of the reactor: I/O readiness (edge-triggered, with
//! tick-dated clears), sleep futures and their timers, and the remote
//! injection path.
//!
//! Every test body runs under [`watchdog`] on a fresh OS thread (so on a
//! fresh reactor) and fails instead of hanging.

use std::cell::{Cell, RefCell};
use std::future::poll_fn;
use std::io::{self, Read, Write};
use std::pin::pin;
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Barrier, Mutex};
use std::task::{Context, Poll, Wake, Waker};
use std::thread::ThreadId;
use std::time::{Duration, Instant};

use greenloop_runtime::reactor::{Direction, Inject, IoKey, Reactor, ReadyEvent};
use greenloop_runtime::{block_on, green, time};
use mio::net::UnixStream;

mod watchdog;

/// How long a test body may run before the test fails as hung.
const LIMIT: Duration = Duration::from_secs(30);

/// Upper bound on reactor turns a polling loop may take.
const MAX_TURNS: usize = 3_000;

/// Runs `body` on a fresh OS thread and returns its result, resuming its
/// panic; fails the test if it has not finished within [`LIMIT`].
fn watchdog<T: Send + 'static>(body: impl FnOnce() -> T + Send + 'static) -> T {
    watchdog::watchdog(LIMIT, body)
}

/// A waker that counts its wakes.
#[derive(Default)]
struct CountingWaker(AtomicUsize);

impl CountingWaker {
    fn count(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }
}

impl Wake for CountingWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

/// `poll_ready` with a no-op waker.
fn poll_now(reactor: &Reactor, key: IoKey, dir: Direction) -> Poll<ReadyEvent> {
    reactor.poll_ready(key, dir, &mut Context::from_waker(Waker::noop()))
}

/// Turns `reactor` (10 ms at most each) until `done()` holds; fails after
/// [`MAX_TURNS`].
fn turn_until(reactor: &Reactor, mut done: impl FnMut() -> bool) {
    for _ in 0..MAX_TURNS {
        if done() {
            return;
        }
        reactor.turn(Some(Duration::from_millis(10))).unwrap();
    }
    panic!("condition not reached after {MAX_TURNS} reactor turns");
}

/// Reads `stream` until `WouldBlock`; fails on EOF or error, or after 1,000
/// reads.
fn read_to_would_block(stream: &mut UnixStream) -> Vec<u8> {
    let mut got = Vec::new();
    let mut buf = [0u8; 64];
    for _ in 0..1000 {
        match stream.read(&mut buf) {
            Ok(0) => panic!("unexpected EOF"),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return got,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => panic!("read failed: {e}"),
        }
    }
    panic!("no WouldBlock after 1000 reads");
}

// ----- I/O readiness ---------------------------------------------------------

/// A green thread waits for read readiness: `Pending` until the peer
/// writes, then `Ready`; once drained and cleared, `Pending` again; a new
/// write is a new edge; deregistering frees the registration.
#[test]
fn read_readiness_in_green_thread() {
    watchdog(|| {
        green::run(|| {
            let reactor = Reactor::current();
            let baseline = reactor.io_count();
            let (mut a, mut b) = UnixStream::pair().unwrap();
            let key = reactor.register(&mut a).unwrap();
            assert_eq!(reactor.io_count(), baseline + 1);

            // A fresh stream becomes writable (the first edge after registering).
            let write_ready = block_on(poll_fn(|cx| reactor.poll_ready(key, Direction::Write, cx)));
            assert_eq!(poll_now(&reactor, key, Direction::Write), Poll::Ready(write_ready));

            let written = Rc::new(Cell::new(false));
            // Every poll of the reader: (had the peer written yet?, was it ready?).
            let polls = Rc::new(RefCell::new(Vec::new()));
            let reader = {
                let (written, polls) = (written.clone(), polls.clone());
                green::spawn(move || {
                    let reactor = Reactor::current();
                    let event = block_on(poll_fn(|cx| {
                        let poll = reactor.poll_ready(key, Direction::Read, cx);
                        polls.borrow_mut().push((written.get(), poll.is_ready()));
                        poll
                    }));
                    let got = read_to_would_block(&mut a);
                    reactor.clear_ready(key, event);
                    let after_clear = poll_now(&reactor, key, Direction::Read);
                    (a, got, after_clear.is_pending())
                })
            };
            // Writes only once the reader has polled (and found nothing).
            let writer = {
                let (written, polls) = (written.clone(), polls.clone());
                green::spawn(move || {
                    for _ in 0..1000 {
                        if !polls.borrow().is_empty() {
                            break;
                        }
                        green::yield_now();
                    }
                    assert!(!polls.borrow().is_empty(), "the reader never polled");
                    written.set(true);
                    b.write_all(b"hello").unwrap();
                    b
                })
            };
            let mut b = writer.join().unwrap();
            let (mut a, got, pending_after_clear) = reader.join().unwrap();
            assert_eq!(got, b"hello");
            assert!(pending_after_clear, "read readiness survived a drain and clear");

            let polls = polls.take();
            assert_eq!(
                polls.first(),
                Some(&(false, false)),
                "first poll must be Pending: {polls:?}"
            );
            assert_eq!(polls.last(), Some(&(true, true)), "last poll must be Ready: {polls:?}");
            assert!(polls.iter().all(|&(written, ready)| written || !ready), "{polls:?}");

            // A new write after the clear is a new edge.
            b.write_all(b"again").unwrap();
            let event = block_on(poll_fn(|cx| reactor.poll_ready(key, Direction::Read, cx)));
            assert_eq!(read_to_would_block(&mut a), b"again");
            reactor.clear_ready(key, event);
            assert!(poll_now(&reactor, key, Direction::Read).is_pending());

            reactor.deregister(key, &mut a).unwrap();
            assert_eq!(reactor.io_count(), baseline);
            // A deregistered key reports ready, so the caller's syscall
            // surfaces the real state.
            assert!(poll_now(&reactor, key, Direction::Read).is_ready());
        });
    });
}

/// Clearing with an old `ReadyEvent` keeps an edge that arrived after it
/// (the stale-readiness race), on a plain thread driving turns by hand.
#[test]
fn clear_ready_keeps_newer_edge() {
    watchdog(|| {
        let reactor = Reactor::current();
        let baseline = reactor.io_count();
        let (mut a, mut b) = UnixStream::pair().unwrap();
        let key = reactor.register(&mut a).unwrap();
        reactor.turn(Some(Duration::ZERO)).unwrap();

        let counter = Arc::new(CountingWaker::default());
        let waker = Waker::from(counter.clone());
        let mut cx = Context::from_waker(&waker);
        assert!(reactor.poll_ready(key, Direction::Read, &mut cx).is_pending());
        assert_eq!(counter.count(), 0);

        b.write_all(b"1").unwrap();
        turn_until(&reactor, || counter.count() > 0);
        assert_eq!(counter.count(), 1, "one edge, one wake");
        let Poll::Ready(first) = reactor.poll_ready(key, Direction::Read, &mut cx) else {
            panic!("woken but not ready");
        };
        assert_eq!(read_to_would_block(&mut a), b"1");

        // Before the reader clears, a new edge arrives and is processed.
        b.write_all(b"2").unwrap();
        turn_until(&reactor, || poll_now(&reactor, key, Direction::Read) != Poll::Ready(first));
        reactor.clear_ready(key, first); // stale: must not clear the newer edge
        let Poll::Ready(second) = poll_now(&reactor, key, Direction::Read) else {
            panic!("the newer edge was cleared by a stale ReadyEvent");
        };
        assert_ne!(second, first);
        assert_eq!(read_to_would_block(&mut a), b"2");
        reactor.clear_ready(key, second);
        assert!(poll_now(&reactor, key, Direction::Read).is_pending());

        reactor.deregister(key, &mut a).unwrap();
        assert_eq!(reactor.io_count(), baseline);
    });
}

/// A drained clear (after a short read) forgets the readiness of an open
/// stream, so the next read waits for the next edge instead of trying; but
/// it keeps a direction whose close came in the same edge as the data,
/// since that close is not reported again.
#[test]
fn clear_drained_keeps_a_closed_direction() {
    watchdog(|| {
        let reactor = Reactor::current();
        let (mut a, mut b) = UnixStream::pair().unwrap();
        let key = reactor.register(&mut a).unwrap();
        assert_eq!(reactor.ready_event(key, Direction::Read), None, "fresh means not ready");
        let mut buf = [0u8; 8];

        b.write_all(b"1").unwrap();
        turn_until(&reactor, || reactor.ready_event(key, Direction::Read).is_some());
        let event = reactor.ready_event(key, Direction::Read).unwrap();
        assert_eq!(poll_now(&reactor, key, Direction::Read), Poll::Ready(event));
        assert_eq!(a.read(&mut buf).unwrap(), 1, "a short read");
        reactor.clear_drained(key, event);
        assert_eq!(reactor.ready_event(key, Direction::Read), None, "drained, still ready");

        // The last byte and the close, in one edge.
        b.write_all(b"2").unwrap();
        drop(b);
        turn_until(&reactor, || reactor.ready_event(key, Direction::Read).is_some());
        let event = reactor.ready_event(key, Direction::Read).unwrap();
        assert_eq!(a.read(&mut buf).unwrap(), 1, "a short read");
        reactor.clear_drained(key, event);
        assert_eq!(
            reactor.ready_event(key, Direction::Read),
            Some(event),
            "a drained clear forgot the close"
        );
        assert_eq!(a.read(&mut buf).unwrap(), 0, "expected EOF");
        reactor.deregister(key, &mut a).unwrap();
    });
}

/// `block_on` on a plain thread must keep turning the reactor even when the
/// future keeps waking itself (a cooperative yield while waiting for I/O).
#[test]
fn self_waking_future_still_sees_io_on_plain_thread() {
    watchdog(|| {
        let reactor = Reactor::current();
        let (mut a, mut b) = UnixStream::pair().unwrap();
        let key = reactor.register(&mut a).unwrap();
        b.write_all(b"x").unwrap(); // readable now; only a reactor turn can tell
        let mut polls = 0u32;
        block_on(poll_fn(|cx| {
            if let Poll::Ready(event) = reactor.poll_ready(key, Direction::Read, cx) {
                return Poll::Ready(event);
            }
            polls += 1;
            assert!(polls < 1_000_000, "the reactor was never turned while the future yielded");
            cx.waker().wake_by_ref();
            Poll::Pending
        }));
        assert_eq!(read_to_would_block(&mut a), b"x");
        reactor.deregister(key, &mut a).unwrap();
    });
}

/// Peer hang-up is read readiness (the read then returns EOF).
#[test]
fn peer_close_is_read_readiness() {
    watchdog(|| {
        let reactor = Reactor::current();
        let (mut a, b) = UnixStream::pair().unwrap();
        let key = reactor.register(&mut a).unwrap();
        let counter = Arc::new(CountingWaker::default());
        let waker = Waker::from(counter.clone());
        assert!(
            reactor.poll_ready(key, Direction::Read, &mut Context::from_waker(&waker)).is_pending()
        );
        drop(b);
        turn_until(&reactor, || counter.count() > 0);
        assert!(poll_now(&reactor, key, Direction::Read).is_ready());
        assert_eq!(a.read(&mut [0u8; 8]).unwrap(), 0, "expected EOF");
        reactor.deregister(key, &mut a).unwrap();
    });
}

// ----- timers ----------------------------------------------------------------

#[test]
fn sleep_future_on_plain_thread() {
    watchdog(|| {
        assert!(!green::in_green_thread());
        let reactor = Reactor::current();
        let timers = reactor.timer_count();
        for ms in [0, 1, 5, 20] {
            let duration = Duration::from_millis(ms);
            let start = Instant::now();
            block_on(time::sleep(duration));
            let elapsed = start.elapsed();
            assert!(elapsed >= duration, "sleep({duration:?}) returned after {elapsed:?}");
            assert_eq!(reactor.timer_count(), timers);
        }
        // sleep_until an instant in the past is immediately ready.
        let mut past = pin!(time::sleep_until(Instant::now() - Duration::from_millis(1)));
        let mut cx = Context::from_waker(Waker::noop());
        assert!(past.as_mut().poll(&mut cx).is_ready());
        assert_eq!(reactor.timer_count(), timers);
    });
}

#[test]
fn dropping_a_polled_sleep_cancels_its_timer() {
    watchdog(|| {
        let reactor = Reactor::current();
        let timers = reactor.timer_count();
        let mut cx = Context::from_waker(Waker::noop());

        let mut sleep = Box::pin(time::sleep(Duration::from_secs(3600)));
        assert_eq!(reactor.timer_count(), timers, "a sleep arms its timer on first poll");
        assert!(sleep.as_mut().poll(&mut cx).is_pending());
        assert_eq!(reactor.timer_count(), timers + 1);
        assert!(sleep.as_mut().poll(&mut cx).is_pending());
        assert_eq!(reactor.timer_count(), timers + 1, "a re-poll must not arm a second timer");
        drop(sleep);
        assert_eq!(reactor.timer_count(), timers, "dropping the sleep leaked its timer");

        // reset moves the deadline: the old timer goes, one new one is armed.
        let mut sleep = Box::pin(time::sleep(Duration::from_secs(3600)));
        assert!(sleep.as_mut().poll(&mut cx).is_pending());
        let soon = Instant::now() + Duration::from_millis(5);
        sleep.as_mut().reset(soon);
        assert_eq!(sleep.deadline(), soon);
        assert_eq!(reactor.timer_count(), timers);
        let start = Instant::now();
        block_on(sleep.as_mut());
        assert!(Instant::now() >= soon && start.elapsed() < Duration::from_secs(3600));
        assert!(sleep.is_elapsed());
        assert_eq!(reactor.timer_count(), timers);
    });
}

/// The same in a green thread: a sleep polled with the green thread's waker
/// and then abandoned leaves no timer behind.
#[test]
fn dropping_a_polled_sleep_in_green_thread_cancels_its_timer() {
    watchdog(|| {
        green::run(|| {
            let reactor = Reactor::current();
            let timers = reactor.timer_count();
            let child = green::spawn(move || {
                let mut sleep = Box::pin(time::sleep(Duration::from_secs(3600)));
                let pending =
                    block_on(poll_fn(|cx| Poll::Ready(sleep.as_mut().poll(cx).is_pending())));
                let armed = Reactor::current().timer_count();
                drop(sleep);
                (pending, armed)
            });
            assert_eq!(child.join().unwrap(), (true, timers + 1));
            assert_eq!(reactor.timer_count(), timers);
        });
    });
}

/// A sleep armed on one thread and dropped on another: the timer stays in
/// the first reactor until it fires there, harmlessly, and is then freed.
#[test]
fn sleep_dropped_on_another_thread_fires_harmlessly() {
    watchdog(|| {
        let reactor = Reactor::current();
        let timers = reactor.timer_count();
        let mut sleep = Box::pin(time::sleep(Duration::from_millis(5)));
        let counter = Arc::new(CountingWaker::default());
        let waker = Waker::from(counter.clone());
        assert!(sleep.as_mut().poll(&mut Context::from_waker(&waker)).is_pending());
        assert_eq!(reactor.timer_count(), timers + 1);
        std::thread::spawn(move || drop(sleep)).join().unwrap();
        turn_until(&reactor, || reactor.timer_count() == timers);
        assert_eq!(counter.count(), 1, "the orphaned timer should fire its waker once");
    });
}

/// A cancelled timer's waker is kept for the next timer armed: that timer
/// wakes its own waker, whether it is the kept one's equal or not, and the
/// kept waker is released by the next turn at the latest.
#[test]
fn a_cancelled_timers_waker_serves_only_an_equal_waker() {
    watchdog(|| {
        let reactor = Reactor::current();
        let first = Arc::new(CountingWaker::default());
        let second = Arc::new(CountingWaker::default());
        let first_waker = Waker::from(first.clone());
        let second_waker = Waker::from(second.clone());
        let poll_with = |sleep: std::pin::Pin<&mut time::Sleep>, waker: &Waker| {
            sleep.poll(&mut Context::from_waker(waker)).is_pending()
        };
        // Arms an hour's timer with `waker` and cancels it (drops it).
        let arm_and_cancel = |waker: &Waker| {
            let mut cancelled = Box::pin(time::sleep(Duration::from_secs(3600)));
            assert!(poll_with(cancelled.as_mut(), waker));
        };

        // Armed and cancelled with `first`, armed again with `second`.
        arm_and_cancel(&first_waker);
        let mut armed = Box::pin(time::sleep(Duration::from_millis(2)));
        assert!(poll_with(armed.as_mut(), &second_waker));
        assert_eq!(Arc::strong_count(&first), 2, "only `first_waker` holds `first` now");
        turn_until(&reactor, || second.count() > 0);
        assert!(!poll_with(armed.as_mut(), &second_waker), "fired");
        assert_eq!((first.count(), second.count()), (0, 1));

        // Armed and cancelled with `first`, then armed with it again.
        arm_and_cancel(&first_waker);
        let mut armed = Box::pin(time::sleep(Duration::from_millis(2)));
        assert!(poll_with(armed.as_mut(), &first_waker));
        assert_eq!(Arc::strong_count(&first), 3, "`first_waker` and the armed timer");
        turn_until(&reactor, || first.count() > 0);
        assert_eq!((first.count(), second.count()), (1, 1));
        assert_eq!(Arc::strong_count(&first), 2, "the fired timer released its waker");

        // A cancelled timer's waker outlives it until the next turn only.
        arm_and_cancel(&second_waker);
        reactor.turn(Some(Duration::ZERO)).unwrap();
        assert_eq!(Arc::strong_count(&second), 2, "a turn released the cancelled timer's waker");
    });
}

// ----- remote injection ------------------------------------------------------

/// Records the OS thread it runs on.
#[derive(Default)]
struct Recorder(Mutex<Vec<ThreadId>>);

impl Inject for Recorder {
    fn run(self: Arc<Self>) {
        self.0.lock().unwrap().push(std::thread::current().id());
    }
}

#[test]
fn inject_runs_on_owner_thread_during_turn() {
    watchdog(|| {
        let reactor = Reactor::current();
        let owner = std::thread::current().id();
        let remote = reactor.remote().clone();
        assert_eq!(remote.id(), reactor.id());
        let recorder = Arc::new(Recorder::default());
        let item = recorder.clone();
        let foreign = std::thread::spawn(move || {
            remote.inject(item);
            std::thread::current().id()
        })
        .join()
        .unwrap();
        assert!(recorder.0.lock().unwrap().is_empty(), "ran before the owner turned");
        let mut ran = 0;
        for _ in 0..MAX_TURNS {
            ran += reactor.turn(Some(Duration::from_millis(10))).unwrap();
            if !recorder.0.lock().unwrap().is_empty() {
                break;
            }
        }
        assert!(ran >= 1, "turn did not count the injected item");
        let seen = recorder.0.lock().unwrap().clone();
        assert_eq!(seen, [owner], "injected item ran elsewhere (foreign: {foreign:?})");
        assert_ne!(foreign, owner);
    });
}

/// `turn` reports the injected items it ran, and a blocking `turn(None)`
/// (no timers, no I/O) returns when an item is injected from another thread.
#[test]
fn inject_wakes_a_blocking_turn() {
    watchdog(|| {
        let reactor = Reactor::current();
        assert_eq!(reactor.timer_count(), 0);
        let recorder = Arc::new(Recorder::default());
        let (remote, item) = (reactor.remote().clone(), recorder.clone());
        let (ready_tx, ready_rx) = mpsc::channel();
        let foreign = std::thread::spawn(move || {
            ready_rx.recv_timeout(LIMIT).unwrap();
            remote.inject(item);
        });
        ready_tx.send(()).unwrap();
        let mut ran = 0;
        for _ in 0..MAX_TURNS {
            ran += reactor.turn(None).unwrap();
            if !recorder.0.lock().unwrap().is_empty() {
                break;
            }
        }
        assert_eq!(recorder.0.lock().unwrap().len(), 1);
        assert!(ran >= 1, "turn did not count the injected item");
        foreign.join().unwrap();
    });
}

/// Counts its runs.
struct Tally(AtomicUsize);

impl Inject for Tally {
    fn run(self: Arc<Self>) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

/// Bursts of injections from several threads all run, exactly once each,
/// with the owner blocking in `turn(None)` between them (coalesced
/// notifications must never strand an item).
#[test]
fn concurrent_injections_all_run_once() {
    const THREADS: usize = 4;
    const PER_THREAD: usize = 2_500;
    watchdog(|| {
        let reactor = Reactor::current();
        let tallies: Vec<Arc<Tally>> =
            (0..THREADS * PER_THREAD).map(|_| Arc::new(Tally(AtomicUsize::new(0)))).collect();
        let barrier = Arc::new(Barrier::new(THREADS));
        let injectors: Vec<_> = tallies
            .chunks(PER_THREAD)
            .map(|chunk| {
                let (remote, barrier, chunk) =
                    (reactor.remote().clone(), barrier.clone(), chunk.to_vec());
                std::thread::spawn(move || {
                    barrier.wait();
                    for (i, tally) in chunk.into_iter().enumerate() {
                        remote.inject(tally);
                        if i % 64 == 0 {
                            std::thread::yield_now();
                        }
                    }
                })
            })
            .collect();
        let total = || tallies.iter().map(|t| t.0.load(Ordering::SeqCst)).sum::<usize>();
        let mut turns = 0;
        while total() < THREADS * PER_THREAD {
            turns += 1;
            assert!(turns <= 2 * THREADS * PER_THREAD + 100, "far more turns than items");
            reactor.turn(None).unwrap();
        }
        for injector in injectors {
            injector.join().unwrap();
        }
        reactor.turn(Some(Duration::ZERO)).unwrap();
        assert!(tallies.iter().all(|t| t.0.load(Ordering::SeqCst) == 1), "an item ran twice");
    });
}

/// Round after round, a foreign thread injects two items a varying moment
/// apart while the owner blocks in `turn(None)`: the second one often lands
/// while the owner is draining the first, and must not be stranded.
#[test]
fn injection_during_drain_is_not_stranded() {
    const ROUNDS: usize = 5_000;
    watchdog(|| {
        let reactor = Reactor::current();
        let tally = Arc::new(Tally(AtomicUsize::new(0)));
        let (go_tx, go_rx) = mpsc::channel::<usize>();
        let (remote, item) = (reactor.remote().clone(), tally.clone());
        let injector = std::thread::spawn(move || {
            for round in 0..ROUNDS {
                assert_eq!(go_rx.recv_timeout(LIMIT), Ok(round));
                remote.inject(item.clone());
                for _ in 0..(round * 7919) % 4096 {
                    std::hint::spin_loop();
                }
                remote.inject(item.clone());
            }
        });
        for round in 0..ROUNDS {
            go_tx.send(round).unwrap();
            let mut turns = 0;
            while tally.0.load(Ordering::SeqCst) < 2 * (round + 1) {
                turns += 1;
                assert!(turns <= 100, "round {round}: far more turns than injections");
                reactor.turn(None).unwrap();
            }
        }
        injector.join().unwrap();
        assert_eq!(tally.0.load(Ordering::SeqCst), 2 * ROUNDS);
    });
}
