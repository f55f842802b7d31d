//! The runtime's own integration tests (green threads, the reactor, sync),
//! run with greenloop-patch linked and installed before `main`: every green
//! thread in them goes through the patch, and they must pass unchanged.

#![allow(dead_code, unused_imports, reason = "the included suites' helpers")]
#![allow(clippy::duplicate_mod, reason = "each included suite declares its helper modules")]

#[path = "util/install.rs"]
mod install;

#[path = "../../runtime/tests/green.rs"]
mod green;
#[path = "../../runtime/tests/reactor.rs"]
mod reactor;
#[path = "../../runtime/tests/sync_basic.rs"]
mod sync_basic;
#[path = "../../runtime/tests/sync_cancel.rs"]
mod sync_cancel;
