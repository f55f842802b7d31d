//! No leaks under churn: many connect / request / close cycles on every
//! cell of the matrix, after which open descriptors, OS threads, running
//! handlers, live green threads or tasks, and RSS are back where they were
//! after a warm-up.
//!
//! `GREENLOOP_CHURN` sets the cycles per cell (default 3,000, so CI stays
//! quick; the README gives 50,000-cycle figures measured by hand). The
//! server closes first (`Connection: close`), so the client ports are not
//! left in `TIME_WAIT`. This file holds one test: the counts are of this
//! whole process.

mod reliability_util;
mod server_util;

use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use greenloop_net::TcpStream as GreenStream;
use greenloop_net::server::{Runtime, Shutdown, Style};
use greenloop_net::service::{BlockingStream, Service, SleepHttp};
use greenloop_runtime::{green, task};
use reliability_util::{eventually, open_fds, os_threads, rss_bytes};
use server_util::{Cell, Server, all_cells, connect, read_response, watchdog};

const DEFAULT_CYCLES: u64 = 3_000;
const WARM_UP: u64 = 1_000;
/// Client threads: at most this many connections at once.
const CLIENTS: u64 = 4;
/// RSS may grow this much over the warm-up level: allocator noise, not a
/// per-connection leak (a leaked 16 KiB session buffer is 48 MiB at 3,000).
const RSS_MARGIN: u64 = 8 << 20;
const SETTLE: Duration = Duration::from_secs(20);
const REQUEST: &[u8] = b"GET /sleep?ms=0 HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n";
/// What the probe saw at the start of a connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Seen {
    /// Connection handlers running, this one included (every cell).
    handlers: usize,
    /// Green threads or tasks alive on the handler's runtime; `None` where
    /// the handler runs on an OS thread with neither (the threads cells,
    /// the stackless pool).
    runtime: Option<usize>,
}

/// The sleep service, recording at the start of each connection how many
/// handlers are running and how many green threads or tasks are alive on
/// its runtime.
#[derive(Clone, Default)]
struct Probe {
    handlers: Arc<AtomicUsize>,
    seen: Arc<Mutex<Option<Seen>>>,
}

/// Counts a handler as running until dropped.
struct Running<'a>(&'a AtomicUsize);

impl Drop for Running<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Probe {
    fn enter(&self) -> Running<'_> {
        let handlers = self.handlers.fetch_add(1, Ordering::SeqCst) + 1;
        let runtime = green::stats().map(|s| s.live_threads).or_else(task::live_tasks);
        *self.seen.lock().unwrap_or_else(PoisonError::into_inner) =
            Some(Seen { handlers, runtime });
        Running(&self.handlers)
    }

    fn seen(&self) -> Option<Seen> {
        *self.seen.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Service for Probe {
    fn serve_blocking<S: BlockingStream>(&self, stream: &mut S, stop: &Shutdown) -> io::Result<()> {
        let _running = self.enter();
        SleepHttp::default().serve_blocking(stream, stop)
    }

    async fn serve_async(&self, stream: &GreenStream, stop: &Shutdown) -> io::Result<()> {
        let _running = self.enter();
        SleepHttp::default().serve_async(stream, stop).await
    }
}

/// One cycle: connect, one request, read the response and the server's close.
fn cycle(addr: SocketAddr) {
    let mut stream = connect(addr);
    stream.write_all(REQUEST).expect("send");
    let mut received = Vec::new();
    stream.read_to_end(&mut received).expect("response, then close");
    let response = read_response(&mut &received[..]).expect("a whole response");
    assert_eq!(response.status, 200, "{response:?}");
}

/// `cycles` cycles from [`CLIENTS`] threads.
fn churn(addr: SocketAddr, cycles: u64) {
    let clients: Vec<_> = (0..CLIENTS)
        .map(|_| thread::spawn(move || (0..cycles / CLIENTS).for_each(|_| cycle(addr))))
        .collect();
    clients.into_iter().for_each(|c| c.join().expect("client"));
}

/// What the probe sees while the server serves one (probe) connection.
/// Every earlier connection's handler has returned: its client saw the
/// server's close, which comes after the handler.
fn live(server: &Server, probe: &Probe) -> Option<Seen> {
    cycle(server.addr);
    probe.seen()
}

/// OS threads an idle server of `cell` may keep: its own, plus its worker
/// pool: a fixed W, or a blocking pool, which grows with the jobs queued at
/// once (the clients', a probe's, and jobs queued while a thread finishes)
/// and shrinks after 10 s idle. A leak per connection would pass any bound.
fn server_threads(cell: &Cell) -> usize {
    match (cell.config.runtime, cell.config.workers) {
        (Runtime::Threads, Some(workers)) => 1 + workers,
        (Runtime::Stackless, _) if cell.config.style == Style::Blocking && !cell.is_inline() => {
            1 + 2 * CLIENTS as usize + 1
        }
        _ => 1,
    }
}

#[test]
fn connection_churn_leaks_nothing_on_every_cell() {
    let cycles = std::env::var("GREENLOOP_CHURN")
        .map(|v| v.parse().expect("GREENLOOP_CHURN: a number of cycles"))
        .unwrap_or(DEFAULT_CYCLES);
    watchdog(Duration::from_secs(60 + cycles / 50), move || {
        for cell in all_cells() {
            let cell_start = Instant::now();
            let (fds_before, threads_before) = (open_fds(), os_threads());
            let threads_idle = threads_before + server_threads(&cell);
            let probe = Probe::default();
            let server = Server::start(probe.clone(), cell);
            churn(server.addr, WARM_UP);
            // Descriptors of the warm-up may still be closing: this base
            // can only be too high (lenient); the check after stop is exact.
            let fds_base = open_fds();
            // The probe's handler alone; on its runtime, its own green
            // thread (plus the acceptor's, `main`) or its own task: nothing
            // else alive.
            let runtime = match (cell.config.runtime, cell.config.style) {
                (Runtime::Green | Runtime::GreenPatched, _) => Some(2),
                (Runtime::Stackless, Style::Async) => Some(1),
                (Runtime::Stackless, _) if cell.is_inline() => Some(1),
                _ => None,
            };
            let expected = Some(Seen { handlers: 1, runtime });
            assert_eq!(
                live(&server, &probe),
                expected,
                "{cell}: handlers / green threads / tasks when idle"
            );
            let rss_base = rss_bytes();

            let start = Instant::now();
            churn(server.addr, cycles);
            let elapsed = start.elapsed();
            let (fds, threads) = eventually(SETTLE, || {
                let (fds, threads) = (open_fds(), os_threads());
                if fds <= fds_base && threads <= threads_idle {
                    Ok((fds, threads))
                } else {
                    Err(format!(
                        "{cell}: {fds} fds (<= {fds_base}), {threads} threads (<= {threads_idle})"
                    ))
                }
            });
            assert_eq!(
                live(&server, &probe),
                expected,
                "{cell}: handlers / green threads / tasks after churn"
            );
            let rss = rss_bytes();
            assert!(
                rss <= rss_base + RSS_MARGIN,
                "{cell}: RSS grew from {rss_base} to {rss} bytes over {cycles} cycles"
            );
            let report = server.stop();
            assert_eq!(report.unfinished, 0, "{cell}: {report:?}");
            assert!(report.accepted > WARM_UP + cycles, "{cell}: {report:?}");
            eventually(SETTLE, || {
                let fds = open_fds();
                if fds == fds_before {
                    Ok(())
                } else {
                    Err(format!("{cell}: {fds} fds, {fds_before} before"))
                }
            });
            println!(
                "{cell}: {cycles} cycles in {elapsed:.1?} ({:.1?} in all); {fds} fds, {threads} threads; RSS {} -> {} KiB",
                cell_start.elapsed(),
                rss_base >> 10,
                rss >> 10
            );
        }
    });
}
