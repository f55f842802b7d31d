//! Calls that must go to libc as they are: before any runtime, while a
//! runtime tears down, in the child of a fork, inside a signal handler.

mod util;

use std::cell::Cell;
use std::io::{Read, Write};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::Duration;

use greenloop_runtime::green;
use util::{pair, watchdog};

#[test]
fn calls_before_any_runtime_are_libcs() {
    greenloop_patch::install();
    watchdog(Duration::from_secs(30), || {
        std::thread::sleep(Duration::from_millis(1));
        let (mut server, mut client) = pair();
        client.write_all(b"ok").unwrap();
        let mut buf = [0; 2];
        server.read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"ok");
        assert!(!util::shows_nonblocking(std::os::fd::AsRawFd::as_raw_fd(&server)));
    });
}

/// Sleeps and writes in its destructor: run while the runtime unwinds it.
struct SleepsOnDrop {
    stream: std::net::TcpStream,
    done: Rc<Cell<bool>>,
}

impl Drop for SleepsOnDrop {
    fn drop(&mut self) {
        std::thread::sleep(Duration::from_millis(5));
        self.stream.write_all(b"bye").unwrap();
        self.done.set(true);
    }
}

#[test]
fn calls_during_the_runtimes_teardown_are_libcs() {
    greenloop_patch::install();
    let mut peer = watchdog(Duration::from_secs(30), || {
        let (server, peer) = pair();
        let (mut waiting, _) = pair();
        let done = Rc::new(Cell::new(false));
        let seen = done.clone();
        green::run(move || {
            green::spawn(move || {
                let _guard = SleepsOnDrop { stream: server, done };
                // Parks for good: main returns first, and teardown unwinds us.
                let _ = waiting.read(&mut [0; 1]);
            });
            green::sleep(Duration::from_millis(10));
        });
        assert!(seen.get(), "the destructor did not finish");
        peer
    });
    let mut buf = [0; 3];
    peer.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"bye");
}

#[test]
fn green_threads_parked_in_the_patch_at_shutdown_end_cleanly() {
    greenloop_patch::install();
    let (errors, mut peer) = watchdog(Duration::from_secs(30), || {
        let (mut server, peer) = pair();
        let (mut reader, _writer) = pair();
        let errors = Rc::new(Cell::new(Vec::new()));
        let seen = errors.clone();
        green::run(move || {
            let record = seen.clone();
            // Parked in a patched sleep when main returns: the sleep ends
            // early, and the write after it fails instead of going out.
            green::spawn(move || {
                std::thread::sleep(Duration::from_secs(30));
                let err = server.write_all(b"late").unwrap_err();
                record.set([record.take(), vec![err.raw_os_error()]].concat());
            });
            // Parked in a patched read.
            green::spawn(move || {
                let err = reader.read(&mut [0; 1]).unwrap_err();
                seen.set([seen.take(), vec![err.raw_os_error()]].concat());
            });
            green::sleep(Duration::from_millis(10));
        });
        (errors.take(), peer)
    });
    assert_eq!(errors, vec![Some(libc::ECANCELED); 2]);
    peer.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut rest = Vec::new();
    peer.read_to_end(&mut rest).unwrap();
    assert!(rest.is_empty(), "a cancelled thread wrote {rest:?}");
}

#[test]
fn calls_in_the_child_of_a_fork_are_libcs() {
    greenloop_patch::install();
    let status = watchdog(Duration::from_secs(30), || {
        green::run(|| {
            let (mut server, mut client) = pair();
            // SAFETY: the child only sleeps, uses its own sockets and `_exit`s.
            let pid = unsafe { libc::fork() };
            assert!(pid >= 0, "fork failed");
            if pid == 0 {
                std::thread::sleep(Duration::from_millis(5));
                let ok = client.write_all(b"c").is_ok()
                    && server.read(&mut [0; 1]).is_ok_and(|n| n == 1)
                    && !greenloop_patch::is_installed();
                // SAFETY: ends the child without running the parent's atexit work.
                unsafe { libc::_exit(if ok { 0 } else { 1 }) };
            }
            let mut status = 0;
            for _ in 0..3000 {
                // SAFETY: waits for our own child without blocking.
                if unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) } == pid {
                    return status;
                }
                std::thread::sleep(Duration::from_millis(5));
            }
            // SAFETY: kills our own child, which ran out of time.
            unsafe { libc::kill(pid, libc::SIGKILL) };
            panic!("the forked child did not finish in time");
        })
    });
    assert!(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0, "child status {status}");
}

static HANDLER_ACTIVE: AtomicBool = AtomicBool::new(false);
static HANDLER_RUNS: AtomicU32 = AtomicU32::new(0);

extern "C" fn sleepy_handler(_: libc::c_int) {
    HANDLER_ACTIVE.store(true, Ordering::SeqCst);
    let nap = libc::timespec { tv_sec: 0, tv_nsec: 20_000_000 };
    // SAFETY: nanosleep is async-signal-safe; valid pointers.
    unsafe { libc::nanosleep(&nap, std::ptr::null_mut()) };
    HANDLER_ACTIVE.store(false, Ordering::SeqCst);
    HANDLER_RUNS.fetch_add(1, Ordering::SeqCst);
}

#[test]
fn calls_in_a_signal_handler_are_libcs() {
    greenloop_patch::install();
    // SAFETY: installs a handler that only sleeps and touches atomics.
    let previous =
        unsafe { libc::signal(libc::SIGUSR2, sleepy_handler as *const () as libc::sighandler_t) };
    assert_ne!(previous, libc::SIG_ERR);
    // SAFETY: reads the current action into a zeroed sigaction.
    let mut current: libc::sigaction = unsafe { std::mem::zeroed() };
    assert_eq!(unsafe { libc::sigaction(libc::SIGUSR2, std::ptr::null(), &mut current) }, 0);
    assert_eq!(
        current.sa_sigaction, sleepy_handler as *const () as libc::sighandler_t,
        "oldact shows the trampoline"
    );

    let overlapped = watchdog(Duration::from_secs(30), || {
        green::run(|| {
            let overlapped = Rc::new(Cell::new(false));
            let seen = overlapped.clone();
            let other = green::spawn(move || {
                for _ in 0..50 {
                    seen.set(seen.get() || HANDLER_ACTIVE.load(Ordering::SeqCst));
                    green::sleep(Duration::from_millis(1));
                }
            });
            green::yield_now();
            // SAFETY: raises a signal whose handler is installed above.
            assert_eq!(unsafe { libc::raise(libc::SIGUSR2) }, 0);
            other.join().unwrap();
            overlapped.get()
        })
    });
    assert_eq!(HANDLER_RUNS.load(Ordering::SeqCst), 1);
    assert!(!overlapped, "the handler's nanosleep parked the green thread");
}
