//! Blocking code that has never heard of greenloop, parking only the
//! current green thread: gevent's `monkey.patch_all()` for Rust.
//!
//! Once [`install`] has run, `std::thread::sleep`, `std::net` sockets and
//! blocking crates built on them (HTTP clients, database drivers) behave
//! inside a green thread as greenloop's own types do: a call that would
//! block parks the green thread, and the others run.
//!
//! ```no_run
//! use greenloop_runtime::green;
//! use std::time::Duration;
//!
//! greenloop_patch::install();
//! green::run(|| {
//!     let sleepers: Vec<_> = (0..100)
//!         .map(|_| green::spawn(|| std::thread::sleep(Duration::from_millis(100))))
//!         .collect();
//!     // All 100 sleep at once: about 100 ms in all, not 10 s.
//!     sleepers.into_iter().for_each(|s| s.join().unwrap());
//! });
//! ```
//!
//! # How it works
//!
//! The crate defines libc's blocking functions (`read`, `nanosleep`, ...)
//! under their C names. In a binary that links it, these definitions take
//! precedence over libc's for the binary's own code, std included; each
//! calls libc's function, found with `dlsym(RTLD_NEXT, ..)`. (Shared
//! libraries the binary loads keep calling libc directly.)
//!
//! Every interposed call first asks whether the caller is a green thread
//! that may park (one thread-local load). Off green threads, in stackless
//! tasks, before any runtime exists, while a runtime tears down, in the
//! child of a `fork`, inside signal handlers and before [`install`], the
//! answer is no and the call is libc's; a transfer call (`read`, `send`,
//! ...) there also looks at its fd's slot and, unless the patch made that
//! socket non-blocking, jumps to libc's function, so nothing of the patch
//! runs after the system call. Inside a green thread:
//!
//! * **Sockets** the user believes blocking are made non-blocking
//!   underneath and registered with the thread's reactor on first use; a
//!   call that would block parks the green thread until the socket is
//!   ready: `read`/`write`, `readv`/`writev`, `recv`/`send`,
//!   `recvfrom`/`sendto`, `recvmsg`/`sendmsg`, `accept`/`accept4`,
//!   `connect` and `poll`. `SO_RCVTIMEO`/`SO_SNDTIMEO` bound the park and
//!   end it with `EAGAIN`, as libc does. Errors are libc's, unchanged.
//! * **The user's view of `O_NONBLOCK`** is kept apart: `fcntl(F_GETFL)`
//!   and `ioctl(FIONBIO)` show and set what the user set, and a socket the
//!   user made non-blocking keeps answering `EAGAIN`. Other OS threads that
//!   share a managed socket still see it blocking (they wait in `poll`).
//! * **`close`** deregisters the socket and wakes a green thread parked on
//!   it with `EBADF`; a reused fd number starts with no stale readiness.
//! * **Sleeps** (`nanosleep`, `clock_nanosleep`, `usleep`, `sleep`) park on
//!   a reactor timer (millisecond resolution, never early).
//! * **`getaddrinfo`** runs on the blocking pool.
//!
//! # What it does not patch
//!
//! Regular files, pipes and ttys: their calls are libc's, as epoll cannot
//! wait for files (use `spawn_blocking`). A `std::sync::Mutex` held across
//! a blocking call, or a CPU-bound loop, still holds the whole OS thread.
//! A socket parks green threads only on the OS thread that first used it
//! from a green thread; on other OS threads it blocks as usual.

#![deny(missing_docs, missing_debug_implementations, unsafe_op_in_unsafe_fn)]
#![warn(clippy::undocumented_unsafe_blocks)]

mod control;
mod dns;
mod errno;
mod fds;
mod gate;
mod io;
mod manage;
mod owned;
mod real;
mod signal;
mod sleep;
mod socket;
mod wait;

use std::sync::Once;

/// Turns the patch on for this process; call it once at the start of
/// `main` (more calls do nothing).
///
/// The interposed functions are linked because this function refers to
/// them; a binary that never calls it may not contain them, and if it does
/// they stay inactive.
pub fn install() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // SAFETY: registers a plain function, callable at any time.
        let registered =
            unsafe { libc::pthread_atfork(None, None, Some(gate::after_fork_in_child)) };
        if registered != 0 {
            fatal(b"greenloop-patch: pthread_atfork failed\n");
        }
    });
    std::hint::black_box(symbols());
    gate::activate();
}

/// Whether [`install`] ran in this process (and it is not the child of a
/// `fork` since).
pub fn is_installed() -> bool {
    gate::is_active()
}

/// Whether the binary's calls to libc's `read` reach the patch: the
/// interposition took effect at link time.
pub fn is_linked() -> bool {
    std::ptr::eq(io::read as *const (), libc::read as *const ())
}

/// The address of every interposed function, so that linking [`install`]
/// links them all.
fn symbols() -> [*const (); 32] {
    [
        io::read as *const (),
        io::write as *const (),
        io::readv as *const (),
        io::writev as *const (),
        io::recv as *const (),
        io::send as *const (),
        io::recvfrom as *const (),
        io::sendto as *const (),
        io::recvmsg as *const (),
        io::sendmsg as *const (),
        io::accept as *const (),
        io::accept4 as *const (),
        socket::connect as *const (),
        socket::poll as *const (),
        control::close as *const (),
        control::dup as *const (),
        control::dup2 as *const (),
        control::dup3 as *const (),
        control::fcntl as *const (),
        control::fcntl64 as *const (),
        control::ioctl as *const (),
        control::setsockopt as *const (),
        sleep::nanosleep as *const (),
        sleep::clock_nanosleep as *const (),
        sleep::usleep as *const (),
        sleep::sleep as *const (),
        dns::getaddrinfo as *const (),
        signal::sigaction as *const (),
        signal::signal as *const (),
        is_linked as *const (),
        install as *const (),
        is_installed as *const (),
    ]
}

/// Writes `message` to stderr with a raw syscall and aborts: for failures
/// inside an interposed call, where nothing else is safe to call.
fn fatal(message: &[u8]) -> ! {
    // SAFETY: writes `message.len()` bytes from a valid slice to fd 2.
    unsafe { libc::syscall(libc::SYS_write, 2, message.as_ptr(), message.len()) };
    std::process::abort()
}
