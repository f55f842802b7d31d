//! The thin platform layer shared by greenloop's crates: one way to check a
//! libc call's result ([`syscall!`](crate::syscall)), the one
//! `sched_setaffinity(2)` wrapper, and the futex word a reactor's thread
//! sleeps on when it watches no I/O (`futex(2)`, Linux only).
//!
//! Most libc calls report failure as `-1` and leave the reason in `errno`;
//! the macro turns that into an `io::Error` so a call site reads as one
//! expression with `?`. The `unsafe` block stays at the call site, under its
//! own `// SAFETY:` comment: the macro checks a result, it never hides a
//! call's preconditions.

use std::io;
use std::mem;
use std::ops::Deref;
use std::sync::atomic::AtomicU32;
use std::time::Duration;

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

/// A 32-bit atomic word that a thread can sleep on until another thread
/// wakes it (`futex(2)`, private to the process).
///
/// The word is an ordinary atomic (it derefs to one); [`wait`](Futex::wait)
/// sleeps only while it still holds the value the caller expects, checked
/// by the kernel atomically with going to sleep, so a change made (and
/// followed by a [`wake`](Futex::wake)) before the sleep is never missed.
/// Where the system has no futex, `wait` fails at once and callers sleep
/// some other way.
#[derive(Debug)]
pub(crate) struct Futex {
    word: AtomicU32,
}

impl Futex {
    /// A word holding `value`.
    pub(crate) const fn new(value: u32) -> Futex {
        Futex { word: AtomicU32::new(value) }
    }

    /// Sleeps while the word holds `expected`, for at most `timeout`
    /// (`None`: no limit). Returns when woken, when the word did not hold
    /// `expected`, when the time is up, or when a signal interrupted the
    /// sleep, and also spuriously: callers check the word again.
    ///
    /// # Errors
    ///
    /// When the system cannot sleep on a futex (`ENOSYS`: no futex, or a
    /// seccomp filter refuses it): the call returned at once.
    pub(crate) fn wait(&self, expected: u32, timeout: Option<Duration>) -> io::Result<()> {
        match futex_wait(&self.word, expected, timeout) {
            Err(e)
                if !matches!(
                    e.raw_os_error(),
                    Some(libc::EAGAIN | libc::ETIMEDOUT | libc::EINTR)
                ) =>
            {
                Err(e)
            }
            _ => Ok(()),
        }
    }

    /// Wakes one thread sleeping in [`wait`](Futex::wait), if any.
    pub(crate) fn wake(&self) {
        // A failure means no futex here, so nobody sleeps on one.
        let _ = futex_wake(&self.word);
    }
}

impl Deref for Futex {
    type Target = AtomicU32;

    fn deref(&self) -> &AtomicU32 {
        &self.word
    }
}

/// `FUTEX_WAIT_PRIVATE` on `word`.
#[cfg(any(target_os = "linux", target_os = "android"))]
fn futex_wait(word: &AtomicU32, expected: u32, timeout: Option<Duration>) -> io::Result<()> {
    let timeout = timeout.map(|t| libc::timespec {
        tv_sec: libc::time_t::try_from(t.as_secs()).unwrap_or(libc::time_t::MAX),
        // Below one billion, so it fits every `c_long`.
        tv_nsec: t.subsec_nanos() as libc::c_long,
    });
    let timeout = timeout.as_ref().map_or(std::ptr::null(), |t| t as *const libc::timespec);
    // SAFETY: `word` is a live, aligned 32-bit atomic for the call, and
    // `timeout` null or a valid relative `timespec`; FUTEX_WAIT only reads
    // them (futex(2)).
    syscall!(unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAIT | libc::FUTEX_PRIVATE_FLAG,
            expected,
            timeout,
        )
    })
    .map(drop)
}

/// `FUTEX_WAKE_PRIVATE` of one waiter on `word`.
#[cfg(any(target_os = "linux", target_os = "android"))]
fn futex_wake(word: &AtomicU32) -> io::Result<()> {
    // SAFETY: FUTEX_WAKE only uses `word`'s address as a key to find
    // sleepers; it reads and writes no memory (futex(2)).
    syscall!(unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAKE | libc::FUTEX_PRIVATE_FLAG,
            1,
        )
    })
    .map(drop)
}

/// No futex on this system: the caller sleeps some other way.
#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn futex_wait(_word: &AtomicU32, _expected: u32, _timeout: Option<Duration>) -> io::Result<()> {
    Err(io::ErrorKind::Unsupported.into())
}

/// No futex on this system, so no sleeper to wake.
#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn futex_wake(_word: &AtomicU32) -> io::Result<()> {
    Err(io::ErrorKind::Unsupported.into())
}

#[cfg(test)]
mod tests {
    use super::{Futex, set_affinity};
    use std::mem;
    use std::sync::Arc;
    use std::sync::atomic::Ordering;
    use std::time::Duration;

    #[test]
    fn an_empty_affinity_mask_is_refused_with_einval() {
        // SAFETY: cpu_set_t is plain data; all-zero is the empty set.
        let empty: libc::cpu_set_t = unsafe { mem::zeroed() };
        let error = set_affinity(0, &empty).unwrap_err();
        assert_eq!(error.raw_os_error(), Some(libc::EINVAL));
    }

    #[test]
    fn a_futex_wait_returns_at_once_when_the_word_changed() {
        let futex = Futex::new(1);
        futex.wait(0, None).unwrap(); // the word holds 1, not 0: EAGAIN
    }

    #[test]
    fn a_futex_wait_ends_when_its_time_is_up() {
        let futex = Futex::new(0);
        futex.wait(0, Some(Duration::from_millis(1))).unwrap();
        assert_eq!(futex.load(Ordering::Relaxed), 0);
    }

    /// A thread sleeping on the word is woken by another that changes it
    /// and wakes it: the sleep ends well before its 30 s limit (a lost wake
    /// fails the test then, instead of hanging it).
    #[test]
    fn a_futex_wake_after_a_change_ends_the_wait() {
        const LIMIT: Duration = Duration::from_secs(30);
        let futex = Arc::new(Futex::new(0));
        let sleeper = std::thread::spawn({
            let futex = futex.clone();
            move || {
                let start = std::time::Instant::now();
                while futex.load(Ordering::Acquire) == 0 && start.elapsed() < LIMIT {
                    futex.wait(0, Some(LIMIT)).unwrap();
                }
                start.elapsed()
            }
        });
        std::thread::sleep(Duration::from_millis(5));
        futex.store(1, Ordering::Release);
        futex.wake();
        assert!(sleeper.join().unwrap() < LIMIT, "the wake was lost: the wait ran out its time");
    }
}
