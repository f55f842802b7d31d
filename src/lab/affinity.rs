//! CPU pinning: the server under test gets one CPU, the load generator the
//! others, so they do not steal each other's time slices and the server's
//! CPU time is its own.
//!
//! "CPU 0" is the first CPU this process was allowed to run on when the
//! lab first looked (a container may hand out CPUs 2 and 3, not 0 and 1).
//! That set is captured once, before any pinning narrows it.

use std::io;
use std::mem;
use std::sync::OnceLock;

use greenloop_runtime::sys::set_affinity;

/// Which CPUs go to whom; see [`plan`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pinning {
    /// The server's CPU.
    pub server: usize,
    /// The client's CPUs (never empty).
    pub client: Vec<usize>,
}

/// The CPUs this process could run on at first call (its affinity mask).
///
/// # Errors
///
/// The error of `sched_getaffinity(2)`.
pub fn allowed_cpus() -> io::Result<&'static [usize]> {
    static ALLOWED: OnceLock<Vec<usize>> = OnceLock::new();
    if let Some(cpus) = ALLOWED.get() {
        return Ok(cpus);
    }
    let cpus = greenloop_runtime::shard::cpus()?;
    Ok(ALLOWED.get_or_init(|| cpus))
}

/// The split: the first allowed CPU for the server, the rest for the
/// client; `None` with fewer than two CPUs (then nothing is pinned).
pub fn plan() -> Option<Pinning> {
    let cpus = allowed_cpus().ok()?;
    let (&server, client) = cpus.split_first()?;
    (!client.is_empty()).then(|| Pinning { server, client: client.to_vec() })
}

/// The fewest allowed CPUs [`halves`] splits: two for the server's
/// shards, two for the client.
pub const HALVES_MIN_CPUS: usize = 4;

/// The scaling split: the first half of the allowed CPUs for the
/// server's shards, the second half for the client (the odd one out, if
/// any, unused); `None` with fewer than [`HALVES_MIN_CPUS`].
pub fn halves() -> Option<(Vec<usize>, Vec<usize>)> {
    split_halves(allowed_cpus().ok()?)
}

fn split_halves(cpus: &[usize]) -> Option<(Vec<usize>, Vec<usize>)> {
    let half = cpus.len() / 2;
    (cpus.len() >= HALVES_MIN_CPUS).then(|| (cpus[..half].to_vec(), cpus[half..2 * half].to_vec()))
}

/// A `cpu_set_t` holding `cpus`.
pub fn cpu_set(cpus: &[usize]) -> libc::cpu_set_t {
    // SAFETY: cpu_set_t is plain data; all-zero is the empty set.
    let mut set: libc::cpu_set_t = unsafe { mem::zeroed() };
    for &cpu in cpus.iter().filter(|&&c| c < libc::CPU_SETSIZE as usize) {
        // SAFETY: `cpu` < CPU_SETSIZE, within the set (CPU_SET(3)).
        unsafe { libc::CPU_SET(cpu, &mut set) };
    }
    set
}

/// Pins the calling thread to `set`. Only makes a system call, so it may
/// run between `fork` and `exec` (see [`std::os::unix::process::CommandExt::pre_exec`]).
///
/// # Errors
///
/// The error of `sched_setaffinity(2)`.
pub fn pin_this_thread(set: &libc::cpu_set_t) -> io::Result<()> {
    set_affinity(0, set)
}

/// Pins every thread of this process to `cpus`; threads started later
/// inherit the mask of the thread that starts them.
///
/// # Errors
///
/// When `/proc/self/task` cannot be listed or the calling thread cannot be
/// pinned. Threads that exit meanwhile are skipped.
pub fn pin_this_process(cpus: &[usize]) -> io::Result<()> {
    allowed_cpus()?; // capture the full set before narrowing it
    let set = cpu_set(cpus);
    pin_this_thread(&set)?;
    for entry in std::fs::read_dir("/proc/self/task")? {
        let Ok(tid) = entry?.file_name().to_string_lossy().parse::<libc::pid_t>() else {
            continue;
        };
        // A thread that has exited meanwhile fails with ESRCH: skipped.
        let _ = set_affinity(tid, &set);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_plan_splits_the_allowed_cpus() {
        let cpus = allowed_cpus().unwrap();
        assert!(!cpus.is_empty());
        match plan() {
            Some(p) => {
                assert_eq!(p.server, cpus[0]);
                assert_eq!(p.client, cpus[1..]);
            }
            None => assert_eq!(cpus.len(), 1),
        }
    }

    #[test]
    fn halves_need_four_cpus_and_never_overlap() {
        assert_eq!(split_halves(&[0, 1, 2]), None);
        assert_eq!(split_halves(&[0, 1, 2, 3]), Some((vec![0, 1], vec![2, 3])));
        assert_eq!(split_halves(&[2, 3, 5, 7, 9]), Some((vec![2, 3], vec![5, 7])));
        let sixteen: Vec<usize> = (0..16).collect();
        let (server, client) = split_halves(&sixteen).unwrap();
        assert_eq!((server.len(), client.len()), (8, 8));
        assert!(server.iter().all(|c| !client.contains(c)));
    }

    #[test]
    fn cpu_sets_hold_what_they_are_given() {
        let set = cpu_set(&[0, 3, 5]);
        // SAFETY: indices are below CPU_SETSIZE.
        let has = |c| unsafe { libc::CPU_ISSET(c, &set) };
        assert!(has(0) && has(3) && has(5));
        assert!(!has(1) && !has(4));
    }

    #[test]
    fn a_thread_can_be_pinned_and_unpinned() {
        let cpus = allowed_cpus().unwrap().to_vec();
        std::thread::spawn(move || {
            pin_this_thread(&cpu_set(&cpus[..1])).unwrap();
            // SAFETY: sched_getcpu(3) has no preconditions.
            let now = unsafe { libc::sched_getcpu() };
            assert_eq!(now, cpus[0] as i32);
            pin_this_thread(&cpu_set(&cpus)).unwrap();
        })
        .join()
        .unwrap();
    }
}
