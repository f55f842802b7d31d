//! Servers on several cores (`ServerConfig::cores`): connections reach
//! every shard, all shards stop on one shutdown, and the configurations
//! that cannot shard are refused with a reason.

mod server_util;

use std::io;
use std::net::TcpStream;
use std::thread;
use std::time::Duration;

use greenloop_net::server::{Runtime, ServerConfig, Shutdown, Style, serve};
use greenloop_net::service::{Echo, SleepHttp};
use server_util::{Server, green_async, green_blocking, sleep_once, stackless_async, watchdog};

const LIMIT: Duration = Duration::from_secs(60);
/// More shards than this machine may have CPUs: shards share CPUs then.
const SHARDS: usize = 3;
/// Clients, each making [`PER_CLIENT`] requests on fresh connections.
const CLIENTS: usize = 6;
const PER_CLIENT: usize = 10;

#[test]
fn connections_reach_every_shard_and_all_shards_stop() {
    for cell in [green_blocking(), green_async(), stackless_async()] {
        let cell = cell.cores(SHARDS);
        watchdog(LIMIT, move || {
            let server = Server::start(SleepHttp::default(), cell);
            let addr = server.addr;
            thread::scope(|s| {
                for _ in 0..CLIENTS {
                    s.spawn(|| {
                        for _ in 0..PER_CLIENT {
                            let response = sleep_once(addr, 1);
                            assert_eq!(response.status, 200, "{cell}: {response:?}");
                        }
                    });
                }
            });
            let total = (CLIENTS * PER_CLIENT) as u64;
            let report = server.stop_expecting(total);
            // The kernel hashes each connection's ports to a shard: with 60
            // connections, a shard left empty has odds below 1e-10.
            assert_eq!(report.per_shard.len(), SHARDS, "{cell}: {report:?}");
            assert!(report.per_shard.iter().all(|&n| n > 0), "{cell}: a shard idle: {report:?}");
            assert_eq!(report.per_shard.iter().sum::<u64>(), total, "{cell}: {report:?}");
            // Every shard closed its listener: the port refuses connections.
            for _ in 0..2 * SHARDS {
                let refused = TcpStream::connect(addr).expect_err("a shard still listens");
                assert_eq!(refused.kind(), io::ErrorKind::ConnectionRefused, "{cell}");
            }
        });
    }
}

#[test]
fn sharding_needs_a_reuseport_listener_and_an_event_loop_runtime() {
    // A regression would serve instead of refusing: the watchdog fails it.
    watchdog(LIMIT, || {
        let plain = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let mut config = ServerConfig::new(Runtime::Green, Style::Blocking);
        config.cores = 2;
        let e = serve(plain, Echo, &config, &Shutdown::new()).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
        assert!(e.to_string().contains("bind_reuseport"), "{e}");

        let shared = greenloop_net::server::bind_reuseport(([127, 0, 0, 1], 0).into(), 16).unwrap();
        config.runtime = Runtime::Threads;
        let e = serve(shared, Echo, &config, &Shutdown::new()).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
        assert!(e.to_string().contains("green and stackless"), "{e}");
    });
}
