//! hyper 1.x on greenloop (feature `hyper`): the hyper sleep server on
//! both models answers raw HTTP/1.1 clients (sleep, a chunked POST echoed,
//! pipelining, `Expect: 100-continue`), and hyper's client on both models
//! fetches from the project's own sleep server and from the hyper server.
//!
//! Everything runs on loopback, ephemeral ports, under a watchdog; raw
//! clients are `std` sockets with timeouts, so they owe nothing to the
//! runtime under test.

mod server_util;

use std::io::{self, BufRead, Read};
use std::net::SocketAddr;
use std::thread::{self, JoinHandle};
use std::time::Duration;

use bytes::Bytes;
use greenloop_net::TcpStream;
use greenloop_net::http::DONE_BODY;
use greenloop_net::hyper::{GreenloopExecutor, serve_green, serve_stackless};
use greenloop_net::server::Shutdown;
use greenloop_net::service::SleepHttp;
use greenloop_runtime::{block_on, green, task};
use http_body_util::{BodyExt, Empty};
use hyper::client::conn::http1;
use hyper::rt::Executor;
use hyper::{Request, StatusCode};
use server_util::{Http, Response, Server, read_response, stackless_async, watchdog};

const LIMIT: Duration = Duration::from_secs(60);

/// Which model serves (or runs the client).
#[derive(Clone, Copy, Debug)]
enum Model {
    Stackless,
    Green,
}

const MODELS: [Model; 2] = [Model::Stackless, Model::Green];

/// `hyper_server`'s loop on `127.0.0.1:<ephemeral>`, on its own thread.
struct HyperServer {
    addr: SocketAddr,
    shutdown: Shutdown,
    handle: JoinHandle<io::Result<u64>>,
}

impl HyperServer {
    fn start(model: Model) -> HyperServer {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("local_addr");
        let shutdown = Shutdown::new();
        let switch = shutdown.clone();
        let handle = thread::spawn(move || match model {
            Model::Stackless => serve_stackless(listener, &switch),
            Model::Green => serve_green(listener, &switch),
        });
        HyperServer { addr, shutdown, handle }
    }

    /// Stops it and checks it accepted `conns` connections.
    fn stop_expecting(self, conns: u64) {
        self.shutdown.trigger();
        let accepted = self.handle.join().expect("server thread").expect("serve");
        assert_eq!(accepted, conns, "connections accepted");
    }
}

/// Reads one response whose body is either `Content-Length` framed or
/// chunked (what hyper sends for a streamed body).
fn read_any_response(http: &mut Http) -> Response {
    // A chunked response has no Content-Length: read the head by hand.
    let mut head = Vec::new();
    loop {
        let mut line = String::new();
        assert!(http.reader.read_line(&mut line).expect("read head") > 0, "closed in a head");
        let end = line == "\r\n";
        head.extend_from_slice(line.as_bytes());
        if end {
            break;
        }
    }
    let chunked =
        String::from_utf8_lossy(&head).to_ascii_lowercase().contains("transfer-encoding: chunked");
    if !chunked {
        return read_response(&mut io::Cursor::new(head).chain(&mut http.reader))
            .expect("response");
    }
    let mut response = read_response(&mut io::Cursor::new(
        [&head[..head.len() - 2], b"content-length: 0\r\n\r\n"].concat(),
    ))
    .expect("chunked head");
    loop {
        let mut size = String::new();
        http.reader.read_line(&mut size).expect("chunk size");
        let size = usize::from_str_radix(size.trim_end(), 16).expect("hex chunk size");
        let mut chunk = vec![0; size + 2];
        http.reader.read_exact(&mut chunk).expect("chunk");
        assert_eq!(&chunk[size..], b"\r\n", "chunk end");
        if size == 0 {
            return response;
        }
        response.body.extend_from_slice(&chunk[..size]);
    }
}

#[test]
fn hyper_server_answers_sleep_with_keep_alive() {
    for model in MODELS {
        watchdog(LIMIT, move || {
            let server = HyperServer::start(model);
            let mut http = Http::connect(server.addr);
            for ms in [0, 5, 20] {
                let r = http.get(&format!("/sleep?ms={ms}"), "");
                assert_eq!((r.status, r.body_str()), (200, DONE_BODY), "{model:?} ms={ms}");
                assert!(!r.closes(), "{model:?}: keep-alive");
            }
            let bad = http.get("/sleep?ms=oops", "");
            assert_eq!(bad.status, 400, "{model:?}: the project's router decides");
            let missing = http.get("/nowhere", "");
            assert_eq!(missing.status, 404, "{model:?}");
            drop(http);
            server.stop_expecting(1);
        });
    }
}

#[test]
fn hyper_server_echoes_a_chunked_post() {
    for model in MODELS {
        watchdog(LIMIT, move || {
            let server = HyperServer::start(model);
            let mut http = Http::connect(server.addr);
            http.send(b"POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n");
            let mut sent = Vec::new();
            for i in 0..50u8 {
                // Chunks of growing sizes, 1 to 50 × 97 bytes.
                let chunk = vec![b'a' + i % 26; 97 * usize::from(i + 1)];
                http.send(format!("{:x}\r\n", chunk.len()).as_bytes());
                http.send(&chunk);
                http.send(b"\r\n");
                sent.extend_from_slice(&chunk);
            }
            http.send(b"0\r\n\r\n");
            let r = read_any_response(&mut http);
            assert_eq!(r.status, 200, "{model:?}");
            assert_eq!(r.body.len(), sent.len(), "{model:?}: bytes echoed");
            assert!(r.body == sent, "{model:?}: echoed content");
            // The connection is still good for a next request.
            assert_eq!(http.get("/sleep?ms=1", "").status, 200, "{model:?}");
            drop(http);
            server.stop_expecting(1);
        });
    }
}

#[test]
fn hyper_server_answers_pipelined_requests_in_order() {
    for model in MODELS {
        watchdog(LIMIT, move || {
            let server = HyperServer::start(model);
            let mut http = Http::connect(server.addr);
            // One write: the first request sleeps longest, its answer still
            // comes first.
            http.send(
                b"GET /sleep?ms=30 HTTP/1.1\r\nHost: t\r\n\r\n\
                  GET /sleep?ms=1 HTTP/1.1\r\nHost: t\r\n\r\n\
                  POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\n\r\nping\
                  GET /sleep?ms=x HTTP/1.1\r\nHost: t\r\n\r\n",
            );
            let statuses: Vec<_> = (0..4)
                .map(|_| {
                    let r = read_any_response(&mut http);
                    (r.status, String::from_utf8(r.body).expect("UTF-8"))
                })
                .collect();
            assert_eq!(statuses[0], (200, DONE_BODY.to_string()), "{model:?}");
            assert_eq!(statuses[1], (200, DONE_BODY.to_string()), "{model:?}");
            assert_eq!(statuses[2], (200, "ping".to_string()), "{model:?}");
            assert_eq!(statuses[3].0, 400, "{model:?}");
            drop(http);
            server.stop_expecting(1);
        });
    }
}

#[test]
fn hyper_server_sends_100_continue_before_the_body() {
    for model in MODELS {
        watchdog(LIMIT, move || {
            let server = HyperServer::start(model);
            let mut http = Http::connect(server.addr);
            http.send(
                b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 11\r\nExpect: 100-continue\r\n\r\n",
            );
            // Nothing of the body is sent until the server asks for it.
            let mut interim = String::new();
            http.reader.read_line(&mut interim).expect("interim response");
            assert_eq!(interim, "HTTP/1.1 100 Continue\r\n", "{model:?}");
            let mut blank = String::new();
            http.reader.read_line(&mut blank).expect("end of the interim head");
            assert_eq!(blank, "\r\n", "{model:?}");
            http.send(b"hello world");
            let r = read_any_response(&mut http);
            assert_eq!((r.status, r.body_str()), (200, "hello world"), "{model:?}");
            drop(http);
            server.stop_expecting(1);
        });
    }
}

/// hyper's client on a greenloop socket: three `GET`s on one keep-alive
/// connection, whose I/O runs on [`GreenloopExecutor`]. Returns each
/// status and body.
async fn fetch_three(addr: SocketAddr) -> Vec<(StatusCode, Bytes)> {
    let stream = TcpStream::connect_async(addr).await.expect("connect");
    let (mut sender, conn) = http1::handshake(stream).await.expect("handshake");
    GreenloopExecutor.execute(conn);
    let mut answers = Vec::new();
    for target in ["/sleep?ms=1", "/sleep?ms=0", "/sleep?ms=-1"] {
        sender.ready().await.expect("connection ready for the next request");
        let req = Request::get(target)
            .header(hyper::header::HOST, addr.to_string())
            .body(Empty::<Bytes>::new())
            .expect("request");
        let res = sender.send_request(req).await.expect("response");
        let status = res.status();
        let body = res.into_body().collect().await.expect("body").to_bytes();
        answers.push((status, body));
    }
    answers
}

/// Runs [`fetch_three`] on `model` against `addr`.
fn fetch_on(model: Model, addr: SocketAddr) -> Vec<(StatusCode, Bytes)> {
    match model {
        Model::Stackless => task::Runtime::new().expect("runtime").block_on(fetch_three(addr)),
        // The client in one green thread, its connection in another.
        Model::Green => green::run(move || block_on(fetch_three(addr))),
    }
}

fn check_three(answers: &[(StatusCode, Bytes)], what: &str) {
    let done = Bytes::from_static(DONE_BODY.as_bytes());
    assert_eq!(answers[0], (StatusCode::OK, done.clone()), "{what}");
    assert_eq!(answers[1], (StatusCode::OK, done), "{what}");
    assert_eq!(answers[2].0, StatusCode::BAD_REQUEST, "{what}");
}

#[test]
fn hyper_client_fetches_from_the_projects_sleep_server() {
    for model in MODELS {
        watchdog(LIMIT, move || {
            let server = Server::start(SleepHttp::default(), stackless_async());
            let answers = fetch_on(model, server.addr);
            check_three(&answers, &format!("{model:?} client, project server"));
            server.stop_expecting(1);
        });
    }
}

#[test]
fn hyper_client_fetches_from_the_hyper_server() {
    for client in MODELS {
        for served_by in MODELS {
            watchdog(LIMIT, move || {
                let server = HyperServer::start(served_by);
                let answers = fetch_on(client, server.addr);
                check_three(&answers, &format!("{client:?} client, {served_by:?} hyper server"));
                server.stop_expecting(1);
            });
        }
    }
}

/// hyper's header-read timeout, on [`GreenloopTimer`]: a connection that
/// sends only part of a head is closed once it runs out, on both models.
#[test]
fn greenloop_timer_ends_a_connection_whose_head_never_completes() {
    use greenloop_net::TcpListener;
    use greenloop_net::hyper::{GreenloopTimer, serve_request};
    use hyper::server::conn::http1 as server_http1;
    use hyper::service::service_fn;

    /// Serves one connection with a 50 ms header timeout; returns how it ended.
    async fn serve_one(listener: TcpListener) -> Result<(), hyper::Error> {
        let (conn, _) = listener.accept_async().await.expect("accept");
        let service = service_fn(|req| serve_request(req, greenloop_runtime::time::sleep));
        server_http1::Builder::new()
            .timer(GreenloopTimer)
            .header_read_timeout(Duration::from_millis(50))
            .serve_connection(conn, service)
            .await
    }

    for model in MODELS {
        watchdog(LIMIT, move || {
            let std_listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
            let addr = std_listener.local_addr().expect("local_addr");
            let server = thread::spawn(move || {
                let listener = || TcpListener::from_std(std_listener).expect("register");
                match model {
                    Model::Stackless => task::Runtime::new()
                        .expect("runtime")
                        .block_on(async { serve_one(listener()).await }),
                    Model::Green => green::run(|| block_on(serve_one(listener()))),
                }
            });
            let mut http = Http::connect(addr);
            http.send(b"GET /sleep?ms=1 HTTP/1.1\r\nHost: t\r\n");
            // No blank line ever comes: the timer must end the connection.
            let mut rest = Vec::new();
            let _ = http.reader.read_to_end(&mut rest);
            let ended = server.join().expect("server thread");
            assert!(ended.is_err_and(|e| e.is_timeout()), "{model:?}: a header timeout");
        });
    }
}

/// `GreenloopTimer::reset` moves a sleep's deadline: an hour-long
/// sleep reset to 1 ms from now completes (the watchdog bounds the wait).
#[test]
fn greenloop_timer_reset_moves_the_deadline() {
    use greenloop_net::hyper::GreenloopTimer;
    use hyper::rt::Timer;
    use std::time::Instant;

    watchdog(LIMIT, || {
        task::Runtime::new().expect("runtime").block_on(async {
            let timer = GreenloopTimer;
            let mut sleep = timer.sleep(Duration::from_secs(3600));
            let deadline = Instant::now() + Duration::from_millis(1);
            timer.reset(&mut sleep, deadline);
            sleep.await;
            assert!(Instant::now() >= deadline, "a sleep never ends early");
        });
    });
}
