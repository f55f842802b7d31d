//! C8: what a connection and a unit of concurrency cost.
//!
//! * **Idle connections.** The server is started, its RSS read (the
//!   baseline); then N connections are opened, each sends one `GET
//!   /sleep?ms=1` (so the server has served it and holds it as an idle
//!   keep-alive connection, buffers allocated), all replies are read, and
//!   the RSS is read again: (RSS − baseline) / N is the memory one idle
//!   connection costs. N is 10,000, or what the open-file limit lets one
//!   process hold (the summary says which).
//! * **Spawn + join and switch**, from criterion or an inline loop (see
//!   `costs.rs`); the verdict lists where each figure came from.
//! * **Parked green threads**, what one costs and how many fit, from the
//!   `hello_green` example where it is built (see `parked.rs`); quoted,
//!   not judged.

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use super::costs::{Cost, CostRuntime, cost_runs};
use super::parked::{PARKED, parked_run, parked_summary};
use super::{Claim, Ctx, Holds, Verdict, num};
use crate::lab::cell::Cell;
use crate::lab::measure::Run;
use crate::lab::rlimit;
use crate::lab::server::ServerProc;

/// C8: the idle connections asked for at full scale (`--full`); scaled
/// runs ask for this × scale, at least [`C8_MIN_CONNS`]: on this lab's
/// machines new loopback connections beyond a few hundred per second lose
/// SYNs and wait a second for the retry, so 10,000 take half a minute.
pub const C8_CONNS: usize = 10_000;
/// C8: the fewest idle connections a scaled run asks for.
pub const C8_MIN_CONNS: usize = 1_000;
/// C8: thread per connection, green, stackless, tokio.
pub const C8_CELLS: [&str; 4] = [
    "threads-blocking-sleep",
    "green-blocking-sleep",
    "stackless-async-sleep",
    "tokio-async-sleep",
];
/// C8's claim, memory half: a thread per connection costs at least this
/// many times the RSS per idle connection of green and of stackless.
pub const C8_MEMORY_RATIO: f64 = 2.0;
/// C8's claim, cost half: a thread's spawn + join costs at least this many
/// times green's and stackless's.
pub const C8_SPAWN_RATIO: f64 = 10.0;
/// C8: a thread per connection costs more memory and more to start than
/// a green thread or a task.
pub(super) const MEMORY: Claim = Claim {
    id: "C8_memory",
    measured: "RSS per idle keep-alive conn; spawn+join and switch costs",
    measure: measure_memory,
    evaluate: judge_memory,
    thresholds: || {
        format!(
            "threads KiB/conn ≥ {C8_MEMORY_RATIO}× green's and stackless's; threads spawn+join \
             ≥ {C8_SPAWN_RATIO}× theirs; RSS grew and every cost measured, else unknown"
        )
    },
    steps: |_| C8_CELLS.len() as u64 + 2,
};

/// Threads that open the idle connections: a connect that loses its SYN
/// waits a second before the retry, so they are opened in parallel.
const CONNECTORS: usize = 32;
/// One connect attempt's bound: a lost SYN is retried by the kernel only
/// after 1 s, a new attempt (a new SYN) is quicker.
const ATTEMPT: Duration = Duration::from_millis(200);
/// Connect attempts per idle connection.
const ATTEMPTS: u32 = 25;

/// Connects to `addr`, trying again after [`ATTEMPT`] without an answer.
fn connect_retrying(addr: std::net::SocketAddr) -> io::Result<TcpStream> {
    let mut last = None;
    for _ in 0..ATTEMPTS {
        match TcpStream::connect_timeout(&addr, ATTEMPT) {
            Ok(s) => return Ok(s),
            Err(e) if e.kind() == io::ErrorKind::TimedOut => last = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last.unwrap_or_else(|| io::Error::from(io::ErrorKind::TimedOut)))
}

/// Opens `n` connections to `addr` (from [`CONNECTORS`] threads), asks one
/// short sleep on each, reads every reply, and returns the connections
/// (idle, kept alive).
fn open_idle(addr: std::net::SocketAddr, n: usize) -> io::Result<Vec<TcpStream>> {
    let per = n.div_ceil(CONNECTORS);
    let connectors: Vec<_> = (0..n)
        .step_by(per.max(1))
        .map(|first| {
            let count = per.min(n - first);
            std::thread::spawn(move || -> io::Result<Vec<TcpStream>> {
                (first..first + count)
                    .map(|i| {
                        let s = connect_retrying(addr)
                            .map_err(|e| io::Error::new(e.kind(), format!("idle conn {i}: {e}")))?;
                        s.set_nodelay(true)?;
                        Ok(s)
                    })
                    .collect()
            })
        })
        .collect();
    let mut conns = Vec::with_capacity(n);
    for c in connectors {
        conns.extend(c.join().map_err(|_| io::Error::other("a connector thread panicked"))??);
    }
    for stream in &mut conns {
        stream.write_all(b"GET /sleep?ms=1 HTTP/1.1\r\nHost: lab\r\n\r\n")?;
    }
    let mut buf = [0u8; 512];
    for (i, stream) in conns.iter_mut().enumerate() {
        stream.set_read_timeout(Some(Duration::from_secs(20)))?;
        let mut got = Vec::new();
        while !got.ends_with(b"\"Done\"}") {
            match stream.read(&mut buf) {
                Ok(0) => return Err(io::Error::other(format!("idle connection {i} closed"))),
                Ok(k) => got.extend_from_slice(&buf[..k]),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    return Err(io::Error::new(e.kind(), format!("idle connection {i}: {e}")));
                }
            }
        }
    }
    Ok(conns)
}

fn idle_run(ctx: &Ctx<'_>, spec: &str, n: usize, capped_note: Option<&str>) -> io::Result<Run> {
    ctx.step(&format!("{spec}: {n} idle connections"));
    let cell = Cell::parse_spec(spec)?;
    let server = ServerProc::spawn(&cell)?;
    std::thread::sleep(Duration::from_millis(100));
    let base = server.rss_kib()?;
    let conns = open_idle(server.addr(), n)?;
    std::thread::sleep(Duration::from_millis(200));
    let rss = server.rss_kib()?;
    drop(conns);
    let pinned = server.pinned();
    let _ = server.stop();
    let mut run = Run::figure(ctx.claim.id(), cell.runtime.name(), &cell.style.to_string(), "idle");
    run.cell = cell.to_spec();
    run.service = cell.service.name().into();
    run.conns = n;
    run.rss_kib_start = Some(base);
    run.rss_kib = Some(rss);
    run.pinned = pinned;
    run.note = capped_note.map(Into::into);
    run.extra.insert("rss_kib_per_conn".into(), (rss as f64 - base as f64) / n as f64);
    ctx.done();
    Ok(run)
}

fn measure_memory(ctx: &Ctx<'_>, _: &[Run]) -> io::Result<Vec<Run>> {
    let (soft, _) = rlimit::nofile_limit()?;
    let max = rlimit::max_connections(soft);
    let asked =
        ((C8_CONNS as f64 * ctx.opts.effective_scale()) as usize).clamp(C8_MIN_CONNS, C8_CONNS);
    let n = asked.min(max).max(1);
    let note = (n < asked)
        .then(|| format!("capped at {n} connections by RLIMIT_NOFILE {soft} (asked {asked})"));
    let mut runs = Vec::new();
    for spec in C8_CELLS {
        runs.push(idle_run(ctx, spec, n, note.as_deref())?);
    }
    runs.extend(cost_runs(ctx)?);
    runs.extend(parked_run(ctx)?);
    Ok(runs)
}

/// C8's evaluation: a thread per connection costs `C8_MEMORY_RATIO`×
/// the memory per idle connection of green and stackless, and
/// `C8_SPAWN_RATIO`× their spawn + join. An idle row whose RSS did not
/// grow, or a cost that is not a positive time, makes it `unknown`.
pub fn judge_memory(runs: &[Run]) -> Verdict {
    let row = |rt: &str, v: &str| {
        runs.iter().find(|r| r.runtime == rt && r.variant.as_deref() == Some(v))
    };
    let mut idle = [0.0; 3];
    let mut spawn = [0.0; 3];
    for (i, rt) in CostRuntime::ALL.into_iter().enumerate() {
        let Some(r) = row(rt.name(), "idle") else {
            return Verdict::missing(&format!("{} idle connections", rt.name()));
        };
        match r.get("rss_kib_per_conn") {
            Some(kib) if kib > 0.0 && r.conns > 0 => idle[i] = kib,
            _ => {
                return Verdict::new(
                    Holds::Unknown,
                    format!("run {} at {} idle conns: its RSS did not grow", r.cell, r.conns),
                );
            }
        }
        let Some(r) = row(rt.name(), Cost::SpawnJoin.variant()) else {
            return Verdict::missing(&format!("{} spawn+join", rt.name()));
        };
        match r.get("ns_per_op") {
            Some(ns) if ns > 0.0 && ns.is_finite() => spawn[i] = ns,
            _ => {
                return Verdict::new(
                    Holds::Unknown,
                    format!("{} spawn+join: no positive time measured", rt.name()),
                );
            }
        }
    }
    let [t, g, s] = idle;
    let [ts, gs, ss] = spawn;
    let memory = t >= C8_MEMORY_RATIO * g.max(s);
    let spawned = ts >= C8_SPAWN_RATIO * gs.max(ss);
    let n = row("threads", "idle").map_or(0, |r| r.conns);
    let tokio = row("tokio", "idle")
        .and_then(|r| r.get("rss_kib_per_conn"))
        .map_or_else(String::new, |k| format!(", tokio {}", num(k)));
    let switch = |rt: CostRuntime| {
        row(rt.name(), Cost::Switch.variant())
            .and_then(|r| r.get("ns_per_op"))
            .map_or_else(|| "-".into(), num)
    };
    // Where each cost came from, rows with the same source together.
    let mut sources: Vec<(&str, Vec<String>)> = Vec::new();
    let costs = |v: &str| v != "idle" && v != PARKED;
    for r in runs.iter().filter(|r| r.variant.as_deref().is_some_and(costs)) {
        let note = r.note.as_deref().unwrap_or("no source noted");
        let row = format!("{} {}", r.runtime, r.variant.as_deref().unwrap_or_default());
        match sources.iter_mut().find(|(n, _)| *n == note) {
            Some((_, rows)) => rows.push(row),
            None => sources.push((note, vec![row])),
        }
    }
    let sources: Vec<String> =
        sources.into_iter().map(|(note, rows)| format!("{}: {note}", rows.join(", "))).collect();
    Verdict::new(
        Holds::of_parts(usize::from(memory) + usize::from(spawned), 2),
        format!(
            "KiB/idle conn at {n}: threads {}, green {}, stackless {}{tokio}; spawn+join ns: \
             threads {}, green {}, stackless {}; switch ns: {}/{}/{}; sources: {}; {}",
            num(t),
            num(g),
            num(s),
            num(ts),
            num(gs),
            num(ss),
            switch(CostRuntime::Threads),
            switch(CostRuntime::Green),
            switch(CostRuntime::Stackless),
            sources.join("; "),
            parked_summary(runs),
        ),
    )
}
