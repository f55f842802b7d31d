//! Panic isolation: 10,000 connections on every cell of the matrix, 1% of
//! whose handlers panic. The server stays up, the other 99% are answered,
//! `ServeReport::panicked` counts the panics, and each one is printed once
//! on stderr naming its green thread, task or OS thread.
//!
//! Each cell runs in a child process (this test binary re-run), so the
//! parent can read the child's stderr and count the panic messages.

mod reliability_util;
mod server_util;

use std::collections::HashSet;
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread;
use std::time::Duration;

use greenloop_net::TcpStream as GreenStream;
use greenloop_net::server::{Runtime, Shutdown, Style};
use greenloop_net::service::{BlockingStream, Service, SleepHttp};
use reliability_util::{ChildRun, child_role};
use server_util::{Server, all_cells, connect, read_response};

/// Connections per cell; every [`EVERY`]th handler panics.
const CONNS: u64 = 10_000;
const EVERY: u64 = 100;
/// Client threads: at most this many connections at once.
const CLIENTS: u64 = 8;
const LIMIT: Duration = Duration::from_secs(120);
const REQUEST: &[u8] = b"GET /sleep?ms=0 HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n";

/// The sleep service, except that every [`EVERY`]th connection's handler
/// panics before reading anything.
#[derive(Clone, Default)]
struct PanicEvery {
    conns: Arc<AtomicU64>,
}

impl PanicEvery {
    fn maybe_panic(&self) {
        let n = self.conns.fetch_add(1, Ordering::Relaxed) + 1;
        if n.is_multiple_of(EVERY) {
            panic!("test panic on connection {n}");
        }
    }
}

impl Service for PanicEvery {
    fn serve_blocking<S: BlockingStream>(&self, stream: &mut S, stop: &Shutdown) -> io::Result<()> {
        self.maybe_panic();
        SleepHttp::default().serve_blocking(stream, stop)
    }

    async fn serve_async(&self, stream: &GreenStream, stop: &Shutdown) -> io::Result<()> {
        self.maybe_panic();
        SleepHttp::default().serve_async(stream, stop).await
    }
}

/// One connection: `true` if answered with a 200, `false` if closed with
/// no response (its handler panicked); anything else fails.
fn one_request(addr: SocketAddr) -> bool {
    let mut stream = connect(addr);
    // A handler that panicked may have closed (or reset) before the write.
    if stream.write_all(REQUEST).is_err() {
        return false;
    }
    let mut received = Vec::new();
    match stream.read_to_end(&mut received) {
        Ok(_) => {}
        Err(e) if e.kind() == io::ErrorKind::ConnectionReset && received.is_empty() => {}
        Err(e) => panic!("read: {e}"),
    }
    if received.is_empty() {
        return false;
    }
    let response = read_response(&mut &received[..]).expect("a whole response");
    assert_eq!(response.status, 200, "{response:?}");
    true
}

/// In the child: serves cell `index` of `all_cells`, runs the load, prints
/// the counts on stdout.
fn child(index: usize) {
    let cell = all_cells()[index];
    let server = Server::start(PanicEvery::default(), cell);
    let addr = server.addr;
    let clients: Vec<_> = (0..CLIENTS)
        .map(|_| thread::spawn(move || (0..CONNS / CLIENTS).filter(|_| one_request(addr)).count()))
        .collect();
    let answered: usize = clients.into_iter().map(|c| c.join().expect("client")).sum();
    // Still up and serving after all the panics.
    let after = server_util::sleep_once(addr, 0);
    assert_eq!(after.status, 200, "{after:?}");
    let report = server.stop_expecting(CONNS + 1);
    println!("RESULT {answered} {}", report.panicked);
}

#[test]
fn one_percent_of_handlers_panic_on_every_cell() {
    if let Some(role) = child_role() {
        child(role.parse().expect("cell index"));
        return;
    }
    for (index, cell) in all_cells().into_iter().enumerate() {
        let run = ChildRun::start(
            "one_percent_of_handlers_panic_on_every_cell",
            &index.to_string(),
            LIMIT,
        );
        let exit = run.wait();
        assert!(exit.status.success(), "{cell}: child failed: {:?}\n{}", exit.status, exit.stderr);
        let result = exit.line_after("RESULT ");
        let (answered, panicked) = result.split_once(' ').expect("two counts");
        let panics = CONNS / EVERY;
        assert_eq!(answered.parse::<u64>().unwrap(), CONNS - panics, "{cell}: answered");
        assert_eq!(panicked.parse::<u64>().unwrap(), panics, "{cell}: ServeReport::panicked");

        // Each panic printed once, by the hook, naming who panicked.
        let who: Vec<&str> = exit
            .stderr
            .lines()
            .filter_map(|line| line.split_once(" panicked at ").map(|(who, _)| who))
            .collect();
        assert_eq!(who.len() as u64, panics, "{cell}: panic messages in\n{}", exit.stderr);
        let messages = exit.stderr.matches("test panic on connection ").count() as u64;
        assert_eq!(messages, panics, "{cell}: payloads printed");
        let (prefix, distinct) = match (cell.config.runtime, cell.config.style) {
            (Runtime::Green | Runtime::GreenPatched, _) => ("green thread '<unnamed>' (id ", true),
            (Runtime::Stackless, Style::Async) => ("task ", true),
            (Runtime::Stackless, Style::Blocking) if cell.is_inline() => ("task ", true),
            // OS threads: std's hook names the thread and its OS id; pool
            // workers serve many connections, so ids repeat.
            _ => (
                "thread '",
                cell.config.workers.is_none() && cell.config.runtime == Runtime::Threads,
            ),
        };
        assert!(who.iter().all(|w| w.starts_with(prefix)), "{cell}: {who:?}");
        if distinct {
            let ids: HashSet<&&str> = who.iter().collect();
            assert_eq!(ids.len(), who.len(), "{cell}: one message per panicking handler");
        }
    }
}
