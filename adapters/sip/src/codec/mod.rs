//! The SIP message codec (RFC 3261 §7, §18.3, §20, §25), sans-IO.
//!
//! * [`parse`] reads one message into a [`Message`] that borrows from the
//!   bytes; typed accessors ([`Message::via`], [`Message::from`],
//!   [`Message::cseq`], ...) read their header when asked, and
//!   [`Message::validate_request`] checks what a UAS needs (RFC 3261
//!   §8.1.1). Every error has a byte offset and the status a UAS answers
//!   ([`ParseError::response_status`]).
//! * [`StreamFramer`] cuts a TCP or TLS byte stream into messages by
//!   Content-Length (§18.3); [`parse_datagram`] does the same for one UDP
//!   datagram.
//! * [`OwnedMessage`] builds messages to send, with Content-Length
//!   computed, and [`OwnedMessage::response_to`] starts a response from a
//!   request as §8.2.6 says.
//!
//! ```
//! use cpimgate_sip::codec::{parse, OwnedMessage};
//! // RFC 3428 §10, F1
//! let bytes = b"MESSAGE sip:user2@domain.com SIP/2.0\r\n\
//! Via: SIP/2.0/TCP user1pc.domain.com;branch=z9hG4bK776sgdkse\r\n\
//! Max-Forwards: 70\r\n\
//! From: sip:user1@domain.com;tag=49583\r\n\
//! To: sip:user2@domain.com\r\n\
//! Call-ID: asd88asd77a@1.2.3.4\r\n\
//! CSeq: 1 MESSAGE\r\n\
//! Content-Type: text/plain\r\n\
//! Content-Length: 18\r\n\
//! \r\n\
//! Watson, come here.";
//! let m = parse(bytes).unwrap();
//! m.validate_request().unwrap();
//! assert_eq!(m.top_via().unwrap().unwrap().branch(), Some("z9hG4bK776sgdkse"));
//! assert_eq!(m.from().unwrap().unwrap().tag(), Some("49583"));
//! assert_eq!(m.body(), b"Watson, come here.");
//! assert_eq!(m.to_bytes(), bytes);
//!
//! let ok = OwnedMessage::response_to(&m, 202, "Accepted", Some("ab8asdasd9")).unwrap();
//! assert!(ok.to_bytes().starts_with(b"SIP/2.0 202 Accepted\r\n"));
//! ```

mod addr;
mod error;
mod framing;
mod headers;
mod message;
mod serialize;
mod typed;
mod via;

pub use addr::{NameAddrRef, NameAddrSyntax};
pub use error::{ErrorKind, ErrorStatus, ParseError};
pub use framing::{StreamEvent, StreamFramer, parse_datagram};
pub use headers::{Header, HeaderName, Params, split_list, unquote};
pub use message::{Limits, Message, StartLine, parse, parse_with};
pub use serialize::{BuildError, OwnedMessage, OwnedStartLine};
pub use typed::{CSeq, Contact, ContentType};
pub use via::Via;

#[cfg(test)]
mod tests;
