//! Pager-mode instant messaging: the SIP MESSAGE method (RFC 3428), sans-IO.
//!
//! * [`uas`]: what the gateway answers to a request (RFC 3428 §7, RFC 3261
//!   §8.2) and the model message a MESSAGE becomes; 202 once the hub has
//!   stored it.
//! * [`uac`]: the MESSAGE a model message becomes (RFC 3428 §4), what its
//!   response means, and the queue per Request-URI of §8.
//! * [`date`](parse_sip_date): the RFC 1123 dates of `Date` (RFC 3261 §20.17).
//!
//! The tokio side is [`crate::adapter`].

mod date;
pub mod uac;
pub mod uas;

pub use date::{format_sip_date, parse_sip_date};
pub use uac::{
    DestinationQueues, RequestParts, build_request, from_value, from_value_of, outcome_of,
};
pub use uas::{
    ACCEPT, ALLOW, Answer, KNOWN_METHODS, MergeGuard, UasContext, UasDecision, answer_for_outcome,
    handle_request, html_to_text,
};
