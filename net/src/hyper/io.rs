//! hyper's `rt::Read` and `rt::Write` for [`TcpStream`], through the same
//! readiness helper as every other socket operation (`source.rs`): one
//! syscall per read or write while the reactor holds readiness, the
//! task's or green thread's waker stored otherwise.
//!
//! hyper hands reads an uninitialised buffer; `recv(2)` fills it directly,
//! as tokio's sockets do, instead of zeroing it first. Writes report
//! themselves vectored, so hyper queues a response's head and body and
//! sends them with one `writev(2)`.

use std::io::{self, IoSlice, Write as _};
use std::mem::MaybeUninit;
use std::net::Shutdown;
use std::os::fd::AsRawFd;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use ::hyper::rt::{Read, ReadBufCursor, Write};
use greenloop_runtime::reactor::Direction;

use crate::TcpStream;
use crate::source::short;

impl Read for TcpStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        mut buf: ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        // SAFETY: `recv_uninit` only writes bytes into the slice (never
        // de-initialises one), as `as_mut` requires.
        let unfilled = unsafe { buf.as_mut() };
        let len = unfilled.len();
        let n = ready!(
            self.registered()
                .poll_io(Direction::Read, cx, short(len), |s| { recv_uninit(s, unfilled) })
        )?;
        // SAFETY: `recv` initialised the first `n` bytes of the unfilled
        // part (it returns how many it wrote, at most `len`).
        unsafe { buf.advance(n) };
        Poll::Ready(Ok(()))
    }
}

/// `recv(2)` into a buffer that may be uninitialised.
fn recv_uninit(stream: &mio::net::TcpStream, buf: &mut [MaybeUninit<u8>]) -> io::Result<usize> {
    // SAFETY: `buf` is valid for writes of `buf.len()` bytes, which is all
    // recv(2) may write; the descriptor is the open socket `stream` owns.
    let n = unsafe { libc::recv(stream.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
    usize::try_from(n).map_err(|_| io::Error::last_os_error())
}

impl Write for TcpStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        futures_io::AsyncWrite::poll_write(self, cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let len = bufs.iter().map(|b| b.len()).sum();
        self.registered().poll_io(Direction::Write, cx, short(len), |mut s| s.write_vectored(bufs))
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    /// Nothing is buffered here: a write is a syscall.
    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(self.shutdown(Shutdown::Write))
    }
}
