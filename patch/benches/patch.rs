//! What the patch costs: `cargo bench -p greenloop-patch --bench patch`.
//!
//! * `patch_read_off_green/*` — one 1-byte `read` of `/dev/zero` on a plain
//!   OS thread: `libc` calls libc's `read` (found with `dlsym(RTLD_NEXT)`),
//!   `patched` calls `read` as every caller in this binary does, reaching
//!   the patch, which finds no green thread and calls libc. The difference
//!   is the patch's toll on code that never runs in a green thread.
//!   `patched_seen` is `patched` after one read of the fd in a green
//!   thread, which gave it a slot in the patch's fd table ("not a
//!   socket"), as fds have in a program whose green threads use them.
//! * `patch_echo_roundtrip/*` — 64 bytes there and back over one loopback
//!   connection whose two ends are green threads of one runtime:
//!   `greenloop` with greenloop-net's `TcpStream`, `patched_std` with
//!   `std::net::TcpStream` made green by the patch. Same run, same
//!   machine: their ratio is the patch's cost on a green round trip.

use std::hint::black_box;
use std::io::{Read, Write};
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use greenloop_runtime::green;

/// The message size.
const MSG: usize = 64;

/// Warm-up 1 s, measurement 3 s, 40 samples, as the workspace's benches.
fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(40)
}

type ReadFn = unsafe extern "C" fn(libc::c_int, *mut libc::c_void, libc::size_t) -> libc::ssize_t;

/// libc's own `read`, behind the patch's.
fn libc_read() -> ReadFn {
    // SAFETY: a NUL-terminated name; RTLD_NEXT from the executable.
    let address = unsafe { libc::dlsym(libc::RTLD_NEXT, c"read".as_ptr()) };
    assert!(!address.is_null(), "dlsym(read) failed");
    // SAFETY: libc's `read` has this prototype.
    unsafe { std::mem::transmute::<*mut libc::c_void, ReadFn>(address) }
}

fn read_off_green(c: &mut Criterion) {
    greenloop_patch::install();
    assert!(greenloop_patch::is_linked(), "the patch is not linked into the bench");
    let zero = std::fs::File::open("/dev/zero").expect("open /dev/zero");
    let fd = std::os::fd::AsRawFd::as_raw_fd(&zero);
    let mut byte = 0u8;
    let mut group = c.benchmark_group("patch_read_off_green");
    let real = libc_read();
    group.bench_function("libc", |b| {
        // SAFETY: reads one byte into `byte` from an open fd.
        b.iter(|| unsafe { real(black_box(fd), (&raw mut byte).cast(), 1) });
    });
    let mut patched = |name| {
        group.bench_function(name, |b| {
            // SAFETY: as above, through the patch.
            b.iter(|| unsafe { libc::read(black_box(fd), (&raw mut byte).cast(), 1) });
        });
    };
    patched("patched");
    let mut file = &zero;
    green::run(move || file.read_exact(&mut [1]).expect("green read of /dev/zero"));
    patched("patched_seen");
    group.finish();
}

/// Echoes each message until the peer closes.
fn echo(mut conn: impl Read + Write) {
    let mut buf = [0; MSG];
    while conn.read_exact(&mut buf).is_ok() && conn.write_all(&buf).is_ok() {}
}

/// One untimed round trip, then `iters` timed.
fn ping(mut conn: impl Read + Write, iters: u64) -> Duration {
    let mut buf = [7; MSG];
    let mut round_trip = |buf: &mut [u8; MSG]| {
        conn.write_all(buf).expect("write");
        conn.read_exact(buf).expect("read");
    };
    round_trip(&mut buf);
    let start = Instant::now();
    for _ in 0..iters {
        round_trip(black_box(&mut buf));
    }
    start.elapsed()
}

fn echo_roundtrip(c: &mut Criterion) {
    greenloop_patch::install();
    let mut group = c.benchmark_group("patch_echo_roundtrip");
    group.bench_function("greenloop", |b| {
        b.iter_custom(|iters| {
            green::run(|| {
                let listener = greenloop_net::TcpListener::bind("127.0.0.1:0").expect("bind");
                let addr = listener.local_addr().expect("addr");
                let server = green::spawn(move || {
                    let (conn, _) = listener.accept().expect("accept");
                    conn.set_nodelay(true).expect("nodelay");
                    echo(conn);
                });
                let conn = greenloop_net::TcpStream::connect(addr).expect("connect");
                conn.set_nodelay(true).expect("nodelay");
                let took = ping(conn, iters);
                black_box(server.join().is_ok());
                took
            })
        });
    });
    group.bench_function("patched_std", |b| {
        b.iter_custom(|iters| {
            green::run(|| {
                let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
                let addr = listener.local_addr().expect("addr");
                let server = green::spawn(move || {
                    let (conn, _) = listener.accept().expect("accept");
                    conn.set_nodelay(true).expect("nodelay");
                    echo(conn);
                });
                let conn = std::net::TcpStream::connect(addr).expect("connect");
                conn.set_nodelay(true).expect("nodelay");
                let took = ping(conn, iters);
                black_box(server.join().is_ok());
                took
            })
        });
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = config();
    targets = read_off_green, echo_roundtrip
}
criterion_main!(benches);
