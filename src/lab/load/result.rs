//! [`LoadResult`]: what one load run measured.

use std::fmt;
use std::time::Duration;

use serde::{Serialize, Serializer};

use super::Tally;
use crate::lab::latency::Latency;

fn millis<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64() * 1e3)
}

fn secs<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64())
}

/// What a load run measured. Serialized with durations as numbers:
/// `elapsed_s` in seconds, `p50_ms` .. `max_ms` in milliseconds.
#[derive(Clone, Debug, Serialize)]
pub struct LoadResult {
    /// Connections asked for.
    pub conns: usize,
    /// Successful requests completed in the measured window.
    pub requests: u64,
    /// The requests served in the window, as `req_per_s` counts them: on
    /// keep-alive loads by cycles (see [`crate::lab::load`]), else
    /// `requests`.
    pub served: f64,
    /// Failed requests over the whole run: non-200 statuses, I/O errors,
    /// wrong echoes. Connect failures are counted apart.
    pub errors: u64,
    /// Failed connects over the whole run (refused, timed out, `EMFILE`...).
    pub connect_errors: u64,
    /// Requests (or connects) in flight at the stop and still unanswered
    /// after the linger: a sign of requests queued, not served.
    pub unfinished: u64,
    /// Connections that completed no request in the measured window.
    pub idle_conns: u64,
    /// Keep-alive connections still without their first answer when the
    /// window opened, one warm-up late (see [`crate::lab::load::Timeline`]).
    pub late_conns: u64,
    /// Connections opened, reconnects included.
    pub connections: u64,
    /// The first error seen, as text.
    pub first_error: Option<String>,
    /// The measured window's length.
    #[serde(rename = "elapsed_s", serialize_with = "secs")]
    pub elapsed: Duration,
    /// `served / elapsed`.
    pub req_per_s: f64,
    /// Median latency of the recorded requests.
    #[serde(rename = "p50_ms", serialize_with = "millis")]
    pub p50: Duration,
    /// 90th percentile latency.
    #[serde(rename = "p90_ms", serialize_with = "millis")]
    pub p90: Duration,
    /// 99th percentile latency.
    #[serde(rename = "p99_ms", serialize_with = "millis")]
    pub p99: Duration,
    /// Largest latency.
    #[serde(rename = "max_ms", serialize_with = "millis")]
    pub max: Duration,
    /// Every recorded latency, merged over all connections.
    #[serde(skip)]
    pub latency: Latency,
}

impl LoadResult {
    /// The result of `tally` over a window of `elapsed`, its rate counted
    /// by cycles when `by_cycles`, else by completions.
    pub(super) fn new(
        conns: usize,
        tally: Tally,
        elapsed: Duration,
        by_cycles: bool,
    ) -> LoadResult {
        let latency = if tally.latency.is_empty() { tally.first_latency } else { tally.latency };
        let secs = elapsed.as_secs_f64();
        let served = if by_cycles { tally.cycles } else { tally.requests as f64 };
        LoadResult {
            conns,
            requests: tally.requests,
            served,
            errors: tally.errors,
            connect_errors: tally.connect_errors,
            unfinished: tally.unfinished,
            idle_conns: tally.idle_conns,
            late_conns: 0,
            connections: tally.connections,
            first_error: tally.first_error,
            elapsed,
            req_per_s: if secs > 0.0 { served / secs } else { 0.0 },
            p50: latency.percentile(50.0),
            p90: latency.percentile(90.0),
            p99: latency.percentile(99.0),
            max: latency.max(),
            latency,
        }
    }
}

impl fmt::Display for LoadResult {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        write!(
            f,
            "{} requests in {:.2} s = {:.1} req/s, p50 {:.3} ms, p90 {:.3} ms, p99 {:.3} ms, \
             max {:.3} ms, {} errors, {} connect errors, {} unfinished, {} idle conns, {} late \
             conns",
            self.requests,
            self.elapsed.as_secs_f64(),
            self.req_per_s,
            ms(self.p50),
            ms(self.p90),
            ms(self.p99),
            ms(self.max),
            self.errors,
            self.connect_errors,
            self.unfinished,
            self.idle_conns,
            self.late_conns,
        )?;
        if let Some(e) = &self.first_error {
            write!(f, " (first error: {e})")?;
        }
        Ok(())
    }
}
