//! Fuzzes the HTTP request parser and the sleep service's session logic
//! with arbitrary peer bytes: neither may panic, and their answers must be
//! consistent (a complete head lies inside the input; the session closes
//! after an error and never asks to read into an empty buffer).

#![no_main]

use greenloop_net::http::{Parsed, parse_request};
use greenloop_net::service::{HttpSession, Step};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(Parsed::Complete { request, head_len }) = parse_request(data) {
        assert!(head_len <= data.len());
        let _ = request.content_length();
        let _ = request.keep_alive();
        let _ = request.headers().count();
    }
    session(data);
});

/// Drives an [`HttpSession`] with `data` split into reads of a size taken
/// from its first byte, sleeping instantly, for a bounded number of steps.
fn session(data: &[u8]) {
    let Some((&chunk, mut input)) = data.split_first() else { return };
    let chunk = usize::from(chunk).max(1);
    let mut session = HttpSession::new();
    for _ in 0..100_000 {
        match session.step() {
            Step::Read | Step::Discard => {
                let buf = session.read_buf();
                assert!(!buf.is_empty(), "a read step with no room to read into");
                let n = chunk.min(input.len()).min(buf.len());
                buf[..n].copy_from_slice(&input[..n]);
                input = &input[n..];
                session.filled(n);
            }
            Step::Sleep(_) => session.slept(),
            Step::Write => session.written(),
            Step::CloseWrite => {}
            Step::Close => return,
        }
    }
    panic!("the session neither closed nor asked for input in 100,000 steps");
}
