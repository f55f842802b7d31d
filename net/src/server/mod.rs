//! The server matrix: one [`serve`] entry that runs any [`Service`] on a
//! listener under each runtime, in each style.
//!
//! | runtime \ style | blocking-style handler | async-style handler |
//! |---|---|---|
//! | [`Runtime::Threads`] | a `std` stream per OS thread: one thread per connection, or a fixed pool of `workers` (the WSGI/gunicorn model: W connections at a time) | the thread `block_on`s the handler |
//! | [`Runtime::Green`] | a green thread per connection; blocking calls park it | a green thread per connection `block_on`s the handler |
//! | [`Runtime::GreenPatched`] | a green thread per connection runs the std-only handler ([`Service::serve_std`]: a `std` stream, `std::thread::sleep`), which greenloop-patch turns into parks (the style is ignored) | — |
//! | [`Runtime::GreenStd`] | the same std-only handler on green threads without the patch: each blocking call blocks the OS thread, so one connection is served at a time (the lab's baseline) | — |
//! | [`Runtime::Stackless`] | [`Offload::Pool`]: `spawn_blocking` per connection; [`Offload::Inline`]: run inside the task ([`Service::serve_inline`]), **blocking the loop** (kept on purpose: the lab shows it) | a task per connection |
//!
//! Every cell accepts through the same loop (a connection limit like
//! gevent's pool, back-off on `EMFILE`), and shuts down the same way: when
//! the [`Shutdown`] switch is triggered it stops accepting, closes the
//! listener, lets connections in flight finish for up to `grace`, and
//! returns a [`ServeReport`].
//!
//! With [`ServerConfig::cores`] above 1, green and stackless servers run
//! one such cell per core (shards, each on its own `SO_REUSEPORT`
//! listener: see [`bind_reuseport`] and `shards.rs`).

mod accept;
mod cells;
mod reuseport;
mod shards;
mod shutdown;
mod signal;

pub use reuseport::bind_reuseport;
pub use shutdown::Shutdown;
pub use signal::shutdown_on_signals;

use std::fmt;
use std::io;
use std::str::FromStr;
use std::time::Duration;

use crate::service::Service;

/// Which runtime serves connections.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Runtime {
    /// Plain OS threads (the thread-per-request / WSGI baseline).
    Threads,
    /// Green threads on one OS thread.
    Green,
    /// Green threads on one OS thread running the std-only handler, with
    /// greenloop-patch installed (process-wide) when the server starts.
    GreenPatched,
    /// The std-only handler on green threads, unpatched (unless the process
    /// installed the patch elsewhere): one connection at a time.
    GreenStd,
    /// Stackless tasks on one OS thread.
    Stackless,
}

/// Which style of handler runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Style {
    /// Blocking-style code (`Read`/`Write`, `green::sleep`).
    Blocking,
    /// Async-style code (`.await`).
    Async,
}

/// How the stackless runtime runs a blocking-style handler.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Offload {
    /// On a bounded pool of OS threads (`spawn_blocking`).
    #[default]
    Pool,
    /// Inside the task ([`Service::serve_inline`]): blocks the executor and
    /// every other connection while the handler blocks.
    Inline,
}

/// How a server runs; see the module table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ServerConfig {
    /// The runtime.
    pub runtime: Runtime,
    /// The handler style.
    pub style: Style,
    /// Stackless + blocking only: pool or inline.
    pub offload: Offload,
    /// Threads: `Some(W)` is a fixed pool of W threads, `None` one thread
    /// per connection. Stackless + pool: the pool's size (default 64).
    pub workers: Option<usize>,
    /// At most this many connections at once; more wait in the backlog.
    pub max_conns: Option<usize>,
    /// How long connections in flight may finish after shutdown.
    pub grace: Duration,
    /// Green and stackless: shards, one OS thread per core, each with its
    /// own reactor, scheduler and `SO_REUSEPORT` listener (the listener
    /// given to [`serve`] must come from [`bind_reuseport`]). 0 and 1 both
    /// mean one shard, on the calling thread.
    pub cores: usize,
}

impl ServerConfig {
    /// A config for `runtime` and `style` with the defaults: pool offload,
    /// no worker cap, no connection limit, 5 s grace.
    pub fn new(runtime: Runtime, style: Style) -> ServerConfig {
        ServerConfig {
            runtime,
            style,
            offload: Offload::Pool,
            workers: None,
            max_conns: None,
            grace: Duration::from_secs(5),
            cores: 1,
        }
    }
}

/// What a server did, returned when it stops.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct ServeReport {
    /// Connections accepted.
    pub accepted: u64,
    /// Accept errors (each followed by a back-off pause).
    pub accept_errors: u64,
    /// Connections still open when the grace period ended.
    pub unfinished: usize,
    /// Connection handlers that panicked (each reported once by the panic
    /// hook, naming its thread or task); the server served on.
    pub panicked: u64,
    /// Connections accepted by each shard (one entry without shards).
    pub per_shard: Vec<u64>,
}

/// Serves `service` on `listener` until `shutdown` is triggered.
///
/// Runs on the calling thread (the green scheduler, the executor or the
/// acceptor of the thread runtime); with [`ServerConfig::cores`] above 1,
/// on that many shard threads, and the calling thread waits for them.
///
/// # Errors
///
/// If the runtime cannot start (no reactor) or the listener cannot be
/// registered. Errors of single connections end those connections only.
/// With cores above 1: `InvalidInput` for the threads runtime or a
/// listener without `SO_REUSEPORT`; a shard that fails triggers `shutdown`
/// (the others stop too) and its error is returned.
pub fn serve<S: Service>(
    listener: std::net::TcpListener,
    service: S,
    config: &ServerConfig,
    shutdown: &Shutdown,
) -> io::Result<ServeReport> {
    if config.cores > 1 {
        return shards::serve(listener, service, config, shutdown);
    }
    match config.runtime {
        Runtime::Threads => cells::threads(listener, service, config, shutdown),
        Runtime::Green => cells::green(listener, service, config, shutdown),
        Runtime::GreenPatched => cells::green_std(listener, service, config, shutdown, true),
        Runtime::GreenStd => cells::green_std(listener, service, config, shutdown, false),
        Runtime::Stackless => cells::stackless(listener, service, config, shutdown),
    }
}

/// A value that did not name a variant; says which ones exist.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnknownVariant {
    what: &'static str,
    got: String,
    expected: &'static str,
}

impl fmt::Display for UnknownVariant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unknown {} '{}' (expected {})", self.what, self.got, self.expected)
    }
}

impl std::error::Error for UnknownVariant {}

macro_rules! from_str {
    ($ty:ident, $what:literal, $($name:literal => $variant:ident),+) => {
        impl FromStr for $ty {
            type Err = UnknownVariant;

            fn from_str(s: &str) -> Result<$ty, UnknownVariant> {
                match s {
                    $($name => Ok($ty::$variant),)+
                    _ => Err(UnknownVariant {
                        what: $what,
                        got: s.to_string(),
                        expected: concat!($($name, " "),+),
                    }),
                }
            }
        }

        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(match self { $($ty::$variant => $name,)+ })
            }
        }
    };
}

from_str!(
    Runtime, "runtime",
    "threads" => Threads, "green" => Green, "green-patched" => GreenPatched,
    "green-std" => GreenStd, "stackless" => Stackless
);
from_str!(Style, "style", "blocking" => Blocking, "async" => Async);
from_str!(Offload, "offload", "pool" => Pool, "inline" => Inline);
