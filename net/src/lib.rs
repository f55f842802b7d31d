//! greenloop's sockets and services (work in progress).
//!
//! This crate will hold `TcpListener`, `TcpStream` and `UdpSocket` usable
//! both blocking-style from green threads and with `.await` from futures,
//! plus the echo and HTTP sleep services. For now it only re-exports the
//! reactor types sockets are built on.

#![deny(missing_docs, missing_debug_implementations, unsafe_op_in_unsafe_fn)]

pub use greenloop_runtime::reactor::{Direction, IoKey, Reactor, ReadyEvent};
