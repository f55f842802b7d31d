//! The runtime's dump and blocked-loop monitor tests with greenloop-patch
//! installed (see `runtime_suite.rs`). A binary of their own, as in the
//! runtime: a dump wakes every loop of the process, which tests that count
//! their loop's wakes (context.rs) must not see.

#![allow(dead_code, unused_imports, reason = "the included suites' helpers")]
#![allow(clippy::duplicate_mod, reason = "each included suite declares its helper modules")]

#[path = "util/install.rs"]
mod install;

#[path = "../../runtime/tests/dump.rs"]
mod dump;
#[path = "../../runtime/tests/monitor.rs"]
mod monitor;
