//! The lab: measures greenloop's server matrix (and tokio) under load.
//!
//! ```text
//! # one measurement: a cell under a closed-loop load, one line (or JSON)
//! cargo run --release --example lab -- --measure green-blocking-sleep --conns 100 --seconds 3 --path '/sleep?ms=100'
//! cargo run --release --example lab -- --measure tokio-async-echo --conns 50 --seconds 3 --msg-size 64 --json
//!
//! # the server side, which --measure starts by re-executing this binary
//! cargo run --release --example lab -- --serve threads-blocking-sleep-w4 --addr 127.0.0.1:8080
//! ```
//!
//! Cell specs: `<threads|green|stackless|tokio>-<blocking|async>-<echo|sleep>[-<pool|inline>][-w<N>]`
//! (see `greenloop::lab::cell`). The claim-driven run (no arguments) comes
//! next; see issue 7.

#[path = "lab/serve.rs"]
mod serve;

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
    /// --measure: seconds of warm-up, not recorded.
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
    /// --measure: print the result as JSON on stdout (the line goes to stderr).
    #[arg(long, requires = "measure")]
    json: bool,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let result = match (&args.serve, &args.measure) {
        (Some(cell), _) => serve::serve(cell, &args.addr),
        (_, Some(cell)) => measure(cell, &args),
        (None, None) => Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "the claim-driven lab run is not there yet: use --measure SPEC (see --help)",
        )),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("lab: error: {e}");
            ExitCode::FAILURE
        }
    }
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
    .warmup(seconds("warmup", args.warmup)?);
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
    let run = lab::measure(cell, &load);
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
