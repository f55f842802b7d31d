//! The gate every evaluation passes first: a verdict comes only from runs
//! that served.
//!
//! A run in which every request failed has `req_per_s = 0` and `p50 = 0`,
//! and an upper-bound check ("the pool stays below W / sleep") passes on
//! zeros. So before it compares anything, each evaluation asks [`gate`]
//! about every load run it reads, and returns its answer, an `unknown`
//! verdict that names the run and says what was wrong, when one did not
//! serve:
//!
//! * it completed no request in its window (nothing to judge);
//! * its failures (errors, connect errors included) exceed
//!   [`MAX_ERROR_SHARE`] of its attempts (the figures describe failures);
//! * where the claim does not measure queueing ([`Queueing::NotJudged`]),
//!   more than [`MAX_UNFINISHED_SHARE`] of its connections left a request
//!   unanswered, or completed none in the window (the window did not
//!   measure the server's pace).
//!
//! Where queueing is what the claim measures ([`Queueing::Judged`]: a
//! pool of 4 under 100 clients), unfinished requests and idle connections
//! are the finding, not a fault, and only the first two checks apply.

use super::{Holds, Verdict};
use crate::lab::measure::Run;

/// A run's failed requests and connects may be at most this share of its
/// attempts (successes + failures) for its figures to count.
pub const MAX_ERROR_SHARE: f64 = 0.01;
/// Where queueing is not judged: at most this share of a run's
/// connections may end with a request unanswered, or with none completed
/// in the window.
pub const MAX_UNFINISHED_SHARE: f64 = 0.05;

/// Whether the claim judges queueing with this run (see the module docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Queueing {
    /// Requests that wait (unfinished, idle connections) are the finding.
    Judged,
    /// Every connection should be served throughout the window.
    NotJudged,
}

/// Why `run` does not count as served, or `None` when it does.
pub fn unserved_reason(run: &Run, queueing: Queueing) -> Option<String> {
    let attempts = run.requests + run.errors;
    if run.requests == 0 {
        let why = run.first_error.as_deref().map_or_else(String::new, |e| format!(": {e}"));
        return Some(format!("served no request ({} errors{why})", run.errors));
    }
    if run.errors as f64 > MAX_ERROR_SHARE * attempts as f64 {
        return Some(format!(
            "{} of {attempts} attempts failed (over {}%){}",
            run.errors,
            MAX_ERROR_SHARE * 100.0,
            run.first_error.as_deref().map_or_else(String::new, |e| format!(": {e}"))
        ));
    }
    let bound = MAX_UNFINISHED_SHARE * run.conns as f64;
    if queueing == Queueing::NotJudged {
        if run.unfinished as f64 > bound {
            return Some(format!(
                "{} of {} conns left a request unfinished",
                run.unfinished, run.conns
            ));
        }
        if run.idle_conns as f64 > bound {
            return Some(format!(
                "{} of {} conns were idle in the window",
                run.idle_conns, run.conns
            ));
        }
    }
    None
}

/// The `unknown` verdict for the first of `runs` that did not serve, or
/// `None` when all did.
pub fn gate<'a>(runs: impl IntoIterator<Item = &'a Run>, queueing: Queueing) -> Option<Verdict> {
    runs.into_iter().find_map(|r| {
        let why = unserved_reason(r, queueing)?;
        Some(Verdict::new(Holds::Unknown, format!("run {} at {} conns {why}", r.cell, r.conns)))
    })
}
