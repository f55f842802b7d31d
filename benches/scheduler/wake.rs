//! `wake_remote/*`: one wake from another OS thread, round trip.

use std::future::{Future, poll_fn};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Poll, Waker};
use std::time::{Duration, Instant};

use criterion::Criterion;
use greenloop::green;
use greenloop_runtime::sys::set_affinity;
use greenloop_runtime::task;

use crate::common::{may_run, task_runtime, tokio_build};

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
        set_affinity(0, &only).unwrap_or_else(|e| panic!("sched_setaffinity: {e}"));
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
        // Not an assert: this may run while unwinding.
        if let Err(e) = set_affinity(0, &self.saved) {
            eprintln!("sched_setaffinity (restore): {e}");
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
/// A green thread (or may coroutine) publishes `armed` just before it
/// parks; an unpark in between would leave a token that makes `park`
/// return at once. With
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

    /// Parks the current green thread or coroutine (with `park`) until
    /// round `round` has been rung.
    fn park_until(&self, round: u64, park: impl Fn()) {
        self.armed.store(round, Ordering::Release);
        while self.rung.load(Ordering::Acquire) < round {
            park();
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

/// Runs `waiter` on this thread while a helper OS thread, pinned to the
/// same CPU, rings `iters + 1` rounds by waking the stored waker.
fn with_ringer(iters: u64, waiter: impl FnOnce(Arc<Doorbell>) -> Duration) -> Duration {
    let cpu = Pinned::current_cpu();
    let _pinned = Pinned::to(cpu);
    let bell = Arc::new(Doorbell::default());
    std::thread::scope(|s| {
        let helper = Arc::clone(&bell);
        s.spawn(move || {
            let _pinned = Pinned::to(cpu);
            helper.ring(iters + 1, Doorbell::wake_stored);
        });
        waiter(bell)
    })
}

/// The async cells' waiter: round 1 untimed, then rounds `2..=iters + 1`.
async fn wait_rounds(bell: Arc<Doorbell>, iters: u64) -> Duration {
    bell.wait(1).await;
    let start = Instant::now();
    for round in 2..=iters + 1 {
        bell.wait(round).await;
    }
    start.elapsed()
}

pub fn wake_remote(c: &mut Criterion) {
    let mut group = c.benchmark_group("wake_remote");
    // Round 1 is untimed: it absorbs the helper thread's start-up. The
    // runtime thread and the helper share one CPU (see `Pinned`).
    group.bench_function("stackless", |b| {
        let rt = task_runtime();
        b.iter_custom(|iters| {
            with_ringer(iters, |bell| {
                rt.block_on(async {
                    match task::spawn(wait_rounds(bell, iters)).await {
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
                    bell.park_until(1, green::park);
                    let start = Instant::now();
                    for round in 2..=iters + 1 {
                        bell.park_until(round, green::park);
                    }
                    start.elapsed()
                })
            })
        });
    });
    group.bench_function("tokio", |b| {
        let rt = tokio_build(tokio::runtime::Builder::new_current_thread().enable_all());
        b.iter_custom(|iters| {
            with_ringer(iters, |bell| {
                rt.block_on(async {
                    match tokio::spawn(wait_rounds(bell, iters)).await {
                        Ok(elapsed) => elapsed,
                        Err(e) => panic!("wake_remote/tokio: {e}"),
                    }
                })
            })
        });
    });
    group.bench_function("may", |b| {
        b.iter_custom(|iters| {
            let cpu = Pinned::current_cpu();
            may_run(move || {
                // Pins may's one worker thread, which runs this coroutine.
                let _pinned = Pinned::to(cpu);
                let bell = Doorbell::default();
                let me = may::coroutine::current();
                std::thread::scope(|s| {
                    s.spawn(|| {
                        let _pinned = Pinned::to(cpu);
                        bell.ring(iters + 1, |_| me.unpark());
                    });
                    bell.park_until(1, may::coroutine::park);
                    let start = Instant::now();
                    for round in 2..=iters + 1 {
                        bell.park_until(round, may::coroutine::park);
                    }
                    start.elapsed()
                })
            })
        });
    });
    group.finish();
}
