//! [`Cell`]: one server configuration the lab measures (a cell of the
//! server matrix, plus the tokio reference), and its spec string.
//!
//! A spec names the cell in one token, so it can travel on a command line
//! (`lab --serve <spec>`) and label a row of the report:
//!
//! ```text
//! <runtime>-<style>-<service>[-<offload>][-w<N>][-c<N>]
//!
//! runtime   threads | green | green-patched | green-std | stackless | tokio
//!           (green-patched and green-std: blocking style, one core only)
//! style     blocking | async            (tokio: async only)
//! service   echo | sleep
//! offload   pool | inline               (stackless + blocking only; default pool)
//! wN        workers: threads: a fixed pool of N (default: a thread per
//!           connection); stackless + blocking + pool: the pool's size;
//!           tokio: N worker threads (default 1: current_thread)
//! cN        green and stackless: N shards, one per core (default 1; see
//!           `ServerConfig::cores`); tokio: N current_thread runtimes,
//!           one per core, each on its own SO_REUSEPORT listener (the
//!           thread-per-core shape actix-web runs tokio in)
//!
//! green-blocking-sleep   threads-blocking-sleep-w4   stackless-blocking-sleep-inline
//! stackless-async-echo   tokio-async-echo            tokio-async-sleep-w2
//! green-blocking-echo-c2 stackless-async-sleep-c2
//! ```
//!
//! [`Cell::to_spec`] writes the offload of a stackless blocking cell even
//! when it is the default, so report rows say which one ran.

use std::fmt;
use std::io;
use std::str::FromStr;

use greenloop_net::server::{Offload, Runtime, ServerConfig, Style};

/// Which runtime serves a cell: the three of the server matrix, or tokio.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CellRuntime {
    /// OS threads ([`Runtime::Threads`]).
    Threads,
    /// Green threads ([`Runtime::Green`]).
    Green,
    /// The std-only handler on green threads with greenloop-patch
    /// ([`Runtime::GreenPatched`]).
    GreenPatched,
    /// The std-only handler on green threads, unpatched
    /// ([`Runtime::GreenStd`]).
    GreenStd,
    /// The stackless executor ([`Runtime::Stackless`]).
    Stackless,
    /// tokio: the reference, served by the lab binary itself (tokio is not
    /// a dependency of the library).
    Tokio,
}

impl CellRuntime {
    /// Every runtime, in report order.
    pub const ALL: [CellRuntime; 6] = [
        CellRuntime::Threads,
        CellRuntime::Green,
        CellRuntime::GreenPatched,
        CellRuntime::GreenStd,
        CellRuntime::Stackless,
        CellRuntime::Tokio,
    ];

    /// Its name in specs and reports.
    pub fn name(self) -> &'static str {
        match self {
            CellRuntime::Threads => "threads",
            CellRuntime::Green => "green",
            CellRuntime::GreenPatched => "green-patched",
            CellRuntime::GreenStd => "green-std",
            CellRuntime::Stackless => "stackless",
            CellRuntime::Tokio => "tokio",
        }
    }

    /// The server matrix's runtime, `None` for tokio.
    pub fn matrix(self) -> Option<Runtime> {
        match self {
            CellRuntime::Threads => Some(Runtime::Threads),
            CellRuntime::Green => Some(Runtime::Green),
            CellRuntime::GreenPatched => Some(Runtime::GreenPatched),
            CellRuntime::GreenStd => Some(Runtime::GreenStd),
            CellRuntime::Stackless => Some(Runtime::Stackless),
            CellRuntime::Tokio => None,
        }
    }
}

/// Which service a cell runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ServiceKind {
    /// Echo: every byte read is written back.
    Echo,
    /// HTTP `GET /sleep?ms=N`: answers `{"message":"Done"}` after N ms.
    Sleep,
}

impl ServiceKind {
    /// Its name in specs and reports.
    pub fn name(self) -> &'static str {
        match self {
            ServiceKind::Echo => "echo",
            ServiceKind::Sleep => "sleep",
        }
    }
}

/// One server configuration to measure; see the module docs for its spec.
///
/// ```
/// use greenloop::lab::{Cell, CellRuntime, ServiceKind};
/// use greenloop::net::server::{Offload, Style};
///
/// let cell = Cell::parse_spec("stackless-blocking-sleep-inline").unwrap();
/// assert_eq!(cell.runtime, CellRuntime::Stackless);
/// assert_eq!(cell.style, Style::Blocking);
/// assert_eq!(cell.offload, Offload::Inline);
/// assert_eq!(cell.service, ServiceKind::Sleep);
/// assert_eq!(cell.to_spec(), "stackless-blocking-sleep-inline");
///
/// let pool = Cell::new(CellRuntime::Threads, Style::Blocking, ServiceKind::Sleep).workers(4);
/// assert_eq!(pool.to_spec(), "threads-blocking-sleep-w4");
/// assert!(Cell::parse_spec("tokio-blocking-echo").is_err());
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cell {
    /// The runtime.
    pub runtime: CellRuntime,
    /// The handler style.
    pub style: Style,
    /// How a stackless runtime runs a blocking handler; [`Offload::Pool`]
    /// (ignored) elsewhere.
    pub offload: Offload,
    /// Workers: see the module docs; `None` is the runtime's default.
    pub workers: Option<usize>,
    /// The service.
    pub service: ServiceKind,
    /// Green and stackless: shards (cores); 1 elsewhere.
    pub cores: usize,
}

impl Cell {
    /// A cell with pool offload and default workers.
    pub fn new(runtime: CellRuntime, style: Style, service: ServiceKind) -> Cell {
        Cell { runtime, style, offload: Offload::Pool, workers: None, service, cores: 1 }
    }

    /// This cell with `offload` (meaningful for stackless blocking cells).
    pub fn offload(self, offload: Offload) -> Cell {
        Cell { offload, ..self }
    }

    /// This cell with `workers` workers.
    pub fn workers(self, workers: usize) -> Cell {
        Cell { workers: Some(workers), ..self }
    }

    /// This cell on `cores` shards (green and stackless).
    pub fn cores(self, cores: usize) -> Cell {
        Cell { cores, ..self }
    }

    /// How many cores its server may use: `cores`, or tokio's workers.
    /// Above 1, the lab does not pin the server to one CPU.
    pub fn server_cores(&self) -> usize {
        match self.runtime {
            CellRuntime::Tokio => self.workers.unwrap_or(self.cores),
            _ => self.cores,
        }
    }

    /// Whether [`offload`](Cell::offload) means anything here: a stackless
    /// runtime running a blocking-style handler.
    pub fn has_offload(&self) -> bool {
        self.runtime == CellRuntime::Stackless && self.style == Style::Blocking
    }

    /// The offload's name where it applies (see
    /// [`has_offload`](Cell::has_offload)), for reports.
    pub fn offload_name(&self) -> Option<&'static str> {
        self.has_offload().then_some(match self.offload {
            Offload::Pool => "pool",
            Offload::Inline => "inline",
        })
    }

    /// The spec string (see the module docs).
    pub fn to_spec(&self) -> String {
        let mut spec = format!("{}-{}-{}", self.runtime.name(), self.style, self.service.name());
        if let Some(offload) = self.offload_name() {
            spec.push('-');
            spec.push_str(offload);
        }
        if let Some(w) = self.workers {
            spec.push_str(&format!("-w{w}"));
        }
        if self.cores != 1 {
            spec.push_str(&format!("-c{}", self.cores));
        }
        spec
    }

    /// Parses a spec (see the module docs).
    ///
    /// # Errors
    ///
    /// `InvalidInput`, naming the part that is wrong and what is expected.
    pub fn parse_spec(spec: &str) -> io::Result<Cell> {
        let bad = |why: String| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "bad cell spec '{spec}': {why} (expected \
                     <threads|green|green-patched|green-std|stackless|tokio>-<blocking|async>-<echo|sleep>\
                     [-<pool|inline>][-w<N>][-c<N>], e.g. green-blocking-sleep)"
                ),
            )
        };
        let mut parts = spec.split('-').peekable();
        let runtime = match parts.next().unwrap_or_default() {
            "threads" => CellRuntime::Threads,
            "green" if parts.next_if_eq(&"patched").is_some() => CellRuntime::GreenPatched,
            "green" if parts.next_if_eq(&"std").is_some() => CellRuntime::GreenStd,
            "green" => CellRuntime::Green,
            "stackless" => CellRuntime::Stackless,
            "tokio" => CellRuntime::Tokio,
            other => return Err(bad(format!("unknown runtime '{other}'"))),
        };
        let style: Style = parts
            .next()
            .ok_or_else(|| bad("no style".into()))?
            .parse()
            .map_err(|e| bad(format!("{e}")))?;
        let service = match parts.next() {
            Some("echo") => ServiceKind::Echo,
            Some("sleep") => ServiceKind::Sleep,
            Some(other) => return Err(bad(format!("unknown service '{other}'"))),
            None => return Err(bad("no service".into())),
        };
        let mut cell = Cell::new(runtime, style, service);
        let mut offload = None;
        let mut cores = None;
        for part in parts {
            match part {
                "pool" | "inline"
                    if offload.is_none() && cell.workers.is_none() && cores.is_none() =>
                {
                    offload = Some(if part == "pool" { Offload::Pool } else { Offload::Inline });
                }
                w if w.starts_with('w') && cell.workers.is_none() && cores.is_none() => {
                    let n: usize = w[1..]
                        .parse()
                        .map_err(|_| bad(format!("'{w}' is not w<N> with N a number")))?;
                    cell.workers = Some(n);
                }
                c if c.starts_with('c') && cores.is_none() => {
                    let n: usize = c[1..]
                        .parse()
                        .map_err(|_| bad(format!("'{c}' is not c<N> with N a number")))?;
                    cores = Some(n);
                }
                other => return Err(bad(format!("unexpected or repeated part '{other}'"))),
            }
        }
        if let Some(offload) = offload {
            if !cell.has_offload() {
                return Err(bad("pool|inline applies to stackless-blocking cells only".into()));
            }
            cell.offload = offload;
        }
        cell.cores = cores.unwrap_or(1);
        cell.validate().map_err(bad)?;
        Ok(cell)
    }

    /// Checks the combination makes sense; `Err` says why not.
    fn validate(&self) -> Result<(), String> {
        if self.runtime == CellRuntime::Tokio && self.style != Style::Async {
            return Err("tokio runs async handlers only".into());
        }
        if matches!(self.runtime, CellRuntime::GreenPatched | CellRuntime::GreenStd)
            && self.style != Style::Blocking
        {
            return Err(format!("{} runs its std-only blocking handler only", self.runtime.name()));
        }
        if self.workers == Some(0) {
            return Err("w0: at least one worker".into());
        }
        if self.cores == 0 {
            return Err("c0: at least one core".into());
        }
        if self.cores != 1
            && matches!(
                self.runtime,
                CellRuntime::Threads | CellRuntime::GreenPatched | CellRuntime::GreenStd
            )
        {
            return Err(format!(
                "c<N> applies to green, stackless and tokio cells, not {}",
                self.runtime.name()
            ));
        }
        if self.cores != 1 && self.runtime == CellRuntime::Tokio && self.workers.is_some() {
            return Err("tokio: w<N> (one multi-thread runtime) or c<N> (one per core)".into());
        }
        let workers_apply = match self.runtime {
            CellRuntime::Threads | CellRuntime::Tokio => true,
            CellRuntime::Stackless => self.has_offload() && self.offload == Offload::Pool,
            CellRuntime::Green | CellRuntime::GreenPatched | CellRuntime::GreenStd => false,
        };
        if self.workers.is_some() && !workers_apply {
            return Err(format!(
                "w<N> does not apply to {}-{} cells",
                self.runtime.name(),
                self.style
            ));
        }
        Ok(())
    }

    /// The server matrix's config for this cell (`None` for tokio), with a
    /// 0.5 s grace period: the lab stops a server only after its clients
    /// have closed their connections, so what is left then is work queued
    /// for clients that are gone (a pool's backlog of sleeps), not worth
    /// waiting seconds for.
    pub fn server_config(&self) -> Option<ServerConfig> {
        let mut config = ServerConfig::new(self.runtime.matrix()?, self.style);
        config.offload = self.offload;
        config.workers = self.workers;
        config.grace = std::time::Duration::from_millis(500);
        config.cores = self.cores;
        Some(config)
    }
}

impl fmt::Display for Cell {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_spec())
    }
}

impl FromStr for Cell {
    type Err = io::Error;

    fn from_str(spec: &str) -> io::Result<Cell> {
        Cell::parse_spec(spec)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every valid cell with workers in {None, 3} and cores in {1, 2}.
    fn all_cells() -> Vec<Cell> {
        let mut cells = Vec::new();
        for runtime in CellRuntime::ALL {
            for style in [Style::Blocking, Style::Async] {
                for service in [ServiceKind::Echo, ServiceKind::Sleep] {
                    for offload in [Offload::Pool, Offload::Inline] {
                        for workers in [None, Some(3)] {
                            for cores in [1, 2] {
                                let cell =
                                    Cell { runtime, style, offload, workers, service, cores };
                                let canonical = cell.has_offload() || offload == Offload::Pool;
                                if canonical && cell.validate().is_ok() {
                                    cells.push(cell);
                                }
                            }
                        }
                    }
                }
            }
        }
        cells
    }

    #[test]
    fn every_cell_round_trips_through_its_spec() {
        let cells = all_cells();
        assert_eq!(
            cells.len(),
            2 * 2 * 2 /* threads */ + 2 * 2 /* green */
            + 2 /* stackless async */ + 2 * 3 /* stackless blocking: pool, pool-wN, inline */
            + 2 * 2 /* tokio */
            + 2 * 2 /* green-patched and green-std: blocking, one core */
            + 2 * 2 + 2 + 2 * 3 /* green and stackless again on 2 cores */
            + 2 /* tokio, one runtime per core */
        );
        for cell in cells {
            let spec = cell.to_spec();
            assert_eq!(Cell::parse_spec(&spec).unwrap(), cell, "{spec}");
            assert_eq!(spec.parse::<Cell>().unwrap().to_string(), spec);
        }
    }

    #[test]
    fn the_issue_examples_parse() {
        for (spec, canonical) in [
            ("green-blocking-sleep", "green-blocking-sleep"),
            ("threads-blocking-sleep-w4", "threads-blocking-sleep-w4"),
            ("stackless-blocking-sleep-inline", "stackless-blocking-sleep-inline"),
            ("stackless-blocking-sleep", "stackless-blocking-sleep-pool"),
            ("stackless-blocking-sleep-pool-w8", "stackless-blocking-sleep-pool-w8"),
            ("tokio-async-echo", "tokio-async-echo"),
            ("green-blocking-echo-c2", "green-blocking-echo-c2"),
            ("stackless-blocking-sleep-pool-w8-c2", "stackless-blocking-sleep-pool-w8-c2"),
            ("stackless-async-echo-c1", "stackless-async-echo"),
        ] {
            assert_eq!(Cell::parse_spec(spec).unwrap().to_spec(), canonical);
        }
        let w4 = Cell::parse_spec("threads-blocking-sleep-w4").unwrap();
        assert_eq!(w4.workers, Some(4));
        assert_eq!(w4.server_config().unwrap().workers, Some(4));
        assert!(Cell::parse_spec("tokio-async-echo").unwrap().server_config().is_none());
        let c2 = Cell::parse_spec("green-async-sleep-c2").unwrap();
        assert_eq!((c2.cores, c2.server_cores()), (2, 2));
        assert_eq!(c2.server_config().unwrap().cores, 2);
        assert_eq!(Cell::parse_spec("tokio-async-echo-w2").unwrap().server_cores(), 2);
        let per_core = Cell::parse_spec("tokio-async-echo-c4").unwrap();
        assert_eq!((per_core.cores, per_core.workers, per_core.server_cores()), (4, None, 4));
    }

    #[test]
    fn bad_specs_say_what_is_wrong() {
        for (spec, says) in [
            ("", "unknown runtime ''"),
            ("fibers-blocking-sleep", "unknown runtime 'fibers'"),
            ("green", "no style"),
            ("green-sync-sleep", "unknown style 'sync'"),
            ("green-async", "no service"),
            ("green-async-ping", "unknown service 'ping'"),
            ("green-blocking-sleep-inline", "stackless-blocking cells only"),
            ("stackless-async-echo-pool", "stackless-blocking cells only"),
            ("green-blocking-sleep-w4", "does not apply"),
            ("stackless-blocking-sleep-inline-w4", "does not apply"),
            ("threads-blocking-sleep-wx", "'wx' is not w<N>"),
            ("threads-blocking-sleep-w0", "at least one worker"),
            ("threads-blocking-sleep-w2-w3", "repeated part 'w3'"),
            ("stackless-blocking-sleep-w2-pool", "unexpected or repeated part 'pool'"),
            ("tokio-blocking-sleep", "tokio runs async handlers only"),
            ("green-blocking-echo-c0", "at least one core"),
            ("green-blocking-echo-cx", "'cx' is not c<N>"),
            ("threads-blocking-echo-c2", "not threads"),
            ("tokio-async-echo-w2-c2", "or c<N> (one per core)"),
            ("green-async-echo-c2-c3", "repeated part 'c3'"),
            ("stackless-async-echo-c2-w2", "unexpected or repeated part 'w2'"),
        ] {
            let e = Cell::parse_spec(spec).unwrap_err();
            assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
            let msg = e.to_string();
            assert!(msg.contains(says), "{spec}: {msg}");
            assert!(msg.contains("e.g. green-blocking-sleep"), "{msg}");
        }
    }

    #[test]
    fn offload_is_named_only_where_it_applies() {
        let c = |s: &str| Cell::parse_spec(s).unwrap().offload_name();
        assert_eq!(c("stackless-blocking-echo"), Some("pool"));
        assert_eq!(c("stackless-blocking-echo-inline"), Some("inline"));
        assert_eq!(c("stackless-async-echo"), None);
        assert_eq!(c("green-blocking-echo"), None);
    }
}
