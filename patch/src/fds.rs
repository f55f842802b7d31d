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
//! What every call reads is atomic: the `state` bits ("managed?", the
//! user's view), the generation, the reactor that holds the registration
//! (its *owner*) and the socket timeouts. The registration itself sits
//! behind the slot's mutex, taken only when an fd is adopted, registered
//! or forgotten; the owner thread finds its key, and parks its waiters, in
//! its own table (`owned`). `close` bumps the slot's generation, so a
//! green thread parked on the old socket wakes with `EBADF` and a new
//! socket with the same number starts afresh, with a new registration and
//! no readiness of the old one.

use std::sync::atomic::{AtomicPtr, AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
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
/// `state` bit, unmanaged fds: not a socket (a file, a pipe, a tty), so
/// its calls are libc's until it is closed.
pub(crate) const NOT_SOCKET: u8 = 4;
/// `state` bit, unmanaged fds: a socket its user made non-blocking, so its
/// calls are libc's until it is closed or its flags change (`poll` still
/// adopts it).
pub(crate) const OWN_NONBLOCK: u8 = 8;

/// One fd number's record.
#[derive(Debug, Default)]
pub(crate) struct Slot {
    state: AtomicU8,
    /// Bumped by every close of a managed fd.
    generation: AtomicU64,
    /// The id of the reactor holding the registration, 0 for none.
    owner: AtomicU64,
    /// `SO_RCVTIMEO` and `SO_SNDTIMEO` in nanoseconds (0: none): the
    /// longest park per call.
    timeouts: [AtomicU64; 2],
    /// The registration, for whoever forgets the fd; its lock also orders
    /// adopting, registering and forgetting.
    registration: Mutex<Option<Registration>>,
}

/// Where a managed fd is registered.
#[derive(Debug)]
pub(crate) struct Registration {
    pub(crate) key: IoKey,
    /// The owner reactor's wake handle, to forget the fd on its thread.
    pub(crate) remote: Arc<Remote>,
}

/// The index of `dir` in per-direction arrays.
pub(crate) fn index(dir: Direction) -> usize {
    match dir {
        Direction::Read => 0,
        Direction::Write => 1,
    }
}

/// A reactor id as the `owner` field stores it.
pub(crate) fn owner_of(id: ReactorId) -> u64 {
    id.as_u64().get()
}

impl Slot {
    /// Its `state` bits.
    #[inline]
    pub(crate) fn state(&self) -> u8 {
        self.state.load(Ordering::Acquire)
    }

    /// Whether the fd is managed and the user believes it blocking.
    #[inline]
    pub(crate) fn parks(&self) -> bool {
        self.state() & (MANAGED | USER_NONBLOCK) == MANAGED
    }

    /// Records what the green path found an unmanaged fd to be (`bit`:
    /// [`NOT_SOCKET`] or [`OWN_NONBLOCK`]), unless it changed since
    /// `generation` (closed, or its flags set) or was adopted. The caller
    /// holds [`lock`](Slot::lock).
    pub(crate) fn mark(&self, generation: u64, bit: u8) {
        if self.generation() == generation && self.state() & MANAGED == 0 {
            self.state.store(bit, Ordering::Release);
        }
    }

    /// Sets or clears the user's view of `O_NONBLOCK`.
    pub(crate) fn set_user_nonblock(&self, on: bool) {
        if on {
            self.state.fetch_or(USER_NONBLOCK, Ordering::AcqRel);
        } else {
            self.state.fetch_and(!USER_NONBLOCK, Ordering::AcqRel);
        }
    }

    /// Marks the fd managed, with the user's view `user_nonblock` and the
    /// socket's `timeouts`, registered nowhere yet. The caller holds
    /// [`lock`](Slot::lock), whose registration it clears.
    pub(crate) fn set_managed(&self, user_nonblock: bool, timeouts: [Option<Duration>; 2]) {
        for (direction, timeout) in timeouts.into_iter().enumerate() {
            self.set_timeout(direction, timeout);
        }
        self.owner.store(0, Ordering::Release);
        let bits = if user_nonblock { MANAGED | USER_NONBLOCK } else { MANAGED };
        self.state.store(bits, Ordering::Release);
    }

    /// The current generation (see the module docs).
    #[inline]
    pub(crate) fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// The id of the reactor holding the registration, 0 for none.
    pub(crate) fn owner(&self) -> u64 {
        self.owner.load(Ordering::Acquire)
    }

    /// Records that reactor `owner` holds the registration; the caller
    /// holds [`lock`](Slot::lock).
    pub(crate) fn set_owner(&self, owner: u64) {
        self.owner.store(owner, Ordering::Release);
    }

    /// The longest park of one call in `dir`.
    #[inline]
    pub(crate) fn timeout(&self, dir: Direction) -> Option<Duration> {
        let nanos = self.timeouts[index(dir)].load(Ordering::Relaxed);
        (nanos != 0).then(|| Duration::from_nanos(nanos))
    }

    /// Sets the longest park of one call in direction `index`.
    pub(crate) fn set_timeout(&self, index: usize, timeout: Option<Duration>) {
        let nanos = timeout.map_or(0, |t| u64::try_from(t.as_nanos()).unwrap_or(u64::MAX).max(1));
        self.timeouts[index].store(nanos, Ordering::Relaxed);
    }

    /// Locks the registration (slow paths only).
    pub(crate) fn lock(&self) -> MutexGuard<'_, Option<Registration>> {
        self.registration.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Forgets the fd (it is being closed, or an unmanaged fd's flags
    /// change): a new generation, no state.
    /// Returns the generation that ended and the registration, which the
    /// caller undoes on its owner's thread.
    pub(crate) fn forget(&self) -> (u64, Option<Registration>) {
        let mut registration = self.lock();
        let ended = self.generation.fetch_add(1, Ordering::AcqRel);
        self.state.store(0, Ordering::Release);
        self.owner.store(0, Ordering::Release);
        for index in 0..2 {
            self.set_timeout(index, None);
        }
        (ended, registration.take())
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

/// `fd`'s slot if it has any state (managed, or marked as passed).
pub(crate) fn known(fd: c_int) -> Option<&'static Slot> {
    existing(fd).filter(|slot| slot.state() != 0)
}

/// `fd`'s slot if the fd is managed.
#[inline]
pub(crate) fn managed(fd: c_int) -> Option<&'static Slot> {
    existing(fd).filter(|slot| slot.state() & MANAGED != 0)
}

/// `fd`'s slot, allocating its page on first use.
#[inline]
pub(crate) fn slot(fd: c_int) -> Option<&'static Slot> {
    existing(fd).or_else(|| allocate(fd))
}

/// `fd`'s slot, after allocating its page (unless a racing call did).
#[cold]
#[inline(never)]
fn allocate(fd: c_int) -> Option<&'static Slot> {
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
