//! MSRP adapter: MSRP (RFC 4975) and its chat rooms (RFC 7701).
//!
//! What is here is the sans-IO layer every MSRP session stands on:
//! [`codec`] reads and writes MSRP messages, cuts a byte stream into them,
//! sends large messages in chunks and puts received chunks back together.
//! It takes bytes and gives bytes and events; it owns no socket, no timer
//! and no randomness (transaction ids and Message-IDs are the caller's).
//!
//! Not built yet: sessions over TCP and TLS (binding a connection to a
//! session by To-Path, RFC 4975 §5.4), the SDP side (`a=path`), relays
//! (RFC 4976), and the chat-room focus of RFC 7701 (nicknames, private
//! messages, the conference event package). They come next, on this
//! codec.
//!
//! Start with the [`codec`] module documentation: it shows the run loop
//! of one connection.

pub mod codec;
