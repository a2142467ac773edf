//! The end-to-end test harness of cpimgate: real servers and real clients,
//! started per test.
//!
//! * [`prosody`]: a private Prosody per test (two virtual hosts with MUC, an
//!   external component), on free ports; kill and restart for fault tests.
//! * [`xmpp_user`]: a real XMPP client playing a human user: join a MUC,
//!   send and await messages and presences.
//! * [`gate`]: a TCP forwarder the test can close, to keep the gateway
//!   away from a restarted server while the test's users are back.
//! * [`inspircd`]: a private InspIRCd per test with the IRCv3 modules.
//! * [`irc_user`]: a plain IRC client playing a human user on it.
//! * [`kamailio`]: a private Kamailio as a SIP proxy in front of the gateway.
//! * [`kamailio_config`]: Kamailio on a config the test gives whole.
//! * [`sipp`]: sipp as a SIP UAC or UAS, with the scenarios of `tests/sipp/`.
//! * [`sip_pager`]: a SIP MESSAGE client that knows which MESSAGE got 202.
//! * [`msrp_ua`]: an MSRP chat participant (SIP INVITE over UDP, MSRP over
//!   TCP) written on the gateway's own codecs.
//! * [`gateway`]: the cpimgate hub in-process, from a TOML config, with
//!   test-supplied adapters for `kind = "embedded"` sections.
//! * [`gateway_process`]: the `cpimgate` binary as a process of its own,
//!   for benchmarks that compare its CPU and memory with another gateway,
//!   and for fault tests that kill it and start it again.
//! * [`biboumi`]: biboumi, the reference XMPP↔IRC gateway, beside a test
//!   Prosody, for the IRC benchmark.
//! * [`embedded`]: such a test-supplied adapter: the test hands messages in
//!   as another world and sees what the hub delivers to it.
//! * [`bare_component`]: an external component on Prosody with nothing
//!   behind it, the ceiling of a gateway's component path in benchmarks.
//! * [`bench`]: what the benchmarks share (clock, percentiles, settings).
//! * [`bench_report`]: the figures a benchmark leaves for the report.
//!
//! Tests live in `tests/tests/*.rs` and `use cpimgate_e2e::...`. A server
//! that cannot start makes a test fail with the reason (the log's tail);
//! nothing is skipped.

pub mod bare_component;
pub mod bench;
pub mod bench_report;
pub mod biboumi;
pub mod dnsmasq;
pub mod embedded;
mod error;
pub mod gate;
pub mod gateway;
pub mod gateway_process;
pub mod inspircd;
pub mod irc_user;
pub mod kamailio;
pub mod kamailio_config;
pub mod msrp_ua;
pub mod prosody;
pub mod sip_pager;
pub mod sipp;
pub mod xmpp_user;

pub use error::HarnessError;

/// Send `tracing` output of the gateway and the harness to the test's
/// output (shown for failing tests), filtered by `RUST_LOG` (default
/// `info`). Safe to call from every test.
pub fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_test_writer()
        .try_init();
}
