//! What this OS thread has used so far, from the kernel's per-thread
//! accounting, shared by `hello_green` and `page_cost`.

/// CPU time this OS thread has used, in ns (0 if the clock cannot be read).
pub fn cpu_ns() -> u128 {
    let mut now = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: clock_gettime(2) writes one timespec into `now`, which is valid.
    if unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut now) } != 0 {
        return 0;
    }
    now.tv_sec as u128 * 1_000_000_000 + now.tv_nsec as u128
}

/// Minor page faults of this OS thread so far (`getrusage(RUSAGE_THREAD)`;
/// 0 if it cannot be read): every page the kernel allocated on its behalf,
/// on a trap or populated by a system call such as `madvise`.
pub fn minor_faults() -> u64 {
    // SAFETY: an all-zero `rusage` is a valid value of this plain C struct.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: getrusage(2) writes one rusage into `usage`, which is valid.
    if unsafe { libc::getrusage(libc::RUSAGE_THREAD, &mut usage) } != 0 {
        return 0;
    }
    u64::try_from(usage.ru_minflt).unwrap_or(0)
}
