//! libc's own functions, found with `dlsym(RTLD_NEXT, ..)`: the definition
//! that the patch's interposed symbol hides.
//!
//! The patch never calls `libc::read` and its kin: in a binary that links
//! the patch, those names resolve to the patch itself. Each real function
//! is looked up once and cached in an atomic; the lookup is safe before
//! `main`, in any thread, and racing lookups store the same address.

use std::ffi::CStr;
use std::sync::atomic::{AtomicUsize, Ordering};

use libc::{
    addrinfo, c_char, c_int, c_uint, c_ulong, c_void, clockid_t, iovec, msghdr, nfds_t, pollfd,
    size_t, sockaddr, socklen_t, ssize_t, timespec, useconds_t,
};

/// The address of `name` in the objects loaded after this binary.
///
/// Aborts if libc lacks the symbol: the interposed call could then neither
/// work nor report an error its caller expects.
#[cold]
fn resolve(name: &[u8], cache: &AtomicUsize) -> usize {
    let Ok(name) = CStr::from_bytes_with_nul(name) else {
        crate::fatal(b"greenloop-patch: a function name lacks its NUL\n");
    };
    // SAFETY: `name` is NUL-terminated; `RTLD_NEXT` is valid from code
    // linked into an executable or a shared object (dlsym(3)).
    let address = unsafe { libc::dlsym(libc::RTLD_NEXT, name.as_ptr()) } as usize;
    if address == 0 {
        crate::fatal(b"greenloop-patch: libc lacks an interposed function\n");
    }
    cache.store(address, Ordering::Relaxed);
    address
}

macro_rules! real_functions {
    ($( $name:ident($($arg:ident: $ty:ty),*) -> $ret:ty; )*) => {$(
        #[doc = concat!("Calls libc's `", stringify!($name), "`.")]
        ///
        /// # Safety
        ///
        /// As for the libc function of that name.
        pub(crate) unsafe fn $name($($arg: $ty),*) -> $ret {
            static CACHE: AtomicUsize = AtomicUsize::new(0);
            let mut address = CACHE.load(Ordering::Relaxed);
            if address == 0 {
                address = resolve(concat!(stringify!($name), "\0").as_bytes(), &CACHE);
            }
            type Function = unsafe extern "C" fn($($ty),*) -> $ret;
            // SAFETY: `address` is libc's function of this name, whose C prototype this signature matches (see the libc crate).
            let function = unsafe { std::mem::transmute::<usize, Function>(address) };
            // SAFETY: the caller upholds the libc function's contract.
            unsafe { function($($arg),*) }
        }
    )*};
}

real_functions! {
    read(fd: c_int, buf: *mut c_void, count: size_t) -> ssize_t;
    write(fd: c_int, buf: *const c_void, count: size_t) -> ssize_t;
    readv(fd: c_int, iov: *const iovec, iovcnt: c_int) -> ssize_t;
    writev(fd: c_int, iov: *const iovec, iovcnt: c_int) -> ssize_t;
    recv(fd: c_int, buf: *mut c_void, len: size_t, flags: c_int) -> ssize_t;
    send(fd: c_int, buf: *const c_void, len: size_t, flags: c_int) -> ssize_t;
    recvfrom(fd: c_int, buf: *mut c_void, len: size_t, flags: c_int, addr: *mut sockaddr, addrlen: *mut socklen_t) -> ssize_t;
    sendto(fd: c_int, buf: *const c_void, len: size_t, flags: c_int, addr: *const sockaddr, addrlen: socklen_t) -> ssize_t;
    recvmsg(fd: c_int, msg: *mut msghdr, flags: c_int) -> ssize_t;
    sendmsg(fd: c_int, msg: *const msghdr, flags: c_int) -> ssize_t;
    accept(fd: c_int, addr: *mut sockaddr, addrlen: *mut socklen_t) -> c_int;
    accept4(fd: c_int, addr: *mut sockaddr, addrlen: *mut socklen_t, flags: c_int) -> c_int;
    connect(fd: c_int, addr: *const sockaddr, addrlen: socklen_t) -> c_int;
    poll(fds: *mut pollfd, nfds: nfds_t, timeout: c_int) -> c_int;
    close(fd: c_int) -> c_int;
    dup(fd: c_int) -> c_int;
    dup2(old: c_int, new: c_int) -> c_int;
    dup3(old: c_int, new: c_int, flags: c_int) -> c_int;
    setsockopt(fd: c_int, level: c_int, name: c_int, value: *const c_void, len: socklen_t) -> c_int;
    nanosleep(req: *const timespec, rem: *mut timespec) -> c_int;
    clock_nanosleep(clock: clockid_t, flags: c_int, req: *const timespec, rem: *mut timespec) -> c_int;
    usleep(usec: useconds_t) -> c_int;
    sleep(seconds: c_uint) -> c_uint;
    sigaction(sig: c_int, act: *const libc::sigaction, old: *mut libc::sigaction) -> c_int;
    getaddrinfo(node: *const c_char, service: *const c_char, hints: *const addrinfo, res: *mut *mut addrinfo) -> c_int;
}

/// Calls libc's variadic `fcntl` with one integer argument (every command
/// the patch handles takes an `int` or none, passed in a register).
///
/// # Safety
///
/// As for `fcntl(2)` with `cmd` and `arg`.
pub(crate) unsafe fn fcntl(fd: c_int, cmd: c_int, arg: c_ulong) -> c_int {
    static CACHE: AtomicUsize = AtomicUsize::new(0);
    let mut address = CACHE.load(Ordering::Relaxed);
    if address == 0 {
        address = resolve(b"fcntl\0", &CACHE);
    }
    // SAFETY: libc's `fcntl`, declared `int fcntl(int, int, ...)`.
    let function: unsafe extern "C" fn(c_int, c_int, ...) -> c_int =
        unsafe { std::mem::transmute::<usize, _>(address) };
    // SAFETY: the caller upholds fcntl(2)'s contract.
    unsafe { function(fd, cmd, arg) }
}

/// Calls libc's variadic `ioctl` with one pointer-sized argument.
///
/// # Safety
///
/// As for `ioctl(2)` with `request` and `arg`.
pub(crate) unsafe fn ioctl(fd: c_int, request: c_ulong, arg: *mut c_void) -> c_int {
    static CACHE: AtomicUsize = AtomicUsize::new(0);
    let mut address = CACHE.load(Ordering::Relaxed);
    if address == 0 {
        address = resolve(b"ioctl\0", &CACHE);
    }
    // SAFETY: libc's `ioctl`, declared `int ioctl(int, unsigned long, ...)`.
    let function: unsafe extern "C" fn(c_int, c_ulong, ...) -> c_int =
        unsafe { std::mem::transmute::<usize, _>(address) };
    // SAFETY: the caller upholds ioctl(2)'s contract.
    unsafe { function(fd, request, arg) }
}
