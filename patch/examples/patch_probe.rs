//! A fixed amount of the work that `benches/patch.rs` times, for counting
//! instructions (`valgrind --tool=callgrind`) or CPU time (`perf stat -e
//! task-clock`) on a machine too noisy for wall-clock figures:
//!
//! ```sh
//! cargo build --release -p greenloop-patch --example patch_probe
//! valgrind --tool=callgrind target/release/examples/patch_probe read-patched 100000
//! ```
//!
//! * `read-libc N` / `read-patched N`: N one-byte reads of `/dev/zero` on
//!   the main OS thread, through libc's `read` or through the patch's.
//! * `read-seen N`: the same through the patch, after one read of the fd
//!   in a green thread, so that the patch's fd table has its slot (marked
//!   "not a socket"), as in a program whose green threads use fds.
//! * `echo-greenloop N` / `echo-patched N`: N 64-byte round trips over
//!   one loopback connection between two green threads, with
//!   greenloop-net's `TcpStream` or with `std::net::TcpStream` under the
//!   patch.
//!
//! Run each twice with different N: the difference of the two counts over
//! the difference of the two N is the cost per call, without the start-up.

use std::io::{Read, Write};
use std::process::ExitCode;

use greenloop_runtime::green;

/// The message size, as in the bench.
const MSG: usize = 64;

type ReadFn = unsafe extern "C" fn(libc::c_int, *mut libc::c_void, libc::size_t) -> libc::ssize_t;

/// libc's own `read`, behind the patch's.
fn libc_read() -> ReadFn {
    // SAFETY: a NUL-terminated name; RTLD_NEXT from the executable.
    let address = unsafe { libc::dlsym(libc::RTLD_NEXT, c"read".as_ptr()) };
    assert!(!address.is_null(), "dlsym(read) failed");
    // SAFETY: libc's `read` has this prototype.
    unsafe { std::mem::transmute::<*mut libc::c_void, ReadFn>(address) }
}

/// `n` one-byte reads of `/dev/zero` through `read`, after one in a green
/// thread if `seen`.
fn reads(read: ReadFn, n: u64, seen: bool) {
    let zero = std::fs::File::open("/dev/zero").expect("open /dev/zero");
    let fd = std::os::fd::AsRawFd::as_raw_fd(&zero);
    let mut byte = 1u8;
    if seen {
        let mut file = &zero;
        green::run(move || file.read_exact(&mut [1]).expect("green read of /dev/zero"));
    }
    for _ in 0..n {
        // SAFETY: reads one byte into `byte` from an open fd.
        let got = unsafe { read(std::hint::black_box(fd), (&raw mut byte).cast(), 1) };
        assert_eq!(got, 1, "read of /dev/zero failed");
    }
    assert_eq!(byte, 0);
}

/// Echoes each message until the peer closes.
fn echo(mut conn: impl Read + Write) {
    let mut buf = [0; MSG];
    while conn.read_exact(&mut buf).is_ok() && conn.write_all(&buf).is_ok() {}
}

/// `n` round trips on `conn`.
fn ping(mut conn: impl Read + Write, n: u64) {
    let mut buf = [7; MSG];
    for _ in 0..n {
        conn.write_all(&buf).expect("write");
        conn.read_exact(&mut buf).expect("read");
    }
}

/// `n` round trips between two green threads over greenloop-net.
fn echo_greenloop(n: u64) {
    green::run(move || {
        let listener = greenloop_net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let server = green::spawn(move || {
            let (conn, _) = listener.accept().expect("accept");
            conn.set_nodelay(true).expect("nodelay");
            echo(conn);
        });
        let conn = greenloop_net::TcpStream::connect(addr).expect("connect");
        conn.set_nodelay(true).expect("nodelay");
        ping(conn, n);
        server.join().expect("echo thread");
    });
}

/// `n` round trips between two green threads over patched std.
fn echo_patched(n: u64) {
    green::run(move || {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let server = green::spawn(move || {
            let (conn, _) = listener.accept().expect("accept");
            conn.set_nodelay(true).expect("nodelay");
            echo(conn);
        });
        let conn = std::net::TcpStream::connect(addr).expect("connect");
        conn.set_nodelay(true).expect("nodelay");
        ping(conn, n);
        server.join().expect("echo thread");
    });
}

fn main() -> ExitCode {
    greenloop_patch::install();
    assert!(greenloop_patch::is_linked(), "the patch is not linked into the probe");
    let args: Vec<String> = std::env::args().skip(1).collect();
    let n = args.get(1).and_then(|n| n.parse::<u64>().ok());
    match (args.first().map(String::as_str), n) {
        (Some("read-libc"), Some(n)) => reads(libc_read(), n, false),
        (Some("read-patched"), Some(n)) => reads(libc::read, n, false),
        (Some("read-seen"), Some(n)) => reads(libc::read, n, true),
        (Some("echo-greenloop"), Some(n)) => echo_greenloop(n),
        (Some("echo-patched"), Some(n)) => echo_patched(n),
        _ => {
            eprintln!(
                "usage: patch_probe (read-libc | read-patched | read-seen | echo-greenloop | echo-patched) N"
            );
            return ExitCode::FAILURE;
        }
    }
    ExitCode::SUCCESS
}
