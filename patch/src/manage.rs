//! Taking a socket over, and the route a blocking call on it takes.
//!
//! A green thread's blocking call on `fd` goes the green way only if `fd`
//! is a socket the user believes blocking, registered with the caller's own
//! reactor. [`route`] decides, adopting the socket on first sight
//! ([`adopt`]) and registering it on first green use ([`register`]); after
//! that it takes no lock: atomics in the fd's slot and this thread's own
//! table (`owned`) answer.

use std::rc::Rc;
use std::time::Duration;

use greenloop_runtime::reactor::{Direction, IoKey, Reactor};
use libc::{c_int, c_ulong};
use mio::unix::SourceFd;

use crate::fds::{self, MANAGED, NOT_SOCKET, OWN_NONBLOCK, Registration, Slot, owner_of};
use crate::{owned, real};

/// A managed socket on this thread's reactor: what a green park needs.
pub(crate) struct Green {
    pub(crate) fd: c_int,
    pub(crate) slot: &'static Slot,
    pub(crate) key: IoKey,
    /// The slot's generation when the route was taken (see `fds`).
    pub(crate) generation: u64,
    pub(crate) reactor: Rc<Reactor>,
    /// The socket's `SO_RCVTIMEO` or `SO_SNDTIMEO`, for the route's direction.
    pub(crate) timeout: Option<Duration>,
}

/// The green route of a call on `fd` in `dir` from a green thread, or
/// `None` when the call goes to libc as it is: `fd` is no socket, the
/// user made it non-blocking (unless `for_poll`, which only needs its
/// readiness), or another OS thread's reactor holds it.
#[inline]
pub(crate) fn route(fd: c_int, dir: Direction, for_poll: bool) -> Option<Green> {
    let slot = fds::slot(fd)?;
    let state = slot.state();
    if state & MANAGED == 0 {
        if state & NOT_SOCKET != 0 || (state & OWN_NONBLOCK != 0 && !for_poll) {
            return None;
        }
        adopt(fd, slot, for_poll)?;
    }
    if !for_poll && !slot.parks() {
        return None;
    }
    let reactor = Reactor::try_current().ok()?;
    let generation = slot.generation();
    let (key, generation) = match owned::key(fd, generation) {
        Some(key) => (key, generation),
        None => register(fd, slot, &reactor)?,
    };
    Some(Green { fd, slot, key, generation, timeout: slot.timeout(dir), reactor })
}

/// Registers the managed `fd` with `reactor` unless another reactor holds
/// it; returns its key and the generation registered.
#[cold]
#[inline(never)]
fn register(fd: c_int, slot: &Slot, reactor: &Reactor) -> Option<(IoKey, u64)> {
    let mut registration = slot.lock();
    if slot.state() & MANAGED == 0 {
        return None;
    }
    let generation = slot.generation();
    let mine = owner_of(reactor.id());
    let key = match (&*registration, slot.owner()) {
        (Some(registration), owner) if owner == mine => registration.key,
        (Some(_), _) => return None,
        (None, _) => {
            let key = reactor.register(&mut SourceFd(&fd)).ok()?;
            reactor.name_fd(key, fd);
            let remote = reactor.remote().clone();
            *registration = Some(Registration { key, remote });
            slot.set_owner(mine);
            key
        }
    };
    drop(registration);
    owned::wake(owned::insert(fd, generation, key));
    Some((key, generation))
}

/// Takes `fd` over if it is a socket: sets `O_NONBLOCK` on it (unless the
/// user did) and records the user's view and its timeouts. `for_poll`
/// also takes sockets the user made non-blocking. An fd it does not take
/// is marked, so that its next calls skip these checks.
#[cold]
#[inline(never)]
fn adopt(fd: c_int, slot: &Slot, for_poll: bool) -> Option<()> {
    let generation = slot.generation();
    // SAFETY: F_GETFL takes no argument; a bad fd answers EBADF.
    let flags = unsafe { real::fcntl(fd, libc::F_GETFL, 0) };
    if flags < 0 {
        return None;
    }
    let user_nonblock = flags & libc::O_NONBLOCK != 0;
    let passed = if !is_socket(fd) {
        Some(NOT_SOCKET)
    } else if user_nonblock && !for_poll {
        Some(OWN_NONBLOCK)
    } else {
        None
    };
    let mut registration = slot.lock();
    if let Some(bit) = passed {
        slot.mark(generation, bit);
        return None;
    }
    if slot.state() & MANAGED != 0 {
        return Some(());
    }
    if slot.generation() != generation {
        return None;
    }
    if !user_nonblock {
        let flags = c_ulong::try_from(flags | libc::O_NONBLOCK).ok()?;
        // SAFETY: F_SETFL takes the int flags.
        if unsafe { real::fcntl(fd, libc::F_SETFL, flags) } < 0 {
            return None;
        }
    }
    *registration = None;
    slot.set_managed(
        user_nonblock,
        [timeout(fd, libc::SO_RCVTIMEO), timeout(fd, libc::SO_SNDTIMEO)],
    );
    Some(())
}

/// Marks `new`, a duplicate of the managed `old`, managed too: it shares
/// `old`'s open file description, so its internal `O_NONBLOCK` and its
/// timeouts. It registers on its first green use.
pub(crate) fn inherit(old: &Slot, new: c_int) {
    let Some(slot) = fds::slot(new) else { return };
    let timeouts = [old.timeout(Direction::Read), old.timeout(Direction::Write)];
    let mut registration = slot.lock();
    *registration = None;
    slot.set_managed(old.state() & fds::USER_NONBLOCK != 0, timeouts);
}

/// Whether `fd` is a socket (regular files, pipes and ttys are not).
fn is_socket(fd: c_int) -> bool {
    let mut stat = std::mem::MaybeUninit::<libc::stat>::uninit();
    // SAFETY: fstat(2) writes a `stat` on success; read only then.
    unsafe {
        libc::fstat(fd, stat.as_mut_ptr()) == 0
            && stat.assume_init().st_mode & libc::S_IFMT == libc::S_IFSOCK
    }
}

/// The socket's `name` timeout (`SO_RCVTIMEO`/`SO_SNDTIMEO`), `None` if unset.
fn timeout(fd: c_int, name: c_int) -> Option<Duration> {
    let mut value = libc::timeval { tv_sec: 0, tv_usec: 0 };
    let mut len = std::mem::size_of::<libc::timeval>() as libc::socklen_t;
    // SAFETY: `value` and `len` describe a writable timeval.
    let r = unsafe {
        libc::getsockopt(fd, libc::SOL_SOCKET, name, (&raw mut value).cast(), &raw mut len)
    };
    if r == 0 { duration_of(&value) } else { None }
}

/// A socket timeout as a duration; zero means none.
pub(crate) fn duration_of(value: &libc::timeval) -> Option<Duration> {
    let secs = u64::try_from(value.tv_sec).ok()?;
    let micros = u32::try_from(value.tv_usec).ok()?;
    let duration = Duration::from_secs(secs) + Duration::from_micros(micros.into());
    (!duration.is_zero()).then_some(duration)
}
