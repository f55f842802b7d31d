//! The claims of the sync-vs-async debate, each as a measurement and an
//! evaluation (issue 7).
//!
//! A claim is a [`Claim`]: a fixed id (`C1_sleep_queue` ...), a line that
//! says what is measured, a `measure` function that runs the servers (or
//! in-process timings) and returns [`Run`]s labelled with the claim's id,
//! and an `evaluate` function that turns those runs into a [`Verdict`]:
//! [`Holds::Yes`], [`Holds::No`] or [`Holds::Partly`], with a one-line
//! summary quoting the numbers. Evaluations read only the runs (every
//! figure they need, such as the sleep asked for, is in the run's `extra`
//! map), and compare them against thresholds written as constants next to
//! each claim, with a doc comment. Nothing is hard-coded as a result: a
//! claim that the numbers contradict does not hold. Before comparing,
//! every evaluation asks the gate of `served.rs` whether each run it reads
//! served: a run that did not makes the verdict `unknown`, naming it.
//!
//! Registering a claim: a [`ClaimId`] variant, its place in
//! [`ClaimId::ALL`], and one line in `CLAIMS` pointing at the [`Claim`]
//! defined in the claim's own module.
//!
//! ```text
//!  run(&Options)
//!   ├─ for each claim selected: (claim.measure)(&Ctx)  -> Vec<Run>   (progress bar)
//!   │                           (claim.evaluate)(&runs) -> Verdict
//!   └─ Report { machine, claims, runs }  -> table, report.json, report.md, charts
//! ```
//!
//! Durations follow [`Options::scale`]: sleeps of the seeds (1000 ms, 3 s
//! waits) are multiplied by it, and so are the measured windows (with
//! floors), so the default run finishes in about a minute; `--full` runs
//! the seeds' real durations.

mod costs;
mod cpu;
mod inproc;
mod memory;
mod monitored;
mod multicore;
mod options;
mod parked;
mod patched;
mod rounds;
mod seeded;
mod served;
mod servers;
mod sweep;

use std::fmt;
use std::io;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::cell::Cell;
use super::load::{ANSWER_LIMIT, LoadSpec};
use super::measure::{Run, measure_placed};
use super::server::Placement;

pub use costs::{Cost, CostRuntime, criterion_ns};
pub use cpu::{judge_cpu_bound, judge_echo_cpu};
pub use inproc::{WaitKind, judge_two_tasks};
pub use memory::judge_memory;
pub use multicore::{judge_multicore, scaling_steps};
pub use options::Options;
pub use patched::judge_patched_blocking_code;
pub use served::{MAX_ERROR_SHARE, MAX_UNFINISHED_SHARE, Queueing, unserved_reason};
pub use servers::{judge_blocking_in_async, judge_offload_rescues, judge_sleep_queue};
pub use sweep::{c6_conns, judge_concurrency_threshold, judge_green_for_blocking_code};

/// Whether a claim holds on this machine.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Holds {
    /// Every part of the claim is borne out by the numbers.
    Yes,
    /// The numbers contradict the claim.
    No,
    /// Some parts hold, others do not (the summary says which).
    Partly,
    /// It could not be measured (a server failed to start, ...): the
    /// summary holds the error.
    Unknown,
}

impl fmt::Display for Holds {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Holds::Yes => "yes",
            Holds::No => "no",
            Holds::Partly => "partly",
            Holds::Unknown => "unknown",
        })
    }
}

impl Holds {
    /// `Yes` when all `n` parts hold, `No` when none does, else `Partly`.
    pub fn of_parts(holding: usize, n: usize) -> Holds {
        match holding {
            0 => Holds::No,
            h if h >= n => Holds::Yes,
            _ => Holds::Partly,
        }
    }
}

/// The outcome of a claim's evaluation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Verdict {
    /// Whether it holds.
    pub holds: Holds,
    /// One line: why, with the numbers.
    pub summary: String,
}

impl Verdict {
    /// A verdict.
    pub fn new(holds: Holds, summary: impl Into<String>) -> Verdict {
        Verdict { holds, summary: summary.into() }
    }

    /// The verdict of a claim whose runs are missing something.
    pub fn missing(what: &str) -> Verdict {
        Verdict::new(Holds::Unknown, format!("not measured: no run of {what}"))
    }
}

/// The fixed ids of the claims, in report order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ClaimId {
    /// A thread pool queues sleeping requests; the others serve them at once.
    C1,
    /// Two waits: sequential 2×, concurrent 1×.
    C2,
    /// Blocking inside async serializes the executor.
    C3,
    /// Offloading to a bounded pool helps up to its size.
    C4,
    /// CPU-bound handlers gain nothing from green or stackless.
    C5,
    /// At 1 connection all are alike; the advantage appears with concurrency.
    C6,
    /// Blocking-style code on green threads matches async code.
    C7,
    /// Memory per idle connection; spawn and switch costs.
    C8,
    /// Unmodified blocking code on green threads: unpatched vs patched.
    C9,
    /// Echo throughput and server CPU per message.
    E1,
    /// Scaling from one core to all: shards, and tokio's workers.
    S1,
}

impl ClaimId {
    /// Every claim, in report order.
    pub const ALL: [ClaimId; 11] = [
        ClaimId::C1,
        ClaimId::C2,
        ClaimId::C3,
        ClaimId::C4,
        ClaimId::C5,
        ClaimId::C6,
        ClaimId::C7,
        ClaimId::C8,
        ClaimId::C9,
        ClaimId::E1,
        ClaimId::S1,
    ];

    /// The id as the report writes it.
    pub fn id(self) -> &'static str {
        self.claim().id
    }

    /// Its claim.
    pub fn claim(self) -> &'static Claim {
        CLAIMS[self as usize]
    }
}

impl FromStr for ClaimId {
    type Err = io::Error;

    fn from_str(s: &str) -> io::Result<ClaimId> {
        ClaimId::ALL
            .into_iter()
            .find(|c| {
                let id = c.id();
                id.eq_ignore_ascii_case(s)
                    || id.split('_').next().is_some_and(|p| p.eq_ignore_ascii_case(s))
            })
            .ok_or_else(|| {
                let known: Vec<_> = ClaimId::ALL.iter().map(|c| c.id()).collect();
                io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("unknown claim '{s}' (known: {})", known.join(", ")),
                )
            })
    }
}

impl fmt::Display for ClaimId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.id())
    }
}

/// One claim: its id, what it measures, and its two functions.
pub struct Claim {
    /// The fixed id, e.g. `C1_sleep_queue`.
    pub id: &'static str,
    /// What is measured, in one short line.
    pub measured: &'static str,
    /// The measurement: runs labelled with `id`. It receives the runs of
    /// the claims measured before it (C7 reuses C6's).
    measure: fn(&Ctx<'_>, &[Run]) -> io::Result<Vec<Run>>,
    /// The evaluation of the runs.
    pub evaluate: fn(&[Run]) -> Verdict,
    /// The evaluation's thresholds, as text for the report.
    pub thresholds: fn() -> String,
    /// How many progress steps `measure` takes.
    steps: fn(&Options) -> u64,
}

impl fmt::Debug for Claim {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Claim").field("id", &self.id).field("measured", &self.measured).finish()
    }
}

/// The claims, indexed by [`ClaimId`]: one line per claim, each defined
/// next to its measurement and thresholds.
static CLAIMS: [&Claim; 11] = [
    &servers::SLEEP_QUEUE,
    &inproc::TWO_TASKS,
    &servers::BLOCKING_IN_ASYNC,
    &servers::OFFLOAD_RESCUES,
    &cpu::CPU_BOUND,
    &sweep::CONCURRENCY_THRESHOLD,
    &sweep::GREEN_FOR_BLOCKING_CODE,
    &memory::MEMORY,
    &patched::PATCHED_BLOCKING_CODE,
    &cpu::ECHO_CPU,
    &multicore::MULTICORE,
];

/// What a claim's measurement gets: the options and the progress bar.
#[derive(Debug)]
pub struct Ctx<'a> {
    /// The options.
    pub opts: &'a Options,
    bar: &'a indicatif::ProgressBar,
    claim: ClaimId,
    /// The servers' blocked-loop monitor threshold, if on (`monitored.rs`).
    monitor: Option<Duration>,
}

impl Ctx<'_> {
    /// Shows `what` as the current step.
    fn step(&self, what: &str) {
        self.bar.set_message(format!("{}: {what}", self.claim.id()));
    }

    /// Marks one step done.
    fn done(&self) {
        self.bar.inc(1);
    }

    /// Measures `cell` under `load` as one step, labelled with this claim.
    ///
    /// # Errors
    ///
    /// Those of [`measure`].
    fn measure(&self, cell: &Cell, load: &LoadSpec) -> io::Result<Run> {
        self.measure_placed(cell, load, Placement::for_cell(cell))
    }

    /// [`measure`](Ctx::measure) with the server placed as `placement` says.
    fn measure_placed(
        &self,
        cell: &Cell,
        load: &LoadSpec,
        placement: Placement,
    ) -> io::Result<Run> {
        self.step(&format!("{cell}, {}", load.describe()));
        let run = match self.monitor {
            None => measure_placed(cell, load, placement),
            Some(threshold) => monitored::measure(cell, load, placement, threshold),
        };
        let run = run.map(|r| r.for_claim(self.claim.id()));
        self.done();
        run
    }

    /// A load with this run's warm-up and window; the linger lets a
    /// request of `slowest` (what one request takes when served at once)
    /// in flight at the stop finish; queued ones count as unfinished.
    /// Loads of [`RAMP_CONNS`] connections or more get [`RAMP`] more
    /// warm-up per [`RAMP_CONNS`] (connects are set up during it), and a
    /// keep-alive load's warm-up waits up to [`ANSWER_LIMIT`] more for
    /// every connection's first answer.
    fn load(&self, workload: LoadSpec, slowest: Duration) -> LoadSpec {
        let linger = (slowest + Duration::from_millis(100)).min(Duration::from_secs(2));
        let ramps = u32::try_from(workload.conns / RAMP_CONNS).unwrap_or(u32::MAX);
        let warmup = self.opts.warmup() + RAMP * ramps.min(MAX_RAMPS);
        let answer_wait = ANSWER_LIMIT;
        LoadSpec { warmup, duration: self.opts.window(), linger, answer_wait, ..workload }
    }
}

/// Loads of this many connections or more start with a longer warm-up
/// ([`RAMP`]): on loopback here, a burst of connects loses some SYNs (the
/// load's clients try again after 200 ms), so without it the window would
/// count connections still being set up (as idle) instead of the server's
/// pace.
pub const RAMP_CONNS: usize = 500;
/// The extra warm-up per [`RAMP_CONNS`] connections: enough, on the
/// 2-vCPU machine under load, for a thread per connection to start 500
/// threads and answer their first requests (with 0.5 s per 500, its
/// 1,000 connections had not all been answered when the window began).
/// Where that is not enough, the load's warm-up waits on for the rest
/// ([`crate::lab::load::Timeline`]).
pub const RAMP: Duration = Duration::from_millis(1000);
/// At most this many [`RAMP`]s: 10 s, from 5,000 connections on.
pub const MAX_RAMPS: u32 = 10;

/// The outcome of the claims: one verdict per claim run, and all runs.
#[derive(Debug)]
pub struct Outcome {
    /// `(claim, verdict, seconds its measurements took)` in report order.
    pub verdicts: Vec<(ClaimId, Verdict, f64)>,
    /// Every run, labelled with its claim.
    pub runs: Vec<Run>,
}

/// How many progress steps the selected claims take.
pub fn total_steps(opts: &Options) -> u64 {
    ClaimId::ALL.iter().filter(|c| opts.selects(**c)).map(|c| (c.claim().steps)(opts)).sum()
}

/// Runs every selected claim, advancing `bar`. A claim whose measurement
/// fails gets [`Holds::Unknown`] with the error; the others still run.
///
/// With [`Options::seeds`], the seed apps that can run here add rows to
/// the claims they speak to (see [`crate::lab::seeds`]); a line names
/// those that cannot, with the install line.
pub fn run_claims(opts: &Options, bar: &indicatif::ProgressBar) -> Outcome {
    let mut outcome = Outcome { verdicts: Vec::new(), runs: Vec::new() };
    let apps = if opts.seeds {
        let (ready, missing) = crate::lab::seeds::discover();
        if let Some(line) = crate::lab::seeds::missing_line(&missing) {
            bar.println(format!("lab: {line}"));
        }
        ready
    } else {
        Vec::new()
    };
    for id in ClaimId::ALL.into_iter().filter(|c| opts.selects(*c)) {
        let claim = id.claim();
        let ctx = Ctx { opts, bar, claim: id, monitor: None };
        ctx.step("starting");
        let started = std::time::Instant::now();
        let measured = (claim.measure)(&ctx, &outcome.runs).map(|mut runs| {
            runs.extend(seeded::seed_rows(&ctx, &apps, &outcome.runs));
            runs
        });
        let seconds = started.elapsed().as_secs_f64();
        match measured {
            Ok(runs) => {
                let judged: Vec<Run> =
                    runs.iter().filter(|r| !seeded::is_seed(r)).cloned().collect();
                let mut verdict = (claim.evaluate)(&judged);
                verdict.summary.push_str(&seeded::quote(&runs));
                outcome.runs.extend(runs);
                outcome.verdicts.push((id, verdict, seconds));
            }
            Err(e) => {
                bar.println(format!("lab: {}: measurement failed: {e}", claim.id));
                let verdict = Verdict::new(Holds::Unknown, format!("error: {e}"));
                outcome.verdicts.push((id, verdict, seconds));
            }
        }
    }
    outcome
}

// Helpers shared by the evaluations.

/// The run of `runs` whose cell spec is `cell` (and, if given, with
/// `conns` connections).
fn find<'a>(runs: &'a [Run], cell: &str, conns: Option<usize>) -> Option<&'a Run> {
    runs.iter().find(|r| r.cell == cell && conns.is_none_or(|c| r.conns == c))
}

/// The sleep (ms) a run asked for, from its `extra`.
fn sleep_ms(run: &Run) -> Option<f64> {
    run.get("sleep_ms").filter(|&ms| ms > 0.0)
}

/// `1234.5` as `1235`, `12.34` as `12.3`, `1.234` as `1.23`.
fn num(x: f64) -> String {
    if x.abs() >= 100.0 {
        format!("{x:.0}")
    } else if x.abs() >= 10.0 {
        format!("{x:.1}")
    } else {
        format!("{x:.2}")
    }
}

/// Errors of `runs` as a suffix for a summary (empty when none).
fn errors_note(runs: &[Run]) -> String {
    let errors: u64 = runs.iter().map(|r| r.errors).sum();
    if errors == 0 { String::new() } else { format!("; {errors} request errors") }
}

#[cfg(test)]
mod tests;
