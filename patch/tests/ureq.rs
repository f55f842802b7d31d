//! A third-party blocking HTTP client, `ureq`, unmodified: 200 green
//! threads fetch from greenloop's sleep server at once, and all 200 are in
//! flight together.

mod util;

use std::rc::Rc;
use std::time::Duration;

use greenloop_net::server::{Runtime, ServerConfig, Shutdown, Style, serve};
use greenloop_net::service::SleepHttp;
use greenloop_runtime::green;
use util::{InFlight, watchdog};

const FETCHES: usize = 200;

#[test]
fn two_hundred_green_threads_wait_on_ureq_at_once() {
    greenloop_patch::install();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/sleep?ms=300", listener.local_addr().unwrap());
    let shutdown = Shutdown::new();
    let stop = shutdown.clone();
    let server = std::thread::spawn(move || {
        let config = ServerConfig::new(Runtime::Green, Style::Async);
        serve(listener, SleepHttp::default(), &config, &stop)
    });
    let max = watchdog(Duration::from_secs(60), move || {
        green::run(move || {
            let in_flight = Rc::new(InFlight::default());
            let fetches: Vec<_> = (0..FETCHES)
                .map(|_| {
                    let (in_flight, url) = (in_flight.clone(), url.clone());
                    green::spawn(move || {
                        let response = in_flight
                            .run(|| ureq::get(&url).call().map_err(Box::new))
                            .expect("fetch");
                        let body = response.into_string().expect("body");
                        assert_eq!(body.trim(), r#"{"message":"Done"}"#);
                    })
                })
                .collect();
            fetches.into_iter().for_each(|f| f.join().unwrap());
            in_flight.max()
        })
    });
    watchdog(Duration::from_secs(30), move || {
        shutdown.trigger();
        server.join().unwrap().expect("sleep server");
    });
    assert_eq!(max, FETCHES, "only {max} fetches were in flight at once");
}
