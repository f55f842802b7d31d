//! C6 and C7: keep-alive sleep requests at growing concurrency.
//!
//! The sleep here is 100 ms at every scale: it is the I/O wait per
//! request, not what makes the run long (the window does), and a shorter
//! one would turn 1,000 connections into a CPU benchmark of the single
//! server CPU. Latency figures leave out each connection's first request
//! (its connect and the server's accept queue; see [`crate::lab::load`]).

use std::io;
use std::time::Duration;

use super::served::{Queueing, gate};
use super::servers::sleep_close;
use super::{Claim, ClaimId, Ctx, Holds, Options, Verdict, errors_note, find, num};
use crate::lab::measure::Run;
use crate::lab::rlimit;

/// C6/C7: the I/O wait of each request (not scaled; see the module docs).
pub const C6_SLEEP: Duration = Duration::from_millis(100);
/// C6: the connection counts of the default run (capped by the open-file
/// limit).
pub const C6_CONNS: [usize; 4] = [1, 10, 100, 1000];
/// C6: the counts of `--full`, which adds 10,000: its connects alone take
/// tens of seconds on a 2-CPU machine (a burst of connects loses SYNs,
/// each retried after a second), more than the default run's budget.
pub const C6_CONNS_FULL: [usize; 5] = [1, 10, 100, 1000, 10_000];
/// C6: a thread per connection, green, stackless, and tokio (the
/// reference), in this order (threads first: the baseline).
pub const C6_CELLS: [&str; 4] = [
    "threads-blocking-sleep",
    "green-blocking-sleep",
    "stackless-async-sleep",
    "tokio-async-sleep",
];
/// C6: the seed says the runtimes are "about the same" at one connection:
/// read as within 10%, the fastest's req/s at most this factor above the
/// slowest's.
pub const C6_SAME_AT_ONE: f64 = 1.10;
/// C6: the seed's "async wins at high concurrency": green's and
/// stackless's req/s at least this factor above the threads' (a 10%
/// margin over noise).
pub const C6_ADVANTAGE: f64 = 1.10;
/// C6: each measured window lasts at least this many rounds of
/// [`C6_SLEEP`] per connection, so that 10,000 connections, each asking
/// once per 100 ms, are all seen several times.
pub const C6_MIN_ROUNDS: u32 = 5;
/// C7: the two cells: unchanged blocking code on green, async on stackless.
pub const C7_CELLS: [&str; 2] = ["green-blocking-sleep", "stackless-async-sleep"];
/// C7: connections.
pub const C7_CONNS: usize = 1000;
/// C7: the seed's "the same performance": req/s within this fraction.
pub const C7_SAME: f64 = 0.05;
/// C7: "partly": within this fraction.
pub const C7_CLOSE: f64 = 0.15;

/// C6: at 1 connection all runtimes serve alike; as connections grow,
/// green and stackless pull ahead of a thread per connection.
pub(super) const CONCURRENCY_THRESHOLD: Claim = Claim {
    id: "C6_concurrency_threshold",
    measured: "sleep 100 ms at 1 .. 1000 conns (--full: 10,000): threads, green, stackless, tokio",
    measure: measure_concurrency_threshold,
    evaluate: judge_concurrency_threshold,
    thresholds: || {
        format!(
            "at 1 conn fastest ≤ {C6_SAME_AT_ONE}× slowest; threshold = fewest conns where green \
             and stackless ≥ {C6_ADVANTAGE}× threads; every run served"
        )
    },
    steps: |o| (C6_CELLS.len() * c6_conns(o).len()) as u64,
};

/// C7: unchanged blocking code on green threads serves as well as async
/// code on the stackless executor.
pub(super) const GREEN_FOR_BLOCKING_CODE: Claim = Claim {
    id: "C7_green_for_blocking_code",
    measured: "1000 conns × 100 ms: blocking code on green vs async on stackless",
    measure: measure_green_for_blocking_code,
    evaluate: judge_green_for_blocking_code,
    thresholds: || {
        format!("|green/stackless − 1| ≤ {C7_SAME} (partly: ≤ {C7_CLOSE}); both runs served")
    },
    steps: |o| if o.selects(ClaimId::C6) { 0 } else { C7_CELLS.len() as u64 },
};

/// The connection counts C6 sweeps with `opts`.
pub fn c6_conns(opts: &Options) -> &'static [usize] {
    if opts.full { &C6_CONNS_FULL } else { &C6_CONNS }
}

/// `conns` capped by what the open-file limit lets one process hold.
fn capped(conns: usize) -> usize {
    let max = rlimit::nofile_limit().map_or(conns, |(soft, _)| rlimit::max_connections(soft));
    conns.min(max.max(1))
}

/// The sweep's measured window: the run's, at least [`C6_MIN_ROUNDS`]
/// sleeps.
pub(super) fn sweep_window(opts: &Options) -> Duration {
    (C6_SLEEP * C6_MIN_ROUNDS).max(opts.window())
}

/// One keep-alive sweep step: `spec` at `conns`.
fn sweep_step(ctx: &Ctx<'_>, spec: &str, conns: usize) -> io::Result<Run> {
    sleep_close(ctx, spec, conns, C6_SLEEP, true, C6_SLEEP * 2, Some(sweep_window(ctx.opts)))
}

fn measure_concurrency_threshold(ctx: &Ctx<'_>, _: &[Run]) -> io::Result<Vec<Run>> {
    let mut runs = Vec::new();
    for &asked in c6_conns(ctx.opts) {
        let conns = capped(asked);
        for spec in C6_CELLS {
            let mut run = sweep_step(ctx, spec, conns)?;
            if conns < asked {
                run.note =
                    Some(format!("capped at {conns} conns by RLIMIT_NOFILE (asked {asked})"));
            }
            runs.push(run);
        }
        if conns < asked {
            break;
        }
    }
    Ok(runs)
}

/// The req/s of each of [`C6_CELLS`] at `conns`, in order.
fn rates_at(runs: &[Run], conns: usize) -> Option<Vec<f64>> {
    C6_CELLS.iter().map(|spec| find(runs, spec, Some(conns)).map(|r| r.req_per_s)).collect()
}

/// C6's evaluation: within `C6_SAME_AT_ONE` at the fewest connections,
/// and a threshold in the sweep: the fewest connections past the first
/// from which on green and stackless lead threads by `C6_ADVANTAGE`.
/// A step at which a run served nothing is left out and named (at 10,000
/// connections a thread per connection may not get to serve at all); the
/// fewest connections and one more step must have been served. Tokio's rows are
/// quoted beside them, not judged.
pub fn judge_concurrency_threshold(runs: &[Run]) -> Verdict {
    let mut steps: Vec<usize> = runs.iter().map(|r| r.conns).collect();
    steps.sort_unstable();
    steps.dedup();
    if steps.is_empty() {
        return Verdict::missing("the sweep");
    }
    // A step where a run served nothing is left out, and said so; the
    // fewest connections must have been served.
    let mut left_out = Vec::new();
    let mut served = Vec::new();
    for &conns in &steps {
        match gate(runs.iter().filter(|r| r.conns == conns), Queueing::Judged) {
            Some(v) if served.is_empty() => return v,
            Some(v) => left_out.push(format!("; {conns} conns left out: {}", v.summary)),
            None => served.push(conns),
        }
    }
    let steps = served;
    let (lo, hi) = (steps[0], steps[steps.len() - 1]);
    if steps.len() < 2 {
        return Verdict::new(
            Holds::Unknown,
            format!("only {lo} conns served{}", left_out.concat()),
        );
    }
    let Some(rates) = steps.iter().map(|&c| rates_at(runs, c)).collect::<Option<Vec<_>>>() else {
        return Verdict::missing("a runtime in the sweep");
    };
    let low = &rates[0];
    let min = low.iter().copied().fold(f64::INFINITY, f64::min);
    let max = low.iter().copied().fold(0.0, f64::max);
    let same = max / min <= C6_SAME_AT_ONE;
    let ahead = |r: &[f64]| r[1] >= r[0] * C6_ADVANTAGE && r[2] >= r[0] * C6_ADVANTAGE;
    // The fewest connections past the first from which on (at every
    // higher step too) green and stackless lead.
    let leading = rates.iter().rev().take_while(|r| ahead(r)).count().min(steps.len() - 1);
    let threshold = (leading > 0).then(|| steps[steps.len() - leading]);
    let holds = Holds::of_parts(usize::from(same) + usize::from(threshold.is_some()), 2);
    let fmt = |v: &[f64]| v.iter().map(|x| num(*x)).collect::<Vec<_>>().join("/");
    let at_top: Vec<String> = C6_CELLS
        .iter()
        .filter_map(|spec| find(runs, spec, Some(hi)))
        .map(|r| {
            let mib = r.rss_kib.map_or_else(|| "-".into(), |k| num(k as f64 / 1024.0));
            format!("{} p99 {} ms RSS {mib} MiB", r.runtime, num(r.p99_ms))
        })
        .collect();
    let found = match threshold {
        Some(c) => format!("threshold: {c} conns"),
        None => format!("no threshold up to {hi} conns on this machine"),
    };
    Verdict::new(
        holds,
        format!(
            "req/s threads/green/stackless/tokio at {lo} conn: {} (spread {}%{}); at {hi}: {} \
             ({}); {found}{}{}",
            fmt(low),
            num((max / min - 1.0) * 100.0),
            if same { "" } else { ", not within 10%" },
            fmt(&rates[rates.len() - 1]),
            at_top.join(", "),
            left_out.concat(),
            errors_note(runs)
        ),
    )
}

fn measure_green_for_blocking_code(ctx: &Ctx<'_>, earlier: &[Run]) -> io::Result<Vec<Run>> {
    let conns = capped(C7_CONNS);
    let from_c6: Vec<Run> = C7_CELLS
        .iter()
        .filter_map(|spec| {
            earlier
                .iter()
                .find(|r| r.cell == *spec && r.conns == conns && r.claim.starts_with("C6"))
        })
        .map(|r| {
            let mut r = r.clone().for_claim(ctx.claim.id());
            r.note = Some("reused from C6_concurrency_threshold".into());
            r
        })
        .collect();
    if from_c6.len() == C7_CELLS.len() {
        return Ok(from_c6);
    }
    C7_CELLS.iter().map(|spec| sweep_step(ctx, spec, conns)).collect()
}

/// C7's evaluation: green-blocking's req/s within `C7_SAME` of
/// stackless-async's (within `C7_CLOSE`: partly).
pub fn judge_green_for_blocking_code(runs: &[Run]) -> Verdict {
    let (Some(green), Some(stackless)) =
        (find(runs, C7_CELLS[0], None), find(runs, C7_CELLS[1], None))
    else {
        return Verdict::missing("green-blocking or stackless-async");
    };
    if let Some(v) = gate([green, stackless], Queueing::Judged) {
        return v;
    }
    let diff = (green.req_per_s / stackless.req_per_s - 1.0).abs();
    let holds = if diff <= C7_SAME {
        Holds::Yes
    } else if diff <= C7_CLOSE {
        Holds::Partly
    } else {
        Holds::No
    };
    Verdict::new(
        holds,
        format!(
            "{} conns: green-blocking {} req/s p99 {} ms vs stackless-async {} req/s p99 {} ms \
             ({}% apart){}",
            green.conns,
            num(green.req_per_s),
            num(green.p99_ms),
            num(stackless.req_per_s),
            num(stackless.p99_ms),
            num(diff * 100.0),
            errors_note(runs)
        ),
    )
}
