//! The seed apps' rows (`--seeds`, see [`crate::lab::seeds`]): which loads
//! each claim puts them under, the same as its own cells', and how their
//! figures are quoted beside the verdict. They are never judged.

use std::time::Duration;

use super::servers::{C1_CONNS, C1_SLEEP, C3_CONNS, C3_SLEEP, C4_CONNS, C4_SLEEP};
use super::sweep::{C6_SLEEP, C7_CONNS, c6_conns, sweep_window};
use super::{ClaimId, Ctx, num};
use crate::lab::load::{LoadSpec, Workload};
use crate::lab::measure::Run;
use crate::lab::seeds::{self, SEED_VARIANT, SeedApp};

/// One load a claim runs its seed rows under.
struct SeedLoad {
    conns: usize,
    sleep: Duration,
    keep_alive: bool,
    window: Option<Duration>,
}

/// The loads of `claim`'s seed rows (none for claims the seeds do not
/// speak to).
fn loads(ctx: &Ctx<'_>, claim: ClaimId) -> Vec<SeedLoad> {
    let close = |conns, seed| SeedLoad {
        conns,
        sleep: ctx.opts.scaled(seed),
        keep_alive: false,
        window: None,
    };
    let sweep = |conns| SeedLoad {
        conns,
        sleep: C6_SLEEP,
        keep_alive: true,
        window: Some(sweep_window(ctx.opts)),
    };
    match claim {
        ClaimId::C1 => vec![close(C1_CONNS, C1_SLEEP)],
        ClaimId::C3 => vec![close(C3_CONNS, C3_SLEEP)],
        ClaimId::C4 => C4_CONNS.iter().map(|&c| close(c, C4_SLEEP)).collect(),
        ClaimId::C6 => c6_conns(ctx.opts).iter().map(|&c| sweep(c)).collect(),
        ClaimId::C7 => vec![sweep(C7_CONNS)],
        ClaimId::C2 | ClaimId::C5 | ClaimId::C8 | ClaimId::C9 | ClaimId::E1 | ClaimId::S1 => {
            Vec::new()
        }
    }
}

/// Measures every app of `apps` under `claim`'s seed loads; C7 reuses
/// C6's rows at its connection count. A row that fails is reported on the
/// progress bar and left out: nothing fails the run.
pub(super) fn seed_rows(ctx: &Ctx<'_>, apps: &[SeedApp], earlier: &[Run]) -> Vec<Run> {
    let mut rows = Vec::new();
    for load in loads(ctx, ctx.claim) {
        for &app in apps {
            let from_c6 = earlier.iter().find(|r| {
                ctx.claim == ClaimId::C7
                    && r.claim.starts_with("C6")
                    && r.cell == format!("seed:{app}")
                    && r.conns == load.conns
            });
            if let Some(r) = from_c6 {
                rows.push(r.clone().for_claim(ctx.claim.id()));
                continue;
            }
            ctx.step(&format!("seed {app}, {} conns", load.conns));
            let path = format!("/sleep?ms={}", load.sleep.as_millis());
            let workload = Workload::Http { path, keep_alive: load.keep_alive };
            let base = LoadSpec { workload, ..LoadSpec::http("/", load.conns, Duration::ZERO) };
            let mut spec = ctx.load(base, load.sleep * 2);
            if let Some(window) = load.window {
                spec.duration = window;
            }
            match seeds::measure_seed(app, &spec, ctx.claim.id()) {
                Ok(mut run) => {
                    run.extra.insert("sleep_ms".into(), load.sleep.as_secs_f64() * 1e3);
                    rows.push(run);
                }
                Err(e) => ctx.bar.println(format!("lab: {}: seed {app}: {e}", ctx.claim.id())),
            }
        }
    }
    rows
}

/// Whether `run` is a seed app's row.
pub(super) fn is_seed(run: &Run) -> bool {
    run.variant.as_deref() == Some(SEED_VARIANT)
}

/// The seed rows quoted for a summary: `; seeds: <app> <conns> conns
/// <req/s> req/s p50 <ms> ms, ...` (empty without any).
pub(super) fn quote(runs: &[Run]) -> String {
    let rows: Vec<String> = runs
        .iter()
        .filter(|r| is_seed(r))
        .map(|r| {
            format!(
                "{} {} conns {} req/s p50 {} ms{}",
                r.cell.trim_start_matches("seed:"),
                r.conns,
                num(r.req_per_s),
                num(r.p50_ms),
                if r.errors > 0 { format!(" ({} errors)", r.errors) } else { String::new() }
            )
        })
        .collect();
    if rows.is_empty() {
        String::new()
    } else {
        format!("; seeds (not judged): {}", rows.join(", "))
    }
}
