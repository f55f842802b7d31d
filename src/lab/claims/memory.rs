//! C8: what a connection and a unit of concurrency cost.
//!
//! * **Idle connections.** The server is started, its RSS read (the
//!   baseline); then N connections are opened, each sends one `GET
//!   /sleep?ms=1` (so the server has served it and holds it as an idle
//!   keep-alive connection, buffers allocated), all replies are read, and
//!   the RSS is read again: (RSS − baseline) / N is the memory one idle
//!   connection costs. N is 10,000, or what the open-file limit lets one
//!   process hold (the summary says which).
//! * **Spawn + join and switch.** criterion's estimates when
//!   `target/criterion/{spawn_join,yield}/<impl>/new/estimates.json` exist
//!   (`cargo bench --bench scheduler`), else a short inline loop; each row
//!   says which in its `note`. OS threads have no criterion switch figure:
//!   theirs is always inline, a ping-pong of two threads over channels.

use std::hint::black_box;
use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use greenloop_runtime::{green, task};

use super::{Ctx, Holds, Verdict, num};
use crate::lab::cell::Cell;
use crate::lab::estimates;
use crate::lab::measure::Run;
use crate::lab::server::ServerProc;
use crate::lab::{affinity, rlimit};

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
/// Inline loop lengths: spawns of green threads and tasks, of OS threads,
/// and switches.
const SPAWNS: u32 = 20_000;
const THREAD_SPAWNS: u32 = 1_000;
const SWITCHES: u32 = 50_000;

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
    run.extra.insert("rss_kib_per_conn".into(), rss.saturating_sub(base) as f64 / n as f64);
    ctx.done();
    Ok(run)
}

/// criterion's mean estimate of `group/bench`, ns, if present and readable.
fn criterion_ns(dir: Option<&Path>, group: &str, bench: &str) -> Option<f64> {
    estimates::read_estimate(dir?, group, bench).ok().flatten().map(|e| e.ns_per_op())
}

fn per_op(took: Duration, ops: u32) -> f64 {
    took.as_secs_f64() * 1e9 / f64::from(ops)
}

fn inline_spawn(runtime: &str) -> io::Result<f64> {
    Ok(match runtime {
        "threads" => {
            let start = Instant::now();
            for _ in 0..THREAD_SPAWNS {
                let ok = std::thread::spawn(|| black_box(1u64)).join().is_ok();
                black_box(ok);
            }
            per_op(start.elapsed(), THREAD_SPAWNS)
        }
        "green" => green::Runtime::new().try_run(|| {
            black_box(green::spawn(|| black_box(1u64)).join().is_ok());
            let start = Instant::now();
            for _ in 0..SPAWNS {
                black_box(green::spawn(|| black_box(1u64)).join().is_ok());
            }
            per_op(start.elapsed(), SPAWNS)
        })?,
        _ => task::Runtime::new()?.block_on(async {
            let start = Instant::now();
            for _ in 0..SPAWNS {
                black_box(task::spawn(async { black_box(1u64) }).await.is_ok());
            }
            per_op(start.elapsed(), SPAWNS)
        }),
    })
}

fn inline_switch(runtime: &str) -> io::Result<f64> {
    let half = SWITCHES / 2;
    Ok(match runtime {
        "threads" => {
            let (to_b, from_a) = mpsc::sync_channel::<u32>(0);
            let (to_a, from_b) = mpsc::sync_channel::<u32>(0);
            let start = Instant::now();
            let b = std::thread::spawn(move || {
                while let Ok(x) = from_a.recv() {
                    if to_a.send(x).is_err() {
                        break;
                    }
                }
            });
            for i in 0..half {
                if to_b.send(i).is_err() || from_b.recv().is_err() {
                    break;
                }
            }
            drop(to_b);
            let _ = b.join();
            per_op(start.elapsed(), SWITCHES)
        }
        "green" => green::Runtime::new().try_run(|| {
            let start = Instant::now();
            let spin = move || (0..half).for_each(|_| green::yield_now());
            let (a, b) = (green::spawn(spin), green::spawn(spin));
            black_box(a.join().is_ok() && b.join().is_ok());
            per_op(start.elapsed(), SWITCHES)
        })?,
        _ => task::Runtime::new()?.block_on(async move {
            let start = Instant::now();
            let spin = move || async move {
                for _ in 0..half {
                    task::yield_now().await;
                }
            };
            let (a, b) = (task::spawn(spin()), task::spawn(spin()));
            black_box(a.await.is_ok() && b.await.is_ok());
            per_op(start.elapsed(), SWITCHES)
        }),
    })
}

fn cost_runs(ctx: &Ctx<'_>) -> io::Result<Vec<Run>> {
    ctx.step("spawn+join and switch costs");
    let dir = ctx.opts.criterion_dir.as_deref();
    let one_cpu = affinity::plan()
        .map_or_else(String::new, |p| format!(", pinned to {} client CPU(s)", p.client.len()));
    let mut runs = Vec::new();
    for (runtime, bench) in [("threads", "thread"), ("green", "green"), ("stackless", "stackless")]
    {
        let style = if runtime == "stackless" { "async" } else { "blocking" };
        for (variant, group) in [("spawn_join", "spawn_join"), ("switch", "yield")] {
            let (ns, source) = match criterion_ns(dir, group, bench) {
                Some(ns) => (ns, format!("criterion {group}/{bench}")),
                None if variant == "spawn_join" => {
                    (inline_spawn(runtime)?, format!("inline{one_cpu}"))
                }
                None => (inline_switch(runtime)?, format!("inline{one_cpu}")),
            };
            let mut run = Run::figure(ctx.claim.id(), runtime, style, variant);
            run.note = Some(source);
            run.extra.insert("ns_per_op".into(), ns);
            runs.push(run);
        }
    }
    ctx.done();
    Ok(runs)
}

pub(super) fn c8_measure(ctx: &Ctx<'_>, _: &[Run]) -> io::Result<Vec<Run>> {
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
    Ok(runs)
}

/// C8's evaluation: a thread per connection costs [`C8_MEMORY_RATIO`]×
/// the memory per idle connection of green and stackless, and
/// [`C8_SPAWN_RATIO`]× their spawn + join.
pub fn c8_evaluate(runs: &[Run]) -> Verdict {
    let idle = |rt: &str| {
        runs.iter()
            .find(|r| r.runtime == rt && r.variant.as_deref() == Some("idle"))
            .and_then(|r| r.get("rss_kib_per_conn"))
    };
    let cost = |rt: &str, v: &str| {
        runs.iter()
            .find(|r| r.runtime == rt && r.variant.as_deref() == Some(v))
            .and_then(|r| r.get("ns_per_op"))
    };
    let (Some(t), Some(g), Some(s)) = (idle("threads"), idle("green"), idle("stackless")) else {
        return Verdict::missing("idle connections of threads, green and stackless");
    };
    let (Some(ts), Some(gs), Some(ss)) = (
        cost("threads", "spawn_join"),
        cost("green", "spawn_join"),
        cost("stackless", "spawn_join"),
    ) else {
        return Verdict::missing("spawn+join costs");
    };
    let memory = t >= C8_MEMORY_RATIO * g.max(s);
    let spawn = ts >= C8_SPAWN_RATIO * gs.max(ss);
    let n = runs.iter().find(|r| r.variant.as_deref() == Some("idle")).map_or(0, |r| r.conns);
    let tokio = idle("tokio").map_or_else(String::new, |k| format!(", tokio {}", num(k)));
    let switch = |rt: &str| cost(rt, "switch").map_or_else(|| "-".into(), num);
    let sources: Vec<&str> = runs
        .iter()
        .filter(|r| matches!(r.variant.as_deref(), Some("spawn_join" | "switch")))
        .filter_map(|r| r.note.as_deref()?.split([' ', ',']).next())
        .collect();
    let source = match (sources.contains(&"criterion"), sources.contains(&"inline")) {
        (true, true) => " (criterion + inline)",
        (true, false) => " (criterion)",
        _ => " (inline)",
    };
    Verdict::new(
        Holds::of_parts(usize::from(memory) + usize::from(spawn), 2),
        format!(
            "KiB/idle conn at {n}: threads {}, green {}, stackless {}{tokio}; spawn+join ns: \
             threads {}, green {}, stackless {}; switch ns: {}/{}/{}{source}",
            num(t),
            num(g),
            num(s),
            num(ts),
            num(gs),
            num(ss),
            switch("threads"),
            switch("green"),
            switch("stackless"),
        ),
    )
}
