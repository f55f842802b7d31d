//! Closed-loop load generators, written on greenloop's own green threads.
//!
//! Each connection is one green thread (32 KiB stack) that loops:
//!
//! ```text
//!   connect (bounded; on failure count it, back off 10 ms .. 500 ms, retry)
//!   loop: send one request -> read the whole reply -> record -> next request
//!         (same keep-alive connection; reconnect when the server closes it
//!          or after an error)
//!   until the shared stop time; a request in flight then may still finish
//!   during a short linger (not recorded), then the client gives up
//! ```
//!
//! so there is at most one request in flight per connection, and the
//! offered load follows the server's speed (a closed loop, like `wrk`).
//!
//! On keep-alive loads, the rate counts *cycles*, not completions: each
//! successful reply stands for the connection's time since its previous
//! one (or since its first request), and counts by the share of that
//! cycle inside the window. A closed loop's connections run in step (they
//! all started together and wait alike), so with a window of a few cycles
//! a count of completions jumps by one per connection as their common
//! phase drifts across the window's edges: 1,000 connections of 102 ms
//! cycles in a 0.7 s window complete 6 or 7 requests each, and the count
//! read 6,268 (8,954 req/s) where the latencies allowed 9,800. Counted by
//! cycles, the rate is the connections' own pace, whatever the phase. A
//! `Connection: close` load counts completions: its runs are the queueing
//! ones (a pool behind 100 clients), where a request's cycle is mostly
//! its wait behind others, begun before the window, and what the server
//! delivered in the window is the count.
//! The first request on a keep-alive connection is counted but its
//! latency is kept apart: it includes the wait in the server's accept
//! queue, which at 10,000 connections is the ramp, not the service. Only
//! when no later request completed in the window (a server so slow that
//! each connection got one answer) do the first requests' latencies stand
//! for the run. (A `Connection: close` load records every request: each
//! is a first.)
//! The run has one [`Window`]: a warm-up, whose completed requests are not
//! recorded, then the measurement, which ends for every client at the same
//! `stop` instant: requests are recorded by completion time, when it falls
//! in `measure_from..stop`. A keep-alive load may let the warm-up last
//! until every connection has had its first answer, at most
//! [`LoadSpec::answer_wait`] more (the [`Timeline`] fixes the window during
//! the run; the lab's claims wait up to [`ANSWER_LIMIT`]). No request
//! starts after `stop`; one in flight may finish until `give_up` (the
//! linger, [`DEFAULT_LINGER`]), which bounds every read, write and connect,
//! so a client stuck on a silent server is released then, and the whole
//! run takes at most the warm-up, the answer wait, the duration and the
//! linger.
//!
//! Nothing is hidden: a non-200 status, an I/O error, a reply that does
//! not match (echo) and a failed connect are all counted, errors over the
//! whole run (warm-up included), and the first one is kept as text. A
//! request still unanswered at `give_up` is counted as `unfinished`, and a
//! connection that completed no request in the window as idle: a server
//! that starves some connections (a pool of W threads holding W keep-alive
//! connections) shows there, not only in the latencies.
//!
//! Connections are spread over `threads` OS threads, each running its own
//! green runtime with one [`Latency`] histogram that all its green threads
//! record into (they never leave that OS thread, so an `Rc<RefCell<_>>` is
//! enough); the histograms are merged at the end. By default there is one
//! OS thread per CPU the client may run on.

mod client;
mod result;
mod window;

pub use result::LoadResult;
pub use window::{ANSWER_LIMIT, Timeline, Window};

use std::cell::RefCell;
use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use greenloop_net::TcpStream;
use greenloop_runtime::green;

use super::latency::Latency;
use client::{EchoExchange, Exchange, HttpExchange};

/// The usable stack of each client green thread.
pub const CLIENT_STACK_SIZE: usize = 32 * 1024;
/// The longest a single connect may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// The warm-up used by [`LoadSpec::http`] and [`LoadSpec::echo`].
pub const DEFAULT_WARMUP: Duration = Duration::from_secs(1);
/// How long requests in flight at the stop may take to finish before they
/// count as unfinished, used by [`LoadSpec::http`] and [`LoadSpec::echo`].
pub const DEFAULT_LINGER: Duration = Duration::from_secs(2);
const BACKOFF_MIN: Duration = Duration::from_millis(10);
const BACKOFF_MAX: Duration = Duration::from_millis(500);

/// What each connection asks, over and over.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Workload {
    /// `GET {path} HTTP/1.1`; a 200 is a success. With `keep_alive` false
    /// each request asks for `Connection: close` (a new connection per
    /// request).
    Http {
        /// The request target, e.g. `/sleep?ms=100`.
        path: String,
        /// Keep the connection for the next request.
        keep_alive: bool,
    },
    /// Send `msg_size` bytes, read them back, check they match.
    Echo {
        /// Bytes per message (at least 1).
        msg_size: usize,
    },
}

/// A load to run: what, how many connections, how long.
///
/// ```
/// use std::time::Duration;
/// use greenloop::lab::LoadSpec;
///
/// let spec = LoadSpec::http("/sleep?ms=100", 100, Duration::from_secs(3))
///     .warmup(Duration::from_millis(500));
/// assert_eq!(spec.conns, 100);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoadSpec {
    /// The requests.
    pub workload: Workload,
    /// Concurrent connections (one green thread each).
    pub conns: usize,
    /// How long the measurement lasts, after the warm-up.
    pub duration: Duration,
    /// How long to run before recording (connections open, caches warm).
    pub warmup: Duration,
    /// How long requests in flight at the stop may still take (not
    /// recorded) before they count as unfinished.
    pub linger: Duration,
    /// OS threads driving the connections; `None`: one per CPU this
    /// process may run on (capped at `conns`).
    pub threads: Option<usize>,
    /// On keep-alive loads, how much longer than `warmup` the warm-up may
    /// last while some connection has had no answer yet (see
    /// [`Timeline`]); zero (the default): the window opens after `warmup`
    /// whatever. The lab's claims use [`ANSWER_LIMIT`].
    pub answer_wait: Duration,
}

impl LoadSpec {
    /// Keep-alive HTTP `GET path` on `conns` connections for `duration`,
    /// after a [`DEFAULT_WARMUP`].
    pub fn http(path: impl Into<String>, conns: usize, duration: Duration) -> LoadSpec {
        LoadSpec::new(Workload::Http { path: path.into(), keep_alive: true }, conns, duration)
    }

    /// Echo of `msg_size`-byte messages on `conns` connections for
    /// `duration`, after a [`DEFAULT_WARMUP`].
    pub fn echo(msg_size: usize, conns: usize, duration: Duration) -> LoadSpec {
        LoadSpec::new(Workload::Echo { msg_size }, conns, duration)
    }

    /// `workload` on `conns` connections for `duration`, with the defaults.
    fn new(workload: Workload, conns: usize, duration: Duration) -> LoadSpec {
        LoadSpec {
            workload,
            conns,
            duration,
            warmup: DEFAULT_WARMUP,
            linger: DEFAULT_LINGER,
            threads: None,
            answer_wait: Duration::ZERO,
        }
    }

    /// This load with another warm-up.
    pub fn warmup(self, warmup: Duration) -> LoadSpec {
        LoadSpec { warmup, ..self }
    }

    /// This load with another linger.
    pub fn linger(self, linger: Duration) -> LoadSpec {
        LoadSpec { linger, ..self }
    }

    /// The load's timeline if it starts now: on keep-alive loads, the
    /// warm-up waits up to [`answer_wait`](LoadSpec::answer_wait) longer
    /// for every connection's first answer (see [`Timeline`]).
    pub fn timeline(&self) -> Timeline {
        let waits = self.counts_cycles() && !self.answer_wait.is_zero();
        let wait_for = if waits { self.conns } else { 0 };
        Timeline::starting_now(self.warmup, self.duration, self.linger, wait_for, self.answer_wait)
    }

    /// This load with another [`answer_wait`](LoadSpec::answer_wait).
    pub fn answer_wait(self, answer_wait: Duration) -> LoadSpec {
        LoadSpec { answer_wait, ..self }
    }

    /// This load on `threads` OS threads.
    pub fn threads(self, threads: usize) -> LoadSpec {
        LoadSpec { threads: Some(threads), ..self }
    }

    /// A short description, e.g. `100 conns x GET /sleep?ms=100, 1 s warm-up + 3 s`.
    pub fn describe(&self) -> String {
        let what = match &self.workload {
            Workload::Http { path, keep_alive: true } => format!("GET {path}"),
            Workload::Http { path, keep_alive: false } => format!("GET {path} (close)"),
            Workload::Echo { msg_size } => format!("echo {msg_size} B"),
        };
        format!("{} conns x {what}, {:?} warm-up + {:?}", self.conns, self.warmup, self.duration)
    }

    /// Whether the rate counts cycles (keep-alive loads) rather than
    /// completions (`Connection: close`); see the module docs.
    fn counts_cycles(&self) -> bool {
        !matches!(self.workload, Workload::Http { keep_alive: false, .. })
    }

    fn check(&self) -> io::Result<()> {
        let invalid = |why: &str| Err(io::Error::new(io::ErrorKind::InvalidInput, why.to_string()));
        if self.conns == 0 {
            return invalid("a load needs at least one connection");
        }
        if self.duration.is_zero() {
            return invalid("a load needs a non-zero duration");
        }
        if self.threads == Some(0) {
            return invalid("a load needs at least one OS thread");
        }
        match &self.workload {
            Workload::Http { path, .. } => HttpExchange::check_path(path),
            Workload::Echo { msg_size: 0 } => invalid("echo messages need at least one byte"),
            Workload::Echo { .. } => Ok(()),
        }
    }
}

/// Keep-alive HTTP load: `conns` connections `GET path` for `warmup +
/// duration`; see the module docs.
///
/// # Errors
///
/// `InvalidInput` for a bad spec; when a client thread or green thread
/// cannot start. Errors of requests are counted, not returned.
pub fn http_load(
    addr: SocketAddr,
    path: &str,
    conns: usize,
    duration: Duration,
    warmup: Duration,
) -> io::Result<LoadResult> {
    run_load(addr, &LoadSpec::http(path, conns, duration).warmup(warmup))
}

/// Echo load: `conns` connections exchange `msg_size`-byte messages for
/// `warmup + duration`; see the module docs.
///
/// # Errors
///
/// As [`http_load`].
pub fn echo_load(
    addr: SocketAddr,
    conns: usize,
    msg_size: usize,
    duration: Duration,
    warmup: Duration,
) -> io::Result<LoadResult> {
    run_load(addr, &LoadSpec::echo(msg_size, conns, duration).warmup(warmup))
}

/// Runs `spec` against `addr`, starting now.
///
/// # Errors
///
/// As [`http_load`].
pub fn run_load(addr: SocketAddr, spec: &LoadSpec) -> io::Result<LoadResult> {
    run_load_in(addr, spec, &Arc::new(spec.timeline()))
}

/// Runs `spec` against `addr` on a given `timeline` (its `warmup`,
/// `duration` and `linger` are ignored), which this call fixes: for
/// callers that sample the server at the window's edges
/// ([`Timeline::wait`]).
///
/// # Errors
///
/// As [`http_load`].
pub fn run_load_in(
    addr: SocketAddr,
    spec: &LoadSpec,
    timeline: &Arc<Timeline>,
) -> io::Result<LoadResult> {
    if let Err(e) = spec.check() {
        timeline.abandon();
        return Err(e);
    }
    let cpus = std::thread::available_parallelism().map_or(1, usize::from);
    let shards = spec.threads.unwrap_or(cpus).clamp(1, spec.conns);
    let mut handles = Vec::with_capacity(shards);
    let mut spawn_error = None;
    let mut first = 0;
    for k in 0..shards {
        let n = spec.conns / shards + usize::from(k < spec.conns % shards);
        let (workload, timeline) = (spec.workload.clone(), timeline.clone());
        let thread = std::thread::Builder::new()
            .name(format!("lab-load-{k}"))
            .spawn(move || shard(addr, &workload, first, n, &timeline));
        first += n;
        match thread {
            Ok(handle) => handles.push(handle),
            Err(e) => {
                spawn_error = Some(e);
                break;
            }
        }
    }
    let window = timeline.fix();
    let late_conns = timeline.unanswered() as u64;
    let mut total = Tally::default();
    let mut failure = spawn_error
        .map(|e| io::Error::new(e.kind(), format!("cannot start a load-generator thread: {e}")));
    for handle in handles {
        match handle.join() {
            Ok(Ok(tally)) => total.merge(tally),
            Ok(Err(e)) => failure = failure.or(Some(e)),
            Err(panic) => {
                let msg = panic_message(&*panic);
                failure =
                    failure.or(Some(io::Error::other(format!("a load thread panicked: {msg}"))));
            }
        }
    }
    match failure {
        Some(e) => Err(e),
        None => {
            let mut result =
                LoadResult::new(spec.conns, total, window.measured(), spec.counts_cycles());
            result.late_conns = late_conns;
            Ok(result)
        }
    }
}

/// Counters of one OS thread's clients, merged at the end.
#[derive(Debug, Default)]
struct Tally {
    latency: Latency,
    /// The latencies of first requests on keep-alive connections, kept
    /// apart (see the module docs); used only when no other was recorded.
    first_latency: Latency,
    requests: u64,
    /// The successful requests' cycles, each by its share inside the
    /// window (see the module docs and [`Window::share`]).
    cycles: f64,
    errors: u64,
    connect_errors: u64,
    unfinished: u64,
    idle_conns: u64,
    connections: u64,
    first_error: Option<String>,
}

impl Tally {
    fn note(&mut self, what: fmt::Arguments<'_>) {
        if self.first_error.is_none() {
            self.first_error = Some(what.to_string());
        }
    }

    fn merge(&mut self, other: Tally) {
        self.latency.merge(&other.latency);
        self.first_latency.merge(&other.first_latency);
        self.requests += other.requests;
        self.cycles += other.cycles;
        self.errors += other.errors;
        self.connect_errors += other.connect_errors;
        self.unfinished += other.unfinished;
        self.idle_conns += other.idle_conns;
        self.connections += other.connections;
        if self.first_error.is_none() {
            self.first_error = other.first_error;
        }
    }
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    match (panic.downcast_ref::<&str>(), panic.downcast_ref::<String>()) {
        (Some(s), _) => (*s).to_string(),
        (_, Some(s)) => s.clone(),
        _ => "(non-string panic payload)".to_string(),
    }
}

/// One OS thread's share: `n` clients (numbered from `first`) on a green
/// runtime of their own.
fn shard(
    addr: SocketAddr,
    workload: &Workload,
    first: usize,
    n: usize,
    timeline: &Arc<Timeline>,
) -> io::Result<Tally> {
    green::Runtime::new().try_run(|| {
        let tally = Rc::new(RefCell::new(Tally::default()));
        let mut clients = Vec::with_capacity(n);
        let mut spawn_error = None;
        for i in first..first + n {
            let (tally, workload, timeline) = (tally.clone(), workload.clone(), timeline.clone());
            let spawned = green::Builder::new()
                .name(format!("lab-client-{i}"))
                .stack_size(CLIENT_STACK_SIZE)
                .spawn(move || match workload {
                    Workload::Http { path, keep_alive } => {
                        client(addr, HttpExchange::new(&path, keep_alive), &timeline, &tally)
                    }
                    Workload::Echo { msg_size } => {
                        client(addr, EchoExchange::new(msg_size), &timeline, &tally)
                    }
                });
            match spawned {
                Ok(handle) => clients.push(handle),
                Err(e) => {
                    spawn_error = Some(io::Error::new(
                        e.kind(),
                        format!("cannot start load client {i}: {e} (fewer connections?)"),
                    ));
                    break;
                }
            }
        }
        // Joined even after a failed spawn: each ends by the window's `give_up`.
        let mut panicked = None;
        for client in clients {
            if let Err(panic) = client.join() {
                panicked = panicked.or(Some(panic_message(&*panic)));
            }
        }
        if let Some(e) = spawn_error {
            return Err(e);
        }
        if let Some(msg) = panicked {
            return Err(io::Error::other(format!("a load client panicked: {msg}")));
        }
        Ok(tally.take())
    })?
}

/// One connection's closed loop (see the module docs).
fn client<E: Exchange>(
    addr: SocketAddr,
    mut proto: E,
    timeline: &Timeline,
    tally: &RefCell<Tally>,
) {
    let mut stream: Option<TcpStream> = None;
    let mut backoff = BACKOFF_MIN;
    let mut recorded = 0u64;
    // Whether the connection has answered nothing yet (see the module docs).
    let mut fresh = true;
    // Whether this client has told the timeline of its first answer.
    let mut answered = false;
    // Where the current cycle began: the previous successful reply.
    let mut cycle_from = None;
    loop {
        let now = Instant::now();
        if timeline.window().is_some_and(|w| now >= w.stop) {
            break;
        }
        let give_up = timeline.give_up();
        let mut conn = match stream.take() {
            Some(conn) => conn,
            None => match client::connect(addr, CONNECT_TIMEOUT.min(give_up - now)) {
                Ok(conn) => {
                    backoff = BACKOFF_MIN;
                    fresh = true;
                    proto.reset();
                    tally.borrow_mut().connections += 1;
                    conn
                }
                Err(e) => {
                    let mut t = tally.borrow_mut();
                    if e.kind() == io::ErrorKind::TimedOut && Instant::now() >= give_up {
                        t.unfinished += 1;
                        break;
                    }
                    t.connect_errors += 1;
                    t.note(format_args!("connect to {addr}: {e}"));
                    drop(t);
                    let stop = timeline.window().map_or(give_up, |w| w.stop);
                    green::sleep(backoff.min(stop.saturating_duration_since(Instant::now())));
                    backoff = (backoff * 2).min(BACKOFF_MAX);
                    continue;
                }
            },
        };
        let sent = Instant::now();
        match proto.exchange(&mut conn, give_up) {
            Ok(reply) => {
                let done = Instant::now();
                if !answered {
                    timeline.answered();
                    answered = true;
                }
                // Not fixed yet: the window opens after `done`.
                let window = timeline.window();
                let mut t = tally.borrow_mut();
                if reply.status != 200 {
                    t.errors += 1;
                    t.note(format_args!("HTTP status {}", reply.status));
                } else if let Some(window) = window {
                    t.cycles += window.share(cycle_from.unwrap_or(sent), done);
                    if done >= window.measure_from && done < window.stop {
                        if fresh && reply.keep_alive {
                            t.first_latency.record(done - sent);
                        } else {
                            t.latency.record(done - sent);
                        }
                        t.requests += 1;
                        recorded += 1;
                    }
                }
                if reply.status == 200 {
                    cycle_from = Some(done);
                }
                fresh = false;
                if reply.keep_alive {
                    stream = Some(conn);
                }
            }
            Err(e) if e.kind() == io::ErrorKind::TimedOut && Instant::now() >= give_up => {
                tally.borrow_mut().unfinished += 1;
                break;
            }
            Err(e) => {
                let mut t = tally.borrow_mut();
                t.errors += 1;
                t.note(format_args!("request: {e}"));
            }
        }
    }
    if recorded == 0 {
        tally.borrow_mut().idle_conns += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_specs_are_refused_before_anything_runs() {
        let d = Duration::from_millis(10);
        let kind = |spec: LoadSpec| spec.check().unwrap_err().kind();
        assert_eq!(kind(LoadSpec::http("/x", 0, d)), io::ErrorKind::InvalidInput);
        assert_eq!(kind(LoadSpec::http("/x", 1, Duration::ZERO)), io::ErrorKind::InvalidInput);
        assert_eq!(kind(LoadSpec::http("x y", 1, d)), io::ErrorKind::InvalidInput);
        assert_eq!(kind(LoadSpec::echo(0, 1, d)), io::ErrorKind::InvalidInput);
        assert_eq!(kind(LoadSpec::echo(1, 1, d).threads(0)), io::ErrorKind::InvalidInput);
        assert!(LoadSpec::echo(1, 1, d).check().is_ok());
    }

    #[test]
    fn only_keep_alive_loads_with_an_answer_wait_wait_for_answers() {
        let d = Duration::from_millis(10);
        let wait = |spec: &LoadSpec| spec.timeline().unanswered();
        assert_eq!(wait(&LoadSpec::http("/", 3, d)), 0, "no answer wait by default");
        assert_eq!(wait(&LoadSpec::http("/", 3, d).answer_wait(d)), 3);
        assert_eq!(wait(&LoadSpec::echo(1, 2, d).answer_wait(d)), 2);
        let close = Workload::Http { path: "/".into(), keep_alive: false };
        let spec = LoadSpec { workload: close, ..LoadSpec::http("/", 3, d).answer_wait(d) };
        assert_eq!(wait(&spec), 0, "a close load's requests are all firsts");
    }

    #[test]
    fn keep_alive_rates_count_cycles_close_rates_count_completions() {
        let tally = || Tally { requests: 6, cycles: 6.86, ..Tally::default() };
        let r = LoadResult::new(1, tally(), Duration::from_millis(700), true);
        assert!((r.req_per_s - 9.8).abs() < 1e-9, "{}", r.req_per_s);
        assert_eq!((r.requests, r.served), (6, 6.86));
        let r = LoadResult::new(1, tally(), Duration::from_millis(700), false);
        assert!((r.req_per_s - 6.0 / 0.7).abs() < 1e-9, "{}", r.req_per_s);
        assert!(LoadSpec::http("/", 1, Duration::from_secs(1)).counts_cycles());
        assert!(LoadSpec::echo(1, 1, Duration::from_secs(1)).counts_cycles());
        let close = Workload::Http { path: "/".into(), keep_alive: false };
        assert!(
            !LoadSpec { workload: close, ..LoadSpec::echo(1, 1, Duration::from_secs(1)) }
                .counts_cycles()
        );
    }

    #[test]
    fn tallies_of_threads_merge_into_one_result() {
        let mut a =
            Tally { requests: 2, cycles: 1.5, errors: 1, connections: 1, ..Tally::default() };
        a.latency.record(Duration::from_millis(10));
        a.latency.record(Duration::from_millis(20));
        let mut b =
            Tally { requests: 2, cycles: 2.5, idle_conns: 1, unfinished: 3, ..Tally::default() };
        b.note(format_args!("first"));
        b.note(format_args!("second"));
        b.latency.record(Duration::from_millis(30));
        b.latency.record(Duration::from_millis(40));
        a.merge(b);
        let r = LoadResult::new(5, a, Duration::from_secs(2), false);
        assert_eq!((r.requests, r.errors, r.unfinished, r.idle_conns), (4, 1, 3, 1));
        assert_eq!(r.latency.count(), 4);
        assert_eq!((r.req_per_s, r.served), (2.0, 4.0));
        assert_eq!(r.first_error.as_deref(), Some("first"));
        let ms = |d: Duration| (d.as_secs_f64() * 1e3).round();
        assert_eq!((ms(r.p50), ms(r.max)), (20.0, 40.0));
        let json = serde_json::to_value(&r).unwrap();
        assert_eq!(json["p50_ms"].as_f64().map(f64::round), Some(20.0));
        assert_eq!(json["elapsed_s"], 2.0);
        assert!(json.get("latency").is_none());
    }

    #[test]
    fn first_requests_stand_for_the_run_only_when_nothing_else_was_recorded() {
        let mut a = Tally { requests: 2, ..Tally::default() };
        a.first_latency.record(Duration::from_millis(900));
        a.latency.record(Duration::from_millis(100));
        let r = LoadResult::new(2, a, Duration::from_secs(1), true);
        assert_eq!(r.latency.count(), 1);
        assert!(r.max < Duration::from_millis(101), "the first request's 900 ms is left out");
        let mut slow = Tally { requests: 1, ..Tally::default() };
        slow.first_latency.record(Duration::from_millis(900));
        let r = LoadResult::new(1, slow, Duration::from_secs(1), true);
        assert_eq!(r.latency.count(), 1);
        assert!(r.p50 >= Duration::from_millis(899), "{:?}", r.p50);
    }
}
