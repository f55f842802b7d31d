//! A dump on SIGQUIT, without a signal handler: the signal is blocked in
//! the calling thread (threads spawned after inherit the mask), and one
//! thread waits for it with `sigwait(3)` and prints the dump to stderr as
//! ordinary code, as often as the signal comes.

use std::io;
use std::mem::MaybeUninit;

/// Prints [`dump`](super::dump()) to stderr on every SIGQUIT; the process
/// keeps running.
///
/// Call it early in `main`, before spawning threads: it blocks SIGQUIT in
/// the calling thread, and threads created afterwards inherit that mask,
/// so only the dump thread receives it. The dump thread blocks every
/// asynchronous signal, so it never takes one meant for another waiter.
///
/// # Errors
///
/// If the signal mask cannot be changed or the dump thread cannot start.
pub fn dump_on_sigquit() -> io::Result<()> {
    let quit = set_of(&[libc::SIGQUIT])?;
    // SAFETY: `quit` is an initialised signal set; a null old-set pointer
    // is allowed by pthread_sigmask(3).
    let rc = unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &quit, std::ptr::null_mut()) };
    if rc != 0 {
        return Err(io::Error::from_raw_os_error(rc));
    }
    let others = all_asynchronous()?;
    std::thread::Builder::new().name("greenloop-dump".into()).spawn(move || {
        // SAFETY: `others` is an initialised signal set; a null old-set
        // pointer is allowed by pthread_sigmask(3).
        unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &others, std::ptr::null_mut()) };
        loop {
            let mut signal = 0;
            // SAFETY: `quit` is initialised and `signal` is a valid
            // out-pointer (sigwait(3)); SIGQUIT is blocked in this thread.
            if unsafe { libc::sigwait(&quit, &mut signal) } != 0 {
                return;
            }
            eprintln!("{}", super::dump());
        }
    })?;
    Ok(())
}

fn set_of(signals: &[libc::c_int]) -> io::Result<libc::sigset_t> {
    let mut set = MaybeUninit::<libc::sigset_t>::uninit();
    // SAFETY: sigemptyset(3) initialises the set it is given; sigaddset
    // adds signal numbers to that initialised set and reports invalid ones.
    unsafe {
        crate::syscall!(libc::sigemptyset(set.as_mut_ptr()))?;
        for &signal in signals {
            crate::syscall!(libc::sigaddset(set.as_mut_ptr(), signal))?;
        }
        Ok(set.assume_init())
    }
}

/// Every signal but the synchronous ones (faults), which must stay
/// deliverable to the thread that raised them.
fn all_asynchronous() -> io::Result<libc::sigset_t> {
    let mut set = MaybeUninit::<libc::sigset_t>::uninit();
    // SAFETY: sigfillset(3) initialises the set; sigdelset removes valid
    // signal numbers from that initialised set.
    unsafe {
        crate::syscall!(libc::sigfillset(set.as_mut_ptr()))?;
        for signal in [libc::SIGSEGV, libc::SIGBUS, libc::SIGFPE, libc::SIGILL] {
            libc::sigdelset(set.as_mut_ptr(), signal);
        }
        Ok(set.assume_init())
    }
}
