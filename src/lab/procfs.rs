//! What the lab reads about the server process from `/proc/<pid>`: CPU
//! time (user and system, all threads) and resident memory.
//!
//! * `/proc/<pid>/stat` fields 14 and 15 (`utime`, `stime`) count clock
//!   ticks of `sysconf(_SC_CLK_TCK)` (100 per second on Linux): a 10 ms
//!   resolution, so CPU per request is only meaningful over runs of a few
//!   seconds of busy CPU, which is what the lab's runs are.
//! * `/proc/<pid>/status` `VmRSS` is the resident set in KiB.

use std::io;
use std::ops::Sub;
use std::sync::OnceLock;
use std::time::Duration;

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

fn parse_vm_rss(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let mut words = line["VmRSS:".len()..].split_ascii_whitespace();
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
    fn vm_rss_line() {
        let status = "Name:\tlab\nVmPeak:\t  9000 kB\nVmRSS:\t    5120 kB\nThreads:\t3\n";
        assert_eq!(parse_vm_rss(status), Some(5120));
        assert_eq!(parse_vm_rss("Name:\tkthreadd\n"), None);
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
