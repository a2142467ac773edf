//! SIP adapter: SIP stack and pager-mode MESSAGE (RFC 3428).
//!
//! [`codec`] reads and writes SIP messages (RFC 3261 §7, §18.3, §20),
//! without IO. Transports, transactions and MESSAGE build on it.

pub mod codec;
pub mod digest;
pub mod transaction;
pub mod transport;
