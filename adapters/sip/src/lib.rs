//! SIP adapter: SIP stack and pager-mode MESSAGE (RFC 3428).
//!
//! Not built yet: this crate exists so that the workspace has its final
//! shape. Its issue adds the codec, transports, transactions and MESSAGE.

pub mod digest;
pub mod transaction;
