//! Shared by the `server_*` integration tests: every cell of the matrix
//! started in-process on `127.0.0.1:0`, the runtime tests' watchdog (a hang
//! becomes a failure), and a tiny HTTP/1.1 client on `std` sockets (so the clients owe
//! nothing to the runtime under test).

#![allow(dead_code)]

use std::fmt;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use greenloop_net::server::{
    Offload, Runtime, ServeReport, ServerConfig, Shutdown, Style, bind_reuseport, serve,
};
use greenloop_net::service::Service;

#[path = "../../../runtime/tests/watchdog/mod.rs"]
mod watchdog_impl;
#[allow(unused_imports, reason = "not every test binary uses it")]
pub use watchdog_impl::watchdog;

/// Client sockets give up after this long: a bound, never a pace.
pub const IO_TIMEOUT: Duration = Duration::from_secs(20);

/// One cell of the matrix, with a name for messages.
#[derive(Clone, Copy, Debug)]
pub struct Cell {
    pub name: &'static str,
    pub config: ServerConfig,
}

impl fmt::Display for Cell {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name)
    }
}

impl Cell {
    pub fn new(name: &'static str, runtime: Runtime, style: Style) -> Cell {
        let mut config = ServerConfig::new(runtime, style);
        // An upper bound only: serve returns as soon as connections end.
        config.grace = Duration::from_secs(10);
        Cell { name, config }
    }

    pub fn workers(mut self, workers: usize) -> Cell {
        self.config.workers = Some(workers);
        self
    }

    pub fn offload(mut self, offload: Offload) -> Cell {
        self.config.offload = offload;
        self
    }

    pub fn max_conns(mut self, max_conns: usize) -> Cell {
        self.config.max_conns = Some(max_conns);
        self
    }

    /// On `cores` shards (its listener then has `SO_REUSEPORT`).
    pub fn cores(mut self, cores: usize) -> Cell {
        self.config.cores = cores;
        self
    }

    pub fn grace(mut self, grace: Duration) -> Cell {
        self.config.grace = grace;
        self
    }

    /// Whether it serves one connection at a time (stackless, blocking
    /// handler run inline: blocks the loop by design).
    pub fn is_inline(&self) -> bool {
        self.config.runtime == Runtime::Stackless
            && self.config.style == Style::Blocking
            && self.config.offload == Offload::Inline
    }
}

pub fn threads_blocking() -> Cell {
    Cell::new("threads/blocking", Runtime::Threads, Style::Blocking)
}
pub fn threads_async() -> Cell {
    Cell::new("threads/async", Runtime::Threads, Style::Async)
}
pub fn threads4_blocking() -> Cell {
    Cell::new("threads(W=4)/blocking", Runtime::Threads, Style::Blocking).workers(4)
}
pub fn threads4_async() -> Cell {
    Cell::new("threads(W=4)/async", Runtime::Threads, Style::Async).workers(4)
}
pub fn green_blocking() -> Cell {
    Cell::new("green/blocking", Runtime::Green, Style::Blocking)
}
pub fn green_async() -> Cell {
    Cell::new("green/async", Runtime::Green, Style::Async)
}
pub fn green_patched() -> Cell {
    Cell::new("green-patched/std", Runtime::GreenPatched, Style::Blocking)
}
pub fn stackless_async() -> Cell {
    Cell::new("stackless/async", Runtime::Stackless, Style::Async)
}
pub fn stackless_pool() -> Cell {
    Cell::new("stackless/blocking+pool", Runtime::Stackless, Style::Blocking).offload(Offload::Pool)
}
pub fn stackless_inline() -> Cell {
    Cell::new("stackless/blocking+inline", Runtime::Stackless, Style::Blocking)
        .offload(Offload::Inline)
}

/// Every cell of the matrix: threads (per connection and W = 4) and green
/// in both styles; green-patched (std-only handler, greenloop-patch); stackless async, blocking on a pool, blocking inline.
pub fn all_cells() -> Vec<Cell> {
    vec![
        threads_blocking(),
        threads_async(),
        threads4_blocking(),
        threads4_async(),
        green_blocking(),
        green_async(),
        green_patched(),
        stackless_async(),
        stackless_pool(),
        stackless_inline(),
    ]
}

/// A cell serving on `127.0.0.1:<ephemeral>` from its own thread.
pub struct Server {
    pub cell: Cell,
    pub addr: SocketAddr,
    shutdown: Shutdown,
    handle: Option<JoinHandle<io::Result<ServeReport>>>,
}

impl Server {
    pub fn start<S: Service>(service: S, cell: Cell) -> Server {
        let listener = if cell.config.cores > 1 {
            bind_reuseport(([127, 0, 0, 1], 0).into(), 1024)
        } else {
            std::net::TcpListener::bind("127.0.0.1:0")
        };
        let listener = listener.expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local_addr");
        let shutdown = Shutdown::new();
        let switch = shutdown.clone();
        let config = cell.config;
        let handle = thread::Builder::new()
            .name(format!("serve {cell}"))
            .spawn(move || serve(listener, service, &config, &switch))
            .expect("spawn the server thread");
        Server { cell, addr, shutdown, handle: Some(handle) }
    }

    pub fn shutdown(&self) -> &Shutdown {
        &self.shutdown
    }

    /// Triggers shutdown and waits for `serve` to return its report.
    pub fn stop(mut self) -> ServeReport {
        self.shutdown.trigger();
        let handle = self.handle.take().expect("server running");
        match handle.join() {
            Ok(Ok(report)) => report,
            Ok(Err(e)) => panic!("{}: serve failed: {e}", self.cell),
            Err(panic) => std::panic::resume_unwind(panic),
        }
    }

    /// Stops it and checks the report: `accepted` connections, none left
    /// unfinished.
    pub fn stop_expecting(self, accepted: u64) -> ServeReport {
        let cell = self.cell;
        let report = self.stop();
        assert_eq!(report.accepted, accepted, "{cell}: accepted in {report:?}");
        assert_eq!(report.unfinished, 0, "{cell}: unfinished in {report:?}");
        report
    }

    /// A client connection with the test timeouts.
    pub fn connect(&self) -> TcpStream {
        connect(self.addr)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // A failed test: stop it, but do not wait (it may be the hang).
        if self.handle.is_some() {
            self.shutdown.trigger();
        }
    }
}

pub fn connect(addr: SocketAddr) -> TcpStream {
    let stream = TcpStream::connect(addr).unwrap_or_else(|e| panic!("connect {addr}: {e}"));
    stream.set_read_timeout(Some(IO_TIMEOUT)).expect("set_read_timeout");
    stream.set_write_timeout(Some(IO_TIMEOUT)).expect("set_write_timeout");
    stream
}

/// An HTTP response as received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    /// `(lower-case name, value)` in the order received.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    pub fn body_str(&self) -> &str {
        std::str::from_utf8(&self.body).expect("UTF-8 body")
    }

    /// Whether the server said it closes the connection.
    pub fn closes(&self) -> bool {
        self.header("connection").is_some_and(|v| v.eq_ignore_ascii_case("close"))
    }
}

/// Reads one response framed by its `Content-Length` (required).
pub fn read_response<R: BufRead>(reader: &mut R) -> io::Result<Response> {
    let mut line = String::new();
    if reader.read_line(&mut line)? == 0 {
        return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "closed before a response"));
    }
    let status_line = line.trim_end_matches(['\r', '\n']).to_string();
    let mut parts = status_line.splitn(3, ' ');
    let (version, status) = (parts.next(), parts.next());
    if version != Some("HTTP/1.1") {
        return Err(bad(format!("bad status line {status_line:?}")));
    }
    let status = status
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| bad(format!("bad status {status_line:?}")))?;
    let mut headers = Vec::new();
    loop {
        line.clear();
        if reader.read_line(&mut line)? == 0 {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "closed inside a head"));
        }
        let field = line.trim_end_matches(['\r', '\n']);
        if field.is_empty() {
            break;
        }
        let (name, value) =
            field.split_once(':').ok_or_else(|| bad(format!("bad field {field:?}")))?;
        headers.push((name.to_ascii_lowercase(), value.trim().to_string()));
    }
    let length: usize = headers
        .iter()
        .find(|(n, _)| n == "content-length")
        .and_then(|(_, v)| v.parse().ok())
        .ok_or_else(|| bad(format!("no Content-Length in {headers:?}")))?;
    let mut body = vec![0; length];
    reader.read_exact(&mut body)?;
    Ok(Response { status, headers, body })
}

fn bad(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg)
}

/// Whether the peer closed: the next read gives end of stream (nothing
/// more was sent). A reset counts as closed too, but is reported.
pub fn at_eof<R: Read>(reader: &mut R) -> Result<(), String> {
    let mut byte = [0u8; 1];
    match reader.read(&mut byte) {
        Ok(0) => Ok(()),
        Ok(_) => Err(format!("more bytes after the response: {:?}", byte[0] as char)),
        Err(e) if e.kind() == io::ErrorKind::ConnectionReset => Ok(()),
        Err(e) => Err(format!("no close, read gave {e} ({:?})", e.kind())),
    }
}

/// An HTTP connection: a writer and a buffered reader on one socket.
pub struct Http {
    pub writer: TcpStream,
    pub reader: BufReader<TcpStream>,
}

impl Http {
    pub fn connect(addr: SocketAddr) -> Http {
        let writer = connect(addr);
        let reader = BufReader::new(writer.try_clone().expect("try_clone"));
        Http { writer, reader }
    }

    pub fn send(&mut self, bytes: &[u8]) {
        self.writer.write_all(bytes).expect("send the request");
    }

    pub fn response(&mut self) -> Response {
        read_response(&mut self.reader).expect("read a response")
    }

    /// `GET target HTTP/1.1` with the given extra header lines.
    pub fn get(&mut self, target: &str, extra: &str) -> Response {
        self.send(format!("GET {target} HTTP/1.1\r\nHost: t\r\n{extra}\r\n").as_bytes());
        self.response()
    }

    /// Asserts that the server closes the connection now.
    pub fn expect_close(&mut self, what: &str) {
        if let Err(e) = at_eof(&mut self.reader) {
            panic!("{what}: expected the server to close: {e}");
        }
    }
}

/// One `GET /sleep?ms=N` on a fresh connection that asks to close.
pub fn sleep_once(addr: SocketAddr, ms: u64) -> Response {
    let mut http = Http::connect(addr);
    http.get(&format!("/sleep?ms={ms}"), "Connection: close\r\n")
}
