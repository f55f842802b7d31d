//! One `madvise` advice for many equal, evenly spaced ranges with few
//! system calls: `process_madvise(2)` on this process takes up to
//! [`VECTORED`] ranges per call (any advice for the caller itself since
//! Linux 6.15, which also brought [`PIDFD_SELF`]). Used to install a
//! batch's guard markers and to fault in its stacks' top pages.

use std::sync::atomic::{AtomicBool, Ordering};

use crate::syscall;

/// `PIDFD_SELF_THREAD_GROUP` from `<linux/pidfd.h>` (Linux 6.15): "this
/// process" for pidfd calls, without opening a pidfd (one opened once would
/// name the parent in a forked child).
const PIDFD_SELF: libc::c_int = -10001;

/// Ranges advised by one `process_madvise` call at most (below `IOV_MAX`).
const VECTORED: usize = 64;

/// Applies `advice` to the `len` bytes at `first + i * stride` for each `i`
/// in `0..count`, in that order, [`VECTORED`] ranges per system call, and
/// returns how many ranges it covered: fewer than `count` when the kernel
/// stopped short. A call that covers nothing clears `ok` (the kernel has no
/// `process_madvise`, or refuses this advice through it); while `ok` is
/// clear nothing is tried and 0 is returned, so each caller keeps one flag
/// per advice and falls back to its own way.
///
/// # Safety
///
/// Applying `advice` to each of those ranges must be sound, as for
/// `madvise(2)` on it: what that requires is the caller's to uphold.
pub(super) unsafe fn advise_each(
    first: *mut u8,
    stride: usize,
    count: usize,
    len: usize,
    advice: libc::c_int,
    ok: &AtomicBool,
) -> usize {
    let mut done = 0;
    while done < count && len > 0 && ok.load(Ordering::Relaxed) {
        let n = (count - done).min(VECTORED);
        let mut iov = [libc::iovec { iov_base: std::ptr::null_mut(), iov_len: len }; VECTORED];
        for (i, v) in iov[..n].iter_mut().enumerate() {
            v.iov_base = first.wrapping_add((done + i) * stride).cast();
        }
        // SAFETY: process_madvise(2) on this process reads `n` iovecs from a
        // valid array; applying `advice` to each range they name is sound
        // (the caller's contract).
        let advised = syscall!(unsafe {
            libc::syscall(libc::SYS_process_madvise, PIDFD_SELF, iov.as_ptr(), n, advice, 0)
        });
        // It advises the ranges in order and returns the bytes it covered.
        let covered =
            advised.ok().and_then(|bytes| usize::try_from(bytes).ok()).map_or(0, |b| b / len);
        if covered == 0 {
            ok.store(false, Ordering::Relaxed);
        }
        done += covered;
        if covered < n {
            break;
        }
    }
    done
}
