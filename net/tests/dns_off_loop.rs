//! Name lookups never stall the scheduler.
//!
//! A test resolver (installed through the `test-resolver` seam) answers
//! `localhost` only after [`LOOKUP`], so a lookup on the loop is a stall a
//! ticker cannot miss. A green thread ticks on a [`TICK`] schedule
//! meanwhile and counts the ticks it missed (see [`Ticks`]):
//!
//! - 1,000 concurrent `connect("localhost:PORT")` from green threads all
//!   complete; their lookups all ran on the blocking pool, 64 at a time
//!   (its thread bound) with the rest queued (far under its queue bound),
//!   and the ticker never missed more ticks in a row than a plain thread
//!   ticking meanwhile did, give or take [`JITTER`];
//! - the control: the same lookup called on the loop makes the same
//!   ticker miss at least [`MISSED_PER_STALL`] ticks per lookup;
//! - tasks' lookups (`connect_async`) run on the pool too;
//! - a literal address is never looked up.
//!
//! The tests share the resolver's counters, the global blocking pool and
//! this host's CPUs, so they run one at a time ([`serial`]).

mod server_util;

use std::cell::Cell;
use std::io;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Once, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use greenloop_net::TcpStream;
use greenloop_net::server::bind_reuseport;
use greenloop_net::test_resolver;
use greenloop_runtime::blocking::Pool;
use greenloop_runtime::time::{self, MissedTickBehavior};
use greenloop_runtime::{green, task};
use server_util::watchdog;

const CONNECTS: u64 = 1_000;
/// The ticker's period.
const TICK: Duration = Duration::from_millis(1);
/// How long the test resolver takes to answer.
const LOOKUP: Duration = Duration::from_millis(200);
/// Ticks a lookup on the loop costs the ticker at least: the schedule
/// points that fall due while the loop is stuck, less the one tick it
/// gets when the loop is free.
const MISSED_PER_STALL: u64 = (LOOKUP.as_millis() / TICK.as_millis()) as u64 - 1;
/// The most ticks in a row the ticker may miss while lookups run on the
/// pool, beyond what a plain thread ticking meanwhile misses (stalls of
/// the whole host, up to 22 in a row seen on this loaded 2-vCPU machine):
/// a quarter of one lookup on the loop. It covers the loop's timer
/// resolution (alone, a 1 ms green ticker misses about every other tick,
/// up to 8 in a row in 3 s), the loop serving a batch of 64 answers, and
/// the loop's thread preempted on a loaded host.
const JITTER: u64 = MISSED_PER_STALL / 4;
/// Lookups the control runs on the loop.
const STALLS: u64 = 3;
/// Connects the spawner starts between two yields, so the ticker's
/// delays measure lookups rather than one burst of 1,000 spawns, which a
/// FIFO scheduler serves in order.
const SPAWN_BATCH: u64 = 25;
/// Bound on every wait of a test: a hang detector, never a pace.
const HANG: Duration = Duration::from_secs(60);

/// What the test resolver saw.
struct Lookups {
    /// Lookups asked for.
    calls: AtomicU64,
    /// Lookups running now, and the most at once.
    running: AtomicU64,
    most_running: AtomicU64,
    /// Lookups that ran on a thread running green threads or tasks.
    on_a_scheduler: AtomicU64,
    /// While set, a lookup waits after its [`LOOKUP`] before answering.
    hold: AtomicBool,
}

static LOOKUPS: Lookups = Lookups {
    calls: AtomicU64::new(0),
    running: AtomicU64::new(0),
    most_running: AtomicU64::new(0),
    on_a_scheduler: AtomicU64::new(0),
    hold: AtomicBool::new(false),
};

impl Lookups {
    fn reset(&self) {
        for counter in [&self.calls, &self.running, &self.most_running, &self.on_a_scheduler] {
            counter.store(0, Ordering::SeqCst);
        }
        self.hold.store(false, Ordering::SeqCst);
    }
}

/// Blocks this OS thread for `duration` in a raw `nanosleep` system call,
/// as a lookup blocks in its own socket calls. Not `std::thread::sleep`:
/// greenloop-patch, whose suites include this file, would turn that into
/// a park of the green thread, and the control below could not stall the
/// loop.
fn sleep_in_the_kernel(duration: Duration) {
    let mut left = libc::timespec {
        tv_sec: duration.as_secs() as libc::time_t,
        tv_nsec: duration.subsec_nanos() as libc::c_long,
    };
    loop {
        let asked = left;
        // SAFETY: nanosleep(2) reads `asked` and writes the time left to
        // `left`; both are live, initialized timespecs on this stack.
        let slept = unsafe { libc::syscall(libc::SYS_nanosleep, &asked, &mut left) };
        if slept == 0 || io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
            return;
        }
    }
}

/// The test resolver: `localhost` is `127.0.0.1`, after [`LOOKUP`] (and
/// after the hold, if set); any other name is unknown. A held lookup on a
/// scheduler's thread fails at once.
fn slow_localhost(host: &str, port: u16) -> io::Result<Vec<SocketAddr>> {
    LOOKUPS.calls.fetch_add(1, Ordering::SeqCst);
    if green::in_green_thread() || task::live_tasks().is_some() {
        LOOKUPS.on_a_scheduler.fetch_add(1, Ordering::SeqCst);
        if LOOKUPS.hold.load(Ordering::SeqCst) {
            // Held here, the lookup would stop the loop that releases it.
            return Err(io::Error::other("test resolver: a held lookup on a scheduler thread"));
        }
    }
    let running = LOOKUPS.running.fetch_add(1, Ordering::SeqCst) + 1;
    LOOKUPS.most_running.fetch_max(running, Ordering::SeqCst);
    sleep_in_the_kernel(LOOKUP);
    let deadline = Instant::now() + HANG;
    while LOOKUPS.hold.load(Ordering::SeqCst) && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(1));
    }
    LOOKUPS.running.fetch_sub(1, Ordering::SeqCst);
    match host {
        "localhost" => Ok(vec![([127, 0, 0, 1], port).into()]),
        _ => Err(io::Error::new(io::ErrorKind::NotFound, format!("test resolver: no {host}"))),
    }
}

/// Installs the test resolver once, and runs the tests one at a time.
fn serial() -> MutexGuard<'static, ()> {
    static INSTALL: Once = Once::new();
    static SERIAL: Mutex<()> = Mutex::new(());
    INSTALL.call_once(|| assert!(test_resolver::install(slow_localhost), "a resolver was set"));
    let guard = SERIAL.lock().unwrap_or_else(PoisonError::into_inner);
    LOOKUPS.reset();
    guard
}

/// Accepts (and drops) `n` connections on its own OS thread.
fn acceptor(n: u64) -> (SocketAddr, thread::JoinHandle<u64>) {
    let listener = bind_reuseport(([127, 0, 0, 1], 0).into(), 2048).expect("bind");
    let addr = listener.local_addr().expect("local_addr");
    let handle = thread::spawn(move || (0..n).map(|_| u64::from(listener.accept().is_ok())).sum());
    (addr, handle)
}

/// What a ticker saw. It ticks on a [`TICK`] schedule, skipping missed
/// ticks; a tick is *missed* when its point of the schedule passes while
/// the ticker waits to run: waking `late` after a tick fell due, the
/// ticker has missed `late / TICK` ticks (whole periods), the schedule
/// points it then skips.
#[derive(Clone, Copy, Debug, Default)]
struct Ticks {
    ticks: u64,
    /// Ticks missed in all.
    missed: u64,
    /// The most ticks missed in a row (at one wake-up).
    worst: u64,
}

impl Ticks {
    /// Counts a tick that fell due at `due`; the ticks missed since.
    fn tick(&mut self, due: Instant) -> u64 {
        let late = due.elapsed().as_nanos() / TICK.as_nanos();
        let late = u64::try_from(late).unwrap_or(u64::MAX);
        self.ticks += 1;
        self.missed += late;
        self.worst = self.worst.max(late);
        late
    }
}

/// A green thread that ticks (on an `Interval` that skips missed ticks)
/// until `done` is set, then once more; `started` is set at its first tick.
fn ticker(started: Rc<Cell<bool>>, done: Rc<Cell<bool>>) -> green::JoinHandle<Ticks> {
    green::spawn(move || {
        let mut interval = time::interval(TICK);
        interval.set_missed_tick_behavior(MissedTickBehavior::Skip);
        let mut seen = Ticks::default();
        loop {
            seen.tick(interval.tick_blocking());
            started.set(true);
            if done.get() {
                return seen;
            }
        }
    })
}

/// The host's own jitter: the same ticks on a plain OS thread, until `done`.
fn host_ticker(done: Arc<AtomicBool>) -> thread::JoinHandle<Ticks> {
    thread::spawn(move || {
        let mut seen = Ticks::default();
        let mut due = Instant::now();
        while !done.load(Ordering::SeqCst) {
            thread::sleep(due.saturating_duration_since(Instant::now()));
            let skipped = seen.tick(due);
            due += TICK * u32::try_from(skipped + 1).unwrap_or(u32::MAX);
        }
        seen
    })
}

/// Runs `body` in a green runtime beside a ticker that starts ticking
/// before `body` starts and stops after it ends, and a ticker on a plain
/// thread: what each saw.
fn ticking_meanwhile(body: impl FnOnce()) -> (Ticks, Ticks) {
    let host_done = Arc::new(AtomicBool::new(false));
    let host = host_ticker(host_done.clone());
    let ticks = green::run(|| {
        let (started, done) = (Rc::new(Cell::new(false)), Rc::new(Cell::new(false)));
        let ticker = ticker(started.clone(), done.clone());
        while !started.get() {
            green::yield_now();
        }
        body();
        done.set(true);
        ticker.join().expect("ticker")
    });
    host_done.store(true, Ordering::SeqCst);
    (ticks, host.join().expect("host ticker"))
}

/// Sleeps until `ready` holds; panics after [`HANG`].
fn wait_until(what: &str, mut ready: impl FnMut() -> bool) {
    let deadline = Instant::now() + HANG;
    while !ready() {
        assert!(Instant::now() < deadline, "hung waiting until {what}");
        green::sleep(TICK);
    }
}

#[test]
fn a_thousand_slow_lookups_leave_the_loop_ticking() {
    let _serial = serial();
    watchdog(2 * HANG, || {
        let pool = Pool::global();
        let (addr, accepted) = acceptor(CONNECTS);
        let name = format!("localhost:{}", addr.port());
        let connecting = Rc::new(Cell::new(0u64));
        let connected = Rc::new(Cell::new(0u64));
        LOOKUPS.hold.store(true, Ordering::SeqCst);
        let (ticks, host) = ticking_meanwhile(|| {
            let mut clients = Vec::new();
            for n in 0..CONNECTS {
                let (name, connecting, connected) =
                    (name.clone(), connecting.clone(), connected.clone());
                clients.push(green::spawn(move || {
                    connecting.set(connecting.get() + 1);
                    let stream = TcpStream::connect(name.as_str()).expect("connect localhost");
                    connecting.set(connecting.get() - 1);
                    connected.set(connected.get() + 1);
                    drop(stream);
                }));
                if n % SPAWN_BATCH == SPAWN_BATCH - 1 {
                    green::yield_now();
                }
            }
            // Every lookup is held: all connects are in flight at once,
            // the pool's threads all run one, and the rest queue.
            let queued = CONNECTS - pool.max_threads() as u64;
            let returned =
                |clients: &[green::JoinHandle<()>]| clients.iter().any(|c| c.is_finished());
            wait_until("the lookups queue", || {
                pool.stats().queued as u64 == queued || returned(&clients)
            });
            assert!(!returned(&clients), "a connect returned while its lookup was held");
            assert_eq!(connecting.get(), CONNECTS, "connects in flight at once");
            assert_eq!(LOOKUPS.running.load(Ordering::SeqCst), pool.max_threads() as u64);
            let stats = pool.stats();
            assert_eq!(stats.threads, pool.max_threads(), "{stats:?}");
            assert_eq!(stats.waiting_spawns, 0, "the queue bound was reached: {stats:?}");
            assert!(stats.queued < pool.max_queued(), "{stats:?}");
            println!("all {CONNECTS} connects in flight: {stats:?}");
            LOOKUPS.hold.store(false, Ordering::SeqCst);
            for client in clients {
                client.join().expect("client");
            }
        });
        assert_eq!(connected.get(), CONNECTS);
        assert_eq!(accepted.join().expect("acceptor"), CONNECTS);
        println!("{CONNECTS} lookups on the pool: the ticker saw {ticks:?}, the host {host:?}");
        assert_eq!(LOOKUPS.calls.load(Ordering::SeqCst), CONNECTS, "lookups asked for");
        assert_eq!(LOOKUPS.on_a_scheduler.load(Ordering::SeqCst), 0, "lookups on the loop");
        let most_running = LOOKUPS.most_running.load(Ordering::SeqCst);
        assert_eq!(most_running, pool.max_threads() as u64, "lookups at once");
        assert!(ticks.ticks > 0, "the ticker never ran");
        assert!(
            ticks.worst <= host.worst + JITTER,
            "the ticker missed {} ticks in a row, a plain thread {} (allowed: {JITTER} more)",
            ticks.worst,
            host.worst
        );
        // The same lookups on the loop would miss CONNECTS * MISSED_PER_STALL.
        assert!(ticks.missed < CONNECTS * MISSED_PER_STALL / 10, "{ticks:?}");
    });
}

/// The control: the same lookups, called on the loop, stall it, and the
/// ticker counts it.
#[test]
fn a_lookup_on_the_loop_makes_the_ticker_miss_ticks() {
    let _serial = serial();
    watchdog(HANG, || {
        let (ticks, _) = ticking_meanwhile(|| {
            let stalls: Vec<_> = (0..STALLS)
                .map(|_| green::spawn(|| slow_localhost("localhost", 1).expect("lookup")))
                .collect();
            for stall in stalls {
                stall.join().expect("stall");
            }
        });
        println!("{STALLS} lookups on the loop: the ticker saw {ticks:?}");
        assert_eq!(LOOKUPS.on_a_scheduler.load(Ordering::SeqCst), STALLS);
        assert!(ticks.worst >= MISSED_PER_STALL, "{ticks:?}");
        assert!(ticks.missed >= STALLS * MISSED_PER_STALL, "{ticks:?}");
    });
}

/// Tasks too: their lookups run on the pool while their thread runs on.
#[test]
fn tasks_look_names_up_on_the_pool() {
    const TASKS: u64 = 8;
    let _serial = serial();
    watchdog(2 * HANG, || {
        let (addr, accepted) = acceptor(TASKS);
        let name = format!("localhost:{}", addr.port());
        LOOKUPS.hold.store(true, Ordering::SeqCst);
        let runtime = task::Runtime::new().expect("runtime");
        runtime.block_on(async {
            let connects: Vec<_> = (0..TASKS)
                .map(|_| {
                    let name = name.clone();
                    task::spawn_local(async move { TcpStream::connect_async(name).await })
                })
                .collect();
            // The lookups are held, so only a thread free of them gets here.
            let deadline = Instant::now() + HANG;
            while LOOKUPS.running.load(Ordering::SeqCst) < TASKS {
                assert!(Instant::now() < deadline, "the lookups never all ran");
                time::sleep(TICK).await;
            }
            LOOKUPS.hold.store(false, Ordering::SeqCst);
            for connect in connects {
                connect.await.expect("task").expect("connect_async localhost");
            }
        });
        assert_eq!(accepted.join().expect("acceptor"), TASKS);
        assert_eq!(LOOKUPS.calls.load(Ordering::SeqCst), TASKS, "lookups asked for");
        assert_eq!(LOOKUPS.on_a_scheduler.load(Ordering::SeqCst), 0, "lookups on the loop");
    });
}

#[test]
fn a_literal_address_is_never_looked_up() {
    let _serial = serial();
    watchdog(HANG, || {
        let (addr, accepted) = acceptor(4);
        let port = addr.port();
        green::run(|| {
            TcpStream::connect(addr).expect("SocketAddr");
            TcpStream::connect(format!("127.0.0.1:{port}")).expect("ip:port");
            TcpStream::connect(("127.0.0.1", port)).expect("(ip, port)");
            let list = [addr];
            TcpStream::connect(&list[..]).expect("[SocketAddr]");
        });
        assert_eq!(accepted.join().expect("acceptor"), 4);
        assert_eq!(LOOKUPS.calls.load(Ordering::SeqCst), 0, "a literal was looked up");
    });
}
