//! `std::thread::sleep` and libc's sleeps park only the green thread.

mod util;

use std::rc::Rc;
use std::time::Duration;

use greenloop_runtime::green;
use util::{InFlight, watchdog};

/// Spawns `count` green threads that each run `sleep` counted, and returns
/// how many slept at once at most.
fn max_sleeping(count: usize, sleep: fn()) -> usize {
    green::run(move || {
        let sleeping = Rc::new(InFlight::default());
        let threads: Vec<_> = (0..count)
            .map(|_| {
                let sleeping = sleeping.clone();
                green::spawn(move || sleeping.run(sleep))
            })
            .collect();
        for thread in threads {
            thread.join().unwrap();
        }
        sleeping.max()
    })
}

#[test]
fn a_thousand_std_sleeps_overlap() {
    greenloop_patch::install();
    let max = watchdog(Duration::from_secs(60), || {
        max_sleeping(1000, || std::thread::sleep(Duration::from_millis(100)))
    });
    assert!(max >= 900, "only {max} of 1,000 green threads slept at once");
}

#[test]
fn every_libc_sleep_parks_the_green_thread() {
    greenloop_patch::install();
    let sleeps: [fn(); 4] = [
        // SAFETY (all four): plain libc sleeps with valid arguments.
        || assert_eq!(unsafe { libc::usleep(20_000) }, 0),
        || assert_eq!(unsafe { libc::sleep(1) }, 0),
        || {
            let req = libc::timespec { tv_sec: 0, tv_nsec: 20_000_000 };
            let rc = unsafe {
                libc::clock_nanosleep(libc::CLOCK_MONOTONIC, 0, &req, std::ptr::null_mut())
            };
            assert_eq!(rc, 0);
        },
        || {
            let mut now = libc::timespec { tv_sec: 0, tv_nsec: 0 };
            assert_eq!(unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut now) }, 0);
            let until = libc::timespec {
                tv_sec: now.tv_sec + (now.tv_nsec + 20_000_000) / 1_000_000_000,
                tv_nsec: (now.tv_nsec + 20_000_000) % 1_000_000_000,
            };
            let rc = unsafe {
                libc::clock_nanosleep(
                    libc::CLOCK_MONOTONIC,
                    libc::TIMER_ABSTIME,
                    &until,
                    std::ptr::null_mut(),
                )
            };
            assert_eq!(rc, 0);
        },
    ];
    for sleep in sleeps {
        let max = watchdog(Duration::from_secs(30), move || max_sleeping(20, sleep));
        assert_eq!(max, 20, "a libc sleep blocked the OS thread");
    }
}

#[test]
fn invalid_sleeps_fail_as_libc_does() {
    greenloop_patch::install();
    watchdog(Duration::from_secs(30), || {
        green::run(|| {
            let bad = libc::timespec { tv_sec: 0, tv_nsec: 1_000_000_000 };
            // SAFETY: a valid pointer to an out-of-range timespec.
            assert_eq!(unsafe { libc::nanosleep(&bad, std::ptr::null_mut()) }, -1);
            assert_eq!(std::io::Error::last_os_error().raw_os_error(), Some(libc::EINVAL));
            // SAFETY: as above; clock_nanosleep returns the error number.
            let rc = unsafe {
                libc::clock_nanosleep(libc::CLOCK_MONOTONIC, 0, &bad, std::ptr::null_mut())
            };
            assert_eq!(rc, libc::EINVAL);
        });
    });
}
