//! The lab: measures the server matrix under load, so the claims of the
//! sync-vs-async debate can be checked with numbers (issue 7).
//!
//! # The claim run
//!
//! [`run`] (what `cargo run --release --example lab` calls) runs every
//! claim of [`claims`] (or those of [`Options::only`]), each a set of
//! measurements and an evaluation against thresholds written next to it,
//! and returns a [`Report`] (also written to `target/lab/report.{json,md}`,
//! with SVG [`charts`]). Everything below is what one measurement does.
//!
//! # How one measurement runs
//!
//! [`measure`] takes a [`Cell`] (a runtime, a style, an offload, workers
//! and a service; written as a spec such as `green-blocking-sleep`) and a
//! [`LoadSpec`] (what to ask, how many connections, how long), and:
//!
//! 1. **starts the server as a child process** ([`ServerProc::spawn`]): the
//!    lab binary re-executes itself as `lab --serve <spec>` and reads the
//!    `listening on ADDR` line. With two or more CPUs the server is pinned
//!    to the first CPU and the lab (the client) to the others, so neither
//!    steals the other's time and the server's CPU time is its own (a
//!    server on several cores, `-c<N>` or tokio's `-w<N>`, shares every
//!    CPU with the client instead: [`Placement`]);
//! 2. **runs a closed-loop load** ([`load`]): one green thread per
//!    connection (greenloop's own runtime drives the client), each sending
//!    a request, reading the whole response, and sending the next over the
//!    same keep-alive connection. A warm-up comes first; requests completed
//!    during it are not recorded. Then every request's latency goes into an
//!    HDR histogram ([`Latency`]) and every failure is counted: a non-200
//!    status, an I/O error, a failed connect — never hidden;
//! 3. **reads `/proc/<pid>`** ([`procfs`]) at both edges of the measured
//!    window: the server's user and system CPU time, so CPU per request
//!    covers exactly the requests counted, and its RSS at the end;
//! 4. **stops the server** with SIGTERM (graceful; SIGKILL after a timeout)
//!    and returns a [`Run`], whose fields are the rows of `report.json`.
//!
//! ```text
//!  lab (CPUs 1..n)                               lab --serve <spec> (CPU 0)
//!   ├─ ServerProc::spawn ──────── exec ────────> serve(listener, service, config)
//!   │    <───────── "listening on 127.0.0.1:P" ──┤
//!   ├─ sampler thread: /proc/<pid>/stat at warm-up end and at stop
//!   ├─ green runtime: N clients ── GET /sleep?ms=100 ──> ... <── 200 ──┤
//!   └─ ServerProc::stop ──────── SIGTERM ───────> drain, exit 0
//! ```
//!
//! The open-file limit caps how many connections each process can hold:
//! [`rlimit::raise_nofile_limit`] raises it to the hard limit (children
//! inherit it), and [`rlimit::max_connections`] tells a scenario how far to
//! scale down.
//!
//! The pieces are usable apart: [`run_load`] against any address,
//! [`measure_at`] against a server run in-process (no `/proc` figures),
//! [`serve_cell`] to run a cell's server on a listener.

pub mod affinity;
pub mod cell;
pub mod charts;
pub mod claims;
mod driver;
pub mod estimates;
pub mod latency;
pub mod load;
mod measure;
pub mod procfs;
pub mod report;
pub mod rlimit;
pub mod seeds;
pub mod server;

pub use cell::{Cell, CellRuntime, ServiceKind};
pub use claims::{ClaimId, Holds, Options, Verdict};
pub use driver::run;
pub use latency::Latency;
pub use load::{
    LoadResult, LoadSpec, Timeline, Window, Workload, echo_load, http_load, run_load, run_load_in,
};
pub use measure::{RUN_FIELDS, Run, ServerUsage, measure, measure_at, measure_placed};
pub use report::Report;
pub use server::{Placement, ServerProc, serve_cell};
