//! The interposed calls that change or end a socket: `close`, the `dup`
//! family, `fcntl`, `ioctl(FIONBIO)` and `setsockopt`. They keep the fd
//! table true, and show the user its own view of `O_NONBLOCK` on managed
//! sockets (which the patch keeps non-blocking underneath). They need no
//! green thread: an fd is shared by every thread of the process.

use std::sync::Arc;

use greenloop_runtime::reactor::{Inject, IoKey, Reactor};
use libc::{c_int, c_ulong, c_void, socklen_t};

use crate::fds::{self, MANAGED, Slot, USER_NONBLOCK};
use crate::manage::{duration_of, inherit};
use crate::{owned, real};

/// `close(2)`: a managed socket is deregistered and every green thread
/// parked on it wakes with `EBADF`, before libc closes it.
///
/// # Safety
///
/// As for `close(2)`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn close(fd: c_int) -> c_int {
    if let Some(slot) = fds::known(fd) {
        forget(fd, slot);
    }
    // SAFETY: the caller's contract is close(2)'s.
    unsafe { real::close(fd) }
}

/// Forgets the managed `fd`, which is about to be closed or replaced: its
/// registration is removed on its reactor's thread, and the green threads
/// parked on it wake (at once when this is that thread).
fn forget(fd: c_int, slot: &Slot) {
    let (generation, registration) = slot.forget();
    let Some(registration) = registration else { return };
    if Reactor::current_id() == Some(registration.remote.id()) {
        owned::wake(owned::remove(fd, generation));
    }
    // On the owner thread too: the removal runs in the reactor's next
    // turn, which needs no access to the reactor's thread-local here (a
    // close may run in a thread-local destructor).
    let key = registration.key;
    registration.remote.inject(Arc::new(Forget { fd, generation, key }));
}

/// Removes a closed fd's registration from its reactor, on its thread, and
/// wakes the green threads parked on it.
struct Forget {
    fd: c_int,
    generation: u64,
    key: IoKey,
}

impl Inject for Forget {
    fn run(self: Arc<Self>) {
        owned::wake(owned::remove(self.fd, self.generation));
        if let Some(reactor) = Reactor::existing() {
            // The fd is closed: the kernel dropped it from epoll already,
            // so only the reactor's own record goes.
            let _ = reactor.deregister(self.key, &mut Closed);
        }
    }
}

/// A source that is already closed: deregistering it does nothing.
struct Closed;

impl mio::event::Source for Closed {
    fn register(
        &mut self,
        _: &mio::Registry,
        _: mio::Token,
        _: mio::Interest,
    ) -> std::io::Result<()> {
        Ok(())
    }

    fn reregister(
        &mut self,
        _: &mio::Registry,
        _: mio::Token,
        _: mio::Interest,
    ) -> std::io::Result<()> {
        Ok(())
    }

    fn deregister(&mut self, _: &mio::Registry) -> std::io::Result<()> {
        Ok(())
    }
}

/// `dup(2)`: a duplicate of a managed socket is managed too.
///
/// # Safety
///
/// As for `dup(2)`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn dup(fd: c_int) -> c_int {
    // SAFETY: the caller's contract is dup(2)'s.
    let new = unsafe { real::dup(fd) };
    duplicated(fd, new)
}

/// `dup2(2)`: forgets the fd it replaces; a duplicate of a managed socket
/// is managed too.
///
/// # Safety
///
/// As for `dup2(2)`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn dup2(old: c_int, new: c_int) -> c_int {
    if old != new
        && let Some(slot) = fds::known(new)
    {
        forget(new, slot);
    }
    // SAFETY: the caller's contract is dup2(2)'s.
    let new = unsafe { real::dup2(old, new) };
    duplicated(old, new)
}

/// `dup3(2)`: as `dup2`.
///
/// # Safety
///
/// As for `dup3(2)`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn dup3(old: c_int, new: c_int, flags: c_int) -> c_int {
    if old != new
        && let Some(slot) = fds::known(new)
    {
        forget(new, slot);
    }
    // SAFETY: the caller's contract is dup3(2)'s.
    let new = unsafe { real::dup3(old, new, flags) };
    duplicated(old, new)
}

/// Marks `new` (a dup's result) managed if `old` is; returns `new`.
fn duplicated(old: c_int, new: c_int) -> c_int {
    if new >= 0
        && new != old
        && let Some(slot) = fds::managed(old)
    {
        if let Some(stale) = fds::known(new) {
            // Closed behind the patch's back (a raw syscall): forget it now.
            forget(new, stale);
        }
        inherit(slot, new);
    }
    new
}

/// `fcntl(2)` with one integer argument: `F_GETFL` and `F_SETFL` on a
/// managed socket read and write the user's view of `O_NONBLOCK`;
/// `F_DUPFD*` duplicates are managed too. Everything else is libc's.
///
/// C declares `fcntl` variadic. Every command passes at most one argument,
/// an `int` or a pointer, which the x86-64 and AArch64 Linux calling
/// conventions put in the third argument register either way, so this
/// definition receives it as a `c_ulong` and hands it on unchanged.
///
/// # Safety
///
/// As for `fcntl(2)` with `cmd` and `arg`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn fcntl(fd: c_int, cmd: c_int, arg: c_ulong) -> c_int {
    // SAFETY: the caller's contract is fcntl(2)'s.
    let call = |arg| unsafe { real::fcntl(fd, cmd, arg) };
    let Some(slot) = fds::managed(fd) else {
        if cmd == libc::F_SETFL
            && let Some(slot) = fds::known(fd)
        {
            // Its O_NONBLOCK may change: the next green call looks again.
            forget(fd, slot);
        }
        return call(arg);
    };
    match cmd {
        libc::F_GETFL => {
            let flags = call(arg);
            if flags >= 0 && slot.state() & USER_NONBLOCK == 0 {
                flags & !libc::O_NONBLOCK
            } else {
                flags
            }
        }
        libc::F_SETFL => {
            let result = call(arg | libc::O_NONBLOCK as c_ulong);
            if result == 0 {
                slot.set_user_nonblock(arg & libc::O_NONBLOCK as c_ulong != 0);
            }
            result
        }
        libc::F_DUPFD | libc::F_DUPFD_CLOEXEC => duplicated(fd, call(arg)),
        _ => call(arg),
    }
}

/// `fcntl64`, glibc's name for `fcntl` in code built with 64-bit offsets.
///
/// # Safety
///
/// As for `fcntl(2)`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn fcntl64(fd: c_int, cmd: c_int, arg: c_ulong) -> c_int {
    // SAFETY: the same contract.
    unsafe { fcntl(fd, cmd, arg) }
}

/// `ioctl(2)`: `FIONBIO` on a managed socket sets the user's view of
/// `O_NONBLOCK` only (the socket stays non-blocking underneath); every
/// other request is libc's. Variadic in C, like `fcntl`.
///
/// # Safety
///
/// As for `ioctl(2)` with `request` and `arg`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ioctl(fd: c_int, request: c_ulong, arg: *mut c_void) -> c_int {
    if request == libc::FIONBIO
        && !arg.is_null()
        && let Some(slot) = fds::managed(fd)
    {
        // SAFETY: FIONBIO's argument points at an int (ioctl_list(2)).
        let on = unsafe { *arg.cast::<c_int>() } != 0;
        slot.set_user_nonblock(on);
        return 0;
    }
    if request == libc::FIONBIO
        && let Some(slot) = fds::known(fd).filter(|slot| slot.state() & MANAGED == 0)
    {
        // As for F_SETFL: the next green call looks again.
        forget(fd, slot);
    }
    // SAFETY: the caller's contract is ioctl(2)'s.
    unsafe { real::ioctl(fd, request, arg) }
}

/// `setsockopt(2)`: on a managed socket, `SO_RCVTIMEO` and `SO_SNDTIMEO`
/// also bound how long a green thread parks in one call.
///
/// # Safety
///
/// As for `setsockopt(2)`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn setsockopt(
    fd: c_int,
    level: c_int,
    name: c_int,
    value: *const c_void,
    len: socklen_t,
) -> c_int {
    // SAFETY: the caller's contract is setsockopt(2)'s.
    let result = unsafe { real::setsockopt(fd, level, name, value, len) };
    let direction = match (level, name) {
        (libc::SOL_SOCKET, libc::SO_RCVTIMEO) => 0,
        (libc::SOL_SOCKET, libc::SO_SNDTIMEO) => 1,
        _ => return result,
    };
    if result == 0
        && len as usize >= size_of::<libc::timeval>()
        && let Some(slot) = fds::existing(fd)
    {
        // SAFETY: the kernel accepted `value` as a timeval.
        let timeval = unsafe { value.cast::<libc::timeval>().read_unaligned() };
        // Under the lock that adopting takes, which reads the timeouts.
        let _adopting = slot.lock();
        if slot.state() & MANAGED != 0 {
            slot.set_timeout(direction, duration_of(&timeval));
        }
    }
    result
}
