//! The command line shared by `echo_server` and `sleep_server`: the cell
//! of the matrix, plus the service's own options (`E`, flattened in).

use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use greenloop::net::server::{
    Offload, Runtime, ServerConfig, Shutdown, Style, serve, shutdown_on_signals,
};
use greenloop::net::service::Service;

/// Run a greenloop service on one cell of the server matrix.
#[derive(Parser, Debug)]
#[command(version)]
struct Args<E: clap::Args> {
    /// Runtime that serves connections: threads, green, green-patched (a
    /// std-only handler made green by greenloop-patch), green-std (the same
    /// handler unpatched: one connection at a time) or stackless.
    #[arg(long, default_value = "green")]
    runtime: Runtime,
    /// Handler style: blocking or async.
    #[arg(long, default_value = "blocking")]
    style: Style,
    /// Address to listen on (port 0 picks a free port).
    #[arg(long, default_value = "127.0.0.1:8080")]
    addr: String,
    /// Threads runtime: a fixed pool of W threads (default: one thread per
    /// connection). Stackless with --offload pool: the pool size.
    #[arg(long)]
    workers: Option<usize>,
    /// Stackless runtime, blocking style: run the handler on a thread pool,
    /// or inline in the task (blocks the event loop, on purpose).
    #[arg(long, default_value = "pool")]
    offload: Offload,
    /// Serve at most N connections at once; more wait in the backlog.
    #[arg(long)]
    max_conns: Option<usize>,
    /// Seconds in-flight connections get to finish after SIGINT/SIGTERM.
    #[arg(long, default_value_t = 5.0)]
    grace: f64,
    /// Green and stackless: serve on N cores, one shard (OS thread, reactor,
    /// scheduler, SO_REUSEPORT listener) per core.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..))]
    cores: u16,
    /// Report (on stderr) a loop blocked in one handler for N ms or more.
    #[arg(long)]
    monitor_ms: Option<u64>,
    /// With --monitor-ms: add the blocked thread's backtrace to each report
    /// (best-effort; also GREENLOOP_MONITOR_BACKTRACE=1).
    #[arg(long, requires = "monitor_ms")]
    monitor_backtrace: bool,
    /// Print a dump of every green thread and task on SIGQUIT.
    #[arg(long)]
    dump_on_signal: bool,
    #[command(flatten)]
    service: E,
}

/// Parses the command line, serves the service that `make` builds from its
/// options until SIGINT/SIGTERM.
pub fn main<E, S>(name: &str, make: impl FnOnce(&E) -> S) -> ExitCode
where
    E: clap::Args + std::fmt::Debug,
    S: Service + std::fmt::Debug,
{
    let args = Args::<E>::parse();
    match run(name, make(&args.service), &args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{name}_server: error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run<E: clap::Args, S: Service + std::fmt::Debug>(
    name: &str,
    service: S,
    args: &Args<E>,
) -> std::io::Result<()> {
    if args.dump_on_signal {
        greenloop::dump::dump_on_sigquit()?;
    }
    if args.monitor_backtrace {
        greenloop::monitor::backtrace::enable();
    }
    if let Some(ms) = args.monitor_ms {
        greenloop::monitor::enable(Duration::from_millis(ms));
    }
    let shutdown = Shutdown::new();
    shutdown_on_signals(shutdown.clone())?;
    let listener = crate::listen::bind(&args.addr, 1024, usize::from(args.cores))?;
    println!("listening on {}", listener.local_addr()?);
    std::io::stdout().flush()?;
    // The settings in effect, so a run's log says what it measured.
    eprintln!("{name}_server: serving {service:?}");
    let grace = Duration::try_from_secs_f64(args.grace).map_err(|e| {
        std::io::Error::new(std::io::ErrorKind::InvalidInput, format!("--grace: {e}"))
    })?;
    let config = ServerConfig {
        runtime: args.runtime,
        style: args.style,
        offload: args.offload,
        workers: args.workers,
        max_conns: args.max_conns,
        grace,
        cores: usize::from(args.cores),
    };
    let report = serve(listener, service, &config, &shutdown)?;
    eprintln!(
        "{name}_server: stopped: {} connections accepted (per shard: {:?}), {} accept errors, {} unfinished after the grace period",
        report.accepted, report.per_shard, report.accept_errors, report.unfinished
    );
    Ok(())
}
