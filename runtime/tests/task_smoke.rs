use greenloop_runtime::{task, time};
use std::time::Duration;

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
