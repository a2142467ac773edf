//! The end-to-end test harness of cpimgate: real servers and real clients,
//! started per test.
//!
//! * [`prosody`]: a private Prosody per test (two virtual hosts with MUC, an
//!   external component), on free ports; kill and restart for fault tests.
//! * [`xmpp_user`]: a real XMPP client (tokio-xmpp) playing a human user:
//!   join a MUC, send and await messages and presences.
//! * [`gateway`]: the cpimgate hub in-process, from a TOML config, with
//!   test-supplied adapters for `kind = "embedded"` sections.
//! * [`embedded`]: such a test-supplied adapter: the test hands messages in
//!   as another world and sees what the hub delivers to it.
//!
//! Tests live in `tests/tests/*.rs` and `use cpimgate_e2e::...`. A server
//! that cannot start makes a test fail with the reason (the log's tail);
//! nothing is skipped.

mod error;
pub mod prosody;

pub use error::HarnessError;
