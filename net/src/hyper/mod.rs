//! hyper 1.x on greenloop (cargo feature `hyper`), with no tokio runtime
//! anywhere in the path.
//!
//! hyper asks its runtime for four things through `hyper::rt`; here they
//! are:
//!
//! | hyper asks for | greenloop gives |
//! |---|---|
//! | `rt::Read` + `rt::Write` | [`TcpStream`](crate::TcpStream) itself: reads go straight into hyper's uninitialised buffer (`recv(2)`), writes are vectored (`writev(2)`), both through the socket's one readiness helper |
//! | `rt::Executor` | [`GreenloopExecutor`]: a task on the stackless executor, or a green thread that `block_on`s the future, whichever runs the caller |
//! | `rt::Timer` | [`GreenloopTimer`]: the reactor's timing wheel ([`time::sleep`](greenloop_runtime::time::sleep)), reset in place |
//!
//! Because everything waits on a `Waker`, hyper's connection future runs
//! unchanged on both models: `.await`ed in a task, or `block_on`ed in a
//! green thread, which parks only that green thread.
//!
//! On top of the adapter, the project's sleep service as a hyper service
//! ([`serve_request`]: `/sleep`, `/hash`, and `POST /echo`, which streams
//! the request body back) and its accept loops on each model
//! ([`serve_stackless`], [`serve_green`]), which `examples/hyper_server.rs`
//! runs. hyper brings what the project's own codec does not claim:
//! chunked bodies, `Expect: 100-continue`, pipelining.
//!
//! ```
//! use greenloop_net::TcpListener;
//! use greenloop_net::hyper::{GreenloopTimer, serve_request};
//! use hyper::server::conn::http1;
//!
//! let rt = greenloop_runtime::task::Runtime::new().unwrap();
//! rt.block_on(async {
//!     let listener = TcpListener::bind("127.0.0.1:0").unwrap();
//!     # let addr = listener.local_addr().unwrap();
//!     # let client = std::thread::spawn(move || {
//!     #     use std::io::{Read, Write};
//!     #     let mut c = std::net::TcpStream::connect(addr).unwrap();
//!     #     c.write_all(b"GET /sleep?ms=1 HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n").unwrap();
//!     #     let mut answer = String::new();
//!     #     c.read_to_string(&mut answer).unwrap();
//!     #     assert!(answer.ends_with(r#"{"message":"Done"}"#), "{answer}");
//!     # });
//!     let (conn, _) = listener.accept_async().await.unwrap();
//!     let service = hyper::service::service_fn(|req| {
//!         serve_request(req, greenloop_runtime::time::sleep)
//!     });
//!     http1::Builder::new().timer(GreenloopTimer).serve_connection(conn, service).await.unwrap();
//!     # client.join().unwrap();
//! });
//! ```

mod exec;
mod io;
mod serve;
mod service;
mod timer;

pub use exec::GreenloopExecutor;
pub use serve::{serve_green, serve_stackless};
pub use service::{Body, Echo, serve_request};
pub use timer::GreenloopTimer;
