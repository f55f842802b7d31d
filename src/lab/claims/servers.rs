//! C1, C3, C4: sleeping requests against pools, loops and green threads.
//!
//! All three ask `GET /sleep?ms=S` with `Connection: close`: a new
//! connection per request, so a server that cannot take a connection yet
//! makes it queue, and the queueing shows in the latencies (with
//! keep-alive, a pool of W threads would serve W connections forever and
//! leave the others idle, which hides it).

use std::io;
use std::time::Duration;

use super::served::{Queueing, gate};
use super::{Claim, Ctx, Holds, Verdict, errors_note, find, monitored, num, sleep_ms};
use crate::lab::cell::Cell;
use crate::lab::load::{LoadSpec, Workload};
use crate::lab::measure::Run;

/// [`sleep_close`] on each of `cells` in turn, a new connection per
/// request, in the run's default window.
pub(super) fn sleep_close_each(
    ctx: &Ctx<'_>,
    cells: &[&str],
    conns: usize,
    sleep: Duration,
) -> io::Result<Vec<Run>> {
    cells.iter().map(|spec| sleep_close(ctx, spec, conns, sleep, false, sleep, None)).collect()
}

/// A sleep load of `conns` connections asking for `sleep` each, closing
/// after each response unless `keep_alive`, measured for `window` (the
/// run's default when `None`); `sleep_ms` is recorded on the run.
pub(super) fn sleep_close(
    ctx: &Ctx<'_>,
    spec: &str,
    conns: usize,
    sleep: Duration,
    keep_alive: bool,
    slowest: Duration,
    window: Option<Duration>,
) -> io::Result<Run> {
    let cell = Cell::parse_spec(spec)?;
    let workload = Workload::Http { path: format!("/sleep?ms={}", sleep.as_millis()), keep_alive };
    let mut load = ctx
        .load(LoadSpec { workload, ..LoadSpec::http("/", conns, Duration::from_secs(1)) }, slowest);
    if let Some(window) = window {
        load.duration = window;
    }
    let mut run = ctx.measure(&cell, &load)?;
    run.extra.insert("sleep_ms".into(), sleep.as_secs_f64() * 1e3);
    Ok(run)
}

// ---------------------------------------------------------------- C1

/// C1: clients, each asking for one sleep at a time.
pub const C1_CONNS: usize = 100;
/// C1: the pool's threads (gunicorn's default shape).
pub const C1_POOL: usize = 4;
/// C1: the seed's sleep (scaled by `--scale`).
pub const C1_SLEEP: Duration = Duration::from_millis(1000);
/// C1: the cells, the pool first.
pub const C1_CELLS: [&str; 4] = [
    "threads-blocking-sleep-w4",
    "threads-blocking-sleep",
    "green-blocking-sleep",
    "stackless-async-sleep",
];
/// C1: the pool "queues" when its req/s stays at most this factor above
/// W / sleep (the most W threads can do) ...
pub const C1_POOL_RATE_SLACK: f64 = 1.25;
/// ... and its median latency is at least this many sleeps.
pub const C1_POOL_P50_SLEEPS: f64 = 2.0;
/// C1: a runtime "serves all at once" when its req/s reaches this
/// fraction of conns / sleep ...
pub const C1_ALL_AT_ONCE: f64 = 0.7;
/// ... and its median latency is at most this many sleeps.
pub const C1_P50_SLEEPS: f64 = 1.5;

/// C1: a pool of W threads queues sleeping requests; threads, green
/// threads and tasks serve them all at once.
pub(super) const SLEEP_QUEUE: Claim = Claim {
    id: "C1_sleep_queue",
    measured: "100 conns × GET /sleep (close): pool W=4 vs threads/green/stackless",
    measure: measure_sleep_queue,
    evaluate: judge_sleep_queue,
    thresholds: || {
        format!(
            "pool queues: req/s ≤ {C1_POOL_RATE_SLACK}×W/sleep and p50 ≥ {C1_POOL_P50_SLEEPS} \
             sleeps; others at once: req/s ≥ {C1_ALL_AT_ONCE}×conns/sleep and p50 ≤ \
             {C1_P50_SLEEPS} sleeps; every run served (see served.rs)"
        )
    },
    steps: |_| C1_CELLS.len() as u64,
};

fn measure_sleep_queue(ctx: &Ctx<'_>, _: &[Run]) -> io::Result<Vec<Run>> {
    sleep_close_each(ctx, &C1_CELLS, C1_CONNS, ctx.opts.scaled(C1_SLEEP))
}

/// C1's evaluation: the pool queues (req/s ≈ W / sleep, p50 of several
/// sleeps) while the three others serve every client at once (req/s ≈
/// conns / sleep, p50 ≈ one sleep).
pub fn judge_sleep_queue(runs: &[Run]) -> Verdict {
    let Some(pool) = find(runs, C1_CELLS[0], None) else {
        return Verdict::missing(C1_CELLS[0]);
    };
    if let Some(v) = gate([pool], Queueing::Judged) {
        return v;
    }
    let Some(sleep) = sleep_ms(pool) else { return Verdict::missing("sleep_ms") };
    let workers = pool.workers.unwrap_or(C1_POOL) as f64;
    let pool_cap = workers * 1e3 / sleep;
    let queues = pool.req_per_s <= pool_cap * C1_POOL_RATE_SLACK
        && pool.p50_ms >= C1_POOL_P50_SLEEPS * sleep;
    let mut at_once = Vec::new();
    let mut parts = Vec::new();
    for spec in &C1_CELLS[1..] {
        let Some(r) = find(runs, spec, None) else { return Verdict::missing(spec) };
        if let Some(v) = gate([r], Queueing::Judged) {
            return v;
        }
        let all = r.conns as f64 * 1e3 / sleep;
        let ok = r.req_per_s >= C1_ALL_AT_ONCE * all && r.p50_ms <= C1_P50_SLEEPS * sleep;
        at_once.push(ok);
        parts.push(format!(
            "{} {} req/s p50 {} ms{}",
            r.runtime,
            num(r.req_per_s),
            num(r.p50_ms),
            if ok { "" } else { " (not at once)" }
        ));
    }
    let serving = at_once.iter().filter(|ok| **ok).count();
    // The claim is the contrast: without a queueing pool it fails.
    let holds = match (queues, serving) {
        (true, n) if n == at_once.len() => Holds::Yes,
        (true, n) if n > 0 => Holds::Partly,
        _ => Holds::No,
    };
    Verdict::new(
        holds,
        format!(
            "pool W={} {} req/s (cap {}), p50 {} ms = {} sleeps{}; {}{}",
            workers,
            num(pool.req_per_s),
            num(pool_cap),
            num(pool.p50_ms),
            num(pool.p50_ms / sleep),
            if queues { "" } else { " (does not queue)" },
            parts.join(", "),
            errors_note(runs)
        ),
    )
}

// ---------------------------------------------------------------- C3

/// C3: clients.
pub const C3_CONNS: usize = 10;
/// C3: the seed's sleep (scaled).
pub const C3_SLEEP: Duration = Duration::from_millis(1000);
/// C3: the blocking handler inline in a task, the same offloaded, on green.
pub const C3_CELLS: [&str; 3] =
    ["stackless-blocking-sleep-inline", "stackless-blocking-sleep-pool", "green-blocking-sleep"];
/// C3: "serialized" means req/s at most this factor above 1 / sleep.
pub const C3_SERIAL_SLACK: f64 = 1.25;
/// C3: "not serialized" means req/s at least this fraction of conns / sleep.
pub const C3_CONCURRENT: f64 = 0.7;
/// C3: the inline cell runs with the blocked-loop monitor on at this
/// share of the sleep, so that every blocking handler is an episode it
/// reports (naming the task and its spawn site; see `monitored.rs`).
pub const C3_MONITOR_SHARE: f64 = 0.25;

/// C3: a blocking call inside a task serializes the executor; offloaded,
/// or on green threads, it does not.
pub(super) const BLOCKING_IN_ASYNC: Claim = Claim {
    id: "C3_blocking_in_async",
    measured: "blocking sleep in a stackless task: inline vs pool vs green",
    measure: measure_blocking_in_async,
    evaluate: judge_blocking_in_async,
    thresholds: || {
        format!(
            "inline req/s ≤ {C3_SERIAL_SLACK}/sleep; pool and green req/s ≥ \
             {C3_CONCURRENT}×conns/sleep; every run served"
        )
    },
    steps: |_| C3_CELLS.len() as u64,
};

fn measure_blocking_in_async(ctx: &Ctx<'_>, _: &[Run]) -> io::Result<Vec<Run>> {
    let sleep = ctx.opts.scaled(C3_SLEEP);
    let monitored = ctx.monitored(sleep.mul_f64(C3_MONITOR_SHARE));
    C3_CELLS
        .iter()
        .map(|spec| {
            let ctx = if *spec == C3_CELLS[0] { &monitored } else { ctx };
            sleep_close(ctx, spec, C3_CONNS, sleep, false, sleep, None)
        })
        .collect()
}

/// The shape C3 and C9 judge: the first of some cells serves one request
/// at a time (req/s at most [`C3_SERIAL_SLACK`] / sleep), the others all
/// at once (req/s at least [`C3_CONCURRENT`] × conns / sleep).
pub(super) struct OneVsAll<'r> {
    /// The cells' runs, in the order asked for.
    pub rows: Vec<&'r Run>,
    /// req/s one request at a time: 1 / sleep.
    pub one_at_a_time: f64,
    /// req/s all at once: the first run's conns / sleep.
    pub all_at_once: f64,
    /// Whether the claim holds: every part, some, or none.
    pub holds: Holds,
}

impl<'r> OneVsAll<'r> {
    /// Judges `cells`' runs among `runs`; a verdict instead if a run is
    /// missing, failed the served gate, or has no sleep.
    pub fn judge(runs: &'r [Run], cells: &[&str]) -> Result<Self, Verdict> {
        let rows = cells
            .iter()
            .map(|spec| find(runs, spec, None).ok_or_else(|| Verdict::missing(spec)))
            .collect::<Result<Vec<_>, _>>()?;
        if let Some(v) = gate(rows.iter().copied(), Queueing::Judged) {
            return Err(v);
        }
        let (first, others) = rows.split_first().ok_or_else(|| Verdict::missing("cells"))?;
        let sleep = sleep_ms(first).ok_or_else(|| Verdict::missing("sleep_ms"))?;
        let one_at_a_time = 1e3 / sleep;
        let all_at_once = first.conns as f64 * 1e3 / sleep;
        let serialized = first.req_per_s <= one_at_a_time * C3_SERIAL_SLACK;
        let concurrent = others
            .iter()
            .filter(|r| r.req_per_s >= C3_CONCURRENT * r.conns as f64 * 1e3 / sleep)
            .count();
        let holds = Holds::of_parts(usize::from(serialized) + concurrent, rows.len());
        Ok(Self { rows, one_at_a_time, all_at_once, holds })
    }
}

/// C3's evaluation: inline, the executor serves one request at a time
/// (req/s ≈ 1 / sleep); offloaded or on green threads, all at once. The
/// summary quotes the monitor's first report on the inline cell.
pub fn judge_blocking_in_async(runs: &[Run]) -> Verdict {
    let judged = match OneVsAll::judge(runs, &C3_CELLS) {
        Ok(judged) => judged,
        Err(verdict) => return verdict,
    };
    let [inline, pool, green] = judged.rows[..] else { return Verdict::missing("C3 cells") };
    Verdict::new(
        judged.holds,
        format!(
            "inline {} req/s (one at a time = {}), p50 {} ms; pool {} req/s, green {} req/s \
             (all at once = {}){}{}",
            num(inline.req_per_s),
            num(judged.one_at_a_time),
            num(inline.p50_ms),
            num(pool.req_per_s),
            num(green.req_per_s),
            num(judged.all_at_once),
            errors_note(runs),
            monitored::report_note(inline)
        ),
    )
}

// ---------------------------------------------------------------- C4

/// C4: the offload pool's threads.
pub const C4_POOL: usize = 4;
/// C4: the connection counts: the pool's size, twice, four times.
pub const C4_CONNS: [usize; 3] = [C4_POOL, 2 * C4_POOL, 4 * C4_POOL];
/// C4: the seed's sleep (scaled).
pub const C4_SLEEP: Duration = Duration::from_millis(1000);
/// C4: "helps" up to the pool size: req/s at least this fraction of
/// conns / sleep.
pub const C4_HELPS: f64 = 0.7;
/// C4: "queues" past it: req/s at most this factor above pool / sleep.
pub const C4_QUEUE_SLACK: f64 = 1.25;

/// C4: offloading blocking calls to a bounded pool helps up to the
/// pool's size, then requests queue.
pub(super) const OFFLOAD_RESCUES: Claim = Claim {
    id: "C4_offload_rescues",
    measured: "stackless + pool of 4 threads, conns = 4, 8, 16",
    measure: measure_offload_rescues,
    evaluate: judge_offload_rescues,
    thresholds: || {
        format!(
            "conns ≤ pool: req/s ≥ {C4_HELPS}×conns/sleep; conns > pool: req/s ≤ \
             {C4_QUEUE_SLACK}×pool/sleep; every run served"
        )
    },
    steps: |_| C4_CONNS.len() as u64,
};

fn measure_offload_rescues(ctx: &Ctx<'_>, _: &[Run]) -> io::Result<Vec<Run>> {
    let sleep = ctx.opts.scaled(C4_SLEEP);
    let spec = format!("stackless-blocking-sleep-pool-w{C4_POOL}");
    C4_CONNS
        .iter()
        .map(|&conns| sleep_close(ctx, &spec, conns, sleep, false, sleep, None))
        .collect()
}

/// C4's evaluation: throughput grows with connections up to the pool
/// size, then stays at pool / sleep while latency grows.
pub fn judge_offload_rescues(runs: &[Run]) -> Verdict {
    if runs.is_empty() {
        return Verdict::missing("the pool cell");
    }
    if let Some(v) = gate(runs, Queueing::Judged) {
        return v;
    }
    let mut ok = 0;
    let mut parts = Vec::new();
    let mut pool = C4_POOL;
    for r in runs {
        let Some(sleep) = sleep_ms(r) else { return Verdict::missing("sleep_ms") };
        pool = r.workers.unwrap_or(C4_POOL);
        let good = if r.conns <= pool {
            r.req_per_s >= C4_HELPS * r.conns as f64 * 1e3 / sleep
        } else {
            r.req_per_s <= C4_QUEUE_SLACK * pool as f64 * 1e3 / sleep
        };
        ok += usize::from(good);
        parts.push(format!(
            "{} conns {} req/s p50 {} ms{}",
            r.conns,
            num(r.req_per_s),
            num(r.p50_ms),
            if good { "" } else { " (!)" }
        ));
    }
    let cap = runs.first().and_then(sleep_ms).map_or(0.0, |s| pool as f64 * 1e3 / s);
    Verdict::new(
        Holds::of_parts(ok, runs.len()),
        format!("pool {pool}, cap {} req/s: {}{}", num(cap), parts.join("; "), errors_note(runs)),
    )
}
