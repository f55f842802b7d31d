//! More of the runtime's suites with greenloop-patch installed (see
//! `runtime_suite.rs`): stack overflow reports (each re-executes this
//! binary), shards across OS threads, and the sync primitives' model and
//! stress tests, whose green threads, tasks and OS threads all make
//! interposed calls.

#![allow(dead_code, unused_imports, reason = "the included suites' helpers")]
#![allow(clippy::duplicate_mod, reason = "each included suite declares its helper modules")]

#[path = "util/install.rs"]
mod install;

#[path = "../../runtime/tests/overflow.rs"]
mod overflow;
#[path = "../../runtime/tests/shard.rs"]
mod shard;
#[path = "../../runtime/tests/sync_model.rs"]
mod sync_model;
#[path = "../../runtime/tests/sync_stress.rs"]
mod sync_stress;
