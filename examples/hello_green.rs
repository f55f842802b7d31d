//! Green threads working: N green threads sleep, then pass a token around a
//! ring with `park`/`unpark`, each adding its index; then a line of figures
//! and the same figures as `key=value` pairs on a line of their own:
//!
//! ```text
//! hello_green: threads=60000 stack_kib=16 ok=true live_peak=60001 total_ms=994.7
//!   ns_per_thread=16579 cold_spawn_median_ns=10811 cold_spawn_cpu_median_ns=2848
//!   peak_rss_kib=263644 rss_per_thread_kib=4.34 cold_spawn_faults=1.08
//! ```
//!
//! (one line). `live_peak` counts the main green thread too. The RSS per
//! thread is the growth of the resident set from before the first spawn to
//! when all threads are parked, divided by their number; the cold spawn is
//! the median, over blocks of 1,000 spawns, of a spawn's mean time, on
//! stacks that were never used before, in wall-clock and in this thread's
//! CPU time (which waiting for a busy CPU does not inflate). `cold_spawn_faults`
//! is the pages this thread faulted in during the spawns, per spawn: the
//! kernel allocating one page, on a trap or ahead of use (`madvise`
//! populating a batch's stack tops counts too). If a spawn fails, the line has
//! `ok=false` and `live_peak` is how many green threads were alive then (the
//! capacity), and the error follows on stderr.
//!
//! ```text
//! cargo run --release --example hello_green -- --threads 10000
//! ```

#[path = "common/thread_usage.rs"]
mod thread_usage;

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::{Duration, Instant};

use clap::Parser;
use greenloop::green;

/// Spawn N green threads that sleep, then pass a value around a ring.
#[derive(Parser, Debug)]
#[command(version)]
struct Args {
    /// Number of green threads.
    #[arg(long, default_value_t = 10_000)]
    threads: usize,
    /// How long each thread sleeps before joining the ring, in ms.
    #[arg(long, default_value_t = 10)]
    sleep_ms: u64,
    /// Usable stack size of each green thread, in KiB.
    #[arg(long, default_value_t = 16)]
    stack_kib: usize,
}

fn main() {
    let args = Args::parse();
    let before_kib = rss_kib("VmRSS:");
    let started = Instant::now();
    let run = green::run(|| ring(&args, before_kib));
    let elapsed = started.elapsed();
    let ok = run.result.is_ok();
    let peak_kib = rss_kib("VmHWM:");
    let per_thread_kib = run.parked_growth_kib as f64 / args.threads.max(1) as f64;
    let ns_per_thread = elapsed.as_nanos() as f64 / args.threads.max(1) as f64;
    match &run.result {
        Ok(sum) => {
            let expected: u64 = (0..args.threads as u64).sum();
            println!(
                "{} green threads ({} KiB stacks): slept {} ms each, passed a token around the \
                 ring, sum {sum} (expected {expected}), peak {} live threads, \
                 {:.1} ms total, {ns_per_thread:.0} ns per thread, cold spawn {} ns (median; {} ns of CPU; \
                 {:.2} pages faulted in), peak RSS {:.1} MiB, {per_thread_kib:.2} KiB RSS per parked thread",
                args.threads,
                args.stack_kib,
                args.sleep_ms,
                run.live_peak,
                elapsed.as_secs_f64() * 1e3,
                run.cold_spawn_ns,
                run.cold_spawn_cpu_ns,
                run.cold_spawn_faults,
                peak_kib as f64 / 1024.0,
            );
        }
        Err(e) => eprintln!("error: {e}"),
    }
    println!(
        "hello_green: threads={} stack_kib={} ok={ok} live_peak={} total_ms={:.1} \
         ns_per_thread={ns_per_thread:.0} cold_spawn_median_ns={} cold_spawn_cpu_median_ns={} \
         peak_rss_kib={peak_kib} \
         rss_per_thread_kib={per_thread_kib:.2} cold_spawn_faults={:.2}",
        args.threads,
        args.stack_kib,
        run.live_peak,
        elapsed.as_secs_f64() * 1e3,
        run.cold_spawn_ns,
        run.cold_spawn_cpu_ns,
        run.cold_spawn_faults,
    );
    let expected: u64 = (0..args.threads as u64).sum();
    match run.result {
        Ok(sum) if sum == expected => {}
        Ok(_) => {
            eprintln!("error: wrong sum");
            std::process::exit(1);
        }
        Err(_) => std::process::exit(1),
    }
}

/// What one run of the ring measured.
struct Run {
    /// The sum the token carried round, or the error that stopped the run.
    result: std::io::Result<u64>,
    /// Most green threads alive at once (the main one included).
    live_peak: usize,
    /// Median over blocks of [`SPAWN_BLOCK`] spawns of a spawn's mean time, ns.
    cold_spawn_ns: u128,
    /// The same in CPU time of this OS thread (immune to waiting for a CPU).
    cold_spawn_cpu_ns: u128,
    /// Resident set growth from before the first spawn to all threads parked, KiB.
    parked_growth_kib: u64,
    /// Pages this OS thread faulted in while spawning, per spawn.
    cold_spawn_faults: f64,
}

/// Spawns per timed block of the cold-spawn figure.
const SPAWN_BLOCK: usize = 1000;

/// A field of `/proc/self/status` in KiB (`VmRSS:` now, `VmHWM:` the peak);
/// 0 where it cannot be read.
fn rss_kib(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// The ring: thread `i` waits (parked) until the token says it is its turn,
/// adds `i`, and unparks thread `i + 1`. The token is an `Rc<Cell>`: green
/// threads never leave this OS thread, so no `Send` is needed. `before_kib`
/// is the resident set before the runtime started.
fn ring(args: &Args, before_kib: u64) -> Run {
    let token = Rc::new(Cell::new((0usize, 0u64)));
    let ring: Rc<RefCell<Vec<green::Thread>>> = Rc::default();
    let sleep = Duration::from_millis(args.sleep_ms);
    let mut handles = Vec::with_capacity(args.threads);
    let mut block_ns = Vec::with_capacity(args.threads / SPAWN_BLOCK + 1);
    let mut block_cpu_ns = Vec::with_capacity(args.threads / SPAWN_BLOCK + 1);
    let mut block_start = (Instant::now(), thread_usage::cpu_ns());
    let mut spawn_error = None;
    let faults_before = thread_usage::minor_faults();
    for i in 0..args.threads {
        let (token, peers) = (token.clone(), ring.clone());
        let spawned = green::Builder::new()
            .name(format!("ring-{i}"))
            .stack_size(args.stack_kib * 1024)
            .spawn(move || {
                green::sleep(sleep);
                while token.get().0 != i {
                    green::park();
                }
                let (_, sum) = token.get();
                token.set((i + 1, sum + i as u64));
                if let Some(next) = peers.borrow().get(i + 1) {
                    next.unpark();
                }
            });
        match spawned {
            Ok(handle) => {
                ring.borrow_mut().push(handle.thread());
                handles.push(handle);
            }
            Err(e) => {
                spawn_error = Some(e);
                break;
            }
        }
        if (i + 1) % SPAWN_BLOCK == 0 {
            block_ns.push(block_start.0.elapsed().as_nanos() / SPAWN_BLOCK as u128);
            block_cpu_ns.push((thread_usage::cpu_ns() - block_start.1) / SPAWN_BLOCK as u128);
            block_start = (Instant::now(), thread_usage::cpu_ns());
        }
    }
    let spawned = handles.len().max(1) as f64;
    let cold_spawn_faults = (thread_usage::minor_faults() - faults_before) as f64 / spawned;
    // Every spawned thread runs until it sleeps: all are parked now.
    green::yield_now();
    let live_peak = green::stats().map_or(0, |s| s.live_threads);
    let parked_growth_kib = rss_kib("VmRSS:").saturating_sub(before_kib);
    let cold_spawn_ns = median(block_ns);
    let cold_spawn_cpu_ns = median(block_cpu_ns);
    let result = match spawn_error {
        Some(e) => Err(std::io::Error::new(
            e.kind(),
            format!("spawned {} of {} green threads, then: {e}", handles.len(), args.threads),
        )),
        None => handles.into_iter().try_fold(0, |_, h| {
            h.join().map_err(|_| std::io::Error::other("a ring thread panicked"))?;
            Ok(token.get().1)
        }),
    };
    Run {
        result,
        live_peak,
        cold_spawn_ns,
        cold_spawn_cpu_ns,
        parked_growth_kib,
        cold_spawn_faults,
    }
}

/// The median of `values` (the upper one of an even count), 0 if empty.
fn median(mut values: Vec<u128>) -> u128 {
    values.sort_unstable();
    values.get(values.len() / 2).copied().unwrap_or(0)
}
