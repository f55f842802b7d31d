//! The runtime's cross-thread wake stress with greenloop-patch installed
//! (see `runtime_suite.rs`). A binary of its own, as in the runtime: it
//! counts polls against four waking OS threads, which other suites running
//! beside it on two CPUs can starve.

#![allow(dead_code, unused_imports, reason = "the included suite's helpers")]

#[path = "util/install.rs"]
mod install;

#[path = "../../runtime/tests/stress_wake.rs"]
mod stress_wake;
