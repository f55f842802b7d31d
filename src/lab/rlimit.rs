//! The open-file limit: one descriptor per connection on each side, so the
//! lab raises `RLIMIT_NOFILE` to the hard limit at start, and scenarios that
//! need more connections than that scale down and say so.
//!
//! Limits are inherited across `fork` and `exec`, so raising it before
//! [`ServerProc::spawn`](super::ServerProc::spawn) raises it for the server
//! too.

use std::io;

use greenloop_runtime::syscall;

/// Descriptors kept back from connections: standard streams, the epoll
/// instance and its waker, the listener, pipes to the server, files the lab
/// reads under `/proc`, and some slack.
pub const RESERVED_FDS: u64 = 64;

/// The open-file limit of this process: `(soft, hard)`.
///
/// # Errors
///
/// The error of `getrlimit(2)` (none is expected on Linux).
pub fn nofile_limit() -> io::Result<(u64, u64)> {
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: `limit` is a valid out-pointer for getrlimit(2).
    syscall!(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) })?;
    Ok((limit.rlim_cur, limit.rlim_max))
}

/// Raises the soft open-file limit to the hard limit and returns the new
/// `(soft, hard)`. Does nothing when they are already equal. A hard limit
/// of "unlimited" is capped at the kernel's `fs.nr_open`, the most a
/// process may ask for.
///
/// # Errors
///
/// The error of `getrlimit(2)` or `setrlimit(2)`, with the limits in the
/// message.
///
/// # Examples
///
/// ```
/// let (soft, hard) = greenloop::lab::rlimit::raise_nofile_limit().unwrap();
/// assert!(soft <= hard);
/// ```
pub fn raise_nofile_limit() -> io::Result<(u64, u64)> {
    let (soft, hard) = nofile_limit()?;
    let target = hard.min(nr_open().unwrap_or(hard));
    if soft >= target {
        return Ok((soft, hard));
    }
    let limit = libc::rlimit { rlim_cur: target, rlim_max: hard };
    // SAFETY: `limit` is a valid, initialised rlimit for setrlimit(2);
    // raising the soft limit up to the hard one needs no privilege.
    syscall!(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &limit) }).map_err(|e| {
        io::Error::new(
            e.kind(),
            format!("cannot raise RLIMIT_NOFILE from {soft} to {target} (hard limit {hard}): {e}"),
        )
    })?;
    nofile_limit()
}

/// The kernel's cap on any process's open-file limit (`fs.nr_open`).
fn nr_open() -> Option<u64> {
    std::fs::read_to_string("/proc/sys/fs/nr_open").ok()?.trim().parse().ok()
}

/// How many connections one process can hold open under the soft limit
/// `soft`, keeping [`RESERVED_FDS`] back. Client and server are separate
/// processes, so each needs one descriptor per connection.
///
/// ```
/// use greenloop::lab::rlimit::{max_connections, RESERVED_FDS};
///
/// assert_eq!(max_connections(1024), 1024 - RESERVED_FDS as usize);
/// assert_eq!(max_connections(10), 0);
/// ```
pub fn max_connections(soft: u64) -> usize {
    usize::try_from(soft.saturating_sub(RESERVED_FDS)).unwrap_or(usize::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raising_is_idempotent() {
        let before = nofile_limit().unwrap();
        let first = raise_nofile_limit().unwrap();
        assert!(first.0 >= before.0 && first.0 <= first.1);
        assert_eq!(raise_nofile_limit().unwrap(), first);
        assert_eq!(nofile_limit().unwrap(), first);
    }
}
