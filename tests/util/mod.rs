//! Shared by the top-level integration tests: the runtime tests' watchdog
//! (a hang fails the test instead of hanging the run) and their child
//! process with a time limit (a hung child is killed instead of outliving
//! the run).

#[path = "../../runtime/tests/watchdog/mod.rs"]
mod watchdog_impl;
pub use watchdog_impl::watchdog;

#[path = "../../runtime/tests/watchdog/child.rs"]
mod child;
#[allow(unused_imports, reason = "each test binary uses a part")]
pub use child::{LimitedChild, output_within, read_to_end};
