//! S1: scaling over real cores. Green and stackless servers as 1, 2, 4 ...
//! shards (`-c<N>`), tokio as 1, 2, 4 ... workers (`-w<N>`; one is its
//! current-thread runtime), under the echo and the keep-alive sleep load.
//!
//! ```text
//!  allowed CPUs (sched_getaffinity), e.g. 16:
//!   [ 0  1  2  3  4  5  6  7 | 8  9 10 11 12 13 14 15 ]
//!     server: first N of this half    client: all of this half
//! ```
//!
//! The client gets a half of its own ([`Placement::Scaling`]), so what
//! changes between two rows of a runtime is only the server's shard (or
//! worker) count, and the client never takes a shard's CPU. A client that
//! shares the server's CPUs measures placement, not scaling (on a 2-CPU
//! machine one shard and two shards both share with the client), so with
//! fewer than [`HALVES_MIN_CPUS`] allowed CPUs nothing is measured and the
//! verdict is `unknown`, saying why.
//!
//! The connection count is the same at every step ([`S1_CONNS_PER_CORE`]
//! × the half), so each step offers the server the same work.

use std::io;
use std::time::Duration;

use super::served::{Queueing, gate};
use super::{Claim, Ctx, Holds, Verdict, errors_note, num};
use crate::lab::affinity::{self, HALVES_MIN_CPUS};
use crate::lab::cell::{Cell, CellRuntime};
use crate::lab::load::LoadSpec;
use crate::lab::measure::Run;
use crate::lab::server::Placement;

/// S1: the runtimes, as `<runtime>-<style>` (tokio scales by workers).
pub const S1_RUNTIMES: [&str; 3] = ["green-blocking", "stackless-async", "tokio-async"];
/// S1: the services.
pub const S1_SERVICES: [&str; 2] = ["echo", "sleep"];
/// S1: client connections per core of the server's half.
pub const S1_CONNS_PER_CORE: usize = 50;
/// S1: echo bytes per message (as E1).
pub const S1_MSG: usize = 64;
/// S1: the sleep asked for, ms: none, so the server's CPU bounds req/s.
/// Every server answers `ms=0` at once, with no timer (`route_sleep`): a
/// zero sleep would wait for the runtime's next millisecond tick, and a
/// closed-loop connection that waits a tick per request bounds req/s by
/// connections ÷ tick, not by the server. With 1 ms, on 16 CPUs every
/// runtime sat at the same ~165k req/s (400 connections, p50 2.5 ms).
pub const S1_SLEEP_MS: u64 = 0;
/// S1's claim, read from "shards share nothing, so a server scales with
/// cores": green's and stackless's echo req/s on N cores is at least this
/// fraction of N × their req/s on one (three quarters of linear).
pub const S1_EFFICIENCY: f64 = 0.75;

/// S1: the server scales with cores when its shards share nothing.
pub(super) const MULTICORE: Claim = Claim {
    id: "S1_multicore",
    measured: "echo and sleep on 1, 2, 4 .. half the CPUs, client on the other half",
    measure: measure_multicore,
    evaluate: judge_multicore,
    thresholds: || {
        format!(
            "green and stackless echo req/s on N cores ≥ {S1_EFFICIENCY} × N × on 1; tokio \
             quoted; needs ≥ {HALVES_MIN_CPUS} allowed CPUs, else unknown"
        )
    },
    steps: |_| (S1_RUNTIMES.len() * S1_SERVICES.len() * scaling_steps().len()) as u64,
};

/// The core counts S1 measures: 1, 2, 4 ... up to the server's half of
/// the allowed CPUs, the half itself last; empty with fewer than
/// [`HALVES_MIN_CPUS`] CPUs.
pub fn scaling_steps() -> Vec<usize> {
    affinity::halves().map_or_else(Vec::new, |(server, _)| steps_to(server.len()))
}

/// 1, 2, 4 ... below `half`, then `half`.
fn steps_to(half: usize) -> Vec<usize> {
    let mut steps: Vec<usize> = std::iter::successors(Some(1usize), |n| n.checked_mul(2))
        .take_while(|&n| n < half)
        .collect();
    steps.push(half.max(1));
    steps
}

/// The cell of `runtime` (`<runtime>-<style>`) and `service` on `cores`.
fn cell(runtime: &str, service: &str, cores: usize) -> io::Result<Cell> {
    let cell = Cell::parse_spec(&format!("{runtime}-{service}"))?;
    Ok(match (cell.runtime, cores) {
        (_, 1) => cell,
        (CellRuntime::Tokio, n) => cell.workers(n),
        (_, n) => cell.cores(n),
    })
}

fn measure_multicore(ctx: &Ctx<'_>, _: &[Run]) -> io::Result<Vec<Run>> {
    let steps = scaling_steps();
    let Some(&half) = steps.last() else { return Ok(Vec::new()) };
    let conns = S1_CONNS_PER_CORE * half;
    let mut runs = Vec::new();
    for runtime in S1_RUNTIMES {
        for service in S1_SERVICES {
            for &cores in &steps {
                let cell = cell(runtime, service, cores)?;
                let load = match service {
                    "echo" => LoadSpec::echo(S1_MSG, conns, Duration::from_secs(1)),
                    _ => LoadSpec::http(
                        format!("/sleep?ms={S1_SLEEP_MS}"),
                        conns,
                        Duration::from_secs(1),
                    ),
                };
                let load = ctx.load(load, Duration::from_millis(100));
                let mut run = ctx.measure_placed(&cell, &load, Placement::Scaling { cores })?;
                run.extra.insert("cores".into(), cores as f64);
                runs.push(run);
            }
        }
    }
    Ok(runs)
}

/// The S1 run of `runtime` (its name) and `service` on `cores`.
fn at<'a>(runs: &'a [Run], runtime: &str, service: &str, cores: f64) -> Option<&'a Run> {
    runs.iter()
        .find(|r| r.runtime == runtime && r.service == service && r.get("cores") == Some(cores))
}

/// S1's evaluation: for green and stackless, echo req/s on the most cores
/// ≥ `S1_EFFICIENCY` × cores × on one; every runtime's speed-ups per
/// step are quoted.
pub fn judge_multicore(runs: &[Run]) -> Verdict {
    let Some(top) = runs.iter().filter_map(|r| r.get("cores")).reduce(f64::max) else {
        let allowed = affinity::allowed_cpus().map_or(0, <[usize]>::len);
        return Verdict::new(
            Holds::Unknown,
            format!(
                "not measured: S1 needs ≥ {HALVES_MIN_CPUS} allowed CPUs (half for the shards, \
                 half for the client); this process may use {allowed}"
            ),
        );
    };
    if let Some(v) = gate(runs, Queueing::NotJudged) {
        return v;
    }
    let mut steps: Vec<f64> = runs.iter().filter_map(|r| r.get("cores")).collect();
    steps.sort_by(f64::total_cmp);
    steps.dedup();
    let mut scaled = 0;
    let mut judged = 0;
    let mut parts = Vec::new();
    for runtime in S1_RUNTIMES {
        let name = runtime.split('-').next().unwrap_or(runtime);
        let mut services = Vec::new();
        for service in S1_SERVICES {
            let Some(one) = at(runs, name, service, 1.0) else {
                return Verdict::missing(&format!("{name} {service} on 1 core"));
            };
            let mut speedups = Vec::new();
            for &cores in &steps[1..] {
                let Some(r) = at(runs, name, service, cores) else {
                    return Verdict::missing(&format!("{name} {service} on {cores} cores"));
                };
                speedups.push(format!("{cores:.0}: ×{:.2}", r.req_per_s / one.req_per_s));
            }
            services.push(format!(
                "{service} {} req/s on 1, {}",
                num(one.req_per_s),
                speedups.join(" ")
            ));
            if name != "tokio" && service == "echo" {
                let Some(most) = at(runs, name, service, top) else {
                    return Verdict::missing(&format!("{name} echo on {top} cores"));
                };
                judged += 1;
                scaled += usize::from(most.req_per_s >= S1_EFFICIENCY * top * one.req_per_s);
            }
        }
        parts.push(format!("{name}: {}", services.join("; ")));
    }
    Verdict::new(
        Holds::of_parts(scaled, judged),
        format!(
            "1→{top:.0} cores, client on {top:.0} other CPUs: {}{}",
            parts.join(" | "),
            errors_note(runs)
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_double_up_to_the_half() {
        assert_eq!(steps_to(2), [1, 2]);
        assert_eq!(steps_to(3), [1, 2, 3]);
        assert_eq!(steps_to(8), [1, 2, 4, 8]);
        assert_eq!(steps_to(6), [1, 2, 4, 6]);
    }
}
