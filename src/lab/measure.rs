//! [`measure`]: one cell under one load, as one [`Run`].

use std::collections::BTreeMap;
use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::cell::{Cell, ServiceKind};
use super::load::{LoadResult, LoadSpec, Timeline, Workload, run_load_in};
use super::procfs::{self, ContextSwitches, CpuTimes};
use super::server::{Placement, ServerProc};

/// The fields every load run's row in `report.json` has, whatever its
/// claim: what readers of the report may rely on (the tests check them).
pub const RUN_FIELDS: [&str; 12] = [
    "claim",
    "runtime",
    "style",
    "offload",
    "conns",
    "req_per_s",
    "p50_ms",
    "p99_ms",
    "errors",
    "server_user_ns_per_req",
    "server_sys_ns_per_req",
    "rss_kib",
];

/// One measurement: a cell under a load. The field names are those of the
/// `runs` of the lab's `report.json`; durations are in milliseconds.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Run {
    /// The claim this run belongs to (e.g. `C1_sleep_queue`); empty for a
    /// run measured outside the claim-driven lab.
    #[serde(default)]
    pub claim: String,
    /// What kind of row this is within its claim, when a claim measures
    /// more than one thing (e.g. `sequential`, `idle`, `spawn_join`).
    #[serde(default)]
    pub variant: Option<String>,
    /// Where a figure came from or what it means, as text (e.g.
    /// `criterion` or `inline`).
    #[serde(default)]
    pub note: Option<String>,
    /// The cell's spec, e.g. `threads-blocking-sleep-w4`.
    pub cell: String,
    /// `threads`, `green`, `stackless` or `tokio`.
    pub runtime: String,
    /// `blocking` or `async`.
    pub style: String,
    /// `pool` or `inline` for stackless blocking cells, else `None`.
    pub offload: Option<String>,
    /// The cell's workers, if set.
    pub workers: Option<usize>,
    /// `echo` or `sleep`.
    pub service: String,
    /// Client connections.
    pub conns: usize,
    /// Length of the measured window, in seconds.
    pub seconds: f64,
    /// Successful requests in the window.
    pub requests: u64,
    /// Successful requests per second: on keep-alive loads counted by
    /// cycles (see [`crate::lab::load`]), so it may differ from
    /// `requests / seconds`.
    pub req_per_s: f64,
    /// Median latency, ms.
    pub p50_ms: f64,
    /// 90th percentile latency, ms.
    pub p90_ms: f64,
    /// 99th percentile latency, ms.
    pub p99_ms: f64,
    /// Largest latency, ms.
    pub max_ms: f64,
    /// Everything that failed, over the whole run: request errors plus
    /// connect errors.
    pub errors: u64,
    /// The connect failures among `errors`.
    pub connect_errors: u64,
    /// Requests still unanswered when the run stopped.
    pub unfinished: u64,
    /// Connections that completed no request in the window.
    pub idle_conns: u64,
    /// The first error seen, as text.
    pub first_error: Option<String>,
    /// Server user CPU per request served in the window (counted as
    /// `req_per_s` counts them), ns (`None` without a server process to
    /// read, or without requests).
    pub server_user_ns_per_req: Option<f64>,
    /// Server system CPU per successful request in the window, ns.
    pub server_sys_ns_per_req: Option<f64>,
    /// Server resident memory at the end of the window, KiB.
    pub rss_kib: Option<u64>,
    /// Server resident memory when the load started (no connections yet),
    /// KiB: with `rss_kib`, the memory the connections cost.
    pub rss_kib_start: Option<u64>,
    /// Whether server and client ran on separate CPUs.
    pub pinned: bool,
    /// Further figures of this row, by name (e.g. `elapsed_ms`,
    /// `rss_kib_per_conn`, `ns_per_op`), flattened into the row's JSON.
    #[serde(flatten, default)]
    pub extra: BTreeMap<String, f64>,
}

impl Run {
    /// A run from a load result and the server's accounting (if read).
    pub fn new(cell: &Cell, load: &LoadResult, server: Option<&ServerUsage>, pinned: bool) -> Run {
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        let per_req = |d: Duration| {
            (load.requests > 0 && load.served > 0.0).then(|| d.as_secs_f64() * 1e9 / load.served)
        };
        let mut run = Run {
            claim: String::new(),
            variant: None,
            note: None,
            cell: cell.to_spec(),
            runtime: cell.runtime.name().into(),
            style: cell.style.to_string(),
            offload: cell.offload_name().map(Into::into),
            workers: cell.workers,
            service: cell.service.name().into(),
            conns: load.conns,
            seconds: load.elapsed.as_secs_f64(),
            requests: load.requests,
            req_per_s: load.req_per_s,
            p50_ms: ms(load.p50),
            p90_ms: ms(load.p90),
            p99_ms: ms(load.p99),
            max_ms: ms(load.max),
            errors: load.errors + load.connect_errors,
            connect_errors: load.connect_errors,
            unfinished: load.unfinished,
            idle_conns: load.idle_conns,
            first_error: load.first_error.clone(),
            server_user_ns_per_req: server.and_then(|s| per_req(s.cpu.user)),
            server_sys_ns_per_req: server.and_then(|s| per_req(s.cpu.system)),
            rss_kib: server.map(|s| s.rss_kib),
            rss_kib_start: server.map(|s| s.rss_kib_start),
            pinned,
            extra: server.map_or_else(BTreeMap::new, |s| s.switch_rates(load.served)),
        };
        if load.late_conns > 0 {
            run.extra.insert(LATE_CONNS.into(), load.late_conns as f64);
        }
        run
    }

    /// A row that is not a load run (an in-process timing, a memory
    /// reading): every load figure zero or `None`, labelled with `claim`,
    /// `runtime`, `style` and `variant`; `cell` is `runtime-style`.
    pub fn figure(claim: &str, runtime: &str, style: &str, variant: &str) -> Run {
        Run {
            claim: claim.into(),
            variant: Some(variant.into()),
            note: None,
            cell: format!("{runtime}-{style}"),
            runtime: runtime.into(),
            style: style.into(),
            offload: None,
            workers: None,
            service: String::new(),
            conns: 0,
            seconds: 0.0,
            requests: 0,
            req_per_s: 0.0,
            p50_ms: 0.0,
            p90_ms: 0.0,
            p99_ms: 0.0,
            max_ms: 0.0,
            errors: 0,
            connect_errors: 0,
            unfinished: 0,
            idle_conns: 0,
            first_error: None,
            server_user_ns_per_req: None,
            server_sys_ns_per_req: None,
            rss_kib: None,
            rss_kib_start: None,
            pinned: false,
            extra: BTreeMap::new(),
        }
    }

    /// This run labelled with `claim`.
    pub fn for_claim(self, claim: &str) -> Run {
        Run { claim: claim.into(), ..self }
    }

    /// An extra figure by name (see [`extra`](Run::extra)).
    pub fn get(&self, name: &str) -> Option<f64> {
        self.extra.get(name).copied()
    }
}

impl fmt::Display for Run {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: {} conns, {:.1} req/s, p50 {:.2} ms, p99 {:.2} ms, {} errors",
            self.cell, self.conns, self.req_per_s, self.p50_ms, self.p99_ms, self.errors
        )?;
        if let (Some(user), Some(sys)) = (self.server_user_ns_per_req, self.server_sys_ns_per_req) {
            write!(f, ", server CPU/req {:.1} µs user + {:.1} µs sys", user / 1e3, sys / 1e3)?;
        }
        if let (Some(start), Some(end)) = (self.rss_kib_start, self.rss_kib) {
            let mib = |kib: u64| kib as f64 / 1024.0;
            write!(f, ", server RSS {:.1} -> {:.1} MiB", mib(start), mib(end))?;
        }
        if self.unfinished > 0 || self.idle_conns > 0 {
            write!(f, ", {} unfinished, {} idle conns", self.unfinished, self.idle_conns)?;
        }
        write!(f, "{}", if self.pinned { " (pinned)" } else { " (not pinned)" })?;
        if let Some(e) = &self.first_error {
            write!(f, " [first error: {e}]")?;
        }
        Ok(())
    }
}

/// What the server used during the measured window.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ServerUsage {
    /// CPU time used between the window's start and its end.
    pub cpu: CpuTimes,
    /// Resident memory at the window's end, KiB.
    pub rss_kib: u64,
    /// Resident memory when the load started, KiB.
    pub rss_kib_start: u64,
    /// Context switches of the server's threads during the window
    /// (counted over its first `SWITCHES_SHARE`, 90%, scaled to all of it).
    pub switches: ContextSwitches,
}

/// The [`Run::extra`] figure, only where some were: keep-alive
/// connections still without their first answer when the window opened
/// (see [`LoadResult::late_conns`]).
pub const LATE_CONNS: &str = "late_conns";
/// The [`Run::extra`] figure: server sleeps (voluntary context switches:
/// its loop found nothing to do and waited) per successful request. How
/// many requests a wake-up serves, inverted: what batching a server gets.
pub const SLEEPS_PER_REQ: &str = "server_sleeps_per_req";
/// The [`Run::extra`] figure: server preemptions (involuntary context
/// switches) per successful request: how often something else, such as
/// the load generator, took the server's CPU.
pub const PREEMPTED_PER_REQ: &str = "server_preempted_per_req";

impl ServerUsage {
    /// [`SLEEPS_PER_REQ`] and [`PREEMPTED_PER_REQ`] over the requests
    /// `served` (none without requests).
    fn switch_rates(&self, served: f64) -> BTreeMap<String, f64> {
        let per_req = |n: u64| n as f64 / served;
        let rates = [
            (SLEEPS_PER_REQ, per_req(self.switches.voluntary)),
            (PREEMPTED_PER_REQ, per_req(self.switches.involuntary)),
        ];
        rates.into_iter().filter(|_| served > 0.0).map(|(k, v)| (k.to_string(), v)).collect()
    }
}

/// Checks that `load` speaks `cell`'s protocol.
fn check_match(cell: &Cell, load: &LoadSpec) -> io::Result<()> {
    match (cell.service, &load.workload) {
        (ServiceKind::Sleep, Workload::Http { .. })
        | (ServiceKind::Echo, Workload::Echo { .. }) => Ok(()),
        _ => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "cell '{cell}' serves {} but the load is {}",
                cell.service.name(),
                load.describe()
            ),
        )),
    }
}

/// Measures `cell` under `load`: starts the server as a child process
/// ([`ServerProc::spawn`], so the current binary must handle `--serve`),
/// runs the load, reads the server's CPU time at both edges of the
/// measured window and its RSS at the start and the end, stops it. See the
/// [module docs](super) for the whole procedure.
///
/// # Errors
///
/// When the server cannot start, the load cannot run, `/proc` cannot be
/// read (the server died), or the server cannot be stopped. Request errors
/// are not errors here: they are counted in the [`Run`].
pub fn measure(cell: &Cell, load: &LoadSpec) -> io::Result<Run> {
    measure_placed(cell, load, Placement::for_cell(cell))
}

/// [`measure`] with the server placed as `placement` says.
///
/// # Errors
///
/// As [`measure`].
pub fn measure_placed(cell: &Cell, load: &LoadSpec, placement: Placement) -> io::Result<Run> {
    measure_env(cell, load, placement, &[]).map(|(run, _)| run)
}

/// [`measure_placed`] with the server's blocked-loop monitor on at
/// `threshold` ([`MONITOR_ENV`]); also returns the first lines the
/// server wrote to stderr, where the monitor reports.
///
/// # Errors
///
/// As [`measure`].
pub fn measure_monitored(
    cell: &Cell,
    load: &LoadSpec,
    placement: Placement,
    threshold: Duration,
) -> io::Result<(Run, Vec<String>)> {
    let ms = threshold.as_millis().max(1).to_string();
    measure_env(cell, load, placement, &[(MONITOR_ENV, &ms)])
}

/// The server's environment variable that turns its blocked-loop monitor
/// on, at a threshold in milliseconds.
pub const MONITOR_ENV: &str = "GREENLOOP_MONITOR_MS";

/// [`measure_placed`] with `env` added to the server's environment; also
/// returns the first lines of the server's stderr.
fn measure_env(
    cell: &Cell,
    load: &LoadSpec,
    placement: Placement,
    env: &[(&str, &str)],
) -> io::Result<(Run, Vec<String>)> {
    check_match(cell, load)?;
    let server = ServerProc::spawn_env(cell, placement, env)?;
    let pinned = server.pinned();
    let measured = measure_at(cell, server.addr(), Some(server.pid()), load);
    let stderr = server.stderr_head();
    let status = server.stop();
    let mut run = measured?;
    let status = status?;
    if !status.success() {
        return Err(io::Error::other(format!(
            "server '{cell}' did not stop cleanly ({status}) after: {run}"
        )));
    }
    run.pinned = pinned;
    Ok((run, stderr))
}

/// Measures a server already listening on `addr`, which `cell` describes
/// (for the labels only). With `pid`, that process's CPU and RSS are read
/// from `/proc` at the window's edges; without, those fields are `None`.
/// This is how a test measures a server it runs in-process.
///
/// # Errors
///
/// As [`measure`], without the server's start and stop.
pub fn measure_at(
    cell: &Cell,
    addr: SocketAddr,
    pid: Option<u32>,
    load: &LoadSpec,
) -> io::Result<Run> {
    check_match(cell, load)?;
    let timeline = Arc::new(load.timeline());
    let sampler = pid
        .map(|pid| {
            let timeline = timeline.clone();
            std::thread::Builder::new()
                .name("lab-sampler".into())
                .spawn(move || sample(pid, &timeline))
        })
        .transpose()?;
    let result = run_load_in(addr, load, &timeline);
    let usage = match sampler.map(|s| s.join()) {
        None => None,
        Some(Ok(usage)) => Some(usage?),
        Some(Err(_)) => return Err(io::Error::other("the /proc sampler thread panicked")),
    };
    Ok(Run::new(cell, &result?, usage.as_ref(), false))
}

/// The share of the window that the context-switch counts cover, from
/// its start: a thread per connection's threads exit as soon as the
/// client stops at the window's end and take their counts with them (a
/// reading at the stop on the loaded machine found 2 of 52 threads left,
/// and fewer switches than at the start), so the second reading comes
/// this far in and the counts are scaled to the whole window.
pub const SWITCHES_SHARE: f64 = 0.9;

/// Reads `pid`'s CPU time (exact from its CPU clock, split into user and
/// system as its ticks are) at the window's `measure_from` (once the
/// timeline has fixed it) and at its `stop`, its context switches from
/// `measure_from` to [`SWITCHES_SHARE`] of the window (scaled to all of
/// it), and its RSS at the start and at the stop. The CPU time is read
/// first, on the edge; the switches right after (a server with many
/// threads takes a while to walk).
fn sample(pid: u32, timeline: &Timeline) -> io::Result<ServerUsage> {
    let rss_kib_start = procfs::rss_kib(pid)?;
    let window = timeline.wait();
    let length = window.stop.saturating_duration_since(window.measure_from);
    sleep_until(window.measure_from);
    let (clock_before, before) = (procfs::cpu_clock(pid)?, procfs::cpu_times(pid)?);
    let switches_before = procfs::context_switches(pid)?;
    sleep_until(window.measure_from + length.mul_f64(SWITCHES_SHARE));
    let switches = (procfs::context_switches(pid)? - switches_before).scaled(1.0 / SWITCHES_SHARE);
    sleep_until(window.stop);
    let (clock_after, after) = (procfs::cpu_clock(pid)?, procfs::cpu_times(pid)?);
    let rss_kib = procfs::rss_kib(pid)?;
    let cpu = (after - before).with_total(clock_after.saturating_sub(clock_before));
    Ok(ServerUsage { cpu, rss_kib, rss_kib_start, switches })
}

fn sleep_until(when: Instant) {
    let left = when.saturating_duration_since(Instant::now());
    if !left.is_zero() {
        std::thread::sleep(left);
    }
}
