//! Graceful shutdown on SIGINT and SIGTERM, without signal handlers.
//!
//! The signals are blocked in the calling thread (threads spawned after
//! inherit the mask), and one thread waits for them with `sigwait(3)` and
//! triggers the [`Shutdown`] switch: ordinary code, no async-signal-safety
//! constraints.

use std::io;
use std::mem::MaybeUninit;

use greenloop_runtime::syscall;

use super::Shutdown;

/// Triggers `shutdown` on the first SIGINT or SIGTERM.
///
/// Call it early in `main`, before spawning threads: it blocks both
/// signals in the calling thread, and threads created afterwards inherit
/// that mask, so only the watcher thread receives them.
///
/// # Errors
///
/// If the signal mask cannot be changed or the watcher thread cannot start.
pub fn shutdown_on_signals(shutdown: Shutdown) -> io::Result<()> {
    let set = signal_set()?;
    // SAFETY: `set` is an initialised signal set; a null old-set pointer
    // is allowed by pthread_sigmask(3).
    let rc = unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) };
    if rc != 0 {
        return Err(io::Error::from_raw_os_error(rc));
    }
    std::thread::Builder::new().name("greenloop-signals".into()).spawn(move || {
        let mut signal = 0;
        // SAFETY: `set` is initialised and `signal` is a valid out-pointer
        // (sigwait(3)); the signals are blocked in this thread too.
        if unsafe { libc::sigwait(&set, &mut signal) } == 0 {
            shutdown.trigger();
        }
    })?;
    Ok(())
}

fn signal_set() -> io::Result<libc::sigset_t> {
    let mut set = MaybeUninit::<libc::sigset_t>::uninit();
    // SAFETY: sigemptyset(3) initialises the set it is given.
    syscall!(unsafe { libc::sigemptyset(set.as_mut_ptr()) })?;
    for signal in [libc::SIGINT, libc::SIGTERM] {
        // SAFETY: sigaddset(3) adds a valid signal number to the set that
        // sigemptyset initialised.
        syscall!(unsafe { libc::sigaddset(set.as_mut_ptr(), signal) })?;
    }
    // SAFETY: sigemptyset initialised the set.
    Ok(unsafe { set.assume_init() })
}
