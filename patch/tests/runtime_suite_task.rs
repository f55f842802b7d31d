//! The runtime's stackless-task tests, with greenloop-patch installed (see
//! `runtime_suite.rs`). A binary of their own, as in the runtime: one of
//! them counts polls against four waking threads, which heavier suites
//! running beside it on two CPUs can starve.

#![allow(dead_code, unused_imports, reason = "the included suite's helpers")]

#[path = "util/install.rs"]
mod install;

#[path = "../../runtime/tests/task.rs"]
mod task;
