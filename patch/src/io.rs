//! The interposed transfer calls: `read`/`write`, `readv`/`writev`,
//! `recv`/`send`, `recvfrom`/`sendto`, `recvmsg`/`sendmsg`,
//! `accept`/`accept4`. Each is libc's call, waited for as
//! [`wait`](crate::wait) describes; a call with `MSG_DONTWAIT` asked not
//! to block and goes to libc as it is.
//!
//! # Off green threads
//!
//! Each function is written out by [`transfers!`] so that a call outside a
//! green thread costs libc's call plus a thread-local check and a check of
//! the result: the green path and the failure path are functions of the
//! call's own arguments, out of line, so the fast path builds no closure
//! and only keeps its arguments for a retry after a failure.
//!
//! # Safety
//!
//! Each function has the contract of the libc function of its name: the
//! pointers and lengths must be valid as that function requires.

use greenloop_runtime::reactor::Direction::{Read, Write};
use libc::{c_int, c_void, iovec, msghdr, size_t, sockaddr, socklen_t, ssize_t};

use crate::{gate, real, wait};

/// Whether `flags` ask a socket call not to block.
fn dontwait(flags: c_int) -> bool {
    flags & libc::MSG_DONTWAIT != 0
}

/// Defines each interposed transfer call `name` that waits for `dir` on
/// its first argument, the fd, unless `skip` (its flags ask not to block).
macro_rules! transfers {
    ($(
        $(#[$attr:meta])*
        fn $name:ident($fd:ident: c_int $(, $arg:ident: $ty:ty)*) -> $ret:ty:
            $dir:ident $(unless $skip:expr)?;
    )*) => {$(
        $(#[$attr])*
        #[unsafe(no_mangle)]
        pub unsafe extern "C" fn $name($fd: c_int $(, $arg: $ty)*) -> $ret {
            /// In a green thread (or a stackless task on a runtime's
            /// thread): the green route if the call has one.
            #[inline(never)]
            unsafe fn green($fd: c_int $(, $arg: $ty)*) -> $ret {
                // SAFETY: the caller's contract is libc's.
                let op = move || unsafe { real::$name($fd $(, $arg)*) } as ssize_t;
                $(if $skip { return op() as $ret; })?
                wait::in_green($fd, $dir, op) as $ret
            }
            /// Off green threads, after libc's call failed with `result`.
            #[cold]
            #[inline(never)]
            unsafe fn failed($fd: c_int $(, $arg: $ty)*, result: $ret) -> $ret {
                // SAFETY: the caller's contract is libc's.
                let op = move || unsafe { real::$name($fd $(, $arg)*) } as ssize_t;
                $(if $skip { return result; })?
                wait::failed($fd, $dir, result as ssize_t, op) as $ret
            }
            if !gate::off_green() {
                // SAFETY: the caller's contract is libc's.
                return unsafe { green($fd $(, $arg)*) };
            }
            // SAFETY: the caller's contract is libc's.
            let result = unsafe { real::$name($fd $(, $arg)*) };
            if result < 0 {
                // SAFETY: the caller's contract is libc's.
                return unsafe { failed($fd $(, $arg)*, result) };
            }
            result
        }
    )*};
}

transfers! {
    /// `read(2)`, parking a green thread on a socket that would block.
    ///
    /// # Safety
    ///
    /// As for `read(2)`.
    fn read(fd: c_int, buf: *mut c_void, count: size_t) -> ssize_t: Read;

    /// `write(2)`, parking a green thread on a socket that would block.
    ///
    /// # Safety
    ///
    /// As for `write(2)`.
    fn write(fd: c_int, buf: *const c_void, count: size_t) -> ssize_t: Write;

    /// `readv(2)`, parking a green thread on a socket that would block.
    ///
    /// # Safety
    ///
    /// As for `readv(2)`.
    fn readv(fd: c_int, iov: *const iovec, iovcnt: c_int) -> ssize_t: Read;

    /// `writev(2)`, parking a green thread on a socket that would block.
    ///
    /// # Safety
    ///
    /// As for `writev(2)`.
    fn writev(fd: c_int, iov: *const iovec, iovcnt: c_int) -> ssize_t: Write;

    /// `recv(2)`, parking a green thread on a socket that would block.
    ///
    /// # Safety
    ///
    /// As for `recv(2)`.
    fn recv(fd: c_int, buf: *mut c_void, len: size_t, flags: c_int) -> ssize_t:
        Read unless dontwait(flags);

    /// `send(2)`, parking a green thread on a socket that would block.
    ///
    /// # Safety
    ///
    /// As for `send(2)`.
    fn send(fd: c_int, buf: *const c_void, len: size_t, flags: c_int) -> ssize_t:
        Write unless dontwait(flags);

    /// `recvfrom(2)`, parking a green thread on a socket that would block.
    ///
    /// # Safety
    ///
    /// As for `recvfrom(2)`.
    fn recvfrom(
        fd: c_int,
        buf: *mut c_void,
        len: size_t,
        flags: c_int,
        addr: *mut sockaddr,
        addrlen: *mut socklen_t
    ) -> ssize_t: Read unless dontwait(flags);

    /// `sendto(2)`, parking a green thread on a socket that would block.
    ///
    /// # Safety
    ///
    /// As for `sendto(2)`.
    fn sendto(
        fd: c_int,
        buf: *const c_void,
        len: size_t,
        flags: c_int,
        addr: *const sockaddr,
        addrlen: socklen_t
    ) -> ssize_t: Write unless dontwait(flags);

    /// `recvmsg(2)`, parking a green thread on a socket that would block.
    ///
    /// # Safety
    ///
    /// As for `recvmsg(2)`.
    fn recvmsg(fd: c_int, msg: *mut msghdr, flags: c_int) -> ssize_t:
        Read unless dontwait(flags);

    /// `sendmsg(2)`, parking a green thread on a socket that would block.
    ///
    /// # Safety
    ///
    /// As for `sendmsg(2)`.
    fn sendmsg(fd: c_int, msg: *const msghdr, flags: c_int) -> ssize_t:
        Write unless dontwait(flags);

    /// `accept(2)`, parking a green thread on a listener with no connection.
    ///
    /// # Safety
    ///
    /// As for `accept(2)`.
    fn accept(fd: c_int, addr: *mut sockaddr, addrlen: *mut socklen_t) -> c_int: Read;

    /// `accept4(2)`, parking a green thread on a listener with no connection.
    ///
    /// # Safety
    ///
    /// As for `accept4(2)`.
    fn accept4(fd: c_int, addr: *mut sockaddr, addrlen: *mut socklen_t, flags: c_int) -> c_int:
        Read;
}
