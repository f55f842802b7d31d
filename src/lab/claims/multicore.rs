//! S1: scaling over cores. Green and stackless servers on one shard and on
//! one shard per CPU (`-c<N>`), tokio's current-thread runtime and its
//! multi-thread runtime on N workers (`-w<N>`), under the echo and the
//! sleep load.
//!
//! Every S1 run, one core or N, uses [`Placement::Shared`]: server and
//! client may both run on every CPU, so the only thing that changes
//! between the two rows of a pair is the server's shard (or worker) count.
//! On a small machine the client then competes with the server for the
//! CPUs, and throughput speed-up is bounded by what the client leaves
//! (on 2 CPUs, well below 2×). The figure that does not depend on the
//! client is the server's own CPU time per request, from `/proc`: if
//! shards share nothing, it stays flat from 1 to N cores, and that is what
//! the claim checks. Speed-ups are reported as measured.
//!
//! How the client competing for the CPUs still shows up, and how the
//! summary lets the reader see it. Per message, the kernel's part
//! dominates (loopback TCP, wake-ups), and it depends on placement more
//! than on shards. A server that sleeps and is woken for fewer messages
//! pays more per message, and so does a server on another CPU than its
//! client, whose sends wake a peer across CPUs. With the client on the
//! same CPUs, N shards find fewer ready connections per wake-up than one
//! loop, and cannot all share a CPU with the client the way the scheduler
//! likes to place a single server. So each pair also quotes the server's
//! sleeps per request ([`SLEEPS_PER_REQ`]) and the CPUs' worth of time it
//! used: a rise in CPU per message that comes with more sleeps and a
//! server spread over more CPUs is placement and batching, not sharing.
//! The README has the instruction and system-call counts that separate
//! the two.
//!
//! Each pair is measured [`S1_ROUNDS`] times in A-B-B-A order (1, N, N, 1
//! cores) and averaged, so a drift in the machine's background load
//! (other jobs on a shared VM) weighs on both rows alike.

use std::io;
use std::time::Duration;

use super::cpu::cpu_us;
use super::{Ctx, Holds, Verdict, errors_note, num};
use crate::lab::affinity;
use crate::lab::cell::{Cell, CellRuntime};
use crate::lab::load::LoadSpec;
use crate::lab::measure::{Run, SLEEPS_PER_REQ};
use crate::lab::server::Placement;

/// S1: the runtimes, as `<runtime>-<style>` (tokio scales by workers).
pub const S1_RUNTIMES: [&str; 3] = ["green-blocking", "stackless-async", "tokio-async"];
/// S1: the services.
pub const S1_SERVICES: [&str; 2] = ["echo", "sleep"];
/// S1: echo clients and bytes per message (as E1).
pub const S1_ECHO_CONNS: usize = 50;
/// S1: echo bytes per message.
pub const S1_MSG: usize = 64;
/// S1: sleep clients, keep-alive, each asking `/sleep?ms=`[`S1_SLEEP_MS`]:
/// short enough that the server's CPU, not the sleep, bounds req/s.
pub const S1_SLEEP_CONNS: usize = 100;
/// S1: the sleep asked for, ms.
pub const S1_SLEEP_MS: u64 = 1;
/// S1: how many times each pair is measured (alternating the order).
pub const S1_ROUNDS: usize = 2;
/// S1's claim: a green or stackless server's CPU per echoed message on N
/// shards is at most this factor of its figure on one (the shards share
/// nothing on the hot path).
pub const S1_CPU_FLAT: f64 = 1.10;

/// How many cores S1 scales to: every CPU the lab may use.
pub fn s1_cores() -> usize {
    affinity::allowed_cpus().map_or(1, <[usize]>::len)
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

pub(super) fn s1_measure(ctx: &Ctx<'_>, _: &[Run]) -> io::Result<Vec<Run>> {
    let all = s1_cores();
    if all < 2 {
        return Ok(Vec::new());
    }
    let mut runs = Vec::new();
    for runtime in S1_RUNTIMES {
        for service in S1_SERVICES {
            let order = [1, all, all, 1];
            for &cores in order.iter().cycle().take(2 * S1_ROUNDS) {
                let cell = cell(runtime, service, cores)?;
                let load = match service {
                    "echo" => ctx.load(
                        LoadSpec::echo(S1_MSG, S1_ECHO_CONNS, Duration::from_secs(1)),
                        Duration::from_millis(100),
                    ),
                    _ => ctx.load(
                        LoadSpec::http(
                            format!("/sleep?ms={S1_SLEEP_MS}"),
                            S1_SLEEP_CONNS,
                            Duration::from_secs(1),
                        ),
                        Duration::from_millis(100),
                    ),
                };
                let mut run = ctx.measure_placed(&cell, &load, Placement::Shared)?;
                run.extra.insert("cores".into(), cores as f64);
                runs.push(run);
            }
        }
    }
    Ok(runs)
}

/// The means of a pair's rounds (see [`mean_at`]).
struct Means {
    /// Requests per second.
    rate: f64,
    /// Server CPU per request, µs (if every run has it).
    cpu_us: Option<f64>,
    /// Server sleeps per request ([`SLEEPS_PER_REQ`], if every run has it).
    sleeps: Option<f64>,
}

impl Means {
    /// The CPUs' worth of time the server used: CPU per request × req/s.
    fn cpus(&self) -> Option<f64> {
        self.cpu_us.map(|us| us * 1e-6 * self.rate)
    }
}

/// The means of the S1 runs of `runtime` (its name) and `service` on
/// `cores`.
fn mean_at(runs: &[Run], runtime: &str, service: &str, cores: f64) -> Option<Means> {
    let at: Vec<&Run> = runs
        .iter()
        .filter(|r| r.runtime == runtime && r.service == service && r.get("cores") == Some(cores))
        .collect();
    let n = at.len() as f64;
    let mean = |f: &dyn Fn(&Run) -> Option<f64>| {
        at.iter().map(|r| f(r)).sum::<Option<f64>>().map(|sum| sum / n)
    };
    (!at.is_empty()).then(|| Means {
        rate: at.iter().map(|r| r.req_per_s).sum::<f64>() / n,
        cpu_us: mean(&cpu_us),
        sleeps: mean(&|r| r.get(SLEEPS_PER_REQ)),
    })
}

/// S1's evaluation, on the means of each pair's rounds: for green and
/// stackless, server CPU per echoed message on N shards ≤ [`S1_CPU_FLAT`]
/// × on one; every pair's speed-up and CPU change is quoted.
pub fn s1_evaluate(runs: &[Run]) -> Verdict {
    let Some(all) = runs.iter().filter_map(|r| r.get("cores")).reduce(f64::max) else {
        return Verdict::new(Holds::Unknown, "not measured: S1 needs two or more CPUs");
    };
    let mut flat = 0;
    let mut judged = 0;
    let mut parts = Vec::new();
    for runtime in S1_RUNTIMES {
        let name = runtime.split('-').next().unwrap_or(runtime);
        let mut pairs = Vec::new();
        for service in S1_SERVICES {
            let (Some(one), Some(many)) =
                (mean_at(runs, name, service, 1.0), mean_at(runs, name, service, all))
            else {
                return Verdict::missing(&format!("{name} {service} at 1 and {all} cores"));
            };
            let speedup = many.rate / one.rate.max(f64::MIN_POSITIVE);
            let cpu = one.cpu_us.zip(many.cpu_us);
            let mut figures = vec![format!(
                "{service} {}→{} req/s (×{speedup:.2})",
                num(one.rate),
                num(many.rate)
            )];
            match cpu {
                Some((a, b)) => figures.push(format!("CPU/req {}→{} µs", num(a), num(b))),
                None => figures.push("no CPU figures".to_string()),
            }
            if let (Some(a), Some(b)) = (one.sleeps, many.sleeps) {
                figures.push(format!("sleeps/req {a:.3}→{b:.3}"));
            }
            if let (Some(a), Some(b)) = (one.cpus(), many.cpus()) {
                figures.push(format!("server on {a:.2}→{b:.2} CPUs"));
            }
            if name != "tokio" && service == "echo" {
                let Some((a, b)) = cpu else {
                    return Verdict::new(
                        Holds::Unknown,
                        format!("no server CPU figures for {name}"),
                    );
                };
                judged += 1;
                flat += usize::from(b <= a * S1_CPU_FLAT);
            }
            pairs.push(figures.join(", "));
        }
        parts.push(format!("{name}: {}", pairs.join("; ")));
    }
    Verdict::new(
        Holds::of_parts(flat, judged),
        format!(
            "1→{all:.0} cores, client sharing the CPUs: {}{}",
            parts.join(" | "),
            errors_note(runs)
        ),
    )
}
