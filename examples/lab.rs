//! The lab: measures greenloop's server matrix (and tokio) under load.
//!
//! ```text
//! # the main job: run every claim of issue 7, print which hold (about a minute)
//! cargo run --release --example lab
//! cargo run --release --example lab -- --only C3,E1 --scale 0.2
//! cargo run --release --example lab -- --full          # the seeds' real durations, C6 to 10,000 conns
//! cargo run --release --example lab -- --seeds         # plus the seeds' Python apps (lab/seeds/)
//! cargo run --release --example lab -- --json > report.json
//!
//! # one measurement: a cell under a closed-loop load, one line (or JSON)
//! cargo run --release --example lab -- --measure green-blocking-sleep --conns 100 --seconds 3 --path '/sleep?ms=100'
//! cargo run --release --example lab -- --measure tokio-async-echo --conns 50 --seconds 3 --msg-size 64 --json
//!
//! # the server side, which --measure starts by re-executing this binary
//! cargo run --release --example lab -- --serve threads-blocking-sleep-w4 --addr 127.0.0.1:8080
//! ```
//!
//! Cell specs: `<threads|green|stackless|tokio>-<blocking|async>-<echo|sleep>[-<pool|inline>][-w<N>]`
//! (see `greenloop::lab::cell`). The claims, their thresholds and the
//! report live in the library (`greenloop::lab::claims`, `greenloop::lab::run`).

#[path = "common/listen.rs"]
mod listen;
#[path = "lab/serve.rs"]
mod serve;
#[path = "common/tokio_services.rs"]
mod tokio_services;

use std::io::{self, Write};
use std::process::ExitCode;
use std::time::Duration;

use clap::{ArgGroup, Parser};
use greenloop::lab::{self, Cell, LoadSpec, ServiceKind, rlimit};

/// Measure greenloop's servers under load (see issue 7).
#[derive(Parser, Debug)]
#[command(version, group(ArgGroup::new("mode").args(["serve", "measure"])))]
struct Args {
    /// Run the server of this cell (e.g. green-blocking-sleep) until
    /// SIGINT/SIGTERM; prints `listening on ADDR` first. This is how the
    /// lab starts the server under test.
    #[arg(long, value_name = "SPEC")]
    serve: Option<Cell>,
    /// --serve: the address to listen on (port 0 picks a free port).
    #[arg(long, default_value = "127.0.0.1:0", requires = "serve")]
    addr: String,
    /// Measure this cell (e.g. threads-blocking-sleep-w4): start its server
    /// pinned to CPU 0, load it, print one result line.
    #[arg(long, value_name = "SPEC")]
    measure: Option<Cell>,
    /// --measure: concurrent client connections.
    #[arg(long, default_value_t = 100, requires = "measure")]
    conns: usize,
    /// --measure: seconds measured, after the warm-up.
    #[arg(long, default_value_t = 3.0, requires = "measure")]
    seconds: f64,
    /// --measure: seconds of warm-up, not recorded (on keep-alive loads,
    /// up to 10 s more until every connection has had its first answer,
    /// as in the claims).
    #[arg(long, default_value_t = 1.0, requires = "measure")]
    warmup: f64,
    /// --measure, sleep cells: the path each request asks for.
    #[arg(long, default_value = "/sleep?ms=100", requires = "measure")]
    path: String,
    /// --measure, sleep cells: ask for `Connection: close` (a new
    /// connection per request) instead of keeping connections alive.
    #[arg(long, requires = "measure")]
    close: bool,
    /// --measure, echo cells: bytes per message.
    #[arg(long, default_value_t = 64, requires = "measure")]
    msg_size: usize,
    /// --measure: OS threads driving the client connections (default: one
    /// per CPU left to the client).
    #[arg(long, requires = "measure")]
    client_threads: Option<usize>,
    /// --measure: run the server on this many CPUs of the first half of
    /// the allowed CPUs and the client on the second half (as S1 does;
    /// needs 4 or more CPUs). Default: the server on CPU 0 (one-core
    /// cells) or sharing every CPU with the client (multi-core cells).
    #[arg(long, value_name = "N", requires = "measure")]
    server_cpus: Option<usize>,
    /// Print the result as JSON on stdout (the table or line goes to stderr).
    #[arg(long)]
    json: bool,
    /// The claim run: multiply the seeds' sleeps and waits (and, with
    /// floors, the measured windows) by this.
    #[arg(long, default_value_t = lab::Options::DEFAULT_SCALE, conflicts_with = "full")]
    scale: f64,
    /// The claim run: the seeds' real durations (1000 ms sleeps, 3 s waits).
    #[arg(long)]
    full: bool,
    /// The claim run: only these claims, comma-separated ids or prefixes
    /// (C1 .. C9, E1, S1).
    #[arg(long, value_name = "IDS")]
    only: Option<String>,
    /// The claim run: where report.json, report.md and the charts go
    /// (default target/lab).
    #[arg(long, value_name = "DIR")]
    out: Option<std::path::PathBuf>,
    /// The claim run: no progress bar.
    #[arg(long)]
    quiet: bool,
    /// The claim run: also run the seeds' own Python apps (lab/seeds/)
    /// that can run here, as extra rows of C1, C3, C4, C6 and C7; those
    /// that cannot are named with the install line.
    #[arg(long)]
    seeds: bool,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let result = match (&args.serve, &args.measure) {
        (Some(cell), _) => serve::serve(cell, &args.addr),
        (_, Some(cell)) => measure(cell, &args),
        (None, None) => claims(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("lab: error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The claim-driven run: every claim (or `--only`), the table on stdout
/// (stderr with `--json`, which prints the report's JSON on stdout).
fn claims(args: &Args) -> io::Result<()> {
    if !(args.scale > 0.0 && args.scale.is_finite()) {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "--scale must be above 0"));
    }
    let mut opts = lab::Options { scale: args.scale, full: args.full, ..lab::Options::default() };
    opts.only = args.only.as_deref().map(lab::Options::parse_only).transpose()?;
    if let Some(dir) = &args.out {
        opts.out_dir = dir.clone();
    }
    opts.progress = !args.quiet;
    opts.seeds = args.seeds;
    let report = lab::run(&opts)?;
    let table = report.table();
    if args.json {
        eprint!("{table}");
        writeln!(io::stdout(), "{}", report.to_json()?)?;
    } else {
        write!(io::stdout(), "{table}")?;
        writeln!(io::stdout(), "report: {}/report.{{json,md}}", opts.out_dir.display())?;
    }
    Ok(())
}

fn seconds(what: &str, secs: f64) -> io::Result<Duration> {
    Duration::try_from_secs_f64(secs)
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, format!("--{what} {secs}: {e}")))
}

fn measure(cell: &Cell, args: &Args) -> io::Result<()> {
    let (soft, _hard) = rlimit::raise_nofile_limit()?;
    let max = rlimit::max_connections(soft);
    let conns = if args.conns > max {
        eprintln!(
            "lab: the open-file limit ({soft}) holds {max} connections: measuring {max}, not {}",
            args.conns
        );
        max
    } else {
        args.conns
    };
    let duration = seconds("seconds", args.seconds)?;
    let mut load = match cell.service {
        ServiceKind::Sleep => LoadSpec::http(&args.path, conns, duration),
        ServiceKind::Echo => LoadSpec::echo(args.msg_size, conns, duration),
    }
    .warmup(seconds("warmup", args.warmup)?)
    .answer_wait(lab::load::ANSWER_LIMIT);
    if let (true, lab::Workload::Http { keep_alive, .. }) = (args.close, &mut load.workload) {
        *keep_alive = false;
    }
    load.threads = args.client_threads;

    let bar =
        indicatif::ProgressBar::new_spinner().with_message(format!("{cell}: {}", load.describe()));
    bar.set_style(
        indicatif::ProgressStyle::with_template("{spinner} {msg} [{elapsed}]")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
    );
    bar.enable_steady_tick(Duration::from_millis(100));
    let placement = match args.server_cpus {
        Some(cores) if lab::affinity::halves().is_some() => lab::Placement::Scaling { cores },
        Some(_) => {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "--server-cpus needs 4 or more allowed CPUs (half server, half client)",
            ));
        }
        None => lab::Placement::for_cell(cell),
    };
    let run = lab::measure_placed(cell, &load, placement);
    bar.finish_and_clear();
    let run = run?;
    if args.json {
        eprintln!("{run}");
        let json = serde_json::to_string_pretty(&run).map_err(io::Error::other)?;
        writeln!(io::stdout(), "{json}")?;
    } else {
        writeln!(io::stdout(), "{run}")?;
    }
    Ok(())
}
