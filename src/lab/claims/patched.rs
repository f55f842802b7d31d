//! C9: blocking code that has never heard of greenloop, patched.
//!
//! One handler written with nothing but std (a blocking
//! `std::net::TcpStream`, `std::thread::sleep`) runs on green threads,
//! once unpatched (`green-std`: every blocking call blocks the OS thread,
//! so one connection is served at a time) and once with greenloop-patch
//! (`green-patched`: every such call parks only its green thread), beside
//! the stackless async cell. The claim, gevent's: patched, the same code
//! serves all its clients at once, as async does.

use std::io;
use std::time::Duration;

use super::servers::{C3_CONCURRENT, C3_SERIAL_SLACK, OneVsAll, sleep_close_each};
use super::{Claim, Ctx, Verdict, errors_note, num};
use crate::lab::measure::Run;

/// C9: clients, each asking for one sleep at a time.
pub const C9_CONNS: usize = 10;
/// C9: the sleep (scaled by `--scale`).
pub const C9_SLEEP: Duration = Duration::from_millis(1000);
/// C9: the std-only handler unpatched, patched, and the async cell.
pub const C9_CELLS: [&str; 3] =
    ["green-std-blocking-sleep", "green-patched-blocking-sleep", "stackless-async-sleep"];

pub(super) const PATCHED_BLOCKING_CODE: Claim = Claim {
    id: "C9_patched_blocking_code",
    measured: "std-only handler (std::net, std::thread::sleep) on green: unpatched vs patched vs async",
    measure: measure_patched_blocking_code,
    evaluate: judge_patched_blocking_code,
    thresholds: || {
        format!(
            "unpatched req/s ≤ {C3_SERIAL_SLACK}/sleep; patched and stackless req/s ≥ \
             {C3_CONCURRENT}×conns/sleep; every run served"
        )
    },
    steps: |_| C9_CELLS.len() as u64,
};

fn measure_patched_blocking_code(ctx: &Ctx<'_>, _: &[Run]) -> io::Result<Vec<Run>> {
    sleep_close_each(ctx, &C9_CELLS, C9_CONNS, ctx.opts.scaled(C9_SLEEP))
}

/// C9's evaluation: unpatched, one request at a time (req/s at most
/// `C3_SERIAL_SLACK` / sleep); patched and async, all at once (req/s at
/// least `C3_CONCURRENT` × conns / sleep), judged as C3 is.
pub fn judge_patched_blocking_code(runs: &[Run]) -> Verdict {
    let judged = match OneVsAll::judge(runs, &C9_CELLS) {
        Ok(judged) => judged,
        Err(verdict) => return verdict,
    };
    let [unpatched, patched, stackless] = judged.rows[..] else {
        return Verdict::missing("C9 cells");
    };
    Verdict::new(
        judged.holds,
        format!(
            "std-only handler on green threads: unpatched {} req/s (one at a time = {}), \
             patched {} req/s, p50 {} ms; stackless async {} req/s (all at once = {}){}",
            num(unpatched.req_per_s),
            num(judged.one_at_a_time),
            num(patched.req_per_s),
            num(patched.p50_ms),
            num(stackless.req_per_s),
            num(judged.all_at_once),
            errors_note(runs)
        ),
    )
}
