use greenloop_runtime::green;
use std::time::Duration;

#[test]
fn smoke() {
    let v = green::run(|| {
        let hs: Vec<_> = (0..100u64)
            .map(|i| {
                green::spawn(move || {
                    green::sleep(Duration::from_millis(i % 7));
                    green::yield_now();
                    i
                })
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).sum::<u64>()
    });
    assert_eq!(v, 4950);
}
