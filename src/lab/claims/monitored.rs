//! Runs with the server's blocked-loop monitor on (issue 17): C3 quotes
//! the monitor's first report on its inline cell, E1 weighs the monitor's
//! CPU cost on two echo cells.
//!
//! A monitored server gets `GREENLOOP_MONITOR_MS`, and the first lines of
//! its stderr hold the monitor's first reports:
//!
//! ```text
//! greenloop monitor: loop on main (ThreadId(1)) blocked for 27 ms
//!   running: task 7 spawned at net/src/server/cells.rs:195:21
//! greenloop monitor: loop on main (ThreadId(1)) turned again after 101 ms
//!   blocked by: task 7 spawned at net/src/server/cells.rs:195:21
//! ```
//!
//! The run is labelled with the variant [`VARIANT`]; its note quotes the
//! first report, and its extras hold the threshold and the first final
//! duration.

use std::io;
use std::time::Duration;

use super::{Ctx, num, rounds};
use crate::lab::cell::Cell;
use crate::lab::load::LoadSpec;
use crate::lab::measure::{Run, measure_monitored};
use crate::lab::server::Placement;

/// The variant of a run measured with the monitor on.
pub const VARIANT: &str = "monitor";
/// [`Run::extra`]: the monitor's threshold, ms.
pub const MONITOR_MS: &str = "monitor_ms";
/// [`Run::extra`]: the final duration of the first episode reported, ms.
pub const FIRST_BLOCKED_MS: &str = "monitor_first_blocked_ms";

impl<'a> Ctx<'a> {
    /// This context with the servers' monitor on at `threshold`: its
    /// measurements are [`measure`]'s.
    pub(super) fn monitored(&self, threshold: Duration) -> Ctx<'a> {
        Ctx { monitor: Some(threshold), ..*self }
    }
}

/// Measures `cell` under `load` with the server's monitor on at
/// `threshold`, and labels the run (see the module docs).
///
/// # Errors
///
/// Those of [`measure_monitored`].
pub(super) fn measure(
    cell: &Cell,
    load: &LoadSpec,
    placement: Placement,
    threshold: Duration,
) -> io::Result<Run> {
    let (mut run, stderr) = measure_monitored(cell, load, placement, threshold)?;
    label(&mut run, threshold);
    run.note = first_report(&stderr);
    if let Some(ms) = first_blocked_ms(&stderr) {
        run.extra.insert(FIRST_BLOCKED_MS.into(), ms);
    }
    Ok(run)
}

/// Labels `run` as measured with the monitor on at `threshold`.
pub(super) fn label(run: &mut Run, threshold: Duration) {
    run.variant = Some(VARIANT.into());
    run.extra.insert(MONITOR_MS.into(), threshold.as_secs_f64() * 1e3);
}

/// Whether `run` was measured with the monitor on.
pub(super) fn is_monitored(run: &Run) -> bool {
    run.variant.as_deref() == Some(VARIANT)
}

/// The first report among a server's stderr `lines`: its first line and
/// the one naming what ran, quoted.
pub fn first_report(lines: &[String]) -> Option<String> {
    let at =
        lines.iter().position(|l| l.contains("greenloop monitor: ") && l.contains("blocked"))?;
    let running = lines.get(at + 1).filter(|l| l.trim_start().starts_with("running: "));
    let quote = |l: &str| format!("\"{}\"", l.trim());
    Some(match running {
        Some(running) => format!("{} {}", quote(&lines[at]), quote(running)),
        None => quote(&lines[at]),
    })
}

/// The final duration of the first episode among `lines`, ms.
pub fn first_blocked_ms(lines: &[String]) -> Option<f64> {
    lines
        .iter()
        .find_map(|l| l.split(" turned again after ").nth(1)?.strip_suffix(" ms")?.parse().ok())
}

/// C3's part: what the monitor said about `run` (the inline cell).
pub(super) fn report_note(run: &Run) -> String {
    if !is_monitored(run) {
        return String::new();
    }
    let threshold = run.get(MONITOR_MS).map_or_else(String::new, |ms| format!(" at {ms:.0} ms"));
    match (&run.note, run.get(FIRST_BLOCKED_MS)) {
        (Some(quote), Some(ms)) => {
            format!("; monitor{threshold}: {quote}, first episode {} ms", num(ms))
        }
        (Some(quote), None) => format!("; monitor{threshold}: {quote}"),
        (None, _) => format!("; monitor{threshold}: no report"),
    }
}

/// E1's part: each monitored cell's server CPU per message against the
/// same cell's unmonitored runs: the medians over rounds of its CPU and of
/// its ratio to the unmonitored run of the same round (see `rounds.rs`).
pub(super) fn cost_note(runs: &[Run]) -> String {
    let mut cells: Vec<&Run> = Vec::new();
    for on in runs.iter().filter(|r| is_monitored(r)) {
        if !cells.iter().any(|c| c.cell == on.cell) {
            cells.push(on);
        }
    }
    let parts: Vec<String> = cells
        .iter()
        .filter_map(|on| {
            let is_on = |r: &Run| r.cell == on.cell && is_monitored(r);
            let is_off = |r: &Run| r.cell == on.cell && !is_monitored(r);
            let on_us = rounds::median_of(runs, is_on, super::cpu::cpu_us)?;
            let ratio = rounds::median_ratio(runs, is_on, is_off, super::cpu::cpu_us)?;
            Some(format!("{} {} µs = {:.3}× off", on.runtime, num(on_us), ratio))
        })
        .collect();
    let threshold = runs.iter().find_map(|r| r.get(MONITOR_MS).filter(|_| is_monitored(r)));
    match threshold {
        Some(ms) if !parts.is_empty() => {
            format!("; monitor on ({ms:.0} ms): {}", parts.join(", "))
        }
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(text: &str) -> Vec<String> {
        text.lines().map(str::to_owned).collect()
    }

    const REPORT: &str = "\
listening noise
greenloop monitor: loop on main (ThreadId(1)) blocked for 27 ms
  running: task 7 spawned at net/src/server/cells.rs:195:21
greenloop monitor: loop on main (ThreadId(1)) turned again after 101 ms
  blocked by: task 7 spawned at net/src/server/cells.rs:195:21";

    #[test]
    fn quotes_the_first_report_and_its_final_duration() {
        let stderr = lines(REPORT);
        assert_eq!(
            first_report(&stderr).unwrap(),
            "\"greenloop monitor: loop on main (ThreadId(1)) blocked for 27 ms\" \
             \"running: task 7 spawned at net/src/server/cells.rs:195:21\""
        );
        assert_eq!(first_blocked_ms(&stderr), Some(101.0));
        assert_eq!(first_report(&lines("nothing\nat all")), None);
        assert_eq!(first_blocked_ms(&lines("nothing")), None);
    }

    fn echo(cell: &str, runtime: &str, cpu_ns: f64, monitored: bool) -> Run {
        let mut r = Run::figure("E1_echo_cpu", runtime, "blocking", "x");
        r.cell = cell.into();
        r.variant = monitored.then(|| VARIANT.into());
        r.server_user_ns_per_req = Some(cpu_ns);
        r.server_sys_ns_per_req = Some(0.0);
        if monitored {
            r.extra.insert(MONITOR_MS.into(), 50.0);
        }
        r
    }

    #[test]
    fn cost_note_compares_each_monitored_run_with_its_cell() {
        let runs = [
            echo("green-blocking-echo", "green", 8000.0, false),
            echo("green-blocking-echo", "green", 8080.0, true),
            echo("stackless-async-echo", "stackless", 7000.0, false),
        ];
        assert_eq!(cost_note(&runs), "; monitor on (50 ms): green 8.08 µs = 1.010× off");
        assert_eq!(cost_note(&runs[..1]), "");
    }

    #[test]
    fn report_note_says_when_the_monitor_was_silent() {
        let mut run = echo("stackless-blocking-sleep-inline", "stackless", 1.0, true);
        assert_eq!(report_note(&run), "; monitor at 50 ms: no report");
        run.note = first_report(&lines(REPORT));
        run.extra.insert(FIRST_BLOCKED_MS.into(), 101.0);
        assert!(report_note(&run).ends_with("cells.rs:195:21\", first episode 101 ms"));
        run.variant = None;
        assert_eq!(report_note(&run), "");
    }
}
