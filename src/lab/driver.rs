//! [`run`]: the claim-driven lab, the whole of `cargo run --release
//! --example lab`.

use std::io;
use std::time::Instant;

use super::claims::{self, Options};
use super::report::{ClaimReport, Machine, Report};
use super::{affinity, rlimit};

/// Runs every selected claim (see [`claims`]) and writes `report.json`,
/// `report.md` (and the charts, when enabled) into `opts.out_dir`. A
/// progress bar goes to stderr when `opts.progress` is set. Servers are
/// started by re-executing the current binary with `--serve` (see
/// [`ServerProc`](super::ServerProc)), so every claim but
/// `C2_two_tasks` needs a binary that handles it, such as the lab example.
///
/// # Errors
///
/// When the open-file limit cannot be read or the report cannot be
/// written. A claim whose measurement fails does not fail the run: its
/// verdict is `unknown`, with the error.
pub fn run(opts: &Options) -> io::Result<Report> {
    let started = Instant::now();
    // Before any pinning narrows the set this process may run on.
    affinity::allowed_cpus()?;
    rlimit::raise_nofile_limit()?;
    let mut machine = Machine::probe(opts);
    let bar = if opts.progress {
        let bar = indicatif::ProgressBar::new(claims::total_steps(opts));
        let style = indicatif::ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} {wide_msg}",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar());
        bar.set_style(style);
        bar.enable_steady_tick(std::time::Duration::from_millis(120));
        bar
    } else {
        indicatif::ProgressBar::hidden()
    };
    let outcome = claims::run_claims(opts, &bar);
    bar.finish_and_clear();
    machine.wall_s = started.elapsed().as_secs_f64();
    let claims = outcome
        .verdicts
        .into_iter()
        .map(|(id, v, seconds)| ClaimReport {
            id: id.id().into(),
            holds: v.holds,
            summary: v.summary,
            measured: id.claim().measured.into(),
            thresholds: (id.claim().thresholds)(),
            seconds,
        })
        .collect();
    let report = Report { machine, claims, runs: outcome.runs };
    report.write(&opts.out_dir)?;
    if opts.charts {
        super::charts::draw(&report, &opts.out_dir)?;
    }
    Ok(report)
}
