//! Integration tests of green threads: spawn and join, panics, names and ids,
//! park/unpark (local and from other OS threads), sleep ordering, yield
//! fairness, `block_on` of hand-made futures, stack pooling, nested and
//! repeated runtimes, teardown of threads still alive, and a proptest of
//! random green programs.
//!
//! Every test body runs under [`watchdog`]: on a fresh OS thread (so on a
//! fresh reactor), with its result awaited for at most [`LIMIT`], so a lost
//! wake-up fails the test instead of hanging the suite.

use std::any::Any;
use std::cell::{Cell, RefCell};
use std::collections::HashSet;
use std::future::{Future, poll_fn};
use std::panic::{self, AssertUnwindSafe};
use std::pin::Pin;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use greenloop_runtime::block_on;
use greenloop_runtime::green::{self, Builder, JoinHandle, Runtime, Thread, ThreadId};
use greenloop_runtime::reactor::Reactor;

mod watchdog;

/// How long a test body may run before the test fails as hung.
const LIMIT: Duration = Duration::from_secs(30);

/// Runs `body` on a fresh OS thread and returns its result, resuming its
/// panic; fails the test if it has not finished within [`LIMIT`] (the hung
/// thread is left behind: nothing can stop it safely).
fn watchdog<T: Send + 'static>(body: impl FnOnce() -> T + Send + 'static) -> T {
    watchdog::watchdog(LIMIT, body)
}

/// The message of a panic payload, if it is a `&str` or a `String`.
fn payload_str(payload: &(dyn Any + Send)) -> Option<&str> {
    payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
}

/// A deterministic 64-bit LCG (Knuth's MMIX constants), for fixed-seed
/// "random" inputs.
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, bound: u64) -> u64 {
        self.0 =
            self.0.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % bound
    }
}

/// Parks until `done()` holds, failing after `max` wake-ups (park may wake
/// spuriously, so callers always re-check a condition).
fn park_until(max: usize, mut done: impl FnMut() -> bool) -> usize {
    let mut parks = 0;
    while !done() {
        assert!(parks < max, "parked {parks} times without the condition becoming true");
        green::park();
        parks += 1;
    }
    parks
}

// ----- join and panics -------------------------------------------------------

#[test]
fn join_returns_values() {
    watchdog(|| {
        assert_eq!(green::run(|| 7), 7);
        green::run(|| {
            let handles: Vec<JoinHandle<u64>> = (0..100u64)
                .map(|i| {
                    green::spawn(move || {
                        if i % 3 == 0 {
                            green::yield_now();
                        }
                        i * i
                    })
                })
                .collect();
            for (i, handle) in (0u64..).zip(handles) {
                assert_eq!(handle.join().unwrap(), i * i);
            }
            let owned = green::spawn(|| String::from("hello")).join().unwrap();
            assert_eq!(owned, "hello");

            // A thread that finished before the join: its result is kept.
            let early = green::spawn(|| vec![1u8, 2, 3]);
            assert!(!early.is_finished(), "the child cannot have run: main did not yield");
            green::yield_now();
            assert!(early.is_finished(), "the child should have run to completion");
            assert_eq!(early.join().unwrap(), [1, 2, 3]);
        });
    });
}

#[test]
fn join_of_panicking_thread_returns_payload() {
    watchdog(|| {
        green::run(|| {
            let progress = Rc::new(Cell::new(0u32));
            let steady = {
                let progress = progress.clone();
                green::spawn(move || {
                    for _ in 0..10 {
                        progress.set(progress.get() + 1);
                        green::yield_now();
                    }
                    "steady"
                })
            };
            let str_panic = Builder::new()
                .name("panicker".into())
                .spawn(|| {
                    green::yield_now();
                    panic!("boom")
                })
                .unwrap();
            // A runtime value, so the payload is a formatted `String`.
            let string_panic = green::spawn(|| -> u32 {
                let n = std::hint::black_box(42);
                panic!("boom {n}")
            });

            let err = str_panic.join().unwrap_err();
            assert_eq!(err.downcast_ref::<&str>(), Some(&"boom"));
            let err = string_panic.join().unwrap_err();
            assert_eq!(err.downcast_ref::<String>().map(String::as_str), Some("boom 42"));
            assert!(progress.get() >= 1, "the steady thread should have run meanwhile");

            assert_eq!(steady.join().unwrap(), "steady");
            assert_eq!(progress.get(), 10);
            // The runtime is still fine.
            assert_eq!(green::spawn(|| 5).join().unwrap(), 5);
            assert_eq!(green::stats().unwrap().live_threads, 1);
        });
    });
}

#[test]
fn run_propagates_main_panic() {
    watchdog(|| {
        let dropped = Arc::new(AtomicBool::new(false));
        let flag = dropped.clone();
        let result = panic::catch_unwind(AssertUnwindSafe(|| {
            green::run(move || -> u32 {
                // A thread left parked when main panics is unwound too.
                green::spawn(move || {
                    let _guard = SetOnDrop(flag);
                    park_until(1000, || false);
                });
                green::yield_now();
                panic!("main closure failed")
            })
        }));
        let payload = result.expect_err("run should resume the main closure's panic");
        assert_eq!(payload_str(&*payload), Some("main closure failed"));
        assert!(dropped.load(Ordering::SeqCst), "the parked thread was not unwound");
        // The OS thread can start a runtime again.
        assert_eq!(green::run(|| green::spawn(|| 3).join().unwrap()), 3);
    });
}

struct SetOnDrop(Arc<AtomicBool>);

impl Drop for SetOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

// ----- names and ids ---------------------------------------------------------

#[test]
fn builder_name_is_visible() {
    watchdog(|| {
        green::run(|| {
            let named = Builder::new()
                .name("worker-7".into())
                .spawn(|| green::current().name().map(str::to_owned))
                .unwrap();
            assert_eq!(named.thread().name(), Some("worker-7"));
            assert_eq!(named.join().unwrap().as_deref(), Some("worker-7"));

            let anonymous = green::spawn(|| green::current().name().is_none());
            assert_eq!(anonymous.thread().name(), None);
            assert!(anonymous.join().unwrap());
        });
    });
}

#[test]
fn ids_are_unique_across_1000_threads() {
    watchdog(|| {
        green::run(|| {
            let main_id = green::current().id();
            let handles: Vec<_> = (0..1000)
                .map(|_| {
                    green::spawn(|| {
                        let me = green::current().id();
                        assert_eq!(green::try_current().map(|t| t.id()), Some(me));
                        me
                    })
                })
                .collect();
            let mut ids = HashSet::new();
            for handle in handles {
                let expected = handle.thread().id();
                let id = handle.join().unwrap();
                assert_eq!(id, expected, "current().id() differs from the handle's");
                assert!(ids.insert(id), "duplicate id {id:?}");
            }
            assert_eq!(ids.len(), 1000);
            assert!(!ids.contains(&main_id));
        });
    });
}

#[test]
fn current_inside_and_outside() {
    watchdog(|| {
        assert!(green::try_current().is_none());
        assert!(!green::in_green_thread());
        assert!(green::stats().is_none());
        assert!(Builder::new().spawn(|| ()).is_err(), "spawn outside a runtime must fail");

        let ids = green::run(|| {
            assert!(green::in_green_thread());
            assert!(green::stats().is_some());
            let main = green::try_current().expect("try_current() is None in run's closure");
            let child = green::spawn(|| green::try_current().map(|t| t.id())).join().unwrap();
            (main.id(), child)
        });
        assert!(ids.1.is_some_and(|child| child != ids.0));

        // After run returned, the thread is a plain OS thread again.
        assert!(green::try_current().is_none());
        assert!(!green::in_green_thread());
        let outside = panic::catch_unwind(green::current);
        assert!(outside.is_err(), "current() outside a green thread must panic");
        let spawned = panic::catch_unwind(|| green::spawn(|| ()));
        assert!(spawned.is_err(), "green::spawn outside a runtime must panic");
    });
}

// ----- park / unpark ---------------------------------------------------------

#[test]
fn unpark_before_park_is_not_lost() {
    watchdog(|| {
        green::run(|| {
            // On the current thread: park consumes the token without switching.
            let ran = Rc::new(Cell::new(false));
            let other = {
                let ran = ran.clone();
                green::spawn(move || ran.set(true))
            };
            green::current().unpark();
            green::park();
            assert!(!ran.get(), "park with a token available must return without switching");
            other.join().unwrap();
            assert!(ran.get());

            // On a thread that has not started yet: its first park returns.
            let late = green::spawn(|| {
                green::park();
                1
            });
            late.thread().unpark();
            assert_eq!(late.join().unwrap(), 1);
        });
    });
}

#[test]
fn tokens_do_not_accumulate() {
    watchdog(|| {
        green::run(|| {
            let me = green::current();
            me.unpark();
            me.unpark();
            green::park(); // consumes the one token
            let timeout = Duration::from_millis(5);
            let start = Instant::now();
            green::park_timeout(timeout); // no token left: waits for the timer
            assert!(start.elapsed() >= timeout, "a second token was left: {:?}", start.elapsed());
        });
    });
}

#[test]
fn unpark_from_another_green_thread() {
    watchdog(|| {
        green::run(|| {
            let trace = Rc::new(RefCell::new(Vec::new()));
            let flag = Rc::new(Cell::new(false));
            let sleeper = {
                let (trace, flag) = (trace.clone(), flag.clone());
                green::spawn(move || {
                    trace.borrow_mut().push("a parks");
                    let parks = park_until(1000, || flag.get());
                    trace.borrow_mut().push("a woke");
                    parks
                })
            };
            let target = sleeper.thread();
            let waker = {
                let trace = trace.clone();
                green::spawn(move || {
                    trace.borrow_mut().push("b unparks");
                    flag.set(true);
                    target.unpark();
                })
            };
            waker.join().unwrap();
            assert!(sleeper.join().unwrap() >= 1, "the sleeper never parked");
            assert_eq!(*trace.borrow(), ["a parks", "b unparks", "a woke"]);
        });
    });
}

#[test]
fn unpark_from_foreign_os_thread() {
    watchdog(|| {
        green::run(|| {
            let flag = Arc::new(AtomicBool::new(false));
            let (handle_tx, handle_rx) = mpsc::channel::<Thread>();
            let parked = {
                let flag = flag.clone();
                green::spawn(move || park_until(1000, || flag.load(Ordering::Acquire)))
            };
            // Runs after `parked` has parked (it is queued behind it), so the
            // foreign unpark finds it parked and takes the remote path.
            let target = parked.thread();
            let messenger = green::spawn(move || handle_tx.send(target).unwrap());
            let foreign = std::thread::spawn(move || {
                let target = handle_rx.recv_timeout(LIMIT).expect("no handle to unpark");
                flag.store(true, Ordering::Release);
                target.unpark();
            });
            assert!(parked.join().unwrap() >= 1, "the green thread never parked");
            messenger.join().unwrap();
            foreign
        })
        .join()
        .unwrap();
    });
}

/// A handle outliving its runtime: an unpark from another OS thread after
/// the runtime ended goes nowhere, even though the next runtime on this OS
/// thread has a parked thread in the same slot (and the same reactor's
/// mailbox carries the wake to it).
#[test]
fn unpark_after_the_runtime_ended_goes_nowhere() {
    watchdog(|| {
        let stale = green::run(|| {
            let parked = green::spawn(|| {
                loop {
                    green::park();
                }
            });
            green::yield_now(); // it parks; teardown unwinds it
            parked.thread()
        });
        green::run(|| {
            let woken = Rc::new(Cell::new(false));
            let parked = {
                let woken = woken.clone();
                green::spawn(move || {
                    green::park();
                    woken.set(true);
                })
            };
            // A second parked thread, woken from another OS thread after the
            // stale unpark: once it has run, the scheduler has taken in the
            // stale unpark too (it was sent first), and a thread it woke
            // would have run before this one.
            let sentinel = green::spawn(green::park);
            green::yield_now(); // both park, `parked` in the stale thread's slot
            let sentinel_thread = sentinel.thread();
            std::thread::spawn(move || {
                stale.unpark();
                sentinel_thread.unpark();
            })
            .join()
            .unwrap();
            sentinel.join().unwrap();
            assert!(!woken.get(), "a stale unpark woke a thread of the next runtime");
            parked.thread().unpark();
            parked.join().unwrap();
            assert!(woken.get());
        });
    });
}

/// 1,000 round trips: a green thread parks until an OS thread has seen its
/// message and unparked it. Unparks race with parks in both orders.
#[test]
fn remote_unpark_ping_pong() {
    watchdog(|| {
        const ROUNDS: usize = 1000;
        green::run(|| {
            let progress = Arc::new(AtomicUsize::new(0));
            let (tx, rx) = mpsc::channel::<usize>();
            let me = green::current();
            let seen = progress.clone();
            let pong = std::thread::spawn(move || {
                for round in 1..=ROUNDS {
                    assert_eq!(rx.recv_timeout(LIMIT), Ok(round));
                    seen.store(round, Ordering::Release);
                    me.unpark();
                }
            });
            for round in 1..=ROUNDS {
                tx.send(round).unwrap();
                park_until(10_000, || progress.load(Ordering::Acquire) >= round);
            }
            pong
        })
        .join()
        .unwrap();
    });
}

#[test]
fn park_timeout_returns_after_timeout() {
    watchdog(|| {
        green::run(|| {
            let reactor = Reactor::current();
            let timers = reactor.timer_count();
            let timeout = Duration::from_millis(20);
            let start = Instant::now();
            green::park_timeout(timeout);
            let elapsed = start.elapsed();
            assert!(elapsed >= timeout, "park_timeout returned after {elapsed:?} < {timeout:?}");
            assert_eq!(reactor.timer_count(), timers);

            // The same in a spawned thread while main waits in join.
            let child = green::spawn(move || {
                let start = Instant::now();
                green::park_timeout(timeout);
                start.elapsed()
            });
            assert!(child.join().unwrap() >= timeout);
            assert_eq!(reactor.timer_count(), timers);
        });
    });
}

#[test]
fn park_timeout_woken_early_cancels_its_timer() {
    watchdog(|| {
        green::run(|| {
            let reactor = Reactor::current();
            let timers = reactor.timer_count();
            let flag = Rc::new(Cell::new(false));
            let sleeper = {
                let flag = flag.clone();
                green::spawn(move || {
                    // Longer than the watchdog: only the unpark can end it in time.
                    green::park_timeout(Duration::from_secs(600));
                    flag.get()
                })
            };
            let target = sleeper.thread();
            green::spawn(move || {
                flag.set(true);
                target.unpark();
            });
            assert!(sleeper.join().unwrap(), "woke before the unpark");
            assert_eq!(reactor.timer_count(), timers, "the timeout's timer was not cancelled");
        });
    });
}

/// `std::thread::park_timeout(Duration::MAX)` is valid; the green one should
/// be too (here a token is available, so it must return at once).
#[test]

fn park_timeout_with_huge_timeout() {
    watchdog(|| {
        green::run(|| {
            // A token is there: the wait returns at once, however long its
            // timeout (no overflow computing the deadline).
            green::current().unpark();
            green::park_timeout(Duration::MAX);
            // No token: the huge deadline is armed, and an unpark from
            // another green thread ends the wait.
            let me = green::current();
            let waker = green::spawn(move || me.unpark());
            green::park_timeout(Duration::MAX);
            assert!(waker.is_finished(), "the wait ended by the unpark, after it ran");
        });
    });
}

/// std semantics: an unpark that arrives while the thread is blocked in
/// something other than `park` (here `sleep`) leaves the token for the next
/// `park`, which then returns at once (`std::thread::sleep` does not consume
/// park tokens). Whether that `park` switched away is seen by a marker thread
/// queued just before it (the marker unparks it, so nothing hangs).
#[test]
fn unpark_during_sleep_is_kept_for_next_park() {
    watchdog(|| {
        green::run(|| {
            let sleeper = green::spawn(|| {
                green::sleep(Duration::from_millis(20));
                let marker_ran = Rc::new(Cell::new(false));
                let marker = {
                    let (marker_ran, me) = (marker_ran.clone(), green::current());
                    green::spawn(move || {
                        marker_ran.set(true);
                        me.unpark();
                    })
                };
                green::park(); // the unpark below happened before this park
                let switched = marker_ran.get();
                marker.join().unwrap();
                switched
            });
            let target = sleeper.thread();
            // Runs while the sleeper sleeps (it is queued behind it).
            green::spawn(move || target.unpark()).join().unwrap();
            let switched = sleeper.join().unwrap();
            assert!(!switched, "the unpark sent during sleep() was consumed by sleep()");
        });
    });
}

// ----- sleep -----------------------------------------------------------------

/// 1,000 threads sleep random durations; wake order follows durations.
///
/// Every thread first waits at a gate, then all start their sleeps within a
/// measured window `spread` (from the first sleep's start to the moment all
/// sleeps are armed). Each deadline is rounded up to a whole millisecond of
/// the reactor's clock, so if `d_j >= d_i + spread + 2 ms`, thread `j`'s
/// deadline lies in a strictly later millisecond than `i`'s and `i` must wake
/// first. Closer pairs may wake in either order.
#[test]
fn sleep_wakes_in_duration_order() {
    const N: usize = 1000;
    let mut rng = Lcg(0x5EED_F00D_1EAF);
    let durations: Vec<Duration> =
        (0..N).map(|_| Duration::from_micros(rng.below(50_000))).collect();
    let plan = durations.clone();
    let (log, results, armed) = watchdog(move || {
        green::run(move || {
            let reactor = Reactor::current();
            let timers = reactor.timer_count();
            let log = Rc::new(RefCell::new(Vec::with_capacity(N)));
            let gate = Rc::new(Cell::new(false));
            let entered = Rc::new(Cell::new(0usize));
            let handles: Vec<_> = plan
                .iter()
                .enumerate()
                .map(|(i, &d)| {
                    let (log, gate, entered) = (log.clone(), gate.clone(), entered.clone());
                    green::spawn(move || {
                        park_until(1000, || gate.get());
                        let start = Instant::now();
                        entered.set(entered.get() + 1);
                        // No switch between here and the timer being armed.
                        green::sleep(d);
                        let slept = start.elapsed();
                        log.borrow_mut().push(i);
                        (start, slept)
                    })
                })
                .collect();
            green::yield_now(); // let every thread reach the gate
            gate.set(true);
            for handle in &handles {
                handle.thread().unpark();
            }
            let mut spins = 0;
            while entered.get() < N {
                assert!(spins < 100 * N, "threads did not all start sleeping");
                green::yield_now();
                spins += 1;
            }
            let armed = Instant::now(); // every sleep is armed (or done) by now
            let results: Vec<(Instant, Duration)> =
                handles.into_iter().map(|h| h.join().unwrap()).collect();
            assert_eq!(reactor.timer_count(), timers);
            (log.take(), results, armed)
        })
    });

    assert_eq!(log.len(), N);
    for (i, &(_, slept)) in results.iter().enumerate() {
        assert!(slept >= durations[i], "thread {i} slept {slept:?} < {:?}", durations[i]);
    }
    let first = results.iter().map(|&(start, _)| start).min().unwrap();
    let spread = armed - first;
    let mut position = vec![usize::MAX; N];
    for (pos, &i) in log.iter().enumerate() {
        assert_eq!(position[i], usize::MAX, "thread {i} logged twice");
        position[i] = pos;
    }
    let margin = spread + Duration::from_millis(2);
    let mut checked = 0usize;
    for i in 0..N {
        for j in 0..N {
            if durations[j] >= durations[i] + margin {
                checked += 1;
                assert!(
                    position[i] < position[j],
                    "thread {i} ({:?}) woke after thread {j} ({:?}); start spread {spread:?}",
                    durations[i],
                    durations[j]
                );
            }
        }
    }
    eprintln!("sleep order: start spread {spread:?}, {checked} ordered pairs checked");
}

// ----- yield -----------------------------------------------------------------

#[test]
fn yield_now_is_round_robin() {
    let trace = watchdog(|| {
        green::run(|| {
            let trace = Rc::new(RefCell::new(Vec::new()));
            let handles: Vec<_> = (0..3)
                .map(|id| {
                    let trace = trace.clone();
                    green::spawn(move || {
                        for _ in 0..5 {
                            trace.borrow_mut().push(id);
                            green::yield_now();
                        }
                    })
                })
                .collect();
            for handle in handles {
                handle.join().unwrap();
            }
            trace.take()
        })
    });
    assert_eq!(trace, [0, 1, 2].repeat(5));
}

// ----- block_on --------------------------------------------------------------

/// A hand-written future completed by another thread: a flag, a value and
/// the waker of the last pending poll.
#[derive(Default)]
struct Slot {
    done: bool,
    value: u32,
    waker: Option<Waker>,
    pending_polls: u32,
}

struct HandMade {
    slot: Arc<Mutex<Slot>>,
    /// Told once, after the first `Pending` (and after the waker is stored).
    first_pending: Option<mpsc::Sender<()>>,
}

impl Future for HandMade {
    type Output = u32;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<u32> {
        let this = self.get_mut();
        let mut slot = this.slot.lock().unwrap();
        if slot.done {
            return Poll::Ready(slot.value);
        }
        slot.waker = Some(cx.waker().clone());
        slot.pending_polls += 1;
        drop(slot);
        if let Some(tx) = this.first_pending.take() {
            let _ = tx.send(());
        }
        Poll::Pending
    }
}

/// Completes `slot` with `value` and wakes its waker, after every receiver
/// in `wait_for` has signalled.
fn complete_later(
    slot: Arc<Mutex<Slot>>,
    value: u32,
    wait_for: Vec<mpsc::Receiver<()>>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        for rx in wait_for {
            rx.recv_timeout(LIMIT).expect("completer: signal never came");
        }
        let waker = {
            let mut slot = slot.lock().unwrap();
            slot.done = true;
            slot.value = value;
            slot.waker.take()
        };
        waker.expect("a pending poll stored no waker").wake();
    })
}

#[test]
fn block_on_hand_made_future_on_plain_thread() {
    watchdog(|| {
        assert!(!green::in_green_thread());
        let slot = Arc::new(Mutex::new(Slot::default()));
        let (tx, rx) = mpsc::channel();
        let completer = complete_later(slot.clone(), 41, vec![rx]);
        let value = block_on(HandMade { slot: slot.clone(), first_pending: Some(tx) });
        assert_eq!(value, 41);
        assert!(slot.lock().unwrap().pending_polls >= 1);
        completer.join().unwrap();
    });
}

#[test]
fn block_on_hand_made_future_in_green_thread() {
    watchdog(|| {
        green::run(|| {
            let slot = Arc::new(Mutex::new(Slot::default()));
            let (pending_tx, pending_rx) = mpsc::channel();
            let (advanced_tx, advanced_rx) = mpsc::channel();
            // The completer waits until the future was pending AND another
            // green thread ran while the caller was blocked in block_on.
            let completer = complete_later(slot.clone(), 42, vec![pending_rx, advanced_rx]);

            let blocked = Rc::new(Cell::new(false));
            let stop = Rc::new(Cell::new(false));
            let counter = {
                let (blocked, stop) = (blocked.clone(), stop.clone());
                green::spawn(move || {
                    let mut advanced_tx = Some(advanced_tx);
                    let (mut while_blocked, mut iterations) = (0u64, 0u64);
                    let start = Instant::now();
                    while !stop.get() {
                        if blocked.get() {
                            while_blocked += 1;
                            if let Some(tx) = advanced_tx.take() {
                                tx.send(()).unwrap();
                            }
                        }
                        iterations += 1;
                        assert!(
                            iterations < 100_000_000 && start.elapsed() < LIMIT,
                            "block_on never returned"
                        );
                        green::yield_now();
                    }
                    while_blocked
                })
            };
            blocked.set(true);
            let value = block_on(HandMade { slot: slot.clone(), first_pending: Some(pending_tx) });
            blocked.set(false);
            stop.set(true);
            assert_eq!(value, 42);
            assert!(slot.lock().unwrap().pending_polls >= 1);
            let while_blocked = counter.join().unwrap();
            assert!(while_blocked >= 1, "no other green thread ran during block_on");
            completer
        })
        .join()
        .unwrap();
    });
}

#[test]
fn future_awaits_green_join_handles() {
    watchdog(|| {
        green::run(|| {
            let sleeper = green::spawn(|| {
                green::sleep(Duration::from_millis(2));
                20
            });
            let yielder = green::spawn(|| {
                green::yield_now();
                22
            });
            let panicker = green::spawn(|| -> u32 { panic!("awaited panic") });
            let (sum, message) = block_on(async move {
                let a = sleeper.await.unwrap();
                let b = yielder.await.unwrap();
                let err = panicker.await.unwrap_err();
                (a + b, payload_str(&*err).map(str::to_owned))
            });
            assert_eq!(sum, 42);
            assert_eq!(message.as_deref(), Some("awaited panic"));

            // A hand-polled "join all" over handles that finish out of order.
            let mut handles: Vec<Option<JoinHandle<usize>>> = (0..5)
                .map(|i| {
                    Some(green::spawn(move || {
                        for _ in 0..(5 - i) {
                            green::yield_now();
                        }
                        i
                    }))
                })
                .collect();
            let mut results = vec![None; 5];
            block_on(poll_fn(|cx| {
                for (slot, result) in handles.iter_mut().zip(results.iter_mut()) {
                    if let Some(handle) = slot
                        && let Poll::Ready(value) = Pin::new(handle).poll(cx)
                    {
                        *result = Some(value.unwrap());
                        *slot = None;
                    }
                }
                if handles.iter().all(Option::is_none) { Poll::Ready(()) } else { Poll::Pending }
            }));
            assert_eq!(results, [Some(0), Some(1), Some(2), Some(3), Some(4)]);
        });
    });
}

/// A future that "yields" the executor way (wakes itself, returns
/// `Pending`) while waiting for another green thread must let that thread
/// run: block_on in a green thread should suspend it, not spin.
#[test]
fn self_waking_future_lets_other_green_threads_run() {
    watchdog(|| {
        green::run(|| {
            let flag = Rc::new(Cell::new(false));
            let setter = {
                let flag = flag.clone();
                green::spawn(move || flag.set(true))
            };
            let mut polls = 0u32;
            block_on(poll_fn(|cx| {
                if flag.get() {
                    return Poll::Ready(());
                }
                polls += 1;
                assert!(
                    polls < 1_000_000,
                    "other green threads never ran while the future yielded"
                );
                cx.waker().wake_by_ref();
                Poll::Pending
            }));
            setter.join().unwrap();
        });
    });
}

/// A `JoinHandle` sent to a plain OS thread is joined there (blocking it)
/// while the runtime keeps running.
#[test]
fn join_from_foreign_os_thread() {
    watchdog(|| {
        green::run(|| {
            let go = Arc::new(AtomicBool::new(false));
            let joined = Arc::new(AtomicBool::new(false));
            let child = {
                let go = go.clone();
                green::spawn(move || {
                    park_until(1000, || go.load(Ordering::Acquire));
                    99u32
                })
            };
            let child_thread = child.thread();
            let main = green::current();
            let (ready_tx, ready_rx) = mpsc::channel();
            let foreign = {
                let joined = joined.clone();
                std::thread::spawn(move || {
                    ready_tx.send(()).unwrap();
                    let value = child.join();
                    joined.store(true, Ordering::Release);
                    main.unpark();
                    value.unwrap()
                })
            };
            ready_rx.recv_timeout(LIMIT).unwrap(); // blocks briefly: the foreign thread is starting
            go.store(true, Ordering::Release);
            child_thread.unpark();
            park_until(1000, || joined.load(Ordering::Acquire));
            assert_eq!(foreign.join().unwrap(), 99);
        });
    });
}

/// A green thread of one runtime joins a green thread of a runtime on
/// another OS thread: remote wakes in both directions.
#[test]
fn join_across_runtimes() {
    watchdog(|| {
        let (handoff_tx, handoff_rx) =
            mpsc::channel::<(JoinHandle<u32>, Thread, Arc<AtomicBool>)>();
        let first = std::thread::spawn(move || {
            green::run(move || {
                let go = Arc::new(AtomicBool::new(false));
                let child = {
                    let go = go.clone();
                    green::spawn(move || {
                        park_until(1000, || go.load(Ordering::Acquire));
                        7
                    })
                };
                handoff_tx.send((child, green::current(), go)).unwrap();
                // Stay alive until our child has finished: the other runtime
                // unparks us once it has joined it.
                park_until(1000, || green::stats().unwrap().live_threads == 1);
            })
        });
        let (child, first_main, go) = handoff_rx.recv_timeout(LIMIT).unwrap();
        let value = green::run(move || {
            let child_thread = child.thread();
            let joiner = green::spawn(move || child.join().unwrap());
            green::yield_now(); // the joiner is now parked in join
            go.store(true, Ordering::Release);
            child_thread.unpark();
            let value = joiner.join().unwrap();
            first_main.unpark();
            value
        });
        assert_eq!(value, 7);
        first.join().unwrap();
    });
}

// ----- many threads, stacks and runtimes -------------------------------------

#[test]
fn hundred_thousand_threads_in_batches() {
    const TOTAL: u64 = 100_000;
    const BATCH: u64 = 1_000;
    const CACHE: usize = 256;
    let stats = watchdog::watchdog(Duration::from_secs(120), || {
        Runtime::new().max_cached_stacks(CACHE).run(|| {
            let mut sum = 0u64;
            for batch in 0..TOTAL / BATCH {
                let handles: Vec<_> = (0..BATCH)
                    .map(|i| {
                        Builder::new()
                            .stack_size(16 * 1024)
                            .spawn(move || {
                                green::yield_now(); // all of the batch is alive at once
                                batch * BATCH + i
                            })
                            .unwrap()
                    })
                    .collect();
                assert_eq!(green::stats().unwrap().live_threads, BATCH as usize + 1);
                for handle in handles {
                    sum += handle.join().unwrap();
                }
                let stats = green::stats().unwrap();
                assert_eq!(stats.live_threads, 1);
                assert!(stats.cached_stacks <= CACHE, "{stats:?}");
            }
            assert_eq!(sum, TOTAL * (TOTAL - 1) / 2);
            green::stats().unwrap()
        })
    });
    assert_eq!(stats.live_threads, 1);
    assert!(stats.cached_stacks <= CACHE, "{stats:?}");
    assert!(stats.cached_stacks > 0, "finished stacks are not pooled: {stats:?}");
}

#[test]
fn builder_stack_size_is_usable() {
    watchdog(|| {
        green::run(|| {
            let big = Builder::new()
                .stack_size(512 * 1024)
                .spawn(|| {
                    let mut buf = [0u8; 256 * 1024];
                    buf[0] = 1;
                    buf[buf.len() - 1] = 2;
                    std::hint::black_box(&mut buf);
                    buf.iter().map(|&b| u32::from(b)).sum::<u32>()
                })
                .unwrap();
            assert_eq!(big.join().unwrap(), 3);
            // A tiny request is rounded up to a workable minimum.
            assert_eq!(Builder::new().stack_size(0).spawn(|| 5).unwrap().join().unwrap(), 5);
            // An impossible size is an error, not a crash.
            assert!(Builder::new().stack_size(usize::MAX).spawn(|| ()).is_err());
            assert_eq!(green::stats().unwrap().live_threads, 1);
        });
    });
}

#[test]
fn run_twice_on_one_os_thread() {
    watchdog(|| {
        let first = green::run(|| (green::current().id(), green::spawn(|| 1).join().unwrap()));
        let second = green::run(|| {
            green::sleep(Duration::from_millis(1));
            (green::current().id(), green::spawn(|| 2).join().unwrap())
        });
        assert_eq!((first.1, second.1), (1, 2));
        assert_ne!(first.0, second.0, "thread ids must never be reused");
    });
}

#[test]
fn nested_run_is_an_error() {
    watchdog(|| {
        green::run(|| {
            let ran = Cell::new(false);
            let err = Runtime::new().try_run(|| ran.set(true)).unwrap_err();
            assert!(!ran.get(), "the nested closure must not run");
            assert!(!err.to_string().is_empty());
            let nested_panics = panic::catch_unwind(|| green::run(|| ()));
            assert!(nested_panics.is_err(), "green::run inside a runtime must panic");

            // From a spawned green thread too.
            let child_err = green::spawn(|| Runtime::new().try_run(|| ()).is_err());
            assert!(child_err.join().unwrap());

            // The outer runtime keeps working.
            let child = green::spawn(|| {
                green::sleep(Duration::from_millis(1));
                5
            });
            assert_eq!(child.join().unwrap(), 5);
            assert_eq!(green::stats().unwrap().live_threads, 1);
        });
    });
}

#[test]
fn independent_runtimes_on_several_os_threads() {
    watchdog(|| {
        let workers: Vec<_> = (0..4u64)
            .map(|w| {
                std::thread::spawn(move || {
                    green::run(move || {
                        let handles: Vec<_> = (0..100u64)
                            .map(|i| {
                                green::spawn(move || {
                                    green::sleep(Duration::from_millis(i % 3));
                                    green::yield_now();
                                    w * 1000 + i
                                })
                            })
                            .collect();
                        handles.into_iter().map(|h| h.join().unwrap()).sum::<u64>()
                    })
                })
            })
            .collect();
        for (w, worker) in (0u64..).zip(workers) {
            assert_eq!(worker.join().unwrap(), w * 100_000 + 4950);
        }
    });
}

// ----- teardown --------------------------------------------------------------

/// Records, when dropped, that it was and which green thread was current.
#[derive(Clone, Default)]
struct Probe(Arc<Mutex<Option<Option<ThreadId>>>>);

impl Probe {
    fn dropped_in(&self) -> Option<Option<ThreadId>> {
        *self.0.lock().unwrap()
    }
}

struct ProbeGuard(Probe);

impl Drop for ProbeGuard {
    fn drop(&mut self) {
        *self.0.0.lock().unwrap() = Some(green::try_current().map(|t| t.id()));
    }
}

#[test]
fn threads_alive_at_exit_are_unwound() {
    watchdog(|| {
        let reactor = Reactor::current();
        let timers = reactor.timer_count();
        let probes: Vec<Probe> = (0..6).map(|_| Probe::default()).collect();
        let guards: Vec<ProbeGuard> = probes.iter().cloned().map(ProbeGuard).collect();
        let handles: Vec<JoinHandle<()>> = green::run(move || {
            let mut guards = guards.into_iter();
            let mut next = || guards.next().unwrap();
            let (parked, sleeping, yielding, joining, waiting, target) =
                (next(), next(), next(), next(), next(), next());
            let handles = vec![
                green::spawn(move || {
                    let _g = parked;
                    park_until(1000, || false);
                }),
                green::spawn(move || {
                    let _g = sleeping;
                    green::sleep(Duration::from_secs(3600));
                }),
                green::spawn(move || {
                    let _g = yielding;
                    for _ in 0..1_000_000 {
                        green::yield_now();
                    }
                }),
                {
                    let target = green::spawn(move || {
                        let _g = target;
                        park_until(1000, || false);
                    });
                    green::spawn(move || {
                        let _g = joining;
                        let _ = target.join();
                    })
                },
                green::spawn(move || {
                    let _g = waiting;
                    block_on(std::future::pending::<()>());
                }),
            ];
            for _ in 0..3 {
                green::yield_now(); // every thread has started and blocked
            }
            assert_eq!(green::stats().unwrap().live_threads, 7);
            handles
        });
        assert!(green::stats().is_none());
        for (i, probe) in probes.iter().enumerate() {
            let seen = probe.dropped_in();
            assert!(seen.is_some(), "thread {i}'s destructors did not run");
            assert!(seen.unwrap().is_some(), "thread {i} was not current while unwound");
        }
        for (i, handle) in handles.into_iter().enumerate() {
            let id = handle.thread().id();
            assert_eq!(probes[i].dropped_in(), Some(Some(id)), "thread {i} unwound as another");
            assert!(handle.is_finished(), "thread {i} is not marked finished");
            assert!(handle.join().is_err(), "thread {i} was cut short, join must be Err");
        }
        assert_eq!(reactor.timer_count(), timers, "the sleeping thread's timer leaked");
    });
}

/// A thread spawned just before main returns never starts; it is freed
/// (its closure dropped) and its joiner must still get `Err`, not hang.
#[test]
fn never_started_thread_at_exit_is_completed() {
    watchdog(|| {
        let dropped = Arc::new(AtomicBool::new(false));
        let flag = dropped.clone();
        let guard = SetOnDrop(flag);
        let handle = green::run(move || {
            green::spawn(move || {
                let _guard = guard;
                1
            })
        });
        assert!(dropped.load(Ordering::SeqCst), "the closure was not dropped");
        assert!(handle.is_finished(), "JoinHandle of a torn-down thread is not finished");
        assert!(handle.join().is_err());
    });
}

/// A destructor that yields while the runtime unwinds its thread gets the
/// yield back at once: there is no one left to switch to. The thread that
/// finished last before the teardown left its stack to the pool, and the
/// yield must not switch to it.
#[test]
fn a_yield_in_a_destructor_at_exit_returns() {
    /// Yields twice when dropped, then counts that it got past the yields.
    struct YieldOnDrop(Arc<AtomicUsize>);
    impl Drop for YieldOnDrop {
        fn drop(&mut self) {
            green::yield_now();
            green::yield_now();
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }
    watchdog(|| {
        let past_yields = Arc::new(AtomicUsize::new(0));
        let guards: Vec<_> = (0..3).map(|_| YieldOnDrop(past_yields.clone())).collect();
        green::run(move || {
            for guard in guards {
                green::spawn(move || {
                    let _guard = guard;
                    green::park();
                });
            }
            green::yield_now();
            assert_eq!(green::spawn(|| 7).join().unwrap(), 7);
        });
        assert_eq!(past_yields.load(Ordering::SeqCst), 3);
    });
}

// ----- random programs -------------------------------------------------------

mod programs {
    use super::*;
    use proptest::prelude::*;
    use proptest::test_runner::{Config, TestRunner};

    #[derive(Clone, Debug)]
    pub(super) enum Op {
        Yield,
        Sleep(u64),
        ParkTimeout(u64),
        SpawnJoin(Vec<Op>),
    }

    fn leaf() -> impl Strategy<Value = Op> {
        prop_oneof![
            Just(Op::Yield),
            (0..3_000u64).prop_map(Op::Sleep),
            (0..3_000u64).prop_map(Op::ParkTimeout),
        ]
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            3 => leaf(),
            1 => proptest::collection::vec(leaf(), 0..4).prop_map(Op::SpawnJoin),
        ]
    }

    fn exec(ops: &[Op]) {
        for op in ops {
            match op {
                Op::Yield => green::yield_now(),
                Op::Sleep(us) => {
                    let d = Duration::from_micros(*us);
                    let start = Instant::now();
                    green::sleep(d);
                    assert!(start.elapsed() >= d);
                }
                Op::ParkTimeout(us) => green::park_timeout(Duration::from_micros(*us)),
                Op::SpawnJoin(child) => {
                    let child = child.clone();
                    let handle = green::spawn(move || {
                        exec(&child);
                        0xC0FFEE
                    });
                    assert_eq!(handle.join().unwrap(), 0xC0FFEE);
                }
            }
        }
    }

    #[test]
    fn random_programs_complete() {
        watchdog::watchdog(Duration::from_secs(120), || {
            let config = Config {
                cases: 64,
                failure_persistence: None,
                max_shrink_iters: 256,
                ..Config::default()
            };
            let programs = proptest::collection::vec(proptest::collection::vec(op(), 0..8), 1..20);
            let mut runner = TestRunner::new(config);
            let result = runner.run(&programs, |program| {
                let (timers_left, live) = green::run(move || {
                    let reactor = Reactor::current();
                    let timers = reactor.timer_count();
                    let handles: Vec<_> = program
                        .into_iter()
                        .enumerate()
                        .map(|(i, ops)| {
                            green::spawn(move || {
                                exec(&ops);
                                i
                            })
                        })
                        .collect();
                    for (i, handle) in handles.into_iter().enumerate() {
                        assert_eq!(handle.join().unwrap(), i);
                    }
                    (reactor.timer_count() - timers, green::stats().unwrap().live_threads)
                });
                prop_assert_eq!(timers_left, 0, "timers leaked");
                prop_assert_eq!(live, 1);
                Ok(())
            });
            if let Err(e) = result {
                panic!("{e}");
            }
        });
    }
}

// ----- auto traits -----------------------------------------------------------

#[test]
fn handles_are_send_and_sync_and_spawn_takes_non_send() {
    fn assert_send_sync<T: Send + Sync>() {}
    fn assert_send<T: Send>() {}
    assert_send_sync::<Thread>();
    assert_send_sync::<ThreadId>();
    assert_send_sync::<JoinHandle<u32>>();
    assert_send::<Builder>();

    watchdog(|| {
        green::run(|| {
            let shared = Rc::new(Cell::new(0));
            let inner = shared.clone();
            green::spawn(move || inner.set(5)).join().unwrap();
            assert_eq!(shared.get(), 5);
        });
    });
}

/// A green thread's waker and its clones share one vtable, so `will_wake`
/// holds and waiters need not re-clone wakers on every poll.
#[test]
fn waker_clones_will_wake_each_other() {
    watchdog(|| {
        green::run(|| {
            let waker = greenloop_runtime::block_on(std::future::poll_fn(|cx| {
                std::task::Poll::Ready(cx.waker().clone())
            }));
            let clone = waker.clone();
            assert!(waker.will_wake(&clone));
            assert!(clone.will_wake(&clone.clone()));
        });
    });
}

/// A burst of wakes resumes a waiting `block_on` once; the rest of the
/// burst is no news to the re-poll that follows, so the next wait suspends
/// instead of yielding and polling again for nothing: three polls, not four.
#[test]
fn a_burst_of_wakes_costs_one_re_poll() {
    watchdog(|| {
        green::run(|| {
            let waker: Rc<RefCell<Option<Waker>>> = Rc::default();
            let ready = Rc::new(Cell::new(false));
            let polls = Rc::new(Cell::new(0));
            let helper = {
                let (waker, ready) = (waker.clone(), ready.clone());
                green::spawn(move || {
                    let burst = waker.borrow().clone().expect("the first poll stored its waker");
                    for _ in 0..3 {
                        burst.wake_by_ref();
                    }
                    green::yield_now();
                    green::yield_now();
                    ready.set(true);
                    burst.wake();
                })
            };
            block_on(poll_fn(|cx| {
                polls.set(polls.get() + 1);
                *waker.borrow_mut() = Some(cx.waker().clone());
                if ready.get() { Poll::Ready(()) } else { Poll::Pending }
            }));
            helper.join().unwrap();
            assert_eq!(polls.get(), 3, "pending, pending after the burst, ready");
        });
    });
}
