use greenloop_net::server::{Offload, Runtime, ServerConfig, Shutdown, Style, serve};
use greenloop_net::service::{Echo, SleepHttp};
use std::io::{Read, Write};
use std::time::Duration;

fn cells() -> Vec<ServerConfig> {
    let mut v = Vec::new();
    for rt in [Runtime::Threads, Runtime::Green, Runtime::Stackless] {
        for style in [Style::Blocking, Style::Async] {
            let mut c = ServerConfig::new(rt, style);
            c.grace = Duration::from_secs(2);
            v.push(c);
            if rt == Runtime::Stackless && style == Style::Blocking {
                c.offload = Offload::Inline;
                v.push(c);
            }
            if rt == Runtime::Threads {
                c.workers = Some(4);
                v.push(c);
            }
        }
    }
    v
}

#[test]
fn every_cell_echoes_and_sleeps() {
    for config in cells() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let shutdown = Shutdown::new();
        let sd = shutdown.clone();
        let server = std::thread::spawn(move || serve(listener, Echo, &config, &sd));
        let mut c = std::net::TcpStream::connect(addr).unwrap();
        c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        c.write_all(b"hello").unwrap();
        let mut buf = [0; 5];
        c.read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"hello", "{config:?}");
        drop(c);
        shutdown.trigger();
        let report = server.join().unwrap().unwrap();
        assert_eq!(report.accepted, 1, "{config:?}");
        assert_eq!(report.unfinished, 0, "{config:?}");

        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let shutdown = Shutdown::new();
        let sd = shutdown.clone();
        let server =
            std::thread::spawn(move || serve(listener, SleepHttp::default(), &config, &sd));
        let mut c = std::net::TcpStream::connect(addr).unwrap();
        c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        c.write_all(b"GET /sleep?ms=20 HTTP/1.1\r\nConnection: close\r\n\r\n").unwrap();
        let mut out = String::new();
        c.read_to_string(&mut out).unwrap();
        assert!(out.starts_with("HTTP/1.1 200 OK\r\n"), "{config:?}: {out}");
        assert!(out.ends_with("{\"message\":\"Done\"}"), "{config:?}: {out}");
        shutdown.trigger();
        let report = server.join().unwrap().unwrap();
        assert_eq!(report.accepted, 1, "{config:?}");
    }
}
