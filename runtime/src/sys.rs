//! The thin platform layer shared by greenloop's crates: one way to check a
//! libc call's result ([`syscall!`](crate::syscall)), and the one
//! `sched_setaffinity(2)` wrapper.
//!
//! Most libc calls report failure as `-1` and leave the reason in `errno`;
//! the macro turns that into an `io::Error` so a call site reads as one
//! expression with `?`. The `unsafe` block stays at the call site, under its
//! own `// SAFETY:` comment: the macro checks a result, it never hides a
//! call's preconditions.

use std::io;
use std::mem;

/// Checks the result of a libc call that returns `-1` on failure and sets
/// `errno`: `Err(io::Error::last_os_error())` for `-1`, `Ok(result)` for
/// anything else. Takes the call itself, `unsafe` block included.
///
/// Reading `errno` allocates nothing, so it may run between `fork` and
/// `exec`. (Calls that return the error number instead, such as
/// `pthread_sigmask`, need `io::Error::from_raw_os_error`.)
///
/// # Examples
///
/// ```
/// use greenloop_runtime::syscall;
///
/// // SAFETY: getpid(2) has no preconditions and cannot fail.
/// let pid = syscall!(unsafe { libc::getpid() }).unwrap();
/// assert_eq!(pid as u32, std::process::id());
/// // SAFETY: close(2) of a descriptor that cannot be open touches nothing.
/// let error = syscall!(unsafe { libc::close(-1) }).unwrap_err();
/// assert_eq!(error.raw_os_error(), Some(libc::EBADF));
/// ```
#[macro_export]
macro_rules! syscall {
    ($call:expr) => {
        match $call {
            -1 => ::std::result::Result::Err(::std::io::Error::last_os_error()),
            result => ::std::result::Result::Ok(result),
        }
    };
}

/// Sets the CPU affinity mask of thread `tid` (0: the calling thread) to
/// `set` (`sched_setaffinity(2)`). Only makes the system call, so it may run
/// between `fork` and `exec`.
///
/// # Errors
///
/// The call's: `EINVAL` when `set` holds no CPU this thread may use,
/// `ESRCH` when no thread `tid` exists (it may have exited).
pub fn set_affinity(tid: libc::pid_t, set: &libc::cpu_set_t) -> io::Result<()> {
    // SAFETY: `set` is a valid cpu_set_t of the size passed; any `tid` is
    // accepted, an unknown one fails with ESRCH (sched_setaffinity(2)).
    syscall!(unsafe { libc::sched_setaffinity(tid, mem::size_of::<libc::cpu_set_t>(), set) })
        .map(drop)
}

#[cfg(test)]
mod tests {
    use super::set_affinity;
    use std::mem;

    #[test]
    fn an_empty_affinity_mask_is_refused_with_einval() {
        // SAFETY: cpu_set_t is plain data; all-zero is the empty set.
        let empty: libc::cpu_set_t = unsafe { mem::zeroed() };
        let error = set_affinity(0, &empty).unwrap_err();
        assert_eq!(error.raw_os_error(), Some(libc::EINVAL));
    }
}
