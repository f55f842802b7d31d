//! Smoke tests of the stackless executor, the blocking pool and the timers.

use greenloop_runtime::{blocking, green, task, time};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

#[path = "watchdog/mod.rs"]
mod watchdog;
use watchdog::watchdog;

/// How long a test body may run before the test fails as hung.
const LIMIT: Duration = Duration::from_secs(60);

#[test]
fn task_smoke() {
    watchdog(LIMIT, || {
        let rt = task::Runtime::new().unwrap();
        let v = rt.block_on(async {
            let hs: Vec<_> = (0..100u64)
                .map(|i| {
                    task::spawn(async move {
                        time::sleep(Duration::from_millis(i % 5)).await;
                        task::yield_now().await;
                        i
                    })
                })
                .collect();
            let mut s = 0;
            for h in hs {
                s += h.await.unwrap();
            }
            let p = task::spawn(async { panic!("boom") });
            assert!(p.await.unwrap_err().is_panic());
            let a = task::spawn(async {
                time::sleep(Duration::from_secs(100)).await;
                1
            });
            a.abort();
            assert!(a.await.unwrap_err().is_cancelled());
            s
        });
        assert_eq!(v, 4950);
        assert_eq!(rt.live_tasks(), 0);
    });
}

#[test]
fn offload_timeout_interval() {
    watchdog(LIMIT, || {
        let rt = task::Runtime::new().unwrap();
        rt.block_on(async {
            let pool = blocking::Pool::new(4, Duration::from_secs(1));
            let in_flight = Arc::new(AtomicUsize::new(0));
            let most_in_flight = Arc::new(AtomicUsize::new(0));
            let hs: Vec<_> = (0..8)
                .map(|i| {
                    let (in_flight, most) = (in_flight.clone(), most_in_flight.clone());
                    pool.spawn(move || {
                        let now = in_flight.fetch_add(1, Ordering::SeqCst) + 1;
                        most.fetch_max(now, Ordering::SeqCst);
                        std::thread::sleep(Duration::from_millis(20));
                        in_flight.fetch_sub(1, Ordering::SeqCst);
                        i
                    })
                })
                .collect();
            let mut sum = 0;
            for h in hs {
                sum += h.await.unwrap();
            }
            assert_eq!(sum, 28);
            let most = most_in_flight.load(Ordering::SeqCst);
            assert!((1..=4).contains(&most), "8 jobs on 4 threads: {most} ran at once");
            assert!(pool.threads() <= 4);
            let r =
                time::timeout(Duration::from_millis(5), time::sleep(Duration::from_secs(10))).await;
            assert!(r.is_err());
            let r = time::timeout(Duration::from_secs(10), async { 3 }).await;
            assert_eq!(r, Ok(3));
            let mut iv = time::interval(Duration::from_millis(3));
            let a = iv.tick().await;
            let b = iv.tick().await;
            assert!(b >= a + Duration::from_millis(3));
        });
    });
}

#[test]
fn green_and_stackless_join_each_other() {
    watchdog(LIMIT, || {
        // A task on thread A awaits a green thread on thread B; a green thread
        // on B block_on's a task's JoinHandle from A.
        let (to_a, from_b) = std::sync::mpsc::channel::<green::JoinHandle<u32>>();
        let (to_b, from_a) = std::sync::mpsc::channel::<task::JoinHandle<u32>>();
        let (awaited, green_may_exit) = std::sync::mpsc::channel::<()>();
        let b = std::thread::spawn(move || {
            green::run(move || {
                let g = green::spawn(|| {
                    green::sleep(Duration::from_millis(5));
                    7
                });
                to_a.send(g).unwrap();
                let t = from_a.recv().unwrap();
                let joiner = green::spawn(move || greenloop_runtime::block_on(t).unwrap());
                let from_task = joiner.join().unwrap();
                // Green threads still alive when this closure returns are
                // unwound: wait until A has awaited `g`.
                while green_may_exit.try_recv().is_err() {
                    green::sleep(Duration::from_millis(1));
                }
                from_task
            })
        });
        let rt = task::Runtime::new().unwrap();
        let green_handle = from_b.recv().unwrap();
        let t = rt.spawn(async {
            time::sleep(Duration::from_millis(5)).await;
            11
        });
        to_b.send(t).unwrap();
        let from_green =
            rt.block_on(async move { task::spawn(green_handle).await.unwrap().unwrap() });
        awaited.send(()).unwrap();
        // `t` runs on this runtime, and `g` may finish before it: keep the
        // runtime going until B, whose green thread waits for `t`, is done.
        rt.block_on(async {
            while !b.is_finished() {
                time::sleep(Duration::from_millis(1)).await;
            }
        });
        assert_eq!(from_green, 7);
        assert_eq!(b.join().unwrap(), 11);
    });
}
