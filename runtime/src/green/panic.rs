//! Panic reporting for green threads.
//!
//! A panic in a green thread is caught at the thread's root (in the
//! scheduler) and handed to its [`JoinHandle`](super::JoinHandle) as `Err`;
//! the other threads keep running. The message is printed at the panic
//! site, like std's, but names the green thread rather than the OS thread:
//!
//! ```text
//! green thread 'conn-17' panicked at src/main.rs:10:5:
//! boom
//! ```
//!
//! The hook is installed once per process and delegates every panic that
//! does not happen inside a green thread to the hook that was there before.

use std::panic::{self, PanicHookInfo};
use std::sync::Once;

/// Installs the green-aware panic hook (once per process).
pub(super) fn install_hook() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        let previous = panic::take_hook();
        panic::set_hook(Box::new(move |info| match super::try_current() {
            Some(thread) => report(&thread, info),
            None => previous(info),
        }));
    });
}

fn report(thread: &super::Thread, info: &PanicHookInfo<'_>) {
    let payload = info.payload();
    let message = payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("Box<dyn Any>");
    let name = thread.name().unwrap_or("<unnamed>");
    let id = thread.id().as_u64();
    let location = info.location().map(|l| format!(" at {l}")).unwrap_or_default();
    let backtrace = std::backtrace::Backtrace::capture();
    match backtrace.status() {
        std::backtrace::BacktraceStatus::Captured => {
            eprintln!("green thread '{name}' (id {id}) panicked{location}:\n{message}\n{backtrace}")
        }
        _ => eprintln!("green thread '{name}' (id {id}) panicked{location}:\n{message}"),
    }
}
