//! The rest of the runtime's suites with greenloop-patch installed (see
//! `runtime_suite.rs`), but `stack_capacity`, which parks up to 200,000
//! green threads that make no interposed call, and the dump and monitor
//! (`runtime_suite_dump.rs`): both models on one loop, green thread
//! control (cancel, shield, timeout), streams, primitives under foreign
//! wakers (futures' and tokio's executors), and the public API's remaining
//! corners.

#![allow(dead_code, unused_imports, reason = "the included suites' helpers")]
#![allow(clippy::duplicate_mod, reason = "each included suite declares its helper modules")]

#[path = "util/install.rs"]
mod install;

#[path = "../../runtime/tests/context.rs"]
mod context;
#[path = "../../runtime/tests/green_control.rs"]
mod green_control;
#[path = "../../runtime/tests/public_api.rs"]
mod public_api;
#[path = "../../runtime/tests/streams.rs"]
mod streams;
#[path = "../../runtime/tests/sync_foreign.rs"]
mod sync_foreign;
#[path = "../../runtime/tests/task_smoke.rs"]
mod task_smoke;
