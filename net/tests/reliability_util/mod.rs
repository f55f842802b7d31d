//! Shared by the `reliability_*` tests: re-running this test binary as a
//! child process (for limits and crashes that must not hit the test
//! runner), and reading this or another process's resources from `/proc`.

#![allow(dead_code)]

use std::io::Read;
use std::os::unix::process::ExitStatusExt;
use std::process::{ChildStdin, ChildStdout, Command, ExitStatus, Stdio};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

#[path = "../../../runtime/tests/watchdog/child.rs"]
mod child;
use child::{LimitedChild, read_to_end};

/// Names the child role to play; unset in the parent.
pub const ROLE_ENV: &str = "GREENLOOP_RELIABILITY_CHILD";

/// The role this process plays, if it is a child.
pub fn child_role() -> Option<String> {
    std::env::var(ROLE_ENV).ok()
}

/// This test binary re-run on test `test` only, as child `role`, with
/// stdin, stdout and stderr piped, and killed when its time limit runs
/// out: a child that hangs ends, so a parent reading its output or waiting
/// for it fails instead of hanging too.
pub struct ChildRun {
    child: LimitedChild,
    limit: Duration,
    stdin: Option<ChildStdin>,
    stdout: Option<ChildStdout>,
    stderr: JoinHandle<Vec<u8>>,
}

/// What a child left when it exited.
#[derive(Debug)]
pub struct Exit {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl Exit {
    /// The rest of the first stdout line holding `prefix` (see
    /// [`ChildRun::line_after`]).
    pub fn line_after(&self, prefix: &str) -> &str {
        let line = self.stdout.lines().find_map(|l| l.split_once(prefix).map(|(_, rest)| rest));
        line.unwrap_or_else(|| panic!("no {prefix:?} in the child's stdout:\n{}", self.stdout))
    }
}

/// All the text a reader thread read.
fn text(reader: JoinHandle<Vec<u8>>) -> String {
    String::from_utf8_lossy(&reader.join().expect("reader thread")).into_owned()
}

impl ChildRun {
    /// Starts the child, to be killed after `limit`. Stdout is read line by
    /// line through [`line_after`](ChildRun::line_after) until
    /// [`wait`](ChildRun::wait).
    pub fn start(test: &str, role: &str, limit: Duration) -> ChildRun {
        let mut command = Command::new(std::env::current_exe().expect("current_exe"));
        command
            .args(["--exact", test, "--nocapture", "--test-threads=1"])
            .env(ROLE_ENV, role)
            .env("RUST_BACKTRACE", "0")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let child = LimitedChild::spawn(&mut command, limit).expect("re-run the test binary");
        let stderr = read_to_end(child.take_stderr());
        let (stdin, stdout) = (child.take_stdin(), child.take_stdout());
        ChildRun { child, limit, stdin, stdout, stderr }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The child's stdin; dropping it (see [`close_stdin`](ChildRun::close_stdin))
    /// tells a server child to stop.
    pub fn stdin(&mut self) -> &mut ChildStdin {
        self.stdin.as_mut().expect("stdin open")
    }

    pub fn close_stdin(&mut self) {
        drop(self.stdin.take());
    }

    /// Reads stdout up to the first line holding `prefix` and returns the
    /// rest of that line (the test harness prints text of its own, and the
    /// test's name on the same line as the test's first output).
    pub fn line_after(&mut self, prefix: &str) -> String {
        let stdout = self.stdout.as_mut().expect("stdout not yet collected");
        let mut line = Vec::new();
        let mut byte = [0u8; 1];
        loop {
            match stdout.read(&mut byte) {
                Ok(0) | Err(_) => {
                    panic!(
                        "child exited (or was killed after {:?}) before printing {prefix:?}",
                        self.limit
                    )
                }
                Ok(_) if byte[0] == b'\n' => {
                    let text = String::from_utf8_lossy(&line).into_owned();
                    if let Some((_, rest)) = text.split_once(prefix) {
                        return rest.to_string();
                    }
                    line.clear();
                }
                Ok(_) => line.push(byte[0]),
            }
        }
    }

    /// Waits for the child to exit (at most its time limit: then it is
    /// killed and this fails, with its stderr).
    pub fn wait(self) -> Exit {
        let stdout = read_to_end(self.stdout);
        let status = self.child.wait_within(self.limit);
        let (stdout, stderr) = (text(stdout), text(self.stderr));
        let killed = status.signal() == Some(libc::SIGKILL);
        assert!(!killed, "child did not exit within {:?}; stderr:\n{stderr}", self.limit);
        Exit { status, stdout, stderr }
    }
}

/// CPU time (user + system) `pid` used so far; `/proc/self` if `None`.
pub fn cpu_time(pid: Option<u32>) -> Duration {
    let path = match pid {
        Some(pid) => format!("/proc/{pid}/stat"),
        None => "/proc/self/stat".to_string(),
    };
    let stat = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    // Fields after the command name, which is in parentheses and may hold
    // spaces: state is field 3, utime 14, stime 15 (proc(5)).
    let after = &stat[stat.rfind(')').expect("comm") + 2..];
    let fields: Vec<&str> = after.split(' ').collect();
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    // SAFETY: sysconf(3) reads a configuration value; no memory is passed.
    let per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as u64;
    Duration::from_millis(ticks * 1000 / per_second)
}

/// Descriptors this process has open.
pub fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").expect("/proc/self/fd").count()
}

/// OS threads in this process.
pub fn os_threads() -> usize {
    std::fs::read_dir("/proc/self/task").expect("/proc/self/task").count()
}

/// Resident set size of this process, in bytes.
pub fn rss_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").expect("/proc/self/statm");
    let pages: u64 = statm.split(' ').nth(1).and_then(|p| p.parse().ok()).expect("statm rss");
    // SAFETY: sysconf(3) reads a configuration value; no memory is passed.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as u64;
    pages * page
}

/// Retries `check` until it returns `Ok`, failing with its last error
/// after `limit`: for state that settles asynchronously (a server closing
/// its side after the client saw the response).
pub fn eventually<T>(limit: Duration, mut check: impl FnMut() -> Result<T, String>) -> T {
    let start = Instant::now();
    loop {
        match check() {
            Ok(value) => return value,
            Err(e) if start.elapsed() > limit => panic!("not settled after {limit:?}: {e}"),
            Err(_) => thread::sleep(Duration::from_millis(5)),
        }
    }
}

/// Sends `bytes` on a fresh connection to `addr`, half-closes, and reads
/// until the server closes: the whole responses received, and whether the
/// close was a reset (after which a response may have been cut short and
/// is dropped). `Err` if the server sends something that is not whole
/// responses before a clean close, or does not close in time.
pub fn exchange(
    addr: std::net::SocketAddr,
    bytes: &[u8],
) -> Result<(Vec<super::server_util::Response>, bool), String> {
    use std::io::{ErrorKind, Write};
    let mut stream = super::server_util::connect(addr);
    // The server may answer and close before reading everything: a failed
    // write is not an error here, the close is checked below.
    let _ = stream.write_all(bytes);
    let _ = stream.shutdown(std::net::Shutdown::Write);
    let mut received = Vec::new();
    let reset = match stream.read_to_end(&mut received) {
        Ok(_) => false,
        Err(e) if e.kind() == ErrorKind::ConnectionReset => true,
        Err(e) => return Err(format!("no close: {e}")),
    };
    let mut responses = Vec::new();
    let mut rest = &received[..];
    while !rest.is_empty() {
        match super::server_util::read_response(&mut rest) {
            Ok(response) => responses.push(response),
            Err(_) if reset => break,
            Err(e) => {
                return Err(format!(
                    "unreadable answer {:?}: {e}",
                    String::from_utf8_lossy(&received)
                ));
            }
        }
    }
    Ok((responses, reset))
}
