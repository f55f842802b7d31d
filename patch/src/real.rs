//! libc's own functions, found with `dlsym(RTLD_NEXT, ..)`: the definition
//! that the patch's interposed symbol hides.
//!
//! The patch never calls `libc::read` and its kin: in a binary that links
//! the patch, those names resolve to the patch itself. Each real function
//! is called through an atomic pointer that starts at a resolver: the
//! first call looks libc's function up and stores it there, so every
//! later call is one indirect call with no check. The lookup is safe
//! before `main`, in any thread, and racing lookups store the same address.

use std::ffi::CStr;
use std::sync::atomic::{AtomicPtr, Ordering};

use libc::{
    addrinfo, c_char, c_int, c_uint, c_ulong, c_void, clockid_t, iovec, msghdr, nfds_t, pollfd,
    size_t, sockaddr, socklen_t, ssize_t, timespec, useconds_t,
};

/// The address of `name` in the objects loaded after this binary, stored
/// in `cache` for the next call.
///
/// Aborts if libc lacks the symbol: the interposed call could then neither
/// work nor report an error its caller expects.
#[cold]
fn resolve(name: &[u8], cache: &AtomicPtr<()>) -> *mut () {
    let Ok(name) = CStr::from_bytes_with_nul(name) else {
        crate::fatal(b"greenloop-patch: a function name lacks its NUL\n");
    };
    // SAFETY: `name` is NUL-terminated; `RTLD_NEXT` is valid from code
    // linked into an executable or a shared object (dlsym(3)).
    let address = unsafe { libc::dlsym(libc::RTLD_NEXT, name.as_ptr()) }.cast::<()>();
    if address.is_null() {
        crate::fatal(b"greenloop-patch: libc lacks an interposed function\n");
    }
    cache.store(address, Ordering::Relaxed);
    address
}

/// The address of `name`, from `cache` if an earlier call stored it.
fn cached(name: &[u8], cache: &AtomicPtr<()>) -> *mut () {
    let address = cache.load(Ordering::Relaxed);
    if address.is_null() { resolve(name, cache) } else { address }
}

/// Defines, for each libc function, a caller of it whose pointer starts
/// as a resolver: the first call looks libc's function up, stores it over
/// the resolver and calls it; every later call is one indirect call.
macro_rules! real_functions {
    ($( $name:ident($($arg:ident: $ty:ty),*) -> $ret:ty; )*) => {$(
        #[doc = concat!("Calls libc's `", stringify!($name), "`.")]
        ///
        /// # Safety
        ///
        /// As for the libc function of that name.
        #[inline(always)]
        pub(crate) unsafe fn $name($($arg: $ty),*) -> $ret {
            type Function = unsafe extern "C" fn($($ty),*) -> $ret;
            /// libc's function once resolved, the resolver before.
            static FUNCTION: AtomicPtr<()> = AtomicPtr::new(first as *mut ());
            /// The first call: resolves libc's function and calls it.
            unsafe extern "C" fn first($($arg: $ty),*) -> $ret {
                let address = resolve(concat!(stringify!($name), "\0").as_bytes(), &FUNCTION);
                // SAFETY: `address` is libc's function of this name, whose C
                // prototype this signature matches (see the libc crate).
                let function = unsafe { std::mem::transmute::<*mut (), Function>(address) };
                // SAFETY: the caller upholds the libc function's contract.
                unsafe { function($($arg),*) }
            }
            // SAFETY: FUNCTION holds `first` or libc's function of this
            // name, both of this signature.
            let function = unsafe {
                std::mem::transmute::<*mut (), Function>(FUNCTION.load(Ordering::Relaxed))
            };
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
    static CACHE: AtomicPtr<()> = AtomicPtr::new(std::ptr::null_mut());
    let address = cached(b"fcntl\0", &CACHE);
    // SAFETY: libc's `fcntl`, declared `int fcntl(int, int, ...)`.
    let function: unsafe extern "C" fn(c_int, c_int, ...) -> c_int =
        unsafe { std::mem::transmute::<*mut (), _>(address) };
    // SAFETY: the caller upholds fcntl(2)'s contract.
    unsafe { function(fd, cmd, arg) }
}

/// Calls libc's variadic `ioctl` with one pointer-sized argument.
///
/// # Safety
///
/// As for `ioctl(2)` with `request` and `arg`.
pub(crate) unsafe fn ioctl(fd: c_int, request: c_ulong, arg: *mut c_void) -> c_int {
    static CACHE: AtomicPtr<()> = AtomicPtr::new(std::ptr::null_mut());
    let address = cached(b"ioctl\0", &CACHE);
    // SAFETY: libc's `ioctl`, declared `int ioctl(int, unsigned long, ...)`.
    let function: unsafe extern "C" fn(c_int, c_ulong, ...) -> c_int =
        unsafe { std::mem::transmute::<*mut (), _>(address) };
    // SAFETY: the caller upholds ioctl(2)'s contract.
    unsafe { function(fd, request, arg) }
}
