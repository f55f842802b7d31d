//! A connection handler that overflows its stack, in a running server: the
//! process prints which green thread (or OS thread) overflowed and aborts,
//! rather than corrupting memory or dying silently.
//!
//! The server runs in a child process (this test binary re-run); the
//! parent connects, and checks the child's exit signal and stderr. See
//! `runtime/tests/overflow.rs` for the runtime's own tests.

mod reliability_util;
mod server_util;

use std::io::{self, Write};
use std::net::SocketAddr;
use std::os::unix::process::ExitStatusExt;
use std::time::Duration;

use greenloop_net::TcpStream as GreenStream;
use greenloop_net::server::Shutdown;
use greenloop_net::service::{BlockingStream, Service};
use reliability_util::{ChildRun, child_role};
use server_util::{Cell, Server, green_async, green_blocking, stackless_async, threads_blocking};

const LIMIT: Duration = Duration::from_secs(30);
const TEST: &str = "handler_stack_overflow_is_reported_and_aborts";

/// Recurses until the stack runs out: `black_box` on a local array keeps
/// every frame real, and the addition after the call prevents a tail call.
#[inline(never)]
fn recurse(depth: u64) -> u64 {
    let mut frame = [0u8; 512];
    frame[0] = depth as u8;
    std::hint::black_box(&mut frame);
    if std::hint::black_box(true) { recurse(depth + 1) + u64::from(frame[1]) } else { depth }
}

/// A service whose handler recurses without end.
#[derive(Clone, Copy)]
struct Overflow;

impl Service for Overflow {
    fn serve_blocking<S: BlockingStream>(&self, _: &mut S, _: &Shutdown) -> io::Result<()> {
        eprintln!("child: overflowing {}", who());
        recurse(0);
        Ok(())
    }

    async fn serve_async(&self, _: &GreenStream, _: &Shutdown) -> io::Result<()> {
        eprintln!("child: overflowing {}", who());
        recurse(0);
        Ok(())
    }
}

/// The id of the green thread running, if any.
fn who() -> String {
    match greenloop_runtime::green::try_current() {
        Some(thread) => format!("green thread id {}", thread.id().as_u64()),
        None => "an OS thread".to_string(),
    }
}

/// The cells, and the line each must print before aborting (`{id}`: the
/// id the child printed).
fn cells() -> Vec<(Cell, &'static str)> {
    let green = "green thread '<unnamed>' (id {id}) overflowed its 128 KiB stack\n";
    vec![
        (green_blocking(), green),
        (green_async(), green),
        // Tasks and OS threads run on OS thread stacks: std's guard page
        // and handler report it (our handler passes the fault on).
        (stackless_async(), "thread 'serve stackless/async' ("),
        (threads_blocking(), "thread '<unknown>' ("),
    ]
}

/// In the child: no core dump for the deliberate abort; serve until killed.
fn child(index: usize) {
    let none = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: setrlimit(2) only reads the rlimit we pass; lowering a limit
    // needs no privilege.
    assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_CORE, &none) }, 0);
    let server = Server::start(Overflow, cells()[index].0);
    println!("ADDR {}", server.addr);
    let mut rest = Vec::new();
    let _ = io::Read::read_to_end(&mut io::stdin(), &mut rest);
    unreachable!("the server survived a stack overflow");
}

#[test]
fn handler_stack_overflow_is_reported_and_aborts() {
    if let Some(role) = child_role() {
        child(role.parse().expect("cell index"));
        return;
    }
    for (index, (cell, expected)) in cells().into_iter().enumerate() {
        let mut run = ChildRun::start(TEST, &index.to_string(), LIMIT);
        let addr: SocketAddr = run.line_after("ADDR ").parse().expect("child address");
        let mut stream = server_util::connect(addr);
        stream.write_all(b"GET / HTTP/1.1\r\n\r\n").expect("send");
        let exit = run.wait();
        let stderr = &exit.stderr;
        assert_eq!(exit.status.signal(), Some(libc::SIGABRT), "{cell}: {exit:?}");
        let expected = match stderr
            .lines()
            .find_map(|l| l.strip_prefix("child: overflowing green thread id "))
        {
            Some(id) => expected.replace("{id}", id),
            None => expected.to_string(),
        };
        assert!(stderr.contains(&expected), "{cell}: expected {expected:?} in stderr:\n{stderr}");
        if expected.starts_with("thread") {
            assert!(stderr.contains("has overflowed its stack"), "{cell}: stderr:\n{stderr}");
        }
    }
}
