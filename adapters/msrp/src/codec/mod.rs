//! The MSRP codec (RFC 4975 §5.1, §6, §7, §9, §10; RFC 7701 §7.1), sans-IO.
//!
//! * [`parse`] reads one message into a [`Message`] that borrows from the
//!   bytes: the start line ([`StartLine`]: a request with its method, or a
//!   response with its status), the transaction id, the header lines in
//!   order (unknown ones too), the body and the end-line flag
//!   ([`Continuation`]). Typed accessors read their header when asked:
//!   [`Message::to_path`] and [`Message::from_path`] give [`MsrpUri`]s,
//!   [`Message::byte_range`] a [`ByteRange`], [`Message::status`] a
//!   [`Status`], and so on; [`Message::validate`] checks what a method
//!   needs. Every error has a byte offset and the status a receiver
//!   answers ([`ParseError::response_code`]).
//! * [`StreamFramer`] cuts a TCP or TLS byte stream into messages by the
//!   end-line of each transaction, whatever the reads.
//! * [`OwnedMessage`] builds messages to send;
//!   [`OwnedMessage::response_to`] answers a request (§7.2) and
//!   [`OwnedMessage::success_report`] / [`OwnedMessage::failure_report`]
//!   make REPORTs (§7.1.2 to §7.1.4).
//! * [`Chunker`] sends a message in chunks, interruptible or not;
//!   [`Reassembler`] puts received chunks back together.
//!
//! The run loop of a connection, with the driver owning the socket:
//!
//! ```
//! use cpimgate_msrp::codec::{
//!     Chunk, Limits, OwnedMessage, Reassembler, ReassemblyEvent, ReassemblyLimits,
//!     StreamFramer, parse_with,
//! };
//! let own = "msrp://bob.example.com:8888/9di4eae923wzd;tcp";
//! let mut framer = StreamFramer::new(Limits::default());
//! let mut chunks = Reassembler::new(ReassemblyLimits::default());
//! let mut to_send = Vec::new();
//! // RFC 4975 §11.1, message 4, as two reads
//! let wire: &[u8] = b"MSRP d93kswow SEND\r\n\
//! To-Path: msrp://bob.example.com:8888/9di4eae923wzd;tcp\r\n\
//! From-Path: msrp://alicepc.example.com:7777/iau39soe2843z;tcp\r\n\
//! Message-ID: 12339sdqwer\r\n\
//! Byte-Range: 1-16/16\r\n\
//! Content-Type: text/plain\r\n\
//! \r\n\
//! Hi, I'm Alice!\r\n\
//! -------d93kswow$\r\n";
//! for read in wire.chunks(100) {
//!     framer.handle_data(read);
//!     while let Some(frame) = framer.poll_event() {
//!         let frame = frame.expect("framing error: close the connection");
//!         let m = match parse_with(&frame, &Limits::default()).and_then(|m| m.validate().map(|()| m)) {
//!             Ok(m) => m,
//!             Err(e) => continue, // answer e.response_code() when possible
//!         };
//!         if m.method() == Some("SEND") {
//!             let code = match Chunk::from_message(&m).map(|c| chunks.handle_chunk(&c)) {
//!                 Ok(Ok(())) => 200,
//!                 Ok(Err(e)) => e.response_code(),
//!                 Err(e) => e.response_code(),
//!             };
//!             if m.wants_response(code) {
//!                 let r = OwnedMessage::response_to(&m, code, Some("OK"), own).unwrap();
//!                 to_send.push(r.to_bytes());
//!             }
//!         }
//!     }
//! }
//! let Some(ReassemblyEvent::Complete { body, .. }) = chunks.poll_event() else { panic!() };
//! assert_eq!(&body[..], b"Hi, I'm Alice!");
//! assert!(to_send[0].starts_with(b"MSRP d93kswow 200 OK\r\n"));
//! ```

mod chunking;
mod error;
mod framing;
mod headers;
mod message;
mod reassembly;
mod serialize;
mod typed;
mod uri;

pub use chunking::{Chunker, INTERRUPTIBLE_ABOVE};
pub use error::{ErrorKind, ParseError};
pub use framing::{Frame, StreamFramer};
pub use headers::{
    ByteRange, ContentType, FailureReport, Header, HeaderName, Status, SuccessReport, is_ident,
};
pub use message::{Continuation, Limits, Message, StartLine, parse, parse_with};
pub use reassembly::{Chunk, Reassembler, ReassemblyError, ReassemblyEvent, ReassemblyLimits};
pub use serialize::{BuildError, OwnedMessage, OwnedStartLine, reason_phrase};
pub use uri::{MsrpUri, Scheme, UriError, parse_path};
