//! A child process with a time limit, the process-level watchdog of the
//! integration tests: a hung child is killed instead of outliving the run.

#![allow(dead_code, reason = "each test binary uses a part")]

use std::io::{self, Read};
use std::process::{
    Child, ChildStderr, ChildStdin, ChildStdout, Command, ExitStatus, Output, Stdio,
};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

/// A child process that is killed (SIGKILL) when its time limit runs out,
/// unless it was reaped first, and when dropped: neither a hung child nor a
/// test that panicked or hung leaves it running.
#[derive(Debug)]
pub struct LimitedChild {
    /// Shared with the killer thread, which kills it only while it is not
    /// reaped, so never a process that reused its pid.
    child: Arc<Mutex<Child>>,
    /// Dropped to tell the killer thread to stand down.
    _reaped: mpsc::Sender<()>,
}

impl LimitedChild {
    /// Spawns `command`, to be killed after `limit`.
    ///
    /// # Errors
    ///
    /// Those of [`Command::spawn`].
    pub fn spawn(command: &mut Command, limit: Duration) -> io::Result<LimitedChild> {
        let child = Arc::new(Mutex::new(command.spawn()?));
        let (reaped, told) = mpsc::channel::<()>();
        let victim = child.clone();
        thread::spawn(move || {
            if let Err(RecvTimeoutError::Timeout) = told.recv_timeout(limit) {
                kill_unreaped(&mut lock(&victim));
            }
        });
        Ok(LimitedChild { child, _reaped: reaped })
    }

    /// Its process id.
    pub fn id(&self) -> u32 {
        lock(&self.child).id()
    }

    /// Its piped stdin, once.
    pub fn take_stdin(&self) -> Option<ChildStdin> {
        lock(&self.child).stdin.take()
    }

    /// Its piped stdout, once.
    pub fn take_stdout(&self) -> Option<ChildStdout> {
        lock(&self.child).stdout.take()
    }

    /// Its piped stderr, once.
    pub fn take_stderr(&self) -> Option<ChildStderr> {
        lock(&self.child).stderr.take()
    }

    /// Whether it has not exited yet.
    pub fn is_running(&self) -> bool {
        lock(&self.child).try_wait().expect("try_wait").is_none()
    }

    /// Sends `signal` unless it was reaped (so never to a reused pid).
    pub fn signal(&self, signal: libc::c_int) {
        let mut child = lock(&self.child);
        if child.try_wait().expect("try_wait").is_none() {
            let pid = libc::pid_t::try_from(child.id()).expect("pid");
            // SAFETY: kill(2) on our own child, which is not reaped (checked
            // under the lock every reaper takes), so the pid is still its.
            assert_eq!(unsafe { libc::kill(pid, signal) }, 0, "kill({pid}, {signal})");
        }
    }

    /// Its exit status, waiting at most `limit`; fails the test after that.
    pub fn wait_within(&self, limit: Duration) -> ExitStatus {
        let start = Instant::now();
        loop {
            if let Some(status) = lock(&self.child).try_wait().expect("try_wait") {
                return status;
            }
            assert!(start.elapsed() < limit, "child still running after {limit:?}");
            thread::sleep(Duration::from_millis(10));
        }
    }
}

/// Runs `command` to its end with stdout and stderr captured, killed after
/// `limit` (the test then fails).
pub fn output_within(command: &mut Command, limit: Duration) -> Output {
    command.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let child = LimitedChild::spawn(command, limit).expect("spawn the command");
    let stdout = read_to_end(child.take_stdout());
    let stderr = read_to_end(child.take_stderr());
    let status = child.wait_within(limit);
    let stdout = stdout.join().expect("stdout reader");
    let stderr = stderr.join().expect("stderr reader");
    Output { status, stdout, stderr }
}

/// Everything `from` yields, read on its own thread (to its end: the
/// writer exited, or was killed).
pub fn read_to_end<R: Read + Send + 'static>(from: Option<R>) -> thread::JoinHandle<Vec<u8>> {
    thread::spawn(move || {
        let mut bytes = Vec::new();
        if let Some(mut from) = from {
            let _ = from.read_to_end(&mut bytes);
        }
        bytes
    })
}

impl Drop for LimitedChild {
    fn drop(&mut self) {
        kill_unreaped(&mut lock(&self.child));
    }
}

/// Kills and reaps `child` unless it was reaped already.
fn kill_unreaped(child: &mut Child) {
    if let Ok(None) = child.try_wait() {
        let _ = child.kill();
        let _ = child.wait();
    }
}

fn lock(child: &Mutex<Child>) -> MutexGuard<'_, Child> {
    child.lock().unwrap_or_else(PoisonError::into_inner)
}
