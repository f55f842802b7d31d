//! The interposed transfer calls: `read`/`write`, `readv`/`writev`,
//! `recv`/`send`, `recvfrom`/`sendto`, `recvmsg`/`sendmsg`,
//! `accept`/`accept4`. Each is libc's call run through
//! [`blocking`](crate::wait::blocking); a call with `MSG_DONTWAIT` asked
//! not to block and goes to libc as it is.
//!
//! # Safety
//!
//! Each function has the contract of the libc function of its name: the
//! pointers and lengths must be valid as that function requires.

use greenloop_runtime::reactor::Direction::{Read, Write};
use libc::{c_int, c_void, iovec, msghdr, size_t, sockaddr, socklen_t, ssize_t};

use crate::real;
use crate::wait::blocking;

/// `read(2)`, parking a green thread on a socket that would block.
///
/// # Safety
///
/// As for `read(2)`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn read(fd: c_int, buf: *mut c_void, count: size_t) -> ssize_t {
    // SAFETY: the caller's contract is read(2)'s.
    blocking(fd, Read, move || unsafe { real::read(fd, buf, count) })
}

/// `write(2)`, parking a green thread on a socket that would block.
///
/// # Safety
///
/// As for `write(2)`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn write(fd: c_int, buf: *const c_void, count: size_t) -> ssize_t {
    // SAFETY: the caller's contract is write(2)'s.
    blocking(fd, Write, move || unsafe { real::write(fd, buf, count) })
}

/// `readv(2)`, parking a green thread on a socket that would block.
///
/// # Safety
///
/// As for `readv(2)`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn readv(fd: c_int, iov: *const iovec, iovcnt: c_int) -> ssize_t {
    // SAFETY: the caller's contract is readv(2)'s.
    blocking(fd, Read, move || unsafe { real::readv(fd, iov, iovcnt) })
}

/// `writev(2)`, parking a green thread on a socket that would block.
///
/// # Safety
///
/// As for `writev(2)`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn writev(fd: c_int, iov: *const iovec, iovcnt: c_int) -> ssize_t {
    // SAFETY: the caller's contract is writev(2)'s.
    blocking(fd, Write, move || unsafe { real::writev(fd, iov, iovcnt) })
}

/// Whether `flags` ask a socket call not to block.
fn dontwait(flags: c_int) -> bool {
    flags & libc::MSG_DONTWAIT != 0
}

/// `recv(2)`, parking a green thread on a socket that would block.
///
/// # Safety
///
/// As for `recv(2)`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn recv(fd: c_int, buf: *mut c_void, len: size_t, flags: c_int) -> ssize_t {
    // SAFETY: the caller's contract is recv(2)'s.
    let op = move || unsafe { real::recv(fd, buf, len, flags) };
    if dontwait(flags) { op() } else { blocking(fd, Read, op) }
}

/// `send(2)`, parking a green thread on a socket that would block.
///
/// # Safety
///
/// As for `send(2)`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn send(fd: c_int, buf: *const c_void, len: size_t, flags: c_int) -> ssize_t {
    // SAFETY: the caller's contract is send(2)'s.
    let op = move || unsafe { real::send(fd, buf, len, flags) };
    if dontwait(flags) { op() } else { blocking(fd, Write, op) }
}

/// `recvfrom(2)`, parking a green thread on a socket that would block.
///
/// # Safety
///
/// As for `recvfrom(2)`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn recvfrom(
    fd: c_int,
    buf: *mut c_void,
    len: size_t,
    flags: c_int,
    addr: *mut sockaddr,
    addrlen: *mut socklen_t,
) -> ssize_t {
    // SAFETY: the caller's contract is recvfrom(2)'s.
    let op = move || unsafe { real::recvfrom(fd, buf, len, flags, addr, addrlen) };
    if dontwait(flags) { op() } else { blocking(fd, Read, op) }
}

/// `sendto(2)`, parking a green thread on a socket that would block.
///
/// # Safety
///
/// As for `sendto(2)`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sendto(
    fd: c_int,
    buf: *const c_void,
    len: size_t,
    flags: c_int,
    addr: *const sockaddr,
    addrlen: socklen_t,
) -> ssize_t {
    // SAFETY: the caller's contract is sendto(2)'s.
    let op = move || unsafe { real::sendto(fd, buf, len, flags, addr, addrlen) };
    if dontwait(flags) { op() } else { blocking(fd, Write, op) }
}

/// `recvmsg(2)`, parking a green thread on a socket that would block.
///
/// # Safety
///
/// As for `recvmsg(2)`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn recvmsg(fd: c_int, msg: *mut msghdr, flags: c_int) -> ssize_t {
    // SAFETY: the caller's contract is recvmsg(2)'s.
    let op = move || unsafe { real::recvmsg(fd, msg, flags) };
    if dontwait(flags) { op() } else { blocking(fd, Read, op) }
}

/// `sendmsg(2)`, parking a green thread on a socket that would block.
///
/// # Safety
///
/// As for `sendmsg(2)`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sendmsg(fd: c_int, msg: *const msghdr, flags: c_int) -> ssize_t {
    // SAFETY: the caller's contract is sendmsg(2)'s.
    let op = move || unsafe { real::sendmsg(fd, msg, flags) };
    if dontwait(flags) { op() } else { blocking(fd, Write, op) }
}

/// `accept(2)`, parking a green thread on a listener with no connection.
///
/// # Safety
///
/// As for `accept(2)`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn accept(fd: c_int, addr: *mut sockaddr, addrlen: *mut socklen_t) -> c_int {
    // SAFETY: the caller's contract is accept(2)'s.
    let op = move || unsafe { real::accept(fd, addr, addrlen) } as ssize_t;
    blocking(fd, Read, op) as c_int
}

/// `accept4(2)`, parking a green thread on a listener with no connection.
///
/// # Safety
///
/// As for `accept4(2)`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn accept4(
    fd: c_int,
    addr: *mut sockaddr,
    addrlen: *mut socklen_t,
    flags: c_int,
) -> c_int {
    // SAFETY: the caller's contract is accept4(2)'s.
    let op = move || unsafe { real::accept4(fd, addr, addrlen, flags) } as ssize_t;
    blocking(fd, Read, op) as c_int
}
