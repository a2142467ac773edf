//! IRC adapter: relay and puppet modes, IRCv3.
//!
//! [`proto`] is the protocol without I/O (codec, ISUPPORT, text, nicks,
//! flood control). The connection driver and the adapter's modes build on
//! it.

pub mod proto;
