//! The server under test, as a child process: [`ServerProc`].
//!
//! The lab re-executes its own binary as `<exe> --serve <cell spec>` (the
//! lab example handles `--serve`), so the server has a process of its own:
//! its CPU time and memory can be read from `/proc/<pid>` apart from the
//! load generator's, and it can be pinned to its own CPU.
//!
//! ```text
//!   lab (client, CPUs 1..n) ──spawn──> lab --serve green-blocking-sleep (CPU 0)
//!        <── stdout: "listening on 127.0.0.1:41234" (first line, within 10 s)
//!   ... load ... /proc/<pid>/stat, /proc/<pid>/status ...
//!        ──SIGTERM──> graceful stop (SIGKILL after 10 s)
//! ```
//!
//! The server's stdout after the first line is drained and dropped; its
//! stderr is kept (the first lines, where a blocked-loop monitor's first
//! reports are, and the last lines, which explain a failure).

use std::collections::VecDeque;
use std::io::{self, BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex, PoisonError, mpsc};
use std::time::{Duration, Instant};

use greenloop_net::server::{ServeReport, Shutdown, serve};
use greenloop_net::service::{Echo, SleepHttp};
use greenloop_runtime::syscall;

use super::affinity;
use super::cell::{Cell, ServiceKind};
use super::procfs::{self, CpuTimes};

/// How long a server may take to print `listening on ADDR`.
pub const START_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a server may take to exit after SIGTERM before it is killed.
pub const STOP_TIMEOUT: Duration = Duration::from_secs(10);
/// The first line a server prints, followed by its address.
pub const LISTENING: &str = "listening on ";
/// Lines kept at each end of the server's stderr (see [`ServerProc::stderr_head`]).
const STDERR_LINES: usize = 20;

/// Where the server under test runs, relative to the load generator.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Placement {
    /// The server pinned to the first CPU, the lab (the client) to the
    /// others, so neither steals the other's time slices (with fewer than
    /// two CPUs nothing is pinned).
    Split,
    /// Server and client both free to run on every CPU: how a server on
    /// several cores runs. They compete for the CPUs, so throughput
    /// understates the server; its CPU time per request does not.
    Shared,
    /// The scaling layout ([`affinity::halves`]): the server on the first
    /// `cores` CPUs of the first half of the allowed CPUs, the client on
    /// the second half, so neither competes with the other. With fewer
    /// than [`affinity::HALVES_MIN_CPUS`] CPUs nothing is pinned.
    Scaling {
        /// The server's CPUs (at most the half).
        cores: usize,
    },
}

impl Placement {
    /// [`Shared`](Placement::Shared) for a cell whose server uses several
    /// cores ([`Cell::server_cores`]), else [`Split`](Placement::Split).
    pub fn for_cell(cell: &Cell) -> Placement {
        if cell.server_cores() > 1 { Placement::Shared } else { Placement::Split }
    }
}

/// A server running as a child process; see the module docs.
///
/// Dropping it without [`stop`](ServerProc::stop) kills the child
/// (SIGKILL) and reaps it, so no server outlives a failed measurement.
#[derive(Debug)]
pub struct ServerProc {
    child: Option<Child>,
    pid: u32,
    addr: SocketAddr,
    pinned: bool,
    label: String,
    stderr: Arc<Mutex<Stderr>>,
    stderr_reader: Option<std::thread::JoinHandle<()>>,
}

impl ServerProc {
    /// Starts the server for `cell`: re-executes the current binary with
    /// `--serve <spec>`, placed as [`Placement::for_cell`] says.
    ///
    /// # Errors
    ///
    /// As [`spawn_command`](ServerProc::spawn_command); also when the
    /// current executable cannot be found.
    pub fn spawn(cell: &Cell) -> io::Result<ServerProc> {
        ServerProc::spawn_placed(cell, Placement::for_cell(cell))
    }

    /// [`spawn`](ServerProc::spawn) with an explicit placement.
    ///
    /// # Errors
    ///
    /// As [`spawn`](ServerProc::spawn).
    pub fn spawn_placed(cell: &Cell, placement: Placement) -> io::Result<ServerProc> {
        ServerProc::spawn_env(cell, placement, &[])
    }

    /// [`spawn_placed`](ServerProc::spawn_placed) with `env` added to the
    /// server's environment (e.g. `GREENLOOP_MONITOR_MS`).
    ///
    /// # Errors
    ///
    /// As [`spawn`](ServerProc::spawn).
    pub fn spawn_env(
        cell: &Cell,
        placement: Placement,
        env: &[(&str, &str)],
    ) -> io::Result<ServerProc> {
        let exe = std::env::current_exe()?;
        let mut command = Command::new(exe);
        command.arg("--serve").arg(cell.to_spec()).envs(env.iter().copied());
        ServerProc::start(command, &cell.to_spec(), placement)
    }

    /// Starts `command`, which must print `listening on ADDR` as its first
    /// line on stdout. With two or more CPUs, the child is pinned to the
    /// first one (before it runs any code of its own) and this whole
    /// process to the others. SIGINT and SIGTERM are unblocked in the
    /// child, whatever this process's mask.
    ///
    /// # Errors
    ///
    /// When the command cannot start, exits or prints something else before
    /// its address, or stays silent for [`START_TIMEOUT`]: the message
    /// names the server and quotes its stderr. The child is killed then.
    pub fn spawn_command(command: Command, label: &str) -> io::Result<ServerProc> {
        ServerProc::start(command, label, Placement::Split)
    }

    /// Starts `command` as [`spawn_command`](ServerProc::spawn_command)
    /// says, placed as `placement` says.
    fn start(mut command: Command, label: &str, placement: Placement) -> io::Result<ServerProc> {
        // (the server's CPUs, the client's CPUs)
        let plan = match placement {
            Placement::Split => affinity::plan().map(|p| (vec![p.server], p.client)),
            Placement::Shared => {
                affinity::allowed_cpus().ok().map(|all| (all.to_vec(), all.to_vec()))
            }
            Placement::Scaling { cores } => affinity::halves()
                .map(|(server, client)| (server[..cores.clamp(1, server.len())].to_vec(), client)),
        };
        let server_set = plan.as_ref().map(|(server, _)| affinity::cpu_set(server));
        command.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
        // SAFETY: the closure runs between fork and exec, where only
        // async-signal-safe calls are allowed: it makes two system calls
        // (sched_setaffinity, sigprocmask) on data prepared before the fork
        // and allocates nothing.
        unsafe {
            command.pre_exec(move || {
                if let Some(set) = &server_set {
                    affinity::pin_this_thread(set)?;
                }
                unblock_stop_signals()
            });
        }
        let mut child = command
            .spawn()
            .map_err(|e| io::Error::new(e.kind(), format!("cannot start server '{label}': {e}")))?;
        let pinned = match &plan {
            Some((_, client)) => {
                affinity::pin_this_process(client).is_ok() && placement != Placement::Shared
            }
            None => false,
        };
        let stderr = Arc::new(Mutex::new(Stderr::default()));
        let stderr_reader = match child.stderr.take() {
            Some(pipe) => {
                let kept = stderr.clone();
                Some(
                    std::thread::Builder::new()
                        .name("lab-server-stderr".into())
                        .spawn(move || keep_lines(pipe, &kept))?,
                )
            }
            None => None,
        };
        let (tx, rx) = mpsc::channel();
        if let Some(pipe) = child.stdout.take() {
            std::thread::Builder::new().name("lab-server-stdout".into()).spawn(move || {
                let mut lines = BufReader::new(pipe);
                let mut first = String::new();
                let _ = tx.send(lines.read_line(&mut first).map(|_| first));
                // Drain the rest so the server never blocks on a full pipe.
                let _ = io::copy(&mut lines, &mut io::sink());
            })?;
        }
        let pid = child.id();
        let mut proc = ServerProc {
            child: Some(child),
            pid,
            addr: ([0, 0, 0, 0], 0).into(),
            pinned,
            label: label.into(),
            stderr,
            stderr_reader,
        };
        let first = match rx.recv_timeout(START_TIMEOUT) {
            Ok(Ok(line)) => line,
            Ok(Err(e)) => return Err(proc.failed(format!("reading its stdout failed: {e}"))),
            Err(_) => {
                return Err(
                    proc.failed(format!("no 'listening on ADDR' line within {START_TIMEOUT:?}"))
                );
            }
        };
        let addr = first.trim_end().strip_prefix(LISTENING).and_then(|a| a.parse().ok());
        match addr {
            Some(addr) => {
                proc.addr = addr;
                Ok(proc)
            }
            None if first.is_empty() => Err(proc.failed("it exited before listening".into())),
            None => Err(proc.failed(format!(
                "its first line was {:?}, expected 'listening on ADDR'",
                first.trim_end()
            ))),
        }
    }

    /// Kills the child and builds the error for a failed start.
    fn failed(&mut self, why: String) -> io::Error {
        let status = self.kill_now();
        // Let the stderr reader reach the end of the pipe (bounded: a
        // grandchild may still hold it open).
        let deadline = Instant::now() + Duration::from_secs(1);
        while self.stderr_reader.as_ref().is_some_and(|r| !r.is_finished())
            && Instant::now() < deadline
        {
            std::thread::sleep(Duration::from_millis(2));
        }
        let status = status.map_or_else(|e| format!("({e})"), |s| s.to_string());
        io::Error::other(format!(
            "server '{}' (pid {}) did not start: {why}; {status}; its stderr:\n{}",
            self.label,
            self.pid,
            self.stderr_tail()
        ))
    }

    fn kill_now(&mut self) -> io::Result<ExitStatus> {
        let mut child = self.child.take().ok_or_else(|| io::Error::other("already stopped"))?;
        if let Ok(Some(status)) = child.try_wait() {
            return Ok(status);
        }
        child.kill()?;
        child.wait()
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Whether server and client were pinned to separate CPUs.
    pub fn pinned(&self) -> bool {
        self.pinned
    }

    /// The label it was started with (the cell spec).
    pub fn label(&self) -> &str {
        &self.label
    }

    /// CPU time it has used so far, all threads.
    ///
    /// # Errors
    ///
    /// See [`procfs::cpu_times`].
    pub fn cpu_times(&self) -> io::Result<CpuTimes> {
        procfs::cpu_times(self.pid)
    }

    /// Its resident set size in KiB.
    ///
    /// # Errors
    ///
    /// See [`procfs::rss_kib`].
    pub fn rss_kib(&self) -> io::Result<u64> {
        procfs::rss_kib(self.pid)
    }

    /// The last lines it wrote to stderr.
    pub fn stderr_tail(&self) -> String {
        let lines = self.stderr.lock().unwrap_or_else(PoisonError::into_inner);
        lines.tail.iter().map(String::as_str).collect::<Vec<_>>().join("\n")
    }

    /// The first lines it wrote to stderr so far.
    pub fn stderr_head(&self) -> Vec<String> {
        self.stderr.lock().unwrap_or_else(PoisonError::into_inner).head.clone()
    }

    /// Stops it gracefully: SIGTERM, then waits up to [`STOP_TIMEOUT`];
    /// SIGKILL if it is still running then. Returns how it exited (a
    /// graceful stop exits with success; a kill shows as signal 9).
    ///
    /// # Errors
    ///
    /// When the signal cannot be sent or the child cannot be waited for.
    pub fn stop(mut self) -> io::Result<ExitStatus> {
        let mut child = self.child.take().ok_or_else(|| io::Error::other("already stopped"))?;
        if let Some(status) = child.try_wait()? {
            return Ok(status);
        }
        let pid = libc::pid_t::try_from(self.pid).map_err(io::Error::other)?;
        // SAFETY: kill(2) with a valid signal; `pid` is our unreaped child,
        // so the id cannot have been reused by another process.
        syscall!(unsafe { libc::kill(pid, libc::SIGTERM) })?;
        let deadline = Instant::now() + STOP_TIMEOUT;
        while Instant::now() < deadline {
            if let Some(status) = child.try_wait()? {
                return Ok(status);
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        child.kill()?;
        child.wait()
    }
}

impl Drop for ServerProc {
    fn drop(&mut self) {
        if self.child.is_some() {
            let _ = self.kill_now();
        }
    }
}

/// The lines of a server's stderr that are kept.
#[derive(Debug, Default)]
struct Stderr {
    /// The first [`STDERR_LINES`].
    head: Vec<String>,
    /// The last [`STDERR_LINES`].
    tail: VecDeque<String>,
}

/// Keeps the first and the last [`STDERR_LINES`] lines of `pipe`.
fn keep_lines(pipe: impl Read, kept: &Mutex<Stderr>) {
    for line in BufReader::new(pipe).lines() {
        let Ok(line) = line else { return };
        let mut kept = kept.lock().unwrap_or_else(PoisonError::into_inner);
        if kept.head.len() < STDERR_LINES {
            kept.head.push(line.clone());
        }
        if kept.tail.len() == STDERR_LINES {
            kept.tail.pop_front();
        }
        kept.tail.push_back(line);
    }
}

/// Unblocks SIGINT and SIGTERM in the calling thread. Async-signal-safe.
fn unblock_stop_signals() -> io::Result<()> {
    // SAFETY: sigemptyset/sigaddset initialise the set they are given;
    // sigprocmask(2) with a valid set and a null old-set pointer. All three
    // are async-signal-safe, and so is reading errno.
    syscall!(unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGINT);
        libc::sigaddset(&mut set, libc::SIGTERM);
        libc::sigprocmask(libc::SIG_UNBLOCK, &set, std::ptr::null_mut())
    })
    .map(drop)
}

/// Serves `cell` on `listener` in this process until `shutdown` is
/// triggered: the server matrix's [`serve`] with the cell's config and
/// service. This is what `lab --serve` runs for greenloop cells, and what
/// tests run on a thread.
///
/// # Errors
///
/// `Unsupported` for a tokio cell (the lab binary serves those itself);
/// otherwise the errors of [`serve`].
pub fn serve_cell(
    cell: &Cell,
    listener: std::net::TcpListener,
    shutdown: &Shutdown,
) -> io::Result<ServeReport> {
    let config = cell.server_config().ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::Unsupported,
            format!("'{cell}' is a tokio cell: the lab binary serves it, not the library"),
        )
    })?;
    match cell.service {
        ServiceKind::Echo => serve(listener, Echo, &config, shutdown),
        ServiceKind::Sleep => serve(listener, SleepHttp::default(), &config, shutdown),
    }
}
