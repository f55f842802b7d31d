//! The baseline: this test binary does not link greenloop-patch, and there
//! `std::thread::sleep` in a green thread blocks the whole OS thread.

mod util;

use std::rc::Rc;
use std::time::Duration;

use greenloop_runtime::green;
use util::{InFlight, watchdog};

#[test]
fn without_the_patch_std_sleeps_run_one_at_a_time() {
    let max = watchdog(Duration::from_secs(30), || {
        green::run(|| {
            let sleeping = Rc::new(InFlight::default());
            let threads: Vec<_> = (0..5)
                .map(|_| {
                    let sleeping = sleeping.clone();
                    green::spawn(move || {
                        sleeping.run(|| std::thread::sleep(Duration::from_millis(20)))
                    })
                })
                .collect();
            threads.into_iter().for_each(|t| t.join().unwrap());
            sleeping.max()
        })
    });
    assert_eq!(max, 1);
}
