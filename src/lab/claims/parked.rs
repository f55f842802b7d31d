//! C8's parked green threads: what one costs and how many fit, read from
//! the `hello_green` example's `key=value` line.
//!
//! The lab runs the `hello_green` found beside its own binary (`cargo build
//! --release --example hello_green` puts it there) with [`PARKED_THREADS`]
//! threads on [`PARKED_STACK_KIB`] KiB stacks, and keeps the RSS per parked
//! thread, the live threads reached and the cold spawn's CPU time; the
//! capacity is the memory the kernel reports available (`MemAvailable`)
//! over the RSS per thread. Without the binary the row is left out and
//! C8's line says how to get it. C8's verdict does not depend on the row.

use std::io;
use std::path::Path;
use std::process::Command;

use super::{Ctx, num};
use crate::lab::measure::Run;
use crate::lab::procfs;

/// Green threads `hello_green` is asked to park.
pub const PARKED_THREADS: usize = 10_000;
/// Their usable stack size, KiB.
pub const PARKED_STACK_KIB: usize = 16;
/// The row's variant.
pub const PARKED: &str = "parked";

/// The row of `hello_green`'s figures, or `None` if no `hello_green` lies
/// beside the lab's binary. A run that fails gives a row without figures,
/// its note saying why.
pub(super) fn parked_run(ctx: &Ctx<'_>) -> io::Result<Option<Run>> {
    ctx.step("hello_green: parked green threads");
    let exe = std::env::current_exe()?.with_file_name("hello_green");
    let run = exe.is_file().then(|| run_hello_green(ctx.claim.id(), &exe));
    ctx.done();
    Ok(run)
}

fn run_hello_green(claim: &str, exe: &Path) -> Run {
    let mut run = Run::figure(claim, "green", "blocking", PARKED);
    let args = [
        "--threads".to_string(),
        PARKED_THREADS.to_string(),
        "--stack-kib".into(),
        PARKED_STACK_KIB.to_string(),
        "--sleep-ms".into(),
        "1".into(),
    ];
    let fields = match Command::new(exe).args(&args).output() {
        Ok(out) => parse(&String::from_utf8_lossy(&out.stdout)),
        Err(e) => {
            run.note = Some(format!("hello_green could not run: {e}"));
            return run;
        }
    };
    let figure =
        |key: &str| fields.iter().find(|(k, _)| k == key).and_then(|(_, v)| v.parse().ok());
    let ok = fields.iter().any(|(k, v)| k == "ok" && v == "true");
    match (ok, figure("rss_per_thread_kib")) {
        (true, Some(kib)) if kib > 0.0 => {
            run.note = Some(format!(
                "hello_green --threads {PARKED_THREADS} --stack-kib {PARKED_STACK_KIB}"
            ));
            run.extra.insert("rss_kib_per_thread".into(), kib);
            for (key, name) in
                [("live_peak", "live_threads"), ("cold_spawn_cpu_median_ns", "cold_spawn_cpu_ns")]
            {
                if let Some(x) = figure(key) {
                    run.extra.insert(name.into(), x);
                }
            }
            if let Ok(available) = procfs::mem_available_kib() {
                run.extra.insert("capacity".into(), (available as f64 / kib).floor());
                run.extra.insert("mem_available_kib".into(), available as f64);
            }
        }
        _ => {
            let live = figure("live_peak").map_or_else(|| "?".into(), num);
            run.note = Some(format!("hello_green failed (ok={ok}, {live} threads live)"));
        }
    }
    run
}

/// The `key=value` pairs of the `hello_green: ...` line in `stdout`.
pub fn parse(stdout: &str) -> Vec<(String, String)> {
    let Some(line) = stdout.lines().find_map(|l| l.strip_prefix("hello_green: ")) else {
        return Vec::new();
    };
    line.split_whitespace()
        .filter_map(|pair| pair.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// C8's words on the parked row of `runs`: its figures, why it has none,
/// or how to get it.
pub fn parked_summary(runs: &[Run]) -> String {
    let Some(r) = runs.iter().find(|r| r.variant.as_deref() == Some(PARKED)) else {
        return "parked green threads: not measured (`cargo build --release --example \
                hello_green` first)"
            .into();
    };
    let Some(kib) = r.get("rss_kib_per_thread") else {
        return format!("parked green threads: {}", r.note.as_deref().unwrap_or("no figures"));
    };
    let live = r.get("live_threads").map_or_else(|| "?".into(), num);
    let capacity = match (r.get("capacity"), r.get("mem_available_kib")) {
        (Some(n), Some(avail)) => {
            format!(", so ~{} fit in the {} GiB available", num(n), num(avail / (1024.0 * 1024.0)))
        }
        _ => String::new(),
    };
    format!(
        "parked green thread {} KiB RSS ({live} live, {PARKED_STACK_KIB} KiB stacks, \
         hello_green){capacity}",
        num(kib)
    )
}
