//! greenloop's sockets and services.
//!
//! One socket type per protocol, usable in both styles: blocking-style
//! (`std::io::Read`/`Write`, `accept`, `connect`), which parks only the
//! current green thread inside the green runtime and blocks the OS thread
//! elsewhere; and async-style (`futures_io::AsyncRead`/`AsyncWrite` and
//! `*_async` methods) for stackless tasks. Every socket is registered once,
//! edge-triggered, with the reactor of the thread that created it, and
//! deregistered when dropped.

#![deny(missing_docs, missing_debug_implementations, unsafe_op_in_unsafe_fn)]
#![warn(clippy::undocumented_unsafe_blocks)]

mod addr;
pub mod http;
#[cfg(feature = "hyper")]
pub mod hyper;
mod incoming;
pub mod server;
pub mod service;
mod source;
mod tcp;
mod tcp_state;
mod udp;

pub use addr::ToSocketAddrs;
#[cfg(feature = "test-resolver")]
#[doc(hidden)]
pub use addr::test_resolver;
pub use incoming::Incoming;
pub use tcp::{TcpListener, TcpStream};
pub use udp::UdpSocket;
