//! MSRP adapter: MSRP (RFC 4975) and its chat rooms (RFC 7701).
//!
//! The sans-IO layers, bottom up:
//!
//! * [`codec`] reads and writes MSRP messages, cuts a byte stream into
//!   them, sends large messages in chunks and puts received chunks back
//!   together. It takes bytes and gives bytes and events; it owns no
//!   socket, no timer and no randomness (transaction ids and Message-IDs
//!   are the caller's). Its module documentation shows the run loop of
//!   one connection.
//! * [`sdp`] reads and writes the session descriptions that set MSRP
//!   sessions up (RFC 4975 §8, RFC 3264, RFC 6135, RFC 7701 §8).
//! * [`room`] is a chat room as its switch sees it: participants,
//!   nicknames shared with the bridged worlds, where each message goes
//!   (RFC 7701 §6, §7).
//! * [`participant`] is the gateway as a participant of a room hosted
//!   elsewhere: its offer, its requests, its nicknames, its backoff.
//! * [`config`] is the adapter's configuration.
//!
//!
//! [`adapter`] is the tokio driver that joins them, the SIP stack of
//! `cpimgate-sip` and the hub: [`MsrpAdapter`], configured by
//! [`MsrpConfig`].
//!
//! Not built yet: relays (RFC 4976), puppets in rooms elsewhere (one
//! participant per bridged user).

#[cfg(feature = "runtime")]
pub use adapter::MsrpAdapter;
pub use config::MsrpConfig;

#[cfg(feature = "runtime")]
pub mod adapter;
pub mod codec;
pub mod conference;
pub mod config;
pub mod participant;
pub mod room;
pub mod sdp;
