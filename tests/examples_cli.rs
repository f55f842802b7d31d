//! The server examples as the lab and scripts use them: the first stdout
//! line is `listening on ADDR` (with `--addr 127.0.0.1:0` the real port),
//! they serve real clients, and SIGTERM stops them gracefully with exit
//! status 0. Each test runs under a watchdog, each server and build with a
//! time limit.

mod util;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::sync::{Mutex, OnceLock};
use std::thread;
use std::time::Duration;

use util::{LimitedChild, output_within, read_to_end, watchdog};

const DONE: &str = r#"{"message":"Done"}"#;

/// A test's limit once its examples are built: a hang, not a pace.
const LIMIT: Duration = Duration::from_secs(120);

/// A `cargo build --example`: a cold one on a busy machine takes minutes.
const BUILD_LIMIT: Duration = Duration::from_secs(30 * 60);

/// A server example is killed after this long whatever the test does.
const SERVER_LIMIT: Duration = Duration::from_secs(180);

/// The example binary `name`, built first (a no-op when it is fresh:
/// `cargo test --test examples_cli` alone does not build examples).
fn example(name: &str) -> PathBuf {
    static BUILD: OnceLock<Mutex<()>> = OnceLock::new();
    let _one_build_at_a_time = BUILD.get_or_init(Mutex::default).lock();
    // The test binary is target/<profile>/deps/examples_cli-<hash>.
    let exe = std::env::current_exe().expect("current_exe");
    let profile_dir = exe.parent().and_then(|deps| deps.parent()).expect("target/<profile>");
    let mut build = Command::new(env!("CARGO"));
    build.args(["build", "--quiet", "--example", name]).current_dir(env!("CARGO_MANIFEST_DIR"));
    if profile_dir.file_name().is_some_and(|p| p == "release") {
        build.arg("--release");
    }
    let build = LimitedChild::spawn(&mut build, BUILD_LIMIT).expect("run cargo build");
    let status = build.wait_within(BUILD_LIMIT);
    assert!(status.success(), "cargo build --example {name}: {status}");
    let path = profile_dir.join("examples").join(name);
    assert!(path.exists(), "{} missing after the build", path.display());
    path
}

/// A running example; killed if the test fails before it stopped, or
/// after [`SERVER_LIMIT`].
struct Proc {
    child: LimitedChild,
    addr: SocketAddr,
    /// All it writes to stderr, once it exited.
    stderr: thread::JoinHandle<Vec<u8>>,
}

impl Proc {
    /// Starts the built example `exe` (see [`example`]).
    fn spawn(exe: &Path, args: &[&str]) -> Proc {
        let name = exe.display();
        let mut command = Command::new(exe);
        command.args(args).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
        let child = LimitedChild::spawn(&mut command, SERVER_LIMIT)
            .unwrap_or_else(|e| panic!("spawn {name}: {e}"));
        let stderr = read_to_end(child.take_stderr());
        let stdout = child.take_stdout().expect("piped stdout");
        // Read the first line on a thread so a silent server cannot hang us.
        let (tx, rx) = mpsc::channel();
        thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let line = rx.recv_timeout(Duration::from_secs(30));
        let mut proc = Proc { child, addr: "0.0.0.0:0".parse().expect("placeholder"), stderr };
        let line = line.unwrap_or_else(|_| panic!("{name}: no first line within 30 s"));
        let addr = line
            .strip_suffix('\n')
            .and_then(|l| l.strip_prefix("listening on "))
            .unwrap_or_else(|| panic!("{name}: first line {line:?}"));
        proc.addr = addr.parse().unwrap_or_else(|e| panic!("{name}: address {addr:?}: {e}"));
        assert!(proc.addr.ip().is_loopback() && proc.addr.port() != 0, "{name}: {line:?}");
        proc
    }

    /// SIGTERM, then the exit status (within `limit`).
    fn terminate(self, limit: Duration) -> ExitStatus {
        self.terminate_with_stderr(limit).0
    }

    /// SIGTERM, then the exit status (within `limit`) and all of stderr.
    fn terminate_with_stderr(self, limit: Duration) -> (ExitStatus, String) {
        self.child.signal(libc::SIGTERM);
        let status = self.child.wait_within(limit);
        let stderr = self.stderr.join().expect("stderr reader");
        (status, String::from_utf8_lossy(&stderr).into_owned())
    }
}

fn connect(addr: SocketAddr) -> TcpStream {
    let stream = TcpStream::connect(addr).expect("connect");
    stream.set_read_timeout(Some(Duration::from_secs(20))).expect("read timeout");
    stream
}

/// One request with `Connection: close`; the whole answer.
fn get_and_close(addr: SocketAddr, target: &str) -> String {
    let mut stream = connect(addr);
    let request = format!("GET {target} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).expect("send");
    let mut answer = String::new();
    stream.read_to_string(&mut answer).expect("read the answer");
    answer
}

#[test]
fn sleep_server_prints_its_address_serves_and_exits_0_on_sigterm() {
    let exe = example("sleep_server");
    watchdog(LIMIT, move || {
        for cell in [
            &["--runtime", "green", "--style", "blocking"][..],
            &["--runtime", "green", "--style", "async"],
            &["--runtime", "green-patched"],
            &["--runtime", "stackless", "--style", "async"],
            &["--runtime", "stackless", "--style", "blocking", "--offload", "pool"],
            &["--runtime", "threads", "--style", "blocking", "--workers", "4"],
            &["--runtime", "green", "--style", "blocking", "--cores", "2"],
            &["--runtime", "stackless", "--style", "async", "--cores", "2"],
        ] {
            let args = [cell, &["--addr", "127.0.0.1:0"]].concat();
            let server = Proc::spawn(&exe, &args);
            let answer = get_and_close(server.addr, "/sleep?ms=10");
            assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"), "{cell:?}: {answer}");
            assert!(answer.contains("\r\nContent-Length: 18\r\n"), "{cell:?}: {answer}");
            assert!(answer.ends_with(DONE), "{cell:?}: {answer}");
            let status = server.terminate(Duration::from_secs(10));
            assert_eq!(status.code(), Some(0), "{cell:?}: {status}");
        }
    });
}

#[test]
fn sleep_server_finishes_the_request_in_flight_on_sigterm() {
    let exe = example("sleep_server");
    watchdog(LIMIT, move || {
        let server = Proc::spawn(&exe, &["--addr", "127.0.0.1:0", "--grace", "5"]);
        let mut stream = connect(server.addr);
        // Pipelined: once the first answer is in, the second request is
        // being served (it was parsed before the first answer was written).
        stream
            .write_all(
                b"GET /sleep?ms=0 HTTP/1.1\r\nHost: t\r\n\r\n\
                  GET /sleep?ms=300 HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
            )
            .expect("send");
        let mut reader = BufReader::new(stream);
        let mut line = String::new();
        reader.read_line(&mut line).expect("first status line");
        assert_eq!(line, "HTTP/1.1 200 OK\r\n");
        let pid = server.child.id();
        let waiter = thread::spawn(move || server.terminate(Duration::from_secs(10)));
        let mut rest = String::new();
        reader.read_to_string(&mut rest).expect("the rest");
        assert_eq!(rest.matches("HTTP/1.1 200 OK\r\n").count(), 1, "{rest}");
        assert!(rest.ends_with(DONE), "pid {pid}: {rest}");
        let status = waiter.join().expect("waiter");
        assert_eq!(status.code(), Some(0), "{status}");
    });
}

#[test]
fn echo_server_and_tokio_reference_print_their_address_and_exit_0_on_sigterm() {
    let (echo, tokio) = (example("echo_server"), example("tokio_reference"));
    watchdog(LIMIT, move || {
        let server = Proc::spawn(&echo, &["--runtime", "stackless", "--addr", "127.0.0.1:0"]);
        let mut stream = connect(server.addr);
        stream.write_all(b"ping").expect("send");
        let mut echoed = [0; 4];
        stream.read_exact(&mut echoed).expect("echo");
        assert_eq!(&echoed, b"ping");
        drop(stream);
        let status = server.terminate(Duration::from_secs(10));
        assert_eq!(status.code(), Some(0), "echo_server: {status}");

        let server = Proc::spawn(&tokio, &["--service", "sleep", "--addr", "127.0.0.1:0"]);
        let answer = get_and_close(server.addr, "/sleep?ms=10");
        assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"), "tokio_reference: {answer}");
        assert!(answer.ends_with(DONE), "tokio_reference: {answer}");
        let status = server.terminate(Duration::from_secs(10));
        assert_eq!(status.code(), Some(0), "tokio_reference: {status}");
    });
}

#[test]
fn tokio_reference_per_core_answers_and_exits_0_on_sigterm() {
    let exe = example("tokio_reference");
    watchdog(LIMIT, move || {
        let args = ["--service", "sleep", "--addr", "127.0.0.1:0", "--threads", "2", "--per-core"];
        let server = Proc::spawn(&exe, &args);
        // Several connections: the kernel spreads them over the listeners.
        for _ in 0..4 {
            let answer = get_and_close(server.addr, "/sleep?ms=1");
            assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"), "per-core: {answer}");
            assert!(answer.ends_with(DONE), "per-core: {answer}");
        }
        let status = server.terminate(Duration::from_secs(10));
        assert_eq!(status.code(), Some(0), "per-core: {status}");
    });
}

/// `sleep_server --linger-bytes N --linger-ms M`: the flags are in `--help`,
/// bad values are refused with the flag named, and good ones reach the
/// service: its settings line says so, and the byte bound acts. A client
/// that goes on sending after its 400 is cut off once the server has
/// discarded about 1,000 bytes (it closes; the kernel answers the next
/// bytes with a reset), far below the 64 KiB default; the linger time of
/// 10 minutes cannot be what closed it.
#[test]
fn sleep_server_takes_the_linger_flags() {
    let exe = example("sleep_server");
    watchdog(LIMIT, move || {
        let help = output_within(Command::new(&exe).arg("--help"), LIMIT);
        let help = String::from_utf8_lossy(&help.stdout);
        assert!(help.contains("--linger-bytes") && help.contains("--linger-ms"), "{help}");
        for bad in [["--linger-ms", "soon"], ["--linger-ms", "600001"], ["--linger-bytes", "2GiB"]]
        {
            let out = output_within(Command::new(&exe).args(bad), LIMIT);
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(2), "{bad:?}: {stderr}");
            assert!(stderr.contains(bad[0]) && stderr.contains(bad[1]), "{bad:?}: {stderr}");
        }

        let args = ["--addr", "127.0.0.1:0", "--linger-bytes", "1000", "--linger-ms", "600000"];
        let server = Proc::spawn(&exe, &args);
        let mut client = connect(server.addr);
        client.write_all(b"GARBAGE\r\n\r\n").expect("send garbage");
        let mut answer = String::new();
        client.read_to_string(&mut answer).expect("the 400, then end of stream");
        assert!(answer.starts_with("HTTP/1.1 400 "), "{answer}");
        let mut sent = 0;
        let cut_off = (0..6_000).find_map(|_| match client.write(&[b'x'; 10]) {
            Ok(n) => {
                sent += n;
                thread::sleep(Duration::from_millis(5));
                None
            }
            Err(e) => Some(e),
        });
        assert!(cut_off.is_some(), "still open after {sent} bytes");
        assert!((1_000..64 * 1024).contains(&sent), "cut off after {sent} bytes: {cut_off:?}");
        drop(client);
        let (status, stderr) = server.terminate_with_stderr(Duration::from_secs(10));
        assert_eq!(status.code(), Some(0), "{status}: {stderr}");
        let settings = "linger_bytes: 1000, linger_time: 600s";
        assert!(stderr.contains(settings), "no {settings:?} in: {stderr}");
    });
}

/// `--monitor-ms N --monitor-backtrace`: a handler that blocks the event
/// loop on purpose (stackless, blocking style, inline) is reported on
/// stderr with the blocked thread's backtrace.
#[test]
fn sleep_server_reports_a_blocked_loop_with_its_backtrace() {
    let exe = example("sleep_server");
    watchdog(LIMIT, move || {
        let args = [
            "--addr",
            "127.0.0.1:0",
            "--runtime",
            "stackless",
            "--style",
            "blocking",
            "--offload",
            "inline",
            "--monitor-ms",
            "20",
            "--monitor-backtrace",
        ];
        let server = Proc::spawn(&exe, &args);
        let answer = get_and_close(server.addr, "/sleep?ms=200");
        assert!(answer.ends_with(DONE), "{answer}");
        let (status, stderr) = server.terminate_with_stderr(Duration::from_secs(10));
        assert_eq!(status.code(), Some(0), "{status}: {stderr}");
        assert!(stderr.contains("greenloop monitor: loop on"), "no report: {stderr}");
        assert!(stderr.contains("backtrace ("), "no backtrace in the report: {stderr}");
    });
}
