//! Out of descriptors: when `accept` fails with `EMFILE`, the accept loop
//! backs off (1 ms doubling to 100 ms) instead of spinning on the ready
//! listener, keeps serving the connections it has, and serves new ones
//! again once descriptors are freed.
//!
//! The server runs in a child process (this test binary re-run) whose
//! `RLIMIT_NOFILE` is lowered to a few descriptors above what it uses; the
//! parent opens more connections than that and reads the child's CPU time
//! from `/proc/<pid>/stat`.

mod reliability_util;
mod server_util;

use std::io::Read;
use std::net::{SocketAddr, TcpStream};
use std::thread;
use std::time::Duration;

use greenloop_net::service::SleepHttp;
use reliability_util::{ChildRun, child_role, cpu_time, eventually, open_fds};
use server_util::{
    Cell, Http, Server, green_async, green_blocking, sleep_once, stackless_async, stackless_pool,
    threads_async, threads_blocking,
};

/// Descriptors the child may open beyond those open when it lowers the limit.
const HEADROOM: u64 = 16;
/// Connections the parent opens at once: well over the headroom.
const FLOOD: usize = 64;
/// The window over which the saturated server's CPU time is measured.
const WINDOW: Duration = Duration::from_secs(1);
const LIMIT: Duration = Duration::from_secs(60);
const TEST: &str = "accept_backs_off_when_out_of_descriptors_and_recovers";

fn cells() -> Vec<Cell> {
    vec![
        threads_blocking(),
        threads_async(),
        green_blocking(),
        green_async(),
        stackless_async(),
        stackless_pool(),
    ]
}

/// In the child: serves cell `index` with few descriptors to spare until
/// stdin closes, then prints the report.
fn child(index: usize) {
    let cell = cells()[index];
    let server = Server::start(SleepHttp::default(), cell);
    // One request first: the runtime and its reactor are up.
    assert_eq!(sleep_once(server.addr, 0).status, 200);
    let limit = open_fds() as u64 + HEADROOM;
    let mut nofile = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit(2) writes the limit into the struct we pass.
    assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut nofile) }, 0);
    nofile.rlim_cur = limit;
    // SAFETY: setrlimit(2) only reads the struct; lowering the soft limit
    // needs no privilege.
    assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &nofile) }, 0);
    println!("ADDR {}", server.addr);
    let mut rest = Vec::new();
    let _ = std::io::stdin().read_to_end(&mut rest);
    let report = server.stop();
    println!("REPORT {} {}", report.accept_errors, report.unfinished);
}

#[test]
fn accept_backs_off_when_out_of_descriptors_and_recovers() {
    if let Some(role) = child_role() {
        child(role.parse().expect("cell index"));
        return;
    }
    for (index, cell) in cells().into_iter().enumerate() {
        let mut run = ChildRun::start(TEST, &index.to_string(), LIMIT);
        let addr: SocketAddr = run.line_after("ADDR ").parse().expect("child address");

        // A connection accepted before the descriptors run out.
        let mut kept = Http::connect(addr);
        assert_eq!(kept.get("/sleep?ms=0", "").status, 200, "{cell}: before the flood");

        // More connections than the child has descriptors: the kernel
        // completes them all (the backlog), the child accepts what it can.
        let flood: Vec<TcpStream> = (0..FLOOD).map(|_| server_util::connect(addr)).collect();
        let before = cpu_time(Some(run.pid()));
        thread::sleep(WINDOW);
        let used = cpu_time(Some(run.pid())) - before;
        // A spinning accept loop would use the whole window; backing off
        // uses almost nothing. Generous: a loaded machine adds noise.
        assert!(used < WINDOW * 3 / 10, "{cell}: {used:?} of CPU over {WINDOW:?} while saturated");

        // The accepted connection is still served.
        assert_eq!(kept.get("/sleep?ms=0", "").status, 200, "{cell}: while saturated");

        // Descriptors free up: new connections are served again.
        drop(flood);
        eventually(Duration::from_secs(20), || {
            let mut http = Http::connect(addr);
            http.send(b"GET /sleep?ms=0 HTTP/1.1\r\nConnection: close\r\n\r\n");
            match server_util::read_response(&mut http.reader) {
                Ok(response) if response.status == 200 => Ok(()),
                other => Err(format!("{cell}: after the flood: {other:?}")),
            }
        });
        drop(kept);

        run.close_stdin();
        let exit = run.wait();
        assert!(exit.status.success(), "{cell}: child failed: {:?}\n{}", exit.status, exit.stderr);
        let report = exit.line_after("REPORT ");
        let (errors, unfinished) = report.split_once(' ').expect("two counts");
        let errors: u64 = errors.parse().expect("accept errors");
        assert!(errors > 0, "{cell}: the child never ran out of descriptors");
        assert_eq!(unfinished, "0", "{cell}: connections left at shutdown");
        println!("{cell}: {used:?} CPU over {WINDOW:?} saturated, {errors} accept errors");
    }
}
