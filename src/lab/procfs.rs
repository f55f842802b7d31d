//! What the lab reads about the server process from `/proc/<pid>`: CPU
//! time (user and system, all threads) and resident memory.
//!
//! * `/proc/<pid>/stat` fields 14 and 15 (`utime`, `stime`) count clock
//!   ticks of `sysconf(_SC_CLK_TCK)` (100 per second on Linux): a 10 ms
//!   resolution, so CPU per request is only meaningful over runs of a few
//!   seconds of busy CPU, which is what the lab's runs are.
//!   [`cpu_clock`] reads the same total exactly (the process's CPU-time
//!   clock, `clock_getcpuclockid(3)`, in ns), and [`CpuTimes::with_total`]
//!   splits an exact total as the ticks do, so a short window's CPU per
//!   request is not off by up to a tick (3% of a 0.35 s busy window).
//! * `/proc/<pid>/status` `VmRSS` is the resident set in KiB.
//! * `/proc/<pid>/task/<tid>/status` `voluntary_ctxt_switches` and
//!   `nonvoluntary_ctxt_switches` count, per thread, how often it went to
//!   sleep (an `epoll_wait` with nothing ready, a lock) and how often the
//!   scheduler took its CPU away: exact counts, summed over the threads.

use std::io;
use std::ops::Sub;
use std::sync::OnceLock;
use std::time::Duration;

use greenloop_runtime::syscall;

/// CPU time a process has used, all its threads together.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct CpuTimes {
    /// Time in user mode.
    pub user: Duration,
    /// Time in the kernel on its behalf (system calls, faults).
    pub system: Duration,
}

impl CpuTimes {
    /// User plus system.
    pub fn total(&self) -> Duration {
        self.user + self.system
    }

    /// `total` split between user and system in the proportion of these
    /// times (all system time when these are both zero: the ticks missed
    /// a short burst, which on a server is mostly system calls).
    pub fn with_total(&self, total: Duration) -> CpuTimes {
        let ticks = self.total().as_secs_f64();
        let user = if ticks > 0.0 {
            total.mul_f64(self.user.as_secs_f64() / ticks).min(total)
        } else {
            Duration::ZERO
        };
        CpuTimes { user, system: total - user }
    }
}

impl Sub for CpuTimes {
    type Output = CpuTimes;

    /// The CPU used between two readings (saturating at zero).
    fn sub(self, earlier: CpuTimes) -> CpuTimes {
        CpuTimes {
            user: self.user.saturating_sub(earlier.user),
            system: self.system.saturating_sub(earlier.system),
        }
    }
}

/// How often a process's threads left their CPU, all threads together
/// (those alive when read).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct ContextSwitches {
    /// The thread gave up its CPU: it went to sleep, waiting for something.
    pub voluntary: u64,
    /// The scheduler preempted it for another thread.
    pub involuntary: u64,
}

impl ContextSwitches {
    /// Both counts multiplied by `factor` (rounded): counts over part of a
    /// window, scaled to all of it.
    pub fn scaled(self, factor: f64) -> ContextSwitches {
        let scale = |n: u64| (n as f64 * factor).round() as u64;
        ContextSwitches { voluntary: scale(self.voluntary), involuntary: scale(self.involuntary) }
    }
}

impl Sub for ContextSwitches {
    type Output = ContextSwitches;

    /// The switches between two readings (saturating at zero: a thread
    /// that exited in between takes its counts with it).
    fn sub(self, earlier: ContextSwitches) -> ContextSwitches {
        ContextSwitches {
            voluntary: self.voluntary.saturating_sub(earlier.voluntary),
            involuntary: self.involuntary.saturating_sub(earlier.involuntary),
        }
    }
}

/// Clock ticks per second, the unit of `/proc/<pid>/stat` times.
pub fn clock_ticks_per_sec() -> u64 {
    static TICKS: OnceLock<u64> = OnceLock::new();
    *TICKS.get_or_init(|| {
        // SAFETY: sysconf(3) only reads a configuration value.
        let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
        u64::try_from(ticks).ok().filter(|&t| t > 0).unwrap_or(100)
    })
}

fn read(pid: u32, file: &str) -> io::Result<String> {
    let path = format!("/proc/{pid}/{file}");
    std::fs::read_to_string(&path).map_err(|e| {
        io::Error::new(e.kind(), format!("cannot read {path} (has the process exited?): {e}"))
    })
}

fn malformed(pid: u32, file: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("unexpected format of /proc/{pid}/{file}"))
}

/// The CPU time used so far by process `pid`.
///
/// # Errors
///
/// When `/proc/<pid>/stat` cannot be read (no such process) or parsed.
///
/// # Examples
///
/// ```
/// let me = greenloop::lab::procfs::cpu_times(std::process::id()).unwrap();
/// assert!(me.total() < std::time::Duration::from_secs(1_000_000));
/// ```
pub fn cpu_times(pid: u32) -> io::Result<CpuTimes> {
    let stat = read(pid, "stat")?;
    let (user, system) = parse_stat(&stat).ok_or_else(|| malformed(pid, "stat"))?;
    let ticks = clock_ticks_per_sec();
    let ns = |t: u64| Duration::from_nanos(t.saturating_mul(1_000_000_000) / ticks);
    Ok(CpuTimes { user: ns(user), system: ns(system) })
}

/// `utime` and `stime` (fields 14 and 15, in ticks) of a `stat` line.
/// The command name (field 2) sits in parentheses and may hold spaces and
/// parentheses itself, so fields are counted after the last `)`.
fn parse_stat(stat: &str) -> Option<(u64, u64)> {
    let rest = &stat[stat.rfind(')')? + 1..];
    // `rest` starts at field 3 (state): field 14 is its 12th word.
    let mut fields = rest.split_ascii_whitespace().skip(11);
    let user = fields.next()?.parse().ok()?;
    let system = fields.next()?.parse().ok()?;
    Some((user, system))
}

/// The CPU time used so far by process `pid`, all its threads (those that
/// exited included), from its CPU-time clock: exact to the nanosecond,
/// where [`cpu_times`] counts ticks.
///
/// # Errors
///
/// When the process does not exist (`ESRCH`).
pub fn cpu_clock(pid: u32) -> io::Result<Duration> {
    let pid = libc::pid_t::try_from(pid).map_err(|_| io::Error::from_raw_os_error(libc::ESRCH))?;
    let mut clock: libc::clockid_t = 0;
    // SAFETY: `clock` is a valid place for the clock id to be written.
    let rc = unsafe { libc::clock_getcpuclockid(pid, &mut clock) };
    if rc != 0 {
        return Err(io::Error::from_raw_os_error(rc));
    }
    let mut now = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `now` is a valid timespec to write; `clock` came from
    // clock_getcpuclockid just above.
    syscall!(unsafe { libc::clock_gettime(clock, &mut now) })?;
    let secs = u64::try_from(now.tv_sec).unwrap_or(0);
    let nanos = u32::try_from(now.tv_nsec).unwrap_or(0);
    Ok(Duration::new(secs, nanos))
}

/// The resident set size of process `pid`, in KiB.
///
/// # Errors
///
/// When `/proc/<pid>/status` cannot be read or has no `VmRSS` line (a
/// zombie or a kernel thread).
pub fn rss_kib(pid: u32) -> io::Result<u64> {
    let status = read(pid, "status")?;
    parse_vm_rss(&status).ok_or_else(|| malformed(pid, "status (VmRSS)"))
}

/// The context switches of process `pid` so far, summed over its threads.
///
/// # Errors
///
/// When `/proc/<pid>/task` cannot be listed (no such process). A thread
/// that exits while its siblings are read is skipped.
pub fn context_switches(pid: u32) -> io::Result<ContextSwitches> {
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).map_err(|e| {
        io::Error::new(e.kind(), format!("cannot list /proc/{pid}/task (has it exited?): {e}"))
    })?;
    let mut total = ContextSwitches::default();
    for task in tasks.flatten() {
        let Ok(status) = std::fs::read_to_string(task.path().join("status")) else { continue };
        let one = parse_switches(&status).ok_or_else(|| malformed(pid, "task/*/status"))?;
        total.voluntary += one.voluntary;
        total.involuntary += one.involuntary;
    }
    Ok(total)
}

/// The two `*_ctxt_switches` lines of a `status` file.
fn parse_switches(status: &str) -> Option<ContextSwitches> {
    let field = |name: &str| {
        let line = status.lines().find_map(|l| l.strip_prefix(name))?;
        line.strip_prefix(':')?.trim().parse().ok()
    };
    Some(ContextSwitches {
        voluntary: field("voluntary_ctxt_switches")?,
        involuntary: field("nonvoluntary_ctxt_switches")?,
    })
}

fn parse_vm_rss(status: &str) -> Option<u64> {
    parse_kib(status, "VmRSS:")
}

/// The memory the kernel reports available for new allocations without
/// swapping (`MemAvailable` in `/proc/meminfo`), in KiB.
///
/// # Errors
///
/// When `/proc/meminfo` cannot be read or has no `MemAvailable` line
/// (kernels before 3.14).
pub fn mem_available_kib() -> io::Result<u64> {
    let path = "/proc/meminfo";
    let meminfo = std::fs::read_to_string(path)
        .map_err(|e| io::Error::new(e.kind(), format!("cannot read {path}: {e}")))?;
    parse_kib(&meminfo, "MemAvailable:").ok_or_else(|| {
        io::Error::new(io::ErrorKind::InvalidData, format!("no MemAvailable line in {path}"))
    })
}

/// The value of the `name` line (`name` includes its colon) of a
/// `/proc` file whose lines read `Name:   1234 kB`, in KiB.
fn parse_kib(text: &str, name: &str) -> Option<u64> {
    let line = text.lines().find_map(|l| l.strip_prefix(name))?;
    let mut words = line.split_ascii_whitespace();
    let kib = words.next()?.parse().ok()?;
    (words.next() == Some("kB")).then_some(kib)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_after_a_tricky_name() {
        let stat = "4242 (a) b (c)) S 1 4242 4242 0 -1 4194304 100 0 0 0 731 52 0 0 20 0 3 0 9 1 2";
        assert_eq!(parse_stat(stat), Some((731, 52)));
        assert_eq!(parse_stat("1 (x) S 1 2"), None);
        assert_eq!(parse_stat("no parens"), None);
    }

    #[test]
    fn an_exact_total_is_split_as_the_ticks_are() {
        let ms = Duration::from_millis;
        let ticks = CpuTimes { user: ms(10), system: ms(30) };
        assert_eq!(ticks.with_total(ms(44)), CpuTimes { user: ms(11), system: ms(33) });
        let none = CpuTimes::default().with_total(ms(3));
        assert_eq!(none, CpuTimes { user: Duration::ZERO, system: ms(3) });
    }

    #[test]
    fn the_cpu_clock_runs_with_this_process() {
        let me = std::process::id();
        let before = cpu_clock(me).unwrap();
        let spin = std::time::Instant::now();
        while cpu_clock(me).unwrap() == before && spin.elapsed() < Duration::from_secs(5) {
            std::hint::black_box(0);
        }
        assert!(cpu_clock(me).unwrap() > before);
        assert!(cpu_clock(u32::MAX).is_err());
    }

    #[test]
    fn vm_rss_line() {
        let status = "Name:\tlab\nVmPeak:\t  9000 kB\nVmRSS:\t    5120 kB\nThreads:\t3\n";
        assert_eq!(parse_vm_rss(status), Some(5120));
        assert_eq!(parse_vm_rss("Name:\tkthreadd\n"), None);
        let meminfo = "MemTotal:       24303296 kB\nMemAvailable:   24033836 kB\n";
        assert_eq!(parse_kib(meminfo, "MemAvailable:"), Some(24_033_836));
        assert_eq!(parse_kib("MemAvailable:   12\n", "MemAvailable:"), None);
    }

    #[test]
    fn switch_lines() {
        let status = "Name:\tlab\nvoluntary_ctxt_switches:\t12\nnonvoluntary_ctxt_switches:\t3\n";
        assert_eq!(parse_switches(status), Some(ContextSwitches { voluntary: 12, involuntary: 3 }));
        assert_eq!(parse_switches("voluntary_ctxt_switches:\t12\n"), None);
        let later = ContextSwitches { voluntary: 15, involuntary: 1 };
        let since = later - ContextSwitches { voluntary: 12, involuntary: 3 };
        assert_eq!(since, ContextSwitches { voluntary: 3, involuntary: 0 });
        let scaled = ContextSwitches { voluntary: 9, involuntary: 1 }.scaled(1.0 / 0.9);
        assert_eq!(scaled, ContextSwitches { voluntary: 10, involuntary: 1 });
    }

    #[test]
    fn this_process_sleeps() {
        // A sleep leaves the CPU voluntarily, and this thread is alive
        // when read (sibling test threads may exit: no before/after).
        std::thread::sleep(Duration::from_millis(1));
        assert!(context_switches(std::process::id()).unwrap().voluntary > 0);
        let e = context_switches(u32::MAX).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::NotFound);
    }

    #[test]
    fn this_process_has_a_footprint() {
        let me = std::process::id();
        assert!(rss_kib(me).unwrap() > 0);
        // Burn CPU until a tick is accounted (bounded: 5 s).
        let spin = std::time::Instant::now();
        while cpu_times(me).unwrap().total().is_zero() && spin.elapsed() < Duration::from_secs(5) {
            std::hint::black_box(0);
        }
        let before = cpu_times(me).unwrap();
        assert!(before.total() > Duration::ZERO);
        assert!(cpu_times(me).unwrap() >= before);
        let e = cpu_times(u32::MAX).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::NotFound);
        assert!(e.to_string().contains("/proc/4294967295/stat"), "{e}");
    }
}
