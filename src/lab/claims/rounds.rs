//! Alternating rounds: cells measured in turn, several times over, and
//! compared round by round, so that a slow spell of the host weighs on
//! every cell alike.
//!
//! On the shared 2-vCPU VM the same server's CPU per echoed message moves
//! by about 30% from one minute to the next (all cells together: one run
//! had threads at 11 µs and the event loops near 7.8, another 7.9 and
//! 6.3), and a comparison of cells measured a few seconds apart once,
//! each in its own spell, can land on either side of a threshold. Here
//! every server starts once and stays up (pinned like any other; an idle
//! one sleeps in `accept` or `epoll_wait`), then each round loads every
//! cell in turn for a short window, and a figure of one cell is compared
//! with another's *from the same round*. The verdict reads the median of
//! those per-round ratios: a spell that changes within a round spoils
//! that round's ratio, not the median.
//!
//! ```text
//!   start A, B, C (kept up)
//!   round 0: load A, load B, load C     runs with extra "round" = 0
//!   round 1: load A, load B, load C     ...
//!   ratio B/A per round -> median
//! ```

use std::io;
use std::time::Duration;

use super::{Ctx, monitored};
use crate::lab::cell::Cell;
use crate::lab::load::LoadSpec;
use crate::lab::measure::{MONITOR_ENV, Run, measure_at};
use crate::lab::server::{Placement, ServerProc};

/// [`Run::extra`]: the round a run was measured in (a run without it
/// counts as round 0).
pub const ROUND: &str = "round";

/// One cell of a measurement in rounds.
#[derive(Clone, Debug)]
pub(super) struct Entry {
    /// The cell.
    pub cell: Cell,
    /// The servers' blocked-loop monitor threshold, if on.
    pub monitor: Option<Duration>,
}

/// The round `run` was measured in.
pub fn round_of(run: &Run) -> usize {
    run.get(ROUND).map_or(0, |r| r as usize)
}

/// The median of `xs` (the mean of the middle two for an even count);
/// `None` when empty. NaNs sort last.
pub fn median(mut xs: Vec<f64>) -> Option<f64> {
    xs.sort_by(f64::total_cmp);
    let n = xs.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(xs[n / 2]),
        _ => Some((xs[n / 2 - 1] + xs[n / 2]) / 2.0),
    }
}

/// The median of `figure` over the runs `is` picks.
pub fn median_of(
    runs: &[Run],
    is: impl Fn(&Run) -> bool,
    figure: impl Fn(&Run) -> Option<f64>,
) -> Option<f64> {
    median(runs.iter().filter(|r| is(r)).filter_map(figure).collect())
}

/// The median over rounds of `figure(a) / figure(b)`, where `a` and `b`
/// are the runs `is_a` and `is_b` pick in the same round; `None` when no
/// round has both figures (or `b`'s is zero).
pub fn median_ratio(
    runs: &[Run],
    is_a: impl Fn(&Run) -> bool,
    is_b: impl Fn(&Run) -> bool,
    figure: impl Fn(&Run) -> Option<f64>,
) -> Option<f64> {
    let ratios = runs.iter().filter(|a| is_a(a)).filter_map(|a| {
        let b = runs.iter().find(|b| is_b(b) && round_of(b) == round_of(a))?;
        let over = figure(b).filter(|&x| x > 0.0)?;
        Some(figure(a)? / over)
    });
    median(ratios.collect())
}

/// Measures `entries` under `load` in `rounds` rounds (see the module
/// docs): each server started once, placed as [`Placement::for_cell`]
/// says, each round one run of every entry in order, each run labelled
/// with its round (and, monitored, as [`monitored::label`] does).
///
/// # Errors
///
/// When a server cannot start, a load cannot run, `/proc` cannot be read,
/// or a server does not stop cleanly at the end.
pub(super) fn measure(
    ctx: &Ctx<'_>,
    entries: &[Entry],
    load: &LoadSpec,
    rounds: usize,
) -> io::Result<Vec<Run>> {
    let servers = entries
        .iter()
        .map(|e| {
            let ms = e.monitor.map(|t| t.as_millis().max(1).to_string());
            let env: Vec<(&str, &str)> = ms.iter().map(|ms| (MONITOR_ENV, ms.as_str())).collect();
            ServerProc::spawn_env(&e.cell, Placement::for_cell(&e.cell), &env)
        })
        .collect::<io::Result<Vec<_>>>()?;
    let mut runs = Vec::with_capacity(entries.len() * rounds);
    for round in 0..rounds {
        for (entry, server) in entries.iter().zip(&servers) {
            ctx.step(&format!("round {round}: {}, {}", entry.cell, load.describe()));
            let mut run = measure_at(&entry.cell, server.addr(), Some(server.pid()), load)?
                .for_claim(ctx.claim.id());
            run.pinned = server.pinned();
            run.extra.insert(ROUND.into(), round as f64);
            if let Some(threshold) = entry.monitor {
                monitored::label(&mut run, threshold);
            }
            runs.push(run);
            ctx.done();
        }
    }
    for server in servers {
        let label = server.label().to_owned();
        let status = server.stop()?;
        if !status.success() {
            return Err(io::Error::other(format!(
                "server '{label}' did not stop cleanly ({status}) after {rounds} rounds"
            )));
        }
    }
    Ok(runs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians_of_odd_even_and_no_figures() {
        assert_eq!(median(vec![3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(vec![4.0, 1.0, 2.0, 3.0]), Some(2.5));
        assert_eq!(median(vec![]), None);
    }

    fn run(cell: &str, round: usize, figure: f64) -> Run {
        let mut r = Run::figure("E1_echo_cpu", "x", "y", "z");
        r.cell = cell.into();
        r.req_per_s = figure;
        r.extra.insert(ROUND.into(), round as f64);
        r
    }

    #[test]
    fn ratios_pair_runs_of_the_same_round() {
        // The host slows down 1.5× from round 1 on; B costs 0.8× A within
        // every round, whatever the spell, and one round's A is missing.
        let runs = [
            run("a", 0, 10.0),
            run("b", 0, 8.0),
            run("a", 1, 15.0),
            run("b", 1, 12.0),
            run("b", 2, 12.0),
            run("a", 3, 15.0),
            run("b", 3, 12.0),
        ];
        let (is_a, is_b) = (|r: &Run| r.cell == "a", |r: &Run| r.cell == "b");
        let rate = |r: &Run| Some(r.req_per_s);
        assert_eq!(median_ratio(&runs, is_b, is_a, rate), Some(0.8));
        assert_eq!(median_of(&runs, is_b, rate), Some(12.0));
        assert_eq!(median_ratio(&runs, is_b, |r: &Run| r.cell == "c", rate), None);
        // A run without a round is round 0.
        let mut lone = run("a", 0, 10.0);
        lone.extra.clear();
        assert_eq!(round_of(&lone), 0);
        assert_eq!(median_ratio(&[lone, run("b", 0, 9.0)], is_b, is_a, rate), Some(0.9));
    }
}
