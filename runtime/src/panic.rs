//! Panic reporting for green threads and stackless tasks.
//!
//! A panic in a green thread is caught at the thread's root (in the
//! scheduler) and handed to its [`JoinHandle`](crate::green::JoinHandle) as
//! `Err`; a panic in a task is caught around its poll and handed to its
//! [`JoinHandle`](crate::task::JoinHandle). Either way the others keep
//! running. The message is printed once, at the panic site, like std's, but
//! names the green thread or the task rather than the OS thread (which may
//! run thousands of them):
//!
//! ```text
//! green thread 'conn-17' (id 17) panicked at src/main.rs:10:5:
//! boom
//! task 42 panicked at src/main.rs:12:9:
//! boom
//! ```
//!
//! The hook is installed once per process and delegates every panic that
//! happens neither in a green thread nor in a task poll to the hook that was
//! there before.

use std::panic::{self, PanicHookInfo};
use std::sync::Once;

use crate::context::Context;
use crate::green;

/// Installs the panic hook (once per process).
pub(crate) fn install_hook() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        let previous = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            if let Some(thread) = green::try_current() {
                let name = thread.name().unwrap_or("<unnamed>");
                report(&format!("green thread '{name}' (id {})", thread.id().as_u64()), info);
            } else if let Some(id) = Context::with(|c| c.and_then(Context::running_task)) {
                report(&format!("task {id}"), info);
            } else {
                previous(info);
            }
        }));
    });
}

fn report(who: &str, info: &PanicHookInfo<'_>) {
    let payload = info.payload();
    let message = payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("Box<dyn Any>");
    let location = info.location().map(|l| format!(" at {l}")).unwrap_or_default();
    let backtrace = std::backtrace::Backtrace::capture();
    match backtrace.status() {
        std::backtrace::BacktraceStatus::Captured => {
            eprintln!("{who} panicked{location}:\n{message}\n{backtrace}")
        }
        _ => eprintln!("{who} panicked{location}:\n{message}"),
    }
}
