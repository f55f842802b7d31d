//! Live green-thread capacity: one process holds as many parked green
//! threads as the current `vm.max_map_count` allows, minus a margin.
//!
//! Where the kernel has guard markers (Linux 6.13+), stacks share one
//! mapping per batch, so the map count allows nearly as many threads as it
//! has mappings; elsewhere each stack costs two, and half as many fit. The
//! test counts the threads that spawned and parked, not how long that took.

use std::cell::Cell;
use std::rc::Rc;
use std::time::Duration;

use greenloop_runtime::green::{self, Builder};

mod watchdog;

/// Mappings left for everything else in the process.
const MARGIN: usize = 5_000;

/// Most threads spawned, whatever the map count (about 5 KiB of RSS each).
const MEMORY_CAP: usize = 200_000;

/// Usable stack size of each parked thread.
const STACK: usize = 16 * 1024;

/// The first number in `/proc/sys/vm/max_map_count`.
fn max_map_count() -> usize {
    let text = std::fs::read_to_string("/proc/sys/vm/max_map_count").unwrap();
    text.trim().parse().unwrap()
}

/// Mappings this process has now.
fn mappings_now() -> usize {
    std::fs::read_to_string("/proc/self/maps").unwrap().lines().count()
}

/// Whether the kernel accepts `MADV_GUARD_INSTALL` (102) on a page of ours.
fn kernel_has_guard_markers() -> bool {
    let flags = libc::MAP_PRIVATE | libc::MAP_ANONYMOUS;
    // SAFETY: mmap(2) with a NULL hint maps a fresh page; nothing touches it.
    let page = unsafe { libc::mmap(std::ptr::null_mut(), 4096, libc::PROT_READ, flags, -1, 0) };
    assert_ne!(page, libc::MAP_FAILED);
    // SAFETY: madvise(2) on the page just mapped, which nothing uses.
    let ok = unsafe { libc::madvise(page, 4096, 102) } == 0;
    // SAFETY: unmaps that page again.
    unsafe { libc::munmap(page, 4096) };
    ok
}

/// What one fill reached.
#[derive(Debug)]
struct Fill {
    /// Threads spawned before the first error (or the target).
    spawned: usize,
    /// Threads that ran and parked.
    parked: usize,
    /// Live threads the runtime counted then, the main one excluded.
    live: usize,
    /// The process's mappings with all of them parked.
    mappings: usize,
}

/// Spawns up to `target` green threads that park until released, counts
/// them, then releases and joins them all.
fn fill(target: usize) -> Fill {
    green::run(|| {
        let parked = Rc::new(Cell::new(0usize));
        let released = Rc::new(Cell::new(false));
        let mut handles = Vec::with_capacity(target);
        for _ in 0..target {
            let (parked, released) = (parked.clone(), released.clone());
            let spawned = Builder::new().stack_size(STACK).spawn(move || {
                parked.set(parked.get() + 1);
                while !released.get() {
                    green::park();
                }
            });
            match spawned {
                Ok(handle) => handles.push(handle),
                Err(e) => {
                    eprintln!("spawn {} failed: {e}", handles.len());
                    break;
                }
            }
        }
        green::yield_now();
        let fill = Fill {
            spawned: handles.len(),
            parked: parked.get(),
            live: green::stats().map_or(0, |s| s.live_threads - 1),
            mappings: mappings_now(),
        };
        released.set(true);
        handles.iter().for_each(|h| h.thread().unpark());
        let failed = handles.into_iter().map(|h| h.join()).filter(Result::is_err).count();
        assert_eq!(failed, 0, "parked threads failed");
        fill
    })
}

#[test]
fn parked_threads_up_to_the_map_count() {
    let max = max_map_count();
    let markers = kernel_has_guard_markers();
    let room = max.saturating_sub(mappings_now() + MARGIN);
    let target = if markers { room } else { room / 2 }.min(MEMORY_CAP);
    assert!(target > 1_000, "vm.max_map_count {max} leaves no room for the test");
    let fill = watchdog::watchdog(Duration::from_secs(120), move || fill(target));
    eprintln!("max_map_count {max}, guard markers {markers}, target {target}: {fill:?}");
    assert_eq!(fill.spawned, target, "stopped short: {fill:?}");
    assert_eq!(fill.parked, target, "not all ran and parked: {fill:?}");
    assert_eq!(fill.live, target, "{fill:?}");
    if markers {
        // A batch of stacks is one mapping: far fewer mappings than threads.
        assert!(fill.mappings < target / 8, "{} mappings for {target} stacks", fill.mappings);
    }
}
