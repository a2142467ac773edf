//! SIP adapter: SIP stack and pager-mode MESSAGE (RFC 3428).
//!
//! The stack, bottom up:
//!
//! * [`codec`] reads and writes SIP messages (RFC 3261 §7, §18.3, §20),
//!   without IO;
//! * [`transport`]: UDP, TCP and TLS over tokio (RFC 3261 §18);
//! * [`transaction`]: the transaction state machines (RFC 3261 §17),
//!   sans-IO;
//! * [`digest`]: digest authentication, both sides (RFC 3261 §22);
//! * [`dialog`]: dialogs (RFC 3261 §12) and the requests within them,
//!   sans-IO;
//! * [`message`]: the MESSAGE rules (RFC 3428), sans-IO;
//! * [`register`]: registration of gateway addresses with a registrar
//!   (RFC 3261 §10), sans-IO;
//! * [`resolve`]: locating SIP servers in DNS (RFC 3263), sans-IO rules
//!   and a hickory-resolver driver;
//! * [`adapter`]: [`SipAdapter`], the tokio driver that joins them to the
//!   hub, configured by [`SipConfig`].

#[cfg(feature = "runtime")]
pub mod adapter;
pub mod codec;
pub mod config;
pub mod dialog;
pub mod digest;
pub mod message;
pub mod register;
#[cfg(feature = "runtime")]
pub mod resolve;
pub mod subscribe;
pub mod transaction;
pub mod transport;

#[cfg(feature = "runtime")]
pub use adapter::SipAdapter;
pub use config::SipConfig;
