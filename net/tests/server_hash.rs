//! `GET /hash?n=N` (the lab's CPU-bound handler, claim C5) on every cell,
//! checked against known answers computed outside this crate.
//!
//! The expected values come from a separate implementation of the
//! documented function (`hash_work`: start at 0x9E3779B97F4A7C15; per round
//! `i`: `h ^= i; h *= 0xBF58476D1CE4E5B9 (mod 2^64); h ^= h >> 31`), in
//! Python:
//!
//! ```text
//! M = (1 << 64) - 1
//! def h(n):
//!     x = 0x9E3779B97F4A7C15
//!     for i in range(n):
//!         x ^= i; x = (x * 0xBF58476D1CE4E5B9) & M; x ^= x >> 31
//!     return x
//! ```
//!
//! The library's own `hash_work` is deliberately not the oracle here.

mod server_util;

use std::time::Duration;

use greenloop_net::service::SleepHttp;
use server_util::{Http, Server, all_cells, watchdog};

/// `(n, hash)` pairs from the Python implementation above.
const KNOWN: &[(u32, &str)] = &[
    (1, "d67411c5c06e57a5"),
    (2, "489bfdba5304f2f1"),
    (1000, "7d59fad4cea4b296"),
    (123_456, "7af129ccacaef32f"),
];

#[test]
fn hash_answers_match_known_values_on_every_cell() {
    watchdog(Duration::from_secs(60), || {
        for cell in all_cells() {
            let server = Server::start(SleepHttp::default(), cell);
            let mut http = Http::connect(server.addr);
            for &(n, hash) in KNOWN {
                let response = http.get(&format!("/hash?n={n}"), "");
                assert_eq!(response.status, 200, "{cell}: n={n}: {response:?}");
                assert_eq!(response.body_str(), format!(r#"{{"hash":"{hash}"}}"#), "{cell}: n={n}");
                assert_eq!(response.header("content-type"), Some("application/json"), "{cell}");
            }
            drop(http);
            server.stop_expecting(1);
        }
    });
}
