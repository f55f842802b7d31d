//! Green threads working: N green threads sleep, then pass a token around a
//! ring with `park`/`unpark`, each adding its index; then a line of figures.
//!
//! ```text
//! cargo run --release --example hello_green -- --threads 10000
//! ```

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
    let started = Instant::now();
    let result = green::run(|| ring(&args));
    let elapsed = started.elapsed();
    match result {
        Ok((sum, peak)) => {
            let expected: u64 = (0..args.threads as u64).sum();
            println!(
                "{} green threads ({} KiB stacks): slept {} ms each, passed a token around the \
                 ring, sum {sum} (expected {expected}), peak {peak} live threads, \
                 {:.1} ms total, {:.0} ns per thread",
                args.threads,
                args.stack_kib,
                args.sleep_ms,
                elapsed.as_secs_f64() * 1e3,
                elapsed.as_nanos() as f64 / args.threads.max(1) as f64,
            );
            if sum != expected {
                eprintln!("error: wrong sum");
                std::process::exit(1);
            }
        }
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(1);
        }
    }
}

/// The ring: thread `i` waits (parked) until the token says it is its turn,
/// adds `i`, and unparks thread `i + 1`. The token is an `Rc<Cell>`: green
/// threads never leave this OS thread, so no `Send` is needed.
fn ring(args: &Args) -> std::io::Result<(u64, usize)> {
    let token = Rc::new(Cell::new((0usize, 0u64)));
    let ring: Rc<RefCell<Vec<green::Thread>>> = Rc::default();
    let sleep = Duration::from_millis(args.sleep_ms);
    let mut handles = Vec::with_capacity(args.threads);
    for i in 0..args.threads {
        let (token, peers) = (token.clone(), ring.clone());
        let handle = green::Builder::new()
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
            })?;
        ring.borrow_mut().push(handle.thread());
        handles.push(handle);
    }
    let peak = green::stats().map_or(0, |s| s.live_threads);
    for handle in handles {
        if handle.join().is_err() {
            return Err(std::io::Error::other("a ring thread panicked"));
        }
    }
    Ok((token.get().1, peak))
}
