//! The managed sockets this OS thread's reactor holds, indexed by fd: the
//! registration's key and the green threads parked on each direction.
//!
//! Only the owner thread parks on a socket, so what a green call needs per
//! call lives here, in a thread-local the owner reads without a lock. An
//! entry belongs to one generation of its fd (see `fds`): a close bumps
//! the slot's generation and removes the entry on the owner's thread,
//! waking its waiters, who find the generation changed and fail with
//! `EBADF`. A stale entry (its fd closed on another thread, the removal
//! not run yet) is never used: every lookup names the generation it
//! expects.

use std::cell::RefCell;
use std::task::Waker;

use greenloop_runtime::reactor::{Direction, IoKey};
use libc::c_int;

use crate::fds::index;

/// One fd's entry.
#[derive(Debug)]
struct Owned {
    generation: u64,
    key: IoKey,
    waiters: [Option<Waker>; 2],
}

thread_local! {
    static OWNED: RefCell<Vec<Option<Owned>>> = const { RefCell::new(Vec::new()) };
}

/// Runs `f` on `fd`'s entry of `generation`, `None` if there is none (or
/// this thread's table is gone: the thread is ending).
#[inline]
fn with_entry<R>(fd: c_int, generation: u64, f: impl FnOnce(&mut Owned) -> R) -> Option<R> {
    let fd = usize::try_from(fd).ok()?;
    OWNED
        .try_with(|table| {
            let mut table = table.borrow_mut();
            let entry = table.get_mut(fd)?.as_mut()?;
            (entry.generation == generation).then(|| f(entry))
        })
        .ok()
        .flatten()
}

/// `fd`'s key on this thread's reactor, if this thread registered it in
/// `generation`.
#[inline]
pub(crate) fn key(fd: c_int, generation: u64) -> Option<IoKey> {
    with_entry(fd, generation, |entry| entry.key)
}

/// Records that this thread registered `fd` in `generation` under `key`.
/// Returns the waiters of an older generation's entry, to wake.
pub(crate) fn insert(fd: c_int, generation: u64, key: IoKey) -> [Option<Waker>; 2] {
    let Ok(fd) = usize::try_from(fd) else { return [None, None] };
    let fresh = Owned { generation, key, waiters: [None, None] };
    OWNED
        .try_with(|table| {
            let mut table = table.borrow_mut();
            if table.len() <= fd {
                table.resize_with(fd + 1, || None);
            }
            table[fd].replace(fresh).map_or([None, None], |stale| stale.waiters)
        })
        .unwrap_or([None, None])
}

/// Removes `fd`'s entry of `generation`; returns its waiters, to wake.
pub(crate) fn remove(fd: c_int, generation: u64) -> [Option<Waker>; 2] {
    let Ok(index) = usize::try_from(fd) else { return [None, None] };
    OWNED
        .try_with(|table| {
            let mut table = table.borrow_mut();
            match table.get_mut(index) {
                Some(entry) if entry.as_ref().is_some_and(|e| e.generation == generation) => {
                    entry.take().map_or([None, None], |owned| owned.waiters)
                }
                _ => [None, None],
            }
        })
        .unwrap_or([None, None])
}

/// Stores `waker` as `fd`'s waiter on `dir`; `false` if the entry of
/// `generation` is gone (the fd was closed).
#[inline]
pub(crate) fn set_waiter(fd: c_int, generation: u64, dir: Direction, waker: &Waker) -> bool {
    with_entry(fd, generation, |entry| match &mut entry.waiters[index(dir)] {
        Some(waiter) if waiter.will_wake(waker) => {}
        waiter => *waiter = Some(waker.clone()),
    })
    .is_some()
}

/// Drops `fd`'s waiter on `dir` (its park ended).
#[inline]
pub(crate) fn clear_waiter(fd: c_int, generation: u64, dir: Direction) {
    with_entry(fd, generation, |entry| entry.waiters[index(dir)] = None);
}

/// Wakes every waker in `waiters`.
pub(crate) fn wake(waiters: [Option<Waker>; 2]) {
    for waker in waiters.into_iter().flatten() {
        waker.wake();
    }
}
