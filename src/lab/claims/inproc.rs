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

use super::{Ctx, Holds, Verdict, num};
use crate::lab::measure::Run;

/// C2: the seed's wait (scaled).
pub const C2_WAIT: Duration = Duration::from_secs(3);
/// C2: sequential counts as "2×" when it takes at least this many waits.
pub const C2_SEQ_MIN: f64 = 1.9;
/// C2: concurrent counts as "1×" when it takes at most this many waits.
pub const C2_CONC_MAX: f64 = 1.25;
/// C2: (runtime, style) pairs measured.
pub const C2_PAIRS: [(&str, &str); 4] =
    [("green", "blocking"), ("green", "async"), ("stackless", "async"), ("stackless", "blocking")];
/// C2: progress steps.
pub(super) const C2_STEPS: u64 = C2_PAIRS.len() as u64;

/// Waits twice with `runtime`/`style`, concurrently or not; the time taken.
fn two_waits(runtime: &str, style: &str, concurrent: bool, d: Duration) -> io::Result<Duration> {
    let start = Instant::now();
    match (runtime, style) {
        ("green", "blocking") => green::Runtime::new().try_run(|| {
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
        ("green", "async") => green::Runtime::new().try_run(|| {
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
        ("stackless", "async") => task::Runtime::new()?.block_on(async move {
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
        ("stackless", "blocking") => task::Runtime::new()?.block_on(async move {
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
        _ => None,
    }
    .ok_or_else(|| io::Error::other(format!("C2: {runtime}-{style}: a wait failed")))?;
    Ok(start.elapsed())
}

pub(super) fn c2_measure(ctx: &Ctx<'_>, _: &[Run]) -> io::Result<Vec<Run>> {
    let wait = ctx.opts.scaled(C2_WAIT);
    let mut runs = Vec::new();
    for (runtime, style) in C2_PAIRS {
        ctx.step(&format!("{runtime}-{style}: two waits of {wait:?}"));
        for (variant, concurrent) in [("sequential", false), ("concurrent", true)] {
            let took = two_waits(runtime, style, concurrent, wait)?;
            let mut run = Run::figure(ctx.claim.id(), runtime, style, variant);
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

/// C2's evaluation: for every (runtime, style) pair, sequential takes
/// about two waits and concurrent about one.
pub fn c2_evaluate(runs: &[Run]) -> Verdict {
    let mut holding = 0;
    let mut parts = Vec::new();
    let mut pairs = 0;
    for (runtime, style) in C2_PAIRS {
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
        let ok = s >= C2_SEQ_MIN && c <= C2_CONC_MAX;
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
        Holds::of_parts(holding, C2_PAIRS.len()),
        format!("sequential/concurrent in waits: {}", parts.join(", ")),
    )
}
