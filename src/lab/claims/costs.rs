//! C8's second half: what spawning and joining a unit of concurrency, and
//! switching between two, cost on each runtime.
//!
//! criterion's estimates are used when
//! `target/criterion/{spawn_join,yield}/<impl>/new/estimates.json` exist
//! (`cargo bench --bench scheduler`) and are newer than the lab binary
//! (results of older code say nothing about this build), else a short
//! inline loop. Each row's `note` says which, with the file's age or why
//! it was not used: nothing falls back silently. OS threads have no
//! criterion switch figure: theirs is always inline, a ping-pong of two
//! threads over channels.

use std::hint::black_box;
use std::io;
use std::path::Path;
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime};

use greenloop_runtime::{green, task};

use super::Ctx;
use crate::lab::affinity;
use crate::lab::estimates;
use crate::lab::measure::Run;

/// The runtimes whose spawn + join and switch C8 costs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CostRuntime {
    /// OS threads (`std::thread`).
    Threads,
    /// Green threads.
    Green,
    /// Stackless tasks.
    Stackless,
}

impl CostRuntime {
    /// Every one, in report order.
    pub const ALL: [CostRuntime; 3] =
        [CostRuntime::Threads, CostRuntime::Green, CostRuntime::Stackless];

    /// Its name in the report (as [`Cell`](crate::lab::Cell)'s runtimes).
    pub fn name(self) -> &'static str {
        match self {
            CostRuntime::Threads => "threads",
            CostRuntime::Green => "green",
            CostRuntime::Stackless => "stackless",
        }
    }

    /// Its benchmark's name under criterion's groups.
    fn bench(self) -> &'static str {
        match self {
            CostRuntime::Threads => "thread",
            CostRuntime::Green => "green",
            CostRuntime::Stackless => "stackless",
        }
    }

    /// The style its rows carry.
    fn style(self) -> &'static str {
        match self {
            CostRuntime::Stackless => "async",
            CostRuntime::Threads | CostRuntime::Green => "blocking",
        }
    }
}

/// The cost C8 measures.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cost {
    /// Spawn a unit of concurrency and join it.
    SpawnJoin,
    /// Switch from one to another.
    Switch,
}

impl Cost {
    /// The row's variant in the report.
    pub fn variant(self) -> &'static str {
        match self {
            Cost::SpawnJoin => "spawn_join",
            Cost::Switch => "switch",
        }
    }

    /// criterion's group for it.
    fn group(self) -> &'static str {
        match self {
            Cost::SpawnJoin => "spawn_join",
            Cost::Switch => "yield",
        }
    }
}

/// Inline loop lengths: spawns of green threads and tasks, of OS threads,
/// and switches.
const SPAWNS: u32 = 20_000;
const THREAD_SPAWNS: u32 = 1_000;
const SWITCHES: u32 = 50_000;

/// criterion's mean estimate of `group/bench`, ns, and how old its file
/// is; or why it is not used: no directory, no result, unreadable, or
/// older than `built` (the build being measured).
pub fn criterion_ns(
    dir: Option<&Path>,
    group: &str,
    bench: &str,
    built: Option<SystemTime>,
) -> Result<(f64, Duration), String> {
    let dir = dir.ok_or("no criterion directory")?;
    let file = dir.join(group).join(bench).join("new").join("estimates.json");
    let estimate = match estimates::read_estimate(dir, group, bench) {
        Ok(Some(e)) => e,
        Ok(None) => return Err("no criterion result".into()),
        Err(e) => return Err(e.to_string()),
    };
    let modified = std::fs::metadata(&file)
        .and_then(|m| m.modified())
        .map_err(|e| format!("{}: {e}", file.display()))?;
    if built.is_some_and(|b| modified < b) {
        return Err("criterion result older than the lab binary".into());
    }
    let age = SystemTime::now().duration_since(modified).unwrap_or_default();
    Ok((estimate.ns_per_op(), age))
}

/// When the binary being measured was built: its file's modification time.
fn build_time() -> Option<SystemTime> {
    std::env::current_exe().and_then(std::fs::metadata).and_then(|m| m.modified()).ok()
}

/// `95 s`, `42 min`, `3.1 h`, `2.0 days`.
fn age(d: Duration) -> String {
    let s = d.as_secs_f64();
    match s {
        s if s < 120.0 => format!("{s:.0} s"),
        s if s < 7200.0 => format!("{:.0} min", s / 60.0),
        s if s < 172_800.0 => format!("{:.1} h", s / 3600.0),
        s => format!("{:.1} days", s / 86_400.0),
    }
}

fn per_op(took: Duration, ops: u32) -> f64 {
    took.as_secs_f64() * 1e9 / f64::from(ops)
}

fn inline_spawn(runtime: CostRuntime) -> io::Result<f64> {
    Ok(match runtime {
        CostRuntime::Threads => {
            let start = Instant::now();
            for _ in 0..THREAD_SPAWNS {
                let ok = std::thread::spawn(|| black_box(1u64)).join().is_ok();
                black_box(ok);
            }
            per_op(start.elapsed(), THREAD_SPAWNS)
        }
        CostRuntime::Green => green::Runtime::new().try_run(|| {
            black_box(green::spawn(|| black_box(1u64)).join().is_ok());
            let start = Instant::now();
            for _ in 0..SPAWNS {
                black_box(green::spawn(|| black_box(1u64)).join().is_ok());
            }
            per_op(start.elapsed(), SPAWNS)
        })?,
        CostRuntime::Stackless => task::Runtime::new()?.block_on(async {
            let start = Instant::now();
            for _ in 0..SPAWNS {
                black_box(task::spawn(async { black_box(1u64) }).await.is_ok());
            }
            per_op(start.elapsed(), SPAWNS)
        }),
    })
}

fn inline_switch(runtime: CostRuntime) -> io::Result<f64> {
    let half = SWITCHES / 2;
    Ok(match runtime {
        CostRuntime::Threads => {
            let (to_b, from_a) = mpsc::sync_channel::<u32>(0);
            let (to_a, from_b) = mpsc::sync_channel::<u32>(0);
            let start = Instant::now();
            let b = std::thread::spawn(move || {
                while let Ok(x) = from_a.recv() {
                    if to_a.send(x).is_err() {
                        break;
                    }
                }
            });
            for i in 0..half {
                if to_b.send(i).is_err() || from_b.recv().is_err() {
                    break;
                }
            }
            drop(to_b);
            let _ = b.join();
            per_op(start.elapsed(), SWITCHES)
        }
        CostRuntime::Green => green::Runtime::new().try_run(|| {
            let start = Instant::now();
            let spin = move || (0..half).for_each(|_| green::yield_now());
            let (a, b) = (green::spawn(spin), green::spawn(spin));
            black_box(a.join().is_ok() && b.join().is_ok());
            per_op(start.elapsed(), SWITCHES)
        })?,
        CostRuntime::Stackless => task::Runtime::new()?.block_on(async move {
            let start = Instant::now();
            let spin = move || async move {
                for _ in 0..half {
                    task::yield_now().await;
                }
            };
            let (a, b) = (task::spawn(spin()), task::spawn(spin()));
            black_box(a.await.is_ok() && b.await.is_ok());
            per_op(start.elapsed(), SWITCHES)
        }),
    })
}

pub(super) fn cost_runs(ctx: &Ctx<'_>) -> io::Result<Vec<Run>> {
    ctx.step("spawn+join and switch costs");
    let dir = ctx.opts.criterion_dir.as_deref();
    let built = build_time();
    let one_cpu = affinity::plan()
        .map_or_else(String::new, |p| format!(", pinned to {} client CPU(s)", p.client.len()));
    let mut runs = Vec::new();
    for runtime in CostRuntime::ALL {
        for cost in [Cost::SpawnJoin, Cost::Switch] {
            let (ns, source) = match criterion_ns(dir, cost.group(), runtime.bench(), built) {
                Ok((ns, old)) => (
                    ns,
                    format!("criterion {}/{}, {} old", cost.group(), runtime.bench(), age(old)),
                ),
                Err(why) => {
                    let ns = match cost {
                        Cost::SpawnJoin => inline_spawn(runtime)?,
                        Cost::Switch => inline_switch(runtime)?,
                    };
                    (ns, format!("inline{one_cpu} ({why})"))
                }
            };
            let mut run =
                Run::figure(ctx.claim.id(), runtime.name(), runtime.style(), cost.variant());
            run.note = Some(source);
            run.extra.insert("ns_per_op".into(), ns);
            runs.push(run);
        }
    }
    ctx.done();
    Ok(runs)
}
