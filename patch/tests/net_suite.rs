//! greenloop-net's own socket and server tests with greenloop-patch
//! installed (see `runtime_suite.rs`): greenloop's non-blocking sockets
//! pass through the patch, which must leave them exactly as they were.

#![allow(dead_code, unused_imports, reason = "the included suites' helpers")]
#![allow(clippy::duplicate_mod, reason = "each included suite declares its helper modules")]

#[path = "util/install.rs"]
mod install;

#[path = "../../net/tests/dns_off_loop.rs"]
mod dns_off_loop;
#[path = "../../net/tests/futures_io.rs"]
mod futures_io;
#[path = "../../net/tests/green_timeout.rs"]
mod green_timeout;
#[path = "../../net/tests/server_concurrency.rs"]
mod server_concurrency;
#[path = "../../net/tests/server_echo.rs"]
mod server_echo;
#[path = "../../net/tests/server_hash.rs"]
mod server_hash;
#[path = "../../net/tests/server_http.rs"]
mod server_http;
#[path = "../../net/tests/server_lifecycle.rs"]
mod server_lifecycle;
#[path = "../../net/tests/server_shards.rs"]
mod server_shards;
#[path = "../../net/tests/server_shutdown.rs"]
mod server_shutdown;
#[path = "../../net/tests/tcp_api.rs"]
mod tcp_api;
#[path = "../../net/tests/tcp_eof.rs"]
mod tcp_eof;
#[path = "../../net/tests/tcp_futures_io.rs"]
mod tcp_futures_io;
#[path = "../../net/tests/udp.rs"]
mod udp;
