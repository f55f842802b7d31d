//! Shutdown under load by SIGTERM, in a real process (issue #9): 50
//! requests in flight, then SIGTERM; every one is answered 200, new
//! connections are refused while they finish, and the process exits 0.
//!
//! No libtest harness (`harness = false`): a process-directed signal goes
//! to any thread that does not block it, and libtest's threads would not,
//! so the server must own `main`. The test runs this very binary again as
//! the server, with the cell in [`CHILD`].

mod server_util;

use std::io::{BufRead, BufReader, Read};
use std::net::{SocketAddr, TcpListener};
use std::process::{ChildStdout, Command, ExitCode, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use greenloop_net::server::{ServerConfig, Shutdown, serve, shutdown_on_signals};
use greenloop_net::service::SleepHttp;
use server_util::{Http, watchdog};

#[path = "../../runtime/tests/watchdog/child.rs"]
mod child;
use child::LimitedChild;

/// Set in the child: the cell it serves, as `runtime style offload`.
const CHILD: &str = "GREENLOOP_SIGTERM_CHILD";
const CLIENTS: usize = 50;
/// Long enough that the listener is seen closed while the process lives.
const SLEEP_MS: u64 = 2000;
/// The server process is killed after this long (it also exits on its own
/// after 120 s without SIGTERM).
const SERVER_LIMIT: Duration = Duration::from_secs(150);

fn main() -> ExitCode {
    match std::env::var(CHILD) {
        Ok(cell) => child(&cell),
        Err(_) => {
            watchdog(Duration::from_secs(180), || {
                for cell in [
                    "threads blocking pool",
                    "green blocking pool",
                    "green async pool",
                    "stackless async pool",
                    "stackless blocking pool",
                ] {
                    sigterm_under_load(cell);
                }
            });
            println!("server_sigterm: ok");
            ExitCode::SUCCESS
        }
    }
}

/// The server process: prints `listening on ADDR`, serves until SIGTERM,
/// prints `accepted N`; exits 0 if no connection was left unfinished.
fn child(cell: &str) -> ExitCode {
    // First, before any thread exists: they all inherit the blocked mask.
    let shutdown = Shutdown::new();
    shutdown_on_signals(shutdown.clone()).expect("shutdown_on_signals");
    // Never outlive a parent that gave up on us.
    thread::spawn(|| {
        thread::sleep(Duration::from_secs(120));
        eprintln!("server_sigterm child: no SIGTERM within 120 s");
        std::process::exit(3);
    });
    let mut words = cell.split(' ').map(str::to_string);
    let mut next = || words.next().expect("CHILD is `runtime style offload`");
    let mut config =
        ServerConfig::new(next().parse().expect("runtime"), next().parse().expect("style"));
    config.offload = next().parse().expect("offload");
    config.grace = Duration::from_secs(30);
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    println!("listening on {}", listener.local_addr().expect("local_addr"));
    let report = serve(listener, SleepHttp::default(), &config, &shutdown).expect("serve");
    println!("accepted {}", report.accepted);
    if report.unfinished == 0 {
        ExitCode::SUCCESS
    } else {
        eprintln!("server_sigterm child: {report:?}");
        ExitCode::FAILURE
    }
}

/// The server process for `cell`; killed if the test fails before it
/// exits, or after [`SERVER_LIMIT`].
struct Server {
    child: LimitedChild,
    lines: mpsc::Receiver<String>,
    addr: SocketAddr,
}

impl Server {
    fn spawn(cell: &str) -> Server {
        let exe = std::env::current_exe().expect("current_exe");
        let mut command = Command::new(exe);
        command.env(CHILD, cell).stdin(Stdio::null()).stdout(Stdio::piped());
        let child =
            LimitedChild::spawn(&mut command, SERVER_LIMIT).expect("spawn the server process");
        let lines = read_lines(child.take_stdout().expect("piped stdout"));
        let mut server = Server { child, lines, addr: ([0, 0, 0, 0], 0).into() };
        let line = server.line();
        let addr = line.strip_prefix("listening on ").unwrap_or_else(|| panic!("{cell}: {line:?}"));
        server.addr = addr.parse().unwrap_or_else(|e| panic!("{cell}: {addr:?}: {e}"));
        server
    }

    /// The next stdout line (within 30 s).
    fn line(&self) -> String {
        self.lines.recv_timeout(Duration::from_secs(30)).expect("a line from the server")
    }
}

/// Lines of `stdout`, read on a thread so a silent server cannot hang us.
fn read_lines(stdout: ChildStdout) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { return };
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    rx
}

/// Whether connecting to `addr` is turned away: refused, or reset at once.
fn turned_away(addr: SocketAddr) -> bool {
    match std::net::TcpStream::connect(addr) {
        Err(_) => true,
        Ok(mut stream) => {
            // Accepted by the kernel into a listener about to close: reset.
            let _ = stream.set_read_timeout(Some(Duration::from_millis(100)));
            matches!(stream.read(&mut [0]), Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset)
        }
    }
}

fn sigterm_under_load(cell: &str) {
    let server = Server::spawn(cell);
    // Pipelined: once the first answer is in, the long request is being
    // served (it was parsed before the first answer was written).
    let requests = format!(
        "GET /sleep?ms=0 HTTP/1.1\r\nHost: t\r\n\r\nGET /sleep?ms={SLEEP_MS} HTTP/1.1\r\nHost: t\r\n\r\n"
    );
    let mut clients: Vec<Http> = (0..CLIENTS)
        .map(|i| {
            let mut http = Http::connect(server.addr);
            http.send(requests.as_bytes());
            assert_eq!(http.response().status, 200, "{cell}: client {i}: first answer");
            http
        })
        .collect();

    server.child.signal(libc::SIGTERM);
    let start = Instant::now();
    while !turned_away(server.addr) {
        assert!(start.elapsed() < Duration::from_secs(10), "{cell}: still accepting after SIGTERM");
        thread::sleep(Duration::from_millis(5));
    }
    assert!(
        server.child.is_running(),
        "{cell}: exited before its {CLIENTS} requests were answered"
    );

    for (i, http) in clients.iter_mut().enumerate() {
        let response = http.response();
        assert_eq!(response.status, 200, "{cell}: client {i}: {response:?}");
        assert_eq!(response.body_str(), r#"{"message":"Done"}"#, "{cell}: client {i}");
        assert!(response.closes(), "{cell}: client {i}: kept alive while shutting down");
    }
    let status = server.child.wait_within(Duration::from_secs(30));
    assert_eq!(status.code(), Some(0), "{cell}: {status}");
    let report = server.line();
    let accepted: usize = report
        .strip_prefix("accepted ")
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{cell}: {report:?}"));
    // Probes that got in before the listener closed count too.
    assert!(accepted >= CLIENTS, "{cell}: accepted {accepted}");
}
