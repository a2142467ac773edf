//! The IRC protocol without I/O: the line codec, server features, text
//! handling, nick mapping, flood control and the registration state
//! machine. Nothing here touches a socket or reads the clock; time is
//! passed in.

pub mod flood;
pub mod isupport;
pub mod message;
pub mod nick;
pub mod session;
pub mod text;

pub use isupport::ISupport;
pub use message::{IrcMessage, ParseError, Source};
