//! Scheduler micro-benchmarks: `cargo bench --bench scheduler`.
//!
//! Every figure is time per operation; runtime start-up and shut-down are
//! outside the measured span (`iter_custom` times only the loop).
//!
//! * `context_switch/raw` — one bare corosensei `resume` + `suspend` round trip (the floor).
//! * `spawn_join/green` — `green::spawn` (default 128 KiB pooled stack) of a closure returning a value, then `join`.
//! * `spawn_join/thread` — `std::thread::spawn` of the same closure, then `join`.
//! * `spawn_join/tokio` — `tokio::spawn(async { 1 }).await` inside `block_on` of a current-thread runtime.
//! * `spawn_join/stackless` — `task::spawn(async { 1 }).await` inside `block_on` of a greenloop `task::Runtime`.
//! * `yield/green` — one `green::yield_now()` while two green threads take turns.
//! * `yield/tokio` — one `tokio::task::yield_now().await` while two tasks of a current-thread runtime take turns.
//! * `yield/stackless` — one `task::yield_now().await` while two tasks of a `task::Runtime` take turns.
//! * `timer_arm_cancel/stackless` — 10,000 × (`time::sleep(60 s)` polled once inside `block_on`, arming its timer, then dropped, cancelling it); time is per 10,000, `thrpt` per arm+cancel.
//! * `timer_arm_cancel/green` — the same in a green thread, polled with `Waker::noop()` (the timer arms in the thread's reactor); per 10,000.
//! * `timer_arm_cancel/tokio` — the same with `tokio::time::sleep` in a current-thread runtime with `enable_time()`; per 10,000.
//! * `wake_remote/stackless` — one round trip: a helper OS thread, pinned to the runtime thread's CPU, wakes a `task::spawn`ed task waiting on a `Doorbell` future, the task runs and re-arms (the signal back); per round trip = one cross-thread wake.
//! * `wake_remote/green` — the same round trip with `green::park()` in a green thread and `Thread::unpark()` from the helper.
//! * `wake_remote/tokio` — the same `Doorbell` round trip in a `tokio::spawn`ed task of a current-thread runtime with `enable_all()` (its epoll driver, like greenloop's reactor).

use std::future::{Future, poll_fn};
use std::hint::black_box;
use std::pin::{Pin, pin};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use corosensei::{Coroutine, CoroutineResult};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use greenloop::{green, time};
// The facade does not re-export the stackless executor; the runtime crate does.
use greenloop_runtime::task;

/// Sleeps armed and cancelled per `timer_arm_cancel` iteration.
const TIMERS: u64 = 10_000;

/// Builds a tokio runtime, panicking on failure.
fn tokio_build(builder: &mut tokio::runtime::Builder) -> tokio::runtime::Runtime {
    match builder.build() {
        Ok(rt) => rt,
        Err(e) => panic!("cannot build a tokio runtime: {e}"),
    }
}

/// A current-thread tokio runtime without I/O or timer drivers.
fn tokio_runtime() -> tokio::runtime::Runtime {
    tokio_build(&mut tokio::runtime::Builder::new_current_thread())
}

/// A greenloop stackless runtime on this thread's reactor.
fn task_runtime() -> task::Runtime {
    match task::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => panic!("cannot build a task runtime: {e}"),
    }
}

/// Polls `future` once with the caller's context (arming whatever it
/// registers) and returns whether it was still pending.
async fn poll_once<F: Future>(mut future: Pin<&mut F>) -> bool {
    poll_fn(|cx| Poll::Ready(future.as_mut().poll(cx).is_pending())).await
}

fn context_switch(c: &mut Criterion) {
    let mut group = c.benchmark_group("context_switch");
    group.bench_function("raw", |b| {
        let mut coroutine: Coroutine<(), (), ()> = Coroutine::new(|yielder, ()| {
            loop {
                yielder.suspend(());
            }
        });
        b.iter(|| match coroutine.resume(()) {
            CoroutineResult::Yield(()) => {}
            CoroutineResult::Return(()) => unreachable!("the coroutine loops forever"),
        });
        // Dropping the suspended coroutine unwinds its stack.
    });
    group.finish();
}

fn spawn_join(c: &mut Criterion) {
    let mut group = c.benchmark_group("spawn_join");
    group.bench_function("green", |b| {
        b.iter_custom(|iters| {
            green::run(|| {
                // Fill the stack pool so the measured spawns reuse a stack.
                black_box(green::spawn(|| black_box(1u64)).join().is_ok());
                let start = Instant::now();
                for _ in 0..iters {
                    let handle = green::spawn(|| black_box(1u64));
                    black_box(handle.join().is_ok());
                }
                start.elapsed()
            })
        });
    });
    group.bench_function("thread", |b| {
        b.iter(|| black_box(std::thread::spawn(|| black_box(1u64)).join().is_ok()));
    });
    group.bench_function("tokio", |b| {
        let rt = tokio_runtime();
        b.iter_custom(|iters| {
            rt.block_on(async {
                let start = Instant::now();
                for _ in 0..iters {
                    black_box(tokio::spawn(async { black_box(1u64) }).await.is_ok());
                }
                start.elapsed()
            })
        });
    });
    group.bench_function("stackless", |b| {
        let rt = task_runtime();
        b.iter_custom(|iters| {
            rt.block_on(async {
                let start = Instant::now();
                for _ in 0..iters {
                    black_box(task::spawn(async { black_box(1u64) }).await.is_ok());
                }
                start.elapsed()
            })
        });
    });
    group.finish();
}

fn yields(c: &mut Criterion) {
    let mut group = c.benchmark_group("yield");
    group.bench_function("green", |b| {
        b.iter_custom(|iters| {
            green::run(|| {
                // Fill the stack pool so the two measured spawns reuse stacks.
                let warm = [green::spawn(|| ()), green::spawn(|| ())];
                black_box(warm.map(|h| h.join().is_ok()));
                let (first, second) = (iters / 2, iters - iters / 2);
                let start = Instant::now();
                let a = green::spawn(move || {
                    for _ in 0..first {
                        green::yield_now();
                    }
                });
                let b = green::spawn(move || {
                    for _ in 0..second {
                        green::yield_now();
                    }
                });
                black_box(a.join().is_ok() && b.join().is_ok());
                start.elapsed()
            })
        });
    });
    group.bench_function("tokio", |b| {
        let rt = tokio_runtime();
        b.iter_custom(|iters| {
            rt.block_on(async {
                let (first, second) = (iters / 2, iters - iters / 2);
                let start = Instant::now();
                let a = tokio::spawn(async move {
                    for _ in 0..first {
                        tokio::task::yield_now().await;
                    }
                });
                let b = tokio::spawn(async move {
                    for _ in 0..second {
                        tokio::task::yield_now().await;
                    }
                });
                black_box(a.await.is_ok() && b.await.is_ok());
                start.elapsed()
            })
        });
    });
    group.bench_function("stackless", |b| {
        let rt = task_runtime();
        b.iter_custom(|iters| {
            rt.block_on(async {
                let (first, second) = (iters / 2, iters - iters / 2);
                let start = Instant::now();
                let a = task::spawn(async move {
                    for _ in 0..first {
                        task::yield_now().await;
                    }
                });
                let b = task::spawn(async move {
                    for _ in 0..second {
                        task::yield_now().await;
                    }
                });
                black_box(a.await.is_ok() && b.await.is_ok());
                start.elapsed()
            })
        });
    });
    group.finish();
}

fn timer_arm_cancel(c: &mut Criterion) {
    let mut group = c.benchmark_group("timer_arm_cancel");
    group.throughput(Throughput::Elements(TIMERS));
    group.bench_function("stackless", |b| {
        let rt = task_runtime();
        b.iter_custom(|iters| {
            rt.block_on(async {
                let start = Instant::now();
                for _ in 0..iters * TIMERS {
                    let mut sleep = pin!(time::sleep(Duration::from_secs(60)));
                    black_box(poll_once(sleep.as_mut()).await);
                }
                start.elapsed()
            })
        });
    });
    group.bench_function("green", |b| {
        b.iter_custom(|iters| {
            green::run(|| {
                let mut cx = Context::from_waker(Waker::noop());
                let start = Instant::now();
                for _ in 0..iters * TIMERS {
                    let mut sleep = pin!(time::sleep(Duration::from_secs(60)));
                    black_box(sleep.as_mut().poll(&mut cx).is_pending());
                }
                start.elapsed()
            })
        });
    });
    group.bench_function("tokio", |b| {
        let rt = tokio_build(tokio::runtime::Builder::new_current_thread().enable_time());
        b.iter_custom(|iters| {
            rt.block_on(async {
                let start = Instant::now();
                for _ in 0..iters * TIMERS {
                    let mut sleep = pin!(tokio::time::sleep(Duration::from_secs(60)));
                    black_box(poll_once(sleep.as_mut()).await);
                }
                start.elapsed()
            })
        });
    });
    group.finish();
}

/// Pins the calling thread to one CPU until dropped, then restores its
/// previous affinity.
///
/// `wake_remote` pins the runtime thread and its helper to the same CPU.
/// Left to the kernel, each sample lands either on one CPU (the wake
/// preempts the helper: about 2 µs per round trip here) or on two
/// (the wake must rouse a halted vCPU: about 19 µs on this KVM guest, with
/// millisecond tails), so the figures swing 3-16 µs from run to run and
/// hide the runtimes. On one CPU every round trip costs the runtime's wake
/// path plus two kernel context switches, and nothing from the hypervisor.
struct Pinned {
    saved: libc::cpu_set_t,
}

impl Pinned {
    /// Pins the calling thread to `cpu`.
    fn to(cpu: usize) -> Pinned {
        let size = std::mem::size_of::<libc::cpu_set_t>();
        // SAFETY: `cpu_set_t` is a plain bit array, valid when zeroed.
        let mut saved: libc::cpu_set_t = unsafe { std::mem::zeroed() };
        // SAFETY: `saved` is a writable `cpu_set_t` of `size` bytes.
        let rc = unsafe { libc::sched_getaffinity(0, size, &mut saved) };
        assert_eq!(rc, 0, "sched_getaffinity: {}", std::io::Error::last_os_error());
        // SAFETY: as for `saved`.
        let mut only: libc::cpu_set_t = unsafe { std::mem::zeroed() };
        assert!(cpu < 8 * size, "CPU {cpu} beyond cpu_set_t");
        // SAFETY: `cpu` is within the set's bits (checked just above).
        unsafe { libc::CPU_SET(cpu, &mut only) };
        // SAFETY: `only` is a valid `cpu_set_t` of `size` bytes.
        let rc = unsafe { libc::sched_setaffinity(0, size, &only) };
        assert_eq!(rc, 0, "sched_setaffinity: {}", std::io::Error::last_os_error());
        Pinned { saved }
    }

    /// The CPU the calling thread runs on now.
    fn current_cpu() -> usize {
        // SAFETY: `sched_getcpu` has no preconditions.
        let cpu = unsafe { libc::sched_getcpu() };
        usize::try_from(cpu)
            .unwrap_or_else(|_| panic!("sched_getcpu: {}", std::io::Error::last_os_error()))
    }
}

impl Drop for Pinned {
    fn drop(&mut self) {
        let size = std::mem::size_of::<libc::cpu_set_t>();
        // SAFETY: `saved` is the valid `cpu_set_t` read in `Pinned::to`.
        let rc = unsafe { libc::sched_setaffinity(0, size, &self.saved) };
        // Not an assert: this may run while unwinding.
        if rc != 0 {
            eprintln!("sched_setaffinity (restore): {}", std::io::Error::last_os_error());
        }
    }
}

/// A doorbell that a helper OS thread rings for `wake_remote`, in numbered
/// rounds (from 1).
///
/// The waiting side, for round `r`, stores its waker (or is about to park),
/// publishes `armed = r` and sleeps in its runtime. The helper waits until
/// `armed` reaches `r`, publishes `rung = r`, then wakes the waiting side
/// (the stored waker, or `Thread::unpark`). The waiting side runs, sees
/// `rung >= r`, and arms round `r + 1`: that store is the signal back, seen
/// by the helper once the waiting side sleeps again. So each measured round
/// trip holds exactly one cross-thread wake (and, the two threads sharing a
/// CPU, two kernel context switches), and the helper never wakes anyone who
/// has not armed. It gives up after 10 s rather than hang.
///
/// A green thread publishes `armed` just before `green::park()`; an unpark
/// in between would leave a token that makes `park` return at once. With
/// both threads on one CPU the helper runs only once the waiting side
/// sleeps (or is preempted), so that shortcut is all but closed.
#[derive(Debug, Default)]
struct Doorbell {
    waker: Mutex<Option<Waker>>,
    armed: AtomicU64,
    rung: AtomicU64,
}

impl Doorbell {
    /// A future that completes once round `round` has been rung.
    fn wait(&self, round: u64) -> impl Future<Output = ()> + Send + '_ {
        poll_fn(move |cx| {
            if self.rung.load(Ordering::Acquire) >= round {
                return Poll::Ready(());
            }
            *self.waker.lock().unwrap_or_else(PoisonError::into_inner) = Some(cx.waker().clone());
            self.armed.store(round, Ordering::Release);
            if self.rung.load(Ordering::Acquire) >= round { Poll::Ready(()) } else { Poll::Pending }
        })
    }

    /// Parks the current green thread until round `round` has been rung.
    fn park_until(&self, round: u64) {
        self.armed.store(round, Ordering::Release);
        while self.rung.load(Ordering::Acquire) < round {
            green::park();
        }
    }

    /// Wakes the waker stored by [`wait`](Doorbell::wait).
    fn wake_stored(&self) {
        let waker = self.waker.lock().unwrap_or_else(PoisonError::into_inner).take();
        if let Some(waker) = waker {
            waker.wake();
        }
    }

    /// The helper thread: rings rounds `1..=rounds`, each once armed.
    ///
    /// It shares the waiting side's CPU, so it yields rather than spins
    /// while it waits: the waiting side can only arm while it runs.
    fn ring(&self, rounds: u64, wake: impl Fn(&Doorbell)) {
        for round in 1..=rounds {
            let mut deadline = None;
            let mut polls = 0u32;
            while self.armed.load(Ordering::Acquire) < round {
                std::thread::yield_now();
                polls = polls.wrapping_add(1);
                if polls.is_multiple_of(1024) {
                    let deadline =
                        *deadline.get_or_insert_with(|| Instant::now() + Duration::from_secs(10));
                    assert!(Instant::now() < deadline, "wake_remote: round {round} never armed");
                }
            }
            self.rung.store(round, Ordering::Release);
            wake(self);
        }
    }
}

fn wake_remote(c: &mut Criterion) {
    let mut group = c.benchmark_group("wake_remote");
    // Round 1 is untimed: it absorbs the helper thread's start-up. The
    // runtime thread and the helper share one CPU (see `Pinned`).
    group.bench_function("stackless", |b| {
        let rt = task_runtime();
        b.iter_custom(|iters| {
            let cpu = Pinned::current_cpu();
            let _pinned = Pinned::to(cpu);
            let bell = Arc::new(Doorbell::default());
            std::thread::scope(|s| {
                let helper = Arc::clone(&bell);
                s.spawn(move || {
                    let _pinned = Pinned::to(cpu);
                    helper.ring(iters + 1, Doorbell::wake_stored);
                });
                rt.block_on(async {
                    let waiter = task::spawn(async move {
                        bell.wait(1).await;
                        let start = Instant::now();
                        for round in 2..=iters + 1 {
                            bell.wait(round).await;
                        }
                        start.elapsed()
                    });
                    match waiter.await {
                        Ok(elapsed) => elapsed,
                        Err(e) => panic!("wake_remote/stackless: {e}"),
                    }
                })
            })
        });
    });
    group.bench_function("green", |b| {
        b.iter_custom(|iters| {
            let cpu = Pinned::current_cpu();
            let _pinned = Pinned::to(cpu);
            green::run(|| {
                let bell = Doorbell::default();
                let me = green::current();
                std::thread::scope(|s| {
                    s.spawn(|| {
                        let _pinned = Pinned::to(cpu);
                        bell.ring(iters + 1, |_| me.unpark());
                    });
                    bell.park_until(1);
                    let start = Instant::now();
                    for round in 2..=iters + 1 {
                        bell.park_until(round);
                    }
                    start.elapsed()
                })
            })
        });
    });
    group.bench_function("tokio", |b| {
        let rt = tokio_build(tokio::runtime::Builder::new_current_thread().enable_all());
        b.iter_custom(|iters| {
            let cpu = Pinned::current_cpu();
            let _pinned = Pinned::to(cpu);
            let bell = Arc::new(Doorbell::default());
            std::thread::scope(|s| {
                let helper = Arc::clone(&bell);
                s.spawn(move || {
                    let _pinned = Pinned::to(cpu);
                    helper.ring(iters + 1, Doorbell::wake_stored);
                });
                rt.block_on(async {
                    let waiter = tokio::spawn(async move {
                        bell.wait(1).await;
                        let start = Instant::now();
                        for round in 2..=iters + 1 {
                            bell.wait(round).await;
                        }
                        start.elapsed()
                    });
                    match waiter.await {
                        Ok(elapsed) => elapsed,
                        Err(e) => panic!("wake_remote/tokio: {e}"),
                    }
                })
            })
        });
    });
    group.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(40)
}

criterion_group! {
    name = benches;
    config = config();
    targets = context_switch, spawn_join, yields, timer_arm_cancel, wake_remote
}
criterion_main!(benches);
