//! C2: two waits, one after the other or both at once, in this process.
//!
//! | runtime   | style    | the wait                                   |
//! |-----------|----------|--------------------------------------------|
//! | green     | blocking | `green::sleep(d)` in a green thread        |
//! | green     | async    | `block_on(time::sleep(d))` in a green thread |
//! | stackless | async    | `time::sleep(d).await` in a task           |
//! | stackless | blocking | `spawn_blocking(thread::sleep(d))`, awaited |
//!
//! Sequential: the same wait twice in one thread or task. Concurrent: two
//! green threads (or tasks, or blocking jobs) started together, joined.

use std::io;
use std::time::{Duration, Instant};

use greenloop_runtime::{block_on, blocking, green, task, time};

use greenloop_net::server::Style;

use super::{Claim, Ctx, Holds, Verdict, num};
use crate::lab::cell::CellRuntime;
use crate::lab::measure::Run;

/// C2: the seed's wait (scaled).
pub const C2_WAIT: Duration = Duration::from_secs(3);
/// C2: the seed's "sequential takes 2×": at least this many waits ...
pub const C2_SEQ_MIN: f64 = 1.9;
/// ... and at most this many (halfway to a third wait).
pub const C2_SEQ_MAX: f64 = 2.5;
/// C2: the seed's "concurrent takes 1×": at most this many waits.
pub const C2_CONC_MAX: f64 = 1.25;
/// C2: no pair of waits can take less than this many waits: a figure
/// below it did not wait at all, and the claim is `unknown`.
pub const C2_FLOOR: f64 = 0.95;

/// C2: the ways of waiting measured, each a runtime and a style.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WaitKind {
    /// `green::sleep(d)` in a green thread.
    GreenBlocking,
    /// `block_on(time::sleep(d))` in a green thread.
    GreenAsync,
    /// `time::sleep(d).await` in a task.
    StacklessAsync,
    /// `spawn_blocking(thread::sleep(d))`, awaited.
    StacklessBlocking,
}

impl WaitKind {
    /// Every kind, in report order.
    pub const ALL: [WaitKind; 4] = [
        WaitKind::GreenBlocking,
        WaitKind::GreenAsync,
        WaitKind::StacklessAsync,
        WaitKind::StacklessBlocking,
    ];

    /// Its runtime, as the report names it.
    pub fn runtime(self) -> CellRuntime {
        match self {
            WaitKind::GreenBlocking | WaitKind::GreenAsync => CellRuntime::Green,
            WaitKind::StacklessAsync | WaitKind::StacklessBlocking => CellRuntime::Stackless,
        }
    }

    /// Its style.
    pub fn style(self) -> Style {
        match self {
            WaitKind::GreenBlocking | WaitKind::StacklessBlocking => Style::Blocking,
            WaitKind::GreenAsync | WaitKind::StacklessAsync => Style::Async,
        }
    }
}

/// C2: progress steps.
const C2_STEPS: u64 = WaitKind::ALL.len() as u64;

/// C2: two waits take twice one wait in sequence, and one wait at once.
pub(super) const TWO_TASKS: Claim = Claim {
    id: "C2_two_tasks",
    measured: "two waits sequential vs concurrent, green and stackless, both styles",
    measure: measure_two_tasks,
    evaluate: judge_two_tasks,
    thresholds: || {
        format!(
            "sequential {C2_SEQ_MIN}..{C2_SEQ_MAX} waits, concurrent ≤ {C2_CONC_MAX} waits, per \
             pair; below {C2_FLOOR} waits: unknown"
        )
    },
    steps: |_| C2_STEPS,
};

/// Waits twice the `kind` way, concurrently or not; the time taken.
fn two_waits(kind: WaitKind, concurrent: bool, d: Duration) -> io::Result<Duration> {
    let start = Instant::now();
    match kind {
        WaitKind::GreenBlocking => green::Runtime::new().try_run(|| {
            if concurrent {
                let a = green::spawn(move || green::sleep(d));
                let b = green::spawn(move || green::sleep(d));
                (a.join().is_ok() && b.join().is_ok()).then_some(())
            } else {
                green::sleep(d);
                green::sleep(d);
                Some(())
            }
        })?,
        WaitKind::GreenAsync => green::Runtime::new().try_run(|| {
            if concurrent {
                let a = green::spawn(move || block_on(time::sleep(d)));
                let b = green::spawn(move || block_on(time::sleep(d)));
                (a.join().is_ok() && b.join().is_ok()).then_some(())
            } else {
                block_on(time::sleep(d));
                block_on(time::sleep(d));
                Some(())
            }
        })?,
        WaitKind::StacklessAsync => task::Runtime::new()?.block_on(async move {
            if concurrent {
                let a = task::spawn(time::sleep(d));
                let b = task::spawn(time::sleep(d));
                (a.await.is_ok() && b.await.is_ok()).then_some(())
            } else {
                time::sleep(d).await;
                time::sleep(d).await;
                Some(())
            }
        }),
        WaitKind::StacklessBlocking => task::Runtime::new()?.block_on(async move {
            if concurrent {
                let a = blocking::spawn_blocking(move || std::thread::sleep(d));
                let b = blocking::spawn_blocking(move || std::thread::sleep(d));
                (a.await.is_ok() && b.await.is_ok()).then_some(())
            } else {
                let a = blocking::spawn_blocking(move || std::thread::sleep(d)).await.is_ok();
                let b = blocking::spawn_blocking(move || std::thread::sleep(d)).await.is_ok();
                (a && b).then_some(())
            }
        }),
    }
    .ok_or_else(|| io::Error::other(format!("C2: {kind:?}: a wait failed")))?;
    Ok(start.elapsed())
}

fn measure_two_tasks(ctx: &Ctx<'_>, _: &[Run]) -> io::Result<Vec<Run>> {
    let wait = ctx.opts.scaled(C2_WAIT);
    let mut runs = Vec::new();
    for kind in WaitKind::ALL {
        let (runtime, style) = (kind.runtime().name(), kind.style().to_string());
        ctx.step(&format!("{runtime}-{style}: two waits of {wait:?}"));
        for (variant, concurrent) in [("sequential", false), ("concurrent", true)] {
            let took = two_waits(kind, concurrent, wait)?;
            let mut run = Run::figure(ctx.claim.id(), runtime, &style, variant);
            run.conns = 2;
            run.seconds = took.as_secs_f64();
            run.extra.insert("wait_ms".into(), wait.as_secs_f64() * 1e3);
            run.extra.insert("elapsed_ms".into(), took.as_secs_f64() * 1e3);
            runs.push(run);
        }
        ctx.done();
    }
    Ok(runs)
}

/// C2's evaluation: for every kind of wait, sequential takes about two
/// waits (`C2_SEQ_MIN`..`C2_SEQ_MAX`) and concurrent about one (at
/// most `C2_CONC_MAX`); a pair below `C2_FLOOR` makes it `unknown`.
pub fn judge_two_tasks(runs: &[Run]) -> Verdict {
    let mut holding = 0;
    let mut parts = Vec::new();
    let mut pairs = 0;
    for kind in WaitKind::ALL {
        let (runtime, style) = (kind.runtime().name(), kind.style().to_string());
        let pick = |variant: &str| {
            runs.iter().find(|r| {
                r.runtime == runtime && r.style == style && r.variant.as_deref() == Some(variant)
            })
        };
        let (Some(seq), Some(conc)) = (pick("sequential"), pick("concurrent")) else { continue };
        let (Some(wait), Some(s), Some(c)) =
            (seq.get("wait_ms"), seq.get("elapsed_ms"), conc.get("elapsed_ms"))
        else {
            continue;
        };
        pairs += 1;
        let (s, c) = (s / wait, c / wait);
        if !(s >= C2_FLOOR && c >= C2_FLOOR) {
            return Verdict::new(
                Holds::Unknown,
                format!(
                    "{runtime}-{style}: two waits took {}×/{}× one wait: they did not wait",
                    num(s),
                    num(c)
                ),
            );
        }
        let ok = (C2_SEQ_MIN..=C2_SEQ_MAX).contains(&s) && c <= C2_CONC_MAX;
        holding += usize::from(ok);
        parts.push(format!(
            "{runtime}-{style} {}×/{}×{}",
            num(s),
            num(c),
            if ok { "" } else { " (!)" }
        ));
    }
    if pairs == 0 {
        return Verdict::missing("any wait pair");
    }
    Verdict::new(
        Holds::of_parts(holding, WaitKind::ALL.len()),
        format!("sequential/concurrent in waits: {}", parts.join(", ")),
    )
}
