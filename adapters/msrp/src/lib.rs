//! MSRP adapter: MSRP sessions (RFC 4975) and chat rooms (RFC 7701).
//!
//! Not built yet: this crate exists so that the workspace has its final
//! shape. Its issue adds the codec, sessions and the chat-room focus.

pub mod conference;
pub mod room;
pub mod sdp;
