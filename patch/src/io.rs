//! The interposed transfer calls: `read`/`write`, `readv`/`writev`,
//! `recv`/`send`, `recvfrom`/`sendto`, `recvmsg`/`sendmsg`,
//! `accept`/`accept4`. Each is libc's call, waited for as
//! [`wait`](crate::wait) describes; a call with `MSG_DONTWAIT` asked not
//! to block and goes to libc as it is.
//!
//! # Off green threads
//!
//! Each function is written out by [`transfers!`] so that a call outside a
//! green thread, on an fd the patch does not manage, costs libc's call
//! plus a thread-local check and a look at the fd's slot, and then jumps
//! to libc's function: nothing of the patch runs after the system call.
//! Every other case goes out of line, to a function of the call's own
//! arguments that waits as [`wait`](crate::wait) describes.
//!
//! # Safety
//!
//! Each function has the contract of the libc function of its name: the
//! pointers and lengths must be valid as that function requires.

use greenloop_runtime::reactor::Direction::{Read, Write};
use libc::{c_int, c_void, iovec, msghdr, size_t, sockaddr, socklen_t, ssize_t};

use crate::{real, wait};

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
            /// The call when it may wait (see [`wait::passes`]).
            #[inline(never)]
            unsafe fn waiting($fd: c_int $(, $arg: $ty)*) -> $ret {
                // SAFETY: the caller's contract is libc's.
                let op = move || unsafe { real::$name($fd $(, $arg)*) } as ssize_t;
                $(if $skip { return op() as $ret; })?
                wait::blocking($fd, $dir, op) as $ret
            }
            if wait::passes($fd) {
                // SAFETY: the caller's contract is libc's.
                return unsafe { real::$name($fd $(, $arg)*) };
            }
            // SAFETY: the caller's contract is libc's.
            unsafe { waiting($fd $(, $arg)*) }
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
