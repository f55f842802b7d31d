//! C6 and C7: keep-alive sleep requests at growing concurrency.
//!
//! The sleep here is 100 ms at every scale: it is the I/O wait per
//! request, not what makes the run long (the window does), and a shorter
//! one would turn 1,000 connections into a CPU benchmark of the single
//! server CPU.

use std::io;
use std::time::Duration;

use super::servers::sleep_close;
use super::{Ctx, Holds, Verdict, errors_note, find, num};
use crate::lab::measure::Run;
use crate::lab::rlimit;

/// C6/C7: the I/O wait of each request (not scaled; see the module docs).
pub const C6_SLEEP: Duration = Duration::from_millis(100);
/// C6: the connection counts swept (capped by the open-file limit).
pub const C6_CONNS: [usize; 4] = [1, 10, 100, 1000];
/// C6: threads (a thread per connection), green, stackless.
pub const C6_CELLS: [&str; 3] =
    ["threads-blocking-sleep", "green-blocking-sleep", "stackless-async-sleep"];
/// C6: "within ~10%" at 1 connection: the fastest's req/s at most this
/// factor above the slowest's.
pub const C6_SAME_AT_ONE: f64 = 1.10;
/// C6: an "advantage" at the top: green's and stackless's req/s at least
/// this factor above the threads'.
pub const C6_ADVANTAGE: f64 = 1.10;
/// C7: the two cells: unchanged blocking code on green, async on stackless.
pub const C7_CELLS: [&str; 2] = ["green-blocking-sleep", "stackless-async-sleep"];
/// C7: connections.
pub const C7_CONNS: usize = 1000;
/// C7: "the same req/s": within this fraction.
pub const C7_SAME: f64 = 0.05;
/// C7: "partly": within this fraction.
pub const C7_CLOSE: f64 = 0.15;

/// `conns` capped by what the open-file limit lets one process hold.
fn capped(conns: usize) -> usize {
    let max = rlimit::nofile_limit().map_or(conns, |(soft, _)| rlimit::max_connections(soft));
    conns.min(max.max(1))
}

pub(super) fn c6_measure(ctx: &Ctx<'_>, _: &[Run]) -> io::Result<Vec<Run>> {
    let mut runs = Vec::new();
    for conns in C6_CONNS.map(capped) {
        for spec in C6_CELLS {
            runs.push(sleep_close(ctx, spec, conns, C6_SLEEP, true, C6_SLEEP * 2)?);
        }
    }
    Ok(runs)
}

/// C6's evaluation: within [`C6_SAME_AT_ONE`] at 1 connection, and green
/// and stackless ahead of threads by [`C6_ADVANTAGE`] at the most.
pub fn c6_evaluate(runs: &[Run]) -> Verdict {
    let (Some(lo), Some(hi)) =
        (runs.iter().map(|r| r.conns).min(), runs.iter().map(|r| r.conns).max())
    else {
        return Verdict::missing("the sweep");
    };
    let rates = |conns: usize| -> Option<Vec<f64>> {
        C6_CELLS.iter().map(|spec| find(runs, spec, Some(conns)).map(|r| r.req_per_s)).collect()
    };
    let (Some(low), Some(high)) = (rates(lo), rates(hi)) else {
        return Verdict::missing("a runtime in the sweep");
    };
    let min = low.iter().copied().fold(f64::INFINITY, f64::min);
    let max = low.iter().copied().fold(0.0, f64::max);
    let same = min > 0.0 && max / min <= C6_SAME_AT_ONE;
    let advantage = high[1..].iter().all(|&r| r >= high[0] * C6_ADVANTAGE);
    let holds = Holds::of_parts(usize::from(same) + usize::from(advantage), 2);
    let fmt = |v: &[f64]| v.iter().map(|x| num(*x)).collect::<Vec<_>>().join("/");
    let p99: Vec<f64> =
        C6_CELLS.iter().filter_map(|spec| find(runs, spec, Some(hi)).map(|r| r.p99_ms)).collect();
    let idle: u64 = runs.iter().filter(|r| r.conns == hi).map(|r| r.idle_conns).sum();
    let idle = if idle > 0 { format!("; {idle} conns idle at {hi}") } else { String::new() };
    Verdict::new(
        holds,
        format!(
            "req/s threads/green/stackless at {lo} conn: {} (spread {}%{}), at {hi}: {} (p99 {} ms; {}){}{}",
            fmt(&low),
            num((max / min.max(1e-9) - 1.0) * 100.0),
            if same { "" } else { ", not within 10%" },
            fmt(&high),
            fmt(&p99),
            if advantage { "green and stackless ahead" } else { "no advantage over threads" },
            idle,
            errors_note(runs)
        ),
    )
}

pub(super) fn c7_measure(ctx: &Ctx<'_>, earlier: &[Run]) -> io::Result<Vec<Run>> {
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
    C7_CELLS
        .iter()
        .map(|spec| sleep_close(ctx, spec, conns, C6_SLEEP, true, C6_SLEEP * 2))
        .collect()
}

/// C7's evaluation: green-blocking's req/s within [`C7_SAME`] of
/// stackless-async's (within [`C7_CLOSE`]: partly).
pub fn c7_evaluate(runs: &[Run]) -> Verdict {
    let (Some(green), Some(stackless)) =
        (find(runs, C7_CELLS[0], None), find(runs, C7_CELLS[1], None))
    else {
        return Verdict::missing("green-blocking or stackless-async");
    };
    let diff = (green.req_per_s / stackless.req_per_s.max(1e-9) - 1.0).abs();
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
