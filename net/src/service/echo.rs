//! The echo service, once per style: every byte read is written back
//! until the peer closes its write half.

use std::io::{self, Read, Write};

use crate::TcpStream;

/// Size of the echo buffer: one read, one write, per 16 KiB at most.
const BUF_SIZE: usize = 16 * 1024;

/// Blocking-style echo over any `Read + Write` stream (a greenloop
/// `TcpStream` in a green thread, a `std` stream on an OS thread).
/// Returns the number of bytes echoed.
///
/// # Errors
///
/// The stream's read and write errors (a reset peer, for instance).
pub fn echo_blocking<S: Read + Write>(stream: &mut S) -> io::Result<u64> {
    let mut buf = [0u8; BUF_SIZE];
    let mut total = 0u64;
    loop {
        let n = match stream.read(&mut buf) {
            Ok(0) => return Ok(total),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        stream.write_all(&buf[..n])?;
        total += n as u64;
    }
}

/// Async-style echo over a greenloop `TcpStream`. Returns the number of
/// bytes echoed.
///
/// # Errors
///
/// The stream's read and write errors (a reset peer, for instance).
pub async fn echo_async(stream: &TcpStream) -> io::Result<u64> {
    let mut buf = [0u8; BUF_SIZE];
    let mut total = 0u64;
    loop {
        let n = match stream.read_async(&mut buf).await {
            Ok(0) => return Ok(total),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        stream.write_all_async(&buf[..n]).await?;
        total += n as u64;
    }
}
