//! A server on several cores: one shard per core, each a single-threaded
//! cell of the matrix on its own listener (see [`greenloop_runtime::shard`]
//! for the model and why it is not work stealing).
//!
//! ```text
//!  serve(listener, cores = N)
//!   ├─ bind N−1 more SO_REUSEPORT listeners on listener's address
//!   ├─ shard i: OS thread, pinned to CPU i mod #CPUs,
//!   │           runs the green or stackless cell on listener i
//!   │           (its own reactor, scheduler, accept loop, limits)
//!   └─ joins them: per-shard reports summed, accepted counts kept
//! ```
//!
//! The shards share only the [`Shutdown`] switch; a trigger wakes each
//! shard's accept loop through its reactor's remote queue. Limits apply
//! per shard: `max_conns` and the stackless pool's `workers` are each
//! shard's own.
//!
//! When a shard stops (shutdown) it closes its listener; Linux does not
//! move connections still queued on that socket to a sibling, it resets
//! them, as with any listener closed at shutdown.

use std::io;
use std::net::TcpListener;
use std::panic::{self, AssertUnwindSafe};
use std::thread;

use greenloop_runtime::shard;

use super::reuseport::{SIBLING_BACKLOG, bind_reuseport, has_reuseport};
use super::{Runtime, ServeReport, ServerConfig, Shutdown, cells};
use crate::service::Service;

/// Serves on `config.cores` shards; see the module docs.
pub(super) fn serve<S: Service>(
    listener: TcpListener,
    service: S,
    config: &ServerConfig,
    shutdown: &Shutdown,
) -> io::Result<ServeReport> {
    if config.runtime == Runtime::Threads {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "cores = {} applies to the green and stackless runtimes; \
                 the threads runtime already runs on every core (use cores = 1)",
                config.cores
            ),
        ));
    }
    let listeners = siblings(listener, config.cores)?;
    let cpus = shard::cpus().unwrap_or_default();
    let one = ServerConfig { cores: 1, ..*config };
    let results: Vec<thread::Result<io::Result<ServeReport>>> = thread::scope(|scope| {
        let mut shards = Vec::with_capacity(listeners.len());
        for (i, listener) in listeners.into_iter().enumerate() {
            let cpu = (!cpus.is_empty()).then(|| cpus[i % cpus.len()]);
            let service = service.clone();
            let one = &one;
            let spawned = thread::Builder::new().name(format!("greenloop-shard-{i}")).spawn_scoped(
                scope,
                move || {
                    if let Some(cpu) = cpu {
                        // Best effort: an unpinned shard still serves.
                        let _ = shard::pin_current_thread(cpu);
                    }
                    let served = panic::catch_unwind(AssertUnwindSafe(|| {
                        one_shard(listener, service, one, shutdown)
                    }));
                    if !matches!(served, Ok(Ok(_))) {
                        // One shard failed: stop the others too.
                        shutdown.trigger();
                    }
                    served
                },
            );
            match spawned {
                Ok(handle) => shards.push(handle),
                Err(e) => {
                    shutdown.trigger();
                    let e = io::Error::new(e.kind(), format!("cannot start shard {i}: {e}"));
                    return vec![Ok(Err(e))];
                }
            }
        }
        shards.into_iter().map(|h| h.join().and_then(|served| served)).collect()
    });
    let mut total =
        ServeReport { per_shard: Vec::with_capacity(results.len()), ..ServeReport::default() };
    for result in results {
        match result {
            Ok(report) => {
                let report = report?;
                total.accepted += report.accepted;
                total.accept_errors += report.accept_errors;
                total.unfinished += report.unfinished;
                total.panicked += report.panicked;
                total.per_shard.push(report.accepted);
            }
            Err(panic) => panic::resume_unwind(panic),
        }
    }
    Ok(total)
}

/// One shard: the single-threaded cell of its runtime.
fn one_shard<S: Service>(
    listener: TcpListener,
    service: S,
    config: &ServerConfig,
    shutdown: &Shutdown,
) -> io::Result<ServeReport> {
    match config.runtime {
        Runtime::Green => cells::green(listener, service, config, shutdown),
        Runtime::GreenPatched => cells::green_std(listener, service, config, shutdown, true),
        Runtime::GreenStd => cells::green_std(listener, service, config, shutdown, false),
        _ => cells::stackless(listener, service, config, shutdown),
    }
}

/// `first` and `cores − 1` more listeners on its address.
///
/// # Errors
///
/// `InvalidInput` if `first` lacks `SO_REUSEPORT` (the kernel would refuse
/// the siblings); the errors of [`bind_reuseport`].
fn siblings(first: TcpListener, cores: usize) -> io::Result<Vec<TcpListener>> {
    if !has_reuseport(&first)? {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "cores = {cores} needs a listener bound with SO_REUSEPORT, so that each \
                 shard can bind its own on the same port: bind it with \
                 greenloop_net::server::bind_reuseport"
            ),
        ));
    }
    let addr = first.local_addr()?;
    let mut listeners = vec![first];
    for _ in 1..cores {
        listeners.push(bind_reuseport(addr, SIBLING_BACKLOG)?);
    }
    Ok(listeners)
}
