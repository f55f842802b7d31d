//! The sockets the patch manages, indexed by fd number.
//!
//! A socket becomes *managed* the first time a green thread makes a
//! blocking call on it while the user believes it blocking: the patch sets
//! `O_NONBLOCK` on it (the *internal* view), registers it with the calling
//! thread's reactor, and from then on answers `fcntl(F_GETFL)` and
//! `ioctl(FIONBIO)` with the *user's* view, kept here. Files, pipes and
//! sockets the user made non-blocking are never managed.
//!
//! Each fd number has a slot, allocated in pages on first use and never
//! freed (slots are small; the table is as big as the highest fd used).
//! Lock-free `state` bits answer the fast questions ("managed?"); the rest
//! sits behind the slot's mutex, taken only on slow paths. `close` bumps
//! the slot's generation, so a green thread parked on the old socket wakes
//! with `EBADF` and a new socket with the same number starts afresh, with
//! a new registration and no readiness of the old one.

use std::sync::atomic::{AtomicPtr, AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::Waker;
use std::time::Duration;

use greenloop_runtime::reactor::{Direction, IoKey, ReactorId, Remote};
use libc::c_int;

/// Slots per page.
const PAGE: usize = 1024;
/// Pages: fds up to `PAGE * PAGES` (about a million) can be managed.
const PAGES: usize = 1024;

/// `state` bit: the patch set `O_NONBLOCK` and answers with the user's view.
pub(crate) const MANAGED: u8 = 1;
/// `state` bit: the user's view of `O_NONBLOCK` (meaningful when managed).
pub(crate) const USER_NONBLOCK: u8 = 2;

/// One fd number's record.
#[derive(Debug, Default)]
pub(crate) struct Slot {
    state: AtomicU8,
    /// Bumped by every close of a managed fd.
    generation: AtomicU64,
    entry: Mutex<Entry>,
}

/// The slow-path part of a managed fd's record.
#[derive(Debug, Default)]
pub(crate) struct Entry {
    /// The registration, and the reactor (by id and wake handle) holding it.
    pub(crate) registration: Option<Registration>,
    /// `SO_RCVTIMEO` and `SO_SNDTIMEO`: the longest park per call.
    pub(crate) timeouts: [Option<Duration>; 2],
    /// The green threads parked on each direction, woken by `close`.
    pub(crate) waiters: [Option<Waker>; 2],
}

/// Where a managed fd is registered.
#[derive(Debug)]
pub(crate) struct Registration {
    pub(crate) key: IoKey,
    pub(crate) reactor: ReactorId,
    pub(crate) remote: Arc<Remote>,
}

/// The index of `dir` in an entry's per-direction arrays.
pub(crate) fn index(dir: Direction) -> usize {
    match dir {
        Direction::Read => 0,
        Direction::Write => 1,
    }
}

impl Slot {
    /// Its `state` bits.
    pub(crate) fn state(&self) -> u8 {
        self.state.load(Ordering::Acquire)
    }

    /// Whether the fd is managed and the user believes it blocking.
    pub(crate) fn parks(&self) -> bool {
        self.state() & (MANAGED | USER_NONBLOCK) == MANAGED
    }

    /// Sets or clears the user's view of `O_NONBLOCK`.
    pub(crate) fn set_user_nonblock(&self, on: bool) {
        if on {
            self.state.fetch_or(USER_NONBLOCK, Ordering::AcqRel);
        } else {
            self.state.fetch_and(!USER_NONBLOCK, Ordering::AcqRel);
        }
    }

    /// Marks the fd managed, with the user's view `user_nonblock`.
    pub(crate) fn set_managed(&self, user_nonblock: bool) {
        let bits = if user_nonblock { MANAGED | USER_NONBLOCK } else { MANAGED };
        self.state.store(bits, Ordering::Release);
    }

    /// The current generation (see the module docs).
    pub(crate) fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Locks the slow-path record.
    pub(crate) fn lock(&self) -> MutexGuard<'_, Entry> {
        self.entry.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Forgets the fd (it is being closed): a new generation, no state.
    /// Returns what the caller must undo outside the lock: the registration
    /// and the parked waiters.
    pub(crate) fn forget(&self) -> (Option<Registration>, [Option<Waker>; 2]) {
        let mut entry = self.lock();
        self.generation.fetch_add(1, Ordering::AcqRel);
        self.state.store(0, Ordering::Release);
        entry.timeouts = [None, None];
        (entry.registration.take(), std::mem::take(&mut entry.waiters))
    }
}

static TABLE: [AtomicPtr<Slot>; PAGES] = [const { AtomicPtr::new(std::ptr::null_mut()) }; PAGES];

/// The page and offset of `fd`, `None` for negative or huge numbers.
fn position(fd: c_int) -> Option<(usize, usize)> {
    let fd = usize::try_from(fd).ok()?;
    (fd < PAGE * PAGES).then_some((fd / PAGE, fd % PAGE))
}

/// `fd`'s slot if its page exists (never allocates: usable on fast paths).
#[inline]
pub(crate) fn existing(fd: c_int) -> Option<&'static Slot> {
    let (page, offset) = position(fd)?;
    let base = TABLE[page].load(Ordering::Acquire);
    // SAFETY: a non-null page is a leaked allocation of `PAGE` slots that
    // is never freed, and `offset < PAGE`.
    (!base.is_null()).then(|| unsafe { &*base.add(offset) })
}

/// `fd`'s slot if the fd is managed.
#[inline]
pub(crate) fn managed(fd: c_int) -> Option<&'static Slot> {
    existing(fd).filter(|slot| slot.state() & MANAGED != 0)
}

/// `fd`'s slot, allocating its page on first use.
pub(crate) fn slot(fd: c_int) -> Option<&'static Slot> {
    if let Some(slot) = existing(fd) {
        return Some(slot);
    }
    let (page, offset) = position(fd)?;
    let fresh: Box<[Slot]> = (0..PAGE).map(|_| Slot::default()).collect();
    let fresh = Box::into_raw(fresh).cast::<Slot>();
    let base = match TABLE[page].compare_exchange(
        std::ptr::null_mut(),
        fresh,
        Ordering::AcqRel,
        Ordering::Acquire,
    ) {
        Ok(_) => fresh,
        Err(winner) => {
            // SAFETY: `fresh` came from `Box::into_raw` of `PAGE` slots just
            // above and was never shared.
            drop(unsafe { Box::from_raw(std::ptr::slice_from_raw_parts_mut(fresh, PAGE)) });
            winner
        }
    };
    // SAFETY: as in `existing`.
    Some(unsafe { &*base.add(offset) })
}
