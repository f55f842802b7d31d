//! Name lookups never stall the scheduler: 1,000 concurrent
//! `connect("localhost:PORT")` from green threads complete while a green
//! thread that ticks every millisecond keeps ticking (its missed ticks are
//! counted, see [`MISSED_BOUND`]), the lookups ran on the blocking pool, and
//! literal addresses never touch it.
//!
//! This binary holds one test, so the global blocking pool is this test's
//! alone: its thread count says whether a lookup went there.

mod server_util;

use std::cell::Cell;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use greenloop_net::TcpStream;
use greenloop_net::server::bind_reuseport;
use greenloop_runtime::blocking::Pool;
use greenloop_runtime::green;
use server_util::watchdog;

const CONNECTS: usize = 1_000;
const TICK: Duration = Duration::from_millis(1);
/// Ticks the ticker may miss in all: a hang detector, not a pace. A lookup
/// stuck on the loop (a DNS server that does not answer costs glibc 5 s
/// per try) would miss thousands. Fast lookups (`localhost` is in
/// `/etc/hosts`) cannot be told apart by ticks: the ticker, woken by its
/// timer, waits behind up to 1,000 runnable green threads in the FIFO run
/// queue, and the pool's threads compete for this host's two vCPUs. Measured
/// here (debug build, 4 runs each): 292 to 635 missed with the lookups on
/// the pool, 76 to 348 with them on the loop. The pool's thread count is
/// the check that tells the two apart.
const MISSED_BOUND: u64 = 2_000;

/// Accepts (and drops) `n` connections on its own OS thread.
fn acceptor(n: usize) -> (SocketAddr, thread::JoinHandle<usize>) {
    let listener = bind_reuseport(([127, 0, 0, 1], 0).into(), 2048).expect("bind");
    let addr = listener.local_addr().expect("local_addr");
    let handle = thread::spawn(move || (0..n).filter(|_| listener.accept().is_ok()).count());
    (addr, handle)
}

/// A green thread that sleeps one tick at a time until `done`, counting
/// the ticks it missed: each wake-up that came a whole tick or more later
/// than asked adds the whole ticks it skipped.
fn ticker(done: Rc<Cell<bool>>) -> green::JoinHandle<(u64, u64)> {
    green::spawn(move || {
        let (mut ticks, mut missed) = (0u64, 0u64);
        let mut last = Instant::now();
        while !done.get() {
            green::sleep(TICK);
            let now = Instant::now();
            let periods = (now - last).as_micros() / TICK.as_micros();
            missed += u64::try_from(periods.saturating_sub(1)).unwrap_or(u64::MAX);
            ticks += 1;
            last = now;
        }
        (ticks, missed)
    })
}

#[test]
fn a_thousand_name_lookups_leave_the_loop_ticking() {
    watchdog(Duration::from_secs(120), || {
        let (addr, accepted) = acceptor(2 * CONNECTS);
        let connected = Arc::new(AtomicUsize::new(0));
        let (ticks, missed, literal_pool_threads) = green::run(|| {
            // Literal addresses first: no lookup, so no pool thread.
            let literal: Vec<_> = (0..CONNECTS)
                .map(|_| green::spawn(move || TcpStream::connect(addr).map(drop)))
                .collect();
            for handle in literal {
                handle.join().expect("join").expect("connect to a literal address");
            }
            let literal_pool_threads = Pool::global().threads();

            let done = Rc::new(Cell::new(false));
            let ticker = ticker(done.clone());
            let name = format!("localhost:{}", addr.port());
            let clients: Vec<_> = (0..CONNECTS)
                .map(|_| {
                    let (name, connected) = (name.clone(), connected.clone());
                    green::spawn(move || {
                        let stream = TcpStream::connect(name.as_str()).expect("connect localhost");
                        connected.fetch_add(1, Ordering::Relaxed);
                        drop(stream);
                    })
                })
                .collect();
            for client in clients {
                client.join().expect("client");
            }
            done.set(true);
            let (ticks, missed) = ticker.join().expect("ticker");
            (ticks, missed, literal_pool_threads)
        });
        assert_eq!(accepted.join().expect("acceptor"), 2 * CONNECTS);
        assert_eq!(connected.load(Ordering::Relaxed), CONNECTS);
        println!("{CONNECTS} lookups: the ticker ticked {ticks} times and missed {missed}");
        assert_eq!(literal_pool_threads, 0, "a literal address went to the blocking pool");
        assert!(Pool::global().threads() > 0, "the name lookups did not use the blocking pool");
        assert!(ticks > 0, "the ticker never ran");
        assert!(missed <= MISSED_BOUND, "the ticker missed {missed} ticks (bound {MISSED_BOUND})");
    });
}
