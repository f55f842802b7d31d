use greenloop_runtime::{blocking, green, task, time};
use std::time::{Duration, Instant};

#[test]
fn task_smoke() {
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
}

#[test]
fn offload_timeout_interval() {
    let rt = task::Runtime::new().unwrap();
    rt.block_on(async {
        let pool = blocking::Pool::new(4, Duration::from_secs(1));
        let started = Instant::now();
        let hs: Vec<_> = (0..8)
            .map(|i| {
                pool.spawn(move || {
                    std::thread::sleep(Duration::from_millis(50));
                    i
                })
            })
            .collect();
        let mut sum = 0;
        for h in hs {
            sum += h.await.unwrap();
        }
        assert_eq!(sum, 28);
        assert!(
            started.elapsed() >= Duration::from_millis(100),
            "8 jobs on 4 threads take 2 rounds"
        );
        assert!(pool.threads() <= 4);
        let r = time::timeout(Duration::from_millis(5), time::sleep(Duration::from_secs(10))).await;
        assert!(r.is_err());
        let r = time::timeout(Duration::from_secs(10), async { 3 }).await;
        assert_eq!(r, Ok(3));
        let mut iv = time::interval(Duration::from_millis(3));
        let a = iv.tick().await;
        let b = iv.tick().await;
        assert!(b >= a + Duration::from_millis(3));
    });
}

#[test]
fn green_and_stackless_join_each_other() {
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
    let from_green = rt.block_on(async move { task::spawn(green_handle).await.unwrap().unwrap() });
    awaited.send(()).unwrap();
    assert_eq!(from_green, 7);
    assert_eq!(b.join().unwrap(), 11);
}
